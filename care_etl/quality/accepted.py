"""Each source's last accepted version, kept in the index database (`accepted_source`).

Why the database and not a state folder: the accepted records are personal data, and the
index database is already the governed store for them (same access control, backup and
retention as the index they feed); a second copy in a folder would be one more place to
secure and to purge. It also works wherever the pipeline runs against PostgreSQL, where the
working folder may not survive between runs. Frames are never pickled, so loading a stored
version can never run code: each frame is stored as Parquet (pyarrow; dtypes and nulls round
trip, and it is written and read in a fraction of JSON's time), base64-encoded in a small JSON
envelope with the source's figures. A frame Parquet cannot hold (a column mixing texts and
numbers) is stored as JSON in pandas' table format, zlib-compressed, as all versions were
before; those, and older plain-JSON ones, still load.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zlib
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from care_etl.quality.results import metadata  # one MetaData: ensure_tables makes both
from care_etl.quality.staging import StagedSource

accepted_source = sa.Table(
    "accepted_source",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("accepted_at", sa.DateTime, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("rows_checked", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)


def save_accepted(
    conn: sa.Connection, staged: StagedSource, *, run_id: str, rows_checked: int
) -> None:
    """Replace the source's accepted version with this one."""
    conn.execute(accepted_source.delete().where(accepted_source.c.source == staged.contract_id))
    conn.execute(
        accepted_source.insert(),
        [
            {
                "source": staged.contract_id,
                "run_id": run_id,
                "accepted_at": dt.datetime.fromisoformat(str(staged.accepted_at)),
                "record_count": len(staged.records),
                "rows_checked": rows_checked,
                "payload": _encode(staged),
            }
        ],
    )


def previous_rows(conn: sa.Connection, source: str) -> int | None:
    """Rows checked in the source's last accepted version (the row-count checks' baseline)."""
    query = sa.select(accepted_source.c.rows_checked).where(accepted_source.c.source == source)
    return conn.execute(query).scalar_one_or_none()


def load_accepted(conn: sa.Connection, source: str) -> StagedSource | None:
    """The source's last accepted version, or None when it has never passed its checks."""
    query = sa.select(accepted_source.c.payload).where(accepted_source.c.source == source)
    payload = conn.execute(query).scalar_one_or_none()
    return None if payload is None else _decode(payload)


#: Marks a compressed JSON payload (plain JSON starts with '{').
_COMPRESSED = "zlib+base64:"
#: Marks a JSON envelope of Parquet frames (the usual format).
_PARQUET = "parquet+json:"
_FRAMES = ("records", "quarantine")


def _encode(staged: StagedSource) -> str:
    try:
        frames = {name: _to_parquet(getattr(staged, name)) for name in _FRAMES}
        frames["declared"] = {r: _to_parquet(t) for r, t in staged.declared.items()}
    except (pa.ArrowException, ValueError, TypeError):  # a column Parquet cannot hold
        text = _json(staged).encode("utf-8")
        return _COMPRESSED + base64.b64encode(zlib.compress(text, 1)).decode("ascii")
    return _PARQUET + json.dumps({**_figures(staged), **frames})


def _to_parquet(frame: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, engine="pyarrow", index=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(staged: StagedSource) -> dict[str, Any]:
    return {
        "contract_id": staged.contract_id,
        "read": staged.read,
        "withdrawn": staged.withdrawn,
        "files": staged.files,
        "counts": staged.counts,
        "accepted_at": staged.accepted_at,
    }


def _json(staged: StagedSource) -> str:
    frames = {name: _frame_to_json(getattr(staged, name)) for name in _FRAMES}
    frames["declared"] = {r: _frame_to_json(t) for r, t in staged.declared.items()}
    return json.dumps({**_figures(staged), **frames})


def _decode(payload: str) -> StagedSource:
    if payload.startswith(_PARQUET):
        data = json.loads(payload[len(_PARQUET) :])
        return _staged(data, _from_parquet)
    if payload.startswith(_COMPRESSED):
        payload = zlib.decompress(base64.b64decode(payload[len(_COMPRESSED) :])).decode("utf-8")
    return _staged(json.loads(payload), _frame_from_json)


def _staged(data: dict[str, Any], frame: Callable[[Any], pd.DataFrame]) -> StagedSource:
    """The version from its envelope, each frame decoded by `frame`; a version accepted
    before declared tables were kept has none (nothing stands in for them)."""
    frames = {name: frame(data[name]) for name in _FRAMES}
    return StagedSource(
        contract_id=data["contract_id"],
        records=frames["records"],
        quarantine=frames["quarantine"],
        read=int(data["read"]),
        withdrawn=int(data["withdrawn"]),
        files=list(data["files"]),
        counts={k: int(v) for k, v in data["counts"].items()},
        accepted_at=data["accepted_at"],
        declared={role: frame(table) for role, table in data.get("declared", {}).items()},
    )


def _from_parquet(text: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(base64.b64decode(text)), engine="pyarrow")


def _frame_to_json(frame: pd.DataFrame) -> dict[str, Any]:
    table = frame.reset_index(drop=True).to_json(orient="table", date_format="iso", index=False)
    return {"table": table, "dtypes": {c: str(t) for c, t in frame.dtypes.items()}}


def _frame_from_json(data: dict[str, Any]) -> pd.DataFrame:
    frame = pd.read_json(io.StringIO(data["table"]), orient="table")
    for column, dtype in data["dtypes"].items():
        if dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column]).astype(dtype)
        elif dtype == "object":
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame[list(data["dtypes"])]
