"""Social care's address history: the current address joined, the ended ones carried along.

The contract's addresses lookup keeps the row with no end_date as the person's address and,
with `historyAs: previous_addresses`, the ended rows as a JSON list that linkage reads to
recognise a person who moved. Read from a real SQLite database in the system's own layout.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from care_etl.contracts import load_contract
from care_etl.contracts.mapping import to_canonical
from care_etl.sources.read import read_source
from care_etl.standardise import standardise
from care_etl.synthetic.social_care import DDL
from care_etl_tests.conftest import CONTRACTS_DIR

CONTRACT = CONTRACTS_DIR / "social_care_case_management.yaml"

PERSONS = [
    # id, forename, surname, date of birth
    (101, "Ada", "Moved"),  # two ended addresses and a current one
    (102, "Ben", "Stayed"),  # a current address only
    (103, "Cat", "Gone"),  # an ended address only: left, the new one never recorded
    (104, "Dan", "Nowhere"),  # no address at all
]
ADDRESSES = [
    # id, person, text, postcode, uprn, start, end
    (1, 101, "3 Old Lane, London", "e8 1aa", 100021000003, "2001-05-01", "2010-02-01"),
    (2, 101, "12 Middle Rd, London", "E5 2BB", None, "2010-02-01", "2019-07-31"),
    (3, 101, "40 New Street, London", "N1 3DF", 100021000040, "2019-08-01", None),
    (4, 102, "8 Same Place, London", "E2 4DD", 100021000008, "1999-01-01", None),
    (5, 103, "77 Last Known Close, London", "N4 5EE", 100021000077, "2005-01-01", "2024-06-30"),
]


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "social_care"
    folder.mkdir()
    with sqlite3.connect(folder / "case_management.db") as db:
        db.executescript(DDL)
        db.executemany(
            "INSERT INTO persons (person_id, forename, surname, date_of_birth, is_deleted) "
            "VALUES (?, ?, ?, '1980-01-01', 0)",
            PERSONS,
        )
        db.executemany("INSERT INTO addresses VALUES (?, ?, ?, ?, ?, ?, ?)", ADDRESSES)
    return tmp_path


@pytest.fixture
def staged(sources: Path):
    contract = load_contract(CONTRACT)
    raw = read_source(contract, sources)
    assert raw.errors == [] and raw.warnings == []
    canonical = to_canonical(raw, contract).drop(columns=["withdrawn"])
    return standardise(canonical).set_index("source_record_id")


def test_the_current_address_is_the_one_without_an_end_date(staged) -> None:
    assert staged.loc["101", "address"] == "40 NEW STREET, LONDON"
    assert staged.loc["101", "postcode"] == "N1 3DF"
    assert staged.loc["101", "uprn"] == "100021000040"
    assert staged.loc["101", "address_to"] is None
    assert staged.loc["103", "address"] is None  # only an ended address: none current


def test_ended_addresses_become_previous_addresses_latest_first(staged) -> None:
    history = json.loads(staged.loc["101", "previous_addresses"])
    assert [e.get("postcode") for e in history] == ["E5 2BB", "E8 1AA"]  # cleaned, latest first
    assert history[0] == {
        "address": "12 MIDDLE ROAD, LONDON",
        "postcode": "E5 2BB",
        "address_from": "2010-02-01",
        "address_to": "2019-07-31",
    }
    assert history[1]["uprn"] == "100021000003"
    gone = json.loads(staged.loc["103", "previous_addresses"])
    assert [e["address"] for e in gone] == ["77 LAST KNOWN CLOSE, LONDON"]
    assert staged.loc["102", "previous_addresses"] is None
    assert staged.loc["104", "previous_addresses"] is None
    assert staged["quality_issues"].isna().all()


def test_without_history_as_the_ended_addresses_are_not_read(sources: Path) -> None:
    """historyAs is what brings the ended rows in: a contract without it reads only the
    current address, as before."""
    contract = load_contract(CONTRACT)
    for lookup in contract.lookups:
        lookup.custom.pop("historyAs", None)
    canonical = to_canonical(read_source(contract, sources), contract)
    assert "previous_addresses" not in canonical.columns


def test_the_contract_declares_the_history_for_information_governance() -> None:
    contract = load_contract(CONTRACT)
    addresses = next(o for o in contract.lookups if o.id == "addresses")
    assert addresses.custom["historyAs"] == "previous_addresses"
    document = yaml.safe_load(CONTRACT.read_text())
    described = next(o for o in document["schema"] if o["id"] == "addresses")["description"]
    assert "previous_addresses" in described and "moved" in described  # the purpose, for IG
    mapped = {c.name: c for c in addresses.columns}
    for name in ("address_text", "postcode", "uprn", "start_date", "end_date"):
        assert mapped[name].classification == "personal"
    assert mapped["end_date"].canonical == "address_to"
