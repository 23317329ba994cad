"""The stage's entry point on records shaped like the four sources' mess."""

import re

import numpy as np
import pandas as pd
import pytest

from care_etl.canonical import STANDARDISED_FIELDS
from care_etl.standardise import nhs_check_digit, standardise

DATE_FORMATS = {"date_of_birth": ["%d/%m/%Y"], "date_of_death": ["%d/%m/%Y"]}


def _messy() -> pd.DataFrame:
    """One row per source kind, with the spec's mess; a shuffled, non-default index."""
    return pd.DataFrame(
        {
            "source": ["health", "housing", "housing", "social_care", "paper", "health"],
            "source_record_id": [
                "F84001:P1",
                "HM-0000871",
                "HM-0000872",
                "17",
                "scan_0042",
                "F84001:P2",
            ],  # fmt: skip
            "nhs_number": ["943 476 5919", None, None, "9434765918", "0000000000", "9434765919"],
            "title": ["MRS", None, None, None, None, "Rev"],
            "given_name": ["zoë", None, None, "Seán", None, "PEGGY"],
            "middle_names": [None, None, None, None, None, "ANNE  MARIE"],
            "family_name": ["O'BRIEN", None, None, "MACLEOD", None, "SMITH-JONES"],
            "full_name": [None, "SMITH, John", "John Smith", None, "Mr Seán O'Brien", None],
            "other_names": [None, None, None, "KELLY; o'neill", None, None],
            "date_of_birth": [
                "31/02/1980",
                "25123",
                "1968-10-12 00:00:00",
                "12 October 1968",
                "12/10/1968",
                "01/01/1880",
            ],  # fmt: skip
            "sex": ["Female", "M", "X", "Non-binary", None, "Q"],
            "address": [
                "Flat 3, , 12 high st., Hackney",
                "1 Acacia Ave, London",
                "1 Acacia Ave, London, E8 3QP",
                None,
                "4 Elm Cl",
                "-",
            ],  # fmt: skip
            "postcode": ["e83qp", "E8 3QP", None, "ZZ99 9ZZ", "EB 3QP", None],
            "uprn": [None, "1.00023E+11", "100023000000.0", "100023000000", None, None],
            "ni_number": [None, "QQ123456C", "ab 12 34 56 c", None, None, None],
            "date_of_death": [None, None, "01/01/1950", None, None, None],
            "dob_estimated": pd.array([None, None, None, True, None, None], dtype="boolean"),
            "ocr_confidence": [None, None, None, None, 0.71, None],
            "lineage": [f"file row {i}" for i in range(6)],
            "quality_issues": [None, None, None, None, "paper: low OCR confidence", None],
        },
        index=[50, 3, 3, 12, 0, 7],
    )


@pytest.fixture(scope="module")
def messy_out() -> pd.DataFrame:
    return standardise(_messy(), DATE_FORMATS)


def test_columns_order_and_index(messy_out: pd.DataFrame) -> None:
    records = _messy()
    expected = ["source", "source_record_id", *STANDARDISED_FIELDS, "dob_estimated",
                "ocr_confidence", "lineage", "quality_issues"]  # fmt: skip
    assert list(messy_out.columns) == expected
    assert messy_out.index.tolist() == records.index.tolist()
    assert messy_out["source_record_id"].tolist() == records["source_record_id"].tolist()
    assert messy_out["lineage"].tolist() == records["lineage"].tolist()
    assert messy_out["dob_estimated"].dtype == "boolean"
    assert messy_out["date_of_birth"].dtype == "datetime64[ns]"
    assert messy_out["date_of_death"].dtype == "datetime64[ns]"


def test_names(messy_out: pd.DataFrame) -> None:
    assert messy_out["given_name"].tolist() == ["Zoë", "John", "John", "Seán", "Seán", "Peggy"]
    assert messy_out["family_name"].tolist() == [
        "O'Brien", "Smith", "Smith", "MacLeod", "O'Brien", "Smith-Jones"
    ]  # fmt: skip
    assert messy_out["middle_names"].tolist()[-1] == "Anne Marie"
    assert messy_out["title"].tolist() == ["Mrs", None, None, None, "Mr", None]
    assert messy_out["other_names"].tolist()[3] == "Kelly; O'Neill"


def test_values(messy_out: pd.DataFrame) -> None:
    out = messy_out
    assert out["nhs_number"].tolist() == ["9434765919", None, None, None, None, "9434765919"]
    assert out["postcode"].tolist() == ["E8 3QP", "E8 3QP", "E8 3QP", None, "E8 3QP", None]
    assert out["uprn"].tolist() == [None, None, "100023000000", "100023000000", None, None]
    assert out["ni_number"].tolist() == [None, None, "AB123456C", None, None, None]
    assert out["sex"].tolist() == ["F", "M", "X", "X", None, None]
    dob = pd.Timestamp(1968, 10, 12)
    assert out["date_of_birth"].tolist()[1:5] == [dob] * 4
    assert out["date_of_birth"].isna().tolist() == [True, False, False, False, False, True]
    assert out["date_of_death"].isna().all()  # 1950 is before the 1968 birth
    assert out["address"].tolist() == [
        "FLAT 3, 12 HIGH STREET, HACKNEY",
        "1 ACACIA AVENUE, LONDON",
        "1 ACACIA AVENUE, LONDON",
        None,
        "4 ELM CLOSE",
        None,
    ]


def test_quality_issues(messy_out: pd.DataFrame) -> None:
    issues = messy_out["quality_issues"].tolist()
    assert issues[0] == "date_of_birth: impossible date"
    assert "uprn: stored in scientific notation, digits lost" in issues[1]
    assert "ni_number: not a valid National Insurance number" in issues[1]
    assert "date_of_death: impossible date (before date of birth)" in issues[2]
    assert "postcode: taken from the address" in issues[2]
    assert "nhs_number: failed modulus 11 check" in issues[3]
    assert "postcode: not a valid UK postcode" in issues[3]
    assert issues[4].startswith("paper: low OCR confidence; ")  # appended, not replaced
    assert "nhs_number: placeholder (one repeated digit)" in issues[4]
    assert "postcode: corrected OCR characters" in issues[4]
    assert "title: not a recognised title" in issues[5]
    assert "sex: not a recognised sex code" in issues[5]
    assert "date_of_birth: impossible date (before 1890)" in issues[5]
    for row in issues:
        for reason in row.split("; "):
            assert re.fullmatch(r"[a-z_]+: [^;]+", reason)


def test_reasons_never_contain_input_values(messy_out: pd.DataFrame) -> None:
    records = _messy()
    fields = [c for c in records.columns if c not in ("quality_issues", "source", "lineage")]
    for position, issues in enumerate(messy_out["quality_issues"]):
        text = (issues or "").upper().replace(" ", "")
        for field in fields:
            raw = records[field].iloc[position]
            if isinstance(raw, str) and len(raw.strip()) >= 3:
                assert raw.upper().replace(" ", "") not in text, (position, field)


def test_missing_fields_become_null_columns_and_full_name_is_dropped() -> None:
    records = pd.DataFrame(
        {"source": ["housing"], "source_record_id": ["HM-1"], "full_name": ["DOE, Jane"]}
    )
    out = standardise(records)
    assert "full_name" not in out.columns
    assert out.loc[0, "given_name"] == "Jane"
    assert out.loc[0, "family_name"] == "Doe"
    others = [f for f in STANDARDISED_FIELDS if f not in ("given_name", "family_name")]
    assert out[others].isna().all().all()
    assert out["date_of_birth"].dtype == "datetime64[ns]"
    assert out.loc[0, "quality_issues"] is None


def test_key_columns_are_required() -> None:
    with pytest.raises(ValueError, match="source_record_id"):
        standardise(pd.DataFrame({"source": ["health"]}))


def _valid_nhs_numbers(count: int) -> list[str]:
    numbers = []
    for n in range(400_000_000, 400_000_000 + 2 * count):
        check = nhs_check_digit(str(n))
        if check is not None:
            numbers.append(f"{n}{check}")
        if len(numbers) == count:
            return numbers
    raise AssertionError("not enough numbers")


def test_two_hundred_thousand_rows_standardise_like_the_small_frame() -> None:
    small = _messy().reset_index(drop=True)
    tile = np.resize(np.arange(len(small)), 200_000)
    big = small.iloc[tile].copy()
    big.index = np.arange(len(big))[::-1]  # descending, to catch any reordering
    unique_ids = _valid_nhs_numbers(len(big))
    big["source_record_id"] = [f"R{i}" for i in range(len(big))]
    big["nhs_number"] = unique_ids  # every value distinct: the worst case for map-over-unique
    out = standardise(big, DATE_FORMATS)

    assert len(out) == len(big)
    assert out.index.equals(big.index)
    assert out["source_record_id"].tolist() == big["source_record_id"].tolist()
    assert out["nhs_number"].tolist() == unique_ids
    expected = standardise(small, DATE_FORMATS)
    tiled = expected.iloc[tile]
    columns = ["title", "given_name", "middle_names", "family_name", "other_names", "sex",
               "postcode", "uprn", "ni_number", "address", "date_of_birth", "date_of_death",
               "dob_estimated", "lineage"]  # fmt: skip
    for column in columns:  # NaT and None are singletons, so list equality covers them
        assert out[column].tolist() == tiled[column].tolist(), column
    assert out["date_of_birth"].dtype == "datetime64[ns]"
    # Rows differ from the small frame only in their (valid) NHS number's reason.
    expected_issues = (
        tiled["quality_issues"]
        .str.replace(r"nhs_number: [^;]+(; )?", "", regex=True)
        .str.removesuffix("; ")
    )
    assert out["quality_issues"].fillna("").tolist() == expected_issues.fillna("").tolist()
