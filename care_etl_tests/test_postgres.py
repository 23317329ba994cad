"""The same run against the machine's PostgreSQL: social care read from it, the index written to it."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.contracts import load_contract
from care_etl.pipeline import run_pipeline
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR

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
    columns = ["person_id", "surname", "date_of_birth", "addresses.postcode", "_withdrawn"]
    left = from_sqlite.records[columns].sort_values("person_id").reset_index(drop=True)
    right = from_postgres.records[columns].sort_values("person_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)


def test_the_whole_run_writes_the_index_to_postgresql(postgres_url, generated, tmp_path):
    figures = run_pipeline(generated, CONTRACTS_DIR, postgres_url, tmp_path / "reports").figures
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        persons = conn.execute(sa.text("SELECT count(*) FROM person_index")).scalar_one()
        links = conn.execute(sa.text("SELECT count(*) FROM person_source_link")).scalar_one()
        runs = conn.execute(sa.text("SELECT count(*) FROM pipeline_run")).scalar_one()
    engine.dispose()
    assert persons == figures["persons"] > 0
    assert links == sum(f["records_linked"] for f in figures["sources"].values())
    assert runs == 1
