"""Publish only the persons whose rows changed; every other row stays as it is in the table.

This is the writer of a whole index build (the first run, or one whose index state could
not be used): it finds the changed persons by comparing signatures of every row. An
incremental run builds only the affected persons' rows in the first place and publishes
them with care_etl.incremental.index.PersonWrite instead, which needs no signature (this
file is then stale, and the next whole build replaces every table).

For each person-keyed table, each person's rows get a signature (a sum of 64-bit hashes of
the rows as published); a person whose signature is unchanged since the last publish keeps
their rows, the others' rows are deleted and inserted again, in one single transaction.

A signature file is only trusted for the database whose latest published run is the one
that wrote it (`pipeline_run`): any other database, a publish made without the file, or a
crash between commit and writing the file makes every table be replaced whole, as a full
run does. The file holds hashes and person ids (which are in the index anyway), no value.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from care_etl.incremental.state import UNREADABLE, write_atomic

log = logging.getLogger(__name__)

#: How publish() inserts a table's rows; a writer of deltas (PublishDelta, PersonWrite) is
#: handed it for the rows it inserts.
Insert = Callable[[sa.Connection, sa.Table, pd.DataFrame | None], None]

SIGNATURES_FILE = "published.npz"
#: Tables written person by person, and the column that names the person.
PERSON_KEYS = {
    "person_index": "person_id",
    "person_source_link": "person_id",
    "person_field_value": "person_id",
    "person_name_word": "person_id",
    "person_address": "person_id",
    "household": "person_id",
    "relationship": "person_id",
    "analyst_person": "person_key",
    "analyst_person_source_link": "person_key",
    "analyst_household": "person_key",
    "analyst_relationship": "person_key",
}
_CHUNK = 500
#: Above this share of persons to rewrite, replacing the table whole is faster than deleting
#: person by person (some tables have no index on the person column).
MAX_SHARE = 0.2
#: pandas' default key: the hashes published signatures and index states were written with.
_HASH_KEY = "0123456789123456"


def row_hashes(frame: pd.DataFrame, columns: list[str], hash_key: str = _HASH_KEY) -> np.ndarray:
    """A 64-bit hash per row of these columns; each distinct value of a column is hashed once.
    Another `hash_key` (16 characters) gives an independent hash."""
    return np.ascontiguousarray(row_hashes_under(frame, columns, (hash_key,))[:, 0])


def row_hashes_under(
    frame: pd.DataFrame, columns: list[str], hash_keys: tuple[str, ...]
) -> np.ndarray:
    """`row_hashes` under each of several hash keys (shape rows x keys), finding each column's
    distinct values once for all keys."""
    combined = np.zeros((len(frame), len(hash_keys)), dtype=np.uint64)
    for name in columns:
        if name in frame.columns:
            codes, uniques = _factorize(frame[name])
            uniques = np.asarray(uniques)
            hashed = np.stack(
                [np.append(_value_hashes(uniques, key), _MISSING) for key in hash_keys], axis=1
            )
            values = hashed[codes]  # code -1 (missing) picks _MISSING
        else:
            values = np.full((len(frame), len(hash_keys)), _MISSING, dtype=np.uint64)
        with np.errstate(over="ignore"):
            combined = combined * _PRIME ^ values
    return combined


def _factorize(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values; values that cannot be hashed (a list) by their text."""
    try:
        return pd.factorize(column, use_na_sentinel=True)
    except TypeError:
        return pd.factorize(column.map(repr, na_action="ignore"), use_na_sentinel=True)


#: Hash of a missing value, and the multiplier that chains columns (FNV's 64-bit prime).
_MISSING = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)


def _value_hashes(uniques: np.ndarray, hash_key: str) -> np.ndarray:
    """pandas' hash of each distinct value: in C for text or numbers alone, else of a text
    form that names the value's type (an int 1 and a text "1" hash apart)."""
    kinds = {type(u) for u in uniques} if uniques.dtype == object else set()
    if uniques.dtype != object or kinds <= {str}:
        return pd.util.hash_array(uniques, hash_key=hash_key)
    texts = np.array([_text(u) for u in uniques], dtype=object)
    return pd.util.hash_array(texts, hash_key=hash_key)


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    return f"{type(value).__name__}:{value}"


def delete_persons(conn: sa.Connection, table: sa.Table, key: str, persons: list) -> None:
    """Delete these persons' rows, a few hundred ids a statement (SQLite: thousands, as
    it takes 32766 parameters a statement, and fewer scans of tables with no index)."""
    chunk = 30_000 if conn.dialect.name == "sqlite" else _CHUNK
    for start in range(0, len(persons), chunk):
        conn.execute(table.delete().where(table.c[key].in_(persons[start : start + chunk])))


def signatures(frame: pd.DataFrame, key: str, columns: list[str]) -> pd.Series:
    """Per person (key value): the sum, modulo 2**64, of their rows' hashes."""
    if frame is None or frame.empty:
        return pd.Series(dtype=np.uint64)
    hashes = row_hashes(frame, columns)
    # Grouped on integer codes: sorting the key texts themselves took six times as long.
    codes, persons = pd.factorize(frame[key].astype(str).to_numpy())
    order = np.argsort(codes, kind="stable")
    codes, hashes = codes[order], hashes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return pd.Series(np.add.reduceat(hashes, starts), index=persons, dtype=np.uint64)


@dataclass
class PublishDelta:
    """Handed to publish(): writes a table person by person when it safely can."""

    folder: Path | None
    previous: dict[str, pd.Series] = field(default_factory=dict)
    previous_run: str | None = None
    current: dict[str, pd.Series] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"persons_rewritten": 0})
    _trusted: bool | None = None

    @classmethod
    def load(cls, folder: Path | None) -> PublishDelta:
        delta = cls(folder)
        path = None if folder is None else folder / SIGNATURES_FILE
        if path is None or not path.is_file():
            return delta
        try:
            with np.load(path, allow_pickle=False) as stored:
                delta.previous_run = str(stored["run_id"])
                for name in PERSON_KEYS:
                    if f"{name}:keys" in stored.files:
                        delta.previous[name] = pd.Series(
                            stored[f"{name}:sums"], index=stored[f"{name}:keys"]
                        )
        except (*UNREADABLE, KeyError) as exc:
            log.warning("incremental: publish signatures unreadable (%s); writing whole", exc)
            delta.previous, delta.previous_run = {}, None
        return delta

    def write(
        self,
        conn: sa.Connection,
        table: sa.Table,
        frame: pd.DataFrame | None,
        insert: Insert,
    ) -> bool:
        """Write the table's changed persons; False when it must be replaced whole instead."""
        key = PERSON_KEYS.get(table.name)
        if key is None or frame is None:
            return False
        columns = [c.name for c in table.columns]
        now = signatures(frame, key, columns)
        self.current[table.name] = now
        before = self.previous.get(table.name)
        if before is None or not self._trust(conn):
            return False
        where = before.reindex(now.index)
        changed = now.index[where.isna().to_numpy() | (where.to_numpy() != now.to_numpy())]
        gone = before.index[~before.index.isin(now.index)]
        stale = [*changed.intersection(before.index), *gone]
        if len(stale) > MAX_SHARE * max(len(before), 1):
            # most persons changed (a new pseudonym key, say): whole is faster
            log.info("publish: %s: %d of %d persons changed, written whole",
                     table.name, len(stale), len(before))  # fmt: skip
            if table.name == "person_index":  # every person written again, none kept
                self.counts["persons_rewritten"] = len(now)
                self.counts["persons_kept"] = 0
            return False
        delete_persons(conn, table, key, stale)
        insert(conn, table, frame[frame[key].astype(str).isin(set(changed))])
        self.counts["tables_written_by_person"] = self.counts.get("tables_written_by_person", 0) + 1
        if table.name == "person_index":
            self.counts["persons_rewritten"] = len(changed) + len(gone)
            self.counts["persons_kept"] = len(now) - len(changed)
        return True

    def _trust(self, conn: sa.Connection) -> bool:
        """Whether the tables hold exactly what the signature file describes."""
        if self._trusted is None:
            from care_etl.index.publish import latest_run

            latest = latest_run(conn)
            self._trusted = latest is not None and latest == self.previous_run
        return self._trusted

    @property
    def used(self) -> bool:
        """Whether some table was written person by person in this publish."""
        return self.counts.get("tables_written_by_person", 0) > 0

    def save(self, run_id: str) -> None:
        """After the commit: the signatures of what this run published."""
        if self.folder is None:
            return
        arrays: dict[str, np.ndarray] = {"run_id": np.array(run_id)}
        for name, sums in self.current.items():
            arrays[f"{name}:keys"] = sums.index.to_numpy(dtype=str)
            arrays[f"{name}:sums"] = sums.to_numpy(np.uint64)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self.folder / SIGNATURES_FILE, buffer.getvalue())
