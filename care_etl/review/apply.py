"""Every run: reviewers' decisions go to linkage, unless their records have changed since.

A decision was made about two records as they were. If either record's fingerprint differs
now, or the record is gone, the decision is marked stale and, while both records are still
indexed, the pair goes back to the queue whatever the model now makes of it (unless two valid
NHS numbers settle it), run after run until a person decides again: it is never applied
blindly. The rest are handed to linkage, which holds them over the model's view.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING

import pandas as pd

from care_etl.review import store

if TYPE_CHECKING:  # recordlinkage loads only when linking
    from care_etl.linkage import LinkageResult

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DecisionOutcome:
    """The linkage result, review rows carrying pair_key and queued_at, and the figures."""

    result: LinkageResult
    applied: int
    stale: int
    requeued: int
    #: Link decisions linkage would not make (their records' valid NHS numbers differ).
    links_not_made: int = 0


def link_with_decisions(
    records: pd.DataFrame,
    database_url: str,
    run_id: str,
    *,
    reuse=None,
    current: pd.DataFrame | None = None,
    model=None,
) -> DecisionOutcome:
    """Link records holding every still-valid review decision from the index database.

    `reuse`: an incremental run's pair cache (care_etl.incremental.pairs), passed to linkage.
    `model`: a kept model (care_etl.incremental.kept) linkage applies instead of training one.
    `current`: record_fingerprints(records), when the caller has computed them already.
    """
    if current is None:
        current = record_fingerprints(records)
    at = store.now()
    with store.connect(database_url) as conn:
        store.sync_records(conn, records, current, at)
        valid, stale = split_stale(store.decisions(conn), current)
        store.move(
            conn,
            list(zip(stale["decision_id"], stale["pair_key"], strict=True)),
            store.STALE,
            f"pipeline run {run_id}",
            stale["why"].tolist(),
            at,
        )
        queued = store.first_queued(conn)
        awaiting = awaiting_review(store.decisions(conn, status=None))
    result = _link(records, valid, reuse, again=awaiting, model=model)
    review, requeued = queue(result, valid, awaiting, queued, at)
    refused = unjoined(result.assignments, valid)
    log.info(
        "review decisions: %d applied, %d stale (%d queued again), %d links not made",
        len(valid),
        len(stale),
        requeued,
        refused,
    )
    return DecisionOutcome(
        dataclasses.replace(result, review=review), len(valid), len(stale), requeued, refused
    )


def awaiting_review(decisions: pd.DataFrame) -> pd.DataFrame:
    """Stale decisions that are still the last word on their pair: no one has decided again."""
    if decisions.empty:
        return decisions
    last = decisions.sort_values("decision_id").drop_duplicates("pair_key", keep="last")
    return last[last["status"] == store.STALE]


def unjoined(assignments: pd.DataFrame, valid: pd.DataFrame) -> int:
    """Link decisions whose two records still have different person ids."""
    links = valid[valid["decision"] == store.LINK]
    if links.empty:
        return 0
    person = assignments.set_index(["source", "source_record_id"])["person_id"]
    left = person.reindex(pd.MultiIndex.from_frame(links[store.PAIR_COLUMNS[:2]])).to_numpy()
    right = person.reindex(pd.MultiIndex.from_frame(links[store.PAIR_COLUMNS[2:]])).to_numpy()
    return int((left != right).sum())


def record_fingerprints(records: pd.DataFrame) -> pd.DataFrame:
    """store.fingerprints of the records (none when there are no records)."""
    return store.fingerprints(records) if "source" in records.columns else _empty_prints()


def _empty_prints() -> pd.DataFrame:
    return pd.DataFrame(columns=["source", "source_record_id", "fingerprint"])


def split_stale(active: pd.DataFrame, current: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions whose two records are unchanged, and the others with why (no values)."""
    ids = set(active["left_source_record_id"]) | set(active["right_source_record_id"])
    named = current[current["source_record_id"].isin(ids)]  # only records decisions name
    prints = dict(
        zip(
            zip(named["source"], named["source_record_id"], strict=True),
            named["fingerprint"],
            strict=True,
        )
    )
    why = [_why_stale(row, prints) for row in active.itertuples(index=False)]
    active = active.assign(why=why)
    has_why = active["why"].notna()
    return active[~has_why].drop(columns="why"), active[has_why]


def _why_stale(row, prints: dict) -> str | None:
    reasons = []
    for side in ("left", "right"):
        key = (getattr(row, f"{side}_source"), getattr(row, f"{side}_source_record_id"))
        now = prints.get(key)
        if now is None:
            reasons.append(f"{side} record no longer indexed")
        elif now != getattr(row, f"{side}_fingerprint"):
            reasons.append(f"{side} record changed since the decision")
    return "; ".join(reasons) or None


def _link(
    records: pd.DataFrame,
    valid: pd.DataFrame,
    reuse=None,
    again: pd.DataFrame | None = None,
    model=None,
) -> LinkageResult:
    """Linkage holding the valid decisions; the stale ones' pairs (both records still here)
    are compared and reviewed again whatever the model now says of them."""
    from care_etl.linkage import link_records

    extra = {} if reuse is None else {"reuse": reuse}
    if model is not None:
        extra["model"] = model
    if again is not None and len(again):
        extra["requeue"] = again[store.PAIR_COLUMNS]
    if valid.empty:
        return link_records(records, **extra)
    return link_records(records, decisions=valid[[*store.PAIR_COLUMNS, "decision"]], **extra)


def queue(
    result: LinkageResult,
    valid: pd.DataFrame,
    stale: pd.DataFrame,
    queued: dict,
    at,
) -> tuple[pd.DataFrame, int]:
    """The review pairs to publish: decided ones out, stale ones back in, each with its age."""
    review = result.review.copy()
    review["pair_key"] = store.pair_keys(review)
    review = review[~review["pair_key"].isin(set(valid["pair_key"]))]
    again = dict(zip(stale["pair_key"], stale["decision"], strict=True))
    links = result.links
    if again and len(links):
        keys = store.pair_keys(links)
        back = links[keys.isin(set(again)) & ~keys.isin(set(review["pair_key"]))]
        review = pd.concat([review, back.assign(pair_key=keys[back.index])], ignore_index=True)
    marked = review["pair_key"].isin(set(again))
    if marked.any():
        review.loc[marked, "evidence"] = [
            _requeued(text, again[key])
            for text, key in zip(
                review.loc[marked, "evidence"], review.loc[marked, "pair_key"], strict=True
            )
        ]
    review["queued_at"] = [queued.get(k, at) for k in review["pair_key"]]
    return review.reset_index(drop=True), int(marked.sum())


def _requeued(evidence: str, decision: str) -> str:
    """The evidence, saying the pair is back because an earlier decision went stale."""
    body = json.loads(evidence)
    body["requeued"] = "stale_decision"
    body["stale_decision"] = decision
    return json.dumps(body)
