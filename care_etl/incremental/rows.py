"""Standardised values of last run's rows, reused for rows whose raw values have not changed.

What standardising a row gives, bar its dates, depends on that row's raw texts alone
(care_etl.standardise.frame.standardise_undated), so a row whose texts hash as last run gives
the same values and reasons: only new and changed rows are standardised again. The dates are
not kept: what they give depends on the day (a date after today is refused, a two-digit
year takes the century that keeps it in the past), and reading every date afresh costs
little (care_etl.standardise.dates reads the common shapes in bulk). Nor are the checks: they
run on every row of the feed, every run.

One file per source (`rows_<source>.npz`, in the incremental cache folder), read with
allow_pickle=False so loading it can never run code, holding this run's rows only: a row
removed from the source drops out. It holds standardised personal values, like the index.
The file carries the key it was written under (the standardisation code, the libraries it
runs on and the source's contract): under another key it is ignored, and `--full` deletes
the folder before the run.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.incremental.delta import row_hashes_under
from care_etl.incremental.state import UNREADABLE, add_code, add_libraries, write_atomic
from care_etl.standardise.frame import (
    UNDATED_FIELDS,
    UNDATED_VALUES,
    Undated,
    standardise_undated,
)

log = logging.getLogger(__name__)

#: Bumped when the layout of the file changes.
FORMAT = 1
#: The code a row's standardised values depend on (besides the libraries below).
CODE = ("canonical.py", "standardise/*.py", "incremental/rows.py")
LIBRARIES = ("numpy", "pandas")
#: Separates the texts of one column in the file; never in a standardised value (checked).
_SEPARATOR = "\x1f"
_TEXT_COLUMNS = (*UNDATED_VALUES, "issues_before", "issues_after")
#: Two independent 64-bit hashes per row: the first finds the row, the second confirms it.
_HASH_KEYS = ("care_etl.rows.a0", "care_etl.rows.b1")


def rows_key(contract: Contract) -> str:
    """What a kept row depends on besides its texts: the code, libraries and contract."""
    digest = hashlib.sha256(f"{FORMAT}|{contract.id}|{contract.version}".encode())
    add_libraries(digest, LIBRARIES)
    add_code(digest, CODE)
    if Path(contract.file).is_file():
        digest.update(Path(contract.file).read_bytes())
    return digest.hexdigest()


def row_prints(texts: pd.DataFrame) -> np.ndarray:
    """Two independent 64-bit hashes per row (shape n x 2) of its texts, as `undated_texts`
    gives them (delta.row_hashes under two hash keys, each column factorised once)."""
    return row_hashes_under(texts, list(UNDATED_FIELDS), _HASH_KEYS)


class RowCache:
    """Pass `undated` to `standardise`: it reuses kept rows and standardises the others.

    `save` keeps this run's rows for the next run; `counts` says how many were reused.
    """

    def __init__(self, folder: Path | None, contract: Contract) -> None:
        self.path = None if folder is None else Path(folder) / f"rows_{contract.id}.npz"
        self.key = rows_key(contract)
        self.previous = self._load()
        self.counts: dict[str, int] = {}
        self._current: tuple[np.ndarray, Undated] | None = None

    def undated(self, texts: pd.DataFrame) -> Undated:
        """`standardise_undated(texts)`, taking kept rows from the last run."""
        prints = row_prints(texts)
        hit = self._hits(prints)
        todo = np.flatnonzero(hit < 0)
        if len(todo) == len(texts):
            found = standardise_undated(texts)
        else:
            fresh = standardise_undated(texts.iloc[todo].reset_index(drop=True))
            found = self._assemble(fresh, todo, hit)
        self.counts = {"rows_reused": int(len(texts) - len(todo)), "rows_standardised": len(todo)}
        self._current = (prints, found)
        return found

    def save(self) -> None:
        """Keep this run's rows for the next run (whole or not at all)."""
        if self.path is None or self._current is None:
            return
        prints, found = self._current
        arrays: dict[str, np.ndarray] = {"key": np.array([self.key]), "prints": prints}
        for name, values in _text_columns(found).items():
            encoded = _encode(values)
            if encoded is None:
                log.warning("incremental: standardised rows not kept (a value is not plain text)")
                return
            arrays[f"text:{name}"], arrays[f"null:{name}"] = encoded
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self.path, buffer.getvalue())

    def _load(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        if self.path is None or not self.path.is_file():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                if str(stored["key"][0]) != self.key:
                    return None
                prints = stored["prints"]
                columns = {
                    name: _decode(stored[f"text:{name}"], stored[f"null:{name}"])
                    for name in _TEXT_COLUMNS
                }
        except (*UNREADABLE, KeyError) as exc:
            log.warning("incremental: standardised rows unreadable (%s); standardising all", exc)
            return None
        return prints, columns

    def _hits(self, prints: np.ndarray) -> np.ndarray:
        """Per row, its row in the kept file (same texts), else -1."""
        kept = None if self.previous is None else self.previous[0]
        if kept is None or not len(kept) or not len(prints):
            return np.full(len(prints), -1, dtype=np.int64)
        first = pd.Index(kept[:, 0])
        if not first.is_unique:  # the same texts twice: any copy will do
            keep = ~first.duplicated()
            positions = np.flatnonzero(keep)
            found = pd.Index(kept[keep, 0]).get_indexer(prints[:, 0])
            found = np.where(found >= 0, positions[np.maximum(found, 0)], -1)
        else:
            found = first.get_indexer(prints[:, 0])
        confirmed = (found >= 0) & (kept[np.maximum(found, 0), 1] == prints[:, 1])
        return np.where(confirmed, found, -1)

    def _assemble(self, fresh: Undated, todo: np.ndarray, hit: np.ndarray) -> Undated:
        """Kept values where there is a hit, the fresh ones elsewhere, in row order."""
        assert self.previous is not None
        kept = self.previous[1]
        rows = np.flatnonzero(hit >= 0)
        out: dict[str, np.ndarray] = {}
        for name, values in _text_columns(fresh).items():
            column = np.empty(len(hit), dtype=object)
            column[todo] = values
            column[rows] = kept[name][hit[rows]]
            out[name] = column
        return Undated(
            {f: out[f] for f in UNDATED_VALUES}, out["issues_before"], out["issues_after"]
        )


def _text_columns(found: Undated) -> dict[str, np.ndarray]:
    return {**found.values, "issues_before": found.before, "issues_after": found.after}


def _encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """UTF-8 bytes of the texts joined by the separator, and where values are null."""
    null = np.equal(values, None).astype(bool)
    texts = np.where(null, "", values).tolist()
    try:
        joined = _SEPARATOR.join(texts)
    except TypeError:  # a value that is not text
        return None
    if joined.count(_SEPARATOR) != max(len(texts) - 1, 0):  # a text holds the separator
        return None
    return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8), null


def _decode(data: np.ndarray, null: np.ndarray) -> np.ndarray:
    out = np.empty(len(null), dtype=object)
    if len(null):
        texts = data.tobytes().decode("utf-8").split(_SEPARATOR)
        if len(texts) != len(null):
            raise ValueError("column lengths differ")
        out[:] = texts
        out[null] = None
    return out
