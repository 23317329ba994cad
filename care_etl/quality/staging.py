"""Staging: standardise a source's records and send what cannot be indexed to quarantine.

Nothing is lost: every row read ends either in `records` (to be linked) or in `quarantine`
with a reason, except withdrawn rows, which are only counted. Reasons never carry a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from care_etl.canonical import EXTENDED_FIELDS
from care_etl.contracts.mapping import to_canonical
from care_etl.contracts.model import Contract
from care_etl.sources.read import RawSource

QUARANTINE_COLUMNS = ["source", "source_record_id", "reason", "lineage"]


@dataclass
class StagedSource:
    """A source's accepted records and its quarantine, with what reading it reported."""

    contract_id: str
    records: pd.DataFrame
    quarantine: pd.DataFrame
    read: int
    withdrawn: int
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: One dict per data-quality check (care_etl.quality.results.RESULT_KEYS): counts and
    #: rates only, never a value.
    dq_results: list[dict] = field(default_factory=list)
    #: Why the feed was blocked, in plain words, when its last accepted version stands in.
    blocked: str | None = None
    #: Rows this run read of a blocked feed: held back, in neither the index nor quarantine
    #: (the counts above are the stand-in's), until a version passes its checks.
    held_back: int = 0
    #: When (UTC, ISO 8601) this version of the source passed its checks and was accepted.
    accepted_at: str | None = None
    #: Rows whose standardised values were taken from the last run (None: no cache used).
    rows_reused: int | None = None
    #: A relational source's declared tables by role (care_etl.sources.declared), without
    #: withdrawn records' rows; kept in the accepted version with the records.
    declared: dict[str, pd.DataFrame] = field(default_factory=dict)


def stage_source(
    raw: RawSource, contract: Contract, *, undated: Callable[[pd.DataFrame], Any] | None = None
) -> StagedSource:
    """Map a source's raw rows by its contract, then stage them, keeping what reading reported.

    `undated` is passed to `standardise` (a cache of last run's rows, care_etl.incremental.rows).
    """
    mapped = to_canonical(raw, contract)
    staged = stage(mapped, contract, undated=undated)
    staged.files, staged.errors = list(raw.files), list(raw.errors)
    staged.warnings, staged.counts = list(raw.warnings), dict(raw.counts)
    withdrawn = set(mapped.loc[mapped["withdrawn"], "source_record_id"].dropna().astype(str))
    staged.declared = {role: _without(table, withdrawn) for role, table in raw.declared.items()}
    return staged


def _without(table: pd.DataFrame, withdrawn: set[str]) -> pd.DataFrame:
    """The declared rows that name no withdrawn record, at either end: a person who withdrew
    is not kept even in the accepted version."""
    if not withdrawn:
        return table
    ends = [c for c in ("source_record_id", "related_source_record_id") if c in table.columns]
    named = table[ends].isin(withdrawn).any(axis=1)
    return table[~named].reset_index(drop=True)


def stage(
    mapped: pd.DataFrame,
    contract: Contract,
    *,
    undated: Callable[[pd.DataFrame], Any] | None = None,
) -> StagedSource:
    """Standardise, then quarantine rows with no id, a duplicate id, a read error or no identity."""
    from care_etl.standardise import standardise

    read = len(mapped)
    withdrawn = mapped[mapped["withdrawn"]]
    rows = mapped[~mapped["withdrawn"]].drop(columns=["withdrawn"])
    rejects: list[pd.DataFrame] = []

    rows = _reject(rows, rows["read_error"].notna(), None, rejects)
    rows = _reject(rows, rows["source_record_id"].isna(), "no record id", rejects)
    duplicate = rows["source_record_id"].duplicated(keep="first")
    if duplicate.any():
        # The first row keeps the id; a later one is told apart in quarantine by its lineage,
        # so that each (source, source_record_id) still ends in exactly one place.
        rows = rows.copy()
        rows.loc[duplicate, "source_record_id"] = (
            rows.loc[duplicate, "source_record_id"] + " @ " + rows.loc[duplicate, "lineage"]
        )
    rows = _reject(rows, duplicate, "duplicate record id (an earlier row has the same id)", rejects)

    standardised = standardise(
        rows.drop(columns=["read_error"]), contract.date_formats, undated=undated
    )
    no_name = standardised["given_name"].isna() & standardised["family_name"].isna()
    standardised = _reject(standardised, no_name, "no usable name", rejects)
    no_anchor = standardised["date_of_birth"].isna() & standardised["nhs_number"].isna()
    standardised = _reject(standardised, no_anchor, "no valid date of birth or NHS number", rejects)
    for extra in EXTENDED_FIELDS:
        if extra not in standardised.columns:
            standardised[extra] = None
    quarantine = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    return StagedSource(
        contract_id=contract.id,
        records=standardised.reset_index(drop=True),
        quarantine=quarantine[QUARANTINE_COLUMNS],
        read=read,
        withdrawn=len(withdrawn),
    )


def _reject(
    frame: pd.DataFrame, mask: pd.Series, reason: str | None, rejects: list[pd.DataFrame]
) -> pd.DataFrame:
    """Move the masked rows to the rejects with a reason (or their own read_error); with
    none masked, the frame itself (not a copy of every row)."""
    if not mask.any():
        return frame
    bad = frame[mask].copy()
    if reason is None:
        bad["reason"] = bad["read_error"]
    else:
        details = bad.get("quality_issues")
        bad["reason"] = (
            reason
            if details is None
            else [f"{reason} ({d})" if isinstance(d, str) and d else reason for d in details]
        )
    bad["source_record_id"] = bad["source_record_id"].fillna(bad["lineage"])
    rejects.append(bad[QUARANTINE_COLUMNS])
    return frame[~mask]
