"""Write the index tables to SQLite or PostgreSQL in one transaction.

Readers see the previous index until the transaction commits, and a failed run rolls back,
leaving the last published index in place.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import pandas as pd
import sqlalchemy as sa

from care_etl.errors import DatabaseError

metadata = sa.MetaData()

person_index = sa.Table(
    "person_index",
    metadata,
    sa.Column("person_id", sa.String(32), primary_key=True),
    sa.Column("given_name", sa.Text),
    sa.Column("family_name", sa.Text),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("sex", sa.String(1)),
    sa.Column("nhs_number", sa.String(10)),
    sa.Column("postcode", sa.String(8)),
    sa.Column("uprn", sa.String(12)),
    sa.Column("source_count", sa.Integer, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
)

person_source_link = sa.Table(
    "person_source_link",
    metadata,
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(200), primary_key=True),
    sa.Column("link_type", sa.String(20), nullable=False),
    sa.Column("match_probability", sa.Float),
    sa.Column("lineage", sa.Text),
    sa.Column("ocr_confidence", sa.Float),
    sa.Column("field_confidence", sa.Text),
    sa.Column("quality_issues", sa.Text),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(300), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text),
)

review_queue = sa.Table(
    "review_queue",
    metadata,
    sa.Column("left_source", sa.String(100), primary_key=True),
    sa.Column("left_source_record_id", sa.String(200), primary_key=True),
    sa.Column("right_source", sa.String(100), primary_key=True),
    sa.Column("right_source_record_id", sa.String(200), primary_key=True),
    sa.Column("match_probability", sa.Float, nullable=False),
    sa.Column("match_weight", sa.Float),
    sa.Column("evidence", sa.Text, nullable=False),
)

pipeline_run = sa.Table(
    "pipeline_run",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)

INDEX_TABLES = (person_index, person_source_link, quarantine, review_queue)


def engine_for(url: str) -> sa.Engine:
    """An engine, or a one-line DatabaseError that does not echo the URL's password."""
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        raise DatabaseError(f"database URL not understood: {safe_url(url)}") from None
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise DatabaseError(f"cannot reach database {safe_url(url)}: {reason}") from None
    return engine


def publish(
    url: str, tables: Mapping[str, pd.DataFrame], *, run_id: str, summary: str, persons: int
) -> None:
    """Replace the index tables' contents atomically and record the run."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for table in INDEX_TABLES:
                conn.execute(table.delete())
                rows = _rows(tables[table.name], table)
                if rows:
                    conn.execute(table.insert(), rows)
            conn.execute(
                pipeline_run.insert(),
                [
                    {
                        "run_id": run_id,
                        "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        "persons": persons,
                        "summary": summary,
                    }
                ],
            )
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(
            f"writing the index to {safe_url(url)} failed: {type(exc).__name__}"
        ) from None
    finally:
        engine.dispose()


def _rows(frame: pd.DataFrame, table: sa.Table) -> list[dict[str, object]]:
    columns = [c.name for c in table.columns]
    subset = frame.reindex(columns=columns)
    return [
        {name: _value(v) for name, v in zip(columns, values, strict=True)}
        for values in subset.itertuples(index=False, name=None)
    ]


def _value(value: object) -> object:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def safe_url(url: str) -> str:
    """The URL with its password hidden, fit for a message or a summary."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"
