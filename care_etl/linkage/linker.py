"""The linkage run: index, compare, classify, cluster, explain (recordlinkage's steps)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from care_etl.errors import CareEtlError
from care_etl.linkage.blocking import (
    RULES,
    blocking_keys,
    candidate_pairs,
    random_pairs,
    rule_membership,
)
from care_etl.linkage.cluster import (
    connected_components,
    person_ids,
    record_keys,
    record_ranks,
)
from care_etl.linkage.compare import LEVELS, MISSING, compare, compared_fields
from care_etl.linkage.explain import evidence
from care_etl.linkage.model import (
    FellegiSunter,
    combine_sessions,
    em_session,
    estimate_prior,
    estimate_u,
    probability,
)
from care_etl.linkage.prepare import prepare

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

_NOTE_NHS = ', "rule": "nhs_number"'
_NOTE_NHS_DIFFER = ', "capped": "different_nhs_numbers"'
_NOTE_FIELD_DIFFER = ', "capped": "different_{field}"'
_NOTE_CLUSTER_NHS = ', "capped": "cluster_nhs_conflict"'


@dataclass(frozen=True)
class LinkageSettings:
    """Thresholds (match probabilities) and the knobs of estimation; defaults suit most runs."""

    #: Pairs at or above this probability are linked automatically.
    auto_link_threshold: float = 0.95
    #: Pairs at or above this (and below auto) go to human review, unmerged.
    review_threshold: float = 0.50
    #: A blocking key shared by more records than this (a placeholder date) is skipped.
    max_block_size: int = 1000
    #: Random pairs drawn to estimate u (all pairs when there are fewer).
    u_sample_pairs: int = 1_000_000
    #: A blocking rule with fewer candidate pairs than this is not used to estimate m.
    min_session_pairs: int = 20
    em_max_iterations: int = 100
    em_tolerance: float = 1e-5
    #: Fields whose "different" level holds a pair at review however probable it is. The
    #: model multiplies evidence as if fields were independent, but in a household they are
    #: not: twins share surname, date of birth and address and differ only in forename; a
    #: father and son of one name at one address differ only in date of birth. Neither kind
    #: of pair is told from one person by a product of weights, so a human decides. The
    #: price: short forms (Bill for William) are reviewed, not linked automatically.
    review_if_different: tuple[str, ...] = ("date_of_birth", "given_name")
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
        unknown = [f for f in self.review_if_different if "different" not in LEVELS.get(f, ())]
        if unknown:
            raise CareEtlError(
                f"linkage settings: review_if_different names unknown fields {unknown}"
            )
        if self.max_block_size < 2 or self.u_sample_pairs < 1 or self.em_max_iterations < 1:
            raise CareEtlError(
                "linkage settings: max_block_size, u_sample_pairs or em_max_iterations too small"
            )


@dataclass
class LinkageResult:
    """Who is who, the links that made them, the pairs for review, and the model's figures."""

    #: One row per input record, in input order: source, source_record_id, person_id,
    #: link_type (nhs_number | probabilistic | single), match_probability.
    assignments: pd.DataFrame
    #: Accepted (automatic) pairs, PAIR_COLUMNS. An NHS number link has probability 1.0;
    #: its match_weight and evidence still give the model's view (a name that disagrees
    #: shows there).
    links: pd.DataFrame
    #: Pairs in the review band, or held there by a rule ("capped" in the evidence), not
    #: merged, PAIR_COLUMNS.
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


def _fit(
    prepared: pd.DataFrame,
    keys: pd.DataFrame,
    levels: pd.DataFrame,
    pairs: tuple[np.ndarray, np.ndarray],
    fields: list[str],
    settings: LinkageSettings,
) -> FellegiSunter:
    """u from random pairs, m by EM per blocking rule, then the prior."""
    n = len(prepared)
    rng = np.random.default_rng(settings.seed)
    r_left, r_right = random_pairs(n, settings.u_sample_pairs, rng)
    random_levels = compare(prepared, pd.MultiIndex.from_arrays([r_left, r_right]), fields)
    u = estimate_u(random_levels, fields)
    presence = {f: float((random_levels[f].to_numpy() != MISSING).mean()) for f in fields}
    membership = rule_membership(keys, *pairs)
    sessions = []
    for rule in RULES:
        chosen = membership[rule.name].to_numpy()
        active = [f for f in fields if f not in rule.excludes]
        if chosen.sum() < settings.min_session_pairs or not active:
            continue
        sessions.append(
            em_session(
                rule.name,
                levels[chosen],
                active,
                u,
                settings.em_max_iterations,
                settings.em_tolerance,
            )
        )
    m = combine_sessions(sessions, fields)
    prior = settings.prior_probability
    if prior is None:
        prior = estimate_prior(sessions, m, presence, n * (n - 1) // 2, n)
    return FellegiSunter(fields, m, u, prior, sessions)


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


def _explained_pairs(
    records: pd.DataFrame,
    model: FellegiSunter,
    levels: pd.DataFrame,
    rows: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    weight: np.ndarray,
    prob: np.ndarray,
    done: _Decisions,
) -> pd.DataFrame:
    """The pairs at `rows` with their probability, weight, link type and evidence."""
    nhs = done.is_nhs[rows]
    notes = np.full(len(rows), "", dtype=object)
    notes[nhs] = _NOTE_NHS
    for note, capped in done.caps.items():
        notes[capped[rows]] = note
    notes[done.refused[rows]] = _NOTE_CLUSTER_NHS
    explained = evidence(model, levels.iloc[rows], weight[rows], prob[rows], notes)
    link_type = np.where(nhs, "nhs_number", "probabilistic").astype(object)
    pair_prob = np.where(nhs, 1.0, prob[rows])
    left, right = pairs[0][rows], pairs[1][rows]
    return _pair_frame(records, left, right, pair_prob, weight[rows], link_type, explained)


def _assignments(
    records: pd.DataFrame,
    persons: np.ndarray,
    links: tuple[np.ndarray, np.ndarray],
    prob: np.ndarray,
    is_nhs: np.ndarray,
) -> pd.DataFrame:
    """link_type and the strongest probability that joined each record to its cluster."""
    n = len(records)
    left, right = links
    strongest = np.full(n, -1.0)
    ends = np.concatenate([left, right])
    np.maximum.at(strongest, ends, np.concatenate([prob, prob]))
    by_nhs = np.zeros(n, dtype=bool)
    by_nhs[np.concatenate([left[is_nhs], right[is_nhs]])] = True
    link_type = np.where(by_nhs, "nhs_number", np.where(strongest >= 0, "probabilistic", "single"))
    match_probability = np.where(by_nhs, 1.0, np.where(strongest >= 0, strongest, np.nan))
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


def _index(prepared: pd.DataFrame, settings: LinkageSettings):
    """Blocking keys and the candidate pairs as sorted (left, right) positions, left < right."""
    keys = blocking_keys(prepared, settings.max_block_size)
    index = candidate_pairs(keys)
    first, second = index.codes[0].astype(np.int64), index.codes[1].astype(np.int64)
    left, right = np.minimum(first, second), np.maximum(first, second)
    order = np.lexsort((right, left))
    return keys, left[order], right[order]


@dataclass
class _Decisions:
    """What happened to each candidate pair, and the cluster label of each record."""

    is_nhs: np.ndarray
    #: Note -> pairs held at review for that reason.
    caps: dict[str, np.ndarray]
    accepted: np.ndarray
    refused: np.ndarray
    in_review: np.ndarray
    labels: np.ndarray


def _decide(
    prob: np.ndarray,
    levels: pd.DataFrame,
    nhs: np.ndarray,
    ranks: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    settings: LinkageSettings,
) -> _Decisions:
    """Automatic links (same NHS number, or probable and no NHS conflict), clusters, review."""
    both_nhs = (nhs[left] >= 0) & (nhs[right] >= 0)
    is_nhs = both_nhs & (nhs[left] == nhs[right])
    confident = prob >= settings.auto_link_threshold
    caps = {_NOTE_NHS_DIFFER: both_nhs & ~is_nhs & confident}
    for f in settings.review_if_different:
        if f in levels.columns:
            different = levels[f].to_numpy() == LEVELS[f].index("different")
            caps[_NOTE_FIELD_DIFFER.format(field=f)] = different & confident & ~is_nhs
    held = np.logical_or.reduce(list(caps.values()))
    chosen = np.flatnonzero(is_nhs | (confident & ~held))
    strength = np.where(is_nhs, 2.0, prob)
    labels, applied = connected_components(
        len(nhs), left[chosen], right[chosen], strength[chosen], nhs, ranks
    )
    accepted = np.zeros(len(prob), dtype=bool)
    accepted[chosen[applied]] = True
    refused = np.zeros(len(prob), dtype=bool)
    refused[chosen[~applied]] = True
    in_review = ~accepted & (refused | held | (prob >= settings.review_threshold))
    return _Decisions(is_nhs, caps, accepted, refused, in_review, labels)


def link_records(records: pd.DataFrame, settings: LinkageSettings | None = None) -> LinkageResult:
    """Link records of any number of sources into persons (see interfaces.md)."""
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
    lap("prepare")
    keys, left, right = _index(prepared, settings)
    lap("index")
    levels = compare(prepared, pd.MultiIndex.from_arrays([left, right]), fields)
    lap("compare")
    model = _fit(prepared, keys, levels, (left, right), fields, settings)
    weight = model.total_weight(model.field_weights(levels), len(levels))
    prob = probability(weight)
    lap("classify")
    keys_of_records = record_keys(
        prepared["source"].to_numpy(), prepared["source_record_id"].to_numpy()
    )
    nhs = prepared["nhs_code"].to_numpy()
    done = _decide(prob, levels, nhs, record_ranks(keys_of_records), left, right, settings)
    lap("cluster")
    shown = {
        name: _explained_pairs(
            records, model, levels, np.flatnonzero(mask), (left, right), weight, prob, done
        )
        for name, mask in (("links", done.accepted), ("review", done.in_review))
    }
    accepted = done.accepted
    assignments = _assignments(
        records,
        person_ids(done.labels, keys_of_records),
        (left[accepted], right[accepted]),
        prob[accepted],
        done.is_nhs[accepted],
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
    )


def link(records: pd.DataFrame) -> pd.DataFrame:
    """source, source_record_id, person_id per input record, in input order (interfaces.md)."""
    return link_records(records).assignments[["source", "source_record_id", "person_id"]]
