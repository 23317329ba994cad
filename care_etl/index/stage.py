"""The index stage end to end, for the asset: stable ids, tables, analyst copies, one publish.

Kept out of the asset so that the CLI, tests and an incremental run call the same steps. The
trust order and declared relationships come from the run's contracts. An incremental run
builds only the affected persons' rows and publishes only those (care_etl.incremental.index);
without a usable state it builds and publishes everything.
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
from care_etl.incremental.index import (
    MAX_SHARE,
    Bands,
    IndexState,
    PersonWrite,
    Plan,
    RecordFacts,
    fingerprint,
)
from care_etl.index.analyst import KEY_ENV, analyst_links, analyst_tables, pseudonym, pseudonym_key
from care_etl.index.build import (
    DEFAULT_TRUST,
    IndexTables,
    link_records,
    link_table,
    staged_records,
    tables_from_linked,
)
from care_etl.index.declared import read_declared
from care_etl.index.golden import Trust, trust_from_contracts
from care_etl.index.households import record_address_keys
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
    #: On an incremental build: the person-by-person writer to publish with (its tables then
    #: hold the rebuilt persons' rows only, person_source_link excepted).
    delta: PersonWrite | None = None
    #: The state to store for the next run once this one is published.
    state: IndexState | None = None
    state_dir: Path | None = None


def make_index(
    staged: Sequence[StagedSource],
    linked: Any,
    *,
    database_url: str,
    run_id: str,
    contracts: Sequence[Contract] = (),
    sources_dir: Path | None = None,
    state_dir: Path | None = None,
) -> IndexRun:
    """Every table of the index, with ids carried over from the index already published.

    With `state_dir` (the incremental cache folder) holding the state of this database's
    last publish, only the persons whose rows can have changed are built (incremental/index.py).
    """
    records, quarantine = staged_records(staged)
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    trust = trust_from_contracts(contracts, DEFAULT_TRUST) if contracts else Trust(DEFAULT_TRUST)
    declared = read_declared(list(contracts), sources_dir) if sources_dir else None
    key, lasting = _analyst_key(database_url)
    columns = sorted({*records.columns, *linked.assignments.columns})
    print_ = fingerprint(trust, key if lasting else None, columns)
    # a one-run key changes every pseudonym: nothing published can be kept
    state = IndexState.load(state_dir, database_url, print_) if state_dir and lasting else None
    previous, issued = state.previous_links() if state else previous_index(database_url)
    ids = stable_ids(linked.assignments, previous, issued, run_id=run_id, changed_at=now)
    rows = link_records(records, ids.assignments)
    address_keys = record_address_keys(rows)
    facts = RecordFacts.of(rows, address_keys, declared)
    plan = _plan(state, facts, now.date(), int(rows["person_id"].nunique()))
    part = rows if plan is None else rows[plan.context].reset_index(drop=True)
    keys = address_keys if plan is None else address_keys[plan.context]
    tables = tables_from_linked(part, linked.review, quarantine, trust, declared, keys)
    tables.person_id_history = ids.history
    analyst = None if key is None else analyst_tables(tables.as_dict(), key, now.date())
    if plan is not None:  # the links are written whole: every person's
        tables.person_source_link = link_table(rows)
        if analyst is not None:
            analyst["analyst_person_source_link"] = analyst_links(tables.person_source_link, key)
    counts = _counts(ids, previous, tables, analyst, whole=plan is None)
    counts["persons"] = int(rows["person_id"].nunique())
    run = IndexRun(tables, analyst, counts, state_dir=state_dir)
    run.state = _next_state(state or IndexState.fresh(print_, issued), facts, plan, tables, ids,
                            now.date())  # fmt: skip
    if plan is not None:
        run.delta = _person_write(plan, state.run_id, key, counts)
    return run


def _analyst_key(database_url: str) -> tuple[bytes | None, bool]:
    """The pseudonym key, and whether it outlives this run (it comes from the environment)."""
    key = pseudonym_key(production=is_production(database_url))
    if key is None:
        log.warning("index: %s is not set: analyst tables left empty", KEY_ENV)
    elif not os.environ.get(KEY_ENV):
        log.warning("index: %s is not set: analyst pseudonyms hold for this run only", KEY_ENV)
    return key, key is None or bool(os.environ.get(KEY_ENV))


def _plan(state: IndexState | None, facts: RecordFacts, today: dt.date, persons: int):
    """Whom to rebuild, or None to build whole (no usable state, or most persons affected)."""
    plan = state.plan(facts, today) if state else None
    if plan is not None and len(plan.rewrite) > MAX_SHARE * max(persons, 1):
        log.info("index: %d of %d persons to rebuild: building whole", len(plan.rewrite), persons)
        return None
    return plan


def _next_state(
    base: IndexState,
    facts: RecordFacts,
    plan: Plan | None,
    tables: IndexTables,
    ids: StableIds,
    today: dt.date,
) -> IndexState:
    """What the next run reads, once this one is published (its run id set then)."""
    built = tables.person_index
    if plan is not None:
        built = built[built["person_id"].isin(plan.build)]
    history = ids.history
    issued = pd.concat(
        [ids.assignments["person_id"], history["old_person_id"], history["new_person_id"]]
    )
    return base.after("", facts, Bands.of(built, today), plan, issued)


def _person_write(plan: Plan, previous_run: str, key: bytes | None, counts: dict) -> PersonWrite:
    """The writer of the rebuilt persons' rows, with the pseudonyms of those to delete."""
    counts.update(plan.counts)
    pseudonyms = {p: pseudonym(key, "person", p) for p in plan.rewrite} if key else {}
    write = PersonWrite(plan, previous_run, pseudonyms)
    write.counts.update(
        persons_rewritten=len(plan.rewrite), persons_kept=counts["persons"] - len(plan.build)
    )
    return write


def _counts(
    ids: StableIds, previous: pd.DataFrame, tables: IndexTables, analyst, *, whole: bool
) -> dict:
    """What the Dagster UI plots across runs: counts only (on an incremental build, not
    those of tables it holds only in part)."""
    changes = ids.history["change"].value_counts().to_dict()
    persons = ids.assignments["person_id"].drop_duplicates()
    counts = {
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
    if not whole:
        del counts["households"], counts["declared_relationships"]
    return counts


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
        persons=run.counts.get("persons", len(tables["person_index"])),
        analyst=run.analyst,
        delta=run.delta or delta,
    )
    try:
        if run.delta is None and delta is not None:
            delta.save(run_id)
        if run.state is not None and run.state_dir is not None:
            run.state.run_id = run_id
            run.state.save(run.state_dir)
    except OSError as exc:  # the next run then builds and replaces every table whole
        log.warning("incremental: publish state not written (%s)", exc)
