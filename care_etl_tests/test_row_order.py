"""The same sources with their rows in another order give the same index.

A system exports its records in whatever order its query returns them; the index must not
care. Every GP file's rows are turned upside down and every run is full: persons, ids, links
with their probabilities, review pairs with their evidence, golden values, addresses,
households, relationships and the analyst tables must be those of the file order. Only a
record's lineage (its row number) may differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from care_etl.index.publish import ANALYST_TABLES, INDEX_TABLES
from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows
from care_etl_tests.incremental.environment import index_each, published_tables

pytestmark = pytest.mark.slow

#: Columns that say where a row was read or when it was written, not what the index holds.
PLACE_AND_TIME = {"lineage", "queued_at"}


def _upside_down(sources: Path) -> int:
    """Every GP file's rows in reverse order, header first, in the file's own encoding."""
    turned = 0
    for path in sorted((sources / "health").glob("gp_registrations_*.csv")):
        rows, encoding = read_csv_rows(path)
        write_csv_rows(path, [rows[0], *reversed(rows[1:])], encoding)
        turned += len(rows) - 1
    return turned


def test_rows_in_another_order_give_the_same_index(tmp_path: Path) -> None:
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "in_order" / "sources", people=600, seed=31, scans=0)
    shutil.copytree(tmp_path / "in_order", tmp_path / "turned")
    assert _upside_down(tmp_path / "turned" / "sources") > 500
    folders = (tmp_path / "in_order", tmp_path / "turned")
    urls = index_each(folders, "row-order-test-key-not-a-secret")
    tables = (*INDEX_TABLES, *ANALYST_TABLES)
    expected, found = (published_tables(urls[n], tables, PLACE_AND_TIME) for n in urls)
    assert len(expected["review_queue"]) and len(expected["household"])
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, rtol=1e-12, obj=name)
