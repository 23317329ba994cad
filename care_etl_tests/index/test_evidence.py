"""How old the evidence is that each member lives at the household's address, and relatives
a source declares who live elsewhere: both shown to the worker, nobody left out for them.

A small hand-made council, built and published for real (SQLite, and PostgreSQL where the
date arithmetic of the staleness rule differs): a tenancy of mother and son since 1990 (an
open period), a lodger known only from a paper referral of 1998, a grandchild registered with
a GP last year, and a daughter, a carer by social care's word, living at another address.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from care_etl.cli import main
from care_etl.contracts import load_contracts
from care_etl.index.build import DEFAULT_TRUST, build_index
from care_etl.index.cli import household_members, related_elsewhere
from care_etl.index.golden import Trust, trust_from_contracts
from care_etl.index.publish import STALE_AFTER_YEARS, publish
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.index.test_households import _read

HOUSING, GP, PAPER, SOCIAL = (
    "housing_tenancies",
    "health_gp_registrations",
    "paper_referrals",
    "social_care_case_management",
)
HOME = {"address": "FLAT 1, 2 MILL ROAD, LONDON", "postcode": "E8 1AA", "uprn": "100"}
ELSEWHERE = {"address": "7 OAK LANE, LONDON", "postcode": "N16 5WP", "uprn": "200"}
LAST_YEAR = (dt.date.today() - dt.timedelta(days=365)).isoformat()


def _record(source: str, rid: str, person: str, given: str, where: dict, **extra) -> dict:
    return {
        "source": source,
        "source_record_id": rid,
        "person": person,
        "given_name": given,
        "family_name": "Okafor",
        "date_of_birth": pd.Timestamp("1960-01-01"),
        **where,
        **extra,
    }


def _records() -> list[dict]:
    return [
        _record(HOUSING, "H1", "PMUM", "Ada", HOME, relationship_to_head="Lead tenant",
                address_from="1990-04-01"),
        _record(HOUSING, "H2", "PSON", "Ben", HOME, relationship_to_head="Son",
                address_from="1990-04-01"),
        _record(PAPER, "REF-1", "PLODGER", "Cy", HOME, recorded_on="1998-03-02"),
        _record(GP, "G4", "PGRAND", "Dee", HOME, recorded_on="2003-05-06"),
        _record(PAPER, "REF-2", "PGRAND", "Dee", HOME, recorded_on=LAST_YEAR),
        _record(SOCIAL, "1", "PMUM", "Ada", HOME, address_from="2001-02-03"),
        _record(SOCIAL, "2", "PDAUGHTER", "Eve", ELSEWHERE, address_from="2015-06-07"),
        _record(SOCIAL, "3", "PNEPHEW", "Fin", {"address": None, "postcode": None, "uprn": None}),
    ]  # fmt: skip


def _declared() -> pd.DataFrame:
    """Social care: Eve is Ada's Carer (and her daughter), Fin her nephew (she his aunt);
    Ben's record is not in social care, so nothing is declared about him there."""
    return pd.DataFrame(
        {
            "source": [SOCIAL] * 4,
            "source_record_id": ["1", "2", "1", "3"],
            "related_source_record_id": ["2", "1", "3", "1"],
            "relationship": ["Carer", "Mother", "Nephew", "Aunt"],
        }
    )


def _publish(url: str, extra: list[dict] = (), trust: Trust | None = None) -> None:
    frame = pd.DataFrame([*_records(), *extra])
    records = frame.drop(columns=["person"])
    assignments = pd.DataFrame(
        {
            "source": frame["source"],
            "source_record_id": frame["source_record_id"],
            "person_id": frame["person"],
            "link_type": "probabilistic",
            "match_probability": 0.99,
        }
    )
    tables = build_index(records, assignments, pd.DataFrame(), pd.DataFrame(), trust, _declared())
    publish(url, tables.as_dict(), run_id="run-1", summary="{}", persons=frame["person"].nunique())


@pytest.fixture
def index_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    _publish(url)
    return url


def test_each_member_carries_the_latest_date_and_sources_that_place_them_there(index_url):
    household = _read(index_url, "SELECT * FROM household").set_index("person_id")
    home = household.loc["PMUM", "household_id"]
    members = set(household.index[household["household_id"] == home])
    assert members == {"PMUM", "PSON", "PLODGER", "PGRAND"}  # nobody left out
    evidence = household[["last_evidence_on", "evidence_sources", "open_period_sources"]]
    assert evidence.loc["PLODGER"].tolist() == ["1998-03-02", PAPER, None]
    # the latest date any source gives, whichever source gives it
    assert evidence.loc["PGRAND"].tolist() == [LAST_YEAR, f"{GP}, {PAPER}", None]
    assert evidence.loc["PMUM"].tolist() == ["2001-02-03", f"{HOUSING}, {SOCIAL}",
                                             f"{HOUSING}, {SOCIAL}"]  # fmt: skip
    assert evidence.loc["PSON"].tolist() == ["1990-04-01", HOUSING, HOUSING]
    dated = _read(index_url, "SELECT * FROM person_address WHERE source_record_id = 'REF-1'")
    assert dated["recorded_on"].tolist() == ["1998-03-02"]


def _stale_by_member(url: str, person: str) -> dict[str, bool]:
    _, members = household_members(url, person)
    return dict(zip(members["member_person_id"], members["evidence_stale"].astype(bool),
                    strict=True))  # fmt: skip


def test_the_view_flags_old_evidence_unless_a_source_holds_an_open_period(index_url):
    """The lodger's form is decades old: stale. The son's tenancy began in 1990 but is not
    ended: housing says he lives there now. The grandchild's paper form of last year is
    recent, though the GP registration is old."""
    assert STALE_AFTER_YEARS == 5
    assert _stale_by_member(index_url, "PMUM") == {
        "PSON": False,
        "PLODGER": True,
        "PGRAND": False,
    }


def test_a_gp_registration_however_old_is_current_evidence_by_the_contract(tmp_path, capsys):
    # The GP extract lists the patients registered now (its contract: currentRegister), so a
    # 2003 registration says where the practice holds them today; its date is when they
    # registered, not when the address was last confirmed. Flagged stale as any old date, GP-only
    # members were 612 of the demo's 639 flags, drowning the paper-only ones.
    trust = trust_from_contracts(load_contracts(CONTRACTS_DIR), DEFAULT_TRUST)
    assert trust.registers == {GP}
    url = f"sqlite:///{tmp_path / 'index.db'}"
    patient = _record(GP, "G9", "PPATIENT", "Gus", HOME, recorded_on="2003-05-06")
    _publish(url, [patient], trust)

    assert _stale_by_member(url, "PMUM") == {
        "PSON": False,
        "PLODGER": True,
        "PGRAND": False,
        "PPATIENT": False,
    }
    assert main(["household", "PMUM", "--database", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if "PPATIENT" in line)
    assert f"evidence: {GP}, latest 2003-05-06; current in {GP}" in lines[at + 1]


def test_the_household_command_says_how_old_the_evidence_is(index_url, capsys):
    assert main(["household", "PMUM", "--database", index_url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    lodger = next(i for i, line in enumerate(lines) if "PLODGER" in line)
    said = " ".join(lines[lodger + 1].split())
    assert said == f"! known here only from {PAPER}, 1998-03-02"
    son = next(i for i, line in enumerate(lines) if "PSON" in line)
    assert "known here only" not in lines[son + 1]
    assert f"evidence: {HOUSING}, latest 1990-04-01; current in {HOUSING}" in lines[son + 1]
    assert f"older than {STALE_AFTER_YEARS} years" in out
    # the lodger's own view of the same address: their own evidence is as old
    assert main(["household", "PLODGER", "--database", index_url]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"(known here only from {PAPER}, 1998-03-02) with:" in first


def test_declared_relatives_at_another_address_are_listed_apart(index_url, capsys):
    elsewhere = related_elsewhere(index_url, "PMUM").set_index("related_person_id")
    assert set(elsewhere.index) == {"PDAUGHTER", "PNEPHEW"}  # not the son: he lives with her
    daughter = elsewhere.loc["PDAUGHTER"]
    assert (daughter["relationship"], daughter["relationship_source"]) == ("Carer", SOCIAL)
    assert daughter["postcode"] == "N16 5WP" and not daughter["evidence_stale"]
    assert pd.isna(elsewhere.loc["PNEPHEW", "household_id"])
    members = _read(index_url, "SELECT member_person_id FROM household_members")
    assert "PDAUGHTER" not in set(members["member_person_id"])
    assert main(["household", "PMUM", "--database", index_url]) == 0
    out = capsys.readouterr().out
    _, _, section = out.partition("Related, living elsewhere")
    (line,) = [x for x in section.splitlines() if "PDAUGHTER" in x]
    assert line.endswith(f"Carer (declared by {SOCIAL}), at N16")
    (line,) = [x for x in section.splitlines() if "PNEPHEW" in x]
    assert line.endswith("no current address known")
    # the daughter sees her mother the other way round, though she lives alone
    assert main(["household", "PDAUGHTER", "--database", index_url]) == 0
    out = capsys.readouterr().out
    assert "no one else is known to live there" in out
    assert f"Mother (declared by {SOCIAL}), at E8" in out


def test_a_person_without_an_address_still_sees_their_relatives(index_url, capsys):
    assert main(["household", "PNEPHEW", "--database", index_url]) == 0
    out = capsys.readouterr().out
    assert "no current address is known" in out
    assert "Related, living elsewhere" in out
    assert f"Aunt (declared by {SOCIAL}), at E8" in out


@pytest.mark.postgres
def test_the_staleness_rule_and_related_elsewhere_on_postgresql(postgres_url, capsys):
    """PostgreSQL's date arithmetic is not SQLite's: the same members are flagged."""
    _publish(postgres_url)
    assert _stale_by_member(postgres_url, "PMUM") == {
        "PSON": False,
        "PLODGER": True,
        "PGRAND": False,
    }
    elsewhere = related_elsewhere(postgres_url, "PMUM")
    assert set(elsewhere["related_person_id"]) == {"PDAUGHTER", "PNEPHEW"}
    assert main(["household", "PMUM", "--database", postgres_url]) == 0
    assert f"known here only from {PAPER}, 1998-03-02" in capsys.readouterr().out
