"""The index stage end to end, for the asset: stable ids, tables, analyst copies, one publish.

Kept out of the asset so that the CLI, tests and a later incremental run can call the same
steps. The trust order and declared relationships come from the run's contracts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.index.analyst import KEY_ENV, analyst_tables, pseudonym_key
from care_etl.index.build import DEFAULT_TRUST, IndexTables, build_index, staged_records
from care_etl.index.declared import read_declared
from care_etl.index.golden import Trust, trust_from_contracts
from care_etl.index.ids import StableIds, stable_ids
from care_etl.index.publish import is_production, previous_index, publish
from care_etl.quality.staging import StagedSource

log = logging.getLogger(__name__)


@dataclass
class IndexRun:
    tables: IndexTables
    analyst: dict[str, pd.DataFrame] | None
    #: Counts for metadata and logs (never a personal value).
    counts: dict[str, int] = field(default_factory=dict)


def make_index(
    staged: Sequence[StagedSource],
    linked: Any,
    *,
    database_url: str,
    run_id: str,
    contracts: Sequence[Contract] = (),
    sources_dir: Path | None = None,
) -> IndexRun:
    """Every table of the index, with ids carried over from the index already published."""
    records, quarantine = staged_records(staged)
    previous, issued = previous_index(database_url)
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    ids = stable_ids(linked.assignments, previous, issued, run_id=run_id, changed_at=now)
    trust = trust_from_contracts(contracts, DEFAULT_TRUST) if contracts else Trust(DEFAULT_TRUST)
    declared = read_declared(list(contracts), sources_dir) if sources_dir else None
    tables = build_index(records, ids.assignments, linked.review, quarantine, trust, declared)
    tables.person_id_history = ids.history
    key = pseudonym_key(production=is_production(database_url))
    if key is None:
        log.warning("index: %s is not set: analyst tables left empty", KEY_ENV)
    elif not os.environ.get(KEY_ENV):
        log.warning("index: %s is not set: analyst pseudonyms hold for this run only", KEY_ENV)
    analyst = None if key is None else analyst_tables(tables.as_dict(), key, now.date())
    return IndexRun(tables, analyst, _counts(ids, previous, tables, analyst))


def _counts(ids: StableIds, previous: pd.DataFrame, tables: IndexTables, analyst) -> dict:
    """What the Dagster UI plots across runs: counts only."""
    changes = ids.history["change"].value_counts().to_dict()
    persons = ids.assignments["person_id"].drop_duplicates()
    return {
        "ids_kept": int(persons.isin(previous["person_id"]).sum()),
        "ids_merged": int(changes.get("merged", 0)),
        "ids_split": int(changes.get("split", 0)),
        "ids_retired": int(changes.get("retired", 0)),
        "households": int(tables.household.get("household_id", pd.Series()).nunique()),
        "declared_relationships": int(
            (tables.relationship.get("basis", pd.Series()) == "declared").sum()
        ),
        "analyst_tables": 0 if analyst is None else len(analyst),
    }


def publish_index(
    run: IndexRun, database_url: str, *, run_id: str, figures: dict, delta: Any = None
) -> None:
    """All of it in one transaction (publish.py); with `delta`
    (care_etl.incremental.delta.PublishDelta) only changed persons' rows are rewritten."""
    tables = run.tables.as_dict()
    publish(
        database_url,
        tables,
        run_id=run_id,
        summary=json.dumps(figures),
        persons=len(tables["person_index"]),
        analyst=run.analyst,
        delta=delta,
    )
    if delta is not None:
        try:
            delta.save(run_id)
        except OSError as exc:  # the next run then replaces every table whole
            log.warning("incremental: publish signatures not written (%s)", exc)
