"""Which data-quality checks a contract asks for, as plain plans (no Great Expectations here).

The plans are known when the Dagster definitions load (they name the asset checks) and are
turned into GX expectations only when a run validates data (care_etl.quality.expectations).

Derived from every contract:
- `schema_required_columns` (error): every required column is present in the feed.
- `not_null__<col>` for a `required` column of the records (error): at least 95% present.
- `unique__<col>` / `unique_record_id` for a `unique` column and the primary key (error):
  at least 99% unique (duplicates are quarantined one by one; many mean a broken extract).
- `date_parses__<col>` for a date column: at least 90% of the values present read as a date.
- `dob_in_range__<col>` for the date of birth: at least 99% not in the future, age at most 120.
- `nhs_number_valid__<col>` for the NHS number: at least 90% of the values present pass
  modulus 11.
- `pattern__<col>` for a column with `logicalTypeOptions.pattern`: at least 95% match.
- `row_count_not_collapsed` (error): at least half the rows of the last accepted version (and
  at least one row); `row_count_steady` (warning): within 25% of it.
Plus the contract's own ODCS `quality` rules (library metrics nullValues, missingValues,
invalidValues, duplicateValues, rowCount), with their own `severity` (default error).

A column's checks are errors when it is a `criticalDataElement` (or `required`), else warnings.
An error that fails blocks the feed (care_etl.quality.gate); a warning only shows. An error
on a share of rows blocks only when at least MIN_ROWS_TO_BLOCK rows fail it, or every row of
at least MIN_ROWS_ALL_FAILING; fewer fail it as a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from care_etl.contracts.model import Column, Contract, SourceObject
from care_etl.errors import ContractError

ERROR, WARNING = "error", "warning"
SEVERITIES = (ERROR, WARNING)
METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
_OPERATORS = (
    "mustBe",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeBetween",
)

REQUIRED_PRESENT = 0.95
UNIQUE = 0.99
DATE_PARSES = 0.90
DOB_IN_RANGE = 0.99
NHS_VALID = 0.90
PATTERN = 0.95
MAX_AGE_YEARS = 120
ROW_COUNT_FLOOR = 0.5  # of the last accepted version's rows
ROW_COUNT_DRIFT = 0.25
#: A check on a share of rows blocks its feed only when at least this many rows fail it:
#: one odd row in a small feed (a form whose date OCR could not read, in a batch of three)
#: is not a broken extract, and each such row is handled on its own, quarantined with a
#: reason or indexed without the value. Fewer fail the check as a warning.
MIN_ROWS_TO_BLOCK = 5
#: ...unless it fails on every row, of at least this many: a new date format in a batch of
#: three forms is a broken extract.
MIN_ROWS_ALL_FAILING = 3
_SHARE_KINDS = (
    "not_null",
    "unique",
    "compound_unique",
    "date_parses",
    "dob_range",
    "nhs_valid",
    "pattern",
)


@dataclass(frozen=True)
class CheckPlan:
    """One check: its Dagster-safe name, the column (None for the table), and its rule."""

    name: str
    column: str | None
    kind: str
    severity: str
    description: str
    mostly: float = 1.0
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _bounds_a_share(plan: CheckPlan) -> bool:
    """Whether the check bounds the share of rows that fail it (not a count, the row count
    or the schema): the checks MIN_ROWS_TO_BLOCK applies to."""
    if plan.kind == "rowCount_rule":
        return False
    return plan.kind in _SHARE_KINDS or plan.params.get("unit") == "percent"


def too_few_to_block(plan: CheckPlan, failed: int | None, checked: int | None) -> bool:
    """Whether a check on a share failed on too few rows to block its feed
    (MIN_ROWS_TO_BLOCK), and not on every row of MIN_ROWS_ALL_FAILING or more."""
    if failed is None or not _bounds_a_share(plan):
        return False
    if checked is not None and failed >= checked >= MIN_ROWS_ALL_FAILING:
        return False
    return failed < MIN_ROWS_TO_BLOCK


def plan_checks(contract: Contract) -> list[CheckPlan]:
    """Every check of one source, in a stable order; names are unique within the source."""
    plans = [
        CheckPlan(
            "schema_required_columns",
            None,
            "schema",
            ERROR,
            "Every required column of the contract is present in the feed.",
        )
    ]
    for obj in (contract.person_object, *contract.lookups):
        prefix = "" if obj is contract.person_object else f"{obj.id}."
        for col in obj.columns:
            plans += _column_plans(contract, obj, col, prefix + col.name)
    plans += _key_plans(contract)
    plans += _row_count_plans()
    for obj in (contract.person_object, *contract.lookups):
        for index, rule in enumerate(obj.quality):
            plans.append(rule_plan(contract, obj, None, None, rule, index))
    return _unique_names(plans)


def _column_plans(contract: Contract, obj: SourceObject, col: Column, name: str) -> list[CheckPlan]:
    own = col.id or col.name
    key = _slug(own if obj is contract.person_object else f"{obj.id}_{own}")
    severity = ERROR if (col.critical or col.required) else WARNING
    plans = []
    # A lookup's rows are joined onto the person rows, so its own keys repeat and may be
    # blank there: only its values' formats are checked.
    person = obj is contract.person_object
    if col.required and person:
        plans.append(
            CheckPlan(
                f"not_null__{key}",
                name,
                "not_null",
                ERROR,
                f"'{name}' is required: at least {REQUIRED_PRESENT:.0%} of rows have it.",
                REQUIRED_PRESENT,
            )
        )
    if col.unique and person and not _is_sole_key(contract, obj, col):
        plans.append(
            CheckPlan(
                f"unique__{key}",
                name,
                "unique",
                ERROR,
                f"'{name}' is unique: at least {UNIQUE:.0%} of values unique.",
                UNIQUE,
            )
        )
    if col.logical_type == "date":
        plans.append(
            CheckPlan(
                f"date_parses__{key}",
                name,
                "date_parses",
                severity,
                f"At least {DATE_PARSES:.0%} of '{name}' values read as a date "
                f"(format {col.date_format or 'any we know'}).",
                DATE_PARSES,
                {"format": col.date_format},
            )
        )
    if col.canonical == "date_of_birth":
        plans.append(
            CheckPlan(
                f"dob_in_range__{key}",
                name,
                "dob_range",
                severity,
                f"At least {DOB_IN_RANGE:.0%} of dates of birth are not in the future and give "
                f"an age of at most {MAX_AGE_YEARS}.",
                DOB_IN_RANGE,
                {"format": col.date_format, "max_age": MAX_AGE_YEARS},
            )
        )
    if col.canonical == "nhs_number":
        plans.append(
            CheckPlan(
                f"nhs_number_valid__{key}",
                name,
                "nhs_valid",
                severity,
                f"At least {NHS_VALID:.0%} of NHS numbers present pass the modulus 11 check.",
                NHS_VALID,
            )
        )
    if col.pattern:
        _check_regex(contract, obj, col)
        plans.append(
            CheckPlan(
                f"pattern__{key}",
                name,
                "pattern",
                severity,
                f"At least {PATTERN:.0%} of '{name}' values match the contract's pattern.",
                PATTERN,
                {"regex": col.pattern},
            )
        )
    for index, rule in enumerate(col.quality):
        plans.append(rule_plan(contract, obj, col, name, rule, index))
    return plans


def _is_sole_key(contract: Contract, obj: SourceObject, col: Column) -> bool:
    return obj is contract.person_object and contract.record_id_columns == [col.name]


def _key_plans(contract: Contract) -> list[CheckPlan]:
    keys = contract.record_id_columns
    return [
        CheckPlan(
            "unique_record_id",
            keys[0] if len(keys) == 1 else None,
            "unique" if len(keys) == 1 else "compound_unique",
            ERROR,
            f"The record id ({', '.join(keys)}) is unique in at least {UNIQUE:.0%} of rows.",
            UNIQUE,
            {"columns": keys},
        )
    ]


def _row_count_plans() -> list[CheckPlan]:
    return [
        CheckPlan(
            "row_count_not_collapsed",
            None,
            "row_count_floor",
            ERROR,
            f"The feed has rows, and at least {ROW_COUNT_FLOOR:.0%} of the rows of its last "
            "accepted version (fewer means a truncated or failed extract).",
            params={"floor": ROW_COUNT_FLOOR},
        ),
        CheckPlan(
            "row_count_steady",
            None,
            "row_count_drift",
            WARNING,
            f"The row count is within {ROW_COUNT_DRIFT:.0%} of the last accepted version's.",
            params={"drift": ROW_COUNT_DRIFT},
        ),
    ]


def rule_plan(
    contract: Contract,
    obj: SourceObject,
    col: Column | None,
    name: str | None,
    rule: dict[str, Any],
    index: int,
) -> CheckPlan:
    """One ODCS quality rule as a plan; an unsupported rule is a ContractError naming it."""
    where = _rule_path(obj, col, index)
    metric = rule.get("metric") or rule.get("rule")
    kind = rule.get("type", "library")
    if kind == "text":
        raise ContractError(
            f"{contract.file}: {where}: a 'text' rule cannot be checked; write it as a library "
            f"metric ({', '.join(METRICS)})"
        )
    if kind != "library" or metric not in METRICS:
        raise ContractError(
            f"{contract.file}: {where}: only ODCS library metrics are checked "
            f"({', '.join(METRICS)}); got {metric or kind!r}"
        )
    severity = str(rule.get("severity", ERROR)).lower()
    severity = WARNING if severity in ("warning", "warn", "info") else ERROR
    operator = next((op for op in _OPERATORS if op in rule), None)
    if operator is None:
        raise ContractError(
            f"{contract.file}: {where}: give a bound ({', '.join(_OPERATORS)}); "
            "mustNotBe and mustNotBeBetween are not checked"
        )
    label = _slug(str(rule.get("name") or rule.get("id") or metric))
    target = _slug(col.id or col.name) if col else _slug(obj.id)
    check = f"quality__{target}__{label}"
    arguments = rule.get("arguments") or {}
    description = str(rule.get("description") or f"{metric} {operator} {rule[operator]}")
    params = {"metric": metric, "operator": operator, "bound": rule[operator]}
    params["unit"] = str(rule.get("unit", "rows")).lower()
    if metric == "rowCount":
        return CheckPlan(check, None, "row_count_rule", severity, description, params=params)
    if operator in ("mustBeGreaterThan", "mustBeGreaterOrEqualTo"):
        raise ContractError(
            f"{contract.file}: {where}: {metric} counts bad values; bound it from above "
            "(mustBe, mustBeLessThan, mustBeLessOrEqualTo or mustBeBetween)"
        )
    if metric == "duplicateValues" and col is None:
        columns = arguments.get("properties")
        if not columns:
            raise ContractError(
                f"{contract.file}: {where}: a schema-level duplicateValues rule needs "
                "arguments.properties (the columns that together must be unique)"
            )
        params["columns"] = [str(c) for c in columns]
        return CheckPlan(check, None, "compound_unique_rule", severity, description, params=params)
    if col is None:
        raise ContractError(
            f"{contract.file}: {where}: {metric} applies to a column; move the rule under "
            "the property it checks"
        )
    if metric == "invalidValues":
        if "validValues" in arguments:
            params["values"] = list(arguments["validValues"])
        elif "pattern" in arguments:
            params["regex"] = str(arguments["pattern"])
            _compile(contract, where, params["regex"])
        else:
            raise ContractError(
                f"{contract.file}: {where}: invalidValues needs arguments.validValues (a list) "
                "or arguments.pattern (a regular expression)"
            )
    if metric == "missingValues":
        params["values"] = list(arguments.get("missingValues") or [])
    return CheckPlan(check, name, f"{metric}_rule", severity, description, params=params)


def _rule_path(obj: SourceObject, col: Column | None, index: int) -> str:
    if col is None:
        return f"schema/{obj.name}/quality/{index}"
    return f"schema/{obj.name}/properties/{col.name}/quality/{index}"


def _check_regex(contract: Contract, obj: SourceObject, col: Column) -> None:
    _compile(
        contract,
        f"schema/{obj.name}/properties/{col.name}/logicalTypeOptions/pattern",
        col.pattern or "",
    )


def _compile(contract: Contract, where: str, regex: str) -> None:
    try:
        re.compile(regex)
    except re.error as exc:
        raise ContractError(
            f"{contract.file}: {where}: not a valid regular expression ({exc})"
        ) from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "x"


def _unique_names(plans: list[CheckPlan]) -> list[CheckPlan]:
    seen: dict[str, int] = {}
    out = []
    for plan in plans:
        count = seen.get(plan.name, 0)
        seen[plan.name] = count + 1
        if count:
            plan = CheckPlan(
                f"{plan.name}_{count + 1}",
                plan.column,
                plan.kind,
                plan.severity,
                plan.description,
                plan.mostly,
                plan.params,
            )
        out.append(plan)
    return out
