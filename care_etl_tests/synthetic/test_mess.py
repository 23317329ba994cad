"""The mess of source-systems.md is there, at a few percent (realistic, not a torture test)."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import numpy as np

from care_etl.standardise import is_valid_nhs_number
from care_etl.synthetic.identifiers import break_nhs_check, nhs_numbers
from care_etl.synthetic.mess import ocr_noise
from care_etl.synthetic.nicknames import SHORT_FORMS
from care_etl.synthetic.population import Population

HEALTH = "health_gp_registrations"


def _dob(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def _health_pairs(health_rows, truth, population: Population):
    for r in health_rows:
        yield r, population.by_id[truth[(HEALTH, f"{r['Practice Code']}:{r['Patient ID']}")]]


def nhs_is_valid(number: str) -> bool:
    """The standardiser's modulus 11 check, on numbers written with or without spaces."""
    return is_valid_nhs_number(number.replace(" ", ""))


def test_nhs_numbers_valid_distinct_and_breakable() -> None:
    numbers = nhs_numbers(5000, np.random.default_rng(1))
    assert len(set(numbers)) == 5000
    assert all(nhs_is_valid(n) and n[0] in "467" for n in numbers)
    assert nhs_is_valid("943 476 5919") and not nhs_is_valid("9434765918")
    rng = random.Random(2)
    assert not any(nhs_is_valid(break_nhs_check(n, rng)) for n in numbers)


def test_health_nhs_number_mess(health_rows) -> None:
    values = [r["NHS Number"] for r in health_rows]
    blank = sum(v == "" for v in values)
    spaced = sum(" " in v for v in values)
    invalid = sum(v != "" and not nhs_is_valid(v) for v in values)
    n = len(values)
    assert 0 < blank < 0.1 * n
    assert 0 < invalid < 0.05 * n
    assert 0.1 * n < spaced < 0.4 * n


def test_health_dates_of_birth_mess(health_rows, truth, population) -> None:
    kinds = Counter()
    for r, person in _health_pairs(health_rows, truth, population):
        dob = _dob(r["Date of Birth"])
        if dob == person.dob:
            continue
        if (dob.month, dob.day) == (1, 1) and dob.year == person.dob.year:
            kinds["year only"] += 1
        elif (dob.day, dob.month) == (person.dob.month, person.dob.day):
            kinds["day and month swapped"] += 1
        else:
            kinds["wrong digit"] += 1
            differing = sum(
                a != b
                for a, b in zip(dob.strftime("%d%m%Y"), person.dob.strftime("%d%m%Y"), strict=True)
            )
            assert differing == 1
    assert set(kinds) == {"year only", "day and month swapped", "wrong digit"}
    assert sum(kinds.values()) < 0.08 * len(health_rows)


def test_health_name_mess(health_rows, truth, population) -> None:
    kinds = Counter()
    for r, person in _health_pairs(health_rows, truth, population):
        if r["Forename"] == person.surname and r["Surname"] == person.forename:
            kinds["swapped"] += 1
        elif person.former_surname and r["Surname"] == person.former_surname:
            kinds["former surname"] += 1
        elif r["Forename"] in SHORT_FORMS.get(person.forename, ()):
            kinds["short form"] += 1
        elif r["Forename"] != person.forename or r["Surname"] != person.surname:
            kinds["typing error"] += 1
    assert set(kinds) == {"swapped", "former surname", "short form", "typing error"}
    assert sum(kinds.values()) < 0.15 * len(health_rows)


def test_health_postcode_mess_and_moves(health_rows, truth, population) -> None:
    lower = sum(r["Postcode"] != r["Postcode"].upper() for r in health_rows)
    no_space = sum(" " not in r["Postcode"] for r in health_rows)
    assert 0 < lower < 0.1 * len(health_rows)
    assert 0 < no_space < 0.15 * len(health_rows)
    moved = 0
    for r, person in _health_pairs(health_rows, truth, population):
        home = population.household_of[person.household_id]
        postcode = r["Postcode"].upper().replace(" ", "")
        if postcode != home.address.postcode.replace(" ", ""):
            assert home.previous is not None
            assert postcode == home.previous.postcode.replace(" ", "")
            moved += 1
    assert 0 < moved < 0.1 * len(health_rows)


def test_accented_names_reach_the_files(health_rows) -> None:
    names = " ".join(r["Forename"] + " " + r["Surname"] for r in health_rows)
    assert re.search(r"[éëáíóúñçöüõ]", names)
    assert any(c in names for c in "Mc'-")


def test_ocr_text_carries_ocr_errors(out_dir: Path) -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted((out_dir / "paper").glob("*.txt"))]
    dobs = [re.search(r"Date of Birth: (.*)", t).group(1) for t in texts]
    assert any(re.search(r"[OlISB]", d) for d in dobs)  # digits read as letters
    clean = "REFERRAL FORM\nName: Sally O'Brien\nDate of Birth: 10/05/1958\nAddress: 1 Mill Road, London\n"
    noisy = [ocr_noise(clean, random.Random(i)) for i in range(300)]
    assert any("\n" in n.split("Address: ")[1].rstrip("\n") for n in noisy)  # a broken line
    assert all(n.startswith("REFERRAL FORM\nName: ") for n in noisy)  # labels stay readable
    assert sum(n != clean for n in noisy) > 150
