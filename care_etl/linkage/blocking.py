"""Index: candidate pairs are the union of a few blocking rules and a sorted neighbourhood.

A rule that misses a pair is rescued by another (a typo in the surname still shares the date
of birth; a swapped day and month still shares the surname sound and birth year; a move and
a mistyped date still share the sound of both names), so recall comes from the union and
each rule can stay narrow and cheap: the date of birth alone would propose tens of millions
of pairs for a million records, so it is paired with an initial or the postcode. The
sorted-neighbourhood pass pairs records whose full names sort close together, which catches
a typo late in a name that every sound key misses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jellyfish
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockingRule:
    """A named exact-match key; `excludes` are compared fields the key already constrains."""

    name: str
    excludes: tuple[str, ...]
    #: Whether EM estimates m on this rule's pairs (a rule on name similarity would teach
    #: it that names always agree).
    trains: bool = True
    #: Window of a sorted-neighbourhood rule (distinct keys either side); 0 for a block.
    window: int = 0


#: The blocking rules, in the order they are applied. Their keys are built by `blocking_keys`.
RULES: tuple[BlockingRule, ...] = (
    BlockingRule("nhs_number", ("nhs_number",)),
    BlockingRule("date_of_birth_given_initial", ("date_of_birth", "given_name")),
    # Trains too: without it no session sees forenames unconstrained when there are no
    # NHS numbers, and the forename's m would stay at EM's starting guess.
    BlockingRule("date_of_birth_family_initial", ("date_of_birth", "family_name")),
    BlockingRule(
        "date_of_birth_initials", ("date_of_birth", "given_name", "family_name"), trains=False
    ),
    BlockingRule(
        "family_sound_birth_year", ("family_name", "date_of_birth", "given_name"), trains=False
    ),
    BlockingRule("date_of_birth_postcode", ("date_of_birth", "postcode"), trains=False),
    BlockingRule("postcode_initial", ("postcode", "given_name", "address")),
    BlockingRule("postcode_family_initial", ("postcode", "family_name", "address"), trains=False),
    BlockingRule("address", ("address", "postcode"), trains=False),
    BlockingRule("names_sound", ("given_name", "family_name"), trains=False),
    BlockingRule("sorted_names", ("given_name", "family_name"), trains=False, window=5),
)


def _soundex(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    letters = key.replace(" ", "")
    return jellyfish.soundex(letters) if letters else None


def _map_keys(keys: pd.Series, func) -> np.ndarray:
    """Apply `func` once per distinct key."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return mapped[codes]


def _unordered(first: pd.Series, second: pd.Series) -> pd.Series:
    """first|second with the two in sorted order; missing when either is."""
    both = (first.notna() & second.notna()).to_numpy()
    a, b = first.fillna("").to_numpy(str), second.fillna("").to_numpy(str)
    low, high = np.where(a <= b, a, b), np.where(a <= b, b, a)
    joined = np.char.add(np.char.add(low, "|"), high)
    return pd.Series(joined, index=first.index, dtype=object).where(both)


def _codes(keys: pd.Series, max_block_size: int, rule: BlockingRule) -> np.ndarray:
    """Integer key per record, NaN when missing or when its block is too big to compare.

    A sorted-neighbourhood rule's codes follow the keys' sorted order, which it relies on;
    a block needs only equal codes for equal keys (sorting a million strings takes seconds).
    """
    codes, _ = pd.factorize(keys, use_na_sentinel=True, sort=bool(rule.window))
    counts = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, dtype=int)
    too_big = counts > max_block_size
    if too_big.any():
        log.warning(
            "blocking rule %s: %d keys shared by more than %d records were skipped",
            rule.name,
            int(too_big.sum()),
            max_block_size,
        )
    keep = codes >= 0
    keep[keep] = ~too_big[codes[keep]]
    return np.where(keep, codes, np.nan)


def blocking_keys(prepared: pd.DataFrame, max_block_size: int) -> pd.DataFrame:
    """One column per rule in RULES: the records' key codes (NaN: not blocked by that rule)."""
    family_sound = pd.Series(_map_keys(prepared["family_key"], _soundex), dtype=object)
    given_sound = pd.Series(_map_keys(prepared["given_key"], _soundex), dtype=object)
    year = prepared["dob_y"].astype(str).where(prepared["dob_y"] > 0)
    initial = prepared["given_key"].str[0]
    family_initial = prepared["family_key"].str[0]
    dob = (
        (prepared["dob_y"] * 10000 + prepared["dob_m"] * 100 + prepared["dob_d"])
        .astype(str)
        .where(prepared["dob_y"] > 0)
    )
    first, second = initial.fillna("").to_numpy(str), family_initial.fillna("").to_numpy(str)
    both = (first != "") & (second != "")
    initials = pd.Series(
        np.where(first <= second, np.char.add(first, second), np.char.add(second, first)),
        index=prepared.index,
        dtype=object,
    ).where(both)
    raw = {
        "nhs_number": prepared["nhs_key"],
        "date_of_birth_given_initial": dob + "|" + initial,
        "date_of_birth_family_initial": dob + "|" + family_initial,
        # Both initials in either order: forename and surname swapped.
        "date_of_birth_initials": dob + "|" + initials,
        "date_of_birth_postcode": dob + "|" + prepared["postcode_key"],
        "family_sound_birth_year": family_sound + "|" + year + "|" + initial,
        "postcode_initial": prepared["postcode_key"] + "|" + initial,
        "postcode_family_initial": prepared["postcode_key"] + "|" + prepared["family_key"].str[0],
        # Spaces dropped: "GREEN STREET" and "GREENSTREET" are one address typed twice.
        "address": prepared["address_key"].str.replace(" ", "", regex=False),
        # The two sounds in either order: forename and surname swapped.
        "names_sound": _unordered(given_sound, family_sound),
        "sorted_names": prepared["family_key"] + " " + prepared["given_key"],
    }
    return pd.DataFrame(
        {rule.name: _codes(raw[rule.name], max_block_size, rule) for rule in RULES},
        index=prepared.index,
    )


def candidate_pairs(keys: pd.DataFrame) -> pd.MultiIndex:
    """Union of the rules' pairs, as a de-duplication index (positions, left < right)."""
    n = len(keys)
    codes = candidate_codes(keys)
    positions = np.arange(n)
    # Levels are the positions themselves, so `.codes` are positions (as recordlinkage's).
    return pd.MultiIndex(
        levels=[positions, positions], codes=[codes // n, codes % n], verify_integrity=False
    )


def candidate_codes(keys: pd.DataFrame) -> np.ndarray:
    """Union of the rules' pairs as sorted, distinct codes left * n + right (left < right).

    Each rule proposes the pairs recordlinkage's Block (records of one key) or
    SortedNeighbourhood (records whose keys are at most `window` distinct keys apart)
    would, but as integer codes made straight from the sorted keys: recordlinkage merges
    DataFrames and builds a MultiIndex per rule, several times the time and memory.
    """
    n = len(keys)
    if n < 2:
        return np.zeros(0, np.int64)
    found = [_rule_codes(keys[rule.name].to_numpy(), rule.window) for rule in RULES]
    codes = np.concatenate(found)
    del found
    codes.sort()
    return codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if len(codes) else codes


def _rule_codes(key: np.ndarray, window: int) -> np.ndarray:
    """Codes min * n + max of the record pairs whose keys (NaN: none) are equal, or with
    `window`, at most `window` distinct keys apart; each pair once."""
    n = len(key)
    order = np.flatnonzero(~np.isnan(key))
    order = order[np.argsort(key[order], kind="stable")]
    if len(order) < 2:
        return np.zeros(0, np.int64)
    ordered = key[order]
    new = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(order)))
    rank = np.cumsum(new) - 1
    found = []
    for step in range(window + 1):
        if step == 0:  # the rest of the record's own group
            first = np.arange(1, len(order) + 1)
            count = starts[rank] + sizes[rank] - first
        else:  # the whole group `step` keys further on
            target = np.minimum(rank + step, len(starts) - 1)
            beyond = rank + step >= len(starts)
            first = starts[target]
            count = np.where(beyond, 0, sizes[target])
        found.append(_pair_codes(order, first, count, n))
    return np.concatenate(found)


def _pair_codes(order: np.ndarray, first: np.ndarray, count: np.ndarray, n: int) -> np.ndarray:
    """Codes of each sorted position i paired with positions first[i] .. first[i]+count[i]-1."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    mine = np.repeat(np.arange(len(order)), count)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    other = order[np.repeat(first, count) + offset]
    del offset
    mine = order[mine]
    return np.minimum(mine, other).astype(np.int64) * n + np.maximum(mine, other)


def rule_membership(keys: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    """For each pair, which training rules would have proposed it (EM runs on each's pairs)."""
    member = {}
    for rule in RULES:
        if not rule.trains:
            continue
        codes = keys[rule.name].to_numpy()
        codes = np.where(np.isnan(codes), -1, codes).astype(np.int32)  # a quarter the bytes
        a, b = codes[left], codes[right]
        member[rule.name] = (a == b) & (a >= 0)
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
