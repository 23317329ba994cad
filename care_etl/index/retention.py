"""Retention of what the product keeps of its own, beyond the records the sources still send.

The index is rebuilt from the sources on every run, so a record a source still sends is the
source's to keep or delete. What can outlive it is the product's own: reviewers' decisions
and their audit, a feed's last accepted version kept as a stand-in, the OCR cache, the
incremental cache and Dagster's storage. Each is kept for the retention its source's contract
declares, counted from when the record was last seen in a source.

"Last seen" needs one fact the index did not keep: when a record left. Every publish compares
the records it replaces with the ones it writes (`Presence`, inside the publish transaction)
and notes each record that left in `record_departure` with the time of the last run that
still had it; a record that comes back is struck off. `source_retention` keeps the retention
each source's contract last declared, so that a source whose contract is removed still has
one. Nothing here reads or prints a personal value: keys and counts only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from care_etl.contracts.diff import retention_days, retention_period  # units as diff reads them
from care_etl.index.publish import pipeline_run

log = logging.getLogger(__name__)

Key = tuple[str, str]

metadata = sa.MetaData()

#: One row per record that was in the index and is no longer in any source.
record_departure = sa.Table(
    "record_departure",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(300), primary_key=True),
    #: When the last run that still had the record finished.
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    #: True where the time was inferred (a record that left before departures were noted).
    sa.Column("estimated", sa.Boolean, nullable=False),
    #: The person id the record was linked to when it left (null: quarantined, or noted by
    #: an earlier release): its person gets that id back if the record returns (index.ids).
    sa.Column("person_id", sa.String(32)),
)

#: The retention each source's contract declared the last time the source ran.
source_retention = sa.Table(
    "source_retention",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("retention_days", sa.Float),
    sa.Column("retention", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

#: What `care-etl retention --apply` deleted: counts per store and source, never a value.
retention_log = sa.Table(
    "retention_log",
    metadata,
    sa.Column("log_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("store", sa.String(40), nullable=False),
    sa.Column("source", sa.String(210), nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
)


def utcnow() -> dt.datetime:
    """UTC without a zone, as pipeline_run stores its times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- noting departures, inside the publish transaction ------------------------------------


def present_keys(conn: sa.Connection) -> set[Key]:
    """Every record the published index holds, linked or quarantined."""
    return set(_published(conn))


def _published(conn: sa.Connection) -> dict[Key, str | None]:
    """Every record the published index holds, with its person id (None: quarantined)."""
    names = set(sa.inspect(conn).get_table_names())
    held: dict[Key, str | None] = {}
    cursor = conn.connection.cursor()  # plain tuples off the driver: 100k rows in a blink
    try:
        if "quarantine" in names:
            cursor.execute("SELECT source, source_record_id FROM quarantine")
            held.update((key, None) for key in cursor.fetchall())
        if "person_source_link" in names:
            cursor.execute("SELECT source, source_record_id, person_id FROM person_source_link")
            held.update(((s, i), p) for s, i, p in cursor.fetchall())
    finally:
        cursor.close()
    return held


@dataclass
class Presence:
    """The records of the index about to be replaced, with the person id of each linked one,
    and when they were last confirmed."""

    before: dict[Key, str | None]
    confirmed_at: dt.datetime | None

    @classmethod
    def read(cls, conn: sa.Connection) -> Presence:
        """Read before the publish writes anything (creates the retention tables)."""
        from care_etl.index.publish import add_missing_columns

        metadata.create_all(conn)
        add_missing_columns(conn, metadata)
        return cls(_published(conn), _last_run(conn))

    def record(self, conn: sa.Connection, at: dt.datetime) -> tuple[int, int]:
        """Note the records that left (with the id they held) and strike off those back;
        (left, back)."""
        now = present_keys(conn)
        noted = _departed_keys(conn)
        back = [k for k in noted if k in now]
        left = [k for k in self.before.keys() - now if k not in noted]
        _delete_departures(conn, back)
        seen = self.confirmed_at or at
        _insert_departures(conn, [(s, i, seen, False, self.before[(s, i)]) for s, i in left])
        return len(left), len(back)


def departed_persons(url: str) -> pd.DataFrame:
    """Records that left the index, with the person id each held then (index.ids gives it
    back if they return); empty where none is noted."""
    from care_etl.index.publish import connected

    columns = ["source", "source_record_id", "person_id"]
    with connected(url, "reading departed records from {url} failed: {why}") as conn:
        found = {c["name"] for c in _columns(conn, record_departure.name)}
        if "person_id" not in found:
            return pd.DataFrame(columns=columns)
        t = record_departure
        query = sa.select(t.c.source, t.c.source_record_id, t.c.person_id)
        return pd.read_sql(query.where(t.c.person_id.is_not(None)), conn)


def _columns(conn: sa.Connection, table: str) -> list[dict]:
    if table not in set(sa.inspect(conn).get_table_names()):
        return []
    return sa.inspect(conn).get_columns(table)


def _last_run(conn: sa.Connection, before: dt.datetime | None = None) -> dt.datetime | None:
    """When the last run (before `before`) finished; None before any."""
    query = sa.select(sa.func.max(pipeline_run.c.finished_at))
    if before is not None:
        query = query.where(pipeline_run.c.finished_at < before)
    return _as_datetime(conn.execute(query).scalar())


def _as_datetime(value: object) -> dt.datetime | None:
    """A timestamp as SQLite (text) or PostgreSQL (datetime) returns it."""
    if value is None:
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def _departed_keys(conn: sa.Connection) -> set[Key]:
    t = record_departure
    return {(s, i) for s, i in conn.execute(sa.select(t.c.source, t.c.source_record_id))}


def _delete_departures(conn: sa.Connection, keys: Sequence[Key]) -> None:
    if not keys:
        return
    t = record_departure
    conn.execute(
        t.delete().where(
            t.c.source == sa.bindparam("k_source"), t.c.source_record_id == sa.bindparam("k_id")
        ),
        [{"k_source": s, "k_id": i} for s, i in keys],
    )


def _insert_departures(
    conn: sa.Connection, rows: Sequence[tuple[str, str, dt.datetime, bool, str | None]]
) -> None:
    """Rows of (source, source_record_id, last_seen_at, estimated, person_id)."""
    if rows:
        conn.execute(
            record_departure.insert(),
            [
                {"source": s, "source_record_id": i, "last_seen_at": at, "estimated": e,
                 "person_id": p}
                for s, i, at, e, p in rows
            ],
        )  # fmt: skip


# --- retention per source ---------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A source's retention: days (None when unknown) and as its contract wrote it."""

    days: float | None
    text: str

    def past(self, last_seen: dt.datetime, now: dt.datetime) -> bool:
        return self.days is not None and last_seen + dt.timedelta(days=self.days) < now


UNKNOWN = Limit(None, "unknown (no contract)")


def contract_limit(contract: object) -> Limit:
    """The retention a contract declares in slaProperties."""
    document = getattr(contract, "document", {})
    days = retention_days(document)
    return Limit(days, retention_period(document) if days is not None else "unreadable")


def remember_retention(conn: sa.Connection, contracts: Iterable[object], at: dt.datetime) -> None:
    """Keep each running source's retention, for the day its contract is removed."""
    metadata.create_all(conn)
    t = source_retention
    for contract in contracts:
        limit = contract_limit(contract)
        conn.execute(t.delete().where(t.c.source == contract.id))  # type: ignore[attr-defined]
        conn.execute(
            t.insert().values(
                source=contract.id,  # type: ignore[attr-defined]
                retention_days=limit.days,
                retention=limit.text,
                updated_at=at,
            )
        )


def limits(conn: sa.Connection, contracts: Iterable[object], tables: set[str]) -> dict[str, Limit]:
    """source -> retention: its contract's, else the one it last ran under."""
    t = source_retention
    stored = sa.select(t.c.source, t.c.retention_days, t.c.retention)
    found = {
        s: Limit(days, f"{text} (last contract)")
        for s, days, text in (conn.execute(stored) if t.name in tables else [])
    }
    found.update({c.id: contract_limit(c) for c in contracts})  # type: ignore[attr-defined]
    return found


# --- what is held, and what is past retention -------------------------------------------


@dataclass
class Held:
    """One store's items for one source: held for records gone, and of those past retention."""

    store: str
    source: str
    held: int = 0
    past: int = 0
    limit: str = ""
    #: What --apply deletes: primary keys (database) or paths (files). Never printed.
    doomed: list = field(default_factory=list, repr=False)


def departures(
    conn: sa.Connection, present: set[Key], named: Iterable[Key], now: dt.datetime,
    tables: set[str],
) -> pd.DataFrame:  # fmt: skip
    """Noted departures, plus records named by a decision that left before they were noted.

    Such a record's last sighting is taken from the run before the one that marked its
    decision stale as "no longer indexed"; without one it is counted from now (estimated).
    """
    t = record_departure
    query = sa.select(t.c.source, t.c.source_record_id, t.c.last_seen_at)
    rows = conn.execute(query).all() if t.name in tables else []
    noted = pd.DataFrame(rows, columns=["source", "source_record_id", "last_seen_at"])
    noted["estimated"] = False
    known = set(zip(noted["source"], noted["source_record_id"], strict=True))
    missing = sorted({k for k in named if k not in present and k not in known})
    guessed = [(s, i, _estimate(conn, (s, i), now), True) for s, i in missing]
    extra = pd.DataFrame(guessed, columns=[*noted.columns])
    frames = [f for f in (noted, extra) if len(f)]  # concat of an empty frame is deprecated
    both = pd.concat(frames, ignore_index=True) if frames else noted
    both["last_seen_at"] = [_as_datetime(v) for v in both["last_seen_at"]]
    return both


def _estimate(conn: sa.Connection, key: Key, now: dt.datetime) -> dt.datetime:
    """When a record not noted as departed was last seen, from the decisions' audit."""
    from care_etl.review.store import review_decision as d
    from care_etl.review.store import review_decision_audit as a

    times = []
    for side in ("left", "right"):
        query = (
            sa.select(sa.func.min(a.c.at))
            .join(d, d.c.decision_id == a.c.decision_id)
            .where(
                d.c[f"{side}_source"] == key[0],
                d.c[f"{side}_source_record_id"] == key[1],
                a.c.event == "stale",
                a.c.detail.contains(f"{side} record no longer indexed"),
            )
        )
        times.append(_as_datetime(conn.execute(query).scalar()))
    gone_at = min((t for t in times if t is not None), default=None)
    if gone_at is None:
        return now
    return _last_run(conn, before=gone_at) or gone_at


def _pair_label(left: str, right: str) -> str:
    return left if left == right else f"{min(left, right)} + {max(left, right)}"


@dataclass
class Sightings:
    """Which records are present, when the others were last seen, and each source's limit."""

    present: set[Key]
    last_seen: dict[Key, dt.datetime]
    limits: dict[str, Limit]
    now: dt.datetime
    #: Departures inferred now, not yet in record_departure (written by --apply).
    estimated: pd.DataFrame
    #: The tables the database has: a report creates none (it may run read-only).
    tables: set[str]

    def limit(self, source: str) -> Limit:
        return self.limits.get(source, UNKNOWN)

    def past(self, key: Key) -> bool:
        """Gone from every source, and for longer than its source's retention."""
        seen = self.last_seen.get(key)
        return (
            key not in self.present and seen is not None and self.limit(key[0]).past(seen, self.now)
        )


def sightings(conn: sa.Connection, contracts: Sequence[object], now: dt.datetime) -> Sightings:
    """Everything the stores are judged by, read once."""
    tables = set(sa.inspect(conn).get_table_names())
    present = present_keys(conn)
    gone = departures(conn, present, _decision_keys(conn, tables), now, tables)
    keys = zip(gone["source"], gone["source_record_id"], strict=True)
    seen = dict(zip(keys, gone["last_seen_at"], strict=True))
    estimated = gone[gone["estimated"]]
    return Sightings(present, seen, limits(conn, contracts, tables), now, estimated, tables)


def _decision_keys(conn: sa.Connection, tables: set[str]) -> set[Key]:
    from care_etl.review.store import review_decision as d

    if d.name not in tables:
        return set()
    rows = conn.execute(
        sa.select(d.c.left_source, d.c.left_source_record_id, d.c.right_source,
                  d.c.right_source_record_id)
    ).all()  # fmt: skip
    return {(r[0], r[1]) for r in rows} | {(r[2], r[3]) for r in rows}


def decisions_held(conn: sa.Connection, seen: Sightings) -> list[Held]:
    """Decisions (and their audit rows) whose two records have both left every source.

    A decision with a record still present is never counted, so never deleted.
    """
    from care_etl.review.store import review_decision as d

    if d.name not in seen.tables:
        return []
    rows = conn.execute(
        sa.select(d.c.decision_id, d.c.left_source, d.c.left_source_record_id,
                  d.c.right_source, d.c.right_source_record_id)
    ).all()  # fmt: skip
    held: dict[str, Held] = {}
    gone: dict[str, list[int]] = {}
    for decision_id, ls, li, rs, ri in rows:
        if (ls, li) in seen.present or (rs, ri) in seen.present:
            continue
        label = _pair_label(ls, rs)
        limit = " / ".join(sorted({seen.limit(ls).text, seen.limit(rs).text}))
        item = held.setdefault(label, Held("review_decision", label, limit=limit))
        item.held += 1
        gone.setdefault(label, []).append(decision_id)
        if seen.past((ls, li)) and seen.past((rs, ri)):
            item.past += 1
            item.doomed.append(decision_id)
    audits = [_audit_held(conn, item, gone[label]) for label, item in held.items()]
    return [*held.values(), *audits]


def _audit_held(conn: sa.Connection, decisions: Held, gone: list[int]) -> Held:
    """The audit rows of those decisions; past when their decision is."""
    from care_etl.review.store import review_decision_audit as a

    every = conn.execute(sa.select(a.c.decision_id, sa.func.count()).group_by(a.c.decision_id))
    wanted = set(gone)
    counts = {i: n for i, n in every if i in wanted}
    item = Held("review_decision_audit", decisions.source, limit=decisions.limit)
    item.held = sum(counts.values())
    item.past = sum(counts.get(i, 0) for i in decisions.doomed)
    item.doomed = list(decisions.doomed)  # deleted by decision_id
    return item


def departures_held(seen: Sightings, kept: set[Key]) -> list[Held]:
    """record_departure's own rows (a record's key and when it left), per source; past
    retention unless a decision that stays still names the record."""
    held: dict[str, Held] = {}
    for key in seen.last_seen:
        item = held.setdefault(key[0], Held("record_departure", key[0]))
        item.limit = seen.limit(key[0]).text
        item.held += 1
        if key not in kept and seen.past(key):
            item.past += 1
            item.doomed.append(key)
    return list(held.values())


def accepted_held(conn: sa.Connection, seen: Sightings) -> list[Held]:
    """Stand-ins (a feed's last accepted version) of sources none of whose records is in
    the index any more: a source no longer run. Past when its records' last sighting is."""
    from care_etl.quality.accepted import accepted_source as t

    if t.name not in seen.tables:
        return []
    running = {s for s, _ in seen.present}
    out = []
    for source, accepted_at, count in conn.execute(
        sa.select(t.c.source, t.c.accepted_at, t.c.record_count)
    ):
        if source in running:
            continue
        times = [at for (s, _), at in seen.last_seen.items() if s == source]
        last = max(times, default=_as_datetime(accepted_at))
        limit = seen.limit(source)
        past = last is not None and limit.past(last, seen.now)
        out.append(
            Held("accepted_source", source, count, count if past else 0, limit.text,
                 [source] if past else [])
        )  # fmt: skip
    return out


def access_held(conn: sa.Connection, seen: Sightings) -> list[Held]:
    """The access log (index.access): every row held, those older than ACCESS_LOG_YEARS
    past. Not a record's data but who looked at it, so kept by its own period."""
    from care_etl.index.access import ACCESS_LOG_YEARS
    from care_etl.index.access import access_log as t

    if t.name not in seen.tables:
        return []
    held = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
    if not held:
        return []
    cutoff = seen.now - dt.timedelta(days=round(365.25 * ACCESS_LOG_YEARS))
    past = [i for (i,) in conn.execute(sa.select(t.c.access_id).where(t.c.accessed_at < cutoff))]
    return [
        Held("access_log", "(every access)", held, len(past), f"{ACCESS_LOG_YEARS} years", past)
    ]


@dataclass
class Survey:
    """What every database store holds for records gone, and what --apply would delete."""

    items: list[Held]
    seen: Sightings


def survey(conn: sa.Connection, contracts: Sequence[object], now: dt.datetime) -> Survey:
    """Count, per store and source, what is held for records gone and what is past."""
    seen = sightings(conn, contracts, now)
    decisions = decisions_held(conn, seen)
    doomed = {i for h in decisions if h.store == "review_decision" for i in h.doomed}
    kept = _kept_decision_keys(conn, doomed, seen.tables)
    items = [
        *decisions, *departures_held(seen, kept), *accepted_held(conn, seen),
        *access_held(conn, seen),
    ]  # fmt: skip
    return Survey(items, seen)


def _kept_decision_keys(conn: sa.Connection, doomed: set[int], tables: set[str]) -> set[Key]:
    from care_etl.review.store import review_decision as d

    if d.name not in tables:
        return set()
    keys: set[Key] = set()
    for row in conn.execute(sa.select(d)).mappings():
        if row["decision_id"] not in doomed:
            keys.add((row["left_source"], row["left_source_record_id"]))
            keys.add((row["right_source"], row["right_source_record_id"]))
    return keys


# --- deleting what is past retention, in one transaction ---------------------------------


def apply(conn: sa.Connection, found: Survey, actor: str) -> int:
    """Delete every database item past retention, note estimated departures and log the
    counts (retention_log; deleted decisions also in review_decision_audit). Returns the
    number of items deleted. The caller's transaction makes it all or nothing."""
    metadata.create_all(conn)
    doomed_keys = {k for h in found.items if h.store == "record_departure" for k in h.doomed}
    _note_estimates(conn, found.seen, doomed_keys)
    deleted = 0
    for item in found.items:
        if item.past:
            _DELETERS[item.store](conn, item, actor, found.seen.now)
            _log(conn, item, actor, found.seen.now)
            deleted += item.past
    return deleted


def _note_estimates(conn: sa.Connection, seen: Sightings, skip: set[Key]) -> int:
    """Write the inferred departures, so that their clock starts once, not at every look."""
    rows = [
        (s, i, at, True, None)  # which person the record was of is not known
        for s, i, at in seen.estimated[["source", "source_record_id", "last_seen_at"]].itertuples(
            index=False, name=None
        )
        if (s, i) not in skip
    ]
    _insert_departures(conn, rows)
    return len(rows)


def note_after_run(conn: sa.Connection, contracts: Sequence[object], now: dt.datetime) -> None:
    """After a run: keep each source's retention and note the departures it can only infer
    (records named by a decision that left before departures were noted)."""
    remember_retention(conn, contracts, now)
    _note_estimates(conn, sightings(conn, contracts, now), set())


def _delete_decisions(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    from care_etl.review.store import review_decision as d
    from care_etl.review.store import review_decision_audit as a

    for chunk in _chunks(item.doomed):
        conn.execute(a.delete().where(a.c.decision_id.in_(chunk)))
        conn.execute(d.delete().where(d.c.decision_id.in_(chunk)))
    conn.execute(
        a.insert().values(
            decision_id=0,
            pair_key="retention",
            event="deleted",
            actor=actor,
            detail=f"{item.past} decision(s) deleted with their audit rows: both records gone "
            f"from every source for longer than retention ({item.source}: {item.limit})",
            at=at,
        )
    )


def _delete_nothing(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    """The audit rows go with their decisions (_delete_decisions)."""


def _delete_departure_rows(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    _delete_departures(conn, item.doomed)


def _delete_accepted(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    from care_etl.quality.accepted import accepted_source as t

    conn.execute(t.delete().where(t.c.source.in_(item.doomed)))


def _delete_access(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    from care_etl.index.access import access_log as t

    for chunk in _chunks(item.doomed):
        conn.execute(t.delete().where(t.c.access_id.in_(chunk)))


_DELETERS = {
    "review_decision": _delete_decisions,
    "review_decision_audit": _delete_nothing,
    "record_departure": _delete_departure_rows,
    "accepted_source": _delete_accepted,
    "access_log": _delete_access,
}


def _log(conn: sa.Connection, item: Held, actor: str, at: dt.datetime) -> None:
    conn.execute(
        retention_log.insert().values(
            at=at,
            actor=actor,
            store=item.store,
            source=item.source,
            deleted=item.past,
            detail=f"older than {item.limit}"
            if item.store == "access_log"
            else f"past retention ({item.limit}) since last seen in a source",
        )
    )


def log_files(conn: sa.Connection, items: Sequence[Held], actor: str, at: dt.datetime) -> None:
    """Log the counts of cache files deleted (they are not in any transaction)."""
    for item in items:
        if item.past:
            _log(conn, item, actor, at)


def _chunks(values: Sequence, size: int = 500) -> Iterable[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]
