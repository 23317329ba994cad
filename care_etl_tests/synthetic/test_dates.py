"""Dates hang together: nothing after the extract, nothing that ends before it starts."""

from __future__ import annotations

import csv
import random
import sqlite3
from datetime import datetime
from pathlib import Path

import openpyxl

from care_etl.synthetic.population import REFERENCE_DATE, Address, Household, Person
from care_etl.synthetic.social_care import EXTRACTED_AT, _created, _person_row, _Row
from care_etl_tests.synthetic.conftest import decode_health


def date_problems(out_dir: Path) -> list[str]:
    """Where a generated folder's dates contradict each other (file and row, no values).

    Paper is left out: its OCR noise (a doubled or dropped digit) makes any date possible.
    """
    problems: list[str] = []
    for path in sorted((out_dir / "health").glob("*.csv")):
        for n, r in enumerate(csv.DictReader(decode_health(path)[1].splitlines()), start=2):
            for column in ("Date of Birth", "Registration Date", "Date of Death"):
                if r[column] and datetime.strptime(r[column], "%d/%m/%Y").date() > REFERENCE_DATE:
                    problems.append(f"{path.name} row {n} {column}")
    for path in sorted((out_dir / "housing").glob("*.xlsx")):
        sheet = openpyxl.load_workbook(path)["Tenancies"]
        for n, row in enumerate(sheet.iter_rows(min_row=5, values_only=True), start=5):
            start, end = row[4].date(), row[5].date() if row[5] else None
            if start > REFERENCE_DATE or (end and not start <= end <= REFERENCE_DATE):
                problems.append(f"{path.name} Tenancies row {n}")
    db = sqlite3.connect(out_dir / "social_care" / "case_management.db")
    checks = {
        "persons": "SELECT person_id FROM persons WHERE updated_at < created_at "
        f"OR updated_at > '{EXTRACTED_AT:%Y-%m-%d %H:%M:%S}' OR date_of_birth > '{REFERENCE_DATE}'",
        "addresses": "SELECT address_id FROM addresses WHERE end_date < start_date "
        f"OR start_date > '{REFERENCE_DATE}' OR end_date > '{REFERENCE_DATE}'",
        "involvements": "SELECT involvement_id FROM involvements WHERE end_date < start_date "
        f"OR end_date > '{REFERENCE_DATE}' OR (end_date IS NULL) != (status = 'Open')",
    }
    for table, query in checks.items():
        problems.extend(f"{table} id {r[0]}" for r in db.execute(query))
    db.close()
    return problems


def test_generated_dates_are_consistent(out_dir: Path) -> None:
    assert date_problems(out_dir) == []


def test_a_baby_born_on_the_extract_day_gets_a_valid_social_care_row() -> None:
    address = Address("100021000001", None, "1", "Mill Road", "Millbrook", "E8 1AA", "Central")
    baby = Person(
        "TP0000001", 1, "Son", "british", "M", "Jack", (), "Smith", REFERENCE_DATE, "9434765919"
    )
    home = Household(1, "family", address, members=[baby])
    rng = random.Random(1)
    for _ in range(50):
        created = _created(baby, rng)
        assert created.date() == REFERENCE_DATE and created <= EXTRACTED_AT
        values, _ = _person_row(_Row(baby, home, created, True, person_id=1), rng)
        assert values[9] <= values[10] <= f"{EXTRACTED_AT:%Y-%m-%d %H:%M:%S}"
