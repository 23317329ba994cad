"""Compare: each field of a pair of records becomes a level (exact, close, ..., missing).

The features plug into recordlinkage's `Compare` as `BaseCompareFeature` subclasses, but
score whole arrays at once with rapidfuzz (`process.cpdist`), which is about ten times
faster than recordlinkage's per-pair string comparisons. Each feature returns int8 level
codes: 0 is the strongest agreement, and MISSING (-1) means a side had no value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import recordlinkage
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler
from recordlinkage.base import BaseCompareFeature

from care_etl.linkage.prepare import has_data

MISSING = -1

NAME_LEVELS = ("exact", "close", "fuzzy", "different")
#: Levels of each compared field, strongest agreement first ("missing" is implicit).
LEVELS: dict[str, tuple[str, ...]] = {
    "given_name": NAME_LEVELS,
    "family_name": NAME_LEVELS,
    "date_of_birth": ("exact", "day_month_swapped", "one_component", "year_only", "different"),
    "sex": ("agree", "disagree"),
    "postcode": ("exact", "district", "different"),
    "address": ("exact", "close", "fuzzy", "different"),
}
#: Jaro-Winkler similarity for "close" and "fuzzy" names.
NAME_THRESHOLDS = (0.92, 0.80)
#: Token-sort similarity (0..1) for "close" and "fuzzy" addresses.
ADDRESS_THRESHOLDS = (0.90, 0.70)

#: Flags the comparison returns beside the levels, for the explanation.
FLAGS = ("names_swapped", "given_name_alias", "family_name_alias")

_NAME_KEYS = ("given_key", "family_key")
_ALIAS_CODES = ("alias_other1_code", "alias_other2_code", "alias_middle1_code")
_NAME_COLUMNS = ["given_key", "family_key", "given_code", "family_code", *_ALIAS_CODES]


def _values(column: pd.Series) -> np.ndarray:
    return column.to_numpy()


def _equal(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Equal integer codes, both present (codes are -1 when missing)."""
    return (left == right) & (left >= 0)


def _similarity(
    left: np.ndarray, right: np.ndarray, todo: np.ndarray, scorer=JaroWinkler.normalized_similarity
) -> np.ndarray:
    """Scores in 0..1 for the pairs in `todo` (present and not equal); 0 elsewhere."""
    score = np.zeros(len(left), dtype=np.float32)
    if todo.any():
        score[todo] = process.cpdist(
            left[todo], right[todo], scorer=scorer, dtype=np.float32, workers=-1
        )
    return score


def _similarity_levels(
    equal: np.ndarray, score: np.ndarray, present: np.ndarray, thresholds: tuple[float, float]
) -> np.ndarray:
    levels = np.select(
        [equal, score >= thresholds[0], score >= thresholds[1]], [0, 1, 2], default=3
    ).astype(np.int8)
    levels[~present] = MISSING
    return levels


class NameComparison(BaseCompareFeature):
    """Given and family names, in both orders, with aliases and middle names as alternatives.

    The swapped order is used when it agrees (at least fuzzily, on both names) better than
    the written order: forename and surname entered the wrong way round. An alias (a former
    surname, a short form kept in `other_names`) or a middle name that equals the other
    record's name counts as exact.
    """

    name = "names"

    def __init__(self) -> None:
        super().__init__(_NAME_COLUMNS, _NAME_COLUMNS, label=["given_name", "family_name", *FLAGS])

    def _compute_vectorized(self, *columns: pd.Series):
        g1, f1, gc1, fc1, *alias1 = (_values(c) for c in columns[:7])
        g2, f2, gc2, fc2, *alias2 = (_values(c) for c in columns[7:])
        all_four = (gc1 >= 0) & (fc1 >= 0) & (gc2 >= 0) & (fc2 >= 0)
        straight = (self._score(g1, g2, gc1, gc2), self._score(f1, f2, fc1, fc2))
        crossed = (
            self._score(g1, f2, gc1, fc2, all_four),
            self._score(f1, g2, fc1, gc2, all_four),
        )
        swapped = (
            all_four
            & (np.minimum(crossed[0], crossed[1]) >= NAME_THRESHOLDS[1])
            & (crossed[0] + crossed[1] > straight[0] + straight[1] + 1e-6)
        )
        given_equal = _equal(gc1, np.where(swapped, fc2, gc2))
        family_equal = _equal(fc1, np.where(swapped, gc2, fc2))
        given_alias = ~given_equal & self._alias(gc1, gc2, alias1, alias2)
        family_alias = ~family_equal & self._alias(fc1, fc2, alias1[:2], alias2[:2])
        given = _similarity_levels(
            given_equal | given_alias,
            np.where(swapped, crossed[0], straight[0]),
            (gc1 >= 0) & (gc2 >= 0),
            NAME_THRESHOLDS,
        )
        family = _similarity_levels(
            family_equal | family_alias,
            np.where(swapped, crossed[1], straight[1]),
            (fc1 >= 0) & (fc2 >= 0),
            NAME_THRESHOLDS,
        )
        return given, family, swapped, given_alias, family_alias

    @staticmethod
    def _score(left, right, code1, code2, where=None) -> np.ndarray:
        todo = (code1 >= 0) & (code2 >= 0) & (code1 != code2)
        if where is not None:
            todo &= where
        score = _similarity(left, right, todo)
        score[_equal(code1, code2)] = 1.0
        return score

    @staticmethod
    def _alias(code1, code2, alts1: list[np.ndarray], alts2: list[np.ndarray]) -> np.ndarray:
        found = np.zeros(len(code1), dtype=bool)
        for alt in alts2:
            found |= _equal(code1, alt)
        for alt in alts1:
            found |= _equal(code2, alt)
        return found


class DateOfBirthComparison(BaseCompareFeature):
    """Exact; day and month swapped; one of day, month, year different; year only known."""

    name = "date_of_birth"

    def __init__(self) -> None:
        columns = ["dob_y", "dob_m", "dob_d", "dob_estimated"]
        super().__init__(columns, columns, label="date_of_birth")

    def _compute_vectorized(self, y1, m1, d1, e1, y2, m2, d2, e2):
        y1, m1, d1, e1, y2, m2, d2, e2 = (_values(s) for s in (y1, m1, d1, e1, y2, m2, d2, e2))
        same_y, same_m, same_d = y1 == y2, m1 == m2, d1 == d2
        exact = same_y & same_m & same_d
        swapped = same_y & (m1 == d2) & (d1 == m2) & (m1 != d1)
        one_component = (same_y.astype(np.int8) + same_m + same_d) == 2
        first_of_january = ((m1 == 1) & (d1 == 1)) | ((m2 == 1) & (d2 == 1))
        year_only = same_y & (e1 | e2 | first_of_january)
        levels = np.select(
            [exact, swapped, one_component, year_only], [0, 1, 2, 3], default=4
        ).astype(np.int8)
        levels[(y1 < 0) | (y2 < 0)] = MISSING
        return levels


class SexComparison(BaseCompareFeature):
    """Agree or disagree; unknown on either side is missing, not disagreement."""

    name = "sex"

    def __init__(self) -> None:
        super().__init__("sex_code", "sex_code", label="sex")

    def _compute_vectorized(self, s1, s2):
        s1, s2 = _values(s1), _values(s2)
        levels = np.where(s1 == s2, 0, 1).astype(np.int8)
        levels[(s1 < 0) | (s2 < 0)] = MISSING
        return levels


class PostcodeComparison(BaseCompareFeature):
    """Exact, same district (UK outward code), different. Any country's codes compare exactly."""

    name = "postcode"

    def __init__(self) -> None:
        columns = ["postcode_code", "postcode_district_code"]
        super().__init__(columns, columns, label="postcode")

    def _compute_vectorized(self, p1, dist1, p2, dist2):
        p1, dist1, p2, dist2 = (_values(s) for s in (p1, dist1, p2, dist2))
        levels = np.select([_equal(p1, p2), _equal(dist1, dist2)], [0, 1], default=2)
        levels = levels.astype(np.int8)
        levels[(p1 < 0) | (p2 < 0)] = MISSING
        return levels


class AddressComparison(BaseCompareFeature):
    """The same UPRN or address text is exact; otherwise token-sort similarity of the text.

    UPRN is folded into the address rather than compared as its own field: both say "same
    dwelling", and counting that twice would overstate the evidence.
    """

    name = "address"

    def __init__(self) -> None:
        columns = ["address_key", "address_code", "uprn_code"]
        super().__init__(columns, columns, label="address")

    def _compute_vectorized(self, a1, ac1, uc1, a2, ac2, uc2):
        a1, ac1, uc1, a2, ac2, uc2 = (_values(s) for s in (a1, ac1, uc1, a2, ac2, uc2))
        text_present = (ac1 >= 0) & (ac2 >= 0)
        uprn_present = (uc1 >= 0) & (uc2 >= 0)
        equal = _equal(ac1, ac2) | _equal(uc1, uc2)
        score = _similarity(a1, a2, text_present & ~equal, fuzz.token_sort_ratio) / 100.0
        levels = _similarity_levels(equal, score, text_present | uprn_present, ADDRESS_THRESHOLDS)
        # Different UPRNs and no text to compare: the dwellings differ.
        levels[uprn_present & ~text_present & ~equal] = 3
        return levels


#: Per field: the feature that compares it and the code columns that show it has data.
_FEATURES: dict[str, tuple[type[BaseCompareFeature], list[str]]] = {
    "given_name": (NameComparison, ["given_code"]),
    "family_name": (NameComparison, ["family_code"]),
    "date_of_birth": (DateOfBirthComparison, ["dob_y"]),
    "sex": (SexComparison, ["sex_code"]),
    "postcode": (PostcodeComparison, ["postcode_code"]),
    "address": (AddressComparison, ["address_code", "uprn_code"]),
}


def compared_fields(prepared: pd.DataFrame) -> list[str]:
    """Fields that some record carries: a field nobody has would only add noise."""
    return [f for f in LEVELS if has_data(prepared, _FEATURES[f][1])]


def comparer(fields: list[str]) -> recordlinkage.Compare:
    """A recordlinkage Compare with the features these fields need."""
    kinds = list(dict.fromkeys(_FEATURES[f][0] for f in fields))
    return recordlinkage.Compare([kind() for kind in kinds])


def compare(prepared: pd.DataFrame, pairs: pd.MultiIndex, fields: list[str]) -> pd.DataFrame:
    """Level codes (int8, MISSING when unknown) per field and the flags, one row per pair."""
    columns = [*fields, *FLAGS]
    if len(pairs) == 0 or not fields:
        empty = {c: np.zeros(len(pairs), dtype=bool if c in FLAGS else np.int8) for c in columns}
        return pd.DataFrame(empty)
    result = comparer(fields).compute(pairs, prepared).reset_index(drop=True)
    if "postcode" in result.columns and "address" in result.columns:
        # An address that agrees already says "same postcode": counting the postcode as
        # well would double the evidence of one fact and push household members (same
        # surname, same home) towards a match. The postcode speaks only when the address
        # does not agree.
        same_home = result["address"].isin([0, 1]).to_numpy()
        result.loc[same_home, "postcode"] = MISSING
    for flag in FLAGS:
        if flag not in result.columns:
            result[flag] = False
    return result[columns]
