"""Which services already work with a person: social care's involvements, on person ids.

The generated case management database records involvements; these tests add a few the
generator never writes (one for a withdrawn person, a planned end ahead, a closed status
without an end date) and check what the index and `care-etl household` make of them.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.contracts import load_contracts
from care_etl.pipeline import run_pipeline
from care_etl.quality.accepted import load_accepted
from care_etl.sources.declared import read_involvements
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.index.test_households import _read

pytestmark = pytest.mark.slow
SOCIAL = "social_care_case_management"
DB = Path("social_care") / "case_management.db"


@pytest.fixture(scope="module")
def run(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The generated sources with three involvements added, run once."""
    work = tmp_path_factory.mktemp("services")
    sources = work / "sources"
    shutil.copytree(generated, sources)
    with sqlite3.connect(sources / DB) as db:
        withdrawn = db.execute("SELECT person_id FROM persons WHERE is_deleted").fetchone()[0]
        kept = [r[0] for r in db.execute("SELECT person_id FROM persons WHERE NOT is_deleted")]
        added = [
            (withdrawn, "Adult Social Care", "2020-01-01", None, "Open"),
            (kept[0], "Adult Social Care", "2024-05-01", "2099-12-31", "Open"),  # planned end
            (kept[1], "Children's Social Care", "2010-03-04", None, "Closed"),
        ]
        db.executemany(
            "INSERT INTO involvements (person_id, service, start_date, end_date, status) "
            "VALUES (?, ?, ?, ?, ?)",
            added,
        )
    url = f"sqlite:///{work / 'index.db'}"
    run_pipeline(sources, CONTRACTS_DIR, url, work / "reports")
    return {"url": url, "sources": sources, "withdrawn": withdrawn, "kept": kept}


def _source_involvements(sources: Path) -> pd.DataFrame:
    with sqlite3.connect(sources / DB) as db:
        return pd.read_sql(
            "SELECT i.person_id, i.service, i.start_date, i.end_date, i.status FROM involvements i "
            "JOIN persons p ON p.person_id = i.person_id WHERE NOT p.is_deleted",
            db,
        )


def test_every_involvement_of_an_indexed_person_is_under_the_person_their_record_is_linked_to(
    run,
):
    expected = _source_involvements(run["sources"])
    listed = _read(
        run["url"],
        "SELECT s.*, l.person_id AS linked_to FROM person_services s JOIN person_source_link l "
        "ON l.source = s.source AND l.source_record_id = s.source_record_id",
    )
    assert len(listed) == len(expected) > 10
    assert (listed["person_id"] == listed["linked_to"]).all()
    assert set(listed["source"]) == {SOCIAL}
    got = listed[["source_record_id", "service", "start_date"]].astype(str)
    want = expected[["person_id", "service", "start_date"]].astype(str)
    want.columns = got.columns
    assert sorted(map(tuple, got.to_numpy())) == sorted(map(tuple, want.to_numpy()))


def test_a_withdrawn_persons_involvements_are_not_published(run):
    rows = _read(
        run["url"],
        "SELECT * FROM service_involvement WHERE source_record_id = :r",
        r=str(run["withdrawn"]),
    )
    assert rows.empty
    engine = sa.create_engine(run["url"])
    with engine.connect() as conn:  # nor kept in the accepted version that may stand in
        kept = load_accepted(conn, SOCIAL).declared["involvement"]
    engine.dispose()
    assert len(kept) > 10 and str(run["withdrawn"]) not in set(kept["source_record_id"])


def test_open_means_not_ended_by_its_date_nor_closed_by_its_status(run):
    rows = _read(
        run["url"],
        "SELECT source_record_id, status, end_date, is_open FROM person_services "
        "WHERE source_record_id IN (:a, :b)",
        a=str(run["kept"][0]),
        b=str(run["kept"][1]),
    )
    planned = rows[rows["end_date"].astype(str) == "2099-12-31"]  # a date ahead is kept
    assert planned["is_open"].astype(bool).tolist() == [True]
    closed = rows[(rows["source_record_id"] == str(run["kept"][1])) & (rows["status"] == "Closed")]
    assert len(closed) and not closed["is_open"].astype(bool).any()  # closed, no end date
    ended = _read(
        run["url"],
        "SELECT is_open FROM person_services WHERE end_date < :today",
        today="2026-01-01",
    )
    assert len(ended) and not ended["is_open"].astype(bool).any()


def test_the_household_command_shows_the_services_involved_with_each_member(run, capsys):
    person = _read(
        run["url"],
        "SELECT m.person_id, m.member_person_id, s.service FROM household_members m "
        "JOIN person_services s ON s.person_id = m.member_person_id LIMIT 1",
    ).iloc[0]
    assert main(["household", person["person_id"], "--database", run["url"]]) == 0
    out = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(out) if line.startswith(f"  {person['member_person_id']}"))
    below = out[at + 1 : at + 3]
    assert any("services involved: " in line and person["service"] in line for line in below), out


def _first_line_for(run: dict, record: object, capsys) -> str:
    """The first line `care-etl household` prints for the person of a social care record."""
    link = _read(
        run["url"],
        "SELECT person_id FROM person_source_link WHERE source = :s AND source_record_id = :r",
        s=SOCIAL,
        r=str(record),
    )
    assert main(["household", link["person_id"][0], "--database", run["url"]]) == 0
    return capsys.readouterr().out.splitlines()[0]


def test_a_closed_involvement_is_printed_with_its_dates_and_an_open_one_since_when(run, capsys):
    first = _first_line_for(run, run["kept"][0], capsys)
    assert "services involved: Adult Social Care, open since 2024-05-01" in first
    first = _first_line_for(run, run["kept"][1], capsys)
    assert "Children's Social Care, from 2010-03-04, closed" in first


def _rerun(run: dict, tmp_path: Path, change: Callable[[Path], object]) -> tuple[str, dict]:
    """A rerun on a copy of the run's index and sources, after `change` to the database:
    the copy's index URL and the run's figures for social care."""
    copy = tmp_path / "work"
    shutil.copytree(Path(run["sources"]).parent, copy, ignore=shutil.ignore_patterns("reports"))
    change(copy / "sources" / DB)
    url = f"sqlite:///{copy / 'index.db'}"
    outcome = run_pipeline(copy / "sources", CONTRACTS_DIR, url, copy / "reports")
    return url, outcome.figures["sources"][SOCIAL] | {"run_mode": outcome.incremental["run_mode"]}


def _declared(url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The index's service involvements and declared relationships, in a stable order."""
    involved = _read(url, "SELECT * FROM service_involvement ORDER BY 1, 2, 3, 4, 5, 6")
    related = _read(
        url,
        "SELECT person_id, related_person_id, relationship FROM relationship "
        "WHERE basis = 'declared' ORDER BY 1, 2, 3",
    )
    return involved, related


def _drop_involvements(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE involvements")


def test_a_missing_involvements_table_warns_and_its_last_accepted_version_stands_in(
    run, tmp_path, caplog
):
    sources = tmp_path / "sources"
    (sources / DB.parent).mkdir(parents=True)
    shutil.copy(run["sources"] / DB, sources / DB)
    _drop_involvements(sources / DB)
    with caplog.at_level(logging.WARNING):
        assert read_involvements(load_contracts(CONTRACTS_DIR), sources).empty
    (warning,) = [r.getMessage() for r in caplog.records if "involvement" in r.getMessage()]
    assert "table involvements not found" in warning

    url, figures = _rerun(run, tmp_path / "rerun", _drop_involvements)
    assert figures["blocked"] is None and figures["records_linked"] > 0
    assert any("table involvements not found" in w for w in figures["warnings"])
    (standing,) = [w for w in figures["warnings"] if "stands in" in w]
    assert standing.startswith(f"{SOCIAL}: declared involvement table unread: the last accepted")
    before, after = _declared(run["url"]), _declared(url)
    assert len(before[0]) > 10 and len(before[1]) > 10
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])


def test_an_unreadable_database_keeps_its_last_accepted_relationships_and_involvements(
    run, tmp_path
):
    url, figures = _rerun(run, tmp_path, lambda db: db.write_bytes(b"not a database"))
    assert figures["blocked"] and "stands in" in figures["blocked"]
    before, after = _declared(run["url"]), _declared(url)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])


def test_an_incremental_rerun_shows_an_involvement_closed_since_with_no_person_changed(
    run, tmp_path
):
    record = str(run["kept"][0])

    def close(db: Path) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE involvements SET end_date = '2025-06-30', status = 'Closed' "
                "WHERE person_id = ? AND end_date = '2099-12-31'",
                (int(record),),
            )

    url, figures = _rerun(run, tmp_path, close)
    assert figures["run_mode"] == "incremental"
    rows = _read(
        url,
        "SELECT end_date, is_open FROM person_services WHERE source_record_id = :r "
        "AND start_date = '2024-05-01'",
        r=record,
    )
    assert rows["end_date"].astype(str).tolist() == ["2025-06-30"]
    assert not rows["is_open"].astype(bool).any()


def test_an_unreadable_end_date_is_counted_in_a_warning_that_shows_no_value(run, tmp_path, caplog):
    sources = tmp_path / "sources"
    (sources / DB.parent).mkdir(parents=True)
    shutil.copy(run["sources"] / DB, sources / DB)
    with sqlite3.connect(sources / DB) as db:
        db.execute(
            "INSERT INTO involvements (person_id, service, start_date, end_date, status) "
            "VALUES (?, 'Adult Social Care', '2021-02-03', '31st of Smarch', 'Closed')",
            (run["kept"][2],),
        )
    with caplog.at_level(logging.WARNING):
        found = read_involvements(load_contracts(CONTRACTS_DIR), sources)
    row = found[found["source_record_id"] == str(run["kept"][2])].iloc[-1]
    assert pd.isna(row["end_date"]) and row["status"] == "Closed"
    (warning,) = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert warning == (f"{SOCIAL}: involvements.end_date: 1 unreadable date(s) left blank")
    assert "Smarch" not in caplog.text
