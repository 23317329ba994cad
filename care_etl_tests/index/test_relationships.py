"""Sources that declare different relationships between two persons: one is preferred by a
stated rule, and the worker sees the other.

Housing says a member is the lead tenant's Partner; social care says the same person is
their Son. Before, the household view showed whichever term sorted first and hid the other.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.index.build import DEFAULT_TRUST
from care_etl.index.golden import Trust
from care_etl.index.households import households, person_addresses, relationships
from care_etl.pipeline import run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR

HOUSING, SOCIAL = "housing_tenancies", "social_care_case_management"
ADDRESS = {"address": "FLAT 1, 2 HIGH STREET, LONDON", "postcode": "E1 1AA", "uprn": "1001"}


def _linked(member_role: str) -> pd.DataFrame:
    """A tenancy of two (lead L, member M) and the same two people in social care."""
    rows = [
        {"person_id": "L", "source": HOUSING, "source_record_id": "HM-1",
         "relationship_to_head": "Lead Tenant", **ADDRESS},
        {"person_id": "M", "source": HOUSING, "source_record_id": "HM-2",
         "relationship_to_head": member_role, **ADDRESS},
        {"person_id": "L", "source": SOCIAL, "source_record_id": "1", **ADDRESS},
        {"person_id": "M", "source": SOCIAL, "source_record_id": "2", **ADDRESS},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _relationship(member_role: str, declared_role: str, trust: Trust) -> pd.DataFrame:
    """The relationship rows of L to M when social care declares M is L's `declared_role`."""
    linked = _linked(member_role)
    declared = pd.DataFrame(
        {
            "source": [SOCIAL],
            "source_record_id": ["1"],
            "related_source_record_id": ["2"],
            "relationship": [declared_role],
        }
    )
    household = households(person_addresses(linked, trust))
    rows = relationships(linked, household, declared, trust)
    return rows[(rows["person_id"] == "L") & (rows["related_person_id"] == "M")]


def _preferred(rows: pd.DataFrame) -> pd.Series:
    (row,) = [r for _, r in rows.iterrows() if r["preferred"]]
    return row


def test_a_contradiction_is_settled_by_the_trust_order_and_the_other_kept():
    rows = _relationship("Partner", "Son", Trust(DEFAULT_TRUST))
    assert len(rows) == 2 and rows["preferred"].sum() == 1
    chosen = _preferred(rows)
    assert (chosen["relationship"], chosen["source"]) == ("Son", SOCIAL)
    assert chosen["rule"] == "trust_order"
    assert chosen["other_relationships"] == f"Partner ({HOUSING})"
    # Trust housing first and housing's term is preferred, social care's named against it.
    chosen = _preferred(_relationship("Partner", "Son", Trust((HOUSING, SOCIAL))))
    assert (chosen["relationship"], chosen["other_relationships"]) == ("Partner", f"Son ({SOCIAL})")


def test_a_more_specific_term_is_no_disagreement():
    """Housing's member is the lead's Son, so the lead is the member's Parent; social care
    says Mother: the same relationship, said more precisely, whichever source is trusted."""
    linked = _linked("Son")
    declared = pd.DataFrame(
        {
            "source": [SOCIAL],
            "source_record_id": ["2"],
            "related_source_record_id": ["1"],
            "relationship": ["Mother"],
        }
    )
    for trust in (Trust(DEFAULT_TRUST), Trust((HOUSING, SOCIAL))):
        household = households(person_addresses(linked, trust))
        rows = relationships(linked, household, declared, trust)
        rows = rows[(rows["person_id"] == "M") & (rows["related_person_id"] == "L")]
        chosen = _preferred(rows)
        assert (chosen["relationship"], chosen["rule"]) == ("Mother", "more_specific")
        assert chosen["other_relationships"] is None


def test_one_relationship_is_its_only_value_and_co_residents_are_preferred():
    linked = _linked("Partner")
    trust = Trust(DEFAULT_TRUST)
    household = households(person_addresses(linked, trust))
    rows = relationships(linked, household, None, trust)
    assert rows["preferred"].all()
    assert set(rows.loc[rows["basis"] == "declared", "rule"]) == {"only_value"}


def _read(url: str, query: str, **params) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(query), conn, params=params)
    engine.dispose()
    return frame


def _contradict(sources: Path, url: str) -> tuple[str, str, str, str]:
    """Make social care declare, for a pair housing also declares, a relationship that
    contradicts housing's; returns the two social care record ids, its term and housing's."""
    rows = _read(url, "SELECT * FROM relationship WHERE basis = 'declared'")
    by = rows.groupby(["person_id", "related_person_id"])["source"].agg(set)
    both = by[by.apply(lambda s: s == {HOUSING, SOCIAL})].index
    links = _read(url, f"SELECT person_id, source_record_id FROM person_source_link "
                       f"WHERE source = '{SOCIAL}'")  # fmt: skip
    one = links.groupby("person_id")["source_record_id"].agg(list)
    one = one[one.str.len() == 1].str[0]
    for person, related in both:
        if person in one.index and related in one.index:
            pair = rows[(rows["person_id"] == person) & (rows["related_person_id"] == related)]
            housing = pair.loc[pair["source"] == HOUSING, "relationship"].iloc[0]
            term = "Son" if housing in ("Partner", "Carer") else "Partner"
            with sqlite3.connect(sources / "social_care" / "case_management.db") as db:
                changed = db.execute(
                    "UPDATE relationships SET relationship_type = ? "
                    "WHERE person_id = ? AND related_person_id = ?",
                    (term, int(one[person]), int(one[related])),
                ).rowcount
            assert changed == 1
            return one[person], one[related], term, housing
    pytest.fail("no pair of persons whose relationship both housing and social care declare")


@pytest.mark.slow
def test_the_household_shows_the_preferred_relationship_and_the_disagreeing_one(
    tmp_path: Path, capsys
):
    """On a real run (then an incremental one, after social care's table changed)."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=1000, seed=4, scans=0)  # some families in housing and social care
    url = f"sqlite:///{tmp_path / 'index.db'}"
    run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "reports")
    a, b, term, housing = _contradict(sources, url)
    run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "reports")
    person = lambda record: _read(  # noqa: E731
        url, "SELECT person_id FROM person_source_link WHERE source = :s AND "
        "source_record_id = :r", s=SOCIAL, r=record,
    )["person_id"].iloc[0]  # fmt: skip
    pa, pb = person(a), person(b)
    (member,) = _read(
        url, "SELECT * FROM household_members WHERE person_id = :p AND member_person_id = :m",
        p=pa, m=pb,
    ).to_dict("records")  # fmt: skip
    assert (member["relationship"], member["relationship_source"]) == (term, SOCIAL)
    assert member["other_relationships"] == f"{housing} ({HOUSING})"
    rule = _read(
        url, "SELECT rule FROM relationship WHERE person_id = :p AND related_person_id = :m "
        "AND preferred", p=pa, m=pb,
    )["rule"]  # fmt: skip
    assert list(rule) == ["trust_order"]
    capsys.readouterr()
    assert main(["household", pa.lower(), "--database", url]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if pb in x]
    assert f"{term} (declared by {SOCIAL}; but {HOUSING} says {housing})" in line
    assert "Where sources declare different relationships, the one shown is" in out
    assert main(["household", "  ", "--database", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give a person_id" in err and "Traceback" not in err


def test_household_refuses_a_sqlite_index_that_is_not_there(tmp_path: Path, capsys):
    """A mistyped path is one line, and leaves no empty database file behind."""
    missing = tmp_path / "none.db"
    assert main(["household", "P1", "--database", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"care-etl: error: no index database at {missing}"
    assert not missing.exists()


def _declared_between_l_and_m(pairs: list[tuple[str, str, str]]) -> set[tuple[str, ...]]:
    """The declared relationship rows (person, related person, relationship, source) when
    social care, alone, states `pairs` between its records 1 (L) and 2 (M): (record, related
    record, what the related record's person is to the record's)."""
    linked = _linked("Lodger").iloc[2:]  # social care's two records only: no tenancy
    declared = pd.DataFrame(
        [
            {"source": SOCIAL, "source_record_id": a, "related_source_record_id": b,
             "relationship": kind}
            for a, b, kind in pairs
        ]
    )  # fmt: skip
    trust = Trust(DEFAULT_TRUST)
    rows = relationships(linked, households(person_addresses(linked, trust)), declared, trust)
    rows = rows[rows["basis"] == "declared"]
    return set(rows[["person_id", "related_person_id", "relationship", "source"]].itertuples(
        index=False, name=None))  # fmt: skip


def test_a_relationship_declared_one_way_is_seen_from_both_persons():
    """Social care says M is L's Mother and nothing of L from M's side: the worker visiting
    M must still see L, as M's Child."""
    assert _declared_between_l_and_m([("1", "2", "Mother")]) == {
        ("L", "M", "Mother", SOCIAL),
        ("M", "L", "Child", SOCIAL),
    }


def test_a_pair_declared_both_ways_keeps_the_sources_own_words():
    assert _declared_between_l_and_m([("1", "2", "Mother"), ("2", "1", "Daughter")]) == {
        ("L", "M", "Mother", SOCIAL),
        ("M", "L", "Daughter", SOCIAL),
    }
