"""The linkage run: index, compare, classify, rules, cluster, explain.

Hard rules stand above the model: two different valid NHS numbers never link
automatically; the twin rule and the father and son rule (see LinkageSettings) keep
household members apart. A person's decisions (review outcomes) are applied as confirmed
links and cannot-link constraints.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA

from care_etl.errors import CareEtlError
from care_etl.linkage import compare as compare_module
from care_etl.linkage.blocking import (
    blocking_keys,
    candidate_codes,
)
from care_etl.linkage.cluster import (
    APPLIED,
    CANNOT_LINK,
    CHAIN,
    HELD_APART,
    NHS_CONFLICT,
    Support,
    by_record,
    connected_components,
    person_ids,
    plain_components,
    record_keys,
    record_ranks,
)
from care_etl.linkage.compare import (
    LEVELS,
    MISSING,
    YEAR_GAP,
    among,
    codes_of,
    compare,
    compared_fields,
)
from care_etl.linkage.estimate import TF_COLUMNS, fit, with_derived
from care_etl.linkage.explain import evidence
from care_etl.linkage.model import (
    LATE_LEVELS,
    FellegiSunter,
    TrainedModel,
    level_frequencies,
    probability,
    unseen_share,
)
from care_etl.linkage.nicknames import one_forename
from care_etl.linkage.prepare import CODE_GROUPS, code_column, prepare

log = logging.getLogger(__name__)

ASSIGNMENT_COLUMNS = ["source", "source_record_id", "person_id", "link_type", "match_probability"]
PAIR_COLUMNS = [
    "left_source",
    "left_source_record_id",
    "right_source",
    "right_source_record_id",
    "match_probability",
    "match_weight",
    "link_type",
    "evidence",
]

DECISION_COLUMNS = [
    "left_source",
    "left_source_record_id",
    "right_source",
    "right_source_record_id",
    "decision",
]

#: Notes in the evidence, by why a pair was linked or held back (see explain.py).
_RULE_NOTES = {"nhs_number": ', "rule": "nhs_number"', "confirmed": ', "rule": "confirmed"'}
_REFUSED = {
    NHS_CONFLICT: "cluster_nhs_conflict",
    CANNOT_LINK: "cannot_link",
    CHAIN: "chain",
    HELD_APART: "held_apart",
}
#: Every reason a pair is held back from linking ("capped" in its evidence): the hard rules
#: (_held, _decide), then the clustering's refusals (_REFUSED).
CAPPED_REASONS = (
    "different_nhs_numbers", "twin", "unnamed_newborn", "father_son", "ambiguous",
    "either_of_two", *_REFUSED.values(),
)  # fmt: skip
#: Strength of a link when links are applied strongest first.
_CONFIRMED_STRENGTH, _NHS_STRENGTH = 3.0, 2.0


@dataclass(frozen=True)
class LinkageSettings:
    """Thresholds (match probabilities), rules and the knobs of estimation; defaults suit
    most runs."""

    #: Pairs at or above this probability are linked automatically. High, because the
    #: pairs just below it are people who moved (same name and date of birth, new address,
    #: no NHS number on one record), which namesakes look exactly like: a person decides.
    auto_link_threshold: float = 0.995
    #: Pairs at or above this (and below auto) go to human review, unmerged.
    review_threshold: float = 0.80
    #: A blocking key shared by more records than this (a placeholder date) is skipped.
    max_block_size: int = 1000
    #: Random pairs drawn to estimate u (all pairs when there are fewer).
    u_sample_pairs: int = 1_000_000
    #: A blocking rule with fewer candidate pairs than this is not used to estimate m.
    min_session_pairs: int = 20
    em_max_iterations: int = 100
    em_tolerance: float = 1e-5
    #: The model multiplies evidence as if fields were independent, but in a household they
    #: are not, so two rules stand above it. The twin rule: one surname (even typed wrong
    #: on both records) with different forenames (not a short form, not a typo; or alike
    #: but of a boy and a girl, Michael and Mia) is never linked automatically, whatever
    #: the dates of birth say (twins share surname, date of birth and address; siblings
    #: born close together look like a date typed wrong). With it, a baby registered
    #: before being named ("Baby", "Twin 1": UNNAMED_FORENAMES) is never linked
    #: automatically to a record of its surname and date of birth: one baby or twins,
    #: nothing in the names can tell.
    twin_rule: bool = True
    #: The father and son rule: one name (forename and surname agree) with dates of birth
    #: that differ (not a typo, swap or estimate) and years at least this many apart is
    #: never linked automatically (0 turns the rule off). One year already: a namesake in
    #: the household is likelier than a date typed wholly wrong. Dates over a year apart
    #: settle the pair as two people; within a year, it goes to review.
    father_son_years: int = 1
    #: Term-frequency adjustment of exact name agreements (a common name tells less).
    term_frequency: bool = True
    #: A probabilistic link joins two groups of records only when at least this share of
    #: the pairs across them are at least review_threshold probable (no chaining).
    chain_support: float = 0.5
    #: Probability that two random records match; None estimates it from the data.
    prior_probability: float | None = None
    #: Seed of the random pairs, so that a run is repeatable.
    seed: int = 20240601

    def check(self) -> None:
        if not 0.0 < self.review_threshold <= self.auto_link_threshold <= 1.0:
            raise CareEtlError(
                "linkage settings: need 0 < review_threshold <= auto_link_threshold <= 1"
            )
        if self.prior_probability is not None and not 0.0 < self.prior_probability < 1.0:
            raise CareEtlError("linkage settings: prior_probability must be between 0 and 1")
        if not 0.0 <= self.chain_support <= 1.0 or self.father_son_years < 0:
            raise CareEtlError(
                "linkage settings: chain_support must be in 0..1, father_son_years >= 0"
            )
        if self.max_block_size < 2 or self.u_sample_pairs < 1 or self.em_max_iterations < 1:
            raise CareEtlError(
                "linkage settings: max_block_size, u_sample_pairs or em_max_iterations too small"
            )


@dataclass
class LinkageResult:
    """Who is who, the links that made them, the pairs for review, and the model's figures."""

    #: One row per input record, in input order: source, source_record_id, person_id,
    #: link_type (nhs_number | confirmed | probabilistic | single), match_probability.
    assignments: pd.DataFrame
    #: Accepted pairs (automatic or confirmed), PAIR_COLUMNS. An NHS number or confirmed
    #: link has probability 1.0; its match_weight and evidence still give the model's view.
    links: pd.DataFrame
    #: Pairs in the review band, or held back by a rule ("capped" in the evidence), not
    #: merged, PAIR_COLUMNS. A pair with a decision never appears here.
    review: pd.DataFrame
    #: Number of pairs the blocking rules proposed.
    candidate_pairs: int
    #: m, u and weight per field level.
    parameters: pd.DataFrame
    #: Estimated probability that two random records are one person.
    prior_probability: float = 0.0
    #: One row per EM session (blocking rule): pairs, share of matches, iterations.
    training: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Seconds per step.
    timings: dict[str, float] = field(default_factory=dict)
    #: Decisions applied: link, no_link, and ignored (naming records not in the input).
    decisions: dict[str, int] = field(default_factory=dict)
    #: The model that scored the pairs, to keep for later runs (link_records(model=...)).
    model: TrainedModel | None = None
    #: Whether the model was estimated on these records (False: a kept model was applied).
    model_trained: bool = True


_ALIAS_FLAG = {"given_name": "given_name_alias", "family_name": "family_name_alias"}


def _exact_values(
    model: FellegiSunter,
    prepared: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Per name field, the shared value's code where the names agree exactly (else -1).

    Names that agree crosswise (written the wrong way round, or one moved) share a name
    across the two fields: that name, and where they share two, the one more frequent in
    this field (the smaller adjustment: which is the forename is a reading). The left
    record's own name was used before, which for a swapped pair is the surname when the
    left record is the swapped one: a pair's probability hung on the order of the rows.
    """
    left, right = pairs
    codes = {f: prepared[c].to_numpy() for f, c in TF_COLUMNS.items()}
    found = {}
    for f, own in codes.items():
        if f not in levels.columns:
            continue
        exact = (
            among(levels[f].to_numpy(), codes_of(f, "exact")) & ~levels[_ALIAS_FLAG[f]].to_numpy()
        )
        rows = np.flatnonzero(exact)  # a third of the pairs or fewer: look at those only
        one, two = own[left[rows]], own[right[rows]]
        shared = np.where(one == two, one, -1)
        cross = np.flatnonzero(one != two)
        if len(cross):
            shared[cross] = _crosswise(codes, left[rows[cross]], right[rows[cross]], model, f)
        found[f] = np.full(len(exact), -1, dtype=np.int64)
        found[f][rows] = shared
    return found


def _crosswise(
    codes: dict[str, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
    model: FellegiSunter,
    field_name: str,
) -> np.ndarray:
    """The name two records share across their name fields (-1: none)."""
    g1, f1 = codes["given_name"][left], codes["family_name"][left]
    g2, f2 = codes["given_name"][right], codes["family_name"][right]
    from_given = np.where((g1 == g2) | (g1 == f2), g1, -1)  # the left's names that the
    from_family = np.where((f1 == g2) | (f1 == f2), f1, -1)  # right holds too
    frequency = model.term_frequencies.get(field_name, np.zeros(0))
    return _more_frequent(from_given, from_family, frequency)


def _more_frequent(one: np.ndarray, other: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Per pair, whichever of two name codes (-1: none) is more frequent."""
    if not len(frequency):
        return np.maximum(one, other)

    def rate(codes: np.ndarray) -> np.ndarray:
        return np.where(codes >= 0, frequency[np.maximum(codes, 0)], -1.0)

    return np.where(rate(one) >= rate(other), one, other)


#: The key columns of the names vocabulary (one code per value across them: prepare.py).
_NAME_KEYS = next(group for group in CODE_GROUPS if "given_key" in group)


def _value_hashes(prepared: pd.DataFrame) -> np.ndarray:
    """Per value code of the names vocabulary, a 64-bit hash of the value: what a kept
    term-frequency table is keyed by (this run's codes are its own, and the cache keeps
    no name)."""
    codes = np.concatenate([prepared[code_column(c)].to_numpy() for c in _NAME_KEYS])
    values = np.concatenate([prepared[c].to_numpy(dtype=object) for c in _NAME_KEYS])
    present = codes >= 0
    unique, first = np.unique(codes[present], return_index=True)
    hashes = np.zeros(int(codes.max(initial=-1)) + 1, dtype=np.uint64)
    hashes[unique] = [
        int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little")
        for v in values[present][first]
    ]
    return hashes


def _to_keep(model: FellegiSunter, prepared: pd.DataFrame, households: Households) -> TrainedModel:
    """The trained model in a form a later run can apply (model.TrainedModel)."""
    tables, unseen = {}, {}
    if model.term_frequencies:
        hashes = _value_hashes(prepared)
        for f, shares in model.term_frequencies.items():
            keys = hashes[: len(shares)]
            order = np.argsort(keys, kind="stable")
            tables[f] = (keys[order], shares[order])
            present = int((prepared[TF_COLUMNS[f]].to_numpy() >= 0).sum())
            unseen[f] = unseen_share(present, float(model.u[f][0]))
    return TrainedModel(
        replace(model, term_frequencies={}),
        tables,
        unseen,
        (households.observed, households.chance),
        datetime.now(UTC).isoformat(timespec="seconds"),
        len(prepared),
    )


def _applied(kept: TrainedModel, prepared: pd.DataFrame, fields: list[str]) -> FellegiSunter | None:
    """The kept model as this run applies it, before any late field (LATE_LEVELS), with
    the term frequencies by this run's value codes; None when it was trained on other
    fields (a source lost or gained one): it cannot score these pairs."""
    base = [f for f in kept.model.fields if f not in LATE_LEVELS]
    if base != fields:
        return None
    hashes = _value_hashes(prepared) if kept.term_frequencies else None
    return FellegiSunter(
        base,
        {f: kept.model.m[f] for f in base},
        {f: kept.model.u[f] for f in base},
        kept.model.prior,
        kept.model.sessions,
        {f: kept.shares_by_code(f, hashes) for f in kept.term_frequencies},
        kept.model.presence,
    )


@dataclass
class _Scores:
    """The model's view of every candidate pair: the total weight and the probability.

    Per-field weights are not kept (at 30 million pairs they would be gigabytes): the
    few pairs that are shown get theirs from `_pair_weights` again.
    """

    levels: pd.DataFrame
    weight: np.ndarray
    prob: np.ndarray


#: Pairs scored at once, bounding the per-field weights held while summing.
_SCORE_CHUNK = 2_000_000


def _pair_weights(
    model: FellegiSunter,
    prepared: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per field, each pair's weight (term-frequency adjustment included), and the
    adjustments themselves."""
    field_weights = model.field_weights(levels)
    adjustments = model.tf_adjustments(_exact_values(model, prepared, levels, pairs))
    for f, extra in adjustments.items():
        field_weights[f] = field_weights[f] + extra
    return field_weights, adjustments


def _score(
    model: FellegiSunter,
    prepared: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
) -> _Scores:
    left, right = pairs
    weight = np.empty(len(levels))
    for start in range(0, len(levels), _SCORE_CHUNK):
        part = slice(start, start + _SCORE_CHUNK)
        chunk = (left[part], right[part])
        field_weights, _ = _pair_weights(model, prepared, levels.iloc[part], chunk)
        weight[part] = model.total_weight(field_weights, len(left[part]))
        del field_weights
    return _Scores(levels, weight, probability(weight))


def _score_with(model: FellegiSunter, scores: _Scores, name: str) -> _Scores:
    """The scores with one more field, the model's last (so the sum adds it last, and
    the weights are those a full rescoring gives, bit for bit)."""
    assert model.fields[-1] == name
    weight = scores.weight + model.level_weights(name)[scores.levels[name].to_numpy()]
    return _Scores(scores.levels, weight, probability(weight))


def _pair_frame(
    records: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    prob: np.ndarray,
    weight: np.ndarray,
    link_type: np.ndarray,
    explained: np.ndarray,
) -> pd.DataFrame:
    sources = records["source"].to_numpy()
    ids = records["source_record_id"].to_numpy()
    return pd.DataFrame(
        {
            "left_source": sources[left],
            "left_source_record_id": ids[left],
            "right_source": sources[right],
            "right_source_record_id": ids[right],
            "match_probability": prob.astype(float),
            "match_weight": weight.astype(float),
            "link_type": link_type.astype(object),
            "evidence": explained.astype(object),
        },
        columns=PAIR_COLUMNS,
    )


@dataclass
class _Decided:
    """What happened to each candidate pair, and the cluster label of each record."""

    is_nhs: np.ndarray
    confirmed: np.ndarray
    #: Reason -> pairs no rule lets link automatically.
    held: dict[str, np.ndarray]
    accepted: np.ndarray
    #: Per pair: APPLIED, or why the clustering refused the link.
    outcome: np.ndarray
    in_review: np.ndarray
    labels: np.ndarray


#: Pairs explained at once.
_EXPLAIN_CHUNK = 100_000


def _explained_pairs(
    records: pd.DataFrame,
    prepared: pd.DataFrame,
    model: FellegiSunter,
    scores: _Scores,
    rows: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    done: _Decided,
) -> pd.DataFrame:
    """The pairs at `rows` with their probability, weight, link type and evidence."""
    nhs, confirmed = done.is_nhs[rows], done.confirmed[rows]
    notes = np.full(len(rows), "", dtype=object)
    for reason, mask in done.held.items():
        notes[mask[rows]] = f', "capped": "{reason}"'
    outcome = done.outcome[rows]
    for code, reason in _REFUSED.items():
        notes[outcome == code] = f', "capped": "{reason}"'
    # A rule's note only where the clustering made the link: a same-NHS pair it refused (a
    # reviewer's no-link elsewhere keeps the records apart) is held, and must say so.
    made = ~np.isin(outcome, list(_REFUSED))
    notes[nhs & made] = _RULE_NOTES["nhs_number"]
    notes[confirmed & made] = _RULE_NOTES["confirmed"]
    left, right = pairs[0][rows], pairs[1][rows]
    weight, prob = scores.weight[rows], scores.prob[rows]
    explained = np.empty(len(rows), dtype=object)
    for start in range(0, len(rows), _EXPLAIN_CHUNK):  # bounds the strings being built
        part = slice(start, start + _EXPLAIN_CHUNK)
        levels = scores.levels.iloc[rows[part]]
        weights, adjustments = _pair_weights(model, prepared, levels, (left[part], right[part]))
        explained[part] = evidence(
            model, levels, weights, adjustments, weight[part], prob[part], notes[part]
        )
    link_type = np.where(
        confirmed, "confirmed", np.where(nhs, "nhs_number", "probabilistic")
    ).astype(object)
    pair_prob = np.where(nhs | confirmed, 1.0, prob)
    return _pair_frame(records, left, right, pair_prob, weight, link_type, explained)


def _assignments(
    records: pd.DataFrame,
    persons: np.ndarray,
    links: tuple[np.ndarray, np.ndarray],
    prob: np.ndarray,
    kinds: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """link_type and the strongest probability that joined each record to its cluster."""
    n = len(records)
    left, right = links
    strongest = np.full(n, -1.0)
    ends = np.concatenate([left, right])
    np.maximum.at(strongest, ends, np.concatenate([prob, prob]))
    by_kind = []
    for kind in kinds:
        marked = np.zeros(n, dtype=bool)
        marked[np.concatenate([left[kind], right[kind]])] = True
        by_kind.append(marked)
    by_nhs, by_person = by_kind
    link_type = np.select(
        [by_nhs, by_person, strongest >= 0],
        ["nhs_number", "confirmed", "probabilistic"],
        default="single",
    )
    match_probability = np.where(
        by_nhs | by_person, 1.0, np.where(strongest >= 0, strongest, np.nan)
    )
    sources = records["source"].to_numpy()
    ids = records["source_record_id"].to_numpy()
    return pd.DataFrame(
        {
            "source": sources,
            "source_record_id": ids,
            "person_id": persons,
            "link_type": link_type.astype(object),
            "match_probability": match_probability,
        },
        columns=ASSIGNMENT_COLUMNS,
    )


def _index(prepared: pd.DataFrame, settings: LinkageSettings, extra: tuple[np.ndarray, np.ndarray]):
    """Blocking keys and the candidate pairs (plus `extra` pairs) as sorted (left, right)
    positions, left < right, each pair once."""
    keys = blocking_keys(prepared, settings.max_block_size)
    code = candidate_codes(keys)  # sorted, distinct, left < right
    n = max(len(prepared), 1)
    if len(extra[0]):
        low, high = np.minimum(*extra), np.maximum(*extra)
        code = np.unique(np.concatenate([code, (low * n + high)[low != high]]))
    return keys, code // n, code % n


@dataclass
class _Decisions:
    """A person's decisions as record positions (left < right)."""

    link: tuple[np.ndarray, np.ndarray]
    no_link: tuple[np.ndarray, np.ndarray]
    ignored: int
    #: Pairs whose decision went stale: compared, and shown to a person again.
    again: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: _empty_pairs())

    @property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([self.link[0], self.no_link[0], self.again[0]]),
            np.concatenate([self.link[1], self.no_link[1], self.again[1]]),
        )


def _empty_pairs() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def read_decisions(
    decisions: pd.DataFrame | None, keys: pd.Series, requeue: pd.DataFrame | None = None
) -> _Decisions:
    """Decisions naming two records of this input, as positions; a pair decided both ways
    counts as no_link (keeping people apart is the safe side). `requeue`: pairs (the first
    four DECISION_COLUMNS) whose decision went stale."""
    again = _empty_pairs()
    if requeue is not None and len(requeue):
        again = read_decisions(requeue.assign(decision="no_link"), keys).no_link
    if decisions is None or len(decisions) == 0:
        return _Decisions(_empty_pairs(), _empty_pairs(), 0, again)
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise CareEtlError(f"linkage decisions: columns {missing} are missing")
    kind = decisions["decision"].astype(str).str.strip().str.lower().to_numpy()
    bad = ~np.isin(kind, ["link", "no_link"])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CareEtlError(f"linkage decisions: row {row}: decision must be 'link' or 'no_link'")
    position = pd.Series(np.arange(len(keys)), index=keys.to_numpy())

    def side(prefix: str) -> np.ndarray:
        key = (
            decisions[f"{prefix}_source"].astype(str)
            + "|"
            + decisions[f"{prefix}_source_record_id"].astype(str)
        )
        return position.reindex(key.to_numpy()).to_numpy()

    a, b = side("left"), side("right")
    known = ~np.isnan(a) & ~np.isnan(b) & (a != b)
    a, b = np.where(known, a, 0).astype(np.int64), np.where(known, b, 0).astype(np.int64)
    low, high = np.minimum(a, b), np.maximum(a, b)
    n = max(len(keys), 1)
    no_code = np.unique((low * n + high)[known & (kind == "no_link")])
    yes_code = np.unique((low * n + high)[known & (kind == "link")])
    yes_code = yes_code[~np.isin(yes_code, no_code)]
    return _Decisions(
        (yes_code // n, yes_code % n), (no_code // n, no_code % n), int((~known).sum()), again
    )


def _is_pair_in(
    left: np.ndarray, right: np.ndarray, chosen: tuple[np.ndarray, np.ndarray], n: int
) -> np.ndarray:
    """Per pair, whether it is one of the `chosen` pairs (a few, often none): looked up in
    the pairs' sorted codes (as _index gives them) rather than a pass of isin over all."""
    found = np.zeros(len(left), dtype=bool)
    if not len(chosen[0]) or not len(left):
        return found
    codes = left * n + right
    wanted = chosen[0] * n + chosen[1]
    if len(codes) > 1 and not (codes[1:] >= codes[:-1]).all():
        return np.isin(codes, wanted)
    at = np.searchsorted(codes, wanted)
    inside = at < len(codes)
    at, wanted = at[inside], wanted[inside]
    found[at[codes[at] == wanted]] = True
    return found


#: Pairs that must show a move before the moved_together field is estimated.
_MIN_MOVES = 20


def moved_together(
    prepared: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
    linked: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    """Per pair whose records give two different postcodes: 0 ("yes") when the links of
    some other person (a cluster of `labels` that holds neither record) join records at the
    same two postcodes, 1 ("no") when none do; MISSING where the postcodes agree or one is
    unknown.

    People move: a record at the old home and one at the new look like two namesakes. But
    a household moves together: when another member's records already show the move
    between the two postcodes, it is seen, and a namesake (someone else who happens to
    share name and birth date) has no reason to share it. The pair's own persons do not
    count: their links would vouch for themselves.
    """
    postcode = prepared["postcode_code"].to_numpy().astype(np.int32)
    left, right = pairs
    low = np.minimum(postcode[left], postcode[right])
    high = np.maximum(postcode[left], postcode[right])
    differ = (low >= 0) & (low != high)
    levels = np.where(differ, 1, MISSING).astype(np.int8)
    width = int(postcode.max()) + 2
    moving = linked & differ
    mover_key = low[moving].astype(np.int64) * width + high[moving]
    moves = pd.DataFrame({"key": mover_key, "person": labels[left[moving]]}).drop_duplicates()
    # Only pairs at the two postcodes of some person's move can show one: look those up
    # (first by each end, cheaply, then by the two together).
    known, people = np.unique(moves["key"].to_numpy(), return_counts=True)
    ends = np.zeros(width, dtype=bool)
    ends[known // width] = True
    ends[known % width] = True
    rows = np.flatnonzero(differ & ends[low] & ends[high])
    del differ, moving
    key = low[rows].astype(np.int64) * width + high[rows]
    del low, high
    # A hash lookup: the keys come in pair order, and searching a sorted array for
    # shuffled needles took seven times as long.
    at = pd.Index(known).get_indexer(key)
    found = at >= 0
    rows, key, people_per_key = rows[found], key[found], people[at[found]]
    n = len(labels) + 1
    seen = moves["key"].to_numpy() * n + moves["person"].to_numpy()
    own_left = np.isin(key * n + labels[left[rows]], seen)
    own_right = np.isin(key * n + labels[right[rows]], seen) & (
        labels[right[rows]] != labels[left[rows]]
    )
    others = people_per_key - own_left - own_right
    levels[rows[others > 0]] = 0
    return levels


def _with_moves(
    model: FellegiSunter,
    prepared: pd.DataFrame,
    scores: _Scores,
    pairs: tuple[np.ndarray, np.ndarray],
    accepted: np.ndarray,
    labels: np.ndarray,
) -> FellegiSunter | None:
    """The model with moved_together, or None when the links show too few moves to weigh
    it or it is no evidence. m is read from the accepted links themselves (one person's
    records at two postcodes), u from the other candidate pairs, each counted with its
    chance of being two people: similar pairs, so u is, if anything, too high (a
    household's members share its moves) and the weight errs low."""
    if "postcode" not in model.fields:
        return None
    codes = moved_together(prepared, pairs, accepted, labels)
    seen = accepted & (codes != MISSING)
    if seen.sum() < _MIN_MOVES:
        return None
    m = level_frequencies(codes[seen], 2)
    u = level_frequencies(codes, 2, np.where(accepted, 0.0, 1.0 - scores.prob))
    if m[0] <= u[0]:
        return None
    scores.levels["moved_together"] = codes
    return model.with_field("moved_together", m, u)


def _kept_moves(
    kept: TrainedModel,
    model: FellegiSunter,
    prepared: pd.DataFrame,
    scores: _Scores,
    pairs: tuple[np.ndarray, np.ndarray],
    done: _Decided,
) -> FellegiSunter | None:
    """The kept model's moved_together, with each pair's level read from this run's first
    round of links (as in _with_moves), or None when the kept model did not weigh it."""
    name = "moved_together"
    if name not in kept.model.fields:
        return None
    scores.levels[name] = moved_together(prepared, pairs, done.accepted, done.labels)
    return model.with_field(name, kept.model.m[name], kept.model.u[name])


#: Share of household pairs (two people who share a surname and a home) that are twins, and
#: that are a parent and child of one name: about one in a hundred each. Only their order of
#: magnitude matters (see Households).
_TWIN_SHARE = 0.01
_JUNIOR_SHARE = 0.01
#: A rule holds its pairs when the household pairs could explain at least this share of
#: the pairs it would hold that the model alone finds more likely one person than not.
_HOUSEHOLD_TOLERANCE = 0.005
#: Fewer records than this are too few to count households in: the rules hold. A few
#: hundred records of one family and its neighbours show no household pairs beyond
#: chance only because chance itself is a fraction of a pair.
_CENSUS_RECORDS = 500
#: Date of birth levels of two people (of a household: siblings, a parent and child): two
#: components equal, within a year, or different. The father and son rule holds one name
#: born within a year too, in different years (LinkageSettings.father_son_years), for a
#: person to decide: two women of one name at one address born ten months apart (Faker's
#: Japanese households) linked when the rule let "within_a_year" pass.
_DATES_APART = codes_of("date_of_birth", "one_component", "within_a_year", "different")
#: Levels of the household census: surname exact or close, the same dwelling (UPRN or
#: address text), forenames different, dates of birth apart.
_CENSUS = {
    "family_name": codes_of("family_name", "exact", "close"),
    "address": codes_of("address", "same_uprn", "exact"),
    "given_name": codes_of("given_name", "different"),
    "date_of_birth": _DATES_APART,
}


@dataclass(frozen=True)
class Households:
    """Whether the data hold households, which the twin and father and son rules guard.

    The rules exist because people who share a home are not independent draws: a family
    shares a surname and an address, twins a date of birth too, and a son may carry his
    father's name. How far the data hold such households is measured, not assumed: pairs
    that share a surname and a dwelling yet differ in forename and date of birth (clearly
    two people) are counted, and set against what chance gives if fields are independent
    (the model's u). Council records of families have many times more than chance; a file
    of unrelated people (FEBRL) has no more. A rule then holds its pairs only when the
    household pairs beyond chance could account for more than the auto-link threshold
    allows of them: otherwise a pair that looks like twins is one person's record with a
    forename written differently, and the model decides. Without surnames, addresses,
    forenames and dates of birth to count, or with too few records (_CENSUS_RECORDS), the
    rules always hold.
    """

    #: Candidate pairs of the census levels (_CENSUS), the same NHS number excepted; -1
    #: when the data lack a census field.
    observed: int = -1
    #: Pairs of those levels that chance alone gives.
    chance: float = 0.0

    @property
    def beyond_chance(self) -> float:
        """Household pairs beyond chance, less three standard deviations of chance."""
        return max(0.0, self.observed - self.chance - 3.0 * float(np.sqrt(self.chance)))

    def guard(self, share: float, lookalikes: int) -> bool:
        """Whether `share` of the household pairs could be a noticeable part (over
        _HOUSEHOLD_TOLERANCE) of the `lookalikes`: the pairs the rule would hold that the
        model alone finds more likely one person than not."""
        if self.observed < 0:
            return True
        return share * self.beyond_chance >= _HOUSEHOLD_TOLERANCE * lookalikes


def census(levels: pd.DataFrame, model: FellegiSunter, not_nhs: np.ndarray, n: int) -> Households:
    """Count the census pairs and the number chance gives (see Households)."""
    if n < _CENSUS_RECORDS or any(
        f not in levels.columns or f not in model.fields for f in _CENSUS
    ):
        return Households()
    found = not_nhs.copy()
    chance = n * (n - 1) / 2
    for f, chosen in _CENSUS.items():
        found &= among(levels[f].to_numpy(), chosen)
        chance *= model.presence.get(f, 1.0) * float(model.u[f][list(chosen)].sum())
    return Households(int(found.sum()), chance)


#: one_forename remembered: it costs half a millisecond a pair (a scan of the nickname
#: tables for a name not in them), and both rounds of a run, and every run in a process,
#: ask about mostly the same pairs of names.
_one_forename = functools.lru_cache(maxsize=1 << 18)(one_forename)


@dataclass(frozen=True)
class RecordNames:
    """What the hard rules read of each record's name beyond the comparison levels."""

    #: The forename's match key (Latin letters); None where a rule must not read a typo or
    #: short form into it (a name written in signs).
    keys: np.ndarray
    #: The forename's first word as typed, where typed in another script than Latin
    #: (prepare._typed_first_names); else None.
    typed: np.ndarray
    #: The generation the name's suffix says (prepare.GENERATIONS), -1 without one.
    generation: np.ndarray


def _related_forenames(
    names: RecordNames, left: np.ndarray, right: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Per row of `rows`: whether the two forenames are one name (nicknames.one_forename),
    or, both typed in another script than Latin, one typing error apart in that script."""
    keys, typed = names.keys, names.typed
    found = np.zeros(len(rows), dtype=bool)
    a_side, b_side = left[rows], right[rows]
    pairs = zip(keys[a_side], keys[b_side], typed[a_side], typed[b_side], strict=True)
    for i, (a, b, typed_a, typed_b) in enumerate(pairs):
        found[i] = isinstance(a, str) and isinstance(b, str) and _one_forename(a, b)
        if not found[i] and isinstance(typed_a, str) and isinstance(typed_b, str):
            found[i] = OSA.distance(typed_a, typed_b) <= 1
    return found


#: Forenames a birth is recorded under before the baby is named ("Baby", "Baby Girl",
#: "Twin 1", "Infant of"): one of these words, and nothing but these and the qualifiers.
#: A forename key has no digits, so "Twin 1" and "Twin 2" are both "TWIN".
UNNAMED_FORENAMES = frozenset({"BABY", "INFANT", "NEWBORN", "UNNAMED", "TWIN", "TRIPLET"})
_UNNAMED_QUALIFIERS = frozenset(
    {"BOY", "GIRL", "MALE", "FEMALE", "OF", "A", "B", "C", "ONE", "TWO", "THREE", "I", "II", "III"}
)


def _unnamed(keys: np.ndarray) -> np.ndarray:
    """Per forename key: whether it is a newborn's placeholder (UNNAMED_FORENAMES)."""
    codes, uniques = pd.factorize(keys)
    words = (set(str(key).split()) for key in uniques)
    found = [
        bool(w & UNNAMED_FORENAMES) and w <= UNNAMED_FORENAMES | _UNNAMED_QUALIFIERS for w in words
    ]
    return np.array([*found, False], dtype=bool)[codes]  # code -1, no forename: the last


def _at_level(levels: pd.DataFrame, field: str, *names: str) -> np.ndarray:
    """Whether each pair's `field` is at one of these levels (never, when not compared)."""
    if field not in levels.columns:
        return np.zeros(len(levels), dtype=bool)
    return among(levels[field].to_numpy(), codes_of(field, *names))


def _held(
    scores: _Scores,
    both_nhs: np.ndarray,
    is_nhs: np.ndarray,
    settings: LinkageSettings,
    households: Households,
    forenames: tuple[RecordNames, np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Pairs the hard rules keep from linking automatically, by rule (see LinkageSettings).

    `forenames` are the records' names (RecordNames) and the pairs' (left, right) positions.
    """
    levels = scores.levels
    held = {"different_nhs_numbers": both_nhs & ~is_nhs}
    if "family_name" not in levels.columns:
        return held
    # Without dates of birth (a housing extract) every pair's date is missing: the rules
    # that ask for one stand aside, but the twin rule holds, as nothing else tells the
    # members of a household apart.
    dob = (
        levels["date_of_birth"].to_numpy()
        if "date_of_birth" in levels.columns
        else np.full(len(levels), MISSING, dtype=np.int8)
    )
    family = levels["family_name"].to_numpy()
    same_family = among(family, codes_of("family_name", "exact", "close", "part"))
    if "given_name" not in levels.columns:
        return held
    given = levels["given_name"].to_numpy()
    likely = scores.prob >= 0.5
    if settings.twin_rule:
        # A forename found only among the other record's middle names or aliases, with
        # other dates of birth, is a sibling's name as often as a name in use (Ella Zoë and
        # her sister Zoe).
        sibling_name = levels["given_name_alias"].to_numpy() & among(dob, _DATES_APART)
        # Forenames alike, but of a boy and a girl (Michael and Mia, Daniel and Danielle,
        # Alexander and Alexandra): a brother and sister.
        brother_sister = among(given, codes_of("given_name", "close", "fuzzy"))
        brother_sister &= _at_level(levels, "sex", "disagree")
        # Forenames alike but further apart than a typo (Sarah and Savannah, Ella and
        # Emma), at one address with dates of birth to weigh: twins are often given such
        # names. Not where the names were compared crosswise (Wang Fanng, Fang Wang: the
        # forename fields hold different names), nor without a date of birth or a shared
        # address, where one person's forename corrupted on one record is held as well
        # (FEBRL4 without dates of birth: recall 0.870 -> 0.865; without addresses 0.777
        # -> 0.772).
        alike = among(given, codes_of("given_name", "fuzzy")) & (dob != MISSING)
        alike &= _at_level(levels, "address", "same_uprn", "exact", "close")
        alike &= ~levels["names_swapped"].to_numpy().astype(bool)
        rows = np.flatnonzero(alike & likely)
        alike[rows[_typed_twice(forenames[0], forenames[1], forenames[2], rows)]] = False
        other_name = among(given, codes_of("given_name", "different")) | sibling_name
        other_name |= brother_sister | alike
        # A surname typed wrong on each twin's record ("fuzzy") is still one family name.
        family_like = among(family, codes_of("family_name", "exact", "close", "part", "fuzzy"))
        # A date missing on either record (or in the data) says nothing against two people.
        twin = ~is_nhs & family_like & other_name
        # A forename that is a short form, or a typo of one, is not another name; unless
        # the records are of a boy and a girl (Louis and Louise, Paul and Paula, John and
        # Joan: one letter apart): one person's records rarely differ in both.
        rows = np.flatnonzero(twin & likely & ~brother_sister)
        twin[rows[_related_forenames(*forenames, rows)]] = False
        if households.guard(_TWIN_SHARE, int((twin & likely).sum())):
            held["twin"] = twin
        # Not guarded by the households: the placeholder itself says a birth, and a person
        # can tell one baby from twins where the records cannot.
        names, left, right = forenames
        unnamed = _unnamed(names.keys)
        born_together = (dob != MISSING) & ~among(dob, _DATES_APART)
        held["unnamed_newborn"] = (
            ~is_nhs & family_like & born_together & (unnamed[left] | unnamed[right])
        )
    if not settings.father_son_years:
        return held
    same_forename = among(given, codes_of("given_name", "exact", "short_form", "close"))
    namesakes = ~is_nhs & same_family & same_forename
    junior = np.zeros(len(levels), dtype=bool)
    if YEAR_GAP in levels.columns:
        gap = levels[YEAR_GAP].to_numpy()
        junior = namesakes & among(dob, _DATES_APART) & (gap >= settings.father_son_years)
        junior |= namesakes & _a_generation_typed(dob, gap)
        if not households.guard(_JUNIOR_SHARE, int((junior & likely).sum())):
            junior[:] = False
    names, left, right = forenames
    # Not guarded by the households: the suffix itself says a father or a son.
    held["father_son"] = junior | (namesakes & _by_suffix(names.generation, left, right, dob))
    return held


#: Years between two dates one digit apart that are a generation, not a slip of one digit
#: of a person's year (a decade digit: 1960 and 1990).
_GENERATION_YEARS = (15, 60)


def _a_generation_typed(dob: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Dates of birth one digit apart in the year by a generation: John Okafor born
    1 April 1960 and John Okafor born 1 April 1990 at one address read as one person with
    a digit mistyped and linked. A father and son born on one day of the year is rarer
    than a slip of one digit, but a person, not the model, tells which (the pair is
    reviewed, see _decide)."""
    low, high = _GENERATION_YEARS
    return among(dob, codes_of("date_of_birth", "one_typo")) & (gap >= low) & (gap <= high)


#: Letters of the shorter forename from which two typing errors, one on each record, are
#: likelier than a sibling's name (Ella and Emma are two apart, and twins).
_TWO_TYPOS_LETTERS = 5


def _typed_twice(
    names: RecordNames, left: np.ndarray, right: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Per row of `rows`: whether the two forenames could be one name mistyped once on each
    record (two typing errors apart, neither name short): on generated data where every
    record carries its own typos (bench_linkage --synthetic), 112 such pairs of 300,000
    records went to review as twins, every one a single person."""
    keys = names.keys
    found = np.zeros(len(rows), dtype=bool)
    for i, (a, b) in enumerate(zip(keys[left[rows]], keys[right[rows]], strict=True)):
        if isinstance(a, str) and isinstance(b, str):
            a, b = a.split(" ")[0], b.split(" ")[0]
            short = min(len(a), len(b)) < _TWO_TYPOS_LETTERS
            found[i] = not short and OSA.distance(a, b, score_cutoff=2) <= 2
    return found


def _by_suffix(
    generation: np.ndarray, left: np.ndarray, right: np.ndarray, dob: np.ndarray
) -> np.ndarray:
    """Pairs whose name suffixes say two generations: two different suffixes (Sr and Jr,
    II and III), or one record's suffix where no date of birth can show the other record is
    the same person with the suffix left off (John Smith and John Smith Jr at one address,
    without dates of birth: the model linked them at 0.999)."""
    one, other = generation[left], generation[right]
    differ = (one >= 0) & (other >= 0) & (one != other)
    one_sided = (one >= 0) != (other >= 0)
    return differ | (one_sided & (dob == MISSING))


def _ambiguous(
    probable: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    nhs: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """Probable links of a record without an NHS number that would link it to records of
    two different valid NHS numbers (two namesakes born the same day, one record that
    names neither address): whichever it joined would be a guess, so none of its links is
    automatic, unless its best link to one NHS number outweighs its best to any other by
    AMBIGUITY_MARGIN (a sister of the same name born months apart): its links to records
    of that number stand.
    """
    rows = np.flatnonzero(probable)
    ends = np.concatenate([left[rows], right[rows]])
    partners = np.concatenate([right[rows], left[rows]])
    pair_rows = np.concatenate([rows, rows])
    known = (nhs[ends] < 0) & (nhs[partners] >= 0)
    found = np.zeros(len(probable), dtype=bool)
    if not known.any():
        return found
    best = (
        pd.DataFrame(
            {"end": ends[known], "code": nhs[partners][known], "w": weight[pair_rows[known]]}
        )  # fmt: skip
        .groupby(["end", "code"], sort=False)["w"]
        .max()
        .reset_index()
        .sort_values(["end", "w"], ascending=[True, False], kind="stable")
    )
    top = ~best.duplicated("end", keep="first").to_numpy()
    # A record's top row followed by a row of the same record: two NHS numbers, torn.
    torn_top = top & np.r_[~top[1:], False]
    torn = best.loc[torn_top, "end"].to_numpy()
    w = best["w"].to_numpy()
    margin = np.r_[w[:-1] - w[1:], 0.0]  # a torn top row minus its runner-up
    clear = best[torn_top & (margin >= AMBIGUITY_MARGIN)]
    torn_record = np.zeros(len(nhs), dtype=bool)
    torn_record[torn] = True
    winner = np.full(len(nhs), -2, dtype=np.int64)  # no NHS code is -2
    winner[clear["end"].to_numpy()] = clear["code"].to_numpy()
    a, b = left[rows], right[rows]
    found[rows] = (torn_record[a] & (nhs[b] != winner[a])) | (
        torn_record[b] & (nhs[a] != winner[b])
    )
    return found


#: Match weight (bits) by which a record's best link to one NHS number must beat its best
#: link to any other for the ambiguity rule to let it stand: a thousand to one.
AMBIGUITY_MARGIN = 10.0


def _support(
    n: int, left: np.ndarray, right: np.ndarray, prob: np.ndarray, settings: LinkageSettings
) -> Support:
    good = prob >= settings.review_threshold
    codes = (left[good] * n + right[good]).tolist()
    return Support(
        n,
        dict(zip(codes, prob[good].tolist(), strict=True)),
        settings.chain_support,
        settings.review_threshold,
    )


#: What tells a person from the rest of their household: a family shares its surname, address
#: and postcode, so those are left out (see _one_of_the_family).
_OWN_FIELDS = ("given_name", "date_of_birth", "sex", "nhs_number")


def _one_of_the_family(
    levels: pd.DataFrame, rows: np.ndarray, model: FellegiSunter, settings: LinkageSettings
) -> np.ndarray:
    """Of the pairs the twin rule held that the model alone would link (`rows`), those a
    person should see: where, among the members of one household (even odds), what tells a
    person from a relative (forename, date of birth, sex, NHS number) still leaves them
    review-band likely one person. Twins of one date of birth are; two forenames with no
    date of birth to weigh (a housing extract's household) are not, and went to review by
    the thousand (13,112 pairs of 8,011 records, 3 of them one person)."""
    keep = np.zeros(len(rows), dtype=bool)
    at = np.flatnonzero(rows)
    own = np.zeros(len(at))
    for f in (f for f in _OWN_FIELDS if f in model.fields and f in levels.columns):
        own += model.level_weights(f)[levels[f].to_numpy()[at].astype(np.int64)]
    keep[at] = probability(own) >= settings.review_threshold
    return keep


#: Rules whose pairs are two people until a person or an NHS number says otherwise: no
#: chain of probable links through other records may join them either (cluster.HELD_APART).
_APART_RULES = ("twin", "father_son", "unnamed_newborn")


def _kept_apart(
    held: dict[str, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
    links: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs _APART_RULES hold whose records the `links` would join, through others: a
    record without a date of birth matching a father and his son of one name joined them
    into one person when only the direct pair was held. The rest (every two of one surname
    in a block, millions at a million records) no link can join."""
    rows = np.zeros(len(left), dtype=bool)
    for rule in _APART_RULES:
        if rule in held:
            rows |= held[rule]
    rows = np.flatnonzero(rows)
    component = plain_components(n, left[links], right[links])
    rows = rows[component[left[rows]] == component[right[rows]]]
    return left[rows], right[rows]


def _torn_between(
    probable: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    apart: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Probable links of a record to both of two records a rule keeps apart (a form without
    a date of birth naming a father and his son): which person it is would be a guess, so
    neither link is automatic and both go to a person, unless one outweighs the other by
    AMBIGUITY_MARGIN. Else clustering would give the record to whichever came first."""
    found = np.zeros(len(probable), dtype=bool)
    rows = np.flatnonzero(probable)
    if not len(rows) or not len(apart[0]):
        return found
    edges = pd.DataFrame(
        {
            "x": np.concatenate([left[rows], right[rows]]),
            "p": np.concatenate([right[rows], left[rows]]),
            "row": np.concatenate([rows, rows]),
        }
    )
    edges["w"] = weight[edges["row"].to_numpy()]
    pairs = pd.DataFrame({"p": np.r_[apart[0], apart[1]], "q": np.r_[apart[1], apart[0]]})
    both = edges.merge(pairs, on="p").merge(
        edges.rename(columns={"p": "q"}), on=["x", "q"], suffixes=("", "_q")
    )
    torn = both[(both["w"] - both["w_q"]).abs() < AMBIGUITY_MARGIN]
    found[torn["row"].to_numpy()] = True
    found[torn["row_q"].to_numpy()] = True
    return found


def _spoken_for(
    left: np.ndarray,
    right: np.ndarray,
    torn: np.ndarray,
    confirmed: np.ndarray,
    apart: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Of the `torn` pairs (x, a), those where a person linked x to a record held apart
    from a: the person has said x is the other one."""
    found = np.zeros(len(torn), dtype=bool)
    rows = np.flatnonzero(torn)
    if not len(rows):
        return found
    others = by_record(list(zip(*(x.tolist() for x in apart), strict=True)))
    linked = set(zip(left[confirmed].tolist(), right[confirmed].tolist(), strict=True))
    linked |= {(b, a) for a, b in linked}
    for k in rows.tolist():
        one, two = int(left[k]), int(right[k])
        found[k] = any((one, b) in linked for b in others.get(two, ())) or any(
            (two, b) in linked for b in others.get(one, ())
        )
    return found


def _decide(
    model: FellegiSunter,
    scores: _Scores,
    nhs: np.ndarray,
    ranks: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    decided: _Decisions,
    settings: LinkageSettings,
    households: Households,
    forenames: RecordNames,
) -> _Decided:
    """Links (confirmed, same NHS number, or probable and held by no rule), clusters, review."""
    left, right = pairs
    n = len(nhs)
    prob = scores.prob
    both_nhs = (nhs[left] >= 0) & (nhs[right] >= 0)
    is_nhs = both_nhs & (nhs[left] == nhs[right])
    confirmed = _is_pair_in(left, right, decided.link, n)
    refused_by_person = _is_pair_in(left, right, decided.no_link, n)
    held = _held(scores, both_nhs, is_nhs, settings, households, (forenames, left, right))
    held = {k: v & ~confirmed for k, v in held.items()}
    blocked = np.logical_or.reduce(list(held.values())) | refused_by_person
    automatic = (is_nhs | (prob >= settings.auto_link_threshold)) & ~blocked
    held["ambiguous"] = _ambiguous(
        automatic & ~is_nhs & ~confirmed, left, right, nhs, scores.weight
    )
    automatic &= ~held["ambiguous"]
    apart = _kept_apart(held, left, right, automatic | confirmed, n)
    held["either_of_two"] = _torn_between(automatic & ~is_nhs, left, right, scores.weight, apart)
    automatic &= ~held["either_of_two"]
    chosen = np.flatnonzero(confirmed | automatic)
    strength = np.where(confirmed, _CONFIRMED_STRENGTH, np.where(is_nhs, _NHS_STRENGTH, prob))
    strong = confirmed | is_nhs
    support_prob = np.where(strong, 1.0, prob)
    labels, outcome = connected_components(
        n,
        left[chosen],
        right[chosen],
        strength[chosen],
        nhs,
        ranks,
        strong=strong[chosen],
        cannot_link=list(zip(*(x.tolist() for x in decided.no_link), strict=True)),
        support=_support(n, left, right, support_prob, settings),
        held_apart=apart,
    )
    accepted = np.zeros(len(prob), dtype=bool)
    accepted[chosen[outcome == APPLIED]] = True
    pair_outcome = np.zeros(len(prob), dtype=np.int8)
    pair_outcome[chosen] = outcome
    refused = pair_outcome != APPLIED
    # Two different valid NHS numbers, or one name born years apart, settle the question:
    # such pairs are not reviewed. A pair the twin rule held back is reviewed only when
    # the model alone would have linked it, and what tells one of a family from another
    # leaves it likely one person (_one_of_the_family).
    # One name born within a year, in two calendar years, is not settled: a date written
    # a few months out looks the same, and a person decides; as for a year one digit out
    # by a generation (_a_generation_typed).
    # Without dates of birth (a suffix held the pair), neither is settled.
    near = _at_level(scores.levels, "date_of_birth", "within_a_year", "one_typo")
    near |= ~_at_level(scores.levels, "date_of_birth", *LEVELS["date_of_birth"])
    settled = held["different_nhs_numbers"] | (held.get("father_son", False) & ~near)
    # Once a person has said which of two people held apart a record is, its pair with the
    # other one is settled too, not queued for a second decision.
    torn = held["either_of_two"] | (pair_outcome == HELD_APART)
    settled |= _spoken_for(left, right, torn, confirmed, apart)
    twin = held.get("twin", np.zeros(len(prob), dtype=bool))
    band = (prob >= settings.review_threshold) & ~twin
    overruled = twin & (prob >= settings.auto_link_threshold)
    overruled &= _one_of_the_family(scores.levels, overruled, model, settings)
    in_review = (
        ~accepted & ~confirmed & ~refused_by_person & ~settled & (refused | band | overruled)
    )
    # A stale decision's pair goes back to a person whatever the model now says, unless
    # two valid NHS numbers settle it.
    in_review |= (
        _is_pair_in(left, right, decided.again, n)
        & ~accepted & ~confirmed & ~refused_by_person & ~held["different_nhs_numbers"]
    )  # fmt: skip
    return _Decided(is_nhs, confirmed, held, accepted, pair_outcome, in_review, labels)


def link_records(
    records: pd.DataFrame,
    settings: LinkageSettings | None = None,
    decisions: pd.DataFrame | None = None,
    *,
    reuse: Any = None,
    requeue: pd.DataFrame | None = None,
    model: TrainedModel | None = None,
) -> LinkageResult:
    """Link records of any number of sources into persons (see interfaces.md).

    `decisions` (DECISION_COLUMNS) are a person's verdicts on pairs: "link" joins the two
    records' persons (unless their valid NHS numbers differ); "no_link" keeps them in
    different persons whatever the model or a chain of links says. Decided pairs never
    return to review; decisions naming records not in `records` are ignored. `requeue`
    names pairs whose decision went stale (their records changed): they are compared
    whatever blocking says and go to review unless linked automatically.

    `model` (a LinkageResult.model of an earlier run) is applied instead of estimating
    one: pairs of records that did not change keep their probabilities. It is estimated
    anyway when it was trained on other fields; `model_trained` in the result says which.
    """
    settings = settings or LinkageSettings()
    settings.check()
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        timings[step] = round(now - clock[0], 3)
        clock[0] = now

    prepared = prepare(records)
    records = records.reset_index(drop=True)
    fields = compared_fields(prepared)
    keys_of_records = record_keys(
        prepared["source"].to_numpy(), prepared["source_record_id"].to_numpy()
    )
    decided = read_decisions(decisions, keys_of_records, requeue)
    lap("prepare")
    keys, left, right = _index(prepared, settings, decided.pairs)
    lap("index")
    # `reuse` (care_etl.incremental.pairs.PairCache) compares only pairs not compared before.
    if reuse is not None:
        levels = reuse.compare(prepared, (left, right), fields, compare_module.progress_hook)
    else:
        levels = compare(
            prepared,
            compare_module.pair_index(left, right, len(prepared)),
            fields,
            compare_module.progress_hook,
        )
    levels, model_fields = with_derived(prepared, levels, (left, right), fields)
    lap("compare")
    kept = model
    applied = None if kept is None else _applied(kept, prepared, model_fields)
    if kept is not None and applied is None:
        log.info("linkage: the kept model was trained on other fields; estimating a new one")
    nhs = prepared["nhs_code"].to_numpy()
    if applied is None:
        fitted = fit(prepared, keys, levels, (left, right), fields, settings)
        same_nhs = (nhs[left] >= 0) & (nhs[left] == nhs[right])
        households = census(levels, fitted, ~same_nhs, len(prepared))
    else:
        fitted, households = applied, Households(*kept.households)
    model = fitted
    scores = _score(model, prepared, levels, (left, right))
    lap("classify")

    ranks = record_ranks(keys_of_records)  # sorts every key: once, for both rounds and ids

    # A forename written in signs (prepare._in_signs) has no typo or short form to be: a
    # twin's other name is another name, however near its Latin letters.
    signs = prepared["given_signs"].to_numpy() > 0
    given = RecordNames(
        np.where(signs, None, prepared["given_key"].to_numpy()),
        np.where(signs, None, prepared["given_typed"].to_numpy()),
        prepared["generation"].to_numpy(),
    )

    def decide(scores: _Scores) -> _Decided:
        return _decide(
            model, scores, nhs, ranks, (left, right), decided, settings, households, given
        )

    done = decide(scores)
    # Second round: the homes that the first round's links show people moving between.
    if applied is None:
        moved = _with_moves(model, prepared, scores, (left, right), done.accepted, done.labels)
    else:
        moved = _kept_moves(kept, model, prepared, scores, (left, right), done)
    if moved is not None:
        model = moved
        scores = _score_with(model, scores, "moved_together")
        del done
        done = decide(scores)
    lap("cluster")
    shown = {
        name: _explained_pairs(
            records, prepared, model, scores, np.flatnonzero(mask), (left, right), done
        )
        for name, mask in (("links", done.accepted), ("review", done.in_review))
    }
    accepted = done.accepted
    assignments = _assignments(
        records,
        person_ids(done.labels, keys_of_records, ranks),
        (left[accepted], right[accepted]),
        scores.prob[accepted],
        (done.is_nhs[accepted], done.confirmed[accepted]),
    )
    lap("explain")
    log.info(
        "linkage: %d records, %d candidate pairs, %d links, %d for review, %d persons",
        len(records),
        len(levels),
        len(shown["links"]),
        len(shown["review"]),
        assignments["person_id"].nunique(),
    )
    return LinkageResult(
        assignments=assignments,
        links=shown["links"],
        review=shown["review"],
        candidate_pairs=len(levels),
        parameters=model.parameters(),
        prior_probability=model.prior,
        training=pd.DataFrame(
            [(s.rule, s.pairs, s.match_share, s.iterations) for s in model.sessions],
            columns=["rule", "pairs", "match_share", "iterations"],
        ),
        timings=timings,
        decisions={
            "link": len(decided.link[0]),
            "no_link": len(decided.no_link[0]),
            "ignored": decided.ignored,
        },
        model=_to_keep(model, prepared, households) if applied is None else kept,
        model_trained=applied is None,
    )


def link(records: pd.DataFrame) -> pd.DataFrame:
    """source, source_record_id, person_id per input record, in input order (interfaces.md),
    under the input's index: `records["person_id"] = link(records)["person_id"]` aligns on
    it, and gave all NaN for a frame whose index was not 0..n-1 (a filtered or sorted one)."""
    found = link_records(records).assignments[["source", "source_record_id", "person_id"]]
    return found.set_axis(records.index, axis=0)
