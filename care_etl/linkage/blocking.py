"""Index: candidate pairs are the union of a few blocking rules and a sorted neighbourhood.

A rule that misses a pair is rescued by another (a typo in the surname still shares the date
of birth; a swapped day and month still shares the surname sound and birth year; a move and
a mistyped date still share the sound of both names), so recall comes from the union and
each rule can stay narrow and cheap: the date of birth alone would propose tens of millions
of pairs for a million records, so it is paired with an initial or the postcode. The
sorted-neighbourhood pass pairs records whose full names sort close together, which catches
a typo late in a name that every sound key misses; as a typo makes a rare name, two
neighbouring names that many records hold are not paired record by record.
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
    #: With a window: records of two neighbouring keys are paired only when one of the two
    #: keys is held by at most this many records (0: always). A typo makes a rare key, and
    #: its record still meets every record of the keys beside it; two keys that many
    #: records hold are two names ("smith john" and "smith johnny"), and pairing all their
    #: records made most of the candidate pairs of a council's data (20.5M of 26.9M at
    #: 300k people) for links the other rules find.
    rare: int = 0
    #: Whether EM runs on this rule's pairs for the fields no training rule leaves free,
    #: and for those only: with neither NHS numbers nor postcodes, every training rule
    #: holds the date of birth equal, and its m would stay at EM's starting guess (a date
    #: that differs then all but rules a pair out).
    fills: bool = False


#: Records a key may hold and still count as rare for sorted_names (BlockingRule.rare).
RARE_KEY = 5

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
    BlockingRule("names_sound", ("given_name", "family_name"), trains=False, fills=True),
    BlockingRule(
        "sorted_names", ("given_name", "family_name"), trains=False, window=5, rare=RARE_KEY
    ),
    BlockingRule("sorted_address", ("address",), trains=False, window=1),
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


def _without_spaces(key: object) -> str | None:
    return key.replace(" ", "") if isinstance(key, str) else None


def _value_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """An integer per distinct value (-1 when missing), as int64."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64)


def _first_letters(keys: pd.Series) -> np.ndarray:
    """Code of each key's first letter (-1 when the key is missing or empty), as .str[0]."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    first = [u[0] if isinstance(u, str) and u else None for u in uniques]
    letters = _value_codes(np.array([*first, None], dtype=object))
    return letters[codes]


def _shared_initials(first: pd.Series, second: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the first letters of two columns from one vocabulary (one letter, one code)."""
    codes = _first_letters(pd.concat([first, second], ignore_index=True))
    return codes[: len(first)], codes[len(first) :]


def _sound_codes(family: pd.Series, given: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the soundex of each surname and forename key, from one vocabulary."""
    family_sound, given_sound = _map_keys(family, _soundex), _map_keys(given, _soundex)
    both = _value_codes(np.concatenate([family_sound, given_sound]))
    return both[: len(family)], both[len(family) :]


def _joined(*parts: np.ndarray) -> np.ndarray:
    """Dense codes of the parts taken together (-1 when any part is missing): equal where
    every part is equal, as the parts joined as text would be."""
    joined = parts[0]
    for part in parts[1:]:
        present = (joined >= 0) & (part >= 0)
        width = int(part.max(initial=0)) + 1
        # Re-coded after each part, so that the product never outgrows 64 bits.
        joined = np.where(present, _value_codes(joined * width + part), -1)
    return joined.astype(np.int64)


def _unordered_codes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Codes of the two parts in either order (-1 when either is missing)."""
    return _joined(np.minimum(first, second), np.maximum(first, second))


def _codes(keys: pd.Series | np.ndarray, max_block_size: int, rule: BlockingRule) -> np.ndarray:
    """Integer key per record, NaN when missing or when its block is too big to compare.

    A sorted-neighbourhood rule's codes follow the keys' sorted order, which it relies on;
    a block needs only equal codes for equal keys (sorting a million strings takes seconds).
    `keys` are text, or already codes (an integer array, -1 when missing: see `_joined`).
    """
    if isinstance(keys, np.ndarray) and keys.dtype.kind == "i":
        codes = keys
    else:
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
    # Keys of a block need only be equal where the records' values are: each part is coded
    # once (an integer per distinct value, -1 when missing) and the parts are joined as
    # integers, which is what joining them as text ("1990-01-02|J") decided, at a fraction
    # of the cost. Only the sorted-neighbourhood rules need the text, for its order.
    family_sound, given_sound = _sound_codes(prepared["family_key"], prepared["given_key"])
    dob_y = prepared["dob_y"].to_numpy()
    year = np.where(dob_y > 0, dob_y, -1).astype(np.int64)
    initial = _first_letters(prepared["given_key"])
    family_initial = _first_letters(prepared["family_key"])
    full_date = dob_y * 10000 + prepared["dob_m"].to_numpy() * 100 + prepared["dob_d"].to_numpy()
    dob = np.where(dob_y > 0, full_date, -1).astype(np.int64)
    # Both initials in either order: forename and surname swapped.
    initials = _unordered_codes(*_shared_initials(prepared["given_key"], prepared["family_key"]))
    postcode = _value_codes(prepared["postcode_key"])
    # Spaces dropped: "GREEN STREET" and "GREENSTREET" are one address typed twice.
    address = pd.Series(_map_keys(prepared["address_key"], _without_spaces), dtype=object)
    raw = {
        "nhs_number": prepared["nhs_key"],
        "date_of_birth_given_initial": _joined(dob, initial),
        "date_of_birth_family_initial": _joined(dob, family_initial),
        "date_of_birth_initials": _joined(dob, initials),
        "date_of_birth_postcode": _joined(dob, postcode),
        "family_sound_birth_year": _joined(family_sound, year, initial),
        "postcode_initial": _joined(postcode, initial),
        "postcode_family_initial": _joined(postcode, family_initial),
        "address": _value_codes(address),
        # The two sounds in either order: forename and surname swapped.
        "names_sound": _unordered_codes(given_sound, family_sound),
        "sorted_names": prepared["family_key"] + " " + prepared["given_key"],
        # A typo in the street ("melrose rdive") sorts the address next to its right form.
        "sorted_address": address,
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
    found = [_rule_codes(keys[rule.name].to_numpy(), rule.window, rule.rare) for rule in RULES]
    codes = np.concatenate(found)
    del found
    codes.sort()
    return codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if len(codes) else codes


def _rule_codes(key: np.ndarray, window: int, rare: int = 0) -> np.ndarray:
    """Codes min * n + max of the record pairs whose keys (NaN: none) are equal, or with
    `window`, at most `window` distinct keys apart (and with `rare`, one of the two keys
    held by at most `rare` records); each pair once."""
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
            if rare:
                beyond |= np.minimum(sizes[rank], sizes[target]) > rare
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
    """For each pair, which training (or filling) rules would have proposed it (EM runs on
    each's pairs)."""
    member = {}
    for rule in RULES:
        if not (rule.trains or rule.fills):
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


def pairs_sharing(
    codes: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs of distinct positions with the same code (>= 0), left < right: every such pair
    when there are at most `count`, else `count` drawn uniformly from them (with
    replacement); and how many such pairs there are in all. Groups are taken in the order
    of their first position, so the pairs do not depend on how the codes were numbered."""
    positions = np.flatnonzero(codes >= 0)
    first = pd.Series(positions).groupby(codes[positions]).transform("min").to_numpy()
    positions = positions[np.lexsort((positions, first))]
    grouped = codes[positions]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, len(positions)]).astype(np.int64)
    per_group = sizes * (sizes - 1) // 2
    ends = np.cumsum(per_group)
    total = int(ends[-1]) if len(ends) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    ranks = np.arange(total) if total <= count else rng.integers(0, total, size=count)
    group = np.searchsorted(ends, ranks, side="right")
    i, j = _unrank(ranks - (ends - per_group)[group], sizes[group])
    left, right = positions[starts[group] + i], positions[starts[group] + j]
    return np.minimum(left, right), np.maximum(left, right), total


def _unrank(k: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k-th pair (i < j) of range(size), pairs in the order (0, 1), (0, 2), ..., (1, 2)."""
    b = 2 * size - 1
    i = np.floor((b - np.sqrt(b.astype(float) ** 2 - 8 * k)) / 2).astype(np.int64)
    before = i * (b - i) // 2  # pairs whose first member is below i
    i = np.where(before > k, i - 1, i)  # float rounding, either way
    before = i * (b - i) // 2
    after = (i + 1) * (b - i - 1) // 2
    i = np.where(after <= k, i + 1, i)
    before = i * (b - i) // 2
    return i, k - before + i + 1
