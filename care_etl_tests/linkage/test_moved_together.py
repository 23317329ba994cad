"""moved_together gives, pair for pair, what its plain definition gives.

The linker computes it by looking up only the pairs at the two postcodes of some linked
move (for memory at 30 million pairs); the reference here reads every pair: the number of
other persons whose links join the pair's two postcodes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from care_etl.linkage.compare import MISSING
from care_etl.linkage.linker import moved_together


def _reference(postcode: np.ndarray, left, right, linked, labels) -> np.ndarray:
    levels = np.full(len(left), MISSING, dtype=np.int8)
    moves: dict[tuple[int, int], set[int]] = {}
    for a, b, person in zip(
        postcode[left[linked]], postcode[right[linked]], labels[left[linked]], strict=True
    ):
        if a >= 0 and b >= 0 and a != b:
            moves.setdefault((min(a, b), max(a, b)), set()).add(int(person))
    for i, (a, b) in enumerate(zip(postcode[left], postcode[right], strict=True)):
        if a < 0 or b < 0 or a == b:
            continue
        movers = moves.get((min(a, b), max(a, b)), set())
        own = {int(labels[left[i]]), int(labels[right[i]])}
        levels[i] = 0 if movers - own else 1
    return levels


def test_moved_together_matches_its_definition() -> None:
    rng = np.random.default_rng(11)
    seen = set()
    for n, pairs, postcodes in ((40, 300, 5), (200, 3000, 12), (500, 4000, 60), (900, 2000, 400)):
        postcode = rng.integers(-1, postcodes, n)
        left = rng.integers(0, n - 1, pairs)
        right = left + 1 + rng.integers(0, n - 1 - left)
        linked = rng.random(pairs) < 0.05
        labels = rng.integers(0, n // 3, n)
        prepared = pd.DataFrame({"postcode_code": postcode})
        found = moved_together(prepared, (left, right), linked, labels)
        expected = _reference(postcode, left, right, linked, labels)
        assert found.dtype == np.int8
        assert np.array_equal(found, expected), (n, pairs)
        seen.update(found.tolist())
    assert seen == {0, 1, MISSING}
