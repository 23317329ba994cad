"""The candidate pairs are exactly recordlinkage's Block and SortedNeighbourhood union.

blocking.candidate_codes builds the pairs from sorted keys instead of recordlinkage's
DataFrame merges (for speed and memory at a million records); the pairs it proposes must
not change, so they are checked against recordlinkage itself on keys with missing values,
blocks of many sizes and keys that sort next to each other. A sorted-neighbourhood rule
with `rare` keeps, of recordlinkage's pairs, those of one key and those where one of the
two keys is rare (BlockingRule.rare).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from recordlinkage.index import Block, SortedNeighbourhood

from care_etl.linkage.blocking import (
    RARE_KEY,
    RULES,
    candidate_codes,
    candidate_pairs,
    pairs_sharing,
)


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
        if rule.rare:
            key = keys[rule.name]
            held = key.map(key.value_counts()).to_numpy()
            same = key.to_numpy()[first] == key.to_numpy()[second]
            keep = same | (np.minimum(held[first], held[second]) <= rule.rare)
            first, second = first[keep], second[keep]
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


def test_two_common_neighbouring_names_are_not_paired_but_a_rare_one_meets_both() -> None:
    common_a, common_b, rare = [1.0] * (RARE_KEY + 1), [2.0] * (RARE_KEY + 1), [1.5]
    names = np.array(common_a + common_b + rare)
    keys = pd.DataFrame({rule.name: np.full(len(names), np.nan) for rule in RULES})
    keys["sorted_names"] = names
    codes = candidate_codes(keys)
    n = len(names)
    pairs = {(int(c // n), int(c % n)) for c in codes}
    a, b, typo = range(0, RARE_KEY + 1), range(RARE_KEY + 1, n - 1), n - 1
    assert not any((i, j) in pairs for i in a for j in b)  # two names, many records each
    assert all((i, typo) in pairs for i in (*a, *b))  # the rare key meets every neighbour
    assert all((i, j) in pairs for i in a for j in a if i < j)  # one name: every pair
    assert len(codes) == len(_reference(keys))


def test_no_keys_no_pairs() -> None:
    keys = pd.DataFrame({rule.name: np.full(50, np.nan) for rule in RULES})
    assert len(candidate_codes(keys)) == 0
    assert len(candidate_codes(keys.iloc[:1])) == 0


def _sharing(codes: np.ndarray, count: int, seed: int = 0) -> list[tuple[int, int]]:
    left, right, total = pairs_sharing(codes, count, np.random.default_rng(seed))
    sizes = np.bincount(codes[codes >= 0])
    assert total == int((sizes * (sizes - 1) // 2).sum())  # all the pairs, not those drawn
    return list(zip(left.tolist(), right.tolist(), strict=True))


def test_pairs_sharing_a_code_are_every_such_pair_when_few() -> None:
    """The pairs that estimate u beside an agreeing address: every pair of records with
    one address code, none with a missing one (-1)."""
    codes = np.array([3, -1, 3, 7, 7, 7, 3, -1, 9, -1])
    expected = {(0, 2), (0, 6), (2, 6), (3, 4), (3, 5), (4, 5)}
    assert sorted(_sharing(codes, 6)) == sorted(expected)
    assert _sharing(np.array([1, 2, -1, -1]), 10) == []
    # Numbered otherwise, the same records give the same pairs in the same order.
    assert _sharing(np.array([0, -1, 0, 5, 5, 5, 0, -1, 2, -1]), 6) == _sharing(codes, 6)


def test_pairs_sharing_a_code_are_drawn_uniformly_when_many() -> None:
    """A group's share of the drawn pairs is its share of all such pairs (a street of 40
    homes is 780 pairs, a couple one), so u is read from the pairs as they are."""
    sizes = [40, 2, 2, 10]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    drawn = _sharing(codes, 100_000)
    assert all(codes[a] == codes[b] and a < b for a, b in drawn[:1000])
    share = np.bincount(codes[[a for a, _ in drawn]], minlength=4) / len(drawn)
    expected = np.array([780, 1, 1, 45]) / 827
    assert np.abs(share - expected).max() < 0.01
    assert len(set(drawn)) == 827  # every pair drawn at least once
