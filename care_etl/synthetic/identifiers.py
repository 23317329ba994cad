"""Identifiers with real structure: NHS numbers (modulus 11), NI numbers, postcodes, UPRNs.

Standardisation validates these formats, so the generator must produce valid ones (and
deliberately broken ones only where the mess calls for it).
"""

from __future__ import annotations

import random

import numpy as np

_NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # 10, 9, ..., 2 for the first nine digits
_POWERS = 10 ** np.arange(9, -1, -1, dtype=np.int64)

#: Letters allowed in the last two characters of a UK postcode (the inward code's unit).
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

_NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NI_BAD_PREFIXES = ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ")


class NhsNumbers:
    """An endless supply of distinct valid NHS numbers (first digit 4, 6 or 7 as in England),
    drawn in vectorised batches."""

    def __init__(self, rng: np.random.Generator, batch: int = 4096) -> None:
        self.rng = rng
        self.batch = batch
        self.seen: set[int] = set()
        self.ready: list[str] = []

    def __iter__(self) -> NhsNumbers:
        return self

    def __next__(self) -> str:
        while not self.ready:
            self._refill()
        return self.ready.pop()

    def _refill(self) -> None:
        rng = self.rng
        first = rng.choice(
            np.array([4, 6, 7], dtype=np.int64), size=self.batch, p=[0.45, 0.3, 0.25]
        )
        rest = rng.integers(0, 10, size=(self.batch, 8), dtype=np.int64)
        nine = np.column_stack([first, rest])
        check = 11 - (nine @ _NHS_WEIGHTS) % 11
        check[check == 11] = 0
        keep = check != 10
        values = np.column_stack([nine[keep], check[keep]]) @ _POWERS
        fresh = []
        for value in values.tolist():
            if value not in self.seen:
                self.seen.add(value)
                fresh.append(f"{value:010d}")
        self.ready = fresh[::-1]  # pop() from the end hands them out in drawn order


def nhs_numbers(count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct valid NHS numbers, in random order."""
    supply = NhsNumbers(rng)
    return [next(supply) for _ in range(count)]


def break_nhs_check(number: str, rng: random.Random) -> str:
    """One digit mistyped. Any single wrong digit fails modulus 11, as the weights are 2..10."""
    pos = rng.randrange(10)
    wrong = rng.choice([d for d in "0123456789" if d != number[pos]])
    return number[:pos] + wrong + number[pos + 1 :]


def spaced_nhs(number: str) -> str:
    """The 3-3-4 grouping printed on NHS cards: `943 476 5919`."""
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def ni_number(rng: random.Random) -> str:
    """A National Insurance number in a valid format (prefix rules of HMRC, suffix A-D)."""
    while True:
        prefix = rng.choice(_NI_FIRST) + rng.choice(_NI_SECOND)
        if prefix not in _NI_BAD_PREFIXES:
            break
    return f"{prefix}{rng.randrange(1_000_000):06d}{rng.choice('ABCD')}"


def postcode_units(district: str, sector: int, count: int, rng: random.Random) -> list[str]:
    """`count` distinct postcodes in one sector, e.g. `E8 3QP`."""
    units = [a + b for a in POSTCODE_UNIT_LETTERS for b in POSTCODE_UNIT_LETTERS]
    return [f"{district} {sector}{u}" for u in rng.sample(units, count)]
