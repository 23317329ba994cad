"""What the tests of reruns share: one lasting pseudonym key for a test's runs, as
production has (without it each run draws its own key, every pseudonym changes, and the index
is built whole every time), the tables an index build writes, and a way to read them whole."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from care_etl.index.publish import ANALYST_SCHEMA, ANALYST_TABLES, INDEX_TABLES

KEY_ENV = "CARE_ETL_PSEUDONYM_KEY"
#: The tables an index build writes from the linked records, in publishing order
#: (quarantine and review_queue, and review_queue's analyst copy, come straight from
#: staging and linkage).
BUILT_TABLES = tuple(
    t.name
    for t in (*INDEX_TABLES, *ANALYST_TABLES)
    if t.name not in ("quarantine", "review_queue", "analyst_review_queue")
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


def index_each(folders: Iterable[Path], key: str) -> dict[str, str]:
    """A full run over each folder's `sources` into its own SQLite index, under one
    pseudonym key; the index URL by folder name."""
    from care_etl.pipeline import run_pipeline
    from care_etl_tests.conftest import CONTRACTS_DIR

    urls = {}
    with lasting_pseudonym_key(key):
        for folder in folders:
            urls[folder.name] = f"sqlite:///{folder / 'index.db'}"
            run_pipeline(folder / "sources", CONTRACTS_DIR, urls[folder.name], folder / "reports")
    return urls


def published_tables(
    url: str, tables: Iterable[sa.Table], without: Iterable[str] = ()
) -> dict[str, pd.DataFrame]:
    """Every row of these tables, less the columns `without`, in one row order (sorted by
    their text), so that two indexes can be compared table by table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # no schemas: the analyst tables are analyst_*
                conn = conn.execution_options(schema_translate_map={ANALYST_SCHEMA: None})
            frames = {t.name: pd.read_sql(t.select(), conn) for t in tables}
    finally:
        engine.dispose()
    dropped = set(without)
    out = {}
    for name, frame in frames.items():
        kept = frame.drop(columns=[c for c in frame if c in dropped])
        order = kept.astype(str).sort_values(list(kept.columns)).index
        out[name] = kept.loc[order].reset_index(drop=True)
    return out
