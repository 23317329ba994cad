"""Sex codings from the four sources, and one comparable address line."""

import pandas as pd
import pytest

from care_etl.standardise import address_postcode, clean_address, clean_sex


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Male", "M"),
        ("FEMALE", "F"),
        ("m", "M"),
        ("F", "F"),
        ("1", "M"),
        ("2", "F"),
        ("X", "X"),
        ("Indeterminate", "X"),
        ("Non-binary", "X"),
        ("Unknown", None),
        ("U", None),
        ("Not recorded", None),
        ("Not known", None),
        ("9", None),
        ("0", None),
    ],
)
def test_sex_codings(raw: str, code: str | None) -> None:
    result = clean_sex(pd.Series([raw]))
    assert result.value.tolist() == [code]
    assert result.issue.tolist() == [None]


def test_unrecognised_sex_code_is_nulled_with_a_reason() -> None:
    result = clean_sex(pd.Series(["Q", "Mle"]))
    assert result.value.tolist() == [None, None]
    assert result.issue.tolist() == ["not a recognised sex code"] * 2


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ("Flat 3, , 12 high st., Hackney", "FLAT 3, 12 HIGH STREET, HACKNEY"),
        ("12 St Mary's Rd, London, E8 3QP", "12 ST MARYS ROAD, LONDON"),
        ("1 Acacia Ave,Leeds LS1 1AA", "1 ACACIA AVENUE, LEEDS"),
        ("4 Elm Cl, 9 Park Cres", "4 ELM CLOSE, 9 PARK CRESCENT"),
        ("2 Kew Gdns", "2 KEW GARDENS"),
        ("St John's Court", "ST JOHNS COURT"),  # ST first is Saint: left alone
        ("12-14  Mill   Lane", "12 14 MILL LANE"),
        ("Café Row", "CAFE ROW"),
        ("12 Straße der Einheit", "12 STRASSE DER EINHEIT"),
        ("вул. Шевченка 12, Київ", "VUL SHEVCHENKA 12, KIIV"),  # not just "12"
    ],
)
def test_address_lines(raw: str, line: str) -> None:
    assert clean_address(pd.Series([raw])).value.tolist() == [line]


def test_address_of_punctuation_only_is_nulled() -> None:
    result = clean_address(pd.Series([", ,", None]))
    assert result.value.tolist() == [None, None]
    assert result.issue.tolist() == ["no letters or digits", None]


def test_postcode_at_the_end_of_an_address_is_found() -> None:
    found = address_postcode(pd.Series(["12 High St, London E8 3QP", "12 High St", None]))
    assert found.tolist() == ["E8 3QP", None, None]
