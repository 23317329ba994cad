"""Where review decisions live: `review_decision`, its audit trail, and each record's snapshot.

A decision is never edited or deleted. A later decision on the same pair supersedes it; a
run that finds one of its records changed (another fingerprint) or gone marks it stale. Only
`status` ever moves, and only away from `active`; every move is a `review_decision_audit`
row saying who or what moved it, when and why, so the history of a pair can be read back.

`review_record` keeps the last run's standardised values of every linked record (the
reviewer's side-by-side view, read by `care-etl review show`) and their fingerprint: a hash
of the values linkage compares, stored with each decision so that a later run can tell
whether the records a person judged are still the records in front of the model. Only the
fingerprint, never a value, is kept with the decision. It is written as a delta: a rerun
over unchanged sources writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from care_etl.index.publish import add_missing_columns, connected

# The fields linkage reads: a change to any of them changes the record's fingerprint.
from care_etl.linkage.prepare import INPUT_FIELDS as LINKAGE_FIELDS

#: Fields shown to a reviewer, in this order: the linkage fields and the rest of the person.
SHOWN_FIELDS: tuple[str, ...] = (
    "title",
    "given_name",
    "middle_names",
    "family_name",
    "other_names",
    "date_of_birth",
    "dob_estimated",
    "sex",
    "nhs_number",
    "address",
    "postcode",
    "uprn",
    "ni_number",
    "date_of_death",
    "relationship_to_head",
)

LINK, NO_LINK = "link", "no_link"
ACTIVE, SUPERSEDED, STALE = "active", "superseded", "stale"
PAIR_COLUMNS = ["left_source", "left_source_record_id", "right_source", "right_source_record_id"]

metadata = sa.MetaData()

review_decision = sa.Table(
    "review_decision",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair_key", sa.String(16), nullable=False, index=True),
    sa.Column("left_source", sa.String(100), nullable=False),
    sa.Column("left_source_record_id", sa.String(200), nullable=False),
    sa.Column("right_source", sa.String(100), nullable=False),
    sa.Column("right_source_record_id", sa.String(200), nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime, nullable=False),
    sa.Column("left_fingerprint", sa.String(64), nullable=False),
    sa.Column("right_fingerprint", sa.String(64), nullable=False),
    #: When the pair first entered the review queue (None for a pair decided unqueued).
    sa.Column("queued_at", sa.DateTime),
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.CheckConstraint("decision IN ('link', 'no_link')", name="review_decision_decision"),
    sa.CheckConstraint(
        "status IN ('active', 'superseded', 'stale')", name="review_decision_status"
    ),
)

review_decision_audit = sa.Table(
    "review_decision_audit",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Integer, nullable=False, index=True),
    sa.Column("pair_key", sa.String(16), nullable=False, index=True),
    #: decided | superseded | stale | confirmed (the same decision again, on unchanged records)
    sa.Column("event", sa.String(12), nullable=False),
    #: The reviewer, or "pipeline run <run id>".
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("at", sa.DateTime, nullable=False),
)

review_record = sa.Table(
    "review_record",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    #: 64-bit hash (hex) of the JSON of what a reviewer sees beyond the linkage fields
    #: (SHOWN_FIELDS): a change there rewrites the row without making a decision stale. The
    #: lineage is compared on its own (an earlier release hashed it in: such rows rewrite once).
    sa.Column("shown_print", sa.String(16)),
    #: JSON: field -> standardised value (dates ISO), missing fields left out.
    sa.Column("standardised", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


def now() -> dt.datetime:
    """UTC without a zone, as pipeline_run stores it, so both databases agree."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@contextlib.contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """One transaction with the review tables in place; a database error in one line."""
    with connected(url, "review tables in {url}: {why}", begin=True) as conn:
        metadata.create_all(conn)
        add_missing_columns(conn, metadata)
        yield conn


# --- pair keys and fingerprints -------------------------------------------------------------


def _key_text(left: tuple[str, str], right: tuple[str, str]) -> str:
    return f"{left[0]}\x1f{left[1]}\x1e{right[0]}\x1f{right[1]}"


def canonical_pair(
    a: tuple[str, str], b: tuple[str, str]
) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two (source, source_record_id) records in one fixed order, whichever came first."""
    return (a, b) if a <= b else (b, a)


def pair_key(a: tuple[str, str], b: tuple[str, str]) -> str:
    """A short, order-independent name for a pair: 12 hex digits of a SHA-256."""
    left, right = canonical_pair(a, b)
    return hashlib.sha256(_key_text(left, right).encode()).hexdigest()[:12]


def pair_keys(pairs: pd.DataFrame) -> pd.Series:
    """pair_key of each row of a frame with the four PAIR_COLUMNS."""
    rows = pairs[PAIR_COLUMNS].astype(str).itertuples(index=False, name=None)
    return pd.Series(
        [pair_key((ls, li), (rs, ri)) for ls, li, rs, ri in rows], index=pairs.index, dtype=object
    )


def canonical_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The frame with left/right swapped where needed so left <= right."""
    left = list(zip(pairs["left_source"], pairs["left_source_record_id"], strict=True))
    right = list(zip(pairs["right_source"], pairs["right_source_record_id"], strict=True))
    swap = np.array([a > b for a, b in zip(left, right, strict=True)], dtype=bool)
    out = pairs.copy()
    for side in ("source", "source_record_id"):
        lcol, rcol = f"left_{side}", f"right_{side}"
        out.loc[swap, lcol] = pairs.loc[swap, rcol].to_numpy()
        out.loc[swap, rcol] = pairs.loc[swap, lcol].to_numpy()
    return out


def _plain(value: object) -> object:
    """A JSON-ready value: dates as ISO text, NaN/NaT/NA as None, numpy scalars unwrapped."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and np.isnan(value) else value
    return value


def _column_values(records: pd.DataFrame, field: str) -> list[object]:
    if field not in records.columns:
        return [None] * len(records)
    codes, uniques = pd.factorize(records[field], use_na_sentinel=True)
    plain = [_plain(u) for u in uniques] + [None]
    return [plain[c] for c in codes]


# A character json.dumps escapes: any but printable ASCII, and `"` and `\`.
_ESCAPED = re.compile(r"[^ !#-\[\]-~]")


def _json_texts(uniques: pd.Index) -> np.ndarray:
    """json.dumps(_plain(u), default=str) of each distinct value, "" for null.

    The same text as encoding each value on its own, but dates and plain text (nearly every
    value) are formatted in bulk: a fingerprint stored with a decision must stay the same.
    """
    if isinstance(uniques, pd.DatetimeIndex):
        if uniques.tz is not None:  # _plain takes the date on the value's own clock
            uniques = uniques.tz_localize(None)
        days = np.datetime_as_string(uniques.to_numpy(), unit="D").astype(object)
        return '"' + days + '"'
    values = np.asarray(uniques, dtype=object)
    out = np.empty(len(values), dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        is_text = np.ones(len(values), dtype=bool)
    else:
        is_text = np.fromiter((type(v) is str for v in values), dtype=bool, count=len(values))
    verbatim = np.zeros(len(values), dtype=bool)
    verbatim[is_text] = _verbatim(values[is_text])
    out[verbatim] = '"' + values[verbatim] + '"'
    for i in np.flatnonzero(~verbatim):
        encoded = json.dumps(_plain(values[i]), default=str)
        out[i] = "" if encoded == "null" else encoded
    return out


def _verbatim(texts: np.ndarray) -> np.ndarray:
    """Which texts json.dumps writes unescaped; one search over them all in the usual case."""
    if not _ESCAPED.search("".join(texts)):
        return np.ones(len(texts), dtype=bool)
    search = _ESCAPED.search
    return np.fromiter((search(t) is None for t in texts), dtype=bool, count=len(texts))


def _encoded(records: pd.DataFrame, field: str) -> np.ndarray:
    """Each row's value as JSON text ("" when missing), encoded once per distinct value."""
    if field not in records.columns:
        return np.full(len(records), "", dtype=object)
    codes, uniques = pd.factorize(records[field], use_na_sentinel=True)
    table = np.append(_json_texts(uniques), np.array([""], dtype=object))
    return table[codes]


def fingerprints(records: pd.DataFrame) -> pd.DataFrame:
    """Per record: source, source_record_id and fingerprint, the SHA-256 of its linkage fields.

    The hashed text is the key and each LINKAGE_FIELDS value as JSON ("" when missing),
    joined with \\x1f. Decisions store it, so it must not change for the same values.
    """
    sources = records["source"].astype(str).to_numpy(dtype=object)
    ids = records["source_record_id"].astype(str).to_numpy(dtype=object)
    columns = [sources, ids, *(_encoded(records, f) for f in LINKAGE_FIELDS)]
    sha256 = hashlib.sha256
    prints = [sha256("\x1f".join(row).encode()).hexdigest() for row in zip(*columns, strict=True)]
    return pd.DataFrame(
        {"source": sources, "source_record_id": ids, "fingerprint": np.array(prints, object)}
    )


def standardised(records: pd.DataFrame) -> list[str]:
    """Each record's SHOWN_FIELDS as a JSON object, missing fields left out, in that order."""
    pieces = []
    for f in SHOWN_FIELDS:
        encoded = _encoded(records, f)
        pieces.append(np.where(encoded != "", f"{json.dumps(f)}: " + encoded, "").astype(object))
    return ["{" + ", ".join(p for p in row if p) + "}" for row in zip(*pieces, strict=True)]


def snapshot(records: pd.DataFrame) -> pd.DataFrame:
    """Per record: source, source_record_id, fingerprint, standardised (JSON), lineage."""
    out = fingerprints(records)
    out["standardised"] = standardised(records)
    out["lineage"] = _column_values(records, "lineage")
    return out


# --- record snapshots -----------------------------------------------------------------------


def sync_records(
    conn: sa.Connection, records: pd.DataFrame, current: pd.DataFrame, at: dt.datetime
) -> int:
    """Bring review_record in step with this run's records; returns rows written or removed.

    `current` is fingerprints(records), row for row. As a fingerprint covers the record's key,
    a stored row whose fingerprint and shown print (`shown_prints`: the fields a reviewer
    sees beyond linkage's, such as a date of death) are among this run's holds this run's
    values. If only its lineage moved (a row removed above it in its file renumbers it), the
    lineage is updated in place; the rest (changed or gone) are removed, and only records with
    a new fingerprint or shown print are built and written. A rerun over unchanged sources
    reads five columns and writes nothing; one that drops a few rows from a file updates the
    lineage of the rows after them and builds no JSON.
    """
    shown = shown_prints(records).to_numpy()
    fresh, gone, moved = _delta(_stored_rows(conn), current, shown, _lineages(records))
    _remove(conn, gone)
    _move(conn, moved, at)
    if fresh:
        conn.execute(
            review_record.insert(), _new_rows(records.iloc[fresh], current, shown, fresh, at)
        )
    return len(gone) + len(fresh) + len(moved) - _both(gone, current.iloc[fresh])


def _delta(
    stored: dict[str, tuple], current: pd.DataFrame, shown: np.ndarray, lineages: list[object]
) -> tuple[list[int], list[tuple[str, str]], list[tuple[str, str, str | None]]]:
    """What to write (positions into `current`), remove (keys) and move (keys, new lineage).

    `stored` is _stored_rows(); it is emptied. A record with a stored fingerprint but another
    shown print is removed and written; one with both stored but another lineage, moved.
    """
    fresh: list[int] = []
    gone: list[tuple[str, str]] = []
    moved: list[tuple[str, str, str | None]] = []
    for position, (key, shown_print, lineage) in enumerate(
        zip(current["fingerprint"], shown, lineages, strict=True)
    ):
        row = stored.pop(key, None)
        if row is None or row[1] != shown_print:
            fresh.append(position)
            if row is not None:
                gone.append((row[3], row[4]))
        elif row[2] != lineage:
            moved.append((row[3], row[4], lineage))
    gone += [(row[3], row[4]) for row in stored.values()]
    return fresh, gone, moved


def _lineages(records: pd.DataFrame) -> list[object]:
    """Each record's lineage as review_record stores it (text or None)."""
    if "lineage" not in records.columns:
        return [None] * len(records)
    values = records["lineage"]
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return _column_values(records, "lineage")  # not plain text: the general way
    return values.astype(object).where(values.notna(), None).tolist()


def _both(gone: list[tuple[str, str]], written: pd.DataFrame) -> int:
    """Records both removed and written (changed), counted once as before."""
    keys = zip(written["source"], written["source_record_id"], strict=True)
    return len(set(gone).intersection(keys))


def _stored_rows(conn: sa.Connection) -> dict[str, tuple]:
    """fingerprint -> (fingerprint, shown_print, lineage, source, source_record_id) of every
    stored record, straight off the driver. A fingerprint covers the record's key, so no two
    rows share one. A row of an earlier release (no shown print, or one that also hashed the
    lineage) has a shown print no record has now, so it is rewritten once."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(
            "SELECT fingerprint, shown_print, lineage, source, source_record_id FROM review_record"
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return {row[0]: row for row in rows}


def _remove(conn: sa.Connection, keys: list[tuple[str, str]]) -> None:
    """Delete these (source, source_record_id) records."""
    if not keys:
        return
    t = review_record
    conn.execute(
        t.delete().where(
            t.c.source == sa.bindparam("key_source"),
            t.c.source_record_id == sa.bindparam("key_id"),
        ),
        [{"key_source": s, "key_id": i} for s, i in keys],
    )


#: Where _move stages (source, source_record_id, lineage) for one UPDATE ... FROM.
_moved = sa.Table(
    "review_record_moved",
    sa.MetaData(),
    sa.Column("source", sa.String(100)),
    sa.Column("source_record_id", sa.String(200)),
    sa.Column("lineage", sa.Text),
    prefixes=["TEMPORARY"],
)


def _move(conn: sa.Connection, moved: list[tuple[str, str, str | None]], at: dt.datetime) -> None:
    """Set the lineage (and updated_at, as a rewrite would) of records whose only change is
    their lineage: staged in a temporary table, then one UPDATE ... FROM."""
    if not moved:
        return
    if conn.dialect.name == "sqlite" and conn.dialect.server_version_info < (3, 33):
        _move_each(conn, moved, at)  # no UPDATE ... FROM before SQLite 3.33
        return
    t, m = review_record, _moved
    m.create(conn)
    _stage(conn, moved)
    conn.execute(
        t.update()
        .where(t.c.source == m.c.source, t.c.source_record_id == m.c.source_record_id)
        .values(lineage=m.c.lineage, updated_at=at)
    )
    m.drop(conn)


def _move_each(
    conn: sa.Connection, moved: list[tuple[str, str, str | None]], at: dt.datetime
) -> None:
    """_move as one UPDATE per record (executemany), where UPDATE ... FROM is missing."""
    t = review_record
    conn.execute(
        t.update()
        .where(
            t.c.source == sa.bindparam("key_source"),
            t.c.source_record_id == sa.bindparam("key_id"),
        )
        .values(lineage=sa.bindparam("new_lineage"), updated_at=at),
        [{"key_source": s, "key_id": i, "new_lineage": where} for s, i, where in moved],
    )


def _stage(conn: sa.Connection, rows: list[tuple[str, str, str | None]]) -> None:
    """Fill the staging table straight through the driver: COPY with psycopg 3, one
    executemany elsewhere (the rows are text, so SQLAlchemy has nothing to convert)."""
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.driver == "psycopg":
            with cursor.copy(f"COPY {_moved.name} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            cursor.executemany(f"INSERT INTO {_moved.name} VALUES ({mark}, {mark}, {mark})", rows)
    finally:
        cursor.close()


#: The fields a reviewer sees that linkage does not read.
_SHOWN_ONLY: tuple[str, ...] = tuple(f for f in SHOWN_FIELDS if f not in LINKAGE_FIELDS)


def shown_prints(records: pd.DataFrame) -> pd.Series:
    """Per record, a 64-bit hash (hex) of the fields shown beyond linkage's, as JSON.

    The JSON text is what `standardised` writes, so a record with the same fingerprint and
    shown print has the same snapshot but for its lineage, which is compared on its own: a
    moved row is not a changed record. Each distinct value is encoded and hashed once.
    """
    hashed = pd.DataFrame({f: _hashed(records, f) for f in _SHOWN_ONLY})
    combined = pd.util.hash_pandas_object(hashed, index=False).to_numpy()
    return pd.Series(_hex(combined), index=records.index, dtype=object)


def _hashed(records: pd.DataFrame, field: str) -> np.ndarray:
    """Each row's value as JSON text ("" when missing), hashed to 64 bits."""
    if field not in records.columns:
        return np.full(len(records), pd.util.hash_array(np.array([""], dtype=object))[0])
    codes, uniques = pd.factorize(records[field], use_na_sentinel=True)
    table = np.append(_json_texts(uniques), np.array([""], dtype=object))
    return pd.util.hash_array(table)[codes]


def _hex(values: np.ndarray) -> np.ndarray:
    """Each unsigned 64-bit value as 16 hex digits, f"{v:016x}", formatted in one go."""
    text = values.astype(">u8").tobytes().hex().encode()
    return np.frombuffer(text, dtype="S16").astype("U16").astype(object)


def _new_rows(
    records: pd.DataFrame,
    current: pd.DataFrame,
    shown: np.ndarray,
    positions: list[int],
    at: dt.datetime,
) -> list[dict]:
    """review_record rows for these records (positions into `current` and `shown`)."""
    prints = current.iloc[positions]
    return [
        {
            "source": s,
            "source_record_id": i,
            "fingerprint": f,
            "shown_print": print_,
            "standardised": body,
            "lineage": lineage,
            "updated_at": at,
        }
        for s, i, f, print_, body, lineage in zip(
            prints["source"],
            prints["source_record_id"],
            prints["fingerprint"],
            shown[positions],
            standardised(records),
            _column_values(records, "lineage"),
            strict=True,
        )
    ]


def records_by_key(conn: sa.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple, dict]:
    """The stored snapshot of each (source, source_record_id) asked for, where there is one."""
    t = review_record
    found: dict[tuple, dict] = {}
    for source, record_id in keys:
        row = conn.execute(
            sa.select(t).where(t.c.source == source, t.c.source_record_id == record_id)
        ).first()
        if row is not None:
            found[(source, record_id)] = dict(row._mapping)
    return found


# --- decisions ------------------------------------------------------------------------------


def decisions(conn: sa.Connection, status: str | None = ACTIVE) -> pd.DataFrame:
    """Decisions with that status (all when None), oldest first."""
    query = sa.select(review_decision).order_by(review_decision.c.decision_id)
    if status is not None:
        query = query.where(review_decision.c.status == status)
    rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=[c.name for c in review_decision.columns])


def history(conn: sa.Connection, key: str) -> list[dict]:
    """Every decision on a pair, oldest first, with its audit events."""
    d, a = review_decision, review_decision_audit
    rows = conn.execute(sa.select(d).where(d.c.pair_key == key).order_by(d.c.decision_id))
    out = [dict(r._mapping) for r in rows]
    for item in out:
        events = conn.execute(
            sa.select(a.c.event, a.c.actor, a.c.detail, a.c.at)
            .where(a.c.decision_id == item["decision_id"])
            .order_by(a.c.audit_id)
        )
        item["events"] = [dict(e._mapping) for e in events]
    return out


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What `record_decision` did: a new decision, or a confirmation of the active one.

    A confirmation adds an audit row to the decision it confirms and no decision, so the
    audit never reads as if the pair's verdict changed when a second reviewer agreed.
    """

    decision_id: int
    #: True: the active decision already said this about these records as they are now.
    confirmed: bool
    #: The pair's active decision before this call (None when there was none).
    earlier: dict | None


def record_decision(
    conn: sa.Connection,
    left: dict,
    right: dict,
    decision: str,
    reviewer: str,
    reason: str,
    queued_at: dt.datetime | None,
) -> Recorded:
    """Record a decision (records are review_record rows), superseding the pair's active one,
    or, where the active one already says the same about unchanged records, confirm it."""
    (ls, li), (rs, ri) = canonical_pair(
        (left["source"], left["source_record_id"]), (right["source"], right["source_record_id"])
    )
    by_key = {(left["source"], left["source_record_id"]): left}
    by_key[(right["source"], right["source_record_id"])] = right
    key = pair_key((ls, li), (rs, ri))
    prints = (by_key[(ls, li)]["fingerprint"], by_key[(rs, ri)]["fingerprint"])
    at = now()
    active = _active(conn, key)
    earlier = active[-1] if active else None
    if earlier is not None and _says(earlier, decision, prints):
        _audit(conn, [(earlier["decision_id"], key)], "confirmed", reviewer, reason, at)
        return Recorded(int(earlier["decision_id"]), True, earlier)
    new_id = conn.execute(
        review_decision.insert().values(
            pair_key=key,
            left_source=ls,
            left_source_record_id=li,
            right_source=rs,
            right_source_record_id=ri,
            decision=decision,
            reviewer=reviewer,
            reason=reason,
            decided_at=at,
            left_fingerprint=prints[0],
            right_fingerprint=prints[1],
            queued_at=queued_at,
            status=ACTIVE,
        )
    ).inserted_primary_key[0]
    _audit(conn, [(new_id, key)], "decided", reviewer, decision, at)
    replaced = [(d["decision_id"], key) for d in active]
    move(conn, replaced, SUPERSEDED, reviewer, f"by decision {new_id}", at)
    return Recorded(int(new_id), False, earlier)


def _active(conn: sa.Connection, key: str) -> list[dict]:
    """The pair's active decisions (one, normally), oldest first."""
    d = review_decision
    rows = conn.execute(
        sa.select(d).where(d.c.pair_key == key, d.c.status == ACTIVE).order_by(d.c.decision_id)
    )
    return [dict(r._mapping) for r in rows]


def _says(active: dict, decision: str, prints: tuple[str, str]) -> bool:
    """Whether an active decision already says `decision` about the records as they are now:
    one made before a record changed would go stale at the next run, so it is not confirmed
    but replaced by a decision on the records as they are."""
    same_records = (active["left_fingerprint"], active["right_fingerprint"]) == prints
    return active["decision"] == decision and same_records


def move(
    conn: sa.Connection,
    ids: Sequence[tuple[int, str]],
    status: str,
    actor: str,
    detail: str | Sequence[str],
    at: dt.datetime,
) -> None:
    """Move active decisions (decision_id, pair_key) to `status`, with an audit row each."""
    if not ids:
        return
    for decision_id, _key in ids:
        conn.execute(
            review_decision.update()
            .where(
                review_decision.c.decision_id == decision_id,
                review_decision.c.status == ACTIVE,
            )
            .values(status=status)
        )
    _audit(conn, ids, status, actor, detail, at)


def _audit(
    conn: sa.Connection,
    ids: Sequence[tuple[int, str]],
    event: str,
    actor: str,
    detail: str | Sequence[str],
    at: dt.datetime,
) -> None:
    details = [detail] * len(ids) if isinstance(detail, str) else list(detail)
    conn.execute(
        review_decision_audit.insert(),
        [
            {"decision_id": i, "pair_key": k, "event": event, "actor": actor, "detail": d, "at": at}
            for (i, k), d in zip(ids, details, strict=True)
        ],
    )


def first_queued(conn: sa.Connection) -> dict[str, dt.datetime]:
    """pair_key -> when it was first queued, from the published queue and the decisions."""
    seen: dict[str, dt.datetime] = {}
    for key, at in conn.execute(
        sa.select(review_decision.c.pair_key, review_decision.c.queued_at).where(
            review_decision.c.queued_at.is_not(None)
        )
    ):
        seen[key] = min(at, seen.get(key, at))
    for key, at in _queue_times(conn).items():
        seen[key] = min(at, seen.get(key, at))
    return seen


def _queue_times(conn: sa.Connection) -> dict[str, dt.datetime]:
    """queued_at of the published review_queue, if it has that column yet."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("review_queue"):
        return {}
    columns = {c["name"] for c in inspector.get_columns("review_queue")}
    if "queued_at" not in columns or not set(PAIR_COLUMNS) <= columns:
        return {}
    table = sa.table("review_queue", *(sa.column(c) for c in [*PAIR_COLUMNS, "queued_at"]))
    rows = pd.DataFrame(
        conn.execute(sa.select(table).where(table.c.queued_at.is_not(None))).all(),
        columns=[*PAIR_COLUMNS, "queued_at"],
    )
    if rows.empty:
        return {}
    stamps = [pd.Timestamp(v).to_pydatetime() for v in rows["queued_at"]]
    return dict(zip(pair_keys(rows), stamps, strict=True))
