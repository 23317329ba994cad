"""The rows a reviewer last listed, so that a row number means the pair they saw.

`review list` numbers the queue, and a run in between can reorder it (pairs decided or
changed leave it): `decide 3` must then decide the pair that was row 3 on the reviewer's
screen, or refuse, never whichever pair is row 3 now. The listing is kept per user and per
database in the user's cache folder ($XDG_CACHE_HOME, else ~/.cache, under care_etl/review),
as pair keys only: hashes of record keys, no personal data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def _file(url: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    name = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(base) / "care_etl" / "review" / f"listing-{name}.json"


def remember(url: str, keys: list[str]) -> None:
    """Keep the pair keys of the rows just shown, in row order."""
    path = _file(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keys), encoding="utf-8")
    except OSError as exc:  # row numbers then refuse; pair keys still work
        log.warning("review list: row numbers not kept (%s)", exc.strerror)


def recall(url: str) -> list[str] | None:
    """The pair keys of the last listing of this database, or None when there is none."""
    try:
        keys = json.loads(_file(url).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(k) for k in keys] if isinstance(keys, list) else None
