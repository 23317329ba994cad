"""The quality gate: stage a feed, check it, and let it through only when no error check fails.

A feed that fails an error check is blocked: its new data go no further, and its last accepted
version stands in (so the index is rebuilt from what was last known good, not emptied), with
`blocked` saying why in plain words. A feed that passes becomes the accepted version.

Dagster's own blocking checks would stop every downstream asset, so one bad feed would hold
back the whole index; blocking here, per feed, lets the other sources still run.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.quality.checks import (
    ERROR,
    MIN_ROWS_TO_BLOCK,
    WARNING,
    CheckPlan,
    plan_checks,
    too_few_to_block,
)
from care_etl.quality.results import failed_errors
from care_etl.quality.staging import StagedSource, stage_source
from care_etl.sources.read import RawSource

log = logging.getLogger(__name__)


def gate_source(
    raw: RawSource,
    contract: Contract,
    *,
    database_url: str,
    run_id: str,
    plans: list[CheckPlan] | None = None,
    cache_dir: Path | None = None,
) -> StagedSource:
    """The staged source if it passes its checks, else its last accepted version, marked.

    With `cache_dir` (the incremental cache folder), rows whose raw values are as in the last
    run keep their standardised values (care_etl.incremental.rows); the checks still run on
    every row.
    """
    from care_etl.index.publish import engine_for
    from care_etl.quality.accepted import load_accepted, previous_rows, save_accepted
    from care_etl.quality.expectations import run_checks, validation_frame
    from care_etl.quality.results import ensure_tables, write_results

    plans = plans if plans is not None else plan_checks(contract)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    staged = _stage(raw, contract, cache_dir)
    frame = validation_frame(raw, contract)
    engine = engine_for(database_url)
    try:
        ensure_tables(engine)
        with engine.begin() as conn:
            baseline = previous_rows(conn, contract.id)
        results = run_checks(
            plans,
            frame,
            source=contract.id,
            run_id=run_id,
            previous_rows=baseline,
            missing_required=raw.missing_required,
            run_time=now,
        )
        results = _too_few_to_block(results, plans, staged)
        failed = failed_errors(results)
        with engine.begin() as conn:
            write_results(conn, results)
            if not failed:
                staged.dq_results, staged.accepted_at = results, now.isoformat()
                _unread_declared_stand_in(conn, staged, contract)
                save_accepted(conn, staged, run_id=run_id, rows_checked=len(frame))
                return staged
            stand_in = load_accepted(conn, contract.id)
    finally:
        engine.dispose()
    return _blocked(staged, stand_in, results, failed, plans, raw.missing_required)


def _too_few_to_block(
    results: list[dict[str, Any]], plans: list[CheckPlan], staged: StagedSource
) -> list[dict[str, Any]]:
    """Error checks on a share of rows that failed on too few rows to block the feed
    (checks.too_few_to_block), as warnings: three paper forms, one with a date OCR could not read, failed "at least 90%
    read as a date" and blocked the batch, so none of the three reached the index."""
    by_name = {p.name: p for p in plans}
    kept = []
    for result in results:
        plan = by_name.get(result["check_name"])
        if (
            plan is not None
            and result["severity"] == ERROR
            and not result["success"]
            and too_few_to_block(plan, result["unexpected_count"], result["element_count"])
        ):
            result = {**result, "severity": WARNING}
            staged.warnings.append(
                f"{staged.contract_id}: {_why(result, plan, [])}: fewer than "
                f"{MIN_ROWS_TO_BLOCK} rows, so the feed is not blocked; each row is handled "
                "on its own"
            )
        kept.append(result)
    return kept


def _unread_declared_stand_in(conn: Any, staged: StagedSource, contract: Contract) -> None:
    """A declared table that could not be read (its reader warned why) is taken from the
    last accepted version, so relationships and involvements do not vanish for a run."""
    from care_etl.quality.accepted import load_accepted
    from care_etl.sources.declared import declared_roles

    unread = [r for r in declared_roles(contract) if r not in staged.declared]
    accepted = load_accepted(conn, contract.id) if unread else None
    for role in unread:
        if accepted is not None and role in accepted.declared:
            staged.declared[role] = accepted.declared[role]
            staged.warnings.append(
                f"{contract.id}: declared {role} table unread: the last accepted version's "
                f"(accepted {accepted.accepted_at} UTC) stands in"
            )


def _stage(raw: RawSource, contract: Contract, cache_dir: Path | None) -> StagedSource:
    """Stage the source, reusing last run's standardised rows when a cache folder is given."""
    if cache_dir is None:
        return stage_source(raw, contract)
    from care_etl.incremental.rows import RowCache

    rows = RowCache(cache_dir, contract)
    staged = stage_source(raw, contract, undated=rows.undated)
    try:
        rows.save()
    except OSError as exc:  # an unwritten cache only makes the next run standardise all rows
        log.warning("%s: standardised rows not kept (%s)", contract.id, exc)
    staged.rows_reused = rows.counts.get("rows_reused", 0)
    log.info("%s: standardised rows %s", contract.id, rows.counts)
    return staged


def _blocked(
    new: StagedSource,
    stand_in: StagedSource | None,
    results: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    plans: list[CheckPlan],
    missing: list[str],
) -> StagedSource:
    """The stand-in, carrying this run's check results, read errors and the reason."""
    if stand_in is None:
        stand_in = StagedSource(
            contract_id=new.contract_id,
            records=new.records.iloc[0:0].copy(),
            quarantine=new.quarantine.iloc[0:0].copy(),
            read=0,
            withdrawn=0,
        )
        standing = "no version has passed its checks yet, so it adds no records to the index"
    else:
        standing = f"its last accepted version (accepted {stand_in.accepted_at} UTC) stands in"
    stand_in.records = _conform_columns(stand_in.records, new.records)
    stand_in.quarantine = _conform_columns(stand_in.quarantine, new.quarantine)
    reason = blocked_reason(failed, plans, missing)
    stand_in.blocked = f"Feed blocked: {reason}. {standing[0].upper()}{standing[1:]}."
    stand_in.dq_results = results
    stand_in.errors, stand_in.warnings = list(new.errors), list(new.warnings)
    stand_in.held_back = new.read
    return stand_in


def _conform_columns(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The stand-in with the columns staging gives today (a contract may have mapped more
    fields since it was accepted): missing ones blank, in today's order."""
    old = old.copy()
    for column in new.columns:
        if column not in old.columns:
            old[column] = pd.Series(None, index=old.index, dtype=new[column].dtype)
    extra = [c for c in old.columns if c not in new.columns]
    return old[[*new.columns, *extra]]


def blocked_reason(
    failed: list[dict[str, Any]], plans: list[CheckPlan], missing: list[str] = ()
) -> str:
    """The failed error checks in plain words: column names, counts and rates, no values."""
    by_name = {p.name: p for p in plans}
    reasons = [_why(r, by_name.get(r["check_name"]), missing) for r in failed]
    return "; ".join(reasons[:1] + [_in_sentence(reason) for reason in reasons[1:]])


def _in_sentence(reason: str) -> str:
    """A reason after a semicolon: "The persons table" reads "the persons table"; an
    acronym ("NHS numbers") keeps its capitals."""
    if reason[:1].isupper() and not reason[1:2].isupper():
        return reason[0].lower() + reason[1:]
    return reason


def _why(result: dict[str, Any], plan: CheckPlan | None, missing: list[str]) -> str:
    name = result["check_name"]
    what = plan.description if plan else name
    if plan and plan.kind == "schema":
        return f"required column(s) {', '.join(missing)} missing from the feed ({name})"
    if result["unexpected_rate"] is not None and result["element_count"] is not None:
        return (
            f"{what.rstrip('.')}, but {result['unexpected_count']} of {result['element_count']} "
            f"({result['unexpected_rate']:.0%}) failed ({name})"
        )
    if plan and plan.kind == "row_count_floor" and result["observed_value"] == 0:
        return f"the feed has no rows that could be read ({name})"
    if result["observed_value"] is not None:
        return f"{what.rstrip('.')}, but it has {result['observed_value']:.0f} ({name})"
    return f"{what.rstrip('.')} ({name} could not be evaluated)"
