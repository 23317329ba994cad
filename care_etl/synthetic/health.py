"""Health: one GP registrations CSV per practice, as practice systems export them.

Encodings differ between practices (one Windows-1252, one UTF-8 with a byte-order mark, the
rest UTF-8), and Patient IDs are each practice's own sequence, so the same ID can appear in
two files: the record id is `<Practice Code>:<Patient ID>`.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from care_etl.synthetic.common import SourceOutput, stream, uk_date
from care_etl.synthetic.identifiers import spaced_nhs
from care_etl.synthetic.mess import Rates, View, record_view
from care_etl.synthetic.population import (
    REFERENCE_DATE,
    Household,
    Person,
    Population,
    random_date,
)

HEADER = (
    "Patient ID",
    "NHS Number",
    "Title",
    "Forename",
    "Middle Names",
    "Surname",
    "Date of Birth",
    "Sex",
    "Address Line 1",
    "Address Line 2",
    "Address Line 3",
    "Address Line 4",
    "Postcode",
    "Practice Code",
    "Registration Date",
    "Date of Death",
)

RATES = Rates(short_form=0.15, former_surname=0.12, nhs_missing=0.04, nhs_spaced=0.25)
#: Share of people registered with a GP, and of those registered twice (a stale registration).
PRESENCE = 0.85
TWICE = 0.03
CP1252_INDEX, BOM_INDEX = 1, 2

_ABBREVIATIONS = ((" Road", " Rd"), (" Street", " St"), (" Avenue", " Ave"), (" Gardens", " Gdns"))


@dataclass
class _Registration:
    practice: int
    registered: date
    person_id: str
    row: list[str]  # every column but Patient ID and Practice Code


def _practice_codes(rng: random.Random, people: int) -> list[str]:
    count = min(12, max(4, -(-people // 12000)))
    return [f"F84{n:03d}" for n in sorted(rng.sample(range(1, 760), count))]


def _encoding(index: int) -> str:
    return {CP1252_INDEX: "cp1252", BOM_INDEX: "utf-8-sig"}.get(index, "utf-8")


def _title(person: Person, rng: random.Random) -> str:
    r = rng.random()
    if person.age() < 16:
        return "Miss" if person.sex == "F" and r < 0.1 else ""
    if r < 0.04:
        return ""
    if r < 0.06:
        return "Dr"
    if person.sex == "M":
        return "Mr"
    if person.sex == "X":
        return "Mx"
    if person.partner or person.former_surname:
        return "Mrs" if r < 0.75 else "Ms"
    return "Miss" if r < 0.45 else "Ms"


def _sex(person: Person, rng: random.Random) -> str:
    if rng.random() < 0.003:
        return "Unknown"
    if person.sex == "X":
        return "Unknown" if rng.random() < 0.6 else "Indeterminate"
    return "Male" if person.sex == "M" else "Female"


def _address_lines(view: View, rng: random.Random) -> list[str]:
    a = view.address
    if a.flat:
        lines = [f"Flat {a.flat}", a.street_line, a.locality, "London"]
    else:
        lines = [a.street_line, a.locality, "London", ""]
    r = rng.random()
    if r < 0.08:
        for long, short in _ABBREVIATIONS:
            lines = [line.replace(long, short) for line in lines]
    elif r < 0.13:
        lines = [line.upper() for line in lines]
    return lines


def _row(person: Person, view: View, registered: date, rng: random.Random) -> list[str]:
    nhs = view.nhs or ""
    if nhs and rng.random() < RATES.nhs_spaced:
        nhs = spaced_nhs(nhs)
    return [
        nhs,
        _title(person, rng),
        view.forename,
        view.middle_names,
        view.surname,
        uk_date(view.dob),
        _sex(person, rng),
        *_address_lines(view, rng),
        view.postcode,
        uk_date(registered),
        uk_date(person.date_of_death),
    ]


def _registered(person: Person, hh: Household, view: View, rng: random.Random) -> date:
    """When the registration began: before the move if it still shows the old address."""
    start = max(person.dob, date(1990, 1, 1))
    end = REFERENCE_DATE
    if hh.moved_on and person.dob < hh.moved_on:
        if view.previous_address:
            end = hh.moved_on
        else:
            start = max(start, hh.moved_on)
    if person.date_of_death:
        end = min(end, person.date_of_death)
    return random_date(rng, start, end)


def _cp1252_ok(row: list[str]) -> bool:
    try:
        "".join(row).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _place(practice: int, row: list[str], rng: random.Random, count: int) -> int:
    """Only names Windows-1252 can hold go in the cp1252 file; it gets a good share of them."""
    if not _cp1252_ok(row):
        return 0 if practice == CP1252_INDEX else practice
    if not "".join(row).isascii() and rng.random() < 0.3:
        return CP1252_INDEX
    return practice % count


def _registrations(population: Population, rng: random.Random, count: int) -> list[_Registration]:
    regs: list[_Registration] = []
    for hh in population.households:
        home = rng.randrange(count)
        for person in hh.members:
            if not person.trap and rng.random() >= PRESENCE:
                continue
            practice = home if rng.random() < 0.9 else rng.randrange(count)
            view = record_view(person, hh, RATES, rng)
            registered = _registered(person, hh, view, rng)
            row = _row(person, view, registered, rng)
            regs.append(
                _Registration(_place(practice, row, rng, count), registered, person.person_id, row)
            )
            if person.trap or rng.random() >= TWICE or registered <= person.dob:
                continue
            # an older registration at another practice that was never closed
            old_date = random_date(
                rng, max(person.dob, date(1985, 1, 1)), registered - timedelta(days=1)
            )
            old_view = record_view(person, hh, RATES, rng, as_of=old_date)
            old_row = _row(person, old_view, old_date, rng)
            other = (practice + rng.randrange(1, count)) % count
            regs.append(
                _Registration(
                    _place(other, old_row, rng, count), old_date, person.person_id, old_row
                )
            )
    return regs


def write_health(out_dir: Path, population: Population, seed: int) -> SourceOutput:
    """Write `health/gp_registrations_<code>.csv`; Patient IDs rise with registration date."""
    rng = stream(seed, "health")
    codes = _practice_codes(rng, len(population.persons))
    regs = _registrations(population, rng, len(codes))
    out_dir.mkdir(parents=True, exist_ok=True)
    output = SourceOutput()
    for index, code in enumerate(codes):
        mine = sorted(
            (r for r in regs if r.practice == index), key=lambda r: (r.registered, r.person_id)
        )
        number = rng.randint(1000, 400000)
        path = out_dir / f"gp_registrations_{code}.csv"
        with path.open("w", encoding=_encoding(index), newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for reg in mine:
                number += rng.randint(1, 4)
                patient_id = f"P{number:07d}"
                row = [patient_id, *reg.row]
                row.insert(HEADER.index("Practice Code"), code)
                writer.writerow(row)
                output.records.append((f"{code}:{patient_id}", reg.person_id))
        output.files += 1
    return output
