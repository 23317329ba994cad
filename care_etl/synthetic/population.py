"""The true population of the synthetic borough: people in households at addresses.

Every source writer draws its records from this one population, so the ground truth is
known exactly. Households come first (families, couples, single people, several
generations, lodgers, sharers) because relationships, shared addresses and UPRNs, and the
trap pairs (twins, a father and son of one name) all follow from who lives with whom.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from care_etl.synthetic.identifiers import NhsNumbers, ni_number, postcode_units
from care_etl.synthetic.namepool import (
    COMMON_NAMES,
    ORIGIN_BY_KEY,
    Origin,
    feminine_surname,
    own_surname,
    pick,
    pick_origin,
)
from care_etl.synthetic.nicknames import short_forms

#: "Today" for the synthetic extracts. Fixed, so that output does not depend on the clock.
REFERENCE_DATE = date(2025, 3, 31)

#: Postcode districts of the fictional borough: (district, locality, housing office).
DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("N16", "Stoke Green", "North"),
    ("N4", "Finsworth", "North"),
    ("N15", "Seven Elms", "North"),
    ("E5", "Clapford", "East"),
    ("E9", "Marshgate", "East"),
    ("E8", "Millbrook", "Central"),
    ("N1", "Kingsgate", "Central"),
    ("E2", "Bethwell", "South"),
    ("E1", "Whitmoor", "South"),
)

_STREET_STEMS = (
    "Acacia",
    "Albion",
    "Alder",
    "Ashgrove",
    "Balmoral",
    "Beech",
    "Belgrave",
    "Birch",
    "Blenheim",
    "Bramble",
    "Carlton",
    "Cedar",
    "Chestnut",
    "Clarence",
    "Cromwell",
    "Dalby",
    "Denmark",
    "Elm",
    "Fairfield",
    "Fernbank",
    "Gladstone",
    "Glebe",
    "Hawthorn",
    "Hazel",
    "Highbury",
    "Holly",
    "Kingsland",
    "Laburnum",
    "Lavender",
    "Linden",
    "Malvern",
    "Maple",
    "Mayfield",
    "Mill",
    "Mortimer",
    "Navarino",
    "Oak",
    "Orchard",
    "Osborne",
    "Palmerston",
    "Queensbridge",
    "Richmond",
    "Rowan",
    "Sandringham",
    "Shacklewell",
    "Spencer",
    "Stanley",
    "Sycamore",
    "Tudor",
    "Victoria",
    "Walford",
    "Wellington",
    "Willow",
    "Windsor",
    "Wordsworth",
)
_STREET_PREFIXES = (
    "Upper ",
    "Lower ",
    "North ",
    "South ",
    "East ",
    "West ",
    "Old ",
    "New ",
    "Little ",
    "Great ",
)
_STREET_SUFFIXES = (
    "Road",
    "Street",
    "Grove",
    "Close",
    "Avenue",
    "Gardens",
    "Lane",
    "Terrace",
    "Crescent",
    "Place",
    "Walk",
    "Way",
)

#: Household kinds and their share of households (UK-like: about 2.5 people per household).
HOUSEHOLD_KINDS: tuple[tuple[str, float], ...] = (
    ("single", 0.30),
    ("couple", 0.20),
    ("family", 0.25),
    ("single_parent", 0.10),
    ("multi_generation", 0.05),
    ("with_lodger", 0.05),
    ("sharers", 0.05),
)


@dataclass(frozen=True)
class Address:
    """A property. `flat` is the flat number inside the building at `number` when not None."""

    uprn: str
    flat: str | None
    number: str
    street: str
    locality: str
    postcode: str
    office: str

    @property
    def street_line(self) -> str:
        return f"{self.number} {self.street}"

    def one_line(self, *, locality: bool = True) -> str:
        parts = [f"Flat {self.flat}"] if self.flat else []
        parts.append(self.street_line)
        if locality:
            parts.append(self.locality)
        parts.append("London")
        return ", ".join(parts)


@dataclass
class Person:
    """One true person. `surname` is the current one; `former_surname` the one before marriage."""

    person_id: str
    household_id: int
    role: str  # relationship to the household's lead, in housing's vocabulary
    origin: str
    sex: str  # M, F or X
    forename: str
    middle_names: tuple[str, ...]
    surname: str
    dob: date
    nhs_number: str
    ni_number: str | None = None
    former_surname: str | None = None
    married_on: date | None = None
    short_form: str | None = None
    date_of_death: date | None = None
    parents: list[str] = field(default_factory=list)
    partner: str | None = None
    #: One of a trap pair: written without mess so the trap is as hard as it is in life.
    trap: bool = False

    def age(self, on: date = REFERENCE_DATE) -> int:
        return on.year - self.dob.year - ((on.month, on.day) < (self.dob.month, self.dob.day))


@dataclass
class Household:
    household_id: int
    kind: str
    address: Address
    previous: Address | None = None
    moved_on: date | None = None
    members: list[Person] = field(default_factory=list)

    @property
    def lead(self) -> Person:
        return self.members[0]


@dataclass
class Population:
    persons: list[Person]
    households: list[Household]
    #: (kind, true_person_id_a, true_person_id_b) for twin, father_son and namesake pairs.
    trap_pairs: list[tuple[str, str, str]]

    def __post_init__(self) -> None:
        self.by_id = {p.person_id: p for p in self.persons}
        self.household_of = {h.household_id: h for h in self.households}


def random_date(rng: random.Random, start: date, end: date) -> date:
    """A uniform date in [start, end]; `start` when the range is empty."""
    span = (end - start).days
    return start if span <= 0 else start + timedelta(days=rng.randint(0, span))


def _dob_for_age(rng: random.Random, age: int) -> date:
    latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age)
    return random_date(rng, latest - timedelta(days=364), latest)


class _Properties:
    """Hands out properties street by street, so a postcode holds a dozen or so neighbours.

    Each household picks a district first, so even a small population spreads over every
    district (and so over every housing office).
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_uprn = 100021000000 + rng.randrange(100000)
        #: Every property built so far, in any district (where people moved from).
        self.pool: list[Address] = []
        self.streets: set[tuple[str, str]] = set()
        self.districts: list[list[Address]] = [[] for _ in DISTRICTS]
        self.cursors = [0] * len(DISTRICTS)

    def next_vacant(self) -> Address:
        """The next property along a street of a random district; one in eight stands empty."""
        district = self.rng.randrange(len(DISTRICTS))
        properties = self.districts[district]
        while True:
            while self.cursors[district] >= len(properties):
                self._street(district)
            address = properties[self.cursors[district]]
            self.cursors[district] += 1
            if self.rng.random() >= 0.13:
                return address

    def _uprn(self) -> str:
        self.next_uprn += self.rng.randint(1, 40)
        if self.rng.random() < 0.15:  # older registrations carry shorter UPRNs
            return str(10008000000 + self.next_uprn % 1000000000)
        return str(self.next_uprn)

    def _street(self, index: int) -> None:
        rng = self.rng
        district, locality, office = DISTRICTS[index]
        for _ in range(1000):
            prefix = "" if rng.random() < 0.8 else rng.choice(_STREET_PREFIXES)
            street = f"{prefix}{rng.choice(_STREET_STEMS)} {rng.choice(_STREET_SUFFIXES)}"
            if (district, street) not in self.streets:
                self.streets.add((district, street))
                break
        else:  # about 7,000 street names per district: millions of households
            raise ValueError("synthetic borough has run out of street names")
        added = len(self.pool)
        postcodes = postcode_units(district, rng.randint(1, 9), rng.randint(1, 3), rng)
        number = 0
        for postcode in postcodes:
            for _ in range(rng.randint(8, 18)):
                number += rng.randint(1, 2)
                if rng.random() < 0.12:  # a block of flats
                    for flat in range(1, rng.randint(4, 16)):
                        self.pool.append(
                            Address(
                                self._uprn(),
                                str(flat),
                                str(number),
                                street,
                                locality,
                                postcode,
                                office,
                            )
                        )
                else:
                    self.pool.append(
                        Address(self._uprn(), None, str(number), street, locality, postcode, office)
                    )
        self.districts[index].extend(self.pool[added:])


class _Builder:
    def __init__(self, people: int, seed: int) -> None:
        self.target = people
        self.rng = random.Random(f"care_etl:{seed}:population")
        self.nhs = NhsNumbers(np.random.default_rng([seed, 11]))
        self.properties = _Properties(self.rng)
        self.persons: list[Person] = []
        self.households: list[Household] = []

    # People -------------------------------------------------------------------------------

    def _forename(self, origin: Origin, sex: str, year: int) -> str:
        if origin.key != "british" and self.rng.random() < 0.12:
            origin = ORIGIN_BY_KEY["british"]  # second generation with an English name
        return pick(self.rng, origin.forenames("F" if sex == "X" else sex, year))

    def _person(
        self,
        hh: Household,
        role: str,
        origin: Origin,
        sex: str,
        age: int,
        family: str | None = None,
    ) -> Person:
        rng = self.rng
        dob = _dob_for_age(rng, age)
        forename = self._forename(origin, sex, dob.year)
        middles: list[str] = []
        if rng.random() < origin.middle_name_rate:
            for _ in range(rng.choice((1, 1, 1, 2))):
                middle = self._forename(origin, sex, dob.year)
                if middle != forename and middle not in middles:
                    middles.append(middle)
        family = family or pick(rng, origin.surnames)
        person = Person(
            person_id=f"TP{len(self.persons) + 1:07d}",
            household_id=hh.household_id,
            role=role,
            origin=origin.key,
            sex=sex,
            forename=forename,
            middle_names=tuple(middles),
            surname=own_surname(rng, family, origin.key, sex),
            dob=dob,
            nhs_number=next(self.nhs),
        )
        forms = short_forms(forename)
        if forms and rng.random() < 0.4:
            person.short_form = forms[0] if rng.random() < 0.6 else rng.choice(forms)
        if age >= 16:
            person.ni_number = ni_number(rng)
        if age >= 75 and rng.random() < 0.06:
            person.date_of_death = random_date(
                rng, REFERENCE_DATE - timedelta(days=3 * 365), REFERENCE_DATE - timedelta(days=10)
            )
        self.persons.append(person)
        hh.members.append(person)
        return person

    def _adult_sex(self) -> str:
        r = self.rng.random()
        return "X" if r < 0.004 else ("M" if r < 0.5 else "F")

    def _partner(self, hh: Household, lead: Person, role: str = "Partner") -> Person:
        rng = self.rng
        origin = ORIGIN_BY_KEY[lead.origin] if rng.random() < 0.85 else pick_origin(rng)
        if lead.sex == "X":
            sex = rng.choice("MF")
        elif rng.random() < 0.05:
            sex = lead.sex
        else:
            sex = "F" if lead.sex == "M" else "M"
        age = max(18, min(98, lead.age() + rng.randint(-6, 6)))
        partner = self._person(hh, role, origin, sex, age)
        lead.partner, partner.partner = partner.person_id, lead.person_id
        husband, wife = (lead, partner) if lead.sex == "M" else (partner, lead)
        if (husband.sex, wife.sex) == ("M", "F") and rng.random() < 0.6:
            self._marry(husband, wife)
        return partner

    def _marry(self, husband: Person, wife: Person) -> None:
        """The wife takes the husband's surname; the former one stays on her older records."""
        if wife.surname in ("Kaur", "Begum"):
            return
        married = feminine_surname(husband.surname, husband.origin)
        if married == wife.surname:
            return
        youngest = max(husband.dob, wife.dob)
        start = date(youngest.year + 18, youngest.month, 1)
        wife.former_surname, wife.surname = wife.surname, married
        wife.married_on = random_date(self.rng, start, REFERENCE_DATE - timedelta(days=30))

    def _child(self, hh: Household, role: str, parents: list[Person], max_age: int) -> Person:
        rng = self.rng
        father = next((p for p in parents if p.sex == "M"), None)
        mother = next((p for p in parents if p.sex != "M"), None)
        origin = ORIGIN_BY_KEY[(father or parents[0]).origin]
        family = (father or parents[0]).surname
        sex = rng.choice("MF")
        if father and mother and father.surname != mother.surname and rng.random() < 0.08:
            family = f"{mother.former_surname or mother.surname}-{father.surname}"
        youngest_parent = min(p.age() for p in parents)
        oldest = max(0, min(max_age, youngest_parent - 18))
        age = rng.randint(min(oldest, max(0, youngest_parent - 45)), oldest)  # born to 18-45s
        child = self._person(hh, role, origin, sex, age, family=family)
        child.parents = [p.person_id for p in parents]
        return child

    # Households -----------------------------------------------------------------------------

    def _children(self, hh: Household, parents: list[Person], grandchildren: bool = False) -> None:
        count = self.rng.choices((1, 2, 3, 4), weights=(0.4, 0.38, 0.16, 0.06))[0]
        for _ in range(count):
            max_age = 24 if self.rng.random() < 0.15 else 17
            child = self._child(hh, "Son", parents, max_age)
            if grandchildren:
                child.role = "Grandchild"
            else:
                child.role = "Son" if child.sex == "M" else "Daughter"

    def _household(self, hh: Household) -> None:
        rng = self.rng
        kind = hh.kind
        origin = pick_origin(rng)
        if kind == "single":
            age = min(98, int(18 + rng.triangular(0, 80, 30)))
            self._person(hh, "Lead Tenant", origin, self._adult_sex(), age)
        elif kind == "couple":
            lead = self._person(hh, "Lead Tenant", origin, rng.choice("MF"), rng.randint(20, 92))
            self._partner(hh, lead)
        elif kind == "family":
            lead = self._person(hh, "Lead Tenant", origin, rng.choice("MF"), rng.randint(24, 56))
            partner = self._partner(hh, lead)
            self._children(hh, [lead, partner])
        elif kind == "single_parent":
            sex = "F" if rng.random() < 0.85 else "M"
            lead = self._person(hh, "Lead Tenant", origin, sex, rng.randint(20, 55))
            self._children(hh, [lead])
        elif kind == "multi_generation":
            self._multi_generation(hh, origin)
        elif kind == "with_lodger":
            lead = self._person(hh, "Lead Tenant", origin, self._adult_sex(), rng.randint(30, 85))
            if rng.random() < 0.5:
                self._partner(hh, lead)
            for _ in range(rng.choice((1, 1, 2))):
                self._person(hh, "Lodger", pick_origin(rng), self._adult_sex(), rng.randint(19, 60))
        else:  # sharers
            for i in range(rng.randint(2, 4)):
                self._person(
                    hh,
                    "Lead Tenant" if i == 0 else "Other",
                    pick_origin(rng),
                    self._adult_sex(),
                    rng.randint(19, 40),
                )

    def _multi_generation(self, hh: Household, origin: Origin) -> None:
        rng = self.rng
        if rng.random() < 0.5:  # a family with the lead's parent living in
            lead = self._person(hh, "Lead Tenant", origin, rng.choice("MF"), rng.randint(30, 55))
            partner = self._partner(hh, lead)
            self._children(hh, [lead, partner])
            family = lead.former_surname or lead.surname
            parent = self._person(
                hh,
                "Parent",
                origin,
                rng.choice("MF"),
                min(98, lead.age() + rng.randint(20, 36)),
                family=family,
            )
            lead.parents = [parent.person_id]
            return
        # a grandparent's tenancy with an adult child and grandchildren
        lead = self._person(hh, "Lead Tenant", origin, rng.choice("MF"), rng.randint(55, 85))
        child = self._child(hh, "Son", [lead], 40)
        child.role = "Son" if child.sex == "M" else "Daughter"
        if child.age() < 20:
            return
        parents = [child]
        if rng.random() < 0.4:
            parents.append(self._partner(hh, child, role="Other"))
        self._children(hh, parents, grandchildren=True)

    def build(self) -> Population:
        rng = self.rng
        kinds = [k for k, _ in HOUSEHOLD_KINDS]
        weights = [w for _, w in HOUSEHOLD_KINDS]
        while len(self.persons) < self.target:
            remaining = self.target - len(self.persons)
            kind = "single" if remaining <= 2 else rng.choices(kinds, weights=weights)[0]
            hh = Household(len(self.households) + 1, kind, self.properties.next_vacant())
            mark = len(self.persons)
            self._household(hh)
            if len(self.persons) > self.target:  # too big for what is left: start again smaller
                del self.persons[mark:]
                continue
            self._maybe_moved(hh)
            self.households.append(hh)
        traps = _Traps(self.rng, self.persons, self.households).inject()
        return Population(self.persons, self.households, traps)

    def _maybe_moved(self, hh: Household) -> None:
        """About one household in eight moved within the borough in recent years."""
        rng = self.rng
        if rng.random() >= 0.12:
            return
        pool = self.properties.pool
        previous = pool[rng.randrange(len(pool))]
        if previous.uprn != hh.address.uprn:
            hh.previous = previous
            hh.moved_on = random_date(
                rng, REFERENCE_DATE - timedelta(days=8 * 365), REFERENCE_DATE - timedelta(days=60)
            )


class _Traps:
    """Twins, a father and son of one name, namesakes: the pairs that must stay apart."""

    def __init__(self, rng: random.Random, persons: list[Person], households: list[Household]):
        self.rng = rng
        self.persons = persons
        self.households = households
        self.pairs: list[tuple[str, str, str]] = []

    def inject(self) -> list[tuple[str, str, str]]:
        people = len(self.persons)
        self._twins(max(2, people // 700))
        self._father_son(max(2, people // 1500))
        self._namesakes(max(2, people // 1500))
        return self.pairs

    def _pair(self, kind: str, a: Person, b: Person) -> None:
        a.trap = b.trap = True
        self.pairs.append((kind, a.person_id, b.person_id))

    def _twins(self, count: int) -> None:
        candidates = []
        for hh in self.households:
            kids = [p for p in hh.members if p.parents and p.age() < 18 and not p.trap]
            pairs = [
                (a, b)
                for i, a in enumerate(kids)
                for b in kids[i + 1 :]
                if a.parents == b.parents and a.surname == b.surname
            ]
            if pairs:
                candidates.append(pairs[0])
        for a, b in self.rng.sample(candidates, min(count, len(candidates))):
            b.dob = a.dob
            while b.forename == a.forename:
                b.forename = self.rng.choice(ORIGIN_BY_KEY[b.origin].forenames(b.sex, b.dob.year))
            b.short_form = None
            self._pair("twin", a, b)

    def _father_son(self, count: int) -> None:
        candidates = []
        for hh in self.households:
            for son in hh.members:
                if son.sex != "M" or son.trap or not son.parents:
                    continue
                father = next(
                    (
                        p
                        for p in hh.members
                        if p.person_id in son.parents and p.sex == "M" and not p.trap
                    ),
                    None,
                )
                if father is not None:
                    candidates.append((father, son))
                    break
        # "Junior" living at home is the usual case: prefer sons of 16 and over
        self.rng.shuffle(candidates)
        candidates.sort(key=lambda pair: pair[1].age() < 16)
        for father, son in candidates[:count]:
            son.forename, son.surname = father.forename, father.surname
            son.short_form = father.short_form
            son.middle_names = tuple(m for m in son.middle_names if m not in father.middle_names)
            self._pair("father_son", father, son)

    def _namesakes(self, count: int) -> None:
        singles = [
            hh.lead
            for hh in self.households
            if hh.kind == "single"
            and hh.lead.sex in "MF"
            and not hh.lead.trap
            and hh.lead.age() < 85
        ]
        self.rng.shuffle(singles)
        postcode = {p.person_id: hh.address.postcode for hh in self.households for p in hh.members}
        used: set[str] = set()
        for i in range(count):
            origin, sex, forename, surname = COMMON_NAMES[i % len(COMMON_NAMES)]
            group = [p for p in singles if p.sex == sex and p.person_id not in used]
            a = next(iter(group), None)
            b = (
                next((p for p in group[1:] if postcode[p.person_id] != postcode[a.person_id]), None)
                if a
                else None
            )
            if a is None or b is None:
                continue
            for p in (a, b):
                used.add(p.person_id)
                p.origin, p.forename, p.surname = origin, forename, surname
                p.middle_names, p.former_surname, p.married_on = (), None, None
                p.short_form = None
            b.dob = a.dob
            self._pair("namesake", a, b)


def build_population(people: int, seed: int) -> Population:
    """The borough's true population: deterministic in (people, seed)."""
    return _Builder(people, seed).build()
