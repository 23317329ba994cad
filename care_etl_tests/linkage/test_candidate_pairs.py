"""The candidate pairs are exactly recordlinkage's Block and SortedNeighbourhood union.

blocking.candidate_codes builds the pairs from sorted keys instead of recordlinkage's
DataFrame merges (for speed and memory at a million records); the pairs it proposes must
not change, so they are checked against recordlinkage itself on keys with missing values,
blocks of many sizes and keys that sort next to each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from recordlinkage.index import Block, SortedNeighbourhood

from care_etl.linkage.blocking import RULES, candidate_codes, candidate_pairs


def _keys(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for i, rule in enumerate(RULES):
        codes = rng.integers(0, max(2, n // (2 + i)), n).astype(float)
        codes[rng.random(n) < 0.2] = np.nan
        columns[rule.name] = codes
    return pd.DataFrame(columns)


def _reference(keys: pd.DataFrame) -> np.ndarray:
    n = len(keys)
    found = []
    for rule in RULES:
        if rule.window:
            indexer = SortedNeighbourhood(left_on=rule.name, window=2 * rule.window + 1)
        else:
            indexer = Block(left_on=rule.name)
        index = indexer.index(keys)
        first, second = index.codes[0].astype(np.int64), index.codes[1].astype(np.int64)
        found.append(np.minimum(first, second) * n + np.maximum(first, second))
    return np.unique(np.concatenate(found))


def test_candidate_codes_match_recordlinkage() -> None:
    for n, seed in ((2, 1), (7, 2), (60, 3), (500, 4)):
        keys = _keys(n, seed)
        codes = candidate_codes(keys)
        assert np.array_equal(codes, _reference(keys)), (n, seed)
        assert (codes // n < codes % n).all()


def test_candidate_pairs_are_positions_left_before_right() -> None:
    keys = _keys(300, 5)
    index = candidate_pairs(keys)
    codes = index.codes[0].astype(np.int64) * 300 + index.codes[1]
    assert np.array_equal(codes, _reference(keys))


def test_no_keys_no_pairs() -> None:
    keys = pd.DataFrame({rule.name: np.full(50, np.nan) for rule in RULES})
    assert len(candidate_codes(keys)) == 0
    assert len(candidate_codes(keys.iloc[:1])) == 0
