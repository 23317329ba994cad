"""link() on a caller's own data: exports from other systems and other countries.

interfaces.md promises one row per record from any number of sources and any country's
records; docs/developer.md lists what link_records accepts beyond care_etl's standardised
records. These tests hand link() what such an export holds (year-first or month-name dates,
ZIP codes read as numbers, NHS numbers written back from a float column, a single record)
and twins named alike, and check what a person looking at the result would expect.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from care_etl.errors import CareEtlError
from care_etl.linkage import link, link_records
from care_etl_tests.linkage.people import crowd, with_records

HOME = {"family_name": "OKAFOR", "address": "14 MILL LANE", "postcode": "LS6 2AB"}


def _person(source: str, given: str, born: str, **other: object) -> dict:
    return {"source": source, "source_record_id": "1", "given_name": given,
            "date_of_birth": born, **HOME, **other}  # fmt: skip


def _levels(*records: dict) -> dict[str, str]:
    """The field levels of the one scored pair of two records (linked or in review)."""
    result = link_records(pd.DataFrame(list(records)))
    pairs = pd.concat([result.links, result.review])
    assert len(pairs) == 1
    return {f: v["level"] for f, v in json.loads(pairs["evidence"].iloc[0])["fields"].items()}


def _persons(*records: dict) -> int:
    return link(pd.DataFrame(list(records)))["person_id"].nunique()


def test_one_record_links_without_a_warning() -> None:
    # numpy warned "Mean of empty slice" (no random pairs to estimate presence from).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = link(pd.DataFrame([_person("gp", "GRACE", "1984-06-02")]))
    assert len(out) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1984/06/02", "2 June 1984"),  # year first with slashes (East Asia); a month name
        ("1984.06.02", "02-JUN-1984"),  # an Oracle or SAS export
        ("June 2, 1984", "02/06/84"),  # American words; a two-digit year
    ],
)
def test_dates_in_other_shapes_are_read(left: str, right: str) -> None:
    # Before, these read as no date of birth at all, silently.
    levels = _levels(_person("gp", "GRACE", left), _person("housing", "GRACE", right))
    assert levels["date_of_birth"] == "exact"


def test_dates_that_cannot_be_read_are_warned_of_without_values(caplog) -> None:
    records = [_person("gp", "GRACE", "1984"), _person("housing", "GRACE", "Juni 1984")]
    with caplog.at_level(logging.WARNING, logger="care_etl.linkage"):
        link(pd.DataFrame(records))
    said = [r.getMessage() for r in caplog.records if "dates of birth" in r.getMessage()]
    assert len(said) == 1 and "2 dates of birth" in said[0] and "first at row 0" in said[0]
    assert "1984" not in said[0] and "Juni" not in said[0]


def test_a_year_first_two_digit_date_does_not_turn_the_column_month_first() -> None:
    # "80-03-04" is not day 80: it is left unread, and the American 03/14/1980 beside it
    # still shows the column month first.
    records = [
        {"source": "a", "source_record_id": i, "given_name": g, "family_name": "LEE",
         "date_of_birth": d}
        for i, (g, d) in enumerate([("ANN", "03/14/1980"), ("ANN", "1980-03-14"),
                                    ("BO", "80-03-04")])
    ]  # fmt: skip
    assert _levels(*records[:2])["date_of_birth"] == "exact"
    out = link(pd.DataFrame(records))
    assert out["person_id"].iloc[0] == out["person_id"].iloc[1] != out["person_id"].iloc[2]


@pytest.mark.parametrize(("left", "right"), [("02134", 2134), ("02134-1234", "02134")])
def test_a_zip_code_read_as_a_number_or_with_four_digits_more_agrees(left, right) -> None:
    # A spreadsheet drops a ZIP code's leading zero (02134 -> 2134); one system keeps the
    # ZIP+4, another not.
    ann = {"given_name": "ANN", "family_name": "LEE", "date_of_birth": "1970-01-02"}
    levels = _levels(
        {"source": "a", "source_record_id": 1, **ann, "postcode": left},
        {"source": "b", "source_record_id": 1, **ann, "postcode": right},
    )
    assert levels["postcode"] == "exact"  # was one_typo, and different


def test_an_nhs_number_written_back_from_a_float_column_links() -> None:
    # pandas writes an integer column with blanks as floats: 9434765919.0 in the CSV.
    records = [
        {"source": "a", "source_record_id": 1, "given_name": "ANN", "nhs_number": "9434765919.0"},
        {"source": "b", "source_record_id": 1, "given_name": "BO", "nhs_number": 9434765919},
    ]
    assert _persons(*records) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [(("SARAH", "F"), ("SAVANNAH", "F")), (("ALEXANDER", "M"), ("ALEXANDRA", "F"))],
    ids=["sisters named alike", "brother and sister named alike"],
)
def test_twins_named_alike_stay_apart(first: tuple, second: tuple) -> None:
    # Neither pair of names is one typing error apart: two names, as twins are given.
    # Before, the model's weight of the shared date of birth and home merged both pairs.
    (one, one_sex), (other, other_sex) = first, second
    twins = [_person("gp", one, "2010-05-06", sex=one_sex),
             _person("housing", other, "2010-05-06", sex=other_sex)]  # fmt: skip
    result = link_records(pd.DataFrame(twins))
    assert result.assignments["person_id"].nunique() == 2
    assert json.loads(result.review["evidence"].iloc[0])["capped"] == "twin"


@pytest.mark.parametrize(
    ("first", "second"),
    [("ISABELLA", "lsabeIla"), ("Миша", "Мица"), ("CAITRIN", "CANTLIN")],
    ids=[
        "a scan reading l for I",
        "a typo in Cyrillic (two letters in Latin)",
        "Caitlin mistyped on each record",
    ],
)
def test_one_name_misread_or_mistyped_is_still_one_person(first: str, second: str) -> None:
    # The names are "fuzzy", not "close", but one name: a scan's l for I, one Cyrillic key
    # (ц for ш) that reads as two Latin letters (MITSA for MISHA), or a typo on each record.
    assert _persons(_person("gp", first, "2010-05-06"), _person("paper", second, "2010-05-06")) == 1


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_record_id_is_refused(blank: str) -> None:
    # A blank cell read as "" is no id: two of them in a source would be one record twice.
    records = pd.DataFrame([_person("gp", "GRACE", "1984-06-02"), _person("gp", "ADA", "1990")])
    records["source_record_id"] = ["7", blank]
    with pytest.raises(CareEtlError, match="column 'source_record_id' is empty at row 1$"):
        link(records)


def test_input_of_the_wrong_shape_is_refused_in_one_line() -> None:
    arrays = pd.DataFrame([_person("gp", "GRACE", "1984-06-02"), _person("hb", "ADA", "1990")])
    arrays["given_name"] = pd.Series([np.array(["GRACE"]), "ADA"], dtype=object)
    with pytest.raises(CareEtlError, match="column 'given_name' holds a list or mapping at row 0"):
        link(arrays)  # was a TypeError from pandas: unhashable type 'numpy.ndarray'
    levels = pd.DataFrame({("source", ""): ["gp"], ("source_record_id", ""): ["1"]})
    with pytest.raises(CareEtlError, match="several header levels"):
        link(levels)  # was a KeyError from pandas


@pytest.mark.parametrize(("left", "right"), [("Mujer", "F"), ("w", "female"), ("Hombre", "M")])
def test_sex_in_other_languages_agrees(left: str, right: str) -> None:
    # Spanish "Mujer" read by its first letter was a man; German "w" and "Hombre" nothing.
    levels = _levels(
        _person("gp", "GRACE", "1984-06-02", sex=left),
        _person("housing", "GRACE", "1984-06-02", sex=right),
    )
    assert levels["sex"] == "agree"


_OAK = {"address": "12 OAK ROAD", "postcode": "30301"}


@pytest.mark.parametrize(
    ("father", "son"),
    [
        ({"given_name": "John", "family_name": "Smith"}, {"given_name": "John", "family_name": "Smith Jr"}),
        ({"given_name": "John", "family_name": "Smith Sr."}, {"given_name": "John", "family_name": "Smith Jr."}),
        ({"full_name": "John Smith II"}, {"full_name": "John Smith III"}),
    ],
    ids=["one suffix", "senior and junior", "II and III in full names"],
)  # fmt: skip
def test_a_father_and_son_told_apart_by_a_suffix_alone_are_not_merged(
    father: dict, son: dict
) -> None:
    # No date of birth to tell them apart, one home: the model linked them at 0.999.
    records = [
        {"source": "a", "source_record_id": 1, **father, **_OAK},
        {"source": "b", "source_record_id": 1, **son, **_OAK},
    ]
    result = link_records(pd.DataFrame(records))
    assert result.assignments["person_id"].nunique() == 2
    assert json.loads(result.review["evidence"].iloc[0])["capped"] == "father_son"


def test_a_suffix_left_off_with_the_same_date_of_birth_is_one_person() -> None:
    records = [
        {"source": "a", "source_record_id": 1, "given_name": "John", "family_name": "Smith Jr",
         "date_of_birth": "1975-04-12", **_OAK},
        {"source": "b", "source_record_id": 1, "given_name": "John", "family_name": "Smith",
         "date_of_birth": "1975-04-12", **_OAK},
    ]  # fmt: skip
    assert _levels(*records)["family_name"] == "exact"  # the suffix is not a surname
    assert link(pd.DataFrame(records))["person_id"].nunique() == 1


def test_the_result_keeps_the_input_index() -> None:
    # A filtered or sorted frame: assigning the person ids back aligns on the index, and
    # gave NaN for every record when the result came back numbered 0..n-1.
    records = pd.DataFrame(
        [_person("gp", "GRACE", "1984-06-02"), _person("housing", "GRACE", "1984-06-02")],
        index=[101, 7],
    )
    records["person_id"] = link(records)["person_id"]
    assert records["person_id"].notna().all() and records["person_id"].nunique() == 1
    repeated = records.set_axis([5, 5])
    assert link(repeated).index.tolist() == [5, 5]


def _crowd(n: int) -> list[dict]:
    """n people of distinct names and birthdays across a year, at distinct homes."""
    return [
        {"source": "crowd", "source_record_id": f"c{i}", "given_name": f"Ann{chr(65 + i % 26)}",
         "family_name": f"Lee{chr(65 + i // 26 % 26)}{chr(65 + i // 676)}",
         "date_of_birth": f"19{50 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
         "address": f"{i} Long Road", "postcode": f"L{i % 9} 1AB"}
        for i in range(n)
    ]  # fmt: skip


def test_records_of_placeholder_names_and_dates_are_not_one_person(caplog) -> None:
    # An extract's "UNKNOWN UNKNOWN, 01/01/1900" for records it could not name: 300 such
    # records were one person.
    unknown = [
        {"source": "a", "source_record_id": f"u{i}", "given_name": "UNKNOWN",
         "family_name": "Unknown", "date_of_birth": "01/01/1900", "postcode": "ZZ9 9ZZ"}
        for i in range(300)
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="care_etl.linkage"):
        result = link_records(pd.DataFrame(_crowd(600) + unknown))
    assert result.assignments["person_id"].iloc[-300:].nunique() == 300
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "300 records share 1 dates of birth" in said and "1900" not in said


def test_a_placeholder_date_of_birth_is_compared_as_missing() -> None:
    # A person's record given the placeholder, their other record the real date: the
    # dates "differed" and held the two apart.
    people = crowd(400).drop(columns="person")
    stand_ins = people.iloc[:45].assign(
        source="other", date_of_birth=pd.Timestamp("1900-01-01"), nhs_number=None
    )
    grace = [_person("gp", "GRACE", "1984-06-02"), _person("housing", "GRACE", "1900-01-01")]
    result = link_records(with_records(pd.concat([people, stand_ins]), grace))
    pair = result.links[result.links["left_source_record_id"] == "1"]
    assert json.loads(pair["evidence"].iloc[0])["fields"]["date_of_birth"]["level"] == "missing"
    assert result.assignments["person_id"].iloc[-1] == result.assignments["person_id"].iloc[-2]


def test_many_estimated_first_of_january_births_are_not_placeholders(caplog) -> None:
    # Dates of birth assigned on arrival (a year known alone, written 01/01/YYYY) for 60
    # people born in each of five years: each 1st of January held 60 records, 20 times a
    # date's usual count, and read as a placeholder: the estimated level never spoke.
    estimated = [
        {"source": source, "source_record_id": f"e{year}{i}", "given_name": f"Omar{i}",
         "family_name": f"Haddad{year}", "date_of_birth": f"01/01/{year}",
         "address": f"{i} Dock Street", "postcode": "E1 8AA"}
        for year in range(1993, 1998) for i in range(60) for source in ("gp", "housing")
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="care_etl.linkage"):
        result = link_records(pd.DataFrame(_crowd(600) + estimated))
    assert "placeholders" not in " ".join(r.getMessage() for r in caplog.records)
    pairs = pd.concat([result.links, result.review])
    ours = pairs[pairs["left_source_record_id"].str.startswith("e")]
    levels = {json.loads(e)["fields"]["date_of_birth"]["level"] for e in ours["evidence"]}
    assert "missing" not in levels


@pytest.mark.parametrize("titled", ["Mr John", "Dr. John", "HERR John"])
def test_a_title_in_the_forename_field_is_not_another_name(titled: str) -> None:
    # "MR JOHN" against "JOHN" read as two forenames: the twin rule sent it to review.
    levels = _levels(_person("gp", titled, "1975-04-12"), _person("housing", "John", "1975-04-12"))
    assert levels["given_name"] == "exact"


def test_a_source_coding_sex_as_h_and_m_means_a_woman_by_m() -> None:
    # Spanish hombre / mujer: every woman of such a source read as a man, against the F of
    # the other source. The other source's own M still means a man.
    spanish = [
        _person("es", "LUCIA", "1975-04-12", sex="M"),
        _person("es", "JORGE", "1960-01-30", sex="H", source_record_id="2"),
    ]
    other = [
        _person("uk", "LUCIA", "1975-04-12", sex="F"),
        _person("uk", "JORGE", "1960-01-30", sex="M", source_record_id="2"),
    ]
    result = link_records(pd.DataFrame(spanish + other))
    pairs = pd.concat([result.links, result.review])
    levels = {json.loads(e)["fields"]["sex"]["level"] for e in pairs["evidence"]}
    assert len(pairs) == 2 and levels == {"agree"}
