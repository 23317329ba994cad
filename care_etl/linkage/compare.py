"""Compare: each field of a pair of records becomes a level (exact, close, ..., missing).

The features plug into recordlinkage's `Compare` as `BaseCompareFeature` subclasses, but
score whole arrays at once with rapidfuzz (`process.cpdist`), which is about ten times
faster than recordlinkage's per-pair string comparisons. Each feature returns int8 level
codes: 0 is the strongest agreement, and MISSING (-1) means a side had no value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import recordlinkage
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler
from recordlinkage.base import BaseCompareFeature
from recordlinkage.utils import listify

from care_etl.linkage.prepare import has_data

MISSING = -1

#: Levels of each compared field, strongest agreement first ("missing" is implicit).
LEVELS: dict[str, tuple[str, ...]] = {
    "nhs_number": ("agree", "disagree"),
    "given_name": ("exact", "short_form", "close", "fuzzy", "different"),
    "family_name": ("exact", "close", "part", "fuzzy", "different"),
    "date_of_birth": (
        "exact",
        "day_month_swapped",
        "estimated",
        "one_typo",
        "one_component",
        "different",
    ),
    "sex": ("agree", "disagree"),
    "postcode": ("exact", "sector", "district", "one_typo", "different"),
    "address": ("same_uprn", "exact", "close", "fuzzy", "different"),
}
#: Jaro-Winkler similarity for "close" and "fuzzy" names (one edit also counts as close).
NAME_THRESHOLDS = (0.92, 0.80)
#: Token-sort similarity (0..1) for "close" and "fuzzy" addresses.
ADDRESS_THRESHOLDS = (0.90, 0.70)

#: Flags the comparison returns beside the levels, for the explanation.
FLAGS = ("names_swapped", "given_name_alias", "family_name_alias")
#: Years between two dates of birth: the father and son rule reads it.
YEAR_GAP = "dob_year_gap"

_NAME_KEYS = ("given_key", "family_key")
_ALIAS_CODES = ("alias_other1_code", "alias_other2_code", "alias_middle1_code")
_SHORT_FORM_COLUMNS = [f"given_sf{i}" for i in range(1, 5)]
_NAME_COLUMNS = [
    "given_key",
    "family_key",
    "given_code",
    "family_code",
    *_ALIAS_CODES,
    *_SHORT_FORM_COLUMNS,
]


def _values(column: pd.Series) -> np.ndarray:
    return column.to_numpy()


def _equal(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Equal integer codes, both present (codes are -1 when missing)."""
    return (left == right) & (left >= 0)


def _similarity(
    left: np.ndarray,
    right: np.ndarray,
    todo: np.ndarray,
    scorer=JaroWinkler.normalized_similarity,
    codes: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Scores for the pairs in `todo` (present and not equal); 0 elsewhere.

    With `codes` (integer codes of the values), each distinct pair of values is scored
    once: names repeat, so a million pairs hold far fewer distinct pairs of names.
    """
    score = np.zeros(len(left), dtype=np.float32)
    if not todo.any():
        return score
    if codes is None:
        score[todo] = process.cpdist(
            left[todo], right[todo], scorer=scorer, dtype=np.float32, workers=-1
        )
        return score
    rows = np.flatnonzero(todo)
    c1, c2 = codes[0][rows].astype(np.int64), codes[1][rows].astype(np.int64)
    key = c1 * (int(max(c1.max(), c2.max())) + 1) + c2
    inverse, unique = pd.factorize(key)
    if len(unique) > 0.8 * len(rows):  # hardly any repeats: not worth the gather
        distinct, inverse = rows, np.arange(len(rows))
    else:
        distinct = np.empty(len(unique), dtype=np.int64)
        distinct[inverse] = rows
    scored = process.cpdist(
        left[distinct], right[distinct], scorer=scorer, dtype=np.float32, workers=-1
    )
    score[rows] = scored[inverse]
    return score


def _levels(conditions: list[np.ndarray], present: np.ndarray) -> np.ndarray:
    """The index of the first true condition (the last level when none), MISSING if absent."""
    levels = np.select(conditions, list(range(len(conditions))), default=len(conditions))
    levels = levels.astype(np.int8)
    levels[~present] = MISSING
    return levels


def _similarity_levels(
    equal: np.ndarray, score: np.ndarray, present: np.ndarray, thresholds: tuple[float, float]
) -> np.ndarray:
    return _levels([equal, score >= thresholds[0], score >= thresholds[1]], present)


def _any_shared(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    """Whether the two records share any group id (-1 is none)."""
    found = np.zeros(len(left[0]), dtype=bool)
    for a in left:
        for b in right:
            found |= _equal(a, b)
    return found


class NameComparison(BaseCompareFeature):
    """Given and family names, in both orders, with aliases and middle names as alternatives.

    The swapped order is used when it agrees (at least fuzzily, on both names) better than
    the written order: forename and surname entered the wrong way round. An alias (a former
    surname, a short form kept in `other_names`) or a middle name that equals the other
    record's name counts as exact. Forenames of one short-form group (Bill, William) are
    their own level; a surname that is one part of the other (a double-barrelled name with
    one half dropped) is the "part" level.
    """

    name = "names"

    def __init__(self) -> None:
        super().__init__(_NAME_COLUMNS, _NAME_COLUMNS, label=["given_name", "family_name", *FLAGS])

    def _compute_vectorized(self, *columns: pd.Series):
        half = len(_NAME_COLUMNS)
        g1, f1, gc1, fc1, *alias1 = (_values(c) for c in columns[:7])
        g2, f2, gc2, fc2, *alias2 = (_values(c) for c in columns[half : half + 7])
        sf1 = [_values(c) for c in columns[7:half]]
        sf2 = [_values(c) for c in columns[half + 7 :]]
        all_four = (gc1 >= 0) & (fc1 >= 0) & (gc2 >= 0) & (fc2 >= 0)
        straight = (self._score(g1, g2, gc1, gc2), self._score(f1, f2, fc1, fc2))
        # Crosswise only where the names written in order do not both agree closely.
        doubtful = all_four & (np.minimum(straight[0], straight[1]) < NAME_THRESHOLDS[0])
        crossed = (
            self._score(g1, f2, gc1, fc2, doubtful),
            self._score(f1, g2, fc1, gc2, doubtful),
        )
        swapped = (
            all_four
            & (np.minimum(crossed[0], crossed[1]) >= NAME_THRESHOLDS[1])
            & (crossed[0] + crossed[1] > straight[0] + straight[1] + 1e-6)
        )
        # One name moved: a surname written as the other record's forename (and that
        # forename lost). The surname is found, crosswise; the forenames compare as written.
        moved = (
            all_four
            & ~swapped
            & (straight[1] < NAME_THRESHOLDS[1])
            & (np.maximum(crossed[0], crossed[1]) >= NAME_THRESHOLDS[0])
        )
        moved_score = np.maximum(crossed[0], crossed[1])
        moved_equal = moved & (_equal(fc1, gc2) | _equal(gc1, fc2))
        given_equal = _equal(gc1, np.where(swapped, fc2, gc2))
        family_equal = _equal(fc1, np.where(swapped, gc2, fc2)) | moved_equal
        given_alias = ~given_equal & self._alias(gc1, gc2, alias1, alias2)
        family_alias = ~family_equal & self._alias(fc1, fc2, alias1[:2], alias2[:2])
        short_form = ~swapped & _any_shared(sf1, sf2)
        given_score = np.where(swapped, crossed[0], straight[0])
        given = _levels(
            [
                given_equal | given_alias,
                short_form,
                given_score >= NAME_THRESHOLDS[0],
                given_score >= NAME_THRESHOLDS[1],
            ],
            (gc1 >= 0) & (gc2 >= 0),
        )
        family_score = np.where(swapped, crossed[1], np.where(moved, moved_score, straight[1]))
        family_present = (fc1 >= 0) & (fc2 >= 0)
        part = (
            family_present & ~family_equal & ~swapped & ~moved & (family_score < NAME_THRESHOLDS[0])
        )
        # Only a name of two or more words can lose a part (match keys join words with " ").
        multi = np.zeros(len(part), dtype=bool)
        multi[part] = (
            pd.Series(f1[part]).str.contains(" ", regex=False).to_numpy()
            | pd.Series(f2[part]).str.contains(" ", regex=False).to_numpy()
        )
        part &= multi
        if part.any():
            part[part] = (
                process.cpdist(f1[part], f2[part], scorer=fuzz.token_set_ratio, workers=-1) >= 100
            )
        family = _levels(
            [
                family_equal | family_alias,
                family_score >= NAME_THRESHOLDS[0],
                part,
                family_score >= NAME_THRESHOLDS[1],
            ],
            family_present,
        )
        return given, family, swapped | moved, given_alias, family_alias

    @staticmethod
    def _score(left, right, code1, code2, where=None) -> np.ndarray:
        """Jaro-Winkler, raised to "close" for one edit (a typo, two letters transposed):
        Jaro-Winkler alone scores a typo in a short name (Zane, Zanj) as unlike."""
        todo = (code1 >= 0) & (code2 >= 0) & (code1 != code2)
        if where is not None:
            todo &= where
        score = _similarity(left, right, todo, codes=(code1, code2))
        # One edit (Kia, Kai) keeps Jaro-Winkler at 0.5 or more.
        unlike = todo & (score < NAME_THRESHOLDS[0]) & (score >= 0.5)
        if unlike.any():
            edits = _similarity(left, right, unlike, OSA.distance, (code1, code2))[unlike]
            score[np.flatnonzero(unlike)[edits <= 1]] = NAME_THRESHOLDS[0]
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


def _digits(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> list[np.ndarray]:
    """The eight digits of DDMMYYYY."""
    return [day // 10, day % 10, month // 10, month % 10] + [
        (year // 10**k) % 10 for k in (3, 2, 1, 0)
    ]


class DateOfBirthComparison(BaseCompareFeature):
    """Exact; day and month swapped; an estimated date (01/01 or flagged) of the same year;
    one digit of DDMMYYYY wrong or two neighbouring digits transposed; two of day, month and
    year equal; different.

    The second output is the gap in years, which the father and son rule reads.
    """

    name = "date_of_birth"

    def __init__(self) -> None:
        columns = ["dob_y", "dob_m", "dob_d", "dob_estimated"]
        super().__init__(columns, columns, label=["date_of_birth", YEAR_GAP])

    def _compute_vectorized(self, y1, m1, d1, e1, y2, m2, d2, e2):
        y1, m1, d1, e1, y2, m2, d2, e2 = (_values(s) for s in (y1, m1, d1, e1, y2, m2, d2, e2))
        same_y, same_m, same_d = y1 == y2, m1 == m2, d1 == d2
        exact = same_y & same_m & same_d
        swapped = same_y & (m1 == d2) & (d1 == m2) & (m1 != d1)
        first_of_january = ((m1 == 1) & (d1 == 1)) | ((m2 == 1) & (d2 == 1))
        estimated = same_y & (e1 | e2 | first_of_january)
        digits1, digits2 = _digits(y1, m1, d1), _digits(y2, m2, d2)
        differ = [a != b for a, b in zip(digits1, digits2, strict=True)]
        wrong = sum(d.astype(np.int8) for d in differ)
        transposed = np.zeros(len(y1), dtype=bool)
        for i in range(7):
            transposed |= (
                differ[i]
                & differ[i + 1]
                & (digits1[i] == digits2[i + 1])
                & (digits1[i + 1] == digits2[i])
            )
        one_typo = (wrong == 1) | ((wrong == 2) & transposed)
        one_component = (same_y.astype(np.int8) + same_m + same_d) == 2
        present = (y1 >= 0) & (y2 >= 0)
        levels = _levels([exact, swapped, estimated, one_typo, one_component], present)
        gap = np.where(present, np.abs(y1.astype(np.int32) - y2), -1).astype(np.int16)
        return levels, gap


class NhsNumberComparison(BaseCompareFeature):
    """Two valid NHS numbers agree or disagree; a missing or invalid one is missing."""

    name = "nhs_number"

    def __init__(self) -> None:
        super().__init__("nhs_code", "nhs_code", label="nhs_number")

    def _compute_vectorized(self, n1, n2):
        n1, n2 = _values(n1), _values(n2)
        return _levels([n1 == n2], (n1 >= 0) & (n2 >= 0))


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
    """Exact, same sector, same district (UK), one typo (any country's code), different."""

    name = "postcode"

    def __init__(self) -> None:
        columns = [
            "postcode_key",
            "postcode_code",
            "postcode_sector_code",
            "postcode_district_code",
        ]
        super().__init__(columns, columns, label="postcode")

    def _compute_vectorized(self, k1, p1, s1, dist1, k2, p2, s2, dist2):
        k1, p1, s1, dist1 = (_values(s) for s in (k1, p1, s1, dist1))
        k2, p2, s2, dist2 = (_values(s) for s in (k2, p2, s2, dist2))
        present = (p1 >= 0) & (p2 >= 0)
        exact, sector, district = _equal(p1, p2), _equal(s1, s2), _equal(dist1, dist2)
        todo = present & ~exact & ~sector & ~district
        typo = np.zeros(len(p1), dtype=bool)
        if todo.any():
            typo[todo] = process.cpdist(k1[todo], k2[todo], scorer=OSA.distance, workers=-1) <= 1
        return _levels([exact, sector, district, typo], present)


class AddressComparison(BaseCompareFeature):
    """The same UPRN; the same address text; token-sort similarity of the text; different.

    UPRN is a level of the address rather than a field of its own: both say "same
    dwelling", and counting that twice would overstate the evidence. Two different UPRNs
    are different dwellings whatever the text says (flats 2 and 3 of one house).
    """

    name = "address"

    def __init__(self) -> None:
        columns = ["address_key", "address_code", "uprn_code", "postcode_district_code"]
        super().__init__(columns, columns, label="address")

    def _compute_vectorized(self, a1, ac1, uc1, d1, a2, ac2, uc2, d2):
        a1, ac1, uc1, d1 = (_values(s) for s in (a1, ac1, uc1, d1))
        a2, ac2, uc2, d2 = (_values(s) for s in (a2, ac2, uc2, d2))
        text_present = (ac1 >= 0) & (ac2 >= 0)
        uprn_present = (uc1 >= 0) & (uc2 >= 0)
        same_uprn = _equal(uc1, uc2)
        other_uprn = uprn_present & ~same_uprn
        text_equal = _equal(ac1, ac2)
        # Addresses in two postal districts are not one dwelling: no need to read the text.
        other_district = (d1 >= 0) & (d2 >= 0) & (d1 != d2)
        todo = text_present & ~text_equal & ~uprn_present & ~other_district
        score = _similarity(a1, a2, todo, fuzz.token_sort_ratio, (ac1, ac2)) / 100.0
        return _levels(
            [
                same_uprn,
                text_equal & ~other_uprn,
                ~other_uprn & (score >= ADDRESS_THRESHOLDS[0]),
                ~other_uprn & (score >= ADDRESS_THRESHOLDS[1]),
            ],
            text_present | uprn_present,
        )


#: Per field: the feature that compares it and the code columns that show it has data.
_FEATURES: dict[str, tuple[type[BaseCompareFeature], list[str]]] = {
    "nhs_number": (NhsNumberComparison, ["nhs_code"]),
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


#: Pairs compared at once: recordlinkage gathers every compared column for each pair, so
#: comparing millions of pairs in one go would hold gigabytes of gathered strings.
CHUNK_PAIRS = 2_000_000

#: Called with (pairs compared, candidate pairs) after each chunk of the candidate pairs: the
#: command line sets it to draw a bar while Dagster runs the linkage asset.
progress_hook: Callable[[int, int], None] | None = None


def _narrow(result: pd.DataFrame) -> pd.DataFrame:
    """Levels as int8, flags as bool: a few bytes per pair."""
    return result.astype(
        {c: bool if c in FLAGS else (np.int16 if c == YEAR_GAP else np.int8) for c in result}
    )


def compare(
    prepared: pd.DataFrame,
    pairs: pd.MultiIndex,
    fields: list[str],
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Level codes (int8, MISSING when unknown) per field and the flags, one row per pair."""
    columns = [*fields, *FLAGS, YEAR_GAP]
    if len(pairs) == 0 or not fields:
        empty = {c: np.zeros(len(pairs), dtype=bool if c in FLAGS else np.int8) for c in columns}
        empty[YEAR_GAP] = np.full(len(pairs), -1, dtype=np.int16)
        return pd.DataFrame(empty)
    features = comparer(fields)
    needed = list(
        dict.fromkeys(c for feature in features.features for c in listify(feature.labels_left))
    )
    data = prepared[needed]
    chunks = []
    for start in range(0, len(pairs), CHUNK_PAIRS):
        chunks.append(_narrow(features.compute(pairs[start : start + CHUNK_PAIRS], data)))
        if progress:
            progress(min(start + CHUNK_PAIRS, len(pairs)), len(pairs))
    result = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    result = result.reset_index(drop=True)
    if "postcode" in result.columns and "address" in result.columns:
        # An address that agrees already says "same postcode": counting the postcode as
        # well would double the evidence of one fact and push household members (same
        # surname, same home) towards a match. The postcode speaks only when the address
        # does not agree.
        same_home = result["address"].isin([0, 1, 2]).to_numpy()
        result.loc[same_home, "postcode"] = MISSING
    for flag in FLAGS:
        if flag not in result.columns:
            result[flag] = False
    if YEAR_GAP not in result.columns:
        result[YEAR_GAP] = np.int16(-1)
    return result[columns]
