"""The stage's entry point: raw canonical text in, comparable canonical values out.

Every value nulled or changed in substance leaves a reason in `quality_issues`, so a reviewer
can see why a record did not link without the reason itself carrying personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from care_etl.canonical import (
    CANONICAL_FIELDS,
    DATE_FIELDS,
    KEY_COLUMNS,
    PREVIOUS_ADDRESSES,
    STANDARDISED_FIELDS,
)
from care_etl.standardise._series import Cleaned, as_text, text_of
from care_etl.standardise.address import clean_address_and_postcode, clean_previous_addresses
from care_etl.standardise.dates import check_death_after_birth, clean_dates
from care_etl.standardise.identifiers import clean_nhs_number, clean_ni_number, clean_uprn
from care_etl.standardise.names import (
    clean_name,
    clean_other_names,
    clean_title,
    parse_full_name,
)
from care_etl.standardise.postcode import clean_postcode
from care_etl.standardise.sex import clean_sex

QUALITY_ISSUES = "quality_issues"
_NAME_FIELDS = ("given_name", "middle_names", "family_name")
_SIMPLE_CLEANERS = {
    "other_names": clean_other_names,
    "sex": clean_sex,
    "nhs_number": clean_nhs_number,
    "ni_number": clean_ni_number,
    "uprn": clean_uprn,
}


class _Issues:
    """Reasons collected per row, as 'field: reason', in the order they were found."""

    def __init__(self, size: int) -> None:
        self._rows: list[list[str]] = [[] for _ in range(size)]

    def add(self, field: str, issue: pd.Series, where: np.ndarray | None = None) -> None:
        present = issue.notna().to_numpy(bool)
        if where is not None:
            present &= where
        reasons = issue.to_numpy(object)
        for row in np.flatnonzero(present):
            self._rows[row].append(f"{field}: {reasons[row]}")

    def joined(self, existing: pd.Series | None) -> np.ndarray:
        before = [None] * len(self._rows) if existing is None else existing.map(as_text).tolist()
        out = np.empty(len(self._rows), dtype=object)
        out[:] = [
            "; ".join(([old] if old else []) + new) or None
            for old, new in zip(before, self._rows, strict=True)
        ]
        return out


def _column(records: pd.DataFrame, field: str) -> pd.Series:
    if field in records.columns:
        return records[field]
    return pd.Series(None, index=records.index, dtype=object, name=field)


def _blank(values: pd.Series) -> np.ndarray:
    """True where a raw value is null or only spaces."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    blank = np.array([as_text(u) is None for u in uniques] + [True], dtype=bool)
    return blank[np.where(codes < 0, len(uniques), codes)]


def _names(records: pd.DataFrame, issues: _Issues) -> dict[str, np.ndarray]:
    """Title, given, middle and family names, filled from `full_name` where they are missing."""
    cleaned = {f: clean_name(_column(records, f)) for f in _NAME_FIELDS}
    cleaned["title"] = clean_title(_column(records, "title"))
    for field, result in cleaned.items():
        issues.add(field, result.issue)
    out = {f: r.value.to_numpy(object).copy() for f, r in cleaned.items()}
    if "full_name" not in records.columns:
        return out
    missing = pd.isna(out["given_name"]) | pd.isna(out["family_name"])
    use = missing & ~_blank(records["full_name"])
    if not use.any():
        return out
    parts, parse_issue = parse_full_name(records["full_name"])
    issues.add("full_name", parse_issue, use)
    for field in ("title", *_NAME_FIELDS):
        part = (clean_title if field == "title" else clean_name)(parts[field])
        fill = use & pd.isna(out[field]) & part.value.notna().to_numpy(bool)
        issues.add(field, part.issue, use & pd.isna(out[field]))
        out[field][fill] = part.value.to_numpy(object)[fill]
    return out


def _dates(
    records: pd.DataFrame,
    date_formats: Mapping[str, Sequence[str]],
    issues: _Issues,
    today: dt.date | None,
) -> dict[str, np.ndarray]:
    cleaned = {}
    for field in DATE_FIELDS:
        result = clean_dates(_column(records, field), date_formats.get(field), today=today)
        issues.add(field, result.issue)
        cleaned[field] = result.value
    checked = check_death_after_birth(cleaned["date_of_birth"], cleaned["date_of_death"])
    issues.add("date_of_death", checked.issue)
    cleaned["date_of_death"] = checked.value
    return {f: v.to_numpy("datetime64[ns]") for f, v in cleaned.items()}


def _postcode(records: pd.DataFrame, from_address: pd.Series, issues: _Issues) -> np.ndarray:
    """Postcodes, taking one written at the end of the address when the field is empty."""
    raw = _column(records, "postcode")
    fill = _blank(raw) & from_address.notna().to_numpy(bool)
    if fill.any():
        raw = pd.Series(np.where(fill, from_address.to_numpy(object), raw.to_numpy(object)))
        raw.index = records.index
        taken = pd.Series(np.where(fill, "taken from the address", None), index=records.index)
        issues.add("postcode", taken)
    result: Cleaned = clean_postcode(raw)
    issues.add("postcode", result.issue)
    return result.value.to_numpy(object)


#: The fields the day-independent part of standardising reads (all but the dates), and
#: the values it gives.
UNDATED_FIELDS: tuple[str, ...] = tuple(f for f in CANONICAL_FIELDS if f not in DATE_FIELDS)
UNDATED_VALUES: tuple[str, ...] = tuple(f for f in STANDARDISED_FIELDS if f not in DATE_FIELDS)


@dataclass
class Undated:
    """What standardising gives that does not depend on the day it runs: the values of the
    fields that are not dates, and the reasons found before the dates' (names) and after
    them (the rest), each joined with '; ' (None when none). Row i is the records' row i."""

    values: dict[str, np.ndarray]
    before: np.ndarray
    after: np.ndarray


def undated_texts(records: pd.DataFrame) -> pd.DataFrame:
    """The fields the day-independent part reads, as text (`as_text`; every cleaner of those
    fields reads a value only through it), positionally indexed; absent fields all null."""
    return pd.DataFrame(
        {f: text_of(_column(records, f)).to_numpy(object) for f in UNDATED_FIELDS},
        index=pd.RangeIndex(len(records)),
    )


def standardise_undated(texts: pd.DataFrame) -> Undated:
    """Standardise the fields that are not dates (`texts` as `undated_texts` gives them).

    Each row's result depends on that row's texts alone, so it can be kept between runs
    (care_etl.incremental.rows).
    """
    before, after = _Issues(len(texts)), _Issues(len(texts))
    values: dict[str, np.ndarray] = _names(texts, before)
    for field, cleaner in _SIMPLE_CLEANERS.items():
        result = cleaner(texts[field])
        after.add(field, result.issue)
        values[field] = result.value.to_numpy(object)
    address, from_address = clean_address_and_postcode(texts["address"])
    after.add("address", address.issue)
    values["address"] = address.value.to_numpy(object)
    values["postcode"] = _postcode(texts, from_address, after)
    return Undated(values, before.joined(None), after.joined(None))


def standardise(
    records: pd.DataFrame,
    date_formats: Mapping[str, Sequence[str]] | None = None,
    *,
    undated: Callable[[pd.DataFrame], Undated] | None = None,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Standardise raw canonical fields; same rows, order and index as `records`.

    `date_formats` maps a date field to the strptime formats its contract declares; they are
    tried before the shapes every source may use (ISO, day-first, month names, Excel serials).
    Columns that are not canonical fields pass through untouched; `quality_issues` gains a
    '; '-separated reason for every value nulled or changed. `undated` replaces
    `standardise_undated` (a cache of its results gives the same); the dates, which depend on
    today's date (`today`, by default the day it runs), are always read afresh.
    """
    missing = [c for c in KEY_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"records to standardise lack the key column(s) {', '.join(missing)}")
    records, spreadsheet_errors = _without_spreadsheet_errors(records)
    found = (undated or standardise_undated)(undated_texts(records))
    dated = _Issues(len(records))
    values = {**found.values, **_dates(records, date_formats or {}, dated, today)}

    # Arrays, not Series: no alignment, so a duplicated index cannot scramble rows, and
    # pass-through columns keep their dtype.
    columns: dict[str, object] = {k: records[k].array for k in KEY_COLUMNS}
    columns.update({f: values[f] for f in STANDARDISED_FIELDS})
    handled = set(KEY_COLUMNS) | set(CANONICAL_FIELDS) | {QUALITY_ISSUES}
    for name in records.columns:
        if name not in handled:
            columns[name] = records[name].array
    history = _previous_addresses(records, columns)
    existing = records[QUALITY_ISSUES] if QUALITY_ISSUES in records.columns else None
    columns[QUALITY_ISSUES] = _joined(
        existing, spreadsheet_errors, found.before, dated.joined(None), found.after, history
    )
    return pd.DataFrame(columns, index=records.index)


#: What a spreadsheet shows in a cell whose formula failed (openpyxl.utils.ERROR_CODES, and
#: the newer dynamic-array errors); an export or a CSV saved from the sheet carries the text.
SPREADSHEET_ERRORS = frozenset(
    {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#SPILL!", "#CALC!"}
)


def _without_spreadsheet_errors(records: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The records with every canonical value that is a spreadsheet error (`#REF!`, `#N/A`)
    nulled, and the reasons, as 'field: a spreadsheet error (#REF!), not a value' per row.

    Read as text, `#REF!` in a name cell was the family name "Ref" and linked as one."""
    reasons = _Issues(len(records))
    nulled: dict[str, pd.Series] = {}
    for field in CANONICAL_FIELDS:
        if field not in records.columns or records[field].dtype != object:
            continue
        values = records[field]  # the readers strip every value: an exact match will do
        found = values.isin(SPREADSHEET_ERRORS).to_numpy(bool)
        if found.any():
            reason = values.where(found, "").map(
                lambda e: f"a spreadsheet error ({e}), not a value"
            )
            reasons.add(field, reason, found)
            nulled[field] = values.where(~found, None)
    if nulled:
        records = records.assign(**nulled)
    return records, reasons.joined(None)


def _previous_addresses(records: pd.DataFrame, columns: dict[str, object]) -> np.ndarray:
    """Former addresses cleaned as the current address is (`columns` gets them); the
    reasons, as 'previous_addresses: reason' per row (None when none)."""
    if PREVIOUS_ADDRESSES not in records.columns:
        return np.full(len(records), None, dtype=object)
    cleaned = clean_previous_addresses(records[PREVIOUS_ADDRESSES])
    columns[PREVIOUS_ADDRESSES] = cleaned.value.to_numpy(object)
    issue = cleaned.issue.to_numpy(object)
    return np.where(pd.notna(issue), f"{PREVIOUS_ADDRESSES}: " + issue.astype(str), None)


def _joined(existing: pd.Series | None, *parts: np.ndarray) -> np.ndarray:
    """Per row: the reasons it came with, then each part's, joined with '; '; None if none."""
    first = [None] * len(parts[0]) if existing is None else existing.map(as_text).tolist()
    out = np.empty(len(parts[0]), dtype=object)
    out[:] = ["; ".join(p for p in row if p) or None for row in zip(first, *parts, strict=True)]
    return out
