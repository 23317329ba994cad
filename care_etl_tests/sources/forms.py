"""Fictional referral forms for the paper-reader tests and the OCR accuracy check."""

from __future__ import annotations

import random

PAPER_LABELS = {
    "Name": "text",
    "Date of Birth": "date",
    "NHS No": "digits",
    "Address": "text",
    "Postcode": "postcode",
    "Referrer": "text",
    "Date of referral": "date",
    "Other household members": "text",
}

_FORENAMES = [
    "Margaret",
    "William",
    "Zoë",
    "Seán",
    "Priya",
    "Kwame",
    "Aisha",
    "Tomasz",
    "Olivia",
    "Bill",
]
_SURNAMES = [
    "O'Brien",
    "MacDonald",
    "Okafor",
    "Smith-Jones",
    "Nowak",
    "Patel",
    "Ahmed",
    "Li",
    "Evans",
    "Hughes",
]
_STREETS = [
    "Mill Lane",
    "Amhurst Road",
    "Mare Street",
    "Dalston Lane",
    "Church Walk",
    "Victoria Park Road",
]
_POSTCODES = ["E8 3QP", "N16 7XY", "E5 0LL", "E9 6DG", "N1 5SB", "E2 8AA", "e83qp", "N167UX"]
_REFERRERS = [
    "Dr A Patel, Lower Clapton Group Practice",
    "Health visitor",
    "School nurse",
    "Self referral",
]


def random_form(rng: random.Random) -> dict[str, str]:
    """One form's values, as the bureau typed them."""
    nhs = "".join(rng.choice("0123456789") for _ in range(10))
    if rng.random() < 0.5:
        nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    house = f"{rng.randint(1, 180)} {rng.choice(_STREETS)}, London"
    others = ", ".join(
        f"{rng.choice(_FORENAMES)} {rng.choice(_SURNAMES)}" for _ in range(rng.randint(0, 3))
    )
    return {
        "Name": f"{rng.choice(_FORENAMES)} {rng.choice(_SURNAMES)}",
        "Date of Birth": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1925, 2020)}",
        "NHS No": nhs if rng.random() > 0.15 else "",
        "Address": f"Flat {rng.randint(1, 20)}, {house}" if rng.random() < 0.3 else house,
        "Postcode": rng.choice(_POSTCODES),
        "Referrer": rng.choice(_REFERRERS),
        "Date of referral": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1995, 2015)}",
        "Other household members": others,
    }


def form_text(values: dict[str, str]) -> str:
    """The typed form of source-systems.md section 4."""
    lines = ["REFERRAL FORM", *(f"{label}: {values[label]}".rstrip() for label in PAPER_LABELS)]
    return "\n".join(lines)
