"""Run a source's checks with Great Expectations (GX Core 1.x), offline, analytics off.

GX validates one frame per source: the rows read (withdrawn rows and rows with a read error
left out) with each contract column as text, plus what standardisation makes of them
(`<col> (parses as a date)`, `<col> (age in years)`, `<col> (valid NHS number)`), so a check
reads on the standardised values and counts against every row the feed sent that could be
read. Each run uses a fresh ephemeral context (nothing written to disk, nothing fetched).
Results keep counts and rates only: GX's lists of failing values are dropped as soon as they
are read, since they are personal data.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from typing import Any

import numpy as np
import pandas as pd

from care_etl.contracts.model import Column, Contract
from care_etl.quality.checks import CheckPlan
from care_etl.quality.results import result_row
from care_etl.sources.read import RawSource

# GX reads this when it starts; set before GX is first imported (it is imported lazily below).
os.environ["GX_ANALYTICS_ENABLED"] = "False"

PARSES = " (parses as a date)"
AGE = " (age in years)"
NHS_VALID = " (valid NHS number)"
AS_MISSING = " (listed missing values as null)"
_FUTURE_AGE = -1.0  # a date of birth in the future: outside any age range
_TOO_OLD_AGE = 999.0  # a date before 1890, which standardisation refuses as impossible


def validation_frame(raw: RawSource, contract: Contract) -> pd.DataFrame:
    """The rows read (not withdrawn, read whole), contract columns as text, plus standardised
    readings."""
    from care_etl.standardise._series import text_of

    records = _rows_to_check(raw.records)
    columns: dict[str, np.ndarray] = {}
    for obj in (contract.person_object, *contract.lookups):
        prefix = "" if obj is contract.person_object else f"{obj.id}."
        for col in obj.columns:
            name = prefix + col.name
            values = (
                records[name] if name in records.columns else pd.Series(None, index=records.index)
            )
            text = text_of(values)
            columns[name] = text.to_numpy(object)
            columns.update(_readings(col, name, text))
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


def _rows_to_check(records: pd.DataFrame) -> pd.DataFrame:
    """Leave out withdrawn rows (only counted) and rows with a read error (an unreadable scan,
    a ragged CSV row): staging quarantines those with their reason. Counted here, an unreadable
    file's blank fields would fail the not-null checks: one empty scan would block a small
    batch of referrals. A feed none of whose rows can be read still fails its row count."""
    if "_withdrawn" in records.columns:
        records = records[~records["_withdrawn"].astype(bool)]
    if "_read_error" in records.columns:
        records = records[records["_read_error"].isna()]
    return records


def _readings(col: Column, name: str, text: pd.Series) -> dict[str, np.ndarray]:
    """The column's standardised readings, by name. Each distinct text is read once, then
    spread over the rows: most of a feed's values repeat from row to row."""
    if col.logical_type != "date" and col.canonical != "nhs_number":
        return {}
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    codes[codes < 0] = len(uniques)
    distinct = pd.Series([*uniques, None], dtype=object)  # the texts, then a blank
    readings: dict[str, pd.Series] = {}
    if col.logical_type == "date":
        parses, age = _date_readings(distinct, col.date_format)
        readings[name + PARSES] = parses
        if col.canonical == "date_of_birth":
            readings[name + AGE] = age
    if col.canonical == "nhs_number":
        readings[name + NHS_VALID] = _nhs_valid(distinct)
    return {column: reading.to_numpy()[codes] for column, reading in readings.items()}


def _date_readings(text: pd.Series, date_format: str | None) -> tuple[pd.Series, pd.Series]:
    """Whether each value reads as a date (None when blank), and the age it gives in years."""
    from care_etl.standardise.dates import clean_dates

    today = dt.date.today()
    cleaned = clean_dates(text, [date_format] if date_format else None, today=today)
    future = _mentions(cleaned.issue, "in the future")
    too_old = _mentions(cleaned.issue, "before 1890")
    present = text.notna()
    parses = (cleaned.value.notna() | future | too_old).astype(object).where(present, None)
    days = (pd.Timestamp(today) - cleaned.value).dt.days
    age = (days / 365.2425).astype(float)
    age = age.mask(future, _FUTURE_AGE).mask(too_old, _TOO_OLD_AGE)
    return parses, age


def _mentions(issues: pd.Series, phrase: str) -> pd.Series:
    """Whether each reason contains the phrase, looking at each distinct reason once."""
    codes, uniques = pd.factorize(issues, use_na_sentinel=True)
    found = np.array([phrase in str(u) for u in uniques] + [False], dtype=bool)
    return pd.Series(found[np.where(codes < 0, len(uniques), codes)], index=issues.index)


#: How most NHS numbers are written when not as 10 digits: 3, 3 and 4 digits with spaces.
_SPACED_NHS = re.compile(r"[0-9]{3} [0-9]{3} [0-9]{4}")


def _nhs_valid(text: pd.Series) -> pd.Series:
    """Whether each text is a valid NHS number (None when blank). Spaced numbers are read
    without their spaces (as clean_nhs_number reads them), so that its quick path, for 10
    digits, reads them too."""
    from care_etl.standardise.identifiers import clean_nhs_number

    digits = text.map(
        lambda t: t.replace(" ", "") if t is not None and _SPACED_NHS.fullmatch(t) else t,
        na_action="ignore",
    )
    valid = clean_nhs_number(digits).value.notna()
    return valid.astype(object).where(text.notna(), None)


def run_checks(
    plans: list[CheckPlan],
    frame: pd.DataFrame,
    *,
    source: str,
    run_id: str,
    previous_rows: int | None,
    missing_required: list[str],
    run_time: dt.datetime,
) -> list[dict[str, Any]]:
    """One result dict per plan, in plan order (care_etl.quality.results.RESULT_KEYS)."""
    frame = _with_missing_columns(plans, frame)
    common = {"source": source, "run_id": run_id, "run_time": run_time}
    results: dict[str, dict[str, Any]] = {}
    expectations = []
    for plan in plans:
        if plan.kind == "schema":
            required = _required_count(plans, missing_required)
            results[plan.name] = result_row(
                plan,
                **common,
                success=not missing_required,
                element_count=required,
                unexpected_count=len(missing_required),
                unexpected_rate=len(missing_required) / required if required else 0.0,
            )
        else:
            expectations.append(_expectation(plan, frame, previous_rows))
    if expectations:
        for name, outcome in _validate(expectations, frame).items():
            results[name] = result_row(_plan(plans, name), **common, **outcome)
    return [results[p.name] for p in plans]


def _required_count(plans: list[CheckPlan], missing: list[str]) -> int:
    required = {p.column for p in plans if p.kind == "not_null"}
    return max(len(required | set(missing)), 1)


def _plan(plans: list[CheckPlan], name: str) -> CheckPlan:
    return next(p for p in plans if p.name == name)


def _with_missing_columns(plans: list[CheckPlan], frame: pd.DataFrame) -> pd.DataFrame:
    """Derived columns a rule needs (listed missing values as null)."""
    for plan in plans:
        if plan.kind == "missingValues_rule" and plan.column in frame.columns:
            listed = {str(v) for v in plan.params.get("values", [])}
            values = frame[plan.column]
            frame[plan.column + AS_MISSING] = values.where(~values.isin(listed), None)
    return frame


def _expectation(plan: CheckPlan, frame: pd.DataFrame, previous_rows: int | None) -> Any:
    import great_expectations.expectations as gxe

    meta = {"check": plan.name}
    col = plan.column
    kind = plan.kind
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=plan.mostly, meta=meta)
    if kind == "unique":
        return gxe.ExpectColumnValuesToBeUnique(column=col, mostly=plan.mostly, meta=meta)
    if kind == "compound_unique":
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=plan.params["columns"], mostly=plan.mostly, meta=meta
        )
    if kind == "date_parses":
        return _true(col + PARSES, plan.mostly, meta)
    if kind == "nhs_valid":
        return _true(col + NHS_VALID, plan.mostly, meta)
    if kind == "dob_range":
        return gxe.ExpectColumnValuesToBeBetween(
            column=col + AGE,
            min_value=0,
            max_value=plan.params["max_age"],
            mostly=plan.mostly,
            meta=meta,
        )
    if kind == "pattern":
        return gxe.ExpectColumnValuesToMatchRegex(
            column=col, regex=plan.params["regex"], mostly=plan.mostly, meta=meta
        )
    if kind in ("row_count_floor", "row_count_drift", "row_count_rule"):
        low, high = _row_bounds(plan, previous_rows)
        return gxe.ExpectTableRowCountToBeBetween(min_value=low, max_value=high, meta=meta)
    return _rule_expectation(plan, frame, meta)


def _true(column: str, mostly: float, meta: dict[str, str]) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=[True], mostly=mostly, meta=meta
    )


def _row_bounds(plan: CheckPlan, previous: int | None) -> tuple[int | None, int | None]:
    if plan.kind == "row_count_floor":
        return max(1, math.ceil(previous * plan.params["floor"])) if previous else 1, None
    if plan.kind == "row_count_drift":
        if not previous:
            return 0, None
        drift = plan.params["drift"]
        return math.floor(previous * (1 - drift)), math.ceil(previous * (1 + drift))
    bound, operator = plan.params["bound"], plan.params["operator"]
    if operator == "mustBeBetween":
        return math.ceil(bound[0]), math.floor(bound[1])
    if operator == "mustBeGreaterThan":
        return math.floor(bound) + 1, None
    if operator == "mustBeGreaterOrEqualTo":
        return math.ceil(bound), None
    if operator == "mustBeLessThan":
        return 0, math.ceil(bound) - 1
    if operator == "mustBeLessOrEqualTo":
        return 0, math.floor(bound)
    return bound, bound  # mustBe


def _rule_expectation(plan: CheckPlan, frame: pd.DataFrame, meta: dict[str, str]) -> Any:
    """An ODCS library rule on bad values: its bound becomes GX's `mostly`."""
    import great_expectations.expectations as gxe

    metric, col = plan.params["metric"], plan.column
    if plan.kind == "compound_unique_rule":
        columns = plan.params["columns"]
        mostly = _mostly(plan, len(frame))
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=columns, mostly=mostly, meta=meta)
    if metric == "nullValues":
        mostly = _mostly(plan, len(frame))
        return gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=mostly, meta=meta)
    if metric == "missingValues":
        mostly = _mostly(plan, len(frame))
        return gxe.ExpectColumnValuesToNotBeNull(column=col + AS_MISSING, mostly=mostly, meta=meta)
    present = int(frame[col].notna().sum())
    mostly = _mostly(plan, present)
    if metric == "duplicateValues":
        return gxe.ExpectColumnValuesToBeUnique(column=col, mostly=mostly, meta=meta)
    if "regex" in plan.params:
        return gxe.ExpectColumnValuesToMatchRegex(
            column=col, regex=plan.params["regex"], mostly=mostly, meta=meta
        )
    return gxe.ExpectColumnValuesToBeInSet(
        column=col, value_set=plan.params["values"], mostly=mostly, meta=meta
    )


def _mostly(plan: CheckPlan, denominator: int) -> float:
    """Share of values that must be good: one minus the rule's allowed share of bad values."""
    bound, operator = plan.params["bound"], plan.params["operator"]
    allowed = float(bound[-1] if isinstance(bound, list) else bound)
    if operator == "mustBeLessThan":
        allowed -= 1 if plan.params["unit"] == "rows" else 1e-9
    if plan.params["unit"] == "percent":
        share = allowed / 100
    else:
        share = allowed / denominator if denominator else 1.0
    return min(max(1.0 - share, 0.0), 1.0)


def _validate(expectations: list[Any], frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Run the expectations on the frame; per check: success and counts, never values."""
    import great_expectations as gx

    context = offline_context()
    asset = context.data_sources.add_pandas("feed").add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("all rows")
    suite = context.suites.add(gx.ExpectationSuite(name="contract", expectations=expectations))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="contract", data=batch, suite=suite)
    )
    # BASIC gives every count kept (SUMMARY adds tallies of failing values, dropped unread),
    # and GX copies the frame it is given: only the columns checked go in.
    data = _checked_columns(expectations, frame)
    outcome = validation.run(batch_parameters={"dataframe": data}, result_format="BASIC")
    return {r.expectation_config.meta["check"]: _counts(r, len(frame)) for r in outcome.results}


def _checked_columns(expectations: list[Any], frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with only the columns some expectation reads (all rows)."""
    used: list[str] = []
    for expectation in expectations:
        config = expectation.configuration.kwargs
        for name in [config.get("column"), *(config.get("column_list") or [])]:
            if name is not None and name in frame.columns and name not in used:
                used.append(name)
    return frame[used] if used else frame


def _counts(result: Any, rows: int) -> dict[str, Any]:
    raw = result.result or {}
    observed = raw.get("observed_value")
    element = raw.get("element_count")
    unexpected = raw.get("unexpected_count")
    percent = raw.get("unexpected_percent")
    if isinstance(observed, bool) or not isinstance(observed, int | float):
        observed = None
    if element is None and observed is not None:
        element = rows
    return {
        "success": bool(result.success),
        "element_count": None if element is None else int(element),
        "unexpected_count": None if unexpected is None else int(unexpected),
        "unexpected_rate": None if percent is None else round(float(percent) / 100, 6),
        "observed_value": None if observed is None else float(observed),
    }


def offline_context() -> Any:
    """An ephemeral GX context: in memory only, analytics off, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")
