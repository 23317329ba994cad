"""Classify, the starting point: what the model believes before the data have spoken.

m and u per field level as estimated on generated council data (`reference_model.json`,
written by scripts/make_reference_model.py). The data decide (estimate.fit); each of their
estimates counts the reference as a few observations only: REFERENCE_MATCHES matching pairs
for m; REFERENCE_PAIRS random pairs for u and REFERENCE_RECORDS records for how common a name
is, each in a sample of as many or fewer, fading with the square of the sample beyond
(model._reference_strength): on a million random pairs a thousandth of one, on the handful
of pairs of a few records nearly all there is. Without it, four records could not say how rarely
strangers share a date of birth, and nothing linked, not even two identical records.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

REFERENCE_FILE = "reference_model.json"
#: What the reference counts for beside the data's own observations.
REFERENCE_PAIRS = 1_000
REFERENCE_MATCHES = 10
REFERENCE_RECORDS = 1_000


@functools.cache
def _reference() -> dict:
    path = Path(__file__).with_name(REFERENCE_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def _shares(field: str, part: str, levels: tuple[str, ...]) -> np.ndarray | None:
    """The reference's m or u of a field, in the order of `levels`; None when it does not
    know the field or its levels (the linker then starts from even shares)."""
    known = _reference()["fields"].get(field)
    if known is None or tuple(known) != tuple(levels):
        return None
    shares = np.array([known[level][part] for level in levels], dtype=float)
    return shares / shares.sum()


def reference_m(field: str, levels: tuple[str, ...]) -> np.ndarray | None:
    """How often one person's two records agree at each level, by the reference."""
    return _shares(field, "m", levels)


def reference_u(field: str, levels: tuple[str, ...]) -> np.ndarray | None:
    """How often two people's records agree at each level, by the reference."""
    return _shares(field, "u", levels)


def reference_prior() -> float:
    """The chance that two records drawn at random are one person, in a council's records."""
    return float(_reference()["prior"])


def fields() -> dict[str, tuple[str, ...]]:
    """The reference's fields and their levels."""
    return {f: tuple(levels) for f, levels in _reference()["fields"].items()}
