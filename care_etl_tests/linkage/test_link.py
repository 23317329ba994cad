"""care_etl.linkage on a synthetic crowd plus the records each test is about."""

from __future__ import annotations

import hashlib
import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from care_etl.errors import CareEtlError
from care_etl.linkage import LinkageResult, LinkageSettings, link, link_records
from care_etl_tests.linkage.people import crowd, nhs_numbers, with_records

NHS_A, NHS_B, NHS_C, NHS_D = nhs_numbers(np.random.default_rng(99), 4)

#: The records the tests look at, added to the crowd (ids starting with "T" are ours).
CASES = [
    # Alone: nobody else shares the name, date of birth or postcode.
    dict(source="paper", source_record_id="T-alone", given_name="Zebedee",
         family_name="Quartermaine", date_of_birth="1931-12-25", sex="M", postcode="N4 1XX"),
    # Same valid NHS number, everything else different.
    dict(source="health", source_record_id="T-nhs-1", given_name="Ruth", family_name="Abbott",
         date_of_birth="1977-04-01", sex="F", postcode="E9 5AB", nhs_number=NHS_A),
    dict(source="housing", source_record_id="T-nhs-2", given_name="Rachel",
         family_name="Maddox", date_of_birth="1979-09-14", sex="F", postcode="N1 2CD",
         nhs_number=NHS_A),
    # A clear probabilistic match: no NHS number.
    dict(source="housing", source_record_id="T-clear-1", given_name="Ada",
         family_name="Quennell", date_of_birth="1940-05-05", sex="F", postcode="E5 8AA"),
    dict(source="social_care", source_record_id="T-clear-2", given_name="ADA",
         family_name="QUENNELL", date_of_birth="1940-05-05", sex="F", postcode="E5 8AA"),
    # A typo in the forename and day and month swapped.
    dict(source="paper", source_record_id="T-typo-1", given_name="Catherine",
         family_name="Oakhampton", date_of_birth="1961-03-07", sex="F", postcode="E8 3QP"),
    dict(source="health", source_record_id="T-typo-2", given_name="Katherine",
         family_name="Oakhampton", date_of_birth="1961-07-03", sex="F", postcode="E8 3QP"),
    # Identical but for their valid NHS numbers; and a record between them with none.
    dict(source="health", source_record_id="T-differ-1", given_name="Evan",
         family_name="Pritchard", date_of_birth="1988-10-20", sex="M", postcode="E2 7RT",
         nhs_number=NHS_B),
    dict(source="housing", source_record_id="T-differ-2", given_name="Evan",
         family_name="Pritchard", date_of_birth="1988-10-20", sex="M", postcode="E2 7RT",
         nhs_number=NHS_C),
    dict(source="social_care", source_record_id="T-differ-3", given_name="Evan",
         family_name="Pritchard", date_of_birth="1988-10-20", sex="M", postcode="E2 7RT"),
    # Borderline: a surname spelt otherwise, one digit of the date, other postcode, no sex.
    dict(source="health", source_record_id="T-border-1", given_name="Nora",
         family_name="Featherstone", date_of_birth="1955-06-30", sex="F", postcode="E1 6AN"),
    dict(source="paper", source_record_id="T-border-2", given_name="Nora",
         family_name="Fetherston", date_of_birth="1955-08-30", postcode="N16 0PP"),
    # Twins: surname, date of birth and address shared, other forenames.
    dict(source="health", source_record_id="T-twin-1", given_name="Imogen",
         family_name="Lindqvist", date_of_birth="1992-04-04", sex="F", postcode="E8 1AA"),
    dict(source="housing", source_record_id="T-twin-2", given_name="Beatrix",
         family_name="Lindqvist", date_of_birth="1992-04-04", sex="F", postcode="E8 1AA"),
    # Babies recorded before they were named, of one surname, date of birth and address:
    # one baby twice, or twins? Two Twin records (the digit is no name), and a Baby.
    dict(source="health", source_record_id="T-newborn-1", given_name="Twin 1",
         family_name="Okonkwo", date_of_birth="2025-03-10", sex="F", postcode="E5 0LT"),
    dict(source="housing", source_record_id="T-newborn-2", given_name="Twin 2",
         family_name="Okonkwo", date_of_birth="2025-03-10", sex="F", postcode="E5 0LT"),
    dict(source="social_care", source_record_id="T-newborn-3", given_name="Baby",
         family_name="Okonkwo", date_of_birth="2025-03-10", sex="F", postcode="E5 0LT"),
    # Father and son of one name at one address, other dates of birth.
    dict(source="health", source_record_id="T-father", given_name="Rupert",
         family_name="Ashdown", date_of_birth="1950-01-12", sex="M", postcode="N1 1AA"),
    dict(source="housing", source_record_id="T-son", given_name="Rupert",
         family_name="Ashdown", date_of_birth="1978-06-03", sex="M", postcode="N1 1AA"),
    # A short form of the forename, everything else the same.
    dict(source="health", source_record_id="T-short-1", given_name="William",
         family_name="Thistlewood", date_of_birth="1948-11-02", sex="M", postcode="E9 7QT"),
    dict(source="paper", source_record_id="T-short-2", given_name="Bill",
         family_name="Thistlewood", date_of_birth="1948-11-02", sex="M", postcode="E9 7QT"),
    # Day and month swapped, everything else the same.
    dict(source="health", source_record_id="T-swap-1", given_name="Harriet",
         family_name="Pemberton", date_of_birth="1966-04-09", sex="F", postcode="N16 5RB"),
    dict(source="social_care", source_record_id="T-swap-2", given_name="Harriet",
         family_name="Pemberton", date_of_birth="1966-09-04", sex="F", postcode="N16 5RB"),
    # From abroad: postcodes that are not British.
    dict(source="paper", source_record_id="T-abroad-1", given_name="Jean", family_name="Dupuis",
         date_of_birth="1972-02-29", sex="M", postcode="75008"),
    dict(source="health", source_record_id="T-abroad-2", given_name="Jean",
         family_name="Dupuis", date_of_birth="1972-02-29", sex="M", postcode="75008"),
    dict(source="housing", source_record_id="T-abroad-3", given_name="Siobhan",
         family_name="Ni Bhriain", date_of_birth="1990-08-08", sex="F", postcode="D02 X285"),
]  # fmt: skip


#: The father's and son's name and address, without a date of birth: either of them.
EITHER = dict(source="paper", source_record_id="T-either", given_name="Rupert",
              family_name="Ashdown", sex="M", postcode="N1 1AA")  # fmt: skip


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return crowd()


@pytest.fixture(scope="module")
def records(people: pd.DataFrame) -> pd.DataFrame:
    return with_records(people.drop(columns="person"), CASES)


@pytest.fixture(scope="module")
def result(records: pd.DataFrame) -> LinkageResult:
    return link_records(records)


def _person(result: LinkageResult, record_id: str) -> str:
    assignments = result.assignments.set_index("source_record_id")
    return assignments.loc[record_id, "person_id"]


def _pair(frame: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    ids = frame[["left_source_record_id", "right_source_record_id"]]
    return frame[ids.isin([a, b]).all(axis=1)]


def _evidence(frame: pd.DataFrame, a: str, b: str) -> dict:
    rows = _pair(frame, a, b)
    assert len(rows) == 1
    return json.loads(rows["evidence"].iloc[0])


def _expected_id(source: str, record_id: str) -> str:
    return "P" + hashlib.sha256(f"{source}|{record_id}".encode()).hexdigest()[:12].upper()


def test_one_row_out_per_record_in_and_in_order(records: pd.DataFrame) -> None:
    shuffled = records.sample(frac=1.0, random_state=3)
    shuffled.index = shuffled.index * 10 + 7  # an index that is neither 0..n nor sorted
    out = link(shuffled)
    assert list(out.columns) == ["source", "source_record_id", "person_id"]
    assert len(out) == len(shuffled)
    assert out["source"].tolist() == shuffled["source"].tolist()
    assert out["source_record_id"].tolist() == shuffled["source_record_id"].tolist()
    assert out["person_id"].str.fullmatch(r"P[0-9A-F]{12}").all()


def test_a_record_alone_gets_its_own_id(result: LinkageResult) -> None:
    person = _person(result, "T-alone")
    assert person == _expected_id("paper", "T-alone")
    assert (result.assignments["person_id"] == person).sum() == 1
    row = result.assignments.set_index("source_record_id").loc["T-alone"]
    assert row["link_type"] == "single"
    assert pd.isna(row["match_probability"])


def test_the_same_valid_nhs_number_links(result: LinkageResult) -> None:
    assert _person(result, "T-nhs-1") == _person(result, "T-nhs-2")
    rows = result.assignments.set_index("source_record_id").loc[["T-nhs-1", "T-nhs-2"]]
    assert (rows["link_type"] == "nhs_number").all()
    assert (rows["match_probability"] == 1.0).all()
    link_row = _pair(result.links, "T-nhs-1", "T-nhs-2")
    assert link_row["link_type"].tolist() == ["nhs_number"]
    assert _evidence(result.links, "T-nhs-1", "T-nhs-2")["rule"] == "nhs_number"


def test_a_clear_match_without_nhs_number_links(result: LinkageResult) -> None:
    assert _person(result, "T-clear-1") == _person(result, "T-clear-2")
    rows = result.assignments.set_index("source_record_id").loc[["T-clear-1", "T-clear-2"]]
    assert (rows["link_type"] == "probabilistic").all()
    assert (rows["match_probability"] >= 0.95).all()
    fields = _evidence(result.links, "T-clear-1", "T-clear-2")["fields"]
    assert {f: fields[f]["level"] for f in ("given_name", "family_name", "date_of_birth")} == {
        "given_name": "exact",
        "family_name": "exact",
        "date_of_birth": "exact",
    }
    assert fields["postcode"]["level"] == "exact"


def test_a_typo_with_day_and_month_swapped_reaches_review_or_link(result: LinkageResult) -> None:
    both = pd.concat([result.links, result.review])
    fields = _evidence(both, "T-typo-1", "T-typo-2")["fields"]
    assert fields["date_of_birth"]["level"] == "day_month_swapped"
    assert fields["given_name"]["level"] in {"close", "fuzzy"}
    assert fields["family_name"]["level"] == "exact"
    assert fields["postcode"]["level"] == "exact"
    assert fields["date_of_birth"]["weight"] > 0  # a swap is evidence for, not against
    linked = len(_pair(result.links, "T-typo-1", "T-typo-2")) == 1
    same = _person(result, "T-typo-1") == _person(result, "T-typo-2")
    assert linked == same


def test_different_valid_nhs_numbers_never_merge(result: LinkageResult) -> None:
    assert _person(result, "T-differ-1") != _person(result, "T-differ-2")
    assert _pair(result.links, "T-differ-1", "T-differ-2").empty
    # Two valid NHS numbers settle it: the pair is not even sent to review.
    assert _pair(result.review, "T-differ-1", "T-differ-2").empty
    # The record with no NHS number fits both equally: it joins neither, and a person
    # decides, with the reason in the evidence.
    third = _person(result, "T-differ-3")
    assert [third == _person(result, f"T-differ-{i}") for i in (1, 2)].count(True) == 0
    for i in (1, 2):
        assert _evidence(result.review, f"T-differ-{i}", "T-differ-3")["capped"] == "ambiguous"


def test_different_valid_nhs_numbers_never_merge_whatever_the_threshold(
    records: pd.DataFrame,
) -> None:
    eager = link_records(records, LinkageSettings(auto_link_threshold=1e-9, review_threshold=1e-9))
    assert _person(eager, "T-differ-1") != _person(eager, "T-differ-2")
    persons = eager.assignments.merge(records[["source", "source_record_id", "nhs_number"]])
    numbers = persons.dropna(subset=["nhs_number"]).groupby("person_id")["nhs_number"].nunique()
    assert (numbers == 1).all()


@pytest.mark.parametrize(
    ("a", "b", "rule"),
    [("T-twin-1", "T-twin-2", "twin"), ("T-father", "T-son", "father_son")],
)
def test_twins_and_father_and_son_stay_apart(
    records: pd.DataFrame, a: str, b: str, rule: str
) -> None:
    # Even when the model alone would link them, the rule keeps them apart (the threshold
    # is low, not nil: strangers born within a year of each other are not links to chain).
    eager = link_records(records, LinkageSettings(auto_link_threshold=1e-3, review_threshold=1e-3))
    assert _person(eager, a) != _person(eager, b)
    assert _pair(eager.links, a, b).empty
    if rule == "twin":  # a person decides whether these are twins or one person
        assert _evidence(eager.review, a, b)["capped"] == "twin"
    else:  # one name born years apart is settled: two people, not worth a reviewer's time
        assert _pair(eager.review, a, b).empty
    # Without the rule the model alone would have linked them.
    no_rules = LinkageSettings(
        auto_link_threshold=1e-3, review_threshold=1e-3, twin_rule=False, father_son_years=0
    )
    unruled = link_records(records, no_rules)
    assert _person(unruled, a) == _person(unruled, b)


@pytest.mark.parametrize(("son_born", "apart"), [("1980-01-12", True), ("1951-01-12", False)])
def test_a_year_one_digit_out_by_a_generation_goes_to_a_person(
    records: pd.DataFrame, son_born: str, apart: bool
) -> None:
    """A son born on his father's birthday, 30 years on: 1950 and 1980 are one digit apart,
    read as a typo of one person's date, and the two were one person. Which it is, a
    person decides. A digit out by a year (1950 and 1951) is still a typo, and links."""
    changed = records.copy()
    changed.loc[changed["source_record_id"] == "T-son", "date_of_birth"] = pd.Timestamp(son_born)
    result = link_records(changed)
    assert (_person(result, "T-father") != _person(result, "T-son")) is apart
    if apart:
        evidence = _evidence(result.review, "T-father", "T-son")
        assert evidence["capped"] == "father_son"
        assert evidence["fields"]["date_of_birth"]["level"] == "one_typo"


def test_a_record_matching_a_father_and_his_son_alike_joins_neither(records: pd.DataFrame) -> None:
    """A form with their name and address but no date of birth: linked to both, it made one
    person of father and son; linked to whichever came first, it would be a guess."""
    result = link_records(with_records(records, [EITHER]))
    assert len({_person(result, r) for r in ("T-father", "T-son", "T-either")}) == 3
    for other in ("T-father", "T-son"):
        assert _evidence(result.review, "T-either", other)["capped"] == "either_of_two"


@pytest.mark.parametrize(("a", "b"), combinations(("T-newborn-1", "T-newborn-2", "T-newborn-3"), 2))
def test_babies_not_yet_named_go_to_a_person(result: LinkageResult, a: str, b: str) -> None:
    # Records that agree on everything the model reads, yet may be twins.
    assert _person(result, a) != _person(result, b)
    assert _pair(result.links, a, b).empty
    assert _evidence(result.review, a, b)["capped"] == "unnamed_newborn"


def test_a_baby_named_since_links_on_its_nhs_number(records: pd.DataFrame) -> None:
    named = records.copy()
    babies = named["source_record_id"].isin(["T-newborn-1", "T-newborn-3"])
    named.loc[babies, "nhs_number"] = NHS_D
    named.loc[named["source_record_id"] == "T-newborn-3", "given_name"] = "Adaeze"
    linked = link_records(named)
    assert _person(linked, "T-newborn-1") == _person(linked, "T-newborn-3")
    assert _person(linked, "T-newborn-2") != _person(linked, "T-newborn-1")


@pytest.mark.parametrize(
    ("a", "b", "field", "level"),
    [
        ("T-short-1", "T-short-2", "given_name", "short_form"),
        ("T-swap-1", "T-swap-2", "date_of_birth", "day_month_swapped"),
    ],
)
def test_a_short_form_or_a_day_month_swap_links(
    result: LinkageResult, a: str, b: str, field: str, level: str
) -> None:
    assert _person(result, a) == _person(result, b)
    fields = _evidence(result.links, a, b)["fields"]
    assert fields[field]["level"] == level
    assert fields[field]["weight"] > 0


def test_dates_as_iso_text_link_the_same(records: pd.DataFrame, result: LinkageResult) -> None:
    as_text = records.assign(date_of_birth=records["date_of_birth"].dt.strftime("%Y-%m-%d"))
    pd.testing.assert_series_equal(link(as_text)["person_id"], result.assignments["person_id"])


@pytest.mark.parametrize("written", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"])
def test_dates_written_day_or_month_first_link_as_iso_dates(
    records: pd.DataFrame, result: LinkageResult, written: str
) -> None:
    """Numbers with the year last are read day first (British), or month first when the
    dates show it (a second number over 12, a first never): an American export. One
    source writes them so, the others in ISO form: its records must read the same dates."""
    dates, here = records["date_of_birth"], records["source"] == "housing"
    as_text = records.assign(
        date_of_birth=dates.dt.strftime(written).where(here, dates.dt.strftime("%Y-%m-%d"))
    )
    assert (dates[here].dt.day > 12).any()  # the month-first case shows
    found = link_records(as_text)
    pd.testing.assert_series_equal(found.assignments["person_id"], result.assignments["person_id"])
    pd.testing.assert_frame_equal(_by_pair(found.links), _by_pair(result.links), rtol=1e-9)


def test_a_full_name_alone_is_split_into_given_and_family_names(
    records: pd.DataFrame, result: LinkageResult
) -> None:
    """A caller holding one name field per record (as some sources come) gets the links
    that the split names give: the names are split as standardisation splits them."""
    one_field = records["source"] == "housing"
    full = records["given_name"] + " " + records["family_name"]
    mixed = records.assign(full_name=full.where(one_field))
    mixed.loc[one_field, ["given_name", "family_name"]] = None
    pd.testing.assert_series_equal(link(mixed)["person_id"], result.assignments["person_id"])


def test_nhs_numbers_with_hyphens_and_sex_as_nhs_codes_link_the_same(
    records: pd.DataFrame, result: LinkageResult
) -> None:
    here = records["source"] == "housing"
    nhs = records["nhs_number"].str.replace(r"^(\d{3})(\d{3})(\d{4})$", r"\1-\2-\3", regex=True)
    sex = records["sex"].map({"M": "1", "F": "2"})
    written = records.assign(
        nhs_number=nhs.where(here, records["nhs_number"]), sex=sex.where(here, records["sex"])
    )
    assert written.loc[here, "nhs_number"].str.contains("-").any()
    found = link_records(written)
    pd.testing.assert_series_equal(found.assignments["person_id"], result.assignments["person_id"])
    pd.testing.assert_frame_equal(_by_pair(found.links), _by_pair(result.links), rtol=1e-9)


#: Latin letters to Cyrillic ones, to write the same people in another script.
_CYRILLIC = str.maketrans(
    "abvgdezijklmnoprstufhcwyxqABVGDEZIJKLMNOPRSTUFHCWYXQ",
    "абвгдезийклмнопрстуфхцвыксАБВГДЕЗИЙКЛМНОПРСТУФХЦВЫКС",
)


def test_names_in_another_script_link_as_latin_ones_do(
    records: pd.DataFrame, result: LinkageResult
) -> None:
    """Every name written in Cyrillic letters: the same people. Before names were read as
    Latin letters, they were empty keys, and FEBRL4 so written linked with F1 0.86."""
    cyrillic = records.assign(
        **{
            column: records[column].map(lambda v: v.translate(_CYRILLIC), na_action="ignore")
            for column in ("given_name", "family_name")
        }
    )
    assert not cyrillic["family_name"].dropna().str.contains("[A-Za-z]").any()
    found = link_records(cyrillic)
    # But the unnamed babies: "Twin" so written reads back as "Tvin", a name like any other.
    named = ~records["source_record_id"].str.startswith("T-newborn")
    pd.testing.assert_series_equal(
        found.assignments["person_id"][named], result.assignments["person_id"][named]
    )
    # One record in Latin letters, its match in Cyrillic ones, as two services wrote them.
    mixed = records.copy()
    clear = mixed["source_record_id"] == "T-clear-2"
    mixed.loc[clear, ["given_name", "family_name"]] = ["Ада", "Квеннелл"]
    mixed_result = link_records(mixed)
    assert _person(mixed_result, "T-clear-1") == _person(mixed_result, "T-clear-2")


def test_people_are_the_components_of_the_automatic_links(result: LinkageResult) -> None:
    keys = result.assignments["source"] + "|" + result.assignments["source_record_id"]
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    for row in result.links.itertuples():
        a = find(f"{row.left_source}|{row.left_source_record_id}")
        b = find(f"{row.right_source}|{row.right_source_record_id}")
        parent[a] = b
    components = [find(k) for k in keys]
    grouped = pd.Series(components).groupby(result.assignments["person_id"].to_numpy())
    assert (grouped.nunique() == 1).all()
    assert pd.Series(components).nunique() == result.assignments["person_id"].nunique()


def test_a_review_band_pair_stays_apart(records: pd.DataFrame) -> None:
    loose = link_records(records, LinkageSettings(review_threshold=1e-12))
    p = _evidence(loose.review, "T-border-1", "T-border-2")["match_probability"]
    assert 0.0 < p < 0.95
    band = LinkageSettings(auto_link_threshold=(1 + p) / 2, review_threshold=p / 2)
    result = link_records(records, band)
    assert len(_pair(result.review, "T-border-1", "T-border-2")) == 1
    assert _pair(result.links, "T-border-1", "T-border-2").empty
    assert _person(result, "T-border-1") != _person(result, "T-border-2")
    assert (result.review["match_probability"] >= band.review_threshold).all()


def test_the_evidence_adds_up(result: LinkageResult) -> None:
    pairs = pd.concat([result.links, result.review])
    assert len(pairs) > 50
    for row in pairs.itertuples():
        evidence = json.loads(row.evidence)
        weights = [f["weight"] for f in evidence["fields"].values()]
        total = evidence["prior_weight"] + sum(weights)
        assert evidence["total_weight"] == pytest.approx(total, abs=1e-9)
        w = evidence["total_weight"]
        assert evidence["match_probability"] == pytest.approx(2**w / (1 + 2**w), abs=1e-12)
        assert row.match_weight == pytest.approx(w, abs=1e-9)
        if row.link_type == "probabilistic":
            assert row.match_probability == pytest.approx(evidence["match_probability"])
        for field in evidence["fields"].values():
            if field["level"] == "missing":
                assert field["weight"] == 0.0
            if field.get("tf_adjustment"):  # an exact name: its level's weight + adjustment
                assert field["level"] == "exact"


def test_the_waterfall_adds_up_exactly(result: LinkageResult) -> None:
    # Read in order, prior then each field, the steps land exactly on the total.
    for row in pd.concat([result.links, result.review]).itertuples():
        evidence = json.loads(row.evidence)
        total = evidence["prior_weight"]
        for step in evidence["fields"].values():
            total += step["weight"]
        assert total == evidence["total_weight"]


def test_parameters_are_estimated_per_field_level(result: LinkageResult) -> None:
    params = result.parameters.dropna(subset=["m"])
    assert set(params["field"]) == {
        "nhs_number",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "postcode",
        "moved_together",  # added after the first round of links (see linker.moved_together)
    }
    sums = params.groupby("field")[["m", "u"]].sum()
    assert np.allclose(sums.to_numpy(), 1.0)
    exact = params.set_index(["field", "level"])
    for field in ("given_name", "family_name", "date_of_birth", "postcode"):
        assert exact.loc[(field, "exact"), "weight"] > 3  # agreement is evidence of a match
    assert exact.loc[("date_of_birth", "different"), "weight"] < -3
    assert 0 < result.prior_probability < 0.01
    assert isinstance(result.candidate_pairs, int) and result.candidate_pairs > len(CASES)


def test_the_date_of_birth_is_estimated_without_nhs_numbers_or_postcodes(
    people: pd.DataFrame,
) -> None:
    """Every training rule holds the date of birth equal, so without NHS numbers or
    postcodes its m comes from pairs blocked on the names' sounds; left at EM's starting
    guess (0.9 for exact), a date typed differently all but ruled a pair out. With
    nothing but the date of birth (and sex) left free by that rule, EM could split its
    pairs any way, and the starting guess stays."""
    crowd = people.drop(columns=["person", "nhs_number"])
    addresses = crowd.rename(columns={"postcode": "address"})  # 20% of records moved
    result = link_records(addresses)
    assert "names_sound" in set(result.training["rule"])
    m = result.parameters.set_index(["field", "level"])["m"]
    assert m[("date_of_birth", "exact")] > 0.97  # the crowd's dates of birth never vary
    assert m[("given_name", "exact")] < 0.97  # the crowd's forenames carry typos
    assert "names_sound" not in set(link_records(crowd).training["rule"])  # postcodes
    names_and_dates = crowd.drop(columns="postcode")
    assert "names_sound" not in set(link_records(names_and_dates).training["rule"])


def test_dates_of_birth_weeks_out_count_as_far_as_the_data_show(
    people: pd.DataFrame, result: LinkageResult
) -> None:
    """A source that writes dates of birth weeks out (a registration date, a guess) shows
    in the data: "within_a_year" is then estimated as evidence for, and those records link
    or go to a person (one name born in two calendar years is the father and son rule's
    to hold, for review); in the crowd, whose dates never vary, it is evidence against."""
    rng = np.random.default_rng(5)
    shifted = people.copy()
    pick = shifted.duplicated("person").to_numpy() & (rng.random(len(shifted)) < 0.4)
    weeks = pd.to_timedelta(rng.integers(20, 120, int(pick.sum())), "D")
    shifted.loc[pick, "date_of_birth"] = shifted.loc[pick, "date_of_birth"] + weeks

    def within_a_year(linked: LinkageResult) -> float:
        weights = linked.parameters.set_index(["field", "level"])["weight"]
        return weights[("date_of_birth", "within_a_year")]

    assert within_a_year(result) < 0  # the crowd's dates never vary
    shifted_result = link_records(shifted.drop(columns=["person", "nhs_number"]))
    assert within_a_year(shifted_result) > 2
    truth = _same_person_pairs(shifted["person"].to_numpy())
    found = _same_person_pairs(shifted_result.assignments["person_id"].to_numpy())
    position = {key: i for i, key in enumerate(shifted["source_record_id"])}
    review = shifted_result.review
    reviewed = {
        tuple(sorted((position[a], position[b])))
        for a, b in zip(
            review["left_source_record_id"], review["right_source_record_id"], strict=True
        )
    }
    moved_dates = {(a, b) for a, b in truth if pick[a] != pick[b]}
    reached = (found | reviewed) & moved_dates
    assert len(reached) / len(moved_dates) >= 0.9  # 0.72 with such dates "different"
    assert len(found & truth) / len(found) >= 0.98


def test_records_from_abroad_go_through(result: LinkageResult) -> None:
    assert _person(result, "T-abroad-1") == _person(result, "T-abroad-2")
    fields = _evidence(result.links, "T-abroad-1", "T-abroad-2")["fields"]
    assert fields["postcode"]["level"] == "exact"
    alone = result.assignments.set_index("source_record_id").loc["T-abroad-3"]
    assert alone["link_type"] == "single"


def test_linkage_is_accurate_on_the_crowd(people: pd.DataFrame, result: LinkageResult) -> None:
    truth = _same_person_pairs(people["person"].to_numpy())
    found = _same_person_pairs(result.assignments["person_id"].to_numpy()[: len(people)])
    assert len(found & truth) / len(truth) >= 0.9
    assert len(found & truth) / len(found) >= 0.98


def test_deduplicates_a_single_source(people: pd.DataFrame) -> None:
    one_source = people.drop(columns="person").assign(source="health")
    one_source["source_record_id"] = [f"H{i:05d}" for i in range(len(one_source))]
    out = link(one_source)
    truth = _same_person_pairs(people["person"].to_numpy())
    found = _same_person_pairs(out["person_id"].to_numpy())
    assert len(found & truth) / len(truth) >= 0.9
    assert len(found & truth) / len(found) >= 0.98


def test_person_ids_are_deterministic(records: pd.DataFrame, result: LinkageResult) -> None:
    again = link(records)
    pd.testing.assert_series_equal(again["person_id"], result.assignments["person_id"])
    reordered = link(records.iloc[::-1])
    by_record = reordered.set_index(["source", "source_record_id"])["person_id"]
    expected = result.assignments.set_index(["source", "source_record_id"])["person_id"]
    pd.testing.assert_series_equal(by_record.sort_index(), expected.sort_index())
    members = result.assignments.groupby("person_id")[["source", "source_record_id"]]
    for person_id, group in members:
        smallest = min(group["source"] + "|" + group["source_record_id"])
        assert person_id == _expected_id(*smallest.split("|", 1))


#: Names written the wrong way round on the second record: a common forename, a common surname.
WRONG_WAY_ROUND = [
    dict(source="health", source_record_id="T-order-1", given_name="Harry",
         family_name="Smith", date_of_birth="1983-02-17", sex="M", postcode="E5 9TT"),
    dict(source="paper", source_record_id="T-order-2", given_name="Smith",
         family_name="Harry", date_of_birth="1983-02-17", sex="M", postcode="E5 9TT"),
]  # fmt: skip


def _by_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """Probability and weight per pair, keyed by its two records in sorted order (near 1,
    probabilities no longer tell weights apart)."""
    left = frame["left_source"] + "|" + frame["left_source_record_id"]
    right = frame["right_source"] + "|" + frame["right_source_record_id"]
    keys = [" & ".join(sorted(pair)) for pair in zip(left, right, strict=True)]
    found = frame[["match_probability", "match_weight"]].set_axis(keys)
    return found.sort_index()


def test_links_and_probabilities_do_not_hang_on_the_order_of_the_rows(
    records: pd.DataFrame,
) -> None:
    """A source exported in another row order gives the same persons, links and review
    pairs with the same probabilities: u's random pairs are drawn by record key (fewer here
    than all pairs, as at any real size), and names written the wrong way round compare and
    weigh the same whichever record comes first."""
    both = with_records(records, WRONG_WAY_ROUND)
    settings = LinkageSettings(u_sample_pairs=20_000)
    first = link_records(both, settings)
    again = link_records(both.iloc[::-1], settings)
    keys = ["source", "source_record_id"]
    for result in (first, again):
        result.assignments.set_index(keys, inplace=True)
        result.assignments.sort_index(inplace=True)
    pd.testing.assert_frame_equal(again.assignments, first.assignments, rtol=1e-9)
    for name in ("links", "review"):
        found, expected = _by_pair(getattr(again, name)), _by_pair(getattr(first, name))
        pd.testing.assert_frame_equal(found, expected, rtol=1e-9, obj=name)
    swapped = _by_pair(first.links).filter(like="T-order-", axis=0)
    assert len(swapped) == 1  # the pair written the wrong way round links


@pytest.mark.parametrize(("younger", "joins_elder"), [("2017-08-19", True), ("2017-09-08", False)])
def test_a_record_without_nhs_number_joins_only_the_clearly_better_of_two(
    people: pd.DataFrame, younger: str, joins_elder: bool
) -> None:
    # Two sisters of one name at one home, each with her NHS number, and a record without
    # one that names the elder's date of birth. Against a sister born ten days later (one
    # digit) the elder's record is a thousand times likelier: it joins her. Against a
    # date that is the elder's with day and month swapped it is a guess: a person decides.
    sister = dict(family_name="Edwards", given_name="Emma", sex="F", postcode="E2 6TX",
                  address="Flat 12, 2 Chestnut Street, London")  # fmt: skip
    cases = [
        dict(sister, source="health", source_record_id="T-emma-1",
             date_of_birth="2017-08-09", nhs_number=NHS_A),
        dict(sister, source="health", source_record_id="T-emma-2",
             date_of_birth=younger, nhs_number=NHS_B),
        dict(sister, source="housing", source_record_id="T-emma-3", date_of_birth="2017-08-09"),
    ]  # fmt: skip
    result = link_records(with_records(people.drop(columns="person"), cases))
    assert (_person(result, "T-emma-3") == _person(result, "T-emma-1")) is joins_elder
    assert _person(result, "T-emma-3") != _person(result, "T-emma-2")
    assert _evidence(result.review, "T-emma-2", "T-emma-3")["capped"] == "ambiguous"


def test_a_placeholder_nhs_number_links_nobody() -> None:
    # 0000000000 passes modulus 11, but it is a system's "unknown", not a person.
    records = pd.DataFrame(
        {
            "source": ["a", "b"],
            "source_record_id": ["1", "2"],
            "given_name": ["Ann", "Omar"],
            "family_name": ["Lee", "Khan"],
            "nhs_number": ["0000000000", "000 000 0000"],
        }
    )
    result = link_records(records)
    assert result.assignments["person_id"].nunique() == 2
    assert set(result.assignments["link_type"]) == {"single"}


def test_tiny_inputs() -> None:
    empty = link(pd.DataFrame({"source": [], "source_record_id": []}))
    assert empty.empty and list(empty.columns) == ["source", "source_record_id", "person_id"]
    one = link_records(pd.DataFrame({"source": ["a"], "source_record_id": [1]}))
    assert one.assignments["person_id"].tolist() == [_expected_id("a", "1")]
    assert one.links.empty and one.review.empty


def test_bad_input_is_refused_without_values() -> None:
    twice = pd.DataFrame(
        {"source": ["a", "a"], "source_record_id": ["1", "1"], "given_name": ["Ann", "Ann"]}
    )
    with pytest.raises(CareEtlError, match="repeated") as caught:
        link(twice)
    assert "Ann" not in str(caught.value)
    with pytest.raises(CareEtlError, match="source_record_id"):
        link(pd.DataFrame({"source": ["a"]}))
    with pytest.raises(CareEtlError, match="a pandas DataFrame, not NoneType"):
        link(None)  # type: ignore[arg-type]
    doubled = pd.DataFrame([["a", "1", "Ann", "Ann"]], columns=["source", "source_record_id"] * 2)
    with pytest.raises(CareEtlError, match="column 'source' appears more than once"):
        link(doubled)
    for column in ("source_record_id", "given_name", "date_of_birth"):
        listed = pd.DataFrame({"source": ["a", "a"], "source_record_id": ["1", "2"]})
        listed["given_name"], listed["date_of_birth"] = ["Ann", "Bo"], ["1970-01-01"] * 2
        listed[column] = pd.Series([listed[column].iloc[0], ["x", "y"]], dtype=object)
        with pytest.raises(
            CareEtlError, match=f"column '{column}' holds a list or mapping at row 1"
        ):
            link(listed)
    with pytest.raises(CareEtlError, match="threshold"):
        LinkageSettings(auto_link_threshold=0.4, review_threshold=0.5).check()


@pytest.mark.parametrize(
    ("sources", "ids"),
    [(["a|b", "a"], ["c", "b|c"]), (["a", "a"], pd.Series([1, "1"], dtype=object))],
    ids=["bar in a source", "one id as number and text"],
)
def test_keys_that_read_alike_as_text_are_refused(sources, ids) -> None:
    # Records are keyed as "source|source_record_id": these two would share a person id.
    records = pd.DataFrame({"source": sources, "source_record_id": ids})
    records["given_name"], records["family_name"] = ["John", "Mary"], ["Smith", "Jones"]
    with pytest.raises(CareEtlError, match="reads as another's, first at row 1") as caught:
        link(records)
    assert "Smith" not in str(caught.value) and "\n" not in str(caught.value)


def _same_person_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    groups = pd.Series(np.arange(len(labels))).groupby(labels).agg(list)
    return {pair for members in groups for pair in combinations(members, 2)}
