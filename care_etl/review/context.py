"""Earlier no-link decisions that bear on a queued pair, for the reviewer to read first.

A reviewer kept A apart from B; a new record C, B's double, arrives and joins B's person
(or is queued with B), and C-vs-A is queued. Linkage says only why it held the pair back
(a reviewer kept someone apart, two NHS numbers, ...). Whoever reviews C-vs-A must see that
A was kept apart from B, by whom, when and why, before deciding otherwise. A decision bears
on a pair when one of its records is, or shares a person with, or is queued with, one record
of the pair, and its other record is so to the pair's other record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from care_etl.review import store

Record = tuple[str, str]
#: How a decision's record stands to a record of the pair: of its person, or of the person
#: of a record it is queued with.
PERSON, QUEUED = "person", "queued"
_CHUNK = 500


@dataclass(frozen=True)
class Bearing:
    """An active no-link decision and how each of its records stands to the pair."""

    decision: dict
    #: (record, PERSON or QUEUED) for the decision's two records: first the one standing to
    #: the pair's left record, then the one standing to its right record.
    ends: tuple[tuple[Record, str], tuple[Record, str]]


def bearings(conn: sa.Connection, queue: pd.DataFrame) -> dict[str, list[Bearing]]:
    """pair_key -> the active no-link decisions bearing on that queued pair (none: absent)."""
    kept_apart = _no_links(conn)
    if kept_apart.empty or queue.empty:
        return {}
    pairs = list(_pairs(queue))
    records = {r for _, left, right in pairs for r in (left, right)}
    records |= {r for d in kept_apart.itertuples(index=False) for r in _ends(d)}
    person = persons(conn, records)
    neighbours = _neighbours(pairs)
    by_person = _by_person(kept_apart.to_dict("records"), person)
    found: dict[str, list[Bearing]] = {}
    for key, left, right in pairs:
        near = (_near(left, right, person, neighbours), _near(right, left, person, neighbours))
        candidates = {id(d): d for p in near[0] for d in by_person.get(p, [])}
        hits = [_bearing(d, near, person) for d in candidates.values()]
        hits = [h for h in hits if h is not None and h.decision["pair_key"] != key]
        if hits:
            found[key] = sorted(hits, key=lambda h: h.decision["decision_id"])
    return found


def _by_person(decisions: list[dict], person: dict[Record, str]) -> dict[str, list[dict]]:
    """person id -> the decisions with a record of that person (each pair is checked against
    the decisions of the persons near it, not every decision)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for d in decisions:
        for side in ("left", "right"):
            found = person.get((d[f"{side}_source"], d[f"{side}_source_record_id"]))
            if found is not None:
                out[found].append(d)
    return out


def _no_links(conn: sa.Connection) -> pd.DataFrame:
    decisions = store.decisions(conn)
    return decisions[decisions["decision"] == store.NO_LINK]


def _pairs(queue: pd.DataFrame) -> Iterable[tuple[str, Record, Record]]:
    columns = ["pair_key", *store.PAIR_COLUMNS]
    for key, ls, li, rs, ri in queue[columns].itertuples(index=False, name=None):
        yield key, (ls, li), (rs, ri)


def _ends(decision) -> tuple[Record, Record]:
    return (
        (decision.left_source, decision.left_source_record_id),
        (decision.right_source, decision.right_source_record_id),
    )


def persons(conn: sa.Connection, records: set[Record]) -> dict[Record, str]:
    """Each record's person in the published index (records not indexed are left out)."""
    if not records or not sa.inspect(conn).has_table("person_source_link"):
        return {}
    link = sa.table(
        "person_source_link", *map(sa.column, ("source", "source_record_id", "person_id"))
    )
    ids = sorted({i for _, i in records})
    found: dict[Record, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(link).where(link.c.source_record_id.in_(ids[start : start + _CHUNK]))
        for source, record_id, person_id in conn.execute(query):
            if (source, record_id) in records:
                found[(source, record_id)] = person_id
    return found


def _neighbours(pairs: list[tuple[str, Record, Record]]) -> dict[Record, set[Record]]:
    """Each queued record -> the records it is queued with."""
    out: dict[Record, set[Record]] = defaultdict(set)
    for _, left, right in pairs:
        out[left].add(right)
        out[right].add(left)
    return out


def _near(
    record: Record, other: Record, person: dict[Record, str], neighbours: dict
) -> dict[str, str]:
    """person id -> how it stands to `record`: PERSON (the record's own) or QUEUED (the
    person of a record it is queued with, besides the pair's `other` record)."""
    near = {
        person[partner]: QUEUED
        for partner in neighbours.get(record, set()) - {other}
        if partner in person
    }
    if record in person:
        near[person[record]] = PERSON
    return near


def _bearing(
    decision: dict, near: tuple[dict[str, str], dict[str, str]], person: dict[Record, str]
) -> Bearing | None:
    """The decision as a Bearing when its two records stand one to each side of the pair."""
    x = (decision["left_source"], decision["left_source_record_id"])
    y = (decision["right_source"], decision["right_source_record_id"])
    px, py = person.get(x), person.get(y)
    if px is None or py is None:
        return None
    left, right = near
    if px in left and py in right:
        return Bearing(decision, ((x, left[px]), (y, right[py])))
    if py in left and px in right:
        return Bearing(decision, ((y, left[py]), (x, right[px])))
    return None
