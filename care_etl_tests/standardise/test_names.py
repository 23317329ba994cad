"""Names from the sources' mess: accents, Mac/Mc, O', hyphens, both full-name orders."""

import pandas as pd
import pytest

from care_etl.standardise import (
    clean_name,
    clean_other_names,
    clean_title,
    match_key,
    parse_full_name,
)


def _clean(*values: str | None) -> list[str | None]:
    return clean_name(pd.Series(values, dtype=object)).value.tolist()


def test_accents_survive_for_display_and_fold_in_match_key() -> None:
    shown = _clean("Zoë", "SEÁN", "zoë")
    assert shown == ["Zoë", "Seán", "Zoë"]
    assert match_key(pd.Series(shown)).tolist() == ["ZOE", "SEAN", "ZOE"]
    # A Windows-1252 extract, once decoded, gives the same key as the UTF-8 one.
    decoded = "Zo\xeb".encode("cp1252").decode("cp1252")
    assert match_key(pd.Series([decoded, "Zoe"])).nunique() == 1


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("MCDONALD", "McDonald"),
        ("macleod", "MacLeod"),
        ("O'BRIEN", "O'Brien"),
        ("o’brien", "O'Brien"),  # typographic apostrophe
        ("SMITH-JONES", "Smith-Jones"),
        ("Smith - Jones", "Smith-Jones"),
        ("MACHIN", "Machin"),  # not Mac + Hin
        ("MACK", "Mack"),
        ("  JOHN   PAUL  ", "John Paul"),
        ("Smith.", "Smith"),
        ("McDONALD", "McDONALD"),  # mixed case is kept as written
        ("deSouza", "deSouza"),
        ("VAN DER BERG", "Van der Berg"),
    ],
)
def test_display_case_and_punctuation(raw: str, shown: str) -> None:
    assert _clean(raw) == [shown]


def test_empty_placeholder_and_punctuation_only_names_are_null() -> None:
    result = clean_name(pd.Series(["", "   ", None, "N/A", "-", "Unknown"], dtype=object))
    assert result.value.isna().all()
    assert result.issue.tolist() == [
        None,
        None,
        None,
        "placeholder value",
        "no letters",
        "placeholder value",
    ]


def test_short_real_names_are_not_mistaken_for_placeholders() -> None:
    assert _clean("Na", "NA", "Li") == ["Na", "Na", "Li"]


def test_digits_in_a_name_are_kept_but_flagged() -> None:
    result = clean_name(pd.Series(["J0HN"]))
    assert result.value.tolist() == ["J0hn"]
    assert result.issue.tolist() == ["contains digits"]


def test_match_key_ignores_punctuation_and_keeps_index() -> None:
    names = pd.Series(["O'Brien", "OBRIEN", "Smith-Jones", None, "--"], index=[7, 3, 9, 1, 0])
    keys = match_key(names)
    assert keys.index.tolist() == [7, 3, 9, 1, 0]
    assert keys.tolist() == ["OBRIEN", "OBRIEN", "SMITH JONES", None, None]
    assert match_key(pd.Series(["Søren", "Łukasz"])).tolist() == ["SOREN", "LUKASZ"]


def test_match_key_reads_names_in_any_script_as_latin_letters() -> None:
    """A name kept only as A-Z would be empty for a name written in Cyrillic, Greek or
    Chinese, and its records would then link on date of birth and address alone."""
    names = pd.Series(["Иван Петров", "Ivan Petrov", "Γιώργος", "王伟", "Straße", "محمد"])
    assert match_key(names).tolist() == [
        "IVAN PETROV", "IVAN PETROV", "GIORGOS", "WANGWEI", "STRASSE", "MHMD",
    ]  # fmt: skip


def test_both_full_name_orders_parse_the_same() -> None:
    parts, issues = parse_full_name(pd.Series(["SMITH, John", "John Smith"]))
    cleaned = {c: clean_name(parts[c]).value.tolist() for c in ("given_name", "family_name")}
    assert cleaned == {"given_name": ["John", "John"], "family_name": ["Smith", "Smith"]}
    assert issues.isna().all()


@pytest.mark.parametrize(
    ("full", "title", "given", "middle", "family"),
    [
        ("Mr John Paul Smith", "Mr", "John", "Paul", "Smith"),
        ("SMITH, Mrs Jane Anne", "Mrs", "Jane", "Anne", "SMITH"),
        ("Dr. Seán O'Brien", "Dr.", "Seán", None, "O'Brien"),
        ("Anna de Souza", None, "Anna", None, "de Souza"),
        ("Mary-Jane Smith-Jones", None, "Mary-Jane", None, "Smith-Jones"),
    ],
)
def test_full_name_parts(full, title, given, middle, family) -> None:
    parts, _ = parse_full_name(pd.Series([full]))
    assert parts.iloc[0].tolist() == [title, given, middle, family]


def test_full_name_that_cannot_be_split_says_so() -> None:
    parts, issues = parse_full_name(pd.Series(["Smith", "John Smith Jnr"]))
    assert parts["family_name"].tolist() == ["Smith", "Smith"]
    assert parts["given_name"].tolist() == [None, "John"]
    assert issues.tolist() == [
        "could not be split into given and family names",
        "generational suffix dropped",
    ]


def test_names_run_together_by_ocr_are_split_at_the_capital() -> None:
    """OCR drops the space in "Name: Matilda Davies"; a surname prefix is not a forename."""
    full = pd.Series(["MatildaDavies", "ChloeMcLeod", "McLeod", "MacDonald", "DeVito", "Smith"])
    parts, issues = parse_full_name(full)
    assert parts["given_name"].tolist() == ["Matilda", "Chloe", None, None, None, None]
    assert parts["family_name"].tolist() == [
        "Davies", "McLeod", "McLeod", "MacDonald", "DeVito", "Smith"
    ]  # fmt: skip
    assert issues.iloc[0] == "given and family names run together: split at the capital"
    assert issues.iloc[2] == "could not be split into given and family names"


def test_titles_are_normalised_and_others_nulled() -> None:
    result = clean_title(pd.Series(["mr.", "MRS", "ms", "Miss", "DR", "mx", "Rev", None]))
    assert result.value.tolist() == ["Mr", "Mrs", "Ms", "Miss", "Dr", "Mx", None, None]
    assert result.issue.tolist()[6:] == ["not a recognised title", None]


def test_other_names_are_split_cleaned_and_rejoined() -> None:
    result = clean_other_names(pd.Series(["JONES;  o'brien ;; ", "Smith", ";"]))
    assert result.value.tolist() == ["Jones; O'Brien", "Smith", None]
