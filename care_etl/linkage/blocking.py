"""Index: candidate pairs are the union of a few blocking rules, each an exact key match.

A rule that misses a pair is rescued by another (a typo in the surname still shares the date
of birth; a swapped day and month still shares the surname sound and birth year), so recall
comes from the union and each rule can stay narrow and cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jellyfish
import numpy as np
import pandas as pd
import recordlinkage
from recordlinkage.index import Block

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockingRule:
    """A named exact-match key; `excludes` are compared fields the key already constrains."""

    name: str
    excludes: tuple[str, ...]


#: The blocking rules, in the order they are applied. Their keys are built by `blocking_keys`.
RULES: tuple[BlockingRule, ...] = (
    BlockingRule("nhs_number", ()),
    BlockingRule("date_of_birth", ("date_of_birth",)),
    BlockingRule("family_sound_birth_year", ("family_name", "date_of_birth")),
    BlockingRule("postcode_initial", ("postcode", "given_name", "address")),
)


def _soundex(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    letters = key.replace(" ", "")
    return jellyfish.soundex(letters) if letters else None


def _codes(keys: pd.Series, max_block_size: int, rule: str) -> np.ndarray:
    """Integer key per record, NaN when missing or when its block is too big to compare."""
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, dtype=int)
    too_big = counts > max_block_size
    if too_big.any():
        log.warning(
            "blocking rule %s: %d keys shared by more than %d records were skipped",
            rule,
            int(too_big.sum()),
            max_block_size,
        )
    keep = codes >= 0
    keep[keep] = ~too_big[codes[keep]]
    return np.where(keep, codes, np.nan)


def blocking_keys(prepared: pd.DataFrame, max_block_size: int) -> pd.DataFrame:
    """One column per rule in RULES: the records' key codes (NaN: not blocked by that rule)."""
    family_sound = pd.Series(prepared["family_key"]).map(_soundex)
    year = prepared["dob_y"].astype(str).where(prepared["dob_y"] > 0)
    initial = prepared["given_key"].str[0]
    raw = {
        "nhs_number": prepared["nhs_key"],
        "date_of_birth": (
            prepared["dob_y"] * 10000 + prepared["dob_m"] * 100 + prepared["dob_d"]
        ).where(prepared["dob_y"] > 0),
        "family_sound_birth_year": family_sound + "|" + year,
        "postcode_initial": prepared["postcode_key"] + "|" + initial,
    }
    return pd.DataFrame(
        {rule.name: _codes(raw[rule.name], max_block_size, rule.name) for rule in RULES},
        index=prepared.index,
    )


def candidate_pairs(keys: pd.DataFrame) -> pd.MultiIndex:
    """Union of the rules' pairs, as a recordlinkage de-duplication index (left > right)."""
    indexer = recordlinkage.Index()
    for rule in RULES:
        indexer.add(Block(left_on=rule.name))
    if len(keys) < 2:
        return pd.MultiIndex.from_arrays([np.zeros(0, np.int64)] * 2)
    return indexer.index(keys)


def rule_membership(keys: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    """For each pair, which rules would have proposed it (the EM trains on each rule's pairs)."""
    member = {}
    for rule in RULES:
        codes = keys[rule.name].to_numpy()
        a, b = codes[left], codes[right]
        member[rule.name] = (a == b) & ~np.isnan(a)
    return pd.DataFrame(member)


def random_pairs(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of distinct records drawn uniformly (every pair when there are few), left < right."""
    total = n * (n - 1) // 2
    if total <= count:
        left, right = np.triu_indices(n, k=1)
        return left.astype(np.int64), right.astype(np.int64)
    first = rng.integers(0, n, size=count)
    second = rng.integers(0, n - 1, size=count)
    second = second + (second >= first)
    return np.minimum(first, second), np.maximum(first, second)
