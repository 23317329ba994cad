"""link() on a handful of records: a user trying it on a sample, a test written by hand.

Two records alone cannot say how rarely strangers share a date of birth, so the model starts
from the reference (care_etl.linkage.reference): before it, nothing linked on a few records,
not even two identical ones. The hard rules hold as on a full run.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from care_etl.errors import CareEtlError
from care_etl.linkage import link, link_records
from care_etl.linkage.compare import LEVELS
from care_etl.linkage.model import LATE_LEVELS
from care_etl.linkage.reference import fields as reference_fields
from care_etl.linkage.reference import reference_u

HOME = {"family_name": "OKAFOR", "address": "14 MILL LANE", "postcode": "LS6 2AB"}


def _person(source: str, given: str, born: str, **other: str) -> dict:
    return {"source": source, "source_record_id": "1", "given_name": given,
            "date_of_birth": born, **HOME, **other}  # fmt: skip


def _one_person(*records: dict) -> bool:
    return link(pd.DataFrame(list(records)))["person_id"].nunique() == 1


def test_two_identical_records_are_one_person() -> None:
    assert _one_person(
        _person("gp", "GRACE", "1984-06-02"), _person("housing", "GRACE", "1984-06-02")
    )


def test_a_short_form_pair_of_two_records_links() -> None:
    assert _one_person(
        _person("gp", "WILLIAM", "1950-01-17"), _person("housing", "BILL", "1950-01-17")
    )


def test_a_day_month_swap_of_two_records_links() -> None:
    assert _one_person(_person("gp", "ADA", "1971-03-09"), _person("housing", "ADA", "1971-09-03"))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("CHIDI", "2015-04-01"), ("NNAMDI", "2015-04-01")),  # twins
        (("EMEKA", "1960-02-11"), ("EMEKA", "1988-07-30")),  # father and son
        (("ADAEZE", "2009-10-12"), ("CHIOMA", "2012-05-06")),  # sisters
    ],
)
def test_family_members_of_two_records_stay_apart(left: tuple, right: tuple) -> None:
    assert not _one_person(_person("gp", *left), _person("housing", *right))


def test_different_nhs_numbers_stay_apart_on_two_records() -> None:
    assert not _one_person(
        _person("gp", "GRACE", "1984-06-02", nhs_number="9434765919"),
        _person("housing", "GRACE", "1984-06-02", nhs_number="9434765870"),
    )


def test_strangers_stay_apart() -> None:
    stranger = {**_person("housing", "TOMASZ", "1992-12-24"), "family_name": "NOWAK",
                "address": "3 QUEEN STREET", "postcode": "BD1 4XY"}  # fmt: skip
    assert not _one_person(_person("gp", "GRACE", "1984-06-02"), stranger)


def test_a_link_of_few_records_is_explained_and_adds_up() -> None:
    records = pd.DataFrame(
        [_person("gp", "WILLIAM", "1950-01-17"), _person("housing", "BILL", "1950-01-17")]
    )
    result = link_records(records)
    evidence = json.loads(result.links["evidence"].iloc[0])
    assert evidence["fields"]["given_name"]["level"] == "short_form"
    total = evidence["prior_weight"] + sum(f["weight"] for f in evidence["fields"].values())
    assert evidence["total_weight"] == pytest.approx(total)
    # Two records: u of an agreeing date of birth is near the reference's (it would be a
    # half from the one pair seen), the even pseudo-count of every level aside.
    params = result.parameters.set_index(["field", "level"])["u"]
    exact = reference_u("date_of_birth", LEVELS["date_of_birth"])[0]
    assert exact < params["date_of_birth"]["exact"] < 5 * exact


def test_the_reference_knows_every_compared_field_and_its_levels() -> None:
    """A level added to a comparison must be in the reference too
    (scripts/make_reference_model.py writes it again)."""
    known = reference_fields()
    for field, levels in LEVELS.items():
        assert known.get(field) == levels, field
    assert "postcode_at_address" in known
    assert not set(known) & set(LATE_LEVELS)


def test_columns_named_otherwise_are_named_back() -> None:
    """A caller's own column names (Forename, DOB) would leave every record alone, unread."""
    records = pd.DataFrame(
        {"source": ["gp", "housing"], "source_record_id": ["1", "1"],
         "Forename": ["GRACE"] * 2, "Surname": ["OKAFOR"] * 2, "DOB": ["1984-06-02"] * 2}
    )  # fmt: skip
    with pytest.raises(CareEtlError) as error:
        link(records)
    message = str(error.value)
    assert "\n" not in message
    assert "'Forename' (did you mean 'given_name'?)" in message
    assert "'DOB' (did you mean 'date_of_birth'?)" in message


def test_a_column_named_otherwise_beside_read_ones_is_warned_of(caplog) -> None:
    records = pd.DataFrame(
        [_person("gp", "GRACE", "1984-06-02"), _person("housing", "GRACE", "1984-06-02")]
    ).rename(columns={"postcode": "Post Code"})
    with caplog.at_level("WARNING", logger="care_etl.linkage.prepare"):
        assert link(records)["person_id"].nunique() == 1
    assert "'Post Code' (did you mean 'postcode'?)" in caplog.text
    assert "GRACE" not in caplog.text and "LS6" not in caplog.text
