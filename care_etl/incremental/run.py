"""The linkage step of a run, full or incremental, as the linked_records asset calls it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.incremental import kept as kept_model
from care_etl.incremental.pairs import PairCache, as_numbers
from care_etl.incremental.state import Mode, cache_root, decide, state_key, write_manifest

log = logging.getLogger(__name__)


@dataclass
class LinkageRun:
    """The decisions outcome (care_etl.review.apply.DecisionOutcome) and what was reused."""

    outcome: Any
    mode: Mode
    counts: dict[str, int] = field(default_factory=dict)
    #: Whether the model was trained or kept, why, and which (care_etl.incremental.kept).
    model: dict[str, object] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        """Counts and words only: whether the run was incremental, records and pairs reused
        or not, and whether the model was trained or kept."""
        return {
            "run_mode": "incremental" if self.mode.incremental else "full",
            "run_mode_reason": self.mode.reason,
            **self.counts,
            **self.model,
        }


def link_incrementally(
    records: pd.DataFrame,
    *,
    database_url: str,
    run_id: str,
    ocr_cache_dir: str | Path,
    contract_files: Sequence[Path],
) -> LinkageRun:
    """Link with review decisions, comparing only pairs not compared in the last run, and
    applying the model kept from the last training unless it must be trained again.

    The cache is kept for the next run once linkage has succeeded; see care_etl.incremental
    for why it cannot disagree with the index even when a later step fails.
    """
    from care_etl.linkage.linker import LinkageSettings
    from care_etl.review.apply import link_with_decisions, record_fingerprints

    root = cache_root(ocr_cache_dir)
    key = state_key(contract_files, LinkageSettings())
    mode = decide(root, key)
    current = record_fingerprints(records)  # hashed once: for the cache and the decisions
    prints = as_numbers(current["fingerprint"])
    cache = PairCache.load(root if mode.incremental else None, records, prints)
    # The model is kept whatever the pair cache holds: a run with the model file alone is
    # a full recomputation applying the kept model (what an incremental run must equal).
    model_key = kept_model.model_key(key)
    choice = kept_model.choose(root, model_key, prints)
    outcome = link_with_decisions(
        records, database_url, run_id, reuse=cache, current=current, model=choice.model
    )
    model = _model_facts(outcome.result, choice)
    try:
        cache.save(root)
        if outcome.result.model is not None:
            trained_on = prints if outcome.result.model_trained else choice.trained_on
            kept_model.save(root, outcome.result.model, model_key, trained_on)
        write_manifest(root, key, run_id=run_id, records=len(records))
    except OSError as exc:  # a cache that cannot be written only makes the next run full
        log.warning("incremental: cache not written (%s); the next run will be full", exc)
    log.info(
        "linkage run: %s (%s), %s; model %s (%s)",
        "incremental" if mode.incremental else "full",
        mode.reason,
        cache.counts,
        model["model"],
        model["model_reason"],
    )
    return LinkageRun(outcome, mode, cache.counts, model)


def _model_facts(result: Any, choice: kept_model.Choice) -> dict[str, object]:
    """Whether the model was trained or kept, why, which, and the records changed since
    training."""
    trained = result.model_trained
    model = result.model
    if model is not None and not trained:
        model.changed = choice.changed
    reason = choice.reason
    if choice.model is not None and trained:
        reason = "the kept model was trained on other fields"
    return {
        "model": "trained" if trained else "kept",
        "model_reason": reason,
        "model_version": model.version if model is not None else "",
        "model_trained_at": model.trained_at if model is not None else "",
        "records_changed_since_training": 0 if trained or model is None else model.changed,
    }
