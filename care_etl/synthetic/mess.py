"""The mess a real record carries: how one true person is written down by one system.

Each source has its own `Rates` (a few percent for each kind of mess, so the data look like
a council's, not a torture test). `record_view` turns a true person into what a clerk typed;
`ocr_noise` turns a typed form into what the digitisation bureau's OCR made of it.
People in trap pairs are written without name, date or address mess: a trap is hardest,
and most realistic, when both records are clean.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date

from care_etl.synthetic.identifiers import break_nhs_check
from care_etl.synthetic.namepool import ORIGIN_BY_KEY
from care_etl.synthetic.population import REFERENCE_DATE, Address, Household, Person


@dataclass(frozen=True)
class Rates:
    """Chance per record of each kind of mess."""

    #: Use the person's everyday short form (Bill for William) when they have one.
    short_form: float = 0.1
    #: A married woman's former surname, where the system was never updated.
    former_surname: float = 0.1
    drop_middle_names: float = 0.15
    typo: float = 0.03
    swap_names: float = 0.012
    strip_accents: float = 0.0
    year_only: float = 0.008
    swap_day_month: float = 0.012
    wrong_digit: float = 0.012
    dob_missing: float = 0.0
    nhs_missing: float = 0.04
    nhs_bad_check: float = 0.015
    nhs_spaced: float = 0.25
    #: Of people whose household moved: the record still shows the previous address.
    old_address: float = 0.35
    postcode_lower: float = 0.04
    postcode_no_space: float = 0.06


@dataclass
class View:
    """One person as one record shows them."""

    forename: str
    middle_names: str
    surname: str
    dob: date | None
    #: 10 digits (maybe with a wrong check digit), or None when not recorded.
    nhs: str | None
    address: Address
    postcode: str
    previous_address: bool
    #: True when the date of birth was replaced by 01/01 of the year.
    year_only: bool = False


_NEIGHBOURS = {
    "a": "qsz",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "q": "wa",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "v": "cb",
    "w": "qe",
    "x": "zc",
    "y": "tu",
    "z": "x",
}


def typo(name: str, rng: random.Random) -> str:
    """One keying slip: a neighbouring key, a dropped, doubled or transposed letter."""
    if len(name) < 3:
        return name
    pos = rng.randrange(1, len(name) - 1)
    op = rng.randrange(4)
    ch = name[pos]
    if op == 0 and ch.lower() in _NEIGHBOURS:
        new = rng.choice(_NEIGHBOURS[ch.lower()])
        return name[:pos] + (new.upper() if ch.isupper() else new) + name[pos + 1 :]
    if op == 1:
        return name[:pos] + name[pos + 1 :]
    if op == 2:
        return name[:pos] + ch + name[pos:]
    return name[:pos] + name[pos + 1] + ch + name[pos + 2 :]


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def swap_day_month(dob: date) -> date | None:
    """The American reading of a British date; None when the swap gives no other valid date."""
    if dob.day > 12 or dob.day == dob.month:
        return None
    swapped = date(dob.year, dob.day, dob.month)
    return swapped if swapped < REFERENCE_DATE else None


def wrong_digit(dob: date, rng: random.Random) -> date:
    """One digit of DDMMYYYY mistyped, giving another real date in the past."""
    text = dob.strftime("%d%m%Y")
    for _ in range(20):
        pos = rng.choice((0, 1, 2, 3, 6, 7))
        digit = rng.choice([d for d in "0123456789" if d != text[pos]])
        candidate = text[:pos] + digit + text[pos + 1 :]
        try:
            new = date(int(candidate[4:]), int(candidate[2:4]), int(candidate[:2]))
        except ValueError:
            continue
        if new < REFERENCE_DATE:
            return new
    return dob


def styled_postcode(postcode: str, rng: random.Random, rates: Rates) -> str:
    if rng.random() < rates.postcode_lower:
        postcode = postcode.lower()
    if rng.random() < rates.postcode_no_space:
        postcode = postcode.replace(" ", "")
    return postcode


def _before_marriage(person: Person, as_of: date | None) -> bool:
    return as_of is not None and person.married_on is not None and as_of < person.married_on


def _names(person: Person, rng: random.Random, rates: Rates, as_of: date | None):
    forename, surname = person.forename, person.surname
    middle = " ".join(person.middle_names)
    if person.former_surname and (
        _before_marriage(person, as_of) or rng.random() < rates.former_surname
    ):
        surname = person.former_surname
    if person.trap:
        return forename, middle, surname
    if person.short_form and rng.random() < rates.short_form:
        forename = person.short_form
    if middle and rng.random() < rates.drop_middle_names:
        middle = ""
    if rng.random() < rates.typo:
        if rng.random() < 0.5:
            forename = typo(forename, rng)
        else:
            surname = typo(surname, rng)
    swap = rates.swap_names * (2.5 if ORIGIN_BY_KEY[person.origin].surname_first else 1.0)
    if rng.random() < swap:
        forename, surname = surname, forename
    if rates.strip_accents and rng.random() < rates.strip_accents:
        forename, middle, surname = (strip_accents(x) for x in (forename, middle, surname))
    return forename, middle, surname


def _dob(person: Person, rng: random.Random, rates: Rates) -> tuple[date | None, bool]:
    if person.trap:
        return person.dob, False
    r = rng.random()
    if r < rates.dob_missing:
        return None, False
    r -= rates.dob_missing
    if r < rates.year_only:
        return date(person.dob.year, 1, 1), True
    r -= rates.year_only
    if r < rates.swap_day_month:
        return swap_day_month(person.dob) or person.dob, False
    r -= rates.swap_day_month
    if r < rates.wrong_digit:
        return wrong_digit(person.dob, rng), False
    return person.dob, False


def _address(
    person: Person, household: Household, rng: random.Random, rates: Rates, as_of: date | None
) -> tuple[Address, bool]:
    previous, moved_on = household.previous, household.moved_on
    if previous is None or moved_on is None or person.dob >= moved_on:
        return household.address, False
    if as_of is not None:
        old = as_of < moved_on
    else:
        old = not person.trap and rng.random() < rates.old_address
    return (previous, True) if old else (household.address, False)


def record_view(
    person: Person,
    household: Household,
    rates: Rates,
    rng: random.Random,
    *,
    as_of: date | None = None,
) -> View:
    """How one record shows `person`; `as_of` dates a historic record (names, address then)."""
    forename, middle, surname = _names(person, rng, rates, as_of)
    dob, year_only = _dob(person, rng, rates)
    nhs: str | None = None
    if rng.random() >= rates.nhs_missing:
        nhs = person.nhs_number
        if not person.trap and rng.random() < rates.nhs_bad_check:
            nhs = break_nhs_check(nhs, rng)
    address, previous = _address(person, household, rng, rates, as_of)
    return View(
        forename=forename,
        middle_names=middle,
        surname=surname,
        dob=dob,
        nhs=nhs,
        address=address,
        postcode=styled_postcode(address.postcode, rng, rates),
        previous_address=previous,
        year_only=year_only,
    )


_OCR_CONFUSIONS = {
    "0": "O",
    "O": "0",
    "o": "0",
    "1": "lI",
    "l": "1I",
    "I": "1l",
    "5": "S",
    "S": "5",
    "8": "B",
    "B": "8",
    "6": "G",
    "2": "Z",
}


def ocr_noise(
    text: str,
    rng: random.Random,
    *,
    confuse: float = 0.04,
    drop: float = 0.004,
    double: float = 0.004,
    break_line: float = 0.08,
) -> str:
    """What OCR made of a typed form: look-alike characters swapped, characters dropped or
    doubled, now and then a line broken in two. Labels stay readable; values suffer."""
    lines = text.rstrip("\n").split("\n")
    out: list[str] = []
    for line in lines:
        label, sep, value = line.partition(": ")
        if not sep:
            out.append(line)
            continue
        chars: list[str] = []
        for ch in value:
            r = rng.random()
            if r < drop:
                continue
            if r < drop + double:
                chars.append(ch + ch)
            elif ch in _OCR_CONFUSIONS and rng.random() < confuse:
                chars.append(rng.choice(_OCR_CONFUSIONS[ch]))
            else:
                chars.append(ch)
        out.append(label + sep + "".join(chars))
    if rng.random() < break_line:
        breakable = [i for i, line in enumerate(out) if " " in line.partition(": ")[2].strip()]
        if breakable:
            i = rng.choice(breakable)
            label, sep, value = out[i].partition(": ")
            spaces = [j for j, c in enumerate(value) if c == " " and 0 < j < len(value) - 1]
            if spaces:
                j = rng.choice(spaces)
                out[i] = label + sep + value[:j] + "\n" + value[j + 1 :]
    return "\n".join(out) + "\n"
