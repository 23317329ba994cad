"""NHS numbers, NI numbers and UPRNs: doubtful identifiers are nulled, never kept."""

import pandas as pd
import pytest

from care_etl.standardise import (
    clean_nhs_number,
    clean_ni_number,
    clean_uprn,
    is_valid_nhs_number,
    nhs_check_digit,
)


def test_valid_nhs_number_is_kept_with_or_without_spaces() -> None:
    result = clean_nhs_number(pd.Series(["9434765919", "943 476 5919", "943-476-5919"]))
    assert result.value.tolist() == ["9434765919"] * 3
    assert result.issue.isna().all()


def test_one_digit_changed_fails_modulus_11() -> None:
    result = clean_nhs_number(pd.Series(["9434765918", "9434765929"]))
    assert result.value.isna().all()
    assert result.issue.tolist() == ["failed modulus 11 check"] * 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0000000000", "placeholder (one repeated digit)"),
        ("4444444444", "placeholder (one repeated digit)"),
        ("943476591", "not 10 digits"),
        ("94347659190", "not 10 digits"),
        ("NHS123", "not 10 digits"),
    ],
)
def test_malformed_nhs_numbers_are_nulled(raw: str, reason: str) -> None:
    result = clean_nhs_number(pd.Series([raw]))
    assert result.value.tolist() == [None]
    assert result.issue.tolist() == [reason]


def test_check_digit_of_ten_is_invalid() -> None:
    prefix = next(f"{n:09d}" for n in range(1, 1000) if nhs_check_digit(f"{n:09d}") is None)
    assert not any(is_valid_nhs_number(prefix + str(d)) for d in range(10))


def test_ocr_letters_in_an_nhs_number_are_fixed_only_when_the_check_passes() -> None:
    result = clean_nhs_number(pd.Series(["943 476 59l9", "943 476 59l8"]))
    assert result.value.tolist() == ["9434765919", None]
    assert result.issue.tolist() == ["corrected OCR characters", "not 10 digits"]


def test_numeric_spreadsheet_cell_is_accepted() -> None:
    assert clean_nhs_number(pd.Series(["9434765919.0"])).value.tolist() == ["9434765919"]


def test_scientific_notation_is_read_only_when_every_digit_is_there() -> None:
    # A number cell a spreadsheet wrote as 9.434765919E+09: read as "not 10 digits" before,
    # enough of a file's numbers so to block the feed.
    result = clean_nhs_number(pd.Series(["9.434765919E+09", "9.434765919e9", "9.43477E+09"]))
    assert result.value.tolist() == ["9434765919", "9434765919", None]
    assert result.issue.tolist() == [None, None, "stored in scientific notation, digits lost"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("100023000000", "100023000000"),
        ("100023000000.0", "100023000000"),
        (" 000100023000 ", "100023000"),
        ("1.00023000123E+11", "100023000123"),  # every digit still shown
    ],
)
def test_uprn_digits(raw: str, clean: str) -> None:
    result = clean_uprn(pd.Series([raw]))
    assert result.value.tolist() == [clean]
    assert result.issue.tolist() == [None]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1.00023E+11", "stored in scientific notation, digits lost"),
        ("1.00023e+11", "stored in scientific notation, digits lost"),
        ("1000230000001", "more than 12 digits"),
        ("0", "not a valid UPRN"),
        ("UPRN 12", "not a valid UPRN"),
    ],
)
def test_bad_uprns_are_nulled(raw: str, reason: str) -> None:
    result = clean_uprn(pd.Series([raw]))
    assert result.value.tolist() == [None]
    assert result.issue.tolist() == [reason]


def test_ni_numbers() -> None:
    raw = ["ab 12 34 56 c", "AB123456D", "QQ123456C", "AB123456", "AB123456E", "GB123456A",
           "DA123456A", "AO123456A", "OA123456A"]  # fmt: skip
    result = clean_ni_number(pd.Series(raw))
    assert result.value.tolist() == ["AB123456C", "AB123456D"] + [None] * 6 + ["OA123456A"]
    assert result.issue.tolist()[2:8] == ["not a valid National Insurance number"] * 6
