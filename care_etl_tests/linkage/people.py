"""Synthetic people for the linkage tests: a few hundred records, built with numpy.

The model estimates its parameters from the data, so every test needs a background crowd:
people seen one to three times across sources, with typos, moves and missing NHS numbers.
Tests add the handful of records they are about to this crowd.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEMALE = ("Amelia", "Olivia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
          "Lily", "Evie", "Isabella", "Sophie", "Ivy", "Freya", "Harper", "Willow", "Daisy",
          "Alice", "Ruby", "Florence", "Matilda", "Rosie", "Jessica", "Phoebe", "Evelyn",
          "Sienna", "Chloe", "Maryam")  # fmt: skip
MALE = ("Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar",
        "Charlie", "Jacob", "Thomas", "Henry", "William", "Freddie", "Alfie", "Theodore",
        "Archie", "Joshua", "Alexander", "James", "Isaac", "Edward", "Samuel", "Lucas",
        "Max", "Finley", "Daniel", "Ethan", "Logan")  # fmt: skip
FAMILY = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
          "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
          "Green", "Hall", "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards",
          "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes", "Moore", "Clark", "King",
          "Harrison", "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan", "Scott", "Watson",
          "Davis", "Parker", "James", "Bennett", "Young", "Phillips", "Richardson", "Mitchell",
          "Bailey", "Carter", "Cook", "Singh", "Shaw", "Bell", "Collins", "Morgan", "Kelly",
          "Begum")  # fmt: skip
SOURCES = ("health", "housing", "social_care")
_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
_OUTWARD = ("E8", "E9", "N1", "N16", "E5", "E2", "N4", "E1")


def nhs_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Valid NHS numbers (modulus 11), distinct."""
    found: list[str] = []
    while len(found) < n:
        digits = rng.integers(0, 10, size=9)
        check = 11 - int((digits * np.arange(10, 1, -1)).sum()) % 11
        check = 0 if check == 11 else check
        number = "".join(map(str, digits)) + str(check)
        if check != 10 and number not in found:
            found.append(number)
    return found


def postcodes(rng: np.random.Generator, n: int) -> list[str]:
    return [
        f"{rng.choice(_OUTWARD)} {rng.integers(1, 10)}{''.join(rng.choice(_LETTERS, 2))}"
        for _ in range(n)
    ]


def _typo(name: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(name)))
    return name[:i] + "aeiourn"[int(rng.integers(0, 7))] + name[i + 1 :]


def crowd(n_people: int = 160, seed: int = 11) -> pd.DataFrame:
    """Standardised records of `n_people` people; column `person` is the truth (drop it)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"]), n_people)
    given = np.where(sex == "F", rng.choice(FEMALE, n_people), rng.choice(MALE, n_people))
    family = rng.choice(FAMILY, n_people)
    born = pd.Timestamp("1935-01-01") + pd.to_timedelta(rng.integers(0, 29000, n_people), "D")
    homes = postcodes(rng, n_people)
    nhs = nhs_numbers(rng, n_people)
    rows = []
    for p in range(n_people):
        for copy in range(int(rng.integers(1, 4))):
            record = {
                "source": SOURCES[copy],
                "source_record_id": f"{SOURCES[copy][:2].upper()}{p:04d}",
                "person": p,
                "given_name": given[p],
                "family_name": family[p],
                "date_of_birth": born[p],
                "sex": sex[p],
                "postcode": homes[p],
                "nhs_number": nhs[p] if rng.random() < 0.5 else None,
            }
            if copy and rng.random() < 0.15:
                record["given_name"] = _typo(str(given[p]), rng)
            if copy and rng.random() < 0.15:
                record["family_name"] = _typo(str(family[p]), rng)
            if copy and rng.random() < 0.2:
                record["postcode"] = postcodes(rng, 1)[0]
            rows.append(record)
    records = pd.DataFrame(rows)
    records["date_of_birth"] = pd.to_datetime(records["date_of_birth"])
    return records


def with_records(records: pd.DataFrame, extra: list[dict]) -> pd.DataFrame:
    """The crowd plus the records a test is about (missing fields are null)."""
    added = pd.DataFrame(extra)
    if "date_of_birth" in added:
        added["date_of_birth"] = pd.to_datetime(added["date_of_birth"])
    return pd.concat([records, added], ignore_index=True)
