"""The same run against the machine's PostgreSQL: social care read from it, the index written to it."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.contracts import load_contract
from care_etl.errors import CareEtlError
from care_etl.index.build import build_index
from care_etl.index.cli import create_roles
from care_etl.index.lookup import find_persons, search_terms
from care_etl.index.publish import why
from care_etl.index.stage import make_index, publish_index
from care_etl.pipeline import run_pipeline
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.index.test_publish import (
    check_a_failed_publish_leaves_the_previous_index_whole,
    publish_small_index,
    small_index,
    small_records,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SOCIAL_TABLES = ("persons", "addresses", "relationships", "involvements")


def _copy_social_care_to(url: str, generated) -> None:
    """The case management tables, with their declared types (DATE, BOOLEAN), in PostgreSQL."""
    source = sa.create_engine(f"sqlite:///{generated / 'social_care/case_management.db'}")
    target = sa.create_engine(url)
    tables = sa.MetaData()
    tables.reflect(source, only=SOCIAL_TABLES)
    with source.connect() as src, target.begin() as dst:
        tables.create_all(dst)
        for table in tables.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            dst.execute(table.insert(), rows)
    source.dispose()
    target.dispose()


def test_social_care_reads_the_same_from_postgresql_as_from_sqlite(
    postgres_url, generated, monkeypatch
):
    contract = load_contract(CONTRACTS_DIR / "social_care_case_management.yaml")
    from_sqlite = read_source(contract, generated)
    _copy_social_care_to(postgres_url, generated)
    monkeypatch.setenv("CARE_ETL_SOCIAL_CARE_URL", postgres_url)
    from_postgres = read_source(contract, generated)
    assert from_postgres.errors == []
    assert from_postgres.counts["withdrawn"] == from_sqlite.counts["withdrawn"] > 0
    # every column but the lineage's label: PostgreSQL's BOOLEAN and DATE read as SQLite's
    columns = [c for c in from_sqlite.records.columns if c != "_file"]
    left = from_sqlite.records[columns].sort_values("person_id").reset_index(drop=True)
    right = from_postgres.records[columns].sort_values("person_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)
    assert set(right["dob_estimated"].dropna()) == {"0", "1"}


def test_a_run_reading_social_care_from_postgresql_passes_its_checks(
    postgres_url, generated, tmp_path, monkeypatch
):
    """Production's shape: the case management tables in PostgreSQL, with real BOOLEANs.
    Their true and false once read as text the contract's 0-or-1 check refused, and the
    whole feed was blocked."""
    _copy_social_care_to(postgres_url, generated)
    sources = tmp_path / "sources"
    for folder in ("health", "housing", "paper"):
        shutil.copytree(generated / folder, sources / folder)
    monkeypatch.setenv("CARE_ETL_SOCIAL_CARE_URL", postgres_url)
    index = f"sqlite:///{tmp_path / 'index.db'}"
    figures = run_pipeline(sources, CONTRACTS_DIR, index, tmp_path / "reports").figures
    social = figures["sources"]["social_care_case_management"]
    assert social["records_read"] > social["records_withdrawn"] > 0
    kept_out = social["records_quarantined"] + social["records_withdrawn"]
    assert social["records_linked"] == social["records_read"] - kept_out


def _count(conn: sa.Connection, table: str) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_the_whole_run_writes_the_index_to_postgresql_and_a_rerun_keeps_every_id(
    postgres_url, generated, tmp_path, monkeypatch
):
    monkeypatch.setenv("CARE_ETL_PSEUDONYM_KEY", "a key for this test only")
    figures = run_pipeline(generated, CONTRACTS_DIR, postgres_url, tmp_path / "reports").figures
    engine = sa.create_engine(postgres_url)
    ids_query = sa.text(
        "SELECT source, source_record_id, person_id FROM person_source_link ORDER BY 1, 2"
    )
    with engine.connect() as conn:
        persons = _count(conn, "person_index")
        links = _count(conn, "person_source_link")
        assert _count(conn, "pipeline_run") == 1
        for table in ("person_field_value", "person_name_word", "person_address", "household",
                      "relationship"):  # fmt: skip
            assert _count(conn, table) > 0, table
        assert _count(conn, "analyst.analyst_person") == persons
        assert _count(conn, "analyst.analyst_person_source_link") == links
        assert _count(conn, "household_members") > 0
        # involvements on person ids; open worked out by PostgreSQL's date, as by SQLite's
        assert _count(conn, "person_services") > 0
        assert _count(conn, "person_services WHERE is_open AND end_date <= CURRENT_DATE") == 0
        first_ids = conn.execute(ids_query).all()
        someone = conn.execute(sa.text("SELECT person_id, given_name, family_name "
                                       "FROM person_index LIMIT 1")).one()  # fmt: skip
    # `find --name` reads person_name_word by word and by sound, in PostgreSQL's SQL too
    terms = search_terms(None, f"{someone.family_name} {someone.given_name}", None, None)
    for similar in (False, True):
        found = find_persons(postgres_url, terms, similar=similar)
        assert someone.person_id in set(found.loc[~found["similar"], "person_id"])
    assert persons == figures["persons"] > 0
    assert links == sum(f["records_linked"] for f in figures["sources"].values())

    run_pipeline(generated, CONTRACTS_DIR, postgres_url, tmp_path / "reports")
    with engine.connect() as conn:
        assert conn.execute(ids_query).all() == first_ids
        assert _count(conn, "person_id_history") == 0
        assert _count(conn, "pipeline_run") == 2
    engine.dispose()


def test_a_failed_publish_leaves_the_previous_postgresql_index_whole(postgres_url):
    check_a_failed_publish_leaves_the_previous_index_whole(postgres_url)


def test_a_name_word_longer_than_any_column_width_publishes_to_postgresql(postgres_url):
    """A scan read without spaces makes one long word: person_name_word keeps it whole
    (a bounded column would fail the whole publish in PostgreSQL, never in SQLite)."""
    records, assignments, review, quarantine = small_records(2)
    long_word = "Ab" * 150
    records.loc[0, "family_name"] = long_word
    tables = build_index(records, assignments, review, quarantine).as_dict()
    publish_small_index(postgres_url, tables, "run-1")
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT word FROM person_name_word")).scalars().all()
    engine.dispose()
    assert long_word.upper() in held


def test_the_analyst_role_reads_the_pseudonymised_tables_and_is_refused_the_full_ones(
    postgres_url,
):
    with pytest.raises(CareEtlError, match="holds no index yet: run care-etl run into it first"):
        create_roles(postgres_url)  # its tables would belong to whoever creates the roles
    publish_small_index(postgres_url, small_index(6), "run-1")
    create_roles(postgres_url)
    create_roles(postgres_url)  # again: nothing fails, nothing changes
    publish_small_index(postgres_url, small_index(8), "run-2")  # grants survive a publish
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        conn.execute(sa.text("SET ROLE care_etl_analyst"))
        assert _count(conn, "analyst.analyst_person") == 8
        assert _count(conn, "analyst.analyst_household") == 8
        assert _count(conn, "analyst_person") == 8  # as the guide names it, and SQLite does
    full = ("person_index", "person_source_link", "household_members", "relationship",
            "service_involvement", "person_services")  # fmt: skip
    for table in full:
        with engine.connect() as conn:
            conn.execute(sa.text("SET ROLE care_etl_analyst"))
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied") as refused:
                _count(conn, table)
        # In one line, as care-etl says it (household, review, publish): no value in it.
        kind = "view" if table in ("household_members", "person_services") else "table"
        assert why(refused.value) == f"permission denied for {kind} {table} (ProgrammingError)"
    with engine.connect() as conn:
        conn.execute(sa.text("SET ROLE care_etl_engineer"))
        assert _count(conn, "person_index") == 8
        assert _count(conn, "analyst.analyst_person") == 8
        # the engineer logs accesses but can rewrite none: the log is who looked at whom
        conn.execute(sa.text("INSERT INTO access_log (accessed_at, command, os_user) "
                             "VALUES (now(), 'test', 'engineer')"))  # fmt: skip
        for change in ("DELETE FROM access_log", "UPDATE access_log SET os_user = 'x'"):
            denied = pytest.raises(sa.exc.ProgrammingError, match="permission denied")
            with denied, conn.begin_nested():
                conn.execute(sa.text(change))
    engine.dispose()


def test_without_a_pseudonym_key_production_gets_no_analyst_rows(postgres_url, monkeypatch):
    records, assignments, review, quarantine = small_records(5)
    staged = [SimpleNamespace(records=records, quarantine=quarantine, declared={})]
    linked = SimpleNamespace(assignments=assignments, review=review)
    monkeypatch.setenv("CARE_ETL_PSEUDONYM_KEY", "a key for this test only")
    made = make_index(staged, linked, database_url=postgres_url, run_id="run-1")
    publish_index(made, postgres_url, run_id="run-1", figures={})
    monkeypatch.delenv("CARE_ETL_PSEUDONYM_KEY")
    made = make_index(staged, linked, database_url=postgres_url, run_id="run-2")
    assert made.analyst is None
    publish_index(made, postgres_url, run_id="run-2", figures={})
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert _count(conn, "person_index") == 5
        assert _count(conn, "analyst.analyst_person") == 0  # the keyed rows of run 1 are gone
    engine.dispose()


def test_roles_need_postgresql(tmp_path):
    with pytest.raises(CareEtlError, match="roles need PostgreSQL"):
        create_roles(f"sqlite:///{tmp_path / 'i.db'}")
