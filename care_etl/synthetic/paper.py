"""Paper: historic referral forms as the digitisation bureau delivered them.

A form records the person as they were on the date of referral: the surname before marriage,
the address before a move. Most forms arrive as `.txt` OCR output (with OCR's mistakes
simulated); `scans` of them arrive as page images (PNG or PDF) for the real OCR to read.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from care_etl.synthetic.common import SourceOutput, stream, uk_date
from care_etl.synthetic.identifiers import spaced_nhs
from care_etl.synthetic.mess import Rates, ocr_noise, record_view
from care_etl.synthetic.namepool import ORIGIN_BY_KEY, pick
from care_etl.synthetic.population import (
    REFERENCE_DATE,
    Household,
    Person,
    Population,
    random_date,
)

RATES = Rates(
    short_form=0.3,
    former_surname=0.0,
    nhs_missing=0.35,
    nhs_spaced=0.5,
    postcode_lower=0.02,
    postcode_no_space=0.05,
)
PRESENCE = 0.05
OTHERS_LISTED = 0.6

_ANYONE = (
    "GP - Dr {initial}. {surname}",
    "Neighbour (anonymous)",
    "Police - {place} station",
    "Family member by telephone",
)
#: Who refers whom, by age at referral: under 5, school age, adult, 65 and over.
_REFERRERS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (5, ("Health Visitor, {place} Clinic", "Midwife, Royal {place} Hospital")),
    (18, ("School Nurse, {place} Primary School", "Head Teacher, {place} School")),
    (
        65,
        (
            "Housing Officer, {office} Office",
            "Self-referral",
            "Hospital Social Worker, Royal {place} Hospital",
        ),
    ),
    (
        200,
        (
            "District Nurse {initial}. {surname}",
            "Hospital Social Worker, Royal {place} Hospital",
            "Housing Officer, {office} Office",
        ),
    ),
)


@dataclass
class _Form:
    person: Person
    household: Household
    referred: date
    record_id: str = ""


def _referral_date(person: Person, rng: random.Random) -> date:
    """A date when the person already lived in today's household (a child: from birth)."""
    start = max(person.dob + timedelta(days=30), date(1975, 1, 1))
    if not person.parents:
        start = max(start, date(person.dob.year + 18, 1, 1))
    end = date(2015, 12, 31) if start < date(2014, 1, 1) else REFERENCE_DATE
    return random_date(rng, start, end)


def _surname_then(person: Person, on: date) -> str:
    if person.former_surname and person.married_on and on < person.married_on:
        return person.former_surname
    return person.surname


def _relation(subject: Person, other: Person, population: Population) -> str | None:
    female = other.sex == "F"
    if other.person_id in subject.parents:
        return "mother" if female else "father"
    if subject.person_id in other.parents:
        return "daughter" if female else "son"
    if set(subject.parents) & set(other.parents):
        return "sister" if female else "brother"
    if subject.partner == other.person_id:
        return "partner"
    grandparents = {g for p in subject.parents for g in population.by_id[p].parents}
    if other.person_id in grandparents:
        return "grandmother" if female else "grandfather"
    return "lodger" if other.role == "Lodger" else None


def _others(form: _Form, population: Population, rng: random.Random) -> str:
    if rng.random() >= OTHERS_LISTED:
        return ""
    parts = []
    for other in form.household.members:
        if other is form.person or other.dob >= form.referred:
            continue
        relation = _relation(form.person, other, population)
        if relation in (None, "partner", "lodger") and other.age(form.referred) < 18:
            continue  # they did not live together yet
        name = f"{other.forename} {_surname_then(other, form.referred)}"
        parts.append(f"{name} ({relation})" if relation else name)
    return ", ".join(parts[:4])


def _referrer(rng: random.Random, form: _Form) -> str:
    british = ORIGIN_BY_KEY["british"]
    age = form.person.age(form.referred)
    own = next(options for below, options in _REFERRERS if age < below)
    return rng.choice(own + _ANYONE).format(
        place=form.household.address.locality,
        office=form.household.address.office,
        initial=pick(rng, british.female_old)[0],
        surname=pick(rng, british.surnames),
    )


def form_text(form: _Form, population: Population, rng: random.Random) -> str:
    """The typed referral form, line by line as source-systems.md gives it."""
    view = record_view(form.person, form.household, RATES, rng, as_of=form.referred)
    nhs = view.nhs or ""
    if nhs and rng.random() < RATES.nhs_spaced:
        nhs = spaced_nhs(nhs)
    lines = [
        "REFERRAL FORM",
        f"Name: {view.forename} {view.surname}",
        f"Date of Birth: {uk_date(view.dob)}",
        f"NHS No: {nhs}",
        f"Address: {view.address.one_line(locality=rng.random() < 0.5)}",
        f"Postcode: {view.postcode}",
        f"Referrer: {_referrer(rng, form)}",
        f"Date of referral: {uk_date(form.referred)}",
        f"Other household members: {_others(form, population, rng)}",
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _forms(population: Population, rng: random.Random) -> list[_Form]:
    forms = []
    for hh in population.households:
        for person in hh.members:
            if rng.random() < PRESENCE and person.dob < REFERENCE_DATE - timedelta(days=60):
                forms.append(_Form(person, hh, _referral_date(person, rng)))
    forms.sort(key=lambda f: (f.referred, f.person.person_id))
    number = rng.randint(1000, 30000)
    for form in forms:
        number += rng.randint(1, 6)
        form.record_id = f"REF-{number:06d}"
    return forms


def _scan_suffixes(record_ids: list[str], scans: int, seed: int) -> dict[str, str]:
    """Which forms are page images: `scans` of them, alternately PNG and PDF."""
    chosen = sorted(stream(seed, "scans").sample(record_ids, min(scans, len(record_ids))))
    return {rid: (".png" if i % 2 == 0 else ".pdf") for i, rid in enumerate(chosen)}


def write_paper(out_dir: Path, population: Population, seed: int, scans: int) -> SourceOutput:
    """Write `paper/<REF-id>.txt|.png|.pdf`, one file per referral form."""
    rng = stream(seed, "paper")
    forms = _forms(population, rng)
    images = _scan_suffixes([f.record_id for f in forms], scans, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = SourceOutput()
    for form in forms:
        text = form_text(form, population, rng)
        suffix = images.get(form.record_id)
        key = zlib.crc32(f"{seed}:{form.record_id}".encode())
        if suffix:
            from care_etl.synthetic.scans import render_scan  # Pillow work only when asked

            render_scan(text, out_dir / f"{form.record_id}{suffix}", seed=key)
        else:
            noisy = ocr_noise(text, random.Random(key))
            (out_dir / f"{form.record_id}.txt").write_text(noisy, encoding="utf-8")
        output.records.append((form.record_id, form.person.person_id))
        output.files += 1
    return output
