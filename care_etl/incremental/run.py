"""The linkage step of a run, full or incremental, as the linked_records asset calls it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.incremental.pairs import PairCache, as_numbers
from care_etl.incremental.state import Mode, cache_root, decide, state_key, write_manifest

log = logging.getLogger(__name__)


@dataclass
class LinkageRun:
    """The decisions outcome (care_etl.review.apply.DecisionOutcome) and what was reused."""

    outcome: Any
    mode: Mode
    counts: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        """Counts only: whether the run was incremental, records and pairs reused or not."""
        return {
            "run_mode": "incremental" if self.mode.incremental else "full",
            "run_mode_reason": self.mode.reason,
            **self.counts,
        }


def link_incrementally(
    records: pd.DataFrame,
    *,
    database_url: str,
    run_id: str,
    ocr_cache_dir: str | Path,
    contract_files: Sequence[Path],
) -> LinkageRun:
    """Link with review decisions, comparing only pairs not compared in the last run.

    The cache is kept for the next run once linkage has succeeded; see care_etl.incremental
    for why it cannot disagree with the index even when a later step fails.
    """
    from care_etl.linkage.linker import LinkageSettings
    from care_etl.review.apply import link_with_decisions, record_fingerprints

    root = cache_root(ocr_cache_dir)
    key = state_key(contract_files, LinkageSettings())
    mode = decide(root, key)
    current = record_fingerprints(records)  # hashed once: for the cache and the decisions
    cache = PairCache.load(
        root if mode.incremental else None, records, as_numbers(current["fingerprint"])
    )
    outcome = link_with_decisions(records, database_url, run_id, reuse=cache, current=current)
    try:
        cache.save(root)
        write_manifest(root, key, run_id=run_id, records=len(records))
    except OSError as exc:  # a cache that cannot be written only makes the next run full
        log.warning("incremental: cache not written (%s); the next run will be full", exc)
    log.info(
        "linkage run: %s (%s), %s",
        "incremental" if mode.incremental else "full",
        mode.reason,
        cache.counts,
    )
    return LinkageRun(outcome, mode, cache.counts)
