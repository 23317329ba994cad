"""One lasting pseudonym key for a test's runs, as production has: without it each run draws
its own key, every pseudonym changes, and the index is built whole every time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

KEY_ENV = "CARE_ETL_PSEUDONYM_KEY"


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
