"""Golden values: the chosen value, its source and the rule; the others kept as alternatives."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from care_etl.contracts import load_contract
from care_etl.errors import ContractError
from care_etl.index.build import DEFAULT_TRUST, build_index
from care_etl.index.golden import Trust, trust_from_contracts
from care_etl_tests.conftest import CONTRACTS_DIR

GP, HOUSING, SOCIAL, PAPER = (
    "health_gp_registrations",
    "housing_tenancies",
    "social_care_case_management",
    "paper_referrals",
)


def _records(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["source_record_id"] = [str(i) for i in range(len(frame))]
    for col in ("lineage", "ocr_confidence", "field_confidence", "quality_issues"):
        frame[col] = None
    return frame


def _index(records: pd.DataFrame, trust=None):
    assignments = records[["source", "source_record_id"]].assign(
        person_id="P1", link_type="probabilistic", match_probability=0.99
    )
    empty = pd.DataFrame()
    return build_index(records, assignments, empty, empty, trust)


def _golden(tables, field: str) -> pd.Series:
    values = tables.person_field_value
    return values[(values["field"] == field) & values["is_golden"]].iloc[0]


def test_agreement_beats_the_default_trust_order():
    records = _records(
        [
            {"source": SOCIAL, "family_name": "SMYTH"},
            {"source": GP, "family_name": "SMITH"},
            {"source": HOUSING, "family_name": "SMITH"},
        ]
    )
    tables = _index(records)
    golden = _golden(tables, "family_name")
    assert (golden["value"], golden["rule"], golden["source"]) == ("SMITH", "agreement", GP)
    assert golden["sources"] == f"{GP}, {HOUSING}"
    assert tables.person_index.loc[0, "family_name"] == "SMITH"
    others = tables.person_field_value[~tables.person_field_value["is_golden"]]
    assert others[["field", "value", "source"]].values.tolist() == [
        ["family_name", "SMYTH", SOCIAL]
    ]


def test_one_against_one_goes_to_the_more_trusted_source():
    records = _records(
        [{"source": PAPER, "given_name": "WILLAIM"}, {"source": GP, "given_name": "WILLIAM"}]
    )
    golden = _golden(_index(records), "given_name")
    assert (golden["value"], golden["rule"]) == ("WILLIAM", "default_trust")


def test_a_contract_rank_for_the_field_outweighs_agreement():
    records = _records(
        [
            {"source": GP, "nhs_number": "9434765919"},
            {"source": SOCIAL, "nhs_number": "9434765870"},
            {"source": HOUSING, "nhs_number": "9434765870"},
        ]
    )
    trust = Trust(DEFAULT_TRUST, {"nhs_number": {GP: 1}})
    golden = _golden(_index(records, trust), "nhs_number")
    assert (golden["value"], golden["rule"], golden["source"]) == (
        "9434765919",
        "contract_trust",
        GP,
    )


def test_the_latest_dated_address_wins_and_the_previous_one_is_kept():
    records = _records(
        [
            {"source": SOCIAL, "postcode": "E8 3QP", "recorded_on": "2019-05-01"},
            {"source": GP, "postcode": "N16 7AB", "recorded_on": "2024-02-01"},
        ]
    )
    tables = _index(records)
    golden = _golden(tables, "postcode")
    assert (golden["value"], golden["rule"]) == ("N16 7AB", "recency")
    assert set(tables.person_field_value["value"]) == {"E8 3QP", "N16 7AB"}


def test_values_no_one_contradicts_say_so_and_dates_keep_their_type():
    records = _records(
        [
            {"source": SOCIAL, "date_of_birth": pd.Timestamp("1948-07-03")},
            {"source": GP, "date_of_birth": pd.Timestamp("1948-07-03"), "sex": "F"},
        ]
    )
    tables = _index(records)
    assert _golden(tables, "date_of_birth")["rule"] == "unanimous"
    assert _golden(tables, "date_of_birth")["value"] == "1948-07-03"
    assert _golden(tables, "sex")["rule"] == "only_value"
    assert tables.person_index.loc[0, "date_of_birth"] == pd.Timestamp("1948-07-03")


def test_contracts_rank_sources_per_field_and_as_a_whole(tmp_path):
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    path = folder / f"{GP}.yaml"
    document = yaml.safe_load(path.read_text())
    document.setdefault("customProperties", []).append({"property": "trust", "value": 1})
    nhs = next(p for p in document["schema"][0]["properties"] if p["name"] == "NHS Number")
    nhs["customProperties"].append({"property": "trust", "value": 1})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    contract = load_contract(path)
    trust = trust_from_contracts([contract], DEFAULT_TRUST)
    assert trust.default[0] == GP
    assert trust.contract_rank("nhs_number", GP) == 1
    assert trust.contract_rank("given_name", GP) > 1

    nhs["customProperties"][-1]["value"] = "first"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ContractError, match="NHS Number: trust must be a whole number"):
        load_contract(path)


def test_an_undated_address_is_not_taken_for_an_older_one():
    records = _records(
        [
            {"source": SOCIAL, "postcode": "E8 3QP", "recorded_on": None},
            {"source": PAPER, "postcode": "N16 7AB", "recorded_on": "1998-02-01"},
        ]
    )
    golden = _golden(_index(records), "postcode")
    assert (golden["value"], golden["rule"]) == ("E8 3QP", "default_trust")


def test_a_person_who_moved_has_every_address_field_from_where_they_live_now():
    """Field by field, two sources agreeing on the old postcode and UPRN would outvote the
    one new tenancy, and the best-known address would be the flat housing says they left."""
    old = {"address": "1 OLD ROAD", "postcode": "E8 3QP", "uprn": "100000000001"}
    records = _records(
        [
            {"source": GP, **old, "recorded_on": "2019-01-01"},
            {"source": HOUSING, **old, "address_from": "2015-01-01", "address_to": "2022-12-31"},
            {
                "source": HOUSING,
                "address": "7 NEW STREET",
                "postcode": "N16 7AB",
                "uprn": None,
                "address_from": "2023-03-01",
            },
        ]
    )
    tables = _index(records)
    person = tables.person_index.iloc[0]
    assert (person["address"], person["postcode"]) == ("7 NEW STREET", "N16 7AB")
    assert pd.isna(person["uprn"]), "the old flat's UPRN is not the new home's"
    for field, value in (("address", "7 NEW STREET"), ("postcode", "N16 7AB")):
        golden = _golden(tables, field)
        assert (golden["value"], golden["rule"]) == (value, "current_address")
    values = tables.person_field_value
    uprn = values[values["field"] == "uprn"]
    assert uprn["value"].tolist() == ["100000000001"] and not uprn["is_golden"].any()
    current = tables.person_address[tables.person_address["is_current"]]
    assert set(current["postcode"]) == {"N16 7AB"}


def test_without_a_current_address_the_address_fields_keep_their_own_rules():
    records = _records(
        [
            {
                "source": HOUSING,
                "address": "1 OLD ROAD",
                "postcode": "E8 3QP",
                "address_from": "2015-01-01",
                "address_to": "2022-12-31",
            },
        ]
    )
    tables = _index(records)
    assert not tables.person_address["is_current"].any()
    golden = _golden(tables, "postcode")
    assert (golden["value"], golden["rule"]) == ("E8 3QP", "only_value")
