"""Where the incremental state lives, what it is valid for, and whether a run is full.

The folder (`.care_etl_cache` beside the OCR cache) holds `manifest.json` and one file per
kind of cache. The manifest's `key` hashes what every cached value depends on besides the
records themselves: the code (every module of care_etl), the contracts and the linkage
settings. Another key means another way of computing, so the cache is ignored and the run
is full; a full run rewrites it. The code is that of the comparison (COMPARISON_MODULES):
it alone decides what a cached level means. Why a folder and not the index database: the largest part
is the comparison levels of millions of candidate pairs, which numpy writes and reads in
well under a second as flat arrays, while millions of rows through SQL take minutes; it
holds no personal value (64-bit hashes of records and small integer levels), and being
content-addressed it needs no transaction to stay true to the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import care_etl

MANIFEST = "manifest.json"
FOLDER = ".care_etl_cache"
#: Bumped when the layout of the cache files changes.
FORMAT = 1
#: What reading a cache file can raise when it is damaged. A file cut short (a power cut
#: before the file system wrote it out, a copy or restore that ran out of space) makes numpy
#: raise EOFError or zipfile.BadZipFile, neither an OSError nor a ValueError; every reader
#: catches all of these and reads no cache (the run recomputes), rather than failing every
#: run until someone deletes the folder.
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def cache_root(ocr_cache_dir: str | Path) -> Path:
    """The incremental cache folder: beside the OCR cache, next to the sources folder."""
    return Path(ocr_cache_dir).resolve().parent / FOLDER


#: The modules a cached comparison depends on: how records become comparison keys and how
#: two keys become a level. Other code acts on the records before (their fingerprint then
#: changes) or on the levels after (it runs again on every run).
COMPARISON_MODULES = (
    "linkage/prepare.py",
    "linkage/compare.py",
    "linkage/nicknames.py",
    "standardise/names.py",
    "standardise/identifiers.py",
    "standardise/dates.py",
    "incremental/pairs.py",
    # The records' fingerprints are the review fingerprints (incremental.pairs.as_numbers).
    "review/store.py",
)
#: Libraries whose scores the comparison's levels are cut from.
COMPARISON_LIBRARIES = ("rapidfuzz", "recordlinkage", "numpy", "pandas")


def code_version() -> str:
    """A hash of the comparison's code: a change to it forces a full run."""
    digest = hashlib.sha256(str(FORMAT).encode())
    add_libraries(digest, COMPARISON_LIBRARIES)
    add_code(digest, COMPARISON_MODULES)
    return digest.hexdigest()


def add_libraries(digest: Any, libraries: Sequence[str]) -> None:
    """Fold each library's installed version into a cache key's digest."""
    from importlib.metadata import version

    for library in libraries:
        digest.update(f"{library}=={version(library)}".encode())


def add_code(digest: Any, modules: Sequence[str]) -> None:
    """Fold each module of the package (a path under care_etl/, or a glob of them) into a
    cache key's digest, name and bytes: a change to its code changes the key."""
    package = Path(care_etl.__file__).parent
    for pattern in modules:
        for path in sorted(package.glob(pattern)):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())


def contracts_version(contract_files: Sequence[Path]) -> str:
    """A hash of the run's contract files (any change of a contract forces a full run)."""
    digest = hashlib.sha256()
    for path in sorted(contract_files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def state_key(contract_files: Sequence[Path], linkage_settings: Any = None) -> str:
    """What every cached value depends on besides the records: code, contracts, settings.

    The comparison depends on neither contracts nor settings, but a change to either is
    where a person expects a fresh start, so it forces one (the cost is one full run).
    """
    settings = asdict(linkage_settings) if is_dataclass(linkage_settings) else linkage_settings
    text = json.dumps(
        {
            "code": code_version(),
            "contracts": contracts_version(contract_files),
            "linkage_settings": settings,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Mode:
    """Whether this run may reuse the cache, and why (for logs and Dagster metadata)."""

    incremental: bool
    reason: str


def decide(root: Path, key: str) -> Mode:
    """Incremental when a manifest written under the same key exists, else full."""
    manifest = read_manifest(root)
    if manifest is None:
        return Mode(False, "no previous state")
    if manifest.get("key") != key:
        return Mode(False, "code, contracts or linkage settings changed since the last run")
    return Mode(True, "previous state usable")


def read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except UNREADABLE:
        return None


def write_manifest(root: Path, key: str, **facts: Any) -> None:
    """Record the key the cache files were written under (atomically, after them)."""
    write_atomic(root / MANIFEST, json.dumps({"key": key, **facts}, sort_keys=True).encode())


def forget(root: Path) -> None:
    """Drop the state, so that the next run is full (`care-etl run --full`).

    Everything in the folder goes, and the folder unless it is a link (the cache moved to
    a bigger disk): the link stays and its target is emptied. Raises OSError when anything
    cannot be deleted (a read-only folder): errors ignored let the run that asked for no
    state read the state left behind, keep the model and reuse the cache.
    """
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if not root.is_symlink():
        root.rmdir()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
