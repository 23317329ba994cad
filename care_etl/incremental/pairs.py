"""The comparison levels of last run's candidate pairs, reused for pairs of unchanged records.

A pair's levels depend only on the two records' linkage fields and on their name context
(compare.name_context: whether each of their names is used more as a forename than as a
surname across all records, which decides which record of a crosswise pair was written the
wrong way round), so a pair whose two records have the same fingerprint and context as
last run, in either order (the comparison is symmetric), has the same levels. Blocking
still runs over every record (a new record can push two old ones out of each other's
sorted-names window, or grow a block past its size limit), so the candidate pairs are exactly a full run's; only the comparing of
pairs already compared is saved. The model is applied as kept (kept.py) or estimated
again on all levels, so the links, review pairs and probabilities are those of a full
recomputation on the same records with the same model.

Stored as flat numpy arrays (`pairs.npz`, read with allow_pickle=False, so loading it can
never run code): each record's 64-bit fingerprint (the first 64 bits of its review
fingerprint, care_etl.review.store), the pairs as positions into those, and one array per
level column. Not compressed: 4.9 million pairs are about 100 MB, written in a few tenths
of a second, where compressing them to a quarter takes ten seconds.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from care_etl.incremental.state import UNREADABLE, write_atomic

log = logging.getLogger(__name__)

PAIRS_FILE = "pairs.npz"
_KEYS = ("source", "source_record_id")


def fingerprints(records: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per record of its key and every field linkage reads, in input order."""
    from care_etl.review.store import fingerprints as record_fingerprints

    return as_numbers(record_fingerprints(records)["fingerprint"])


def as_numbers(hex_prints: pd.Series) -> np.ndarray:
    """The first 64 bits of each record's review fingerprint (care_etl.review.store).

    One hash serves both: the review fingerprint already covers the key and every field
    linkage reads (each value's JSON text, dates as dates whether read as text or as
    dates), and computing it once saves a pass over every record on every run.
    """
    return np.array([int(h[:16], 16) for h in hex_prints], dtype=np.uint64)


def with_context(prints: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Fingerprints that change with the record's name context (compare.name_context)."""
    with np.errstate(over="ignore"):
        return prints ^ (context.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def _is_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


@dataclass
class PairCache:
    """Hands linkage the levels of pairs it compared before; compares only the others.

    Pass it as `link_records(..., reuse=cache)`; afterwards `save` keeps this run's pairs
    for the next, and `counts` says what was reused (counts only).
    """

    records: pd.DataFrame
    #: Last run's state, or None for a full run.
    previous: dict[str, np.ndarray] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    _current: dict[str, np.ndarray] | None = None
    #: Per record: its fingerprint with its name context (set by `compare`).
    _keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: The records' fingerprints (`fingerprints`), when the caller has them already.
    prints: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.prints is None:
            self.prints = fingerprints(self.records)
        if len(np.unique(self.prints)) != len(self.prints):  # a collision: trust nothing
            log.warning("incremental: record fingerprints collide; comparing every pair")
            self.previous = None

    @classmethod
    def load(
        cls, folder: Path | None, records: pd.DataFrame, prints: np.ndarray | None = None
    ) -> PairCache:
        """The cache of the run before (none when `folder` is None or holds nothing)."""
        previous = None
        if folder is not None and (folder / PAIRS_FILE).is_file():
            try:
                with np.load(folder / PAIRS_FILE, allow_pickle=False) as stored:
                    previous = {name: stored[name] for name in stored.files}
            except UNREADABLE as exc:
                log.warning("incremental: pair cache unreadable (%s); comparing every pair", exc)
        return cls(records, previous, prints=prints)

    def compare(
        self,
        prepared: pd.DataFrame,
        pairs: pd.MultiIndex | tuple[np.ndarray, np.ndarray],
        fields: list[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """compare.compare's result, taking the levels of pairs compared before from the cache.

        `pairs` are (left, right) positions, or a MultiIndex whose level values are."""
        from care_etl.linkage.compare import compare, name_context

        if len(prepared) != len(self.prints):
            raise ValueError("pair cache: records and prepared records differ in length")
        if isinstance(pairs, tuple):
            left, right = (np.asarray(side, dtype=np.int64) for side in pairs)
        else:  # positions are the level values (a MultiIndex's codes index its levels)
            left = pairs.get_level_values(0).to_numpy(np.int64)
            right = pairs.get_level_values(1).to_numpy(np.int64)
        # Address history and dates are read by comparison but not by the review
        # fingerprint (a decision should not go stale for them): fold them in here.
        history = prepared["history_print"].to_numpy(np.uint64)
        self._keys = with_context(self.prints ^ history, name_context(prepared))
        hit = self._hits(left, right, fields)
        todo = np.flatnonzero(hit < 0)
        fresh = compare(prepared, (left[todo], right[todo]), fields)
        if len(todo) < len(left) and not self._has_columns(fresh):
            todo = np.arange(len(left))
            fresh = compare(prepared, (left, right), fields)
        levels = fresh if len(todo) == len(left) else self._assemble(fresh, todo, hit)
        if progress:
            progress(len(left), len(left))
        self.counts = {
            "pairs_reused": int(len(left) - len(todo)),
            "pairs_compared": int(len(todo)),
            **self._record_counts(),
        }
        self._current = {
            "prints": self._keys,
            "left": left.astype(np.int32),
            "right": right.astype(np.int32),
            "fields": np.array(fields, dtype=str),
            "columns": np.array(list(levels.columns), dtype=str),
            **{f"level:{c}": levels[c].to_numpy() for c in levels.columns},
        }
        return levels

    def _hits(self, left: np.ndarray, right: np.ndarray, fields: list[str]) -> np.ndarray:
        """Per current pair, its row in the cache (same records, same order), else -1."""
        hit = np.full(len(left), -1, dtype=np.int64)
        old = self.previous
        if old is None or not len(left) or list(old["fields"]) != list(fields):
            return hit
        # Where each record of the last run sits now (-1: gone or changed).
        keys = pd.Index(self._keys)
        if not keys.is_unique:  # a collision: trust nothing
            return hit
        now = keys.get_indexer(old["prints"])
        a, b = now[old["left"]], now[old["right"]]
        usable = np.flatnonzero((a >= 0) & (b >= 0))
        n = len(self._keys)
        # A pair is found whichever of its records now comes first: its levels do not
        # depend on the order (compare.py compares both ways; test_pairs.py checks it), and
        # a file exported in another order turns many pairs round.
        a, b = a[usable], b[usable]
        cached = np.minimum(a, b)
        cached *= n
        cached += np.maximum(a, b)
        del a, b
        codes = np.minimum(left, right)
        codes *= n
        codes += np.maximum(left, right)
        # Blocking gives the pairs sorted: no need to sort them again. The last run's come
        # sorted too when the records kept their order, and searching sorted needles runs
        # through memory in order, several times quicker than shuffled ones.
        order = None if _is_sorted(codes) else np.argsort(codes, kind="stable")
        ordered = codes if order is None else codes[order]
        found = np.searchsorted(ordered, cached)
        np.minimum(found, len(codes) - 1, out=found)
        same = ordered[found] == cached
        rows = found[same]
        hit[rows if order is None else order[rows]] = usable[same]
        return hit

    def _has_columns(self, fresh: pd.DataFrame) -> bool:
        """Whether the cache holds every level column this comparison gives, in its dtype."""
        old = self.previous or {}
        return all(
            f"level:{c}" in old and old[f"level:{c}"].dtype == fresh[c].dtype for c in fresh.columns
        )

    def _assemble(self, fresh: pd.DataFrame, todo: np.ndarray, hit: np.ndarray) -> pd.DataFrame:
        """Cached levels where there is a hit, the fresh comparison elsewhere, in pair order."""
        assert self.previous is not None
        rows = np.flatnonzero(hit >= 0)
        columns = {}
        for column in fresh.columns:
            values = np.empty(len(hit), dtype=fresh[column].dtype)
            values[todo] = fresh[column].to_numpy()
            values[rows] = self.previous[f"level:{column}"][hit[rows]]
            columns[column] = values
        return pd.DataFrame(columns)

    def _record_counts(self) -> dict[str, int]:
        if self.previous is None:
            return {"records_reused": 0, "records_new_or_changed": len(self._keys)}
        known = np.isin(self._keys, self.previous["prints"])
        return {
            "records_reused": int(known.sum()),
            "records_new_or_changed": int((~known).sum()),
        }

    def save(self, folder: Path) -> None:
        """Keep this run's pairs for the next run (whole or not at all)."""
        if self._current is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, **self._current)
        write_atomic(folder / PAIRS_FILE, buffer.getvalue())
