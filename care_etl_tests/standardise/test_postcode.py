"""Postcodes: any case, with or without the space, and OCR slips in scanned forms."""

import pandas as pd
import pytest

from care_etl.standardise import clean_postcode, postcode_district, postcode_sector


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("e83qp", "E8 3QP"),
        ("E8 3QP", "E8 3QP"),
        (" e8  3qp ", "E8 3QP"),
        ("sw1a1aa", "SW1A 1AA"),
        ("M1 1AE", "M1 1AE"),
        ("B33 8TH", "B33 8TH"),
        ("CR2 6XH", "CR2 6XH"),
        ("DN55 1PT", "DN55 1PT"),
        ("W1A 0AX", "W1A 0AX"),
        ("EC1A 1BB", "EC1A 1BB"),
        ("gir 0aa", "GIR 0AA"),
    ],
)
def test_valid_postcodes_are_formatted(raw: str, clean: str) -> None:
    result = clean_postcode(pd.Series([raw]))
    assert result.value.tolist() == [clean]
    assert result.issue.tolist() == [None]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("EB 3QP", "E8 3QP"),  # 8 read as B where a digit must be
        ("E8 SQP", "E8 5QP"),  # 5 read as S at the start of the inward part
        ("5W1A 1AA", "SW1A 1AA"),
        ("SWIA IAA", "SW1A 1AA"),
        ("NI 9GU", "N1 9GU"),
        ("81 1AA", "B1 1AA"),
    ],
)
def test_ocr_confusions_are_corrected_and_flagged(raw: str, clean: str) -> None:
    result = clean_postcode(pd.Series([raw]))
    assert result.value.tolist() == [clean]
    assert result.issue.tolist() == ["corrected OCR characters"]


@pytest.mark.parametrize(
    "raw",
    [
        "11 8JQ",  # I1 or L1: two readings, so no guess
        "E8 3QPX",
        "ZZ99 9ZZ",
        "BFPO 123",
        "E8 3CK",  # C and K never end a postcode
        "12345",
        "???",
    ],
)
def test_invalid_postcodes_are_nulled(raw: str) -> None:
    result = clean_postcode(pd.Series([raw]))
    assert result.value.tolist() == [None]
    assert result.issue.tolist() == ["not a valid UK postcode"]


def test_sector_and_district() -> None:
    postcodes = pd.Series(["E8 3QP", "SW1A 1AA", "e83qp", None, "nonsense"], index=[4, 3, 2, 1, 0])
    assert postcode_sector(postcodes).tolist() == ["E8 3", "SW1A 1", "E8 3", None, None]
    assert postcode_district(postcodes).tolist() == ["E8", "SW1A", "E8", None, None]
    assert postcode_sector(postcodes).index.tolist() == [4, 3, 2, 1, 0]
