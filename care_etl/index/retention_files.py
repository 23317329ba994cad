"""Retention of the caches beside the sources folder and of Dagster's storage.

A cache file's modification time is when its records were last seen: the run refreshes the
OCR entries of the forms still in the sources, and the incremental cache and Dagster rewrite
their files for every source that runs. Files are deleted one by one (`unlink` is atomic: a
file is there whole or gone), never emptied in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from care_etl.index.retention import Held, Limit

log = logging.getLogger(__name__)

#: How long an OCR cache entry outlives its form's last sighting. Long enough that a form
#: moved out for a run (or a few days of runs) and put back is not read by Tesseract again;
#: short against any contract, as the entry is a copy the source has already deleted.
OCR_GRACE_DAYS = 7
OCR_LIMIT = Limit(OCR_GRACE_DAYS, f"{OCR_GRACE_DAYS} d (cache)")


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)


def _paper_contracts(contracts: Iterable[object]) -> list[object]:
    return [c for c in contracts if getattr(c, "format", "") == "paper"]


def form_digests(sources_dir: Path, contracts: Iterable[object]) -> set[str]:
    """The OCR cache key (SHA-256 of the bytes) of every form now in the sources."""
    from care_etl.sources.ocr import file_digest

    digests: set[str] = set()
    for contract in _paper_contracts(contracts):
        for path in sources_dir.glob(contract.location):  # type: ignore[attr-defined]
            if path.is_file():
                digests.add(file_digest(path))
    return digests


def ocr_held(
    cache_dir: Path, digests: set[str], contracts: Sequence[object], now: dt.datetime
) -> list[Held]:
    """OCR cache entries of forms no longer in the sources (and half-written temporaries)."""
    papers = _paper_contracts(contracts)
    source = papers[0].id if len(papers) == 1 else "paper forms"  # type: ignore[attr-defined]
    item = Held("ocr_cache", source, limit=OCR_LIMIT.text)
    for path in _entries(cache_dir):
        if path.suffix == ".json" and path.stem in digests:
            continue
        item.held += 1
        if OCR_LIMIT.past(_mtime(path), now):
            item.past += 1
            item.doomed.append(path)
    return [item] if item.held else []


def _entries(cache_dir: Path) -> list[Path]:
    if not cache_dir.is_dir():
        return []
    return [p for p in cache_dir.iterdir() if p.is_file() and p.suffix in (".json", ".tmp")]


def touch_present(cache_dir: Path, digests: set[str], now: dt.datetime) -> int:
    """Mark the entries of the forms still in the sources as seen now."""
    stamp = now.replace(tzinfo=dt.UTC).timestamp()
    touched = 0
    for digest in digests:
        path = cache_dir / f"{digest}.json"
        try:
            os.utime(path, (stamp, stamp))
            touched += 1
        except FileNotFoundError:
            continue  # a form OCR could not read has no entry
    return touched


def incremental_held(
    cache_root: Path, running: set[str], limits: dict[str, Limit], now: dt.datetime
) -> list[Held]:
    """Standardised rows (`rows_<source>.npz`) of sources that no longer run."""
    out = []
    for path in sorted(cache_root.glob("rows_*.npz")) if cache_root.is_dir() else []:
        source = path.name.removeprefix("rows_").removesuffix(".npz")
        if source in running:
            continue
        limit = limits.get(source, Limit(None, "unknown (no contract)"))
        past = limit.past(_mtime(path), now)
        rows = _row_count(path)
        out.append(Held(".care_etl_cache", source, rows, rows if past else 0, limit.text,
                        [path] if past else []))  # fmt: skip
    return out


def _row_count(path: Path) -> int:
    """Rows a rows_<source>.npz holds (its `prints`), 0 when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return int(len(stored["prints"]))
    except (OSError, ValueError, KeyError, EOFError):
        return 0


def dagster_held(
    dagster_home: Path | None, running: set[str], limits: dict[str, Limit], now: dt.datetime
) -> list[Held]:
    """Step outputs Dagster pickled (`storage/<group>/raw_<source>`, `staged_<source>`) for
    sources that no longer run: one file per asset, rewritten by every materialisation."""
    storage = dagster_home / "storage" if dagster_home else None
    if storage is None or not storage.is_dir():
        return []
    held: dict[str, Held] = {}
    for path in sorted(storage.glob("*/*")):
        source = _asset_source(path)
        if source is None or source in running or not path.is_file():
            continue
        limit = limits.get(source, Limit(None, "unknown (no contract)"))
        item = held.setdefault(source, Held("dagster_storage", source, limit=limit.text))
        item.held += 1
        if limit.past(_mtime(path), now):
            item.past += 1
            item.doomed.append(path)
    return list(held.values())


def _asset_source(path: Path) -> str | None:
    for prefix in ("raw_", "staged_"):
        if path.name.startswith(prefix):
            return path.name.removeprefix(prefix)
    return None


def delete(items: Sequence[Held]) -> int:
    """Delete the files past retention; returns how many went."""
    gone = 0
    for item in items:
        for path in item.doomed:
            try:
                Path(path).unlink()
                gone += 1
            except FileNotFoundError:
                continue
    return gone


def prune_ocr_cache(
    cache_dir: Path, sources_dir: Path, contracts: Sequence[object], now: dt.datetime
) -> tuple[int, int]:
    """The ordinary run's pruning: refresh the entries of forms present, delete those of
    forms gone for over OCR_GRACE_DAYS. Returns (entries held for forms gone, deleted)."""
    digests = form_digests(sources_dir, contracts)
    touch_present(cache_dir, digests, now)
    items = ocr_held(cache_dir, digests, contracts, now)
    deleted = delete(items)
    held = sum(i.held for i in items)
    if held:
        log.info("retention: OCR cache: %d entries of forms gone, %d deleted", held, deleted)
    return held, deleted
