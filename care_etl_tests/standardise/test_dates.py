"""Dates as the four sources write them, and the impossible ones they contain."""

import datetime as dt

import pandas as pd
import pytest

from care_etl.standardise import check_death_after_birth, clean_dates

TODAY = dt.date(2026, 11, 25)


def _clean(values, formats=("%d/%m/%Y",)):
    return clean_dates(pd.Series(values, dtype=object), formats, today=TODAY)


def test_excel_serial_iso_and_text_dates_agree() -> None:
    # 3 July 1948 as: contract format, Excel reader's ISO date cell, Excel serial written as
    # text, and the housing workbook's text cells.
    raw = [
        "03/07/1948",
        "1948-07-03 00:00:00",
        "1948-07-03",
        "17717",
        "17717.0",
        "3 July 1948",
        "3 Jul 1948",
        "3/7/1948",
    ]
    result = _clean(raw)
    assert result.value.dtype == "datetime64[ns]"
    assert set(result.value) == {pd.Timestamp(1948, 7, 3)}
    assert result.issue.isna().all()


def test_ambiguous_slashes_are_day_first_unless_the_contract_says_otherwise() -> None:
    assert _clean(["04/05/1970"]).value[0] == pd.Timestamp(1970, 5, 4)
    assert _clean(["04/05/1970"], ["%m/%d/%Y"]).value[0] == pd.Timestamp(1970, 4, 5)
    assert _clean(["04/05/1970"], None).value[0] == pd.Timestamp(1970, 5, 4)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("31/02/1980", "impossible date"),
        ("01/13/1980", "impossible date"),  # month 13, not a US date
        ("2020-02-30", "impossible date"),
        ("31 Feb 1980", "impossible date"),
        ("01/01/1880", "impossible date (before 1890)"),
        ("01/01/2030", "impossible date (in the future)"),
        ("1948", "year only, no day or month"),
        ("not known", "not a recognised date"),
    ],
)
def test_impossible_dates_are_nulled_with_the_reason(raw: str, reason: str) -> None:
    result = _clean([raw])
    assert pd.isna(result.value[0])
    assert result.issue[0] == reason


def test_ocr_letters_in_a_date_are_read_as_digits_and_flagged() -> None:
    result = _clean(["O3/O7/l948"])
    assert result.value[0] == pd.Timestamp(1948, 7, 3)
    assert result.issue[0] == "corrected OCR characters"


def test_blank_values_are_nat_without_a_reason() -> None:
    result = _clean([None, "", "  "])
    assert result.value.isna().all()
    assert result.issue.isna().all()


def test_real_date_objects_pass_through() -> None:
    result = _clean([dt.date(1948, 7, 3), pd.Timestamp(1950, 1, 2)])
    assert result.value.tolist() == [pd.Timestamp(1948, 7, 3), pd.Timestamp(1950, 1, 2)]


def test_death_before_birth_nulls_the_death() -> None:
    births = pd.Series(pd.to_datetime(["1950-01-01", "1950-01-01", None]))
    deaths = pd.Series(pd.to_datetime(["1949-12-31", "2001-05-05", "2001-05-05"]))
    result = check_death_after_birth(births, deaths)
    assert result.value.isna().tolist() == [True, False, False]
    assert result.issue.tolist() == ["impossible date (before date of birth)", None, None]
