"""Social care: the case management system's four tables, as a SQLite file.

Social care records whole families around a child (Children's Social Care) and an older or
disabled adult with their carer (Adult Social Care). The system's own history shows through:
people recorded twice, withdrawn rows (`is_deleted`), estimated dates of birth (01/01 with
`dob_estimated`), aliases and former surnames in `other_names`, ended and current addresses.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from care_etl.synthetic.common import SourceOutput, stream
from care_etl.synthetic.identifiers import spaced_nhs
from care_etl.synthetic.mess import Rates, View, record_view, styled_postcode, typo
from care_etl.synthetic.namepool import ORIGIN_BY_KEY, pick
from care_etl.synthetic.population import (
    REFERENCE_DATE,
    Address,
    Household,
    Person,
    Population,
    random_date,
)

DDL = """
CREATE TABLE persons (
    person_id INTEGER PRIMARY KEY,
    forename TEXT,
    surname TEXT,
    other_names TEXT,
    date_of_birth DATE,
    dob_estimated BOOLEAN,
    gender TEXT,
    nhs_number TEXT,
    ethnicity TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    is_deleted BOOLEAN
);
CREATE TABLE addresses (
    address_id INTEGER PRIMARY KEY,
    person_id INTEGER REFERENCES persons (person_id),
    address_text TEXT,
    postcode TEXT,
    uprn BIGINT,
    start_date DATE,
    end_date DATE
);
CREATE TABLE relationships (
    person_id INTEGER REFERENCES persons (person_id),
    related_person_id INTEGER REFERENCES persons (person_id),
    relationship_type TEXT
);
CREATE TABLE involvements (
    involvement_id INTEGER PRIMARY KEY,
    person_id INTEGER REFERENCES persons (person_id),
    service TEXT,
    start_date DATE,
    end_date DATE,
    status TEXT
);
"""

TABLES: dict[str, tuple[str, ...]] = {
    "persons": (
        "person_id",
        "forename",
        "surname",
        "other_names",
        "date_of_birth",
        "dob_estimated",
        "gender",
        "nhs_number",
        "ethnicity",
        "created_at",
        "updated_at",
        "is_deleted",
    ),
    "addresses": (
        "address_id",
        "person_id",
        "address_text",
        "postcode",
        "uprn",
        "start_date",
        "end_date",
    ),
    "relationships": ("person_id", "related_person_id", "relationship_type"),
    "involvements": ("involvement_id", "person_id", "service", "start_date", "end_date", "status"),
}

RATES = Rates(short_form=0.1, former_surname=0.08, year_only=0.0, nhs_missing=0.12, nhs_spaced=0.3)
CHILDREN_SERVICE = "Children's Social Care"
ADULT_SERVICE = "Adult Social Care"
#: Chance that a household with children is known to children's services.
FAMILY_SHARE = 0.15
#: Chance that a person of 70 or over, or of 18-69, receives adult social care.
ELDER_SHARE = 0.22
ADULT_SHARE = 0.035
RECORDED_TWICE = 0.03
#: When the extract was taken: nothing in the database is later.
EXTRACTED_AT = datetime(REFERENCE_DATE.year, REFERENCE_DATE.month, REFERENCE_DATE.day, 18)
#: Naming traditions whose members often also go by an English forename.
KNOWN_AS_ORIGINS = ("chinese", "turkish", "west_african")
WITHDRAWN = 0.025
DOB_ESTIMATED = 0.04


@dataclass
class _Row:
    person: Person
    household: Household
    created: datetime
    primary: bool
    deleted: bool = False
    subject: bool = False
    person_id: int = 0


def _recorded(population: Population, rng: random.Random) -> list[tuple[Person, Household, bool]]:
    """(person, household, is a service user) for everyone the system knows of, in order."""
    out: list[tuple[Person, Household, bool]] = []
    for hh in population.households:
        status: dict[str, bool] = {}
        kids = [p for p in hh.members if p.age() < 18]
        if kids and rng.random() < FAMILY_SHARE:
            for kid in kids:
                status[kid.person_id] = True
            parents = {pid for kid in kids for pid in kid.parents}
            for p in hh.members:
                if p.person_id in parents and rng.random() < 0.9:
                    status.setdefault(p.person_id, False)
        for p in hh.members:
            age = p.age()
            if age >= 18 and rng.random() < (ELDER_SHARE if age >= 70 else ADULT_SHARE):
                status[p.person_id] = True
                carer = next((m for m in hh.members if m.person_id == p.partner), None)
                if carer is not None and rng.random() < 0.7:
                    status.setdefault(carer.person_id, False)
        out.extend((p, hh, status[p.person_id]) for p in hh.members if p.person_id in status)
    return out


def _created(person: Person, rng: random.Random) -> datetime:
    """A working-hours moment between birth (or 2006, when the system went live) and the extract."""
    start = min(max(person.dob, date(2006, 1, 1)), REFERENCE_DATE)
    day = random_date(rng, start, REFERENCE_DATE)
    return datetime(
        day.year, day.month, day.day, rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59)
    )


def _rows(population: Population, rng: random.Random) -> list[_Row]:
    rows: list[_Row] = []
    recorded = _recorded(population, rng)
    known = {p.person_id for p, _, _ in recorded}
    for person, hh, subject in recorded:
        rows.append(_Row(person, hh, _created(person, rng), True, subject=subject))
        if not person.trap and rng.random() < RECORDED_TWICE:
            rows.append(_Row(person, hh, _created(person, rng), False))
    for person, hh, _ in recorded:
        if not person.trap and rng.random() < WITHDRAWN * 0.7:
            rows.append(_Row(person, hh, _created(person, rng), False, deleted=True))
    others = [p for p in population.persons if p.person_id not in known and not p.trap]
    # records created in error for people the service never worked with (at least one)
    in_error = max(1, round(len(recorded) * WITHDRAWN * 0.3)) if recorded else 0
    for person in rng.sample(others, min(len(others), in_error)):
        hh = population.household_of[person.household_id]
        rows.append(_Row(person, hh, _created(person, rng), False, deleted=True))
    rows.sort(key=lambda r: (r.created, r.person.person_id, r.primary))
    next_id = rng.randint(100000, 200000)
    for row in rows:
        next_id += rng.randint(1, 3)
        row.person_id = next_id
    return rows


def _other_names(person: Person, view: View, rng: random.Random) -> str | None:
    """Former surnames and aliases, `;`-separated, as caseworkers record them."""
    names: list[str] = []
    if person.former_surname and rng.random() < 0.8:
        other = person.surname if view.surname == person.former_surname else person.former_surname
        if other != view.surname:
            names.append(other)
    if person.short_form and person.short_form != view.forename and rng.random() < 0.5:
        names.append(person.short_form)
    if person.origin in KNOWN_AS_ORIGINS and rng.random() < 0.25:
        english = ORIGIN_BY_KEY["british"]  # an English name used day to day
        names.append(pick(rng, english.forenames(person.sex, 1990)))
    if rng.random() < 0.05:
        names.append(typo(person.surname, rng))  # a spelling someone once used
    return "; ".join(names) or None


def _gender(person: Person, rng: random.Random) -> str:
    if rng.random() < 0.03:
        return "Not recorded"
    return {"M": "Male", "F": "Female"}.get(person.sex, "Non-binary")


def _ethnicity(person: Person, rng: random.Random) -> str:
    options = ORIGIN_BY_KEY[person.origin].ethnicity
    if not options or rng.random() < 0.1:
        return "Not stated"
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _person_row(row: _Row, rng: random.Random) -> tuple[tuple, View]:
    person = row.person
    view = record_view(person, row.household, RATES, rng)
    dob, estimated = view.dob, False
    if not person.trap and rng.random() < DOB_ESTIMATED:
        dob, estimated = date(person.dob.year, 1, 1), True
    nhs = view.nhs
    if nhs and rng.random() < RATES.nhs_spaced:
        nhs = spaced_nhs(nhs)
    since = max(0, int((EXTRACTED_AT - row.created).total_seconds()))
    updated = row.created + timedelta(seconds=rng.randint(0, since))
    return (
        row.person_id,
        view.forename,
        view.surname,
        _other_names(person, view, rng),
        dob.isoformat() if dob else None,
        int(estimated),
        _gender(person, rng),
        nhs,
        _ethnicity(person, rng),
        _stamp(row.created),
        _stamp(updated),
        int(row.deleted),
    ), view


def _address_values(address: Address, rng: random.Random) -> tuple[str, str, int | None]:
    text = address.one_line(locality=rng.random() < 0.6)
    if rng.random() < 0.08:
        text = text.upper()
    uprn = None if rng.random() < 0.15 else int(address.uprn)
    return text, styled_postcode(address.postcode, rng, RATES), uprn


def _addresses(row: _Row, rng: random.Random) -> list[tuple]:
    """(person_id, text, postcode, uprn, start, end) rows: ended and current, or none."""
    person, hh = row.person, row.household
    r = rng.random()
    if r < 0.05 or (row.deleted and r < 0.5):
        return []
    floor = max(person.dob, date(1995, 1, 1))
    out: list[tuple] = []
    moved = hh.previous is not None and hh.moved_on is not None and person.dob < hh.moved_on
    if moved and row.primary and rng.random() < 0.7:
        assert hh.previous is not None and hh.moved_on is not None
        start = random_date(rng, floor, hh.moved_on - timedelta(days=1))
        out.append(
            (
                row.person_id,
                *_address_values(hh.previous, rng),
                start.isoformat(),
                hh.moved_on.isoformat(),
            )
        )
        floor = hh.moved_on
    elif moved:
        floor = hh.moved_on or floor
    start = random_date(rng, floor, REFERENCE_DATE)
    end = None
    if r < 0.08:  # left the address; the new one was never recorded
        end = random_date(rng, start, REFERENCE_DATE).isoformat()
    out.append((row.person_id, *_address_values(hh.address, rng), start.isoformat(), end))
    return out


def _relationship(a: _Row, b: _Row) -> str:
    """What b is to a."""
    pa, pb = a.person, b.person
    if pb.person_id in pa.parents:
        return {"F": "Mother", "M": "Father"}.get(pb.sex, "Other")
    if pa.person_id in pb.parents:
        return "Child"
    if set(pa.parents) & set(pb.parents):
        return "Sibling"
    if pa.partner == pb.person_id:
        # an adult service user's partner who is not a service user is recorded as their carer
        return "Carer" if a.subject and not b.subject and pa.age() >= 18 else "Partner"
    return "Other"


def _relationships(rows: list[_Row]) -> list[tuple]:
    by_household: dict[int, list[_Row]] = {}
    for row in rows:
        if row.primary and not row.deleted:
            by_household.setdefault(row.household.household_id, []).append(row)
    out = []
    for members in by_household.values():
        for a in members:
            for b in members:
                if a is not b:
                    out.append((a.person_id, b.person_id, _relationship(a, b)))
    return sorted(out)


def _involvements(row: _Row, rng: random.Random) -> list[tuple]:
    if row.deleted or not (row.subject or (not row.primary and rng.random() < 0.3)):
        return []
    out = []
    for _ in range(1 if rng.random() < 0.85 else 2):
        start = random_date(rng, row.created.date(), REFERENCE_DATE)
        adult = row.person.age(start) >= 18
        service = ADULT_SERVICE if adult else CHILDREN_SERVICE
        if rng.random() < 0.5 and start + timedelta(days=30) <= REFERENCE_DATE:
            end = random_date(rng, start + timedelta(days=30), REFERENCE_DATE)
            out.append((row.person_id, service, start.isoformat(), end.isoformat(), "Closed"))
        else:
            out.append((row.person_id, service, start.isoformat(), None, "Open"))
    return out


def write_social_care(out_dir: Path, population: Population, seed: int) -> SourceOutput:
    """Write `social_care/case_management.db`; is_deleted rows are counted, not in the truth."""
    rng = stream(seed, "social_care")
    rows = _rows(population, rng)
    persons, addresses, involvements = [], [], []
    output = SourceOutput()
    for row in rows:
        values, _ = _person_row(row, rng)
        persons.append(values)
        addresses.extend(_addresses(row, rng))
        involvements.extend(_involvements(row, rng))
        if row.deleted:
            output.withdrawn += 1
        else:
            output.records.append((str(row.person_id), row.person.person_id))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "case_management.db"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(DDL)
        connection.executemany(f"INSERT INTO persons VALUES ({', '.join('?' * 12)})", persons)
        connection.executemany(
            "INSERT INTO addresses VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, *a) for i, a in enumerate(addresses, start=1)],
        )
        connection.executemany("INSERT INTO relationships VALUES (?, ?, ?)", _relationships(rows))
        connection.executemany(
            "INSERT INTO involvements VALUES (?, ?, ?, ?, ?, ?)",
            [(i, *v) for i, v in enumerate(involvements, start=1)],
        )
        connection.commit()
    finally:
        connection.close()
    output.files = 1
    return output
