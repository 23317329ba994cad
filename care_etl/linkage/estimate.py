"""Classify, the estimation half: the model's parameters read from the records themselves.

u (how often strangers agree at each level) comes from random pairs, and for the postcode
beside an agreeing address from pairs that share an address too; m (how often one person's
records agree) from EM on the candidate pairs of each blocking rule, leaving out the fields
the rule constrains; then the prior, and u once more with each random pair weighed by its
chance of being two people. The arithmetic of the model is in `model`; `linker` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from care_etl.linkage.blocking import (
    RULES,
    BlockingRule,
    pairs_sharing,
    random_pairs,
    rule_membership,
)
from care_etl.linkage.compare import MISSING, SAME_ADDRESS, among, compare
from care_etl.linkage.model import (
    DERIVED,
    FellegiSunter,
    combine_sessions,
    em_session,
    estimate_prior,
    estimate_u,
    level_frequencies,
    level_names,
    non_match_chance,
    term_frequencies,
)

if TYPE_CHECKING:
    from care_etl.linkage.linker import LinkageSettings

#: Name fields with a term-frequency adjustment, and the code column of their value.
TF_COLUMNS = {"given_name": "given_code", "family_name": "family_code"}

#: A filling session (BlockingRule.fills) runs only when its rule leaves free at least two
#: fields on which strangers seldom agree (u of every level but the last, "different",
#: below TELLING_U in all: not sex, which half of strangers share). With one, EM can split
#: the pairs any way that fits: on Vietnamese names blocked by their sounds, with only the
#: date of birth and sex free, it found a "match" class of namesakes whose dates of birth
#: agreed 7% of the time.
TELLING_U = 0.25


def _sessions(
    levels: pd.DataFrame,
    membership: pd.DataFrame,
    fields: list[str],
    u: dict[str, np.ndarray],
    settings: LinkageSettings,
) -> list:
    """One EM session per training rule with enough pairs, on the fields it leaves free;
    then a filling rule's session for the fields none of those saw (BlockingRule.fills)."""
    trained = (_session(r, levels, membership, fields, u, settings) for r in RULES if r.trains)
    sessions = [s for s in trained if s is not None]
    for rule in (r for r in RULES if r.fills):
        unseen = [f for f in fields if not any(s.seen.get(f, 0) > 0 for s in sessions)]
        wanted = _free(rule, unseen)
        telling = [f for f in _free(rule, fields) if u[f][:-1].sum() < TELLING_U]
        if not wanted or len(telling) < 2:
            continue
        filled = _session(rule, levels, membership, fields, u, settings)
        if filled is not None:
            m = {f: filled.m[f] for f in wanted}
            seen = {f: filled.seen[f] for f in wanted}
            sessions.append(replace(filled, m=m, seen=seen))
    return sessions


def _free(rule: BlockingRule, fields: list[str]) -> list[str]:
    """The fields a rule's pairs leave free to agree or not."""
    return [f for f in fields if f not in rule.excludes and DERIVED.get(f) not in rule.excludes]


def _session(
    rule: BlockingRule,
    levels: pd.DataFrame,
    membership: pd.DataFrame,
    fields: list[str],
    u: dict[str, np.ndarray],
    settings: LinkageSettings,
):
    """EM on a rule's pairs over the fields it leaves free; None with too few pairs."""
    if rule.name not in membership.columns:
        return None
    chosen = membership[rule.name].to_numpy()
    active = _free(rule, fields)
    if chosen.sum() < settings.min_session_pairs or not active:
        return None
    return em_session(
        rule.name,
        levels.loc[chosen, active],
        active,
        u,
        settings.em_max_iterations,
        settings.em_tolerance,
    )


def fit(
    prepared: pd.DataFrame,
    keys: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
    fields: list[str],
    settings: LinkageSettings,
) -> FellegiSunter:
    """u from random pairs (and, beside an agreeing address, pairs that share one: _Homes),
    m by EM per blocking rule, then the prior; then once more with u read from those pairs
    weighted by their chance of being two people."""
    n = len(prepared)
    rng = np.random.default_rng(settings.seed)
    order = _key_order(prepared)
    random = _in_key_order(order, random_pairs(n, settings.u_sample_pairs, rng))
    random_levels = compare(prepared, random, fields)
    homes = _homes(prepared, order, random, fields, settings.u_sample_pairs // 4, rng)
    random_levels, fields = with_derived(prepared, random_levels, random, fields)
    u = estimate_u(random_levels, fields)
    if homes is not None:
        u[_AT_ADDRESS] = homes.u(random_levels)
    presence = {f: _share_present(random_levels[f].to_numpy()) for f in fields}
    membership = rule_membership(keys, *pairs)
    total_pairs = n * (n - 1) // 2
    for _ in range(2):  # the second round reads u without the random pairs that match
        sessions = _sessions(levels, membership, fields, u, settings)
        m = combine_sessions(sessions, fields)
        prior = settings.prior_probability
        if prior is None:
            prior = estimate_prior(sessions, m, presence, total_pairs, n)
        strangers = non_match_chance(random_levels, fields, m, u, prior)
        if homes is not None:
            apart = non_match_chance(homes.levels, fields, m, u, prior)
        u = estimate_u(random_levels, fields, strangers)
        if homes is not None:
            u[_AT_ADDRESS] = homes.u(random_levels, strangers, apart)
    tf = {}
    if settings.term_frequency and n:
        vocabulary = int(max(prepared["given_code"].max(), prepared["family_code"].max())) + 1
        for f, column in TF_COLUMNS.items():
            if f in fields:
                codes = prepared[column].to_numpy()
                tf[f] = term_frequencies(codes, max(vocabulary, 1), float(u[f][0]))
    return FellegiSunter(fields, m, u, prior, sessions, tf, presence)


def _share_present(levels: np.ndarray) -> float:
    """Share of pairs where the field is known: 0 without pairs (a single record), where
    numpy's mean would warn "Mean of empty slice" at a caller linking one record."""
    return float((levels != MISSING).mean()) if len(levels) else 0.0


def _key_order(prepared: pd.DataFrame) -> np.ndarray:
    """Row positions in (source, source_record_id) order."""
    return np.lexsort((prepared["source_record_id"].to_numpy(), prepared["source"].to_numpy()))


def _in_key_order(
    order: np.ndarray, drawn: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Drawn positions read as ranks in key order (_key_order), so that the pairs that
    estimate u are the same records whatever order the rows come in: a source exported in
    another row order gave other u for rare levels (a level seen in two random pairs or in
    none), and on FEBRL4 moved F1 between 0.9936 and 0.9966."""
    left, right = order[drawn[0]], order[drawn[1]]
    return np.minimum(left, right), np.maximum(left, right)


_AT_ADDRESS = "postcode_at_address"


@dataclass(frozen=True)
class _Homes:
    """Pairs of records that share an address key, to read u of postcode_at_address from.

    That level is defined only where two addresses agree, which among random pairs of
    strangers is rare: its u rested on a handful of the million random pairs, and another
    draw of them moved FEBRL4's F1 by 0.0015. So u is read by stratum: the pairs that share
    an address key from these (thousands, drawn from all such pairs), the other pairs whose
    addresses agree (a close spelling, one UPRN) from the random pairs, each stratum
    counted at its share of all pairs.
    """

    levels: pd.DataFrame
    #: Which random pairs share an address key: their stratum is read from `levels`.
    in_random: np.ndarray
    #: What one of these pairs counts for beside one random pair.
    weight: float

    def u(
        self,
        random_levels: pd.DataFrame,
        strangers: np.ndarray | None = None,
        apart: np.ndarray | None = None,
    ) -> np.ndarray:
        """u of postcode_at_address, each pair counted with its chance of being two people
        (`strangers` for the random pairs, `apart` for these; None: all 1)."""
        other = ~self.in_random
        codes = np.concatenate(
            [random_levels[_AT_ADDRESS].to_numpy()[other], self.levels[_AT_ADDRESS].to_numpy()]
        )
        strangers = np.ones(len(random_levels)) if strangers is None else strangers
        apart = np.ones(len(self.levels)) if apart is None else apart
        weights = np.concatenate([strangers[other], apart * self.weight])
        # No reference here: these pairs were drawn for this one field, enough of them.
        return level_frequencies(codes, len(level_names(_AT_ADDRESS)), weights)


def _homes(
    prepared: pd.DataFrame,
    order: np.ndarray,
    random: tuple[np.ndarray, np.ndarray],
    fields: list[str],
    count: int,
    rng: np.random.Generator,
) -> _Homes | None:
    """Up to `count` pairs drawn from those that share an address key (see _Homes)."""
    if "postcode" not in fields or "address" not in fields:
        return None
    codes = prepared["address_code"].to_numpy()
    left, right, sharing = pairs_sharing(codes[order], count, rng)
    if not sharing:
        return None
    pairs = _in_key_order(order, (left, right))
    n = len(prepared)
    weight = sharing / len(pairs[0]) * len(random[0]) / (n * (n - 1) // 2)
    in_random = (codes[random[0]] == codes[random[1]]) & (codes[random[0]] >= 0)
    levels = with_derived(prepared, compare(prepared, pairs, fields), pairs, fields)[0]
    return _Homes(levels, in_random, weight)


def with_derived(
    prepared: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
    fields: list[str],
) -> tuple[pd.DataFrame, list[str]]:
    """The levels with the derived fields (model.DERIVED) added, and the model's fields.

    The comparison leaves the postcode out where the addresses agree (one fact must not
    count twice); it is compared here as "postcode_at_address", whose own m and u say how
    much an agreeing postcode adds to an agreeing address in these data: next to nothing
    where an address names one dwelling, a lot where it is a street name found in many
    towns, and a disagreeing postcode then counts against the pair.
    """
    if "postcode" not in fields or "address" not in fields:
        return levels, fields
    address = levels["address"].to_numpy()
    home = among(address, SAME_ADDRESS)
    rows = np.flatnonzero(home & (levels["postcode"].to_numpy() == MISSING))
    derived = np.full(len(levels), MISSING, dtype=np.int8)
    if len(rows):
        sub = (pairs[0][rows], pairs[1][rows])
        derived[rows] = compare(prepared, sub, ["postcode"])["postcode"].to_numpy()
    levels["postcode_at_address"] = derived
    return levels, [*fields, "postcode_at_address"]
