"""What the incremental tests share: one lasting pseudonym key for a test's runs, as
production has (without it each run draws its own key, every pseudonym changes, and the index
is built whole every time), and the tables an index build writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from care_etl.index.publish import ANALYST_TABLES, INDEX_TABLES

KEY_ENV = "CARE_ETL_PSEUDONYM_KEY"
#: The tables an index build writes from the linked records, in publishing order
#: (quarantine and review_queue come straight from staging and linkage).
BUILT_TABLES = tuple(
    t.name for t in (*INDEX_TABLES, *ANALYST_TABLES) if t.name not in ("quarantine", "review_queue")
)


@contextmanager
def lasting_pseudonym_key(value: str) -> Iterator[None]:
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before
