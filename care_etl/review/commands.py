"""What `care-etl review list | show | decide` do (the parser is in care_etl.review.cli)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from care_etl.errors import CareEtlError
from care_etl.index.access import log_access
from care_etl.index.publish import missing_sqlite_file
from care_etl.review import context, listing, show, store

_PAIR_KEY = re.compile(r"^[0-9a-f]{12}$")


class ReviewError(CareEtlError):
    """A review command cannot do what was asked (unknown pair, missing reason, ...)."""


def default_url() -> str:
    """The index the review commands open when given no --database: the one `care-etl run`
    and `household` open (CARE_ETL_DATABASE_URL, else care_etl.db beside the sources folder
    CARE_ETL_SOURCES_DIR names, the demo's by default)."""
    from care_etl.locations import index_url_for, sources_dir_for

    return index_url_for(sources_dir_for())


def _url(args: argparse.Namespace) -> str:
    url = args.database or default_url()
    missing = missing_sqlite_file(url)
    if missing:
        raise ReviewError(f"no index database at {missing}")
    return url


# --- the queue ------------------------------------------------------------------------------


def _queue(conn: sa.Connection, url: str) -> pd.DataFrame:
    """The published review_queue in `list` order, with pair_key and queued_at."""
    if not sa.inspect(conn).has_table("review_queue"):
        raise ReviewError(f"no review queue in {store.safe_url(url)}: run `care-etl run` first")
    queue = pd.read_sql_table("review_queue", conn)
    if "queued_at" not in queue.columns:
        queue["queued_at"] = None
    queue["queued_at"] = pd.to_datetime(queue["queued_at"])
    queue["pair_key"] = store.pair_keys(queue)
    return queue.sort_values(
        ["queued_at", "match_probability", "pair_key"],
        ascending=[True, False, True],
        na_position="last",
    ).reset_index(drop=True)


def list_pairs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ReviewError("--limit must be at least 1")
    url = _url(args)
    with store.connect(url) as conn:
        queue = _queue(conn, url)
        pending = store.decisions(conn)
        kept_apart = context.bearings(conn, queue)
    if queue.empty:
        print("No pairs are awaiting review.")
        return 0
    decided = {
        r.pair_key: f"{show.decision_words(r.decision)} ({r.reviewer})"
        for r in pending.itertuples(index=False)
    }
    at = store.now()
    rows = [
        [
            i + 1,
            r.pair_key,
            r.match_probability,
            f"{r.left_source} {r.left_source_record_id}",
            f"{r.right_source} {r.right_source_record_id}",
            _why_here(r.evidence, kept_apart.get(r.pair_key, [])),
            show.age(_stamp(r.queued_at), at),
            decided.get(r.pair_key, ""),
        ]
        for i, r in enumerate(queue.head(args.limit).itertuples(index=False))
    ]
    headers = [
        "#",
        "pair",
        "prob.",
        "left record",
        "right record",
        "why here",
        "waiting",
        "decided",
    ]
    print(show.table(headers, rows, right={0, 2, 6}))
    listing.remember(url, [r[1] for r in rows])
    more = len(queue) - len(rows)
    tail = f" (showing {len(rows)}; --limit for more)" if more > 0 else ""
    pairs = "1 pair" if len(queue) == 1 else f"{len(queue)} pairs"
    print(f"\n{pairs} awaiting review{tail}. A decision takes effect on the next run.")
    return 0


def _why_here(evidence: str | None, kept_apart: list[context.Bearing]) -> str:
    """The list's reason for a pair: the model's or a rule's, then earlier decisions it meets."""
    return "; ".join(
        w for w in (show.reason_held(evidence), show.kept_apart_short(kept_apart)) if w
    )


def _stamp(value: object):
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


# --- one pair -------------------------------------------------------------------------------


@dataclass
class _Pair:
    key: str
    left: dict
    right: dict
    queue_row: dict | None
    #: The published queue (_queue), which the pair may or may not be in.
    queue: pd.DataFrame


def _resolve(conn: sa.Connection, url: str, tokens: list[str], *, gone_ok: bool = False) -> _Pair:
    """The pair a user named, with both records as the last run saw them.

    `gone_ok`: a decided pair whose record has left the index since (removed at source) is
    still resolved, the record standing as gone, so that its decisions can be read back."""
    queue = _queue(conn, url)
    if len(tokens) == 2:
        a, b = (_record_ref(t) for t in tokens)
        if a == b:
            raise ReviewError("a record cannot be paired with itself")
    elif len(tokens) == 1:
        a, b = _named_pair(conn, url, queue, tokens[0])
    else:
        raise ReviewError(f"give one PAIR or two SOURCE/RECORD_ID, not {len(tokens)} values")
    (ls, li), (rs, ri) = store.canonical_pair(a, b)
    found = store.records_by_key(conn, [(ls, li), (rs, ri)])
    key = store.pair_key(a, b)
    for ref in ((ls, li), (rs, ri)):
        if ref not in found:
            if not gone_ok or not store.history(conn, key):
                raise ReviewError(
                    f"record {ref[0]}/{ref[1]} is not in the index (as of the last run)"
                )
            found[ref] = _gone(ref)
    match = queue[queue["pair_key"] == key]
    row = match.iloc[0].to_dict() if len(match) else None
    if row is not None:
        row["queued_at"] = _stamp(row["queued_at"])
    return _Pair(key, found[(ls, li)], found[(rs, ri)], row, queue)


def _gone(ref: tuple[str, str]) -> dict:
    """A decided pair's record that the last run no longer indexed: its key, no values."""
    return {"source": ref[0], "source_record_id": ref[1], "standardised": "{}", "gone": True}


def _record_ref(token: str) -> tuple[str, str]:
    source, slash, record_id = token.partition("/")
    if not slash or not source or not record_id:
        raise ReviewError(
            f"'{token}' is not SOURCE/RECORD_ID: two values name a pair by its two records "
            "(one value names it by key or row)"
        )
    return source, record_id


def _named_pair(
    conn: sa.Connection, url: str, queue: pd.DataFrame, token: str
) -> tuple[tuple, tuple]:
    if "/" in token:
        raise ReviewError(f"'{token}' is one record: name both records of the pair")
    key = _listed_key(url, queue, int(token)) if token.isdigit() else token.lower()
    if not _PAIR_KEY.match(key):
        raise ReviewError(f"'{token}' is not a pair key, a row number or SOURCE/RECORD_ID")
    match = queue[queue["pair_key"] == key]
    if match.empty:
        match = store.decisions(conn, status=None)
        match = match[match["pair_key"] == key]
    if match.empty:
        raise ReviewError(f"unknown pair {token}: not in the review queue nor decided before")
    row = match.iloc[-1]
    return (
        (row["left_source"], row["left_source_record_id"]),
        (row["right_source"], row["right_source_record_id"]),
    )


def _listed_key(url: str, queue: pd.DataFrame, number: int) -> str:
    """The pair at row `number` of the user's last `review list`, if it is still queued."""
    listed = listing.recall(url)
    if listed is None:
        raise ReviewError(
            f"row {number}: row numbers are those of your last `care-etl review list` of this "
            "database, and there is none; list first, or name the pair by its key"
        )
    if not 1 <= number <= len(listed):
        raise ReviewError(f"no row {number}: your last `review list` showed {len(listed)} pairs")
    key = listed[number - 1]
    if not (queue["pair_key"] == key).any():
        raise ReviewError(
            f"row {number} of your last list was pair {key}, which has left the queue since "
            "(a run applied its decision, or one of its records changed); list again"
        )
    return key


def show_pair(args: argparse.Namespace) -> int:
    url = _url(args)
    with store.connect(url) as conn:
        pair = _resolve(conn, url, args.pair, gone_ok=True)
        decisions = store.history(conn, pair.key)
        for record in (pair.left, pair.right):
            record["person_id"] = None if record.get("gone") else _person_id(conn, record)
        kept_apart = context.bearings(conn, _with_pair(pair)).get(pair.key, [])
        applied = _applied(pair, decisions, _last_run(conn))
    more = _queued_with(pair) + applied
    shown = [r["person_id"] for r in (pair.left, pair.right) if r.get("person_id")]
    log_access(url, "review show", shown, detail=f"pair {pair.key}")
    print(
        show.pair_view(pair.key, pair.left, pair.right, pair.queue_row, decisions, kept_apart, more)
    )
    return 0


def _last_run(conn: sa.Connection) -> dt.datetime | None:
    """When the index was last published (None before any run)."""
    if not sa.inspect(conn).has_table("pipeline_run"):
        return None
    finished = conn.execute(sa.text("SELECT MAX(finished_at) FROM pipeline_run")).scalar()
    return _stamp(finished)


def _applied(pair: _Pair, decisions: list[dict], last_run: dt.datetime | None) -> list[str]:
    """Whether the pair's decision in force shows in the index: made since the last run, it
    waits for the next; a link the last run did not make is said so, with why if known."""
    active = [d for d in decisions if d["status"] == store.ACTIVE]
    people = (pair.left.get("person_id"), pair.right.get("person_id"))
    if not active or None in people:
        return []
    decision = active[-1]
    if (people[0] == people[1]) == (decision["decision"] == store.LINK):
        return []
    # decided_at is kept to the second: one made in the second the run finished came too
    # late for it (the run read decisions before it linked)
    if last_run is None or _stamp(decision["decided_at"]) >= last_run.replace(microsecond=0):
        return ["The decision takes effect on the next run."]
    if decision["decision"] == store.LINK and _two_nhs_numbers(pair):
        return [
            "The link decision is not made: the two records carry different valid NHS "
            "numbers, and the index never puts two NHS numbers in one person."
        ]
    return []


def _with_pair(pair: _Pair) -> pd.DataFrame:
    """The queue, with the pair added when it is not queued (to find decisions it meets)."""
    if pair.queue_row is not None:
        return pair.queue
    row = {"pair_key": pair.key}
    for side, record in (("left", pair.left), ("right", pair.right)):
        row[f"{side}_source"] = record["source"]
        row[f"{side}_source_record_id"] = record["source_record_id"]
    return pd.concat([pair.queue, pd.DataFrame([row])], ignore_index=True)


def _queued_with(pair: _Pair) -> list[str]:
    """Lines naming the other queued pairs of either record: one record matching several
    others (two NHS numbers, a new double of someone kept apart) is judged with them all."""
    lines = []
    for side, record in (("left", pair.left), ("right", pair.right)):
        ref = (record["source"], record["source_record_id"])
        for other in pair.queue[pair.queue["pair_key"] != pair.key].itertuples(index=False):
            ends = [
                (other.left_source, other.left_source_record_id),
                (other.right_source, other.right_source_record_id),
            ]
            if ref in ends:
                partner = ends[1 - ends.index(ref)]
                lines.append(
                    f"The {side} record is also queued with {partner[0]} {partner[1]} (pair "
                    f"{other.pair_key}, match probability {other.match_probability:.3f})."
                )
    return lines


def _person_id(conn: sa.Connection, record: dict) -> str | None:
    """The record's person in the published index (None before the first run)."""
    if not sa.inspect(conn).has_table("person_source_link"):
        return None
    link = sa.table(
        "person_source_link", *map(sa.column, ("person_id", "source", "source_record_id"))
    )
    query = sa.select(link.c.person_id).where(
        link.c.source == record["source"], link.c.source_record_id == record["source_record_id"]
    )
    return conn.execute(query).scalar()


def decide_pair(args: argparse.Namespace) -> int:
    if args.decision is None:
        raise ReviewError("say --link or --no-link")
    reviewer = (args.reviewer or "").strip()
    reason = (args.reason or "").strip()
    if not reviewer:
        raise ReviewError("--reviewer NAME is required: decisions are audited")
    if not reason:
        raise ReviewError("--reason TEXT is required: say why, for whoever reads the audit")
    url = _url(args)
    with store.connect(url) as conn:
        pair = _resolve(conn, url, args.pair)
        queued_at = pair.queue_row["queued_at"] if pair.queue_row else None
        recorded = store.record_decision(
            conn, pair.left, pair.right, args.decision, reviewer, reason, queued_at
        )
    print(_decided_words(pair.key, args.decision, reviewer, recorded))
    if args.decision == store.LINK and _two_nhs_numbers(pair):
        print(
            "But the two records carry different valid NHS numbers, and the index never puts "
            "two NHS numbers in one person: the link will not be made until one of them is "
            "corrected at source."
        )
    return 0


def _two_nhs_numbers(pair: _Pair) -> bool:
    """Whether both records carry a valid NHS number (as standardised) and they differ."""
    numbers = [json.loads(r["standardised"]).get("nhs_number") for r in (pair.left, pair.right)]
    return all(numbers) and numbers[0] != numbers[1]


def _decided_words(key: str, decision: str, reviewer: str, recorded: store.Recorded) -> str:
    """What a decide did, for the reviewer: a new decision, or a confirmation of the same."""
    label = "link (one person)" if decision == store.LINK else "no link (different people)"
    earlier = recorded.earlier
    if recorded.confirmed and earlier is not None:
        return (
            f"Pair {key} was already decided {label} by {earlier['reviewer']} on "
            f"{show.day(earlier['decided_at'])} (decision {recorded.decision_id}); nothing "
            f"changes. Your confirmation is recorded in its audit, by {reviewer}."
        )
    lines = [f"Recorded decision {recorded.decision_id}: pair {key} is {label}, by {reviewer}."]
    if earlier is not None:
        why = (
            "a record has changed since"
            if earlier["decision"] == decision
            else f"it said {show.decision_words(earlier['decision'])}"
        )
        lines.append(
            f"It supersedes decision {earlier['decision_id']} by {earlier['reviewer']} on "
            f"{show.day(earlier['decided_at'])} ({why})."
        )
    lines.append("It takes effect on the next run and holds until either record changes.")
    return "\n".join(lines)
