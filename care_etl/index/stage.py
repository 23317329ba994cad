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

import numpy as np
import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.incremental.index import (
    MAX_SHARE,
    RECORD,
    Bands,
    IndexState,
    PersonWrite,
    Plan,
    RecordFacts,
    fingerprint,
    split_keys,
)
from care_etl.index.analyst import (
    KEY_ENV,
    Pseudonyms,
    analyst_links,
    analyst_tables,
    pseudonym_key,
    record_names,
)
from care_etl.index.build import (
    DEFAULT_TRUST,
    IndexTables,
    link_records,
    link_table,
    service_involvements,
    staged_records,
    tables_from_linked,
)
from care_etl.index.golden import Trust, trust_from_contracts
from care_etl.index.households import keys_and_former
from care_etl.index.ids import StableIds, stable_ids
from care_etl.index.publish import is_production, previous_index, publish
from care_etl.index.retention import departed_persons
from care_etl.quality.staging import StagedSource
from care_etl.sources.declared import INVOLVEMENT, RELATIONSHIP, joined_role

log = logging.getLogger(__name__)

#: On PostgreSQL, above this share of records whose link row changed, a link table is
#: written whole (delete and insert) rather than row by row (update, insert, delete).
LINK_UPDATE_MAX_SHARE = 0.5


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
    state_dir: Path | None = None,
) -> IndexRun:
    """Every table of the index, with ids carried over from the index already published.

    With `state_dir` (the incremental cache folder) holding the state of this database's
    last publish, only the persons whose rows can have changed are built (incremental/index.py).
    """
    records, quarantine = staged_records(staged)
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    trust = trust_from_contracts(contracts, DEFAULT_TRUST) if contracts else Trust(DEFAULT_TRUST)
    declared = joined_role([s.declared for s in staged], RELATIONSHIP)
    key, lasting = _analyst_key(database_url)
    columns = sorted({*records.columns, *linked.assignments.columns})
    print_ = fingerprint(trust, key if lasting else None, columns)
    # a one-run key changes every pseudonym: nothing published can be kept
    state = IndexState.load(state_dir, database_url, print_) if state_dir and lasting else None
    pseudonyms = None if key is None else Pseudonyms(key)
    previous, issued = state.previous_links() if state else previous_index(database_url)
    ids = stable_ids(linked.assignments, previous, issued, run_id=run_id, changed_at=now,
                     departed=departed_persons(database_url))  # fmt: skip
    rows = link_records(records, ids.assignments)
    address_keys, former_keys, former = keys_and_former(rows)
    facts = RecordFacts.of(rows, address_keys, declared, former_keys, former)
    current = _current_pseudonyms(rows, facts, state, pseudonyms if lasting else None)
    plan = _plan(state, facts, now.date(), int(rows["person_id"].nunique()))
    if plan is not None:
        _links_whole_when_most_changed(plan, len(rows), database_url)
    part = rows if plan is None else rows[plan.context].reset_index(drop=True)
    keys = address_keys if plan is None else address_keys[plan.context]
    former = former_keys if plan is None else former_keys[plan.context]
    tables = tables_from_linked(part, linked.review, quarantine, trust, declared, keys, former)
    tables.person_id_history = ids.history
    # whole on every run: keyed by record, as the sources (or their stand-ins) give them
    involved = joined_role([s.declared for s in staged], INVOLVEMENT)
    tables.service_involvement = service_involvements(involved, rows)
    analyst = None if key is None else analyst_tables(tables.as_dict(), pseudonyms, now.date())
    if plan is not None:  # every person's links, of which only the changed rows are written
        tables.person_source_link = link_table(rows)
        if analyst is not None:
            analyst["analyst_person_source_link"] = _changed_analyst_links(
                tables.person_source_link, plan, pseudonyms, rows, facts, current
            )
    counts = _counts(ids, previous, tables, analyst, whole=plan is None)
    counts["persons"] = int(rows["person_id"].nunique())
    run = IndexRun(tables, analyst, counts, state_dir=state_dir)
    run.state = _next_state(state or IndexState.fresh(print_, issued), facts, plan, tables, ids,
                            now.date(), current)  # fmt: skip
    if plan is not None:
        run.delta = _person_write(plan, state, pseudonyms, counts)
    return run


def _links_whole_when_most_changed(plan: Plan, records: int, database_url: str) -> None:
    """A link table to be written whole instead of row by row (its changes set to None):
    on PostgreSQL, updating a row took half again as long as inserting it (measured at 100k
    records), so above LINK_UPDATE_MAX_SHARE of rows changed, replacing the table is quicker;
    on SQLite updating in place was quicker even with nine rows in ten changed."""
    if not is_production(database_url):
        return
    for name, changes in plan.links.items():
        changed = sum(map(len, (changes.update, changes.update_rest, changes.insert,
                                changes.delete)))  # fmt: skip
        if changed > LINK_UPDATE_MAX_SHARE * max(records, 1):
            plan.links[name] = None


def _changed_analyst_links(
    links: pd.DataFrame,
    plan: Plan,
    ids: Pseudonyms,
    rows: pd.DataFrame,
    facts: RecordFacts,
    current: tuple | None,
) -> pd.DataFrame:
    """The analyst rows of the records whose analyst row changed or is new, with their keys
    (every record's, from the link table, when the table is written whole)."""
    changes = plan.links["analyst_person_source_link"]
    if changes is None:  # every row: the pseudonyms the state kept spare most hashing
        if current is not None:
            ids.remember("record", record_names(rows).to_numpy(object), current[0])
            ids.remember("person", rows["person_id"].to_numpy(object), current[1])
        return analyst_links(links, ids)
    wanted = changes.written
    if wanted is None:
        wanted = pd.Series(facts.keys).isin([*changes.update, *changes.insert]).to_numpy()
    part = rows[wanted]
    if current is None:
        frame = analyst_links(part, ids)
    else:  # rows are in facts' order, as the pseudonyms found for them are
        frame = pd.DataFrame(
            {
                "person_key": np.asarray(current[1], dtype=object)[wanted],
                "source": part["source"].to_numpy(),
                "record_key": np.asarray(current[0], dtype=object)[wanted],
                "link_type": part["link_type"].to_numpy(),
                "match_probability": part["match_probability"].to_numpy(),
            }
        )
    frame[RECORD] = facts.keys[wanted]
    return frame


def _current_pseudonyms(
    rows: pd.DataFrame, facts: RecordFacts, state: IndexState | None, ids: Pseudonyms | None
):
    """The pseudonym of every record and of its person, in row order (as RecordFacts.of keeps
    it), for the next run's state: those the state kept, the others computed. None without a
    lasting key (a one-run key's are of no later use)."""
    if ids is None:
        return None
    if state is None:
        return ids(record_names(rows), "record"), ids(rows["person_id"], "person")
    records, persons = state.kept_pseudonyms(facts)
    missing = np.flatnonzero(pd.isna(records))
    for i, name in zip(missing, record_names(rows.iloc[missing]), strict=True):
        records[i] = ids.one("record", name)
    for i in np.flatnonzero(pd.isna(persons)):
        persons[i] = ids.one("person", rows["person_id"].iat[i])
    return records, persons


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
    pseudonyms: tuple | None = None,
) -> IndexState:
    """What the next run reads, once this one is published (its run id set then)."""
    built = tables.person_index
    if plan is not None:
        built = built[built["person_id"].isin(plan.build)]
    history = ids.history
    issued = pd.concat(
        [ids.assignments["person_id"], history["old_person_id"], history["new_person_id"]]
    )
    return base.after("", facts, Bands.of(built, today), plan, issued, pseudonyms)


def _person_write(
    plan: Plan, state: IndexState, ids: Pseudonyms | None, counts: dict
) -> PersonWrite:
    """The writer of the rebuilt persons' rows, with the pseudonyms of those to delete."""
    counts.update(plan.counts)
    write = PersonWrite(plan, state.run_id)
    if ids is not None:
        write.pseudonyms = {p: ids.one("person", p) for p in plan.rewrite}
        changes = plan.links["analyst_person_source_link"]
        gone = [] if changes is None else changes.delete.astype(str).tolist()
        write.gone_record_keys = {
            g: ids.one("record", f"{source}|{record}")
            for g, (source, record) in zip(gone, split_keys(gone), strict=True)
        }
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
        "ids_reinstated": int(changes.get("reinstated", 0)),
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
