"""Plain-text views for a caseworker: the queue as a table, one pair side by side.

These print personal data on purpose (a reviewer must see both records to judge them);
they go to the reviewer's terminal only, never to a log.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Sequence

from care_etl.review.context import PERSON, Bearing
from care_etl.review.store import SHOWN_FIELDS

_WRAP = 34
#: Why a rule held a pair back (linker.CAPPED_REASONS), in a caseworker's words;
#: each ends in a full stop or a question mark.
HELD = {
    "different_nhs_numbers": "the two records carry different valid NHS numbers.",
    "twin": "one surname but other forenames: twins or siblings, or one person's forename "
    "written two ways?",
    "unnamed_newborn": "a baby recorded before being named: one baby on two records, or twins?",
    "father_son": "one name with dates of birth in different years, within a year or one "
    "digit a generation apart (1960, 1990): a date written wrong, or a parent and child?",
    "ambiguous": "a record without an NHS number that matches records of two different NHS "
    "numbers about equally well.",
    "either_of_two": "this record matches two people a rule keeps apart (twins, or a parent "
    "and child of one name) about equally well: which of them is it?",
    "chain": "this link alone would join two groups of records that nothing else joins.",
    "cannot_link": "a reviewer has kept these records' people apart.",
    "held_apart": "linking would make one person of two records a rule keeps apart (twins, "
    "or a parent and child of one name): which of them is this record?",
    "cluster_nhs_conflict": "linking would put two different valid NHS numbers in one person.",
}


#: Field names as a caseworker says them; a field not here reads with spaces for "_".
LABELS = {
    "given_name": "given name",
    "middle_names": "middle names",
    "family_name": "family name",
    "other_names": "other names",
    "date_of_birth": "date of birth",
    "dob_estimated": "birth date estimated",
    "nhs_number": "NHS number",
    "ni_number": "NI number",
    "uprn": "UPRN",
    "date_of_death": "date of death",
    "relationship_to_head": "relation to tenant",
    "former_address": "former address",
    "address_periods": "address dates",
    "moved_together": "moved with family",
}
DECISIONS = {"link": "link", "no_link": "no link"}
#: Why a rule held a pair back, in the few words of a `review list` row (HELD says it whole).
HELD_SHORT = {
    "different_nhs_numbers": "two NHS numbers",
    "twin": "twins or siblings?",
    "unnamed_newborn": "unnamed baby",
    "father_son": "parent and child?",
    "ambiguous": "matches two NHS numbers",
    "either_of_two": "matches either of two",
    "chain": "would join two groups",
    "cannot_link": "reviewer kept apart",
    "held_apart": "would join two people",
    "cluster_nhs_conflict": "would join two NHS numbers",
}


def label(field: str) -> str:
    """A field's name in words (evidence and records use the column names)."""
    return LABELS.get(field, field.replace("_", " "))


def decision_words(decision: str) -> str:
    return DECISIONS.get(decision, decision.replace("_", " "))


def _shown(field: str, value: object) -> object:
    """A record's value as read: a yes/no flag in words rather than 1 or 0."""
    if field == "dob_estimated" and value is not None:
        return "yes" if value in (1, True, "1", "true", "True") else "no"
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: set[int]) -> str:
    """Columns as wide as their widest cell; `right` holds the numeric columns' positions."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def reason_held(evidence: str | None) -> str:
    """Why a pair is in the queue, in a few words: a rule that held it, or what disagrees."""
    if not evidence:
        return ""
    body = json.loads(evidence)
    notes = []
    if body.get("requeued"):
        notes.append(f"stale {decision_words(str(body.get('stale_decision', 'decision')))}")
    if body.get("capped"):
        capped = str(body["capped"])
        notes.append(HELD_SHORT.get(capped, capped.replace("_", " ")))
    differ = [
        field
        for field, item in body.get("fields", {}).items()
        if item.get("level") in ("different", "disagree")
    ]
    if differ and not body.get("capped"):
        notes.append("differs: " + ", ".join(map(label, differ)))
    # Nothing disagrees outright: the fields only half agree (a typo, a sector, a year).
    return "; ".join(notes) or "partly agrees"


def day(value: object) -> str:
    """A stored timestamp's date, as YYYY-MM-DD (text as stored, on a database that keeps it so)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)[:10] if value else "an unknown date"


def age(queued_at: dt.datetime | None, now: dt.datetime) -> str:
    """How long a pair has waited, in days (or hours on its first day)."""
    if queued_at is None:
        return ""
    hours = (now - queued_at).total_seconds() / 3600
    return f"{hours / 24:.0f} d" if hours >= 24 else f"{max(hours, 0):.0f} h"


def pair_view(
    key: str,
    left: dict,
    right: dict,
    queue_row: dict | None,
    decisions: Sequence[dict],
    bearings: Sequence[Bearing] = (),
    more: Sequence[str] = (),
) -> str:
    """Both records field by field, with the model's evidence beside each field.

    `bearings`: earlier no-link decisions this pair stands between (context.bearings);
    `more`: further lines (the other queued pairs of either record, whether the decision
    in force shows in the index yet)."""
    body = json.loads(queue_row["evidence"]) if queue_row and queue_row.get("evidence") else {}
    evidence = body.get("fields", {})
    lv, rv = json.loads(left["standardised"]), json.loads(right["standardised"])
    head = [f"Pair {key}"]
    if queue_row:
        head.append(f"in the review queue, match probability {queue_row['match_probability']:.3f}")
    else:
        head.append("not in the review queue (the model's evidence is shown for queued pairs)")
    rows: list[list[object]] = [
        ["source", left["source"], right["source"], "", ""],
        ["record", left["source_record_id"], right["source_record_id"], "", ""],
        ["lineage", left.get("lineage"), right.get("lineage"), "", ""],
        ["person now", left.get("person_id"), right.get("person_id"), "", ""],
    ]
    fields = [f for f in SHOWN_FIELDS if f in lv or f in rv or f in evidence]
    fields += [f for f in evidence if f not in fields]
    for field in fields:
        item = evidence.get(field, {})
        level = _level(item)
        if level == "missing" and lv.get(field) is not None and rv.get(field) is not None:
            level = "not counted"  # linkage let another field speak for it (address)
        left_value, right_value = _shown(field, lv.get(field)), _shown(field, rv.get(field))
        rows.append([label(field), left_value, right_value, level, _weight(item.get("weight"))])
    if body:
        rows.append(["prior", "", "", "", _weight(body.get("prior_weight"))])
        rows.append(["total", "", "", "", _weight(body.get("total_weight"))])
        rows.append(["probability", "", "", "", f"{body.get('match_probability', 0):.3f}"])
    lines = [" · ".join(head), "", _side_by_side(rows)]
    notes = _gone_notes(left, right) + _notes(body)
    if notes:
        lines += ["", *notes]
    kept_apart = [_bearing_note(b, left, right) for b in bearings]
    if kept_apart:
        lines += ["", *kept_apart]
    if more:
        lines += ["", *more]
    lines += ["", *_history(decisions)]
    return "\n".join(lines)


def _bearing_note(bearing: Bearing, left: dict, right: dict) -> str:
    """An earlier no-link decision between this pair's two sides, in a sentence."""
    d = bearing.decision
    (x, x_how), (y, y_how) = bearing.ends
    text = (
        f"Kept apart before: decision #{d['decision_id']}, no link by {d['reviewer']} on "
        f"{day(d['decided_at'])}, between {_end(x, x_how, 'left', left)} and "
        f'{_end(y, y_how, "right", right)}: "{d["reason"]}".'
    )
    if x_how == y_how == PERSON:
        text += " Linking this pair would put those two in one person."
    return "\n".join(textwrap.wrap(text, 96, subsequent_indent="  "))


def _end(record: tuple[str, str], how: str, side: str, pair_record: dict) -> str:
    """A decision's record and how it stands to the pair's record on that side."""
    ref = f"{record[0]} {record[1]}"
    if record == (pair_record["source"], pair_record["source_record_id"]):
        return f"{ref} (the {side} record)"
    if how == PERSON:
        person = pair_record.get("person_id")
        return f"{ref} (now the {side} record's person{f' {person}' if person else ''})"
    return f"{ref} (the person of a record the {side} record is also queued with)"


def kept_apart_short(bearings: Sequence[Bearing]) -> str:
    """The earlier no-link decisions a queued pair stands between, for a `review list` row."""
    return ", ".join(
        f"see no link #{b.decision['decision_id']} ({b.decision['reviewer']})" for b in bearings
    )


def _level(item: dict) -> str:
    level = item.get("level", "")
    if item.get("swapped"):
        level += " (swapped)"
    if item.get("via"):
        level += f" (via {item['via'].replace('_', ' ')})"
    return level


def _weight(value: object) -> str:
    return "" if value is None else f"{float(value):+.2f}"


def _side_by_side(rows: list[list[object]]) -> str:
    """The table with long values (addresses) wrapped within their column."""
    wrapped: list[list[object]] = []
    for row in rows:
        left = textwrap.wrap(_cell(row[1]), _WRAP) or [""]
        right = textwrap.wrap(_cell(row[2]), _WRAP) or [""]
        for i in range(max(len(left), len(right))):
            first = i == 0
            wrapped.append(
                [
                    row[0] if first else "",
                    left[i] if i < len(left) else "",
                    right[i] if i < len(right) else "",
                    row[3] if first else "",
                    row[4] if first else "",
                ]
            )
    return table(["field", "left", "right", "level", "weight"], wrapped, right={4})


def _gone_notes(left: dict, right: dict) -> list[str]:
    """A record the last run no longer indexed: why its column is empty."""
    return [
        f"The {side} record ({r['source']} {r['source_record_id']}) is no longer in the "
        "index: removed at source, or quarantined, since the decision."
        for side, r in (("left", left), ("right", right))
        if r.get("gone")
    ]


def _notes(body: dict) -> list[str]:
    notes = []
    if body.get("rule") == "nhs_number":
        notes.append("Linked on the NHS number whatever the model says.")
    if body.get("capped"):
        capped = str(body["capped"])
        notes.append(f"Held for review: {HELD.get(capped, capped.replace('_', ' ') + '.')}")
    if body.get("requeued"):
        notes.append(
            f"Queued again: an earlier '{decision_words(str(body.get('stale_decision')))}' "
            "decision went stale "
            "because a record changed or went."
        )
    return notes


def _history(decisions: Sequence[dict]) -> list[str]:
    if not decisions:
        return ["No decision recorded for this pair."]
    lines = ["Decisions:"]
    for d in decisions:
        lines.append(
            f"  #{d['decision_id']} {decision_words(d['decision'])} by {d['reviewer']} at "
            f"{_cell(d['decided_at'])} [{d['status']}]: {d['reason']}"
        )
        for e in d.get("events", []):
            if e["event"] != "decided":
                detail = f" ({e['detail']})" if e.get("detail") else ""
                lines.append(f"      {e['event']} at {_cell(e['at'])} by {e['actor']}{detail}")
    return lines
