"""Record snapshots: fingerprints decisions can still be compared with, and a delta sync.

Decisions already stored hold fingerprints made by the first (per-value) implementation, so
the vectorised one must give the very same SHA-256 text: the pinned digests below were made
by it. review_record is synced on SQLite and on the machine's PostgreSQL: a rerun writes only
the records whose fingerprint is new and removes only those changed or gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.review import store
from care_etl_tests.linkage.people import crowd

#: Made by the per-value implementation that stored the decisions of existing databases.
PINNED = [
    "df7d7d1f06302b792caa8c8e6e9009b46bcbe1645b307b9964ece608dde0de0a",
    "d65d7065601948169492601af6ba30bb189b9be22f389ebf9c29d15ff0e17448",
    "e02a44000417287e187f013c0e64efd2d1b67dd99a398cee1e5bd8b1909c9750",
    "ed24c00a91dac5e5263e6a2c0219fa341eeafdea64d6442a9bcbef788950ba95",
]


def awkward() -> pd.DataFrame:
    """Values that JSON escapes or types: quotes, control and non-ASCII text, numbers, dates."""
    return pd.DataFrame(
        {
            "source": ["health", "housing", "social_care", "paper"],
            "source_record_id": ["GP-1", "H/2", "SC 3", "scan.pdf#1"],
            "nhs_number": ["9434765919", None, np.nan, "943 476 5870"],
            "given_name": ["Zoë", 'Quote"d', "Back\\slash", "Tab\there"],
            "middle_names": [None, "Ann-Marie", "O'Neill", "\u00e9\u4e2d"],
            "family_name": ["Smith", "DEL\x7fx", "Line\nbreak", "Plain"],
            "other_names": [pd.NA, None, "Smyth", ""],
            "date_of_birth": pd.to_datetime(
                ["1944-02-17", None, "1969-12-31 23:00", "1900-01-01"], format="ISO8601"
            ),
            "dob_estimated": [True, None, False, np.nan],
            "sex": ["F", "M", None, "U"],
            "postcode": ["E5 0QQ", "N1 9GU", None, "E8 1AB"],
            "uprn": [100021234567, None, np.float64(1.5), "10001"],
            "address": ["1 High St", None, "Flat 2, 3 Road", "  "],
            "title": ["Ms", None, "Dr", None],
            "ni_number": ["QQ123456C", None, None, None],
            "date_of_death": pd.to_datetime([None, None, "2020-05-01", None]),
            "relationship_to_head": [None, "Head", None, "Child"],
            "lineage": ["a.csv row 2", "b.xlsx row 3", None, "scan.pdf page 1"],
        }
    )


def people() -> pd.DataFrame:
    """A few hundred standardised records, plus the awkward ones."""
    return pd.concat([crowd().drop(columns="person"), awkward()], ignore_index=True)


def one_by_one(records: pd.DataFrame) -> pd.DataFrame:
    """The definition, value by value: the SHA-256 of the key and each linkage field as JSON."""

    def text(value: object) -> str:
        encoded = json.dumps(store._plain(value), default=str)
        return "" if encoded == "null" else encoded

    prints, bodies = [], []
    for row in records.to_dict("records"):
        parts = [str(row["source"]), str(row["source_record_id"])]
        parts += [text(row.get(f)) for f in store.LINKAGE_FIELDS]
        prints.append(hashlib.sha256("\x1f".join(parts).encode()).hexdigest())
        shown = {f: text(row.get(f)) for f in store.SHOWN_FIELDS}
        bodies.append("{" + ", ".join(f'"{f}": {v}' for f, v in shown.items() if v) + "}")
    return pd.DataFrame({"fingerprint": prints, "standardised": bodies})


def test_fingerprints_are_the_ones_stored_decisions_hold():
    assert store.fingerprints(awkward())["fingerprint"].tolist() == PINNED


def test_snapshot_equals_encoding_each_value_on_its_own():
    records = people()
    expected = one_by_one(records)
    got = store.snapshot(records)
    assert got["fingerprint"].tolist() == expected["fingerprint"].tolist()
    assert got["standardised"].tolist() == expected["standardised"].tolist()
    assert got["lineage"].tolist()[-4:] == ["a.csv row 2", "b.xlsx row 3", None, "scan.pdf page 1"]
    shown = json.loads(got["standardised"].iloc[-2])
    assert shown["date_of_birth"] == "1969-12-31"  # the date, whatever the time of day
    assert shown["family_name"] == "Line\nbreak"
    assert "nhs_number" not in shown


@pytest.mark.parametrize("field", store.LINKAGE_FIELDS)
def test_a_change_to_any_linkage_field_changes_the_fingerprint(field: str):
    records = awkward()
    before = store.fingerprints(records)["fingerprint"]
    changed = records.copy()
    if field == "date_of_birth":
        changed.loc[0, field] = pd.Timestamp("1944-02-18")
    else:
        changed[field] = changed[field].astype(object)
        changed.loc[0, field] = "something else"
    after = store.fingerprints(changed)["fingerprint"]
    assert after.iloc[0] != before.iloc[0]
    assert after.iloc[1:].tolist() == before.iloc[1:].tolist()


def test_fields_linkage_does_not_read_leave_the_fingerprint_alone():
    records = awkward()
    changed = records.assign(title="Prof", ni_number="QQ000000A", lineage="moved row 9")
    assert store.fingerprints(changed).equals(store.fingerprints(records))


def stored(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = pd.read_sql_table("review_record", conn)
    finally:
        engine.dispose()
    return table.sort_values(["source", "source_record_id"]).reset_index(drop=True)


def sync(url: str, records: pd.DataFrame, at: dt.datetime) -> int:
    with store.connect(url) as conn:
        return store.sync_records(conn, records, store.fingerprints(records), at)


def check_delta_sync(url: str) -> None:
    first, second = dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 2, 9)
    records = people()
    assert sync(url, records, first) == len(records)
    assert sync(url, records, second) == 0  # nothing changed: nothing written
    assert (stored(url)["updated_at"] == first).all()

    edited = records.copy()
    edited.loc[0, "given_name"] = "Edited"  # changed
    edited.loc[1, "title"] = "Dr"  # shown, not linked on: rewritten, fingerprint kept
    edited = edited.drop(index=2)  # gone
    added = records.iloc[[3]].assign(source_record_id="NEW-1")  # new
    edited = pd.concat([edited, added], ignore_index=True)
    assert sync(url, edited, second) == 4

    table = stored(url)
    expected = store.snapshot(edited).sort_values(["source", "source_record_id"])
    expected = expected.reset_index(drop=True)
    assert table["fingerprint"].tolist() == expected["fingerprint"].tolist()
    rewritten = table[table["updated_at"] == second]
    keys = set(zip(rewritten["source"], rewritten["source_record_id"], strict=True))
    assert keys == {
        tuple(records.loc[0, ["source", "source_record_id"]]),
        tuple(records.loc[1, ["source", "source_record_id"]]),
        (added.iloc[0, 0], "NEW-1"),
    }
    titled = table[table["source_record_id"] == records.loc[1, "source_record_id"]]
    titled = titled[titled["source"] == records.loc[1, "source"]].iloc[0]
    assert json.loads(titled["standardised"])["title"] == "Dr"
    assert titled["fingerprint"] == store.fingerprints(records)["fingerprint"].iloc[1]
    row = table[table["source_record_id"] == records.loc[0, "source_record_id"]]
    row = row[row["source"] == records.loc[0, "source"]].iloc[0]
    assert json.loads(row["standardised"])["given_name"] == "Edited"
    assert sync(url, edited, second) == 0


def test_sync_writes_only_the_delta_on_sqlite(tmp_path):
    check_delta_sync(f"sqlite:///{tmp_path / 'index.db'}")


def test_sync_writes_only_the_delta_on_postgresql(postgres_url: str):
    check_delta_sync(postgres_url)


def test_an_earlier_release_s_review_records_gain_the_shown_print(tmp_path):
    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE review_record (source VARCHAR(100), source_record_id "
                "VARCHAR(200), fingerprint VARCHAR(64) NOT NULL, standardised TEXT NOT NULL, "
                "lineage TEXT, updated_at DATETIME NOT NULL, "
                "PRIMARY KEY (source, source_record_id))"
            )
        )
    engine.dispose()
    records = people()
    at = dt.datetime(2026, 1, 1, 9)
    assert sync(url, records, at) == len(records)
    assert stored(url)["shown_print"].notna().all()
    assert sync(url, records, at) == 0
