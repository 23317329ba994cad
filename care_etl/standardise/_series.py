"""Shared plumbing: clean each distinct value once, then spread the results over the rows.

Real extracts repeat values heavily (a few thousand surnames, one postcode per household), so
mapping over `unique()` keeps 200,000 records to a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from anyascii import anyascii

#: A cleaner takes one raw value and returns the clean value and, when it nulled or changed
#: the value in substance, a reason. Reasons are fixed phrases and never quote the value.
Cleaner = Callable[[object], tuple[object, str | None]]


class Cleaned(NamedTuple):
    """Clean values and the reason (or None) for each row, both on the input's index."""

    value: pd.Series
    issue: pd.Series


def as_text(value: object) -> str | None:
    """Text of a raw value, stripped; None for None, NaN and blank strings."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = repr(value) if not value.is_integer() else str(int(value)) + ".0"
    text = str(value).strip()
    return text or None


def to_ascii(text: str) -> str:
    """Latin letters for the letters of any script, accents dropped ("Zoë" -> "Zoe",
    "Иван" -> "Ivan", "Γιώργος" -> "Giorgos", "ß" -> "ss"), for what is compared as A-Z
    (name keys, the normalised address line): kept to A-Z alone, a name not written in
    Latin letters was an empty key, and its records linked on date of birth and address."""
    return text if text.isascii() else anyascii(text)


def _object_array(items: list[object]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


#: A bulk cleaner takes the distinct values and cleans, in one vectorised pass, those of a
#: common shape: it returns which it cleaned, their clean values and their reasons. The rest
#: go through the per-value cleaner, which must give the same results for every value.
Bulk = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def map_unique(
    values: pd.Series, cleaner: Cleaner, *, dates: bool = False, bulk: Bulk | None = None
) -> Cleaned:
    """Apply `cleaner` to each distinct non-null value once; nulls stay null with no reason.

    With `dates`, clean values are Timestamps (or None) and the result is datetime64[ns].
    With `bulk`, the values it can clean in one pass skip `cleaner`.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    clean_array = (
        np.full(len(uniques) + 1, np.datetime64("NaT"), dtype="datetime64[ns]")
        if dates
        else _object_array([None] * (len(uniques) + 1))
    )
    reasons = _object_array([None] * (len(uniques) + 1))
    rest = np.arange(len(uniques))
    if bulk is not None and len(uniques):
        done, bulk_clean, bulk_reasons = bulk(uniques)
        clean_array[:-1][done] = bulk_clean
        reasons[:-1][done] = bulk_reasons
        rest = np.flatnonzero(~done)
    if len(rest):
        results = [cleaner(u) for u in uniques[rest]]
        clean = [r[0] for r in results]
        if dates:
            clean = pd.to_datetime(pd.Series(clean, dtype=object)).to_numpy("datetime64[ns]")
        clean_array[rest] = clean if dates else _object_array(clean)
        reasons[rest] = _object_array([r[1] for r in results])
    take = np.where(codes < 0, len(uniques), codes)
    value = pd.Series(clean_array[take], index=values.index, name=values.name)
    issue = pd.Series(reasons[take], index=values.index, name=values.name)
    return Cleaned(value, issue)


def text_of(values: pd.Series) -> pd.Series:
    """`values.map(as_text)`, cleaning each distinct value once when all are text (when types
    mix, 1 and 1.0 would count as one distinct value, so each is cleaned on its own)."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return values.map(as_text).astype(object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = _object_array([u.strip() or None for u in uniques] + [None])  # as_text of text
    return pd.Series(
        texts[np.where(codes < 0, len(uniques), codes)],
        index=values.index,
        name=values.name,
        dtype=object,
    )
