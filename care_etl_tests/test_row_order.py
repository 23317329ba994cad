"""The same sources with their rows in another order give the same index.

A system exports its records in whatever order its query returns them; the index must not
care. Every GP file's rows are turned upside down and every run is full: persons, ids, links
with their probabilities, review pairs with their evidence, golden values, addresses,
households, relationships and the analyst tables must be those of the file order. Only a
record's lineage (its row number) may differ.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.index.publish import ANALYST_SCHEMA, ANALYST_TABLES, INDEX_TABLES
from care_etl.pipeline import run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.incremental.changes import read_csv_rows
from care_etl_tests.incremental.environment import lasting_pseudonym_key

pytestmark = pytest.mark.slow

#: Columns that say where a row was read or when it was written, not what the index holds.
PLACE_AND_TIME = {"lineage", "queued_at"}


def _upside_down(sources: Path) -> int:
    """Every GP file's rows in reverse order, header first, in the file's own encoding."""
    turned = 0
    for path in sorted((sources / "health").glob("gp_registrations_*.csv")):
        rows, encoding = read_csv_rows(path)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([rows[0], *reversed(rows[1:])])
        path.write_bytes(out.getvalue().encode(encoding))
        turned += len(rows) - 1
    return turned


def _index(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(schema_translate_map={ANALYST_SCHEMA: None})
            frames = {
                t.name: pd.read_sql(t.select(), conn) for t in (*INDEX_TABLES, *ANALYST_TABLES)
            }
    finally:
        engine.dispose()
    out = {}
    for name, frame in frames.items():
        kept = frame.drop(columns=[c for c in frame if c in PLACE_AND_TIME])
        order = kept.astype(str).sort_values(list(kept.columns)).index
        out[name] = kept.loc[order].reset_index(drop=True)
    return out


def test_rows_in_another_order_give_the_same_index(tmp_path: Path) -> None:
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "in_order" / "sources", people=600, seed=31, scans=0)
    shutil.copytree(tmp_path / "in_order", tmp_path / "turned")
    assert _upside_down(tmp_path / "turned" / "sources") > 500
    urls = {}
    with lasting_pseudonym_key("row-order-test-key-not-a-secret"):
        for name in ("in_order", "turned"):
            folder = tmp_path / name
            urls[name] = f"sqlite:///{folder / 'index.db'}"
            run_pipeline(folder / "sources", CONTRACTS_DIR, urls[name], folder / "reports")
    expected, found = _index(urls["in_order"]), _index(urls["turned"])
    assert len(expected["review_queue"]) and len(expected["household"])
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, rtol=1e-12, obj=name)
