"""Staging: every row ends accepted or quarantined with a reason, withdrawn rows only counted."""

from __future__ import annotations

import pandas as pd

from care_etl.contracts import load_contract
from care_etl.quality.staging import stage
from care_etl_tests.conftest import CONTRACTS_DIR

CONTRACT = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")


def _row(record_id, given="Ann", family="Lee", dob="03/07/1948", nhs=None, **extra) -> dict:
    return {
        "source": CONTRACT.id,
        "source_record_id": record_id,
        "given_name": given,
        "family_name": family,
        "date_of_birth": dob,
        "nhs_number": nhs,
        "lineage": f"health/x.csv row {extra.pop('row', 2)}",
        "ocr_confidence": None,
        "field_confidence": None,
        "read_error": extra.pop("read_error", None),
        "withdrawn": extra.pop("withdrawn", False),
    }


def test_each_row_is_accepted_quarantined_or_withdrawn_once_with_a_reason():
    mapped = pd.DataFrame(
        [
            _row("F1:P1"),
            _row("F1:P1", row=3),  # the same id again
            _row(None, row=4),  # no id
            _row("F1:P3", given=None, family=None, row=5),  # no name
            _row("F1:P4", dob="31/02/1980", row=6),  # impossible date and no NHS number
            _row("F1:P5", read_error="3 fields where the header has 18", row=7),
            _row("F1:P6", withdrawn=True, row=8),
            _row("F1:P7", dob=None, nhs="943 476 5919", row=9),  # NHS number is enough
        ]
    )
    staged = stage(mapped, CONTRACT)
    assert staged.read == 8 and staged.withdrawn == 1
    assert list(staged.records["source_record_id"]) == ["F1:P1", "F1:P7"]
    reasons = dict(
        zip(staged.quarantine["source_record_id"], staged.quarantine["reason"], strict=True)
    )
    assert reasons["F1:P1 @ health/x.csv row 3"].startswith("duplicate record id")
    assert reasons["health/x.csv row 4"] == "no record id"
    assert reasons["F1:P3"] == "no usable name"
    assert reasons["F1:P4"].startswith("no valid date of birth or NHS number")
    assert "date_of_birth: impossible date" in reasons["F1:P4"]
    assert reasons["F1:P5"] == "3 fields where the header has 18"
    assert len(staged.records) + len(staged.quarantine) + staged.withdrawn == staged.read
    # Reasons carry no value from the record.
    assert not staged.quarantine["reason"].str.contains("31/02|Ann|Lee").any()
