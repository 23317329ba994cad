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


def _object_array(items: list[object]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def map_unique(values: pd.Series, cleaner: Cleaner, *, dates: bool = False) -> Cleaned:
    """Apply `cleaner` to each distinct non-null value once; nulls stay null with no reason.

    With `dates`, clean values are Timestamps (or None) and the result is datetime64[ns].
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = [cleaner(u) for u in uniques]
    clean = [r[0] for r in results] + [None]
    reasons = [r[1] for r in results] + [None]
    take = np.where(codes < 0, len(uniques), codes)
    if dates:
        clean_array = pd.to_datetime(pd.Series(clean, dtype=object)).to_numpy("datetime64[ns]")
    else:
        clean_array = _object_array(clean)
    value = pd.Series(clean_array[take], index=values.index, name=values.name)
    issue = pd.Series(_object_array(reasons)[take], index=values.index, name=values.name)
    return Cleaned(value, issue)
