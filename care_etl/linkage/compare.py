"""Compare: each field of a pair of records becomes a level (exact, close, ..., missing).

The features plug into recordlinkage's `Compare` as `BaseCompareFeature` subclasses (run
by `CodeCompare`, which gathers them by position). They read integer codes only: prepare.py
codes every value once per record, and a record's names (or date of birth with its flag)
once more as one signature, so gathering the columns of millions of pairs is a numpy take
on integers, never on Python strings. Names are compared once per distinct pair of
signatures in a chunk, and string similarity (rapidfuzz, on both cores) once per distinct
pair of values: two million pairs of records hold a few hundred thousand pairs of names.
Chunks of up to four million pairs go to forked worker processes, one per usable core
(`_chunks`, `compare_processes`).
Each feature returns int8 level codes: 0 is the strongest agreement, and MISSING (-1)
means a side had no value.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import recordlinkage
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler
from recordlinkage.base import BaseCompareFeature
from recordlinkage.utils import listify

from care_etl.errors import CareEtlError
from care_etl.linkage.prepare import (
    FORMER_KEYS,
    SIGNATURES,
    code_column,
    has_data,
    short_form_table,
)

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
        "within_a_year",
        "different",
    ),
    "sex": ("agree", "disagree"),
    "postcode": ("exact", "sector", "district", "one_typo", "different"),
    "address": ("same_uprn", "exact", "close", "fuzzy", "different"),
    # One record's address against the other's former addresses (FormerAddressComparison).
    "former_address": ("lived_there_before", "former_postcode", "different"),
    # When each record's address was held (AddressPeriodsComparison).
    "address_periods": ("one_after_the_other", "overlapping"),
}


def codes_of(field: str, *levels: str) -> tuple[int, ...]:
    """The codes of a field's levels, by name: a rule that names its levels holds when a
    level is added before them (codes 4 and 5 of the date of birth once meant one thing
    and then another)."""
    return tuple(LEVELS[field].index(level) for level in levels)


#: Address levels that say "same dwelling".
SAME_ADDRESS = codes_of("address", "same_uprn", "exact", "close")
#: Jaro-Winkler similarity for "close" and "fuzzy" names (one edit also counts as close).
NAME_THRESHOLDS = (0.92, 0.80)
#: Token-sort similarity (0..1) for "close" and "fuzzy" addresses.
ADDRESS_THRESHOLDS = (0.90, 0.70)

#: Flags the comparison returns beside the levels, for the explanation.
FLAGS = ("names_swapped", "given_name_alias", "family_name_alias")
#: Years between two dates of birth: the father and son rule reads it.
YEAR_GAP = "dob_year_gap"

_ALIAS_CODES = ("alias_other1_code", "alias_other2_code", "alias_middle1_code")
#: Jaro-Winkler similarities below this are scored 0 (rapidfuzz may stop early): no level
#: or rule reads them, and names in order with a score under it lose to any crossed order
#: that qualifies (1 + 0.5 < 0.8 + 0.8), whatever its exact value.
_NAME_CUTOFF = 0.5
#: Threads rapidfuzz scores with: all cores (-1), or one in a worker process (`_chunks`),
#: where the other core runs the other worker.
_workers = -1


def _values(column: pd.Series) -> np.ndarray:
    return column.to_numpy()


def among(levels: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    """Whether each pair's level is one of a few `wanted` levels: one comparison each, which
    on tens of millions of pairs takes a twentieth of np.isin's time."""
    found = np.zeros(len(levels), dtype=bool)
    for level in wanted:
        found |= levels == level
    return found


def _equal(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Equal integer codes, both present (codes are -1 when missing)."""
    return (left == right) & (left >= 0)


def _distinct_pairs(
    code1: np.ndarray, code2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which distinct (ordered) pair of codes (-1 and up) each pair is, and those pairs: a
    comparison runs once per distinct pair and spreads its results back with the first."""
    size = int(max(code1.max(initial=0), code2.max(initial=0))) + 2
    key = (code1.astype(np.int64) + 1) * size + (code2 + 1)
    inverse, unique = pd.factorize(key)
    return inverse, unique // size - 1, unique % size - 1


def _scored_once(
    code1: np.ndarray,
    code2: np.ndarray,
    values: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Scores of pairs of present codes, each distinct pair of values scored once; every
    scorer here is symmetric, so (a, b) and (b, a) are one pair."""
    return _codes_scored_once(code1, code2, lambda low, high: score(values[low], values[high]))


def _codes_scored_once(
    code1: np.ndarray, code2: np.ndarray, score: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """`_scored_once` with a scorer of the distinct pairs of codes (low, high) themselves."""
    inverse, low, high = _distinct_pairs(np.minimum(code1, code2), np.maximum(code1, code2))
    return score(low, high)[inverse]


def _vocabulary(prepared: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """The value behind each code of these key columns (which share one code group)."""
    size = max([int(prepared[code_column(k)].max()) + 1 for k in keys] + [0])
    values = np.full(size, None, dtype=object)
    for key in keys:
        codes = prepared[code_column(key)].to_numpy()
        present = codes >= 0
        values[codes[present]] = prepared[key].to_numpy()[present]
    return values


def _by_code(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per code, the value (or row of values) of the records with that code, where the value
    is a function of the code: a feature then gathers the code alone. Code -1 (missing)
    reads the last entry, which is -1."""
    size = max(int(codes.max(initial=-1)) + 2, 1)
    table = np.full((size, *values.shape[1:]), -1, dtype=values.dtype)
    present = codes >= 0
    table[codes[present]] = values[present]
    return table


def _columns_by_code(prepared: pd.DataFrame, code: str, columns: tuple[str, ...]) -> np.ndarray:
    """`_by_code` of several int32 columns, one row per column: table[:, codes] gathers them."""
    values = np.stack([prepared[c].to_numpy().astype(np.int32) for c in columns], axis=1)
    return np.ascontiguousarray(_by_code(prepared[code].to_numpy(), values).T)


def _name_similarity(
    left: np.ndarray, right: np.ndarray, may_be_one_edit: np.ndarray | None = None
) -> np.ndarray:
    """Jaro-Winkler, raised to "close" for one edit (a typo, two letters transposed):
    Jaro-Winkler alone scores a typo in a short name (Zane, Zanj) as unlike. Pairs outside
    `may_be_one_edit` (`_may_be_one_edit`'s verdict, when given) are not checked for one."""
    score = process.cpdist(
        left,
        right,
        scorer=JaroWinkler.normalized_similarity,
        dtype=np.float32,
        workers=_workers,
        score_cutoff=_NAME_CUTOFF,
    )
    # One edit (Kia, Kai) keeps Jaro-Winkler at 0.5 or more.
    unlike = (score < NAME_THRESHOLDS[0]) & (score >= _NAME_CUTOFF)
    if may_be_one_edit is not None:
        unlike &= may_be_one_edit
    unlike = np.flatnonzero(unlike)
    if len(unlike):
        score[unlike[_one_edit(left[unlike], right[unlike])]] = NAME_THRESHOLDS[0]
    return score


def forename_like(prepared: pd.DataFrame, size: int | None = None) -> np.ndarray:
    """Per name code: whether these records use the name more as a forename than as a
    surname (False for code -1, read last): which of two names written crosswise is the
    forename. The only thing a comparison reads beyond the pair's two records: see
    `name_context`."""
    if size is None:
        codes = (prepared[c].to_numpy() for c in ("given_code", "family_code"))
        size = max(int(c.max(initial=-1)) for c in codes) + 1
    counts = []
    for column in ("given_code", "family_code"):
        codes = prepared[column].to_numpy()
        counts.append(np.bincount(codes[codes >= 0], minlength=size)[:size])
    return np.append(counts[0] > counts[1], False)


def name_context(prepared: pd.DataFrame) -> np.ndarray:
    """Per record, what its comparisons read beyond its own values: whether its forename
    and its surname are forename-like in these records (two bits). A pair's levels are a
    function of its two records' values and contexts, so a cache of levels
    (care_etl.incremental.pairs) must key records by both."""
    known = forename_like(prepared)
    given, family = prepared["given_code"].to_numpy(), prepared["family_code"].to_numpy()
    return known[given].astype(np.uint8) | (known[family].astype(np.uint8) << 1)


def _one_edit(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """At most one character added, dropped or changed, or two neighbours transposed."""
    return process.cpdist(left, right, scorer=OSA.distance, workers=_workers, score_cutoff=1) <= 1


def _edit_ends(values: np.ndarray) -> np.ndarray:
    """Per code: the length and codes of the first two and of the last two characters."""
    text = pd.Series(values, dtype=object)
    length = text.str.len().fillna(-9).to_numpy(dtype=np.int32)
    first = pd.factorize(text.str[:2])[0].astype(np.int32)
    last = pd.factorize(text.str[-2:])[0].astype(np.int32)
    return np.stack([length, first, last])


def _may_be_one_edit(ends: np.ndarray, code1: np.ndarray, code2: np.ndarray) -> np.ndarray:
    """False where two different strings cannot be one edit apart. An edit at position p
    keeps the p characters before it and all but two of those after it, so the lengths
    differ by one at most, and strings of five or more keep their first two or last two."""
    length1, length2 = ends[0][code1], ends[0][code2]
    ends_agree = (ends[1][code1] == ends[1][code2]) | (ends[2][code1] == ends[2][code2])
    return (np.abs(length1 - length2) <= 1) & ((np.minimum(length1, length2) < 5) | ends_agree)


def _token_sort(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return process.cpdist(
        left, right, scorer=fuzz.token_sort_ratio, dtype=np.float32, workers=_workers
    )


def _ratio(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return process.cpdist(left, right, scorer=fuzz.ratio, dtype=np.float32, workers=_workers)


def _without_spaces(values: np.ndarray) -> np.ndarray:
    return np.array([v.replace(" ", "") if isinstance(v, str) else v for v in values], object)


def _levels(conditions: list[np.ndarray], present: np.ndarray) -> np.ndarray:
    """The index of the first true condition (the last level when none), MISSING if absent."""
    levels = np.full(len(present), len(conditions), dtype=np.int8)
    for level in range(len(conditions) - 1, -1, -1):
        levels[conditions[level]] = level
    levels[~present] = MISSING
    return levels


def _any_shared(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether two rows of group ids (present ids first, then -1) share an id."""
    found = np.zeros(len(left), dtype=bool)
    rows = np.flatnonzero((left[:, 0] >= 0) & (right[:, 0] >= 0))
    a, b = left[rows], right[rows]
    shared = np.zeros(len(rows), dtype=bool)
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            shared |= _equal(a[:, i], b[:, j])
    found[rows] = shared
    return found


def _first_reading(crossed: tuple[np.ndarray, np.ndarray], *codes: np.ndarray) -> np.ndarray:
    """Where the names do not say which record is swapped: whether to read gc1 and fc2 as
    the forenames (else fc1 and gc2). The pair that agrees better, then the pair of smaller
    name codes: the same reading whichever record comes first, so that a pair's levels do
    not hang on the order of the rows (they did, for 1 pair in 5,000 on FEBRL4)."""
    gc1, fc1, gc2, fc2 = codes
    low_a, high_a = np.minimum(gc1, fc2), np.maximum(gc1, fc2)
    low_b, high_b = np.minimum(fc1, gc2), np.maximum(fc1, gc2)
    smaller = (low_a < low_b) | ((low_a == low_b) & (high_a <= high_b))
    return (crossed[0] > crossed[1]) | ((crossed[0] == crossed[1]) & smaller)


class NameComparison(BaseCompareFeature):
    """Given and family names, in both orders, with aliases and middle names as alternatives.

    The swapped order is used when it agrees better than the written order, either on both
    names (at least fuzzily; a short form counts) or on the forename alone when the data
    know that name as a forename (the surname changed since): forename and surname entered
    the wrong way round. Which record is the swapped one, and whether a name is a forename,
    are read from how all records use the names (`forename_like`). An alias (a former
    surname, a short form kept in `other_names`) or a middle name that equals the other
    record's name counts as exact. Forenames of one short-form group (Bill, William) are
    their own level; a surname that is one part of the other (a double-barrelled name with
    one half dropped) is the "part" level.
    """

    name = "names"

    def __init__(self, prepared: pd.DataFrame) -> None:
        super().__init__(
            "name_signature", "name_signature", label=["given_name", "family_name", *FLAGS]
        )
        self._parts = _columns_by_code(prepared, "name_signature", SIGNATURES["name_signature"])
        self._names = _vocabulary(prepared, ("given_key", "family_key"))
        self._short_forms = short_form_table(self._names)
        multi = [isinstance(v, str) and " " in v for v in self._names]
        self._multi_word = np.array([*multi, False], dtype=bool)  # code -1 reads the last
        self._ends = _edit_ends(self._names)
        self._forename = forename_like(prepared, len(self._names))

    def _compute_vectorized(self, signature1: pd.Series, signature2: pd.Series):
        inverse, first, second = _distinct_pairs(_values(signature1), _values(signature2))
        found = self._compare(self._parts[:, first], self._parts[:, second])
        return tuple(f[inverse] for f in found)

    def _compare(self, one: np.ndarray, two: np.ndarray) -> tuple[np.ndarray, ...]:
        """Levels and flags of pairs of names: rows given, family, then the aliases."""
        gc1, fc1, *alias1, gs1, fs1 = one
        gc2, fc2, *alias2, gs2, fs2 = two
        all_four = (gc1 >= 0) & (fc1 >= 0) & (gc2 >= 0) & (fc2 >= 0)
        straight = (self._score(gc1, gc2, signs=gs1 & gs2), self._score(fc1, fc2, signs=fs1 & fs2))
        # Crosswise only where the names written in order do not both agree closely.
        doubtful = all_four & (np.minimum(straight[0], straight[1]) < NAME_THRESHOLDS[0])
        crossed = (
            self._score(gc1, fc2, doubtful, gs1 & fs2),
            self._score(fc1, gc2, doubtful, fs1 & gs2),
        )
        # Crosswise, the forenames are gc1 and fc2 when the second record is the one written
        # the wrong way round, else fc1 and gc2: the record whose forename field holds what
        # these data know rather as a surname is the swapped one.
        known = self._forename.astype(np.int8)
        lean1, lean2 = known[gc1] - known[fc1], known[gc2] - known[fc2]
        second = (lean1 > lean2) | ((lean1 == lean2) & _first_reading(crossed, gc1, fc1, gc2, fc2))
        given_x = (np.where(second, gc1, fc1), np.where(second, fc2, gc2))
        family_x = (np.where(second, fc1, gc1), np.where(second, gc2, fc2))
        cross_given = np.where(second, crossed[0], crossed[1])
        cross_family = np.where(second, crossed[1], crossed[0])
        short_straight = _any_shared(self._short_forms[gc1], self._short_forms[gc2])
        short_cross = doubtful & _any_shared(
            self._short_forms[given_x[0]], self._short_forms[given_x[1]]
        )
        # A short form (John, Jack) counts as a fuzzy agreement when choosing the order.
        lift = NAME_THRESHOLDS[1]
        given_in_order = np.where(short_straight, np.maximum(straight[0], lift), straight[0])
        given_crosswise = np.where(short_cross, np.maximum(cross_given, lift), cross_given)
        both_agree = np.minimum(given_crosswise, cross_family) >= NAME_THRESHOLDS[1]
        # Only the forename agrees crosswise, and these data know it as a forename: written
        # in the surname field, with the surname changed or lost (a marriage, a slip).
        forename_only = (
            (cross_given >= NAME_THRESHOLDS[0])
            & self._forename[np.where(second, given_x[1], given_x[0])]  # in a surname field
            & (given_in_order < NAME_THRESHOLDS[1])
        )
        swapped = (
            all_four
            & (both_agree | forename_only)
            & (given_crosswise + cross_family > given_in_order + straight[1] + 1e-6)
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
        given_equal = _equal(np.where(swapped, given_x[0], gc1), np.where(swapped, given_x[1], gc2))
        family_equal = (
            _equal(np.where(swapped, family_x[0], fc1), np.where(swapped, family_x[1], fc2))
            | moved_equal
        )
        given_alias = ~given_equal & self._alias(gc1, gc2, alias1, alias2)
        family_alias = ~family_equal & self._alias(fc1, fc2, alias1[:2], alias2[:2])
        short_form = np.where(swapped, short_cross, short_straight)
        given_score = np.where(swapped, cross_given, straight[0])
        given = _levels(
            [
                given_equal | given_alias,
                short_form,
                given_score >= NAME_THRESHOLDS[0],
                given_score >= NAME_THRESHOLDS[1],
            ],
            (gc1 >= 0) & (gc2 >= 0),
        )
        family_score = np.where(swapped, cross_family, np.where(moved, moved_score, straight[1]))
        family_present = (fc1 >= 0) & (fc2 >= 0)
        part = (
            family_present & ~family_equal & ~swapped & ~moved & (family_score < NAME_THRESHOLDS[0])
        )
        # Only a name of two or more words can lose a part (match keys join words with " ").
        part &= self._multi_word[fc1] | self._multi_word[fc2]
        if part.any():
            left, right = self._names[fc1[part]], self._names[fc2[part]]
            part[part] = process.cpdist(left, right, scorer=fuzz.token_set_ratio) >= 100
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

    def _similarity(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """`_name_similarity` of pairs of name codes; one-edit checks only where the lengths
        and ends allow one edit."""
        names = self._names
        return _name_similarity(names[low], names[high], _may_be_one_edit(self._ends, low, high))

    def _score(self, code1, code2, where=None, signs=None) -> np.ndarray:
        """Name similarity of the pairs (in `where`), 1.0 for the same name, 0 if missing,
        and 0 for two different names both written in signs (`signs` > 0: prepare._in_signs),
        whose Latin letters say nothing of how alike they are."""
        todo = (code1 >= 0) & (code2 >= 0) & (code1 != code2)
        if where is not None:
            todo &= where
        if signs is not None:
            todo &= signs == 0
        score = np.zeros(len(code1), dtype=np.float32)
        rows = np.flatnonzero(todo)
        if len(rows):
            score[rows] = _codes_scored_once(code1[rows], code2[rows], self._similarity)
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


#: Nibble i of a packed date is digit i of DDMMYYYY.
_NIBBLE_LOW_BITS = np.uint32(0x11111111)


def _packed_digits(
    year: np.ndarray, month: np.ndarray, day: np.ndarray, year_first: bool = False
) -> np.ndarray:
    """The eight digits of DDMMYYYY (or YYYYMMDD), four bits each: digit i in bits 4i..4i+3."""
    day_month = [day // 10, day % 10, month // 10, month % 10]
    years = [(year // 10**k) % 10 for k in (3, 2, 1, 0)]
    digits = years + day_month[2:] + day_month[:2] if year_first else day_month + years
    packed = np.zeros(len(year), dtype=np.uint32)
    for i, digit in enumerate(digits):
        packed |= (digit.astype(np.uint32) & 0xF) << (4 * i)
    return packed


#: Dates of birth this many days apart or fewer are "within_a_year".
_DAYS_A_YEAR = 366


def _day_numbers(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1 March of year 0 of each date, by the proleptic Gregorian calendar
    (Hinnant's days_from_civil), in integers: no date can be refused as invalid."""
    y = year.astype(np.int64) - (month <= 2)
    m = month.astype(np.int64)
    day_of_year = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + day.astype(np.int64) - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + day_of_year


def _one_digit_typo(digits1: np.ndarray, digits2: np.ndarray) -> np.ndarray:
    """One digit of DDMMYYYY wrong, or two neighbouring digits transposed."""
    differ = digits1 ^ digits2
    differ = (differ | differ >> 1 | differ >> 2 | differ >> 3) & _NIBBLE_LOW_BITS
    wrong = (differ * _NIBBLE_LOW_BITS) >> 28  # the sum of the nibbles lands in the top one
    # Digits i and i + 1 both wrong: i's nibble; transposed if each equals the other's.
    pair = (differ & (differ >> 4)) * np.uint32(0xF)
    transposed = (
        (pair != 0)
        & (((digits1 ^ (digits2 >> 4)) & pair) == 0)
        & (((digits2 ^ (digits1 >> 4)) & pair) == 0)
    )
    return (wrong == 1) | ((wrong == 2) & transposed)


class DateOfBirthComparison(BaseCompareFeature):
    """Exact; day and month swapped; an estimated date (01/01 or flagged) of the same year;
    one digit wrong or two neighbouring digits transposed, as written DDMMYYYY or YYYYMMDD;
    two of day, month and year equal; within a year of each other (a date written weeks
    out: how much that says is the data's to show, through m); different.

    The second output is the gap in years, which the father and son rule reads. Each
    distinct date (with its flag) has its parts and packed digits in a table, so a pair
    costs a few lookups and integer operations.
    """

    name = "date_of_birth"

    def __init__(self, prepared: pd.DataFrame) -> None:
        super().__init__("dob_signature", "dob_signature", label=["date_of_birth", YEAR_GAP])
        year, month, day, flagged = _columns_by_code(
            prepared, "dob_signature", SIGNATURES["dob_signature"]
        )
        self._year = year.astype(np.int16)
        self._month, self._day = month.astype(np.int8), day.astype(np.int8)
        self._soft = (flagged > 0) | ((month == 1) & (day == 1))  # estimated or 1 January
        self._digits = _packed_digits(year, month, day)
        self._digits_ymd = _packed_digits(year, month, day, year_first=True)
        self._days = _day_numbers(year, month, day)

    def _compute_vectorized(self, signature1: pd.Series, signature2: pd.Series):
        s1, s2 = _values(signature1), _values(signature2)
        y1, m1, d1 = self._year[s1], self._month[s1], self._day[s1]
        y2, m2, d2 = self._year[s2], self._month[s2], self._day[s2]
        same_y, same_m, same_d = y1 == y2, m1 == m2, d1 == d2
        exact = same_y & same_m & same_d
        swapped = same_y & (m1 == d2) & (d1 == m2) & (m1 != d1)
        estimated = same_y & (self._soft[s1] | self._soft[s2])
        one_typo = _one_digit_typo(self._digits[s1], self._digits[s2]) | _one_digit_typo(
            self._digits_ymd[s1], self._digits_ymd[s2]
        )
        one_component = (same_y.astype(np.int8) + same_m + same_d) == 2
        within_a_year = np.abs(self._days[s1] - self._days[s2]) <= _DAYS_A_YEAR
        present = (y1 >= 0) & (y2 >= 0)
        levels = _levels(
            [exact, swapped, estimated, one_typo, one_component, within_a_year], present
        )
        gap = np.where(present, np.abs(y1 - y2), -1).astype(np.int16)
        return levels, gap


class NhsNumberComparison(BaseCompareFeature):
    """Two valid NHS numbers agree or disagree; a missing or invalid one is missing."""

    name = "nhs_number"

    def __init__(self, prepared: pd.DataFrame | None = None) -> None:
        super().__init__("nhs_code", "nhs_code", label="nhs_number")

    def _compute_vectorized(self, n1, n2):
        n1, n2 = _values(n1), _values(n2)
        return _levels([n1 == n2], (n1 >= 0) & (n2 >= 0))


class SexComparison(BaseCompareFeature):
    """Agree or disagree; unknown on either side is missing, not disagreement."""

    name = "sex"

    def __init__(self, prepared: pd.DataFrame | None = None) -> None:
        super().__init__("sex_code", "sex_code", label="sex")

    def _compute_vectorized(self, s1, s2):
        s1, s2 = _values(s1), _values(s2)
        levels = np.where(s1 == s2, 0, 1).astype(np.int8)
        levels[(s1 < 0) | (s2 < 0)] = MISSING
        return levels


class PostcodeComparison(BaseCompareFeature):
    """Exact, same sector, same district (UK), one typo (any country's code), different."""

    name = "postcode"

    def __init__(self, prepared: pd.DataFrame) -> None:
        super().__init__("postcode_code", "postcode_code", label="postcode")
        codes = prepared["postcode_code"].to_numpy()
        self._sector = _by_code(codes, prepared["postcode_sector_code"].to_numpy())
        self._district = _by_code(codes, prepared["postcode_district_code"].to_numpy())
        self._postcodes = _vocabulary(prepared, ("postcode_key",))
        self._ends = _edit_ends(self._postcodes)

    def _compute_vectorized(self, p1, p2):
        p1, p2 = _values(p1), _values(p2)
        present = (p1 >= 0) & (p2 >= 0)
        exact = _equal(p1, p2)
        sector = _equal(self._sector[p1], self._sector[p2])
        district = _equal(self._district[p1], self._district[p2])
        todo = np.flatnonzero(present & ~exact & ~sector & ~district)
        todo = todo[_may_be_one_edit(self._ends, p1[todo], p2[todo])]
        typo = np.zeros(len(p1), dtype=bool)
        if len(todo):
            typo[todo] = _scored_once(p1[todo], p2[todo], self._postcodes, _one_edit)
        return _levels([exact, sector, district, typo], present)


class AddressComparison(BaseCompareFeature):
    """The same UPRN; the same address text; token-sort similarity of the text; different.

    UPRN is a level of the address rather than a field of its own: both say "same
    dwelling", and counting that twice would overstate the evidence. Two different UPRNs
    are different dwellings whatever the text says (flats 2 and 3 of one house).
    """

    name = "address"

    def __init__(self, prepared: pd.DataFrame) -> None:
        columns = ["address_code", "uprn_code", "postcode_code"]
        super().__init__(columns, columns, label="address")
        codes = prepared["postcode_code"].to_numpy()
        self._district = _by_code(codes, prepared["postcode_district_code"].to_numpy())
        self._addresses = _vocabulary(prepared, ("address_key",))
        self._joined = _without_spaces(self._addresses)

    def _compute_vectorized(self, ac1, uc1, p1, ac2, uc2, p2):
        ac1, uc1, p1, ac2, uc2, p2 = (_values(s) for s in (ac1, uc1, p1, ac2, uc2, p2))
        d1, d2 = self._district[p1], self._district[p2]
        text_present = (ac1 >= 0) & (ac2 >= 0)
        uprn_present = (uc1 >= 0) & (uc2 >= 0)
        same_uprn = _equal(uc1, uc2)
        other_uprn = uprn_present & ~same_uprn
        text_equal = _equal(ac1, ac2)
        # Addresses in two postal districts are not one dwelling: no need to read the text.
        other_district = (d1 >= 0) & (d2 >= 0) & (d1 != d2)
        todo = np.flatnonzero(text_present & ~text_equal & ~uprn_present & ~other_district)
        score = np.zeros(len(ac1), dtype=np.float32)
        if len(todo):
            score[todo] = _scored_once(ac1[todo], ac2[todo], self._addresses, _token_sort)
            # Or, when higher, the texts without spaces: a typed or scanned address often
            # joins or splits words ("MACKIECRESCENT", "HOWIE CO URT"), which token sorting
            # alone scores as unlike. Only where it could change the level.
            low = todo[score[todo] < 100 * ADDRESS_THRESHOLDS[0]]
            if len(low):
                joined = _scored_once(ac1[low], ac2[low], self._joined, _ratio)
                score[low] = np.maximum(score[low], joined)
        score = score / 100.0
        return _levels(
            [
                same_uprn,
                text_equal & ~other_uprn,
                ~other_uprn & (score >= ADDRESS_THRESHOLDS[0]),
                ~other_uprn & (score >= ADDRESS_THRESHOLDS[1]),
            ],
            text_present | uprn_present,
        )


class FormerAddressComparison(BaseCompareFeature):
    """One record's address against the addresses the other record's person has left
    (prepare.FORMER_KEYS, from a source's address history): the same UPRN or the same
    address text (when the UPRNs do not contradict it) is "lived_there_before", the same
    full postcode "former_postcode", neither "different"; missing when neither record has
    a former address.

    A field of its own, not a level of the address: its levels must not say "same
    dwelling" to the household rules (twins share a home, not a former home with someone's
    current one), and its m and u are those of movers. compare() silences it where the
    current addresses agree: it then has nothing to explain.
    """

    name = "former_address"

    def __init__(self, prepared: pd.DataFrame) -> None:
        columns = ["address_code", "uprn_code", "postcode_code", "former_signature"]
        super().__init__(columns, columns, label="former_address")
        self._former = _columns_by_code(
            prepared, "former_signature", SIGNATURES["former_signature"]
        )
        self._has_former = (self._former >= 0).any(axis=0)

    def _compute_vectorized(self, ac1, uc1, p1, fs1, ac2, uc2, p2, fs2):
        ac1, uc1, p1, fs1, ac2, uc2, p2, fs2 = (
            _values(s) for s in (ac1, uc1, p1, fs1, ac2, uc2, p2, fs2)
        )
        levels = np.full(len(ac1), MISSING, dtype=np.int8)
        has1, has2 = self._has_former[fs1], self._has_former[fs2]
        rows = np.flatnonzero(has1 | has2)
        if not len(rows):
            return levels
        home = np.zeros(len(rows), dtype=bool)
        postcode = np.zeros(len(rows), dtype=bool)
        present = np.zeros(len(rows), dtype=bool)
        for current, former, has in (
            ((ac1, uc1, p1), fs2, has2),
            ((ac2, uc2, p2), fs1, has1),
        ):
            address, uprn, code = (c[rows] for c in current)
            present |= has[rows] & ((address >= 0) | (uprn >= 0) | (code >= 0))
            table = self._former[:, former[rows]]
            for slot in range(0, len(table), 3):
                f_uprn, f_address, f_postcode = table[slot], table[slot + 1], table[slot + 2]
                other_uprn = (uprn >= 0) & (f_uprn >= 0) & (uprn != f_uprn)
                home |= _equal(uprn, f_uprn) | (_equal(address, f_address) & ~other_uprn)
                postcode |= _equal(code, f_postcode)
        levels[rows] = _levels([home, postcode], present)
        return levels


class AddressPeriodsComparison(BaseCompareFeature):
    """Whether the two records' addresses were held one after the other: one record shows
    the person leaving its address (an ended tenancy) on or before the day the other shows
    them at theirs (its address's start, else the record's date): "one_after_the_other",
    what a move looks like; the other record seen there before that day: "overlapping";
    missing when neither address has an end date or the other record no date.

    Namesakes are two people living at the same time, each at their own address; one person
    who moved leaves one home before arriving at the next. compare() silences the field
    where the addresses agree: there is no move to date.
    """

    name = "address_periods"

    def __init__(self, prepared: pd.DataFrame | None = None) -> None:
        super().__init__(["seen_day", "left_day"], ["seen_day", "left_day"], label=self.name)

    def _compute_vectorized(self, seen1, left1, seen2, left2):
        seen1, left1, seen2, left2 = (_values(s) for s in (seen1, left1, seen2, left2))
        first_left = (left1 >= 0) & (seen2 >= 0)
        second_left = (left2 >= 0) & (seen1 >= 0)
        in_turn = (first_left & (seen2 >= left1)) | (second_left & (seen1 >= left2))
        return _levels([in_turn], first_left | second_left)


#: Per field: the feature that compares it and the code columns that show it has data.
_FEATURES: dict[str, tuple[type[BaseCompareFeature], list[str]]] = {
    "nhs_number": (NhsNumberComparison, ["nhs_code"]),
    "given_name": (NameComparison, ["given_code"]),
    "family_name": (NameComparison, ["family_code"]),
    "date_of_birth": (DateOfBirthComparison, ["dob_y"]),
    "sex": (SexComparison, ["sex_code"]),
    "postcode": (PostcodeComparison, ["postcode_code"]),
    "address": (AddressComparison, ["address_code", "uprn_code"]),
    "former_address": (
        FormerAddressComparison,
        [code_column(k) for keys in FORMER_KEYS for k in keys],
    ),
    "address_periods": (AddressPeriodsComparison, ["left_day"]),
}


def compared_fields(prepared: pd.DataFrame) -> list[str]:
    """Fields that some record carries: a field nobody has would only add noise."""
    return [f for f in LEVELS if has_data(prepared, _FEATURES[f][1])]


def _positions(pairs: pd.MultiIndex, level: int, records: pd.DataFrame) -> np.ndarray:
    """Row positions in `records` of one side of the pairs."""
    labels, codes = pairs.levels[level], pairs.codes[level]
    if not _is_positional(labels):
        codes = labels.to_numpy()[codes]
    if _is_positional(records.index):
        return np.asarray(codes, dtype=np.intp)
    return records.index.get_indexer(codes)


def _is_positional(index: pd.Index) -> bool:
    """Whether the labels of `index` are 0, 1, 2, ... (so label i is at position i)."""
    if isinstance(index, pd.RangeIndex):
        return index.start == 0 and index.step == 1
    values = index.to_numpy()
    return values.dtype.kind in "iu" and np.array_equal(values, np.arange(len(values)))


class CodeCompare(recordlinkage.Compare):
    """recordlinkage's Compare for records whose compared columns are integer codes.

    recordlinkage looks the records of each pair up by label and indexes the features by
    the pairs, building (factorising) a MultiIndex of them anew on every call: on millions
    of pairs that costs more than the comparing. Here each column the features read is
    gathered once per side with a numpy take, and the features come back in the order of
    the pairs under a plain index.
    """

    def _compute(self, pairs: pd.MultiIndex, x: pd.DataFrame, x_link=None) -> pd.DataFrame:
        if x_link is not None:
            return super()._compute(pairs, x, x_link)
        sides = (_positions(pairs, 0, x), _positions(pairs, 1, x))
        gathered: dict[tuple[int, str], pd.Series] = {}

        def read(labels, side: int) -> tuple[pd.Series, ...]:
            for label in listify(labels):
                if (side, label) not in gathered:
                    values = x[label].to_numpy()[sides[side]]
                    gathered[side, label] = pd.Series(values, copy=False)
            return tuple(gathered[side, label] for label in listify(labels))

        found = [
            (
                feature._compute(read(feature.labels_left, 0), read(feature.labels_right, 1)),
                feature.label,
            )
            for feature in self.features
        ]
        return self._union(found)


def comparer(fields: list[str], prepared: pd.DataFrame) -> CodeCompare:
    """A Compare with the features these fields need; each keeps the tables it reads
    (values behind `prepared`'s codes, postcode sectors, short-form groups)."""
    kinds = list(dict.fromkeys(_FEATURES[f][0] for f in fields))
    return CodeCompare([kind(prepared) for kind in kinds])


#: Most pairs compared at once: bounds the gathered codes and intermediate arrays (a few
#: hundred MB a worker), and sets how often progress is reported. Larger chunks meet each
#: pair of names fewer times: at 1M records, chunks of 4M pairs took 19% less CPU than
#: chunks of 2M (26.6 s against 32.7 s for 35M pairs).
CHUNK_PAIRS = 4_000_000

#: Called with (pairs compared, candidate pairs) after each chunk of the candidate pairs: the
#: command line sets it to draw a bar while Dagster runs the linkage asset.
progress_hook: Callable[[int, int], None] | None = None

#: Worker processes comparing chunks at once; 1 compares in this process, None (the default)
#: reads CARE_ETL_COMPARE_PROCESSES, else takes the cores this process may run on, up to
#: MAX_PROCESSES. On an idle two-core host two workers compared 1M records' 35M candidate
#: pairs in 17.4 s against 28.2 s in one process; on a host whose jobs share a CPU quota they
#: were 20-40% slower: set CARE_ETL_COMPARE_PROCESSES=1 there.
COMPARE_PROCESSES: int | None = None
MAX_PROCESSES = 4
PROCESSES_VARIABLE = "CARE_ETL_COMPARE_PROCESSES"
#: mallopt's parameters (malloc.h): arrays below this size come from the heap; the heap's top
#: is returned to the system only beyond this much free.
_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD = -3, -1
#: This many pairs or fewer are compared in one chunk, here (`_chunks`).
SPLIT_PAIRS = 400_000


def compare_processes() -> int:
    """How many processes compare chunks: COMPARE_PROCESSES, CARE_ETL_COMPARE_PROCESSES, or
    the usable cores (a container's CPU set, not the host's), at most MAX_PROCESSES."""
    if COMPARE_PROCESSES is not None:
        return max(1, COMPARE_PROCESSES)
    setting = os.environ.get(PROCESSES_VARIABLE, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise CareEtlError(
                f"{PROCESSES_VARIABLE}={setting!r} is not a number of processes (1, 2, ...)"
            )
        return int(setting)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_PROCESSES, usable or 1))


def _compare_chunk(
    features: CodeCompare, data: pd.DataFrame, pairs: pd.MultiIndex
) -> dict[str, np.ndarray]:
    chunk = features.compute(pairs, data)
    return {column: chunk[column].to_numpy() for column in chunk.columns}


#: What forked workers compare: (features, data, pairs), set in the parent before forking.
_FORKED: tuple[CodeCompare, pd.DataFrame, pd.MultiIndex] | None = None


def _forked_chunk(bounds: tuple[int, int]) -> dict[str, np.ndarray]:
    assert _FORKED is not None  # inherited from the parent
    global _workers
    _workers = 1
    features, data, pairs = _FORKED
    return _compare_chunk(features, data, pairs[bounds[0] : bounds[1]])


def _chunks(
    features: CodeCompare, data: pd.DataFrame, pairs: pd.MultiIndex
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """(start, stop, levels) per chunk of the pairs, in order.

    With `compare_processes()` above 1, chunks are compared in that many forked worker
    processes, where the system forks (Linux): threads would queue on the GIL, which pandas
    and rapidfuzz take for every Python string and object they touch. A forked worker reads
    the parent's tables without copying them and sends back only the levels of its chunk
    (about 12 bytes a pair). With workers, the pairs are cut into chunks of equal size
    (none above CHUNK_PAIRS), as many as a multiple of the workers, so that no worker is left
    comparing the last chunk alone; the model's million random pairs, one chunk, are split
    between them. SPLIT_PAIRS or fewer are compared here, in one chunk: they cost less to
    compare than to fork for.
    """
    processes = compare_processes()
    bounds = _bounds(len(pairs), processes)
    workers = min(processes, len(bounds))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for start, stop in bounds:
            yield start, stop, _compare_chunk(features, data, pairs[start:stop])
        return
    global _FORKED
    _FORKED = (features, data, pairs)
    try:
        with worker_pool(workers) as pool:
            for (start, stop), chunk in zip(bounds, pool.map(_forked_chunk, bounds), strict=True):
                yield start, stop, chunk
    finally:
        _FORKED = None


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Forked workers whose allocator keeps what a chunk frees (`_keep_freed_memory`)."""
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, context, _keep_freed_memory)


def _keep_freed_memory() -> None:
    """Let a worker's allocator keep the memory its chunk freed, for the next chunk.

    glibc maps a large array (from 128 kB, rising to 32 MB as it adapts) on pages of its
    own and returns them when it is freed, so each chunk's arrays of millions of pairs
    would be mapped and zeroed afresh: at 4M pairs a chunk, 80,000 page faults and a
    quarter of the chunk's time. A worker lives for one compare() call, so what it keeps
    is bounded by its largest chunk. Where the C library is not glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


def _bounds(pairs: int, processes: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk: as few as CHUNK_PAIRS allows, in a multiple of
    `processes` when there are more than SPLIT_PAIRS pairs."""
    chunks = -(-pairs // CHUNK_PAIRS)
    if processes > 1 and pairs > SPLIT_PAIRS:
        chunks = -(-chunks // processes) * processes
    return [(i * pairs // chunks, (i + 1) * pairs // chunks) for i in range(chunks)]


def _dtype(column: str) -> type:
    """Levels as int8, flags as bool: a few bytes per pair."""
    return bool if column in FLAGS else (np.int16 if column == YEAR_GAP else np.int8)


def pair_index(left: np.ndarray, right: np.ndarray, records: int) -> pd.MultiIndex:
    """Pairs of record positions as the MultiIndex recordlinkage takes, built as it is:
    MultiIndex.from_arrays would sort and factorise millions of positions."""
    positions = pd.RangeIndex(records)
    return pd.MultiIndex(levels=[positions, positions], codes=[left, right], verify_integrity=False)


def compare(
    prepared: pd.DataFrame,
    pairs: pd.MultiIndex | tuple[np.ndarray, np.ndarray],
    fields: list[str],
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Level codes (int8, MISSING when unknown) per field and the flags, one row per pair.

    `pairs` index `prepared`'s rows: a MultiIndex of labels, or (left, right) positions.
    """
    if isinstance(pairs, tuple):
        pairs = pair_index(*pairs, len(prepared))
    columns = [*fields, *FLAGS, YEAR_GAP]
    out = {c: np.zeros(len(pairs), dtype=_dtype(c)) for c in columns}
    out[YEAR_GAP][:] = -1
    if len(pairs) == 0 or not fields:
        return pd.DataFrame(out)
    features = comparer(fields, prepared)
    needed = list(
        dict.fromkeys(c for feature in features.features for c in listify(feature.labels_left))
    )
    data = prepared[needed]
    for start, stop, chunk in _chunks(features, data, pairs):
        for column, values in chunk.items():
            if column in out:
                out[column][start:stop] = values
        del chunk
        if progress:
            progress(stop, len(pairs))
    if "address" in out:
        # An address that agrees already says "same postcode": counting the postcode as
        # well would double the evidence of one fact and push household members (same
        # surname, same home) towards a match. The postcode speaks only when the address
        # does not agree. Nor is there a move for the former address or the periods to
        # explain.
        same_home = among(out["address"], SAME_ADDRESS)
        for silenced in ("postcode", "former_address", "address_periods"):
            if silenced in out:
                out[silenced][same_home] = MISSING
    return pd.DataFrame(out, copy=False)
