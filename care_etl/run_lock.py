"""One run at a time over a sources folder: its caches and its index are read and rewritten
by every run, so a second run started while one is working (the schedule firing during a run
by hand, `--full` deleting the cache another run is writing) is refused at once, naming the
run that holds the folder, rather than left to race it.

The lock is an advisory `flock` on `.care_etl_run.lock` beside the caches (next to the
sources folder): the system releases it when its process ends, however it ends, so a run
killed halfway never leaves a stale lock. The file holds the holder's process id and start
time, for the message; it is never deleted (deleting a locked file would let a third run
lock a new one beside the held one).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from care_etl.errors import CareEtlError

LOCK_FILE = ".care_etl_run.lock"
#: Lock files this process holds: a run holds its folder's for the whole run, and a step it
#: runs (Dagster's index asset) asks again; a second flock in one process would refuse itself.
_HELD: set[Path] = set()


class RunInProgress(CareEtlError):
    """Another run holds the sources folder's lock."""


def lock_path(cache_dir: str | Path) -> Path:
    """The lock file of a run whose OCR cache is `cache_dir` (beside the sources folder)."""
    return Path(cache_dir).resolve().parent / LOCK_FILE


@contextmanager
def one_run_at_a_time(cache_dir: str | Path) -> Iterator[None]:
    """Hold the folder's run lock while the block runs; RunInProgress if another run has it."""
    path = lock_path(cache_dir)
    if path in _HELD:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # where the caches will be made
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the block)
    except OSError as exc:
        raise CareEtlError(f"{path}: cannot open the run lock ({exc.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress(_held_by(handle, path)) from None
        _HELD.add(path)
        try:
            _stamp(handle)
            yield
        finally:
            _HELD.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stamp(handle) -> None:
    """Who holds the lock, for the message a refused run prints."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {since}\n")
    handle.flush()


def _held_by(handle, path: Path) -> str:
    handle.seek(0)
    pid, _, since = handle.readline().strip().partition(" ")
    who = f" (process {pid}, since {since})" if pid.isdigit() and since else ""
    return (
        f"another care-etl run is working on {path.parent}{who}: wait for it to finish, "
        "then run again"
    )
