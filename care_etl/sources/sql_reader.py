"""Tables of a relational source through SQLAlchemy (SQLite in the demo, PostgreSQL in production)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from care_etl.errors import SourceReadError
from care_etl.index.publish import why


def read_table(url: str, table: str, columns: Sequence[str], *, label: str) -> pd.DataFrame:
    """Every row of `table` as text, with `_file` (label) and `_row` (the row's key) lineage.

    Only the contract's columns are selected: data the contract does not declare is never
    read. `label` names the source in messages without the URL's credentials.
    """
    engine = _engine(url, label)
    try:
        with engine.connect() as conn:
            found = {c["name"] for c in sa.inspect(conn).get_columns(table)}
            missing = [c for c in columns if c not in found]
            if missing:
                raise SourceReadError(
                    f"{label}: table {table}: missing column(s) {', '.join(missing)}"
                )
            selected = sa.table(table, *(sa.column(c) for c in columns))
            rows = conn.execute(sa.select(*selected.c)).all()
    except sa.exc.NoSuchTableError:
        raise SourceReadError(f"{label}: table {table} not found") from None
    except sa.exc.SQLAlchemyError as exc:  # why() names no value
        raise SourceReadError(f"{label}: cannot read table {table}: {why(exc)}") from None
    finally:
        engine.dispose()
    raw = pd.DataFrame(rows, columns=list(columns), dtype=object)
    frame = pd.DataFrame({c: _texts(raw.iloc[:, i]) for i, c in enumerate(columns)}, dtype=object)
    frame["_file"] = f"{label}#{table}"
    frame["_row"] = range(1, len(frame) + 1)
    return frame


def _engine(url: str, label: str) -> sa.Engine:
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):
        raise SourceReadError(f"{label}: not a usable database URL") from None


def _texts(values: pd.Series) -> pd.Series:
    """_text of every value: a column of text alone (most are) strips each distinct value
    once; any other column, value by value (types mixed, 1 and True would count as one)."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return values.map(_text, na_action="ignore").astype(object).where(values.notna(), None)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([u.strip() or None for u in uniques] + [None], dtype=object)
    return pd.Series(texts[np.where(codes < 0, len(uniques), codes)], index=values.index)


def _text(value: object) -> str | None:
    """Database values as the text a reader of the system would see, the same whichever
    engine holds the tables: a boolean as SQLite stores one, 1 or 0. PostgreSQL's true gave
    "true", which the contract's 0-or-1 check refused, blocking the whole feed in production."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        return None if value != value else str(value)  # NaN is no value; infinity is one
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    if isinstance(value, bytes | bytearray | memoryview):
        value = _decoded(bytes(value))
    text = str(value).strip()
    return text or None


def _decoded(raw: bytes) -> str:
    """Text a system stored as bytes (a BLOB in SQLite, bytea in PostgreSQL): UTF-8, else
    Windows-1252, as the CSV reader reads a file. `str()` gave the repr, and a forename
    stored so was indexed as "b'Christopher'"."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
