"""The level each comparison gives to fixed pairs of records: the semantics the model's
parameters and the hard rules are built on, which a faster comparison must keep."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import OSA

from care_etl.linkage import compare as compare_module
from care_etl.linkage.compare import FLAGS, YEAR_GAP, compare, compared_fields, pair_index
from care_etl.linkage.prepare import prepare
from care_etl_tests.linkage.people import nhs_numbers

NHS_A, NHS_B = nhs_numbers(np.random.default_rng(5), 2)

#: (left record, right record, the levels and flags expected; every other field missing).
CASES = [
    # Names: exact, short form, close, one edit, fuzzy, different.
    ({"given_name": "Ada", "family_name": "Quennell"},
     {"given_name": "ADA", "family_name": "QUENNELL"}, {"given_name": 0, "family_name": 0}),
    ({"given_name": "William", "family_name": "Thistlewood"},
     {"given_name": "Bill", "family_name": "Thistlewood"}, {"given_name": 1, "family_name": 0}),
    ({"given_name": "Catherine", "family_name": "Oakhampton"},
     {"given_name": "Katherine", "family_name": "Okehampton"}, {"given_name": 2, "family_name": 3}),
    ({"given_name": "Zane", "family_name": "Featherstone"},
     {"given_name": "Zanj", "family_name": "Fetherston"}, {"given_name": 2, "family_name": 1}),
    ({"given_name": "Jonathan", "family_name": "Marsh"},
     {"given_name": "Johnathon", "family_name": "Marshall"}, {"given_name": 3, "family_name": 1}),
    ({"given_name": "Imogen", "family_name": "Lindqvist"},
     {"given_name": "Beatrix", "family_name": "Pemberton"}, {"given_name": 4, "family_name": 4}),
    # Names in another script compare by their Latin letters ("Иван" is IVAN) ...
    ({"given_name": "Иван", "family_name": "Петров"},
     {"given_name": "Ivan", "family_name": "Petrov"}, {"given_name": 0, "family_name": 0}),
    ({"given_name": "Иван", "family_name": "Петров"},
     {"given_name": "Иван", "family_name": "Петрова"}, {"given_name": 0, "family_name": 1}),
    # ... but two names written in Chinese characters, kana or hangul that differ are two
    # names, however near their letters (玲 LING, 婷 TING; 민준 MINJUN, 민서 MINSEO).
    ({"given_name": "玲", "family_name": "苏"},
     {"given_name": "婷", "family_name": "苏"}, {"given_name": 4, "family_name": 0}),
    ({"given_name": "Ling", "family_name": "Su"},
     {"given_name": "Ting", "family_name": "Su"}, {"given_name": 2, "family_name": 0}),
    ({"given_name": "민준", "family_name": "김"},
     {"given_name": "민서", "family_name": "김"}, {"given_name": 4, "family_name": 0}),
    # Names swapped; a surname moved into the forename; aliases; a double-barrelled part.
    ({"given_name": "Harriet", "family_name": "Pemberton"},
     {"given_name": "Pemberton", "family_name": "Harriet"},
     {"given_name": 0, "family_name": 0, "names_swapped": True}),
    ({"given_name": "Clarke", "family_name": "Jones"},
     {"given_name": "Peter", "family_name": "Clarke"},
     {"given_name": 4, "family_name": 0, "names_swapped": True}),
    # Swapped, and the forename a short form (John, Jack), either record the swapped one.
    ({"given_name": "John", "family_name": "Morris"},
     {"given_name": "Morris", "family_name": "Jack"},
     {"given_name": 1, "family_name": 0, "names_swapped": True}),
    ({"given_name": "Morris", "family_name": "Jack"},
     {"given_name": "John", "family_name": "Morris"},
     {"given_name": 1, "family_name": 0, "names_swapped": True}),
    # Swapped, and the surname changed: the forename (a forename in these data) agrees.
    ({"given_name": "Beverley", "family_name": "Wilson"},
     {"given_name": "Barnes", "family_name": "Beverley"},
     {"given_name": 0, "family_name": 4, "names_swapped": True}),
    # (These data know Beverley as a forename and Morris as a surname.)
    ({"given_name": "Beverley", "family_name": "Grant"},
     {"given_name": "Beverley", "family_name": "Morris"}, {"given_name": 0, "family_name": 4}),
    ({"given_name": "Mary", "family_name": "Jones", "other_names": "Smith"},
     {"given_name": "Mary", "family_name": "Smith"},
     {"given_name": 0, "family_name": 0, "family_name_alias": True}),
    ({"given_name": "Mary", "middle_names": "Ann Louise", "family_name": "Jones"},
     {"given_name": "Ann", "family_name": "Jones"},
     {"given_name": 0, "family_name": 0, "given_name_alias": True}),
    ({"given_name": "Ruth", "family_name": "Smith-Jones"},
     {"given_name": "Ruth", "family_name": "Jones"}, {"given_name": 0, "family_name": 2}),
    ({"family_name": "Abbott"}, {"given_name": "Ruth", "family_name": "Abbott"},
     {"family_name": 0}),
    # Dates of birth, with the gap in years the father and son rule reads.
    ({"date_of_birth": "1961-03-07"}, {"date_of_birth": "1961-03-07"},
     {"date_of_birth": 0, YEAR_GAP: 0}),
    ({"date_of_birth": "1961-03-07"}, {"date_of_birth": "1961-07-03"},
     {"date_of_birth": 1, YEAR_GAP: 0}),
    ({"date_of_birth": "1950-01-01"}, {"date_of_birth": "1950-06-12"},
     {"date_of_birth": 2, YEAR_GAP: 0}),
    ({"date_of_birth": "1950-06-12", "dob_estimated": True}, {"date_of_birth": "1950-09-30"},
     {"date_of_birth": 2, YEAR_GAP: 0}),
    ({"date_of_birth": "1955-06-30"}, {"date_of_birth": "1955-08-30"},
     {"date_of_birth": 3, YEAR_GAP: 0}),
    ({"date_of_birth": "1973-05-14"}, {"date_of_birth": "1937-05-14"},
     {"date_of_birth": 3, YEAR_GAP: 36}),
    # Neighbours transposed as written year first: 19850121 and 19850211.
    ({"date_of_birth": "1985-01-21"}, {"date_of_birth": "1985-02-11"},
     {"date_of_birth": 3, YEAR_GAP: 0}),
    ({"date_of_birth": "1980-05-14"}, {"date_of_birth": "1980-05-28"},
     {"date_of_birth": 4, YEAR_GAP: 0}),
    # Within a year, no component equal, across the turn of a year (and a leap day).
    ({"date_of_birth": "2015-10-29"}, {"date_of_birth": "2016-03-01"},
     {"date_of_birth": 5, YEAR_GAP: 1}),
    ({"date_of_birth": "1983-05-19"}, {"date_of_birth": "1984-05-18"},
     {"date_of_birth": 5, YEAR_GAP: 1}),
    ({"date_of_birth": "1983-05-19"}, {"date_of_birth": "1984-05-20"},
     {"date_of_birth": 6, YEAR_GAP: 1}),
    ({"date_of_birth": "1950-01-12"}, {"date_of_birth": "1978-06-03"},
     {"date_of_birth": 6, YEAR_GAP: 28}),
    ({"date_of_birth": "1950-01-12"}, {}, {}),
    # NHS numbers (an invalid one is missing) and sex.
    ({"nhs_number": NHS_A}, {"nhs_number": NHS_A}, {"nhs_number": 0}),
    ({"nhs_number": NHS_A}, {"nhs_number": NHS_B}, {"nhs_number": 1}),
    ({"nhs_number": NHS_A}, {"nhs_number": "1234567890"}, {}),
    ({"sex": "F"}, {"sex": "female"}, {"sex": 0}),
    ({"sex": "F"}, {"sex": "M"}, {"sex": 1}),
    ({"sex": "F"}, {"sex": "unknown"}, {}),
    # Postcodes: exact, sector, district, one edit (UK or not, any kind of edit), different.
    ({"postcode": "E8 3QP"}, {"postcode": "e83qp"}, {"postcode": 0}),
    ({"postcode": "E8 3QP"}, {"postcode": "E8 3XY"}, {"postcode": 1}),
    ({"postcode": "E8 3QP"}, {"postcode": "E8 4AB"}, {"postcode": 2}),
    ({"postcode": "E8 3QP"}, {"postcode": "E9 3QP"}, {"postcode": 3}),
    ({"postcode": "E8 3QP"}, {"postcode": "8E 3QP"}, {"postcode": 3}),
    ({"postcode": "75008"}, {"postcode": "75009"}, {"postcode": 3}),
    ({"postcode": "75008"}, {"postcode": "750089"}, {"postcode": 3}),
    ({"postcode": "ABCD"}, {"postcode": "ACBD"}, {"postcode": 3}),
    ({"postcode": "E8 3QP"}, {"postcode": "N16 0PP"}, {"postcode": 4}),
    ({"postcode": "75008"}, {"postcode": "57080"}, {"postcode": 4}),
    ({"postcode": "E8 3QP"}, {}, {}),
    # Addresses; an address that agrees silences the postcode (one fact, counted once).
    ({"uprn": "100021", "address": "1 High St", "postcode": "E8 3QP"},
     {"uprn": "100021", "address": "9 Low Rd", "postcode": "E8 3QP"}, {"address": 0}),
    ({"address": "12 High Street, Hackney", "postcode": "E8 3QP"},
     {"address": "12 HIGH STREET HACKNEY", "postcode": "E8 3QP"}, {"address": 1}),
    ({"address": "12 High Street Hackney", "postcode": "E8 3QP"},
     {"address": "12 High Street Hackny", "postcode": "E8 3QX"}, {"address": 2}),
    ({"address": "12 High Street Hackney", "postcode": "E8 3QP"},
     {"address": "12 High Road Hackney", "postcode": "E8 4QP"}, {"address": 3, "postcode": 2}),
    # Words joined or split, as typed or scanned: close, not different.
    ({"address": "17 Mackie Crescent, Hackney", "postcode": "E8 3QP"},
     {"address": "17 Mackiecrescent Hackney", "postcode": "E8 3QX"}, {"address": 2}),
    ({"address": "4 Howie Court Hackney", "postcode": "E8 3QP"},
     {"address": "4 Howie Co urt Hackney", "postcode": "E8 3QX"}, {"address": 2}),
    ({"address": "12 High Street Hackney", "postcode": "E8 3QP"},
     {"address": "99 Mare Street", "postcode": "E8 3QP"}, {"address": 4, "postcode": 0}),
    ({"address": "12 High Street Hackney", "postcode": "E8 3QP"},
     {"address": "12 High Street Hackny", "postcode": "N16 0PP"}, {"address": 4, "postcode": 4}),
    ({"uprn": "100021", "address": "Flat 2, 5 Mare Street", "postcode": "E8 3QP"},
     {"uprn": "100022", "address": "Flat 2, 5 Mare Street", "postcode": "E8 3QP"},
     {"address": 4, "postcode": 0}),
    ({"address": "12 High Street Hackney"}, {}, {}),
]  # fmt: skip


def _records(cases: list[tuple[dict, dict, dict]]) -> pd.DataFrame:
    """Left and right record of case i at rows 2i and 2i + 1."""
    rows = []
    for i, (left, right, _) in enumerate(cases):
        rows.append({"source": "left", "source_record_id": f"L{i}", **left})
        rows.append({"source": "right", "source_record_id": f"R{i}", **right})
    return pd.DataFrame(rows)


def _expected(columns: list[str], case: dict) -> dict:
    default = {c: False if c in FLAGS else -1 for c in columns}
    return {**default, **case}


@pytest.fixture(scope="module")
def prepared() -> pd.DataFrame:
    return prepare(_records(CASES))


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    left = np.arange(0, 2 * len(CASES), 2)
    return left, left + 1


def test_every_case_gets_its_levels(prepared: pd.DataFrame) -> None:
    found = compare(prepared, _pairs(), compared_fields(prepared))
    for i, (_, _, case) in enumerate(CASES):
        row = found.iloc[i].to_dict()
        assert row == _expected(list(found.columns), case), f"case {i}"


def test_levels_do_not_depend_on_the_chunks_or_the_order_of_a_pair(
    prepared: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values are scored once per distinct pair: repeats, reversed pairs and pairs split
    over chunks must all read the same scores."""
    fields = compared_fields(prepared)
    left, right = _pairs()
    whole = compare(prepared, pd.MultiIndex.from_arrays([left, right]), fields)
    monkeypatch.setattr(compare_module, "CHUNK_PAIRS", 7)
    seen = []
    many = (np.tile(right, 3), np.tile(left, 3))
    chunked = compare(prepared, many, fields, progress=lambda done, total: seen.append(done))
    assert seen[-1] == 3 * len(CASES) and len(seen) == -(-3 * len(CASES) // 7)
    assert np.diff([0, *seen]).max() <= 7
    pd.testing.assert_frame_equal(chunked, pd.concat([whole] * 3, ignore_index=True))


def test_pairs_may_be_positions_or_labels(prepared: pd.DataFrame) -> None:
    """recordlinkage's MultiIndex of labels, pair_index's and (left, right) arrays agree."""
    fields = compared_fields(prepared)
    left, right = _pairs()
    by_labels = compare(prepared, pd.MultiIndex.from_arrays([left, right]), fields)
    by_index = compare(prepared, pair_index(left, right, len(prepared)), fields)
    pd.testing.assert_frame_equal(by_labels, by_index)
    relabelled = prepared.set_axis(np.arange(len(prepared)) + 100)
    shifted = compare(relabelled, pd.MultiIndex.from_arrays([left + 100, right + 100]), fields)
    pd.testing.assert_frame_equal(by_labels, shifted)


def test_no_pairs_and_no_fields() -> None:
    prepared = prepare(_records(CASES[:2]))
    empty = compare(prepared, (np.zeros(0, np.int64), np.zeros(0, np.int64)), ["given_name"])
    assert list(empty.columns) == ["given_name", *FLAGS, YEAR_GAP] and len(empty) == 0
    nothing = compare(prepared, _pairs_of(2), [])
    assert len(nothing) == 2 and (nothing[YEAR_GAP] == -1).all()


def _pairs_of(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, np.int64), np.ones(n, np.int64)


def test_the_one_edit_filter_keeps_every_pair_one_edit_apart() -> None:
    """Postcodes are checked for a typo only where the lengths and the first or last two
    characters allow one edit: every string one edit away must pass."""
    words = ["E83QP", "N160PP", "75008", "D02X285", "ABCD", "SW1A1AA", "AB1"]
    alphabet = "ABQ0189"
    near = set()
    for word in words:
        for i in range(len(word) + 1):
            near.update(word[:i] + c + word[i:] for c in alphabet)  # insertion
        for i in range(len(word)):
            near.add(word[:i] + word[i + 1 :])  # deletion
            near.update(word[:i] + c + word[i + 1 :] for c in alphabet)  # substitution
        for i in range(len(word) - 1):
            near.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # transposition
    values = np.array(sorted(set(words) | near), dtype=object)
    ends = compare_module._edit_ends(values)
    pairs = np.array(list(itertools.combinations(range(len(values)), 2)))
    allowed = compare_module._may_be_one_edit(ends, pairs[:, 0], pairs[:, 1])
    one_edit = np.array([OSA.distance(values[a], values[b]) <= 1 for a, b in pairs])
    assert one_edit.sum() > 1000
    assert not (one_edit & ~allowed).any()
    assert (~allowed).sum() > len(pairs) // 2  # and it does filter


def _typo_by_hand(one: str, two: str) -> bool:
    """One of the eight digits of DDMMYYYY wrong, or two neighbours transposed."""
    wrong = [i for i in range(8) if one[i] != two[i]]
    if len(wrong) == 1:
        return True
    i = wrong[0] if len(wrong) == 2 else -1
    return wrong == [i, i + 1] and one[i] == two[i + 1] and one[i + 1] == two[i]


def test_the_packed_date_digits_find_the_typos_a_person_would() -> None:
    rng = np.random.default_rng(11)
    day, month, year = (
        rng.integers(0, 100, 300),
        rng.integers(0, 100, 300),
        rng.integers(1, 10000, 300),
    )
    dates = [f"{d:02d}{m:02d}{y:04d}" for d, m, y in zip(day, month, year, strict=True)]
    pairs = []
    for date in dates:
        pairs.append((date, dates[rng.integers(0, len(dates))]))
        for i in range(8):
            pairs.append((date, date[:i] + str(rng.integers(0, 10)) + date[i + 1 :]))
            if i < 7:
                pairs.append((date, date[:i] + date[i + 1] + date[i] + date[i + 2 :]))
                pairs.append((date, date[:i] + date[i + 1] + date[i] + date[i + 2 :][::-1]))

    def packed(texts: list[str]) -> np.ndarray:
        day, month, year = (
            np.array([int(t[a:b]) for t in texts]) for a, b in ((0, 2), (2, 4), (4, 8))
        )
        return compare_module._packed_digits(year, month, day)

    found = compare_module._one_digit_typo(
        packed([a for a, _ in pairs]), packed([b for _, b in pairs])
    )
    expected = np.array([_typo_by_hand(a, b) for a, b in pairs])
    assert expected.sum() > 1000 and (~expected).sum() > 1000
    np.testing.assert_array_equal(found, expected)


def _nhs(value: object) -> str | None:
    """What _nhs_keys computes with numpy, one value at a time with the standardiser's check."""
    from care_etl.standardise.identifiers import is_valid_nhs_number

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(int(value)) if isinstance(value, float) else str(value)
    digits = "".join(text.split()).replace("-", "")
    return digits if digits and is_valid_nhs_number(digits) else None


def test_nhs_keys_are_the_valid_numbers_whatever_the_type() -> None:
    from care_etl.linkage.prepare import _nhs_keys

    good = [n for n in nhs_numbers(np.random.default_rng(3), 12) if n[0] != "0"][:4]
    values = [None, np.nan, pd.NA, "", "  ", f" {good[0]} ", f"{good[1][:3]} {good[1][3:]}",
              "1111111111", "123456789", "12345678901", int(good[2]), float(good[3]),
              good[0].replace("4", "\u0664"), f"{good[1][:9]}{(int(good[1][9]) + 1) % 10}",
              f"{good[2][:3]}-{good[2][3:6]}-{good[2][6:]}"]  # fmt: skip
    found = list(_nhs_keys(pd.Series(values, dtype=object)))
    assert found == [_nhs(v) for v in values]
    assert found[5:7] == [good[0], good[1]] and found[10:12] == [good[2], good[3]]
    assert found[14] == good[2]  # hyphens, as people write it
    assert list(_nhs_keys(pd.Series([f" {good[0]}", None]))) == [good[0], None]
