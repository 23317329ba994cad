"""Record snapshots when rows move: lineage updated in place, changed records rewritten.

Removing rows from a CSV or a sheet renumbers every later row's lineage (file and line).
Such a record is the same record: its snapshot keeps its values and takes the new lineage
and updated_at, as a rewrite would, without being deleted and built again. The table after
a sync must be what a sync into an empty table gives, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.review import store
from care_etl_tests.review.test_snapshot import people, stored, sync

FIRST, SECOND = dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 2, 9)
KEY = ["source", "source_record_id"]


def numbered(records: pd.DataFrame) -> pd.DataFrame:
    """Lineage as the readers write it: each source a file, each record a line in order."""
    line = records.groupby("source").cumcount() + 2
    return records.assign(lineage=records["source"] + "/extract.csv row " + line.astype(str))


def expected_table(records: pd.DataFrame) -> pd.DataFrame:
    """What a sync into an empty table stores (but updated_at)."""
    out = store.snapshot(records).assign(shown_print=store.shown_prints(records).to_numpy())
    return out.sort_values(KEY).reset_index(drop=True)


def keys_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["source"], frame["source_record_id"], strict=True))


def rowids(url: str) -> dict[tuple[str, str], int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT source, source_record_id, rowid FROM review_record")
            )
            return {(s, i): r for s, i, r in rows}
    finally:
        engine.dispose()


def check_rows_removed_above(url: str) -> None:
    """Sync, then remove two early health rows, change one later record and a shown field of
    another: the records after them take their new lineage, the rest are as they were."""
    records = numbered(people())
    assert sync(url, records, FIRST) == len(records)
    before = rowids(url) if url.startswith("sqlite") else {}
    health = records.index[records["source"] == "health"]
    removed, changed, shown = health[[1, 2]], health[10], health[11]
    edited = records.drop(index=removed)
    edited.loc[changed, "family_name"] = "Renamed"
    edited.loc[shown, "date_of_death"] = pd.Timestamp("2025-03-04")
    edited = numbered(edited)

    moved_only = (edited["lineage"] != records.loc[edited.index, "lineage"]) & ~edited.index.isin(
        [changed, shown]
    )
    assert moved_only.sum() > 100  # every health record after the removed rows
    assert sync(url, edited, SECOND) == len(removed) + 2 + moved_only.sum()

    table = stored(url)
    expected = expected_table(edited)
    assert table.drop(columns="updated_at").equals(expected[table.columns.drop("updated_at")])
    rewritten = keys_of(table[table["updated_at"] == SECOND])
    moved = keys_of(edited[moved_only])
    assert rewritten == moved | keys_of(edited.loc[[changed, shown]])
    assert keys_of(records.loc[removed]).isdisjoint(keys_of(table))
    row = table.set_index(KEY).loc[tuple(edited.loc[changed, KEY])]
    assert json.loads(row["standardised"])["family_name"] == "Renamed"
    row = table.set_index(KEY).loc[tuple(edited.loc[shown, KEY])]
    assert json.loads(row["standardised"])["date_of_death"] == "2025-03-04"
    assert sync(url, edited, SECOND) == 0
    if before:  # updated in place, not deleted and inserted: only so a row keeps its rowid
        after = rowids(url)
        kept = moved | (keys_of(table) - rewritten)
        assert {k: after[k] for k in kept} == {k: before[k] for k in kept}


def test_rows_removed_above_move_records_in_place_on_sqlite(tmp_path):
    check_rows_removed_above(f"sqlite:///{tmp_path / 'index.db'}")


@pytest.mark.postgres
def test_rows_removed_above_move_records_in_place_on_postgresql(postgres_url: str):
    check_rows_removed_above(postgres_url)


def test_lineage_is_left_out_of_the_shown_print_and_json_types_are_not():
    records = numbered(people())
    before = store.shown_prints(records)
    assert store.shown_prints(records.assign(lineage="elsewhere row 9")).equals(before)
    for field in store._SHOWN_ONLY:
        changed = records.copy()
        changed[field] = changed[field].astype(object)
        changed.loc[0, field] = "2001-01-01" if field == "date_of_death" else True
        after = store.shown_prints(changed)
        assert after.iloc[0] != before.iloc[0], field
        assert after.iloc[1:].equals(before.iloc[1:]), field
    text = records.assign(title=records["title"].astype(object))
    text.loc[0, "title"] = "True"
    assert store.shown_prints(text).iloc[0] != store.shown_prints(changed).iloc[0]
    assert before.str.fullmatch("[0-9a-f]{16}").all()


def old_shown_prints(records: pd.DataFrame) -> list[str]:
    """The shown print an earlier release stored: it hashed the lineage in, as str."""
    fields = ["title", "ni_number", "date_of_death", "relationship_to_head", "lineage"]
    frame = pd.DataFrame({f: records[f].astype(str) for f in fields})
    return [f"{h:016x}" for h in pd.util.hash_pandas_object(frame, index=False)]


def test_an_earlier_release_s_shown_prints_are_rewritten_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'index.db'}"
    records = numbered(people())
    rows = store.snapshot(records).assign(shown_print=old_shown_prints(records), updated_at=FIRST)
    with store.connect(url) as conn:
        conn.execute(store.review_record.insert(), rows.to_dict("records"))
    assert sync(url, records, SECOND) == len(records)
    table = stored(url)
    assert table.drop(columns="updated_at").equals(
        expected_table(records)[table.columns.drop("updated_at")]
    )
    assert sync(url, records, SECOND) == 0


def test_the_update_for_old_sqlite_writes_what_update_from_writes(tmp_path):
    urls = [f"sqlite:///{tmp_path / name}" for name in ("from.db", "each.db")]
    records = numbered(people())
    moved = [(s, i, f"moved row {n}") for n, (s, i) in enumerate(records[KEY].to_numpy()[::3])]
    for url, move in zip(urls, (store._move, store._move_each), strict=True):
        sync(url, records, FIRST)
        with store.connect(url) as conn:
            move(conn, moved, SECOND)
    first, second = stored(urls[0]), stored(urls[1])
    assert first.equals(second)
    assert (first["updated_at"] == SECOND).sum() == len(moved)
    assert first["lineage"].str.startswith("moved row").sum() == len(moved)
