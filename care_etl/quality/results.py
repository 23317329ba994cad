"""Check results as plain dicts, and the `dq_result` table they are kept in.

A result carries counts and rates only (never a value from the data), so it can go to the
database, Dagster metadata, logs and reports alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from care_etl.quality.checks import ERROR, CheckPlan

#: The keys of one result, the columns of `dq_result` (in this order).
RESULT_KEYS = (
    "run_id",
    "source",
    "check_name",
    "column_name",
    "severity",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_rate",
    "observed_value",
    "run_time",
)

metadata = sa.MetaData()

dq_result = sa.Table(
    "dq_result",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("check_name", sa.String(200), nullable=False),
    sa.Column("column_name", sa.String(200)),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("element_count", sa.BigInteger),
    sa.Column("unexpected_count", sa.BigInteger),
    sa.Column("unexpected_rate", sa.Float),
    sa.Column("observed_value", sa.Float),
    sa.Column("run_time", sa.DateTime, nullable=False),
)


def result_row(
    plan: CheckPlan,
    *,
    run_id: str,
    source: str,
    run_time: dt.datetime,
    success: bool,
    element_count: int | None = None,
    unexpected_count: int | None = None,
    unexpected_rate: float | None = None,
    observed_value: float | None = None,
) -> dict[str, Any]:
    """One result, keyed as RESULT_KEYS."""
    return {
        "run_id": run_id,
        "source": source,
        "check_name": plan.name,
        "column_name": plan.column,
        "severity": plan.severity,
        "success": bool(success),
        "element_count": element_count,
        "unexpected_count": unexpected_count,
        "unexpected_rate": unexpected_rate,
        "observed_value": observed_value,
        "run_time": run_time.isoformat(timespec="seconds"),
    }


def failed_errors(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed checks of severity error: any one blocks the feed."""
    return [r for r in results if r["severity"] == ERROR and not r["success"]]


def ensure_tables(engine: sa.Engine) -> None:
    """Create `dq_result` and `accepted_source` if missing. Two processes may race to create
    them (dagster dev runs steps in parallel): the loser finds them made and tries again."""
    import care_etl.quality.accepted  # noqa: F401  (defines accepted_source on `metadata`)

    try:
        metadata.create_all(engine)
    except sa.exc.SQLAlchemyError:
        metadata.create_all(engine)


def write_results(conn: sa.Connection, results: list[dict[str, Any]]) -> None:
    """Append results to `dq_result` (see ensure_tables)."""
    if results:
        rows = [{**r, "run_time": dt.datetime.fromisoformat(r["run_time"])} for r in results]
        conn.execute(dq_result.insert(), rows)
