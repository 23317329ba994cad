"""The frame GX checks: each distinct text read once gives what reading every row gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from care_etl.contracts.model import Contract, load_contract
from care_etl.quality import expectations as ex
from care_etl.sources.read import RawSource, read_source
from care_etl.standardise._series import as_text
from care_etl.standardise.dates import clean_dates
from care_etl.standardise.identifiers import clean_nhs_number
from care_etl_tests.conftest import CONTRACTS_DIR

GP = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")


def _row_by_row(raw: RawSource, contract: Contract) -> pd.DataFrame:
    """The frame read row by row, every value on its own: what validation_frame must give.
    Withdrawn rows and rows with a read error (quarantined by staging) are not checked."""
    records = raw.records[~raw.records["_withdrawn"].astype(bool)]
    if "_read_error" in records.columns:
        records = records[records["_read_error"].isna()]
    records = records.reset_index(drop=True)
    today = dt.date.today()
    out: dict[str, pd.Series] = {}
    for obj in (contract.person_object, *contract.lookups):
        prefix = "" if obj is contract.person_object else f"{obj.id}."
        for col in obj.columns:
            name = prefix + col.name
            values = records.get(name, pd.Series(None, index=records.index, dtype=object))
            text = pd.Series([as_text(v) for v in values], dtype=object)
            out[name] = text
            if col.logical_type == "date":
                formats = [col.date_format] if col.date_format else None
                cleaned = clean_dates(text, formats, today=today)
                issue = cleaned.issue.astype(str)
                future = issue.str.contains("in the future")
                old = issue.str.contains("before 1890")
                parses = cleaned.value.notna() | future | old
                out[name + ex.PARSES] = parses.astype(object).where(text.notna(), None)
                if col.canonical == "date_of_birth":
                    age = (pd.Timestamp(today) - cleaned.value).dt.days / 365.2425
                    out[name + ex.AGE] = age.astype(float).mask(future, -1.0).mask(old, 999.0)
            if col.canonical == "nhs_number":
                valid = clean_nhs_number(text).value.notna().astype(object)
                out[name + ex.NHS_VALID] = valid.where(text.notna(), None)
    return pd.DataFrame(out)


def _awkward_gp(raw: RawSource) -> RawSource:
    """The feed with the values a shortcut could get wrong, each many times over."""
    records = raw.records.copy()
    nhs = [
        "943 476 5919",  # valid, spaced
        "943 476 5918",  # fails modulus 11, spaced
        "111 111 1111",  # placeholder, spaced
        "943  476 5919",  # two spaces
        "943-476-5919",
        " 943 476 5919 ",
        "９４３ ４７６ ５９１９",  # full-width digits: not ASCII
        "9434765919.0",
        "943 476 5919 .0",
        "94347659l9",  # OCR letter
        "",
        None,
        9434765919,  # a number among texts
    ]
    dates = ["03/07/1948", " 03/07/1948", "31/02/1990", "01/01/1880", "01/01/2999", "", None]
    records["NHS Number"] = [nhs[i % len(nhs)] for i in range(len(records))]
    records["Date of Birth"] = [dates[i % len(dates)] for i in range(len(records))]
    records["_withdrawn"] = np.arange(len(records)) % 11 == 0
    return RawSource(raw.contract_id, records.set_axis(records.index * 3))


@pytest.mark.parametrize(
    "contract_file",
    [
        "health_gp_registrations.yaml",
        "housing_tenancies.yaml",
        "social_care_case_management.yaml",
        "paper_referrals.yaml",
    ],
)
def test_every_source_gives_the_frame_read_row_by_row(generated: Path, contract_file: str):
    contract = load_contract(CONTRACTS_DIR / contract_file)
    raw = read_source(contract, generated)

    frame = ex.validation_frame(raw, contract)

    pd.testing.assert_frame_equal(frame, _row_by_row(raw, contract), check_exact=True)


def test_awkward_nhs_numbers_and_dates_read_as_row_by_row(generated: Path):
    raw = _awkward_gp(read_source(GP, generated))

    frame = ex.validation_frame(raw, GP)

    pd.testing.assert_frame_equal(frame, _row_by_row(raw, GP), check_exact=True)
    valid = dict(zip(frame["NHS Number"], frame["NHS Number" + ex.NHS_VALID], strict=True))
    assert valid["943 476 5919"] is True and valid["943 476 5918"] is False
    assert valid["111 111 1111"] is False and valid[None] is None
