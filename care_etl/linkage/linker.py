"""The linkage run: index, compare, classify, rules, cluster, explain.

Hard rules stand above the model: two different valid NHS numbers never link
automatically; the twin rule and the father and son rule (see LinkageSettings) keep
household members apart. A person's decisions (review outcomes) are applied as confirmed
links and cannot-link constraints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from care_etl.errors import CareEtlError
from care_etl.linkage import compare as compare_module
from care_etl.linkage.blocking import (
    RULES,
    blocking_keys,
    candidate_pairs,
    random_pairs,
    rule_membership,
)
from care_etl.linkage.cluster import (
    APPLIED,
    CANNOT_LINK,
    CHAIN,
    NHS_CONFLICT,
    Support,
    connected_components,
    person_ids,
    record_keys,
    record_ranks,
)
from care_etl.linkage.compare import MISSING, YEAR_GAP, compare, compared_fields
from care_etl.linkage.explain import evidence
from care_etl.linkage.model import (
    FellegiSunter,
    combine_sessions,
    em_session,
    estimate_prior,
    estimate_u,
    probability,
    term_frequencies,
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
}
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
    #: are not, so two rules stand above it. The twin rule: one surname with different
    #: forenames (not a short form, not a typo) is never linked automatically, whatever the
    #: dates of birth say (twins share surname, date of birth and address; siblings born
    #: close together look like a date typed wrong).
    twin_rule: bool = True
    #: The father and son rule: one name (forename and surname agree) with dates of birth
    #: that differ (not a typo, swap or estimate) and years at least this many apart is
    #: never linked automatically (0 turns the rule off). One year already: a namesake in
    #: the household is likelier than a date typed wholly wrong.
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
        if rule.name not in membership.columns:
            continue
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
    tf = {}
    if settings.term_frequency and n:
        vocabulary = int(max(prepared["given_code"].max(), prepared["family_code"].max())) + 1
        for f, column in _TF_COLUMNS.items():
            if f in fields:
                tf[f] = term_frequencies(prepared[column].to_numpy(), max(vocabulary, 1))
    return FellegiSunter(fields, m, u, prior, sessions, tf)


#: Name fields with a term-frequency adjustment, and the code column of their value.
_TF_COLUMNS = {"given_name": "given_code", "family_name": "family_code"}
_ALIAS_FLAG = {"given_name": "given_name_alias", "family_name": "family_name_alias"}


def _exact_values(
    prepared: pd.DataFrame, levels: pd.DataFrame, left: np.ndarray
) -> dict[str, np.ndarray]:
    """Per name field, the shared value's code where the names agree exactly (else -1)."""
    found = {}
    for f, column in _TF_COLUMNS.items():
        if f not in levels.columns:
            continue
        exact = (levels[f].to_numpy() == 0) & ~levels[_ALIAS_FLAG[f]].to_numpy()
        found[f] = np.where(exact, prepared[column].to_numpy()[left], -1).astype(np.int64)
    return found


@dataclass
class _Scores:
    """The model's view of every candidate pair."""

    levels: pd.DataFrame
    field_weights: dict[str, np.ndarray]
    adjustments: dict[str, np.ndarray]
    weight: np.ndarray
    prob: np.ndarray


def _score(
    model: FellegiSunter, prepared: pd.DataFrame, levels: pd.DataFrame, left: np.ndarray
) -> _Scores:
    field_weights = model.field_weights(levels)
    adjustments = model.tf_adjustments(_exact_values(prepared, levels, left))
    for f, extra in adjustments.items():
        field_weights[f] = field_weights[f] + extra
    weight = model.total_weight(field_weights, len(levels))
    return _Scores(levels, field_weights, adjustments, weight, probability(weight))


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


def _explained_pairs(
    records: pd.DataFrame,
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
    notes[nhs] = _RULE_NOTES["nhs_number"]
    notes[confirmed] = _RULE_NOTES["confirmed"]
    levels = scores.levels.iloc[rows]
    weights = {f: w[rows] for f, w in scores.field_weights.items()}
    adjustments = {f: a[rows] for f, a in scores.adjustments.items()}
    weight, prob = scores.weight[rows], scores.prob[rows]
    explained = evidence(model, levels, weights, adjustments, weight, prob, notes)
    link_type = np.where(
        confirmed, "confirmed", np.where(nhs, "nhs_number", "probabilistic")
    ).astype(object)
    pair_prob = np.where(nhs | confirmed, 1.0, prob)
    left, right = pairs[0][rows], pairs[1][rows]
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
    index = candidate_pairs(keys)
    first = np.concatenate([index.codes[0].astype(np.int64), extra[0]])
    second = np.concatenate([index.codes[1].astype(np.int64), extra[1]])
    left, right = np.minimum(first, second), np.maximum(first, second)
    n = max(len(prepared), 1)
    code = left[left != right] * n + right[left != right]
    if len(extra[0]):
        code = np.unique(code)
    return keys, code // n, code % n


@dataclass
class _Decisions:
    """A person's decisions as record positions (left < right)."""

    link: tuple[np.ndarray, np.ndarray]
    no_link: tuple[np.ndarray, np.ndarray]
    ignored: int

    @property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([self.link[0], self.no_link[0]]),
            np.concatenate([self.link[1], self.no_link[1]]),
        )


def _empty_pairs() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def read_decisions(decisions: pd.DataFrame | None, keys: pd.Series) -> _Decisions:
    """Decisions naming two records of this input, as positions; a pair decided both ways
    counts as no_link (keeping people apart is the safe side)."""
    if decisions is None or len(decisions) == 0:
        return _Decisions(_empty_pairs(), _empty_pairs(), 0)
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
        (yes_code // n, yes_code % n), (no_code // n, no_code % n), int((~known).sum())
    )


def _is_pair_in(
    left: np.ndarray, right: np.ndarray, chosen: tuple[np.ndarray, np.ndarray], n: int
) -> np.ndarray:
    return np.isin(left * n + right, chosen[0] * n + chosen[1])


def _held(
    levels: pd.DataFrame, both_nhs: np.ndarray, is_nhs: np.ndarray, settings: LinkageSettings
) -> dict[str, np.ndarray]:
    """Pairs the hard rules keep from linking automatically, by rule (see LinkageSettings)."""
    held = {"different_nhs_numbers": both_nhs & ~is_nhs}
    if "date_of_birth" not in levels.columns or "family_name" not in levels.columns:
        return held
    dob = levels["date_of_birth"].to_numpy()
    family = levels["family_name"].to_numpy()
    same_family = np.isin(family, [0, 1, 2])
    if "given_name" in levels.columns:
        given = levels["given_name"].to_numpy()
        if settings.twin_rule:
            other_forename = given == 4
            held["twin"] = ~is_nhs & same_family & (dob != MISSING) & other_forename
        if settings.father_son_years:
            same_forename = np.isin(given, [0, 1, 2])
            years_apart = levels[YEAR_GAP].to_numpy() >= settings.father_son_years
            generations = np.isin(dob, [4, 5]) & years_apart
            held["father_son"] = ~is_nhs & same_family & same_forename & generations
    return held


def _ambiguous(
    probable: np.ndarray, left: np.ndarray, right: np.ndarray, nhs: np.ndarray
) -> np.ndarray:
    """Probable links of a record without an NHS number that would link it to records of
    two different valid NHS numbers (two namesakes born the same day, one record that
    names neither address): whichever it joined would be a guess, so neither is automatic.
    """
    rows = np.flatnonzero(probable)
    ends = np.concatenate([left[rows], right[rows]])
    partners = np.concatenate([right[rows], left[rows]])
    pair_rows = np.concatenate([rows, rows])
    known = (nhs[ends] < 0) & (nhs[partners] >= 0)
    ends, codes, pair_rows = ends[known], nhs[partners][known], pair_rows[known]
    found = np.zeros(len(probable), dtype=bool)
    if not len(ends):
        return found
    spread = pd.DataFrame({"end": ends, "code": codes}).groupby("end")["code"].agg(["min", "max"])
    torn = spread.index[spread["min"] != spread["max"]].to_numpy()
    torn_record = np.zeros(len(nhs), dtype=bool)
    torn_record[torn] = True
    found[rows] = torn_record[left[rows]] | torn_record[right[rows]]
    return found


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


def _decide(
    scores: _Scores,
    nhs: np.ndarray,
    ranks: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    decided: _Decisions,
    settings: LinkageSettings,
) -> _Decided:
    """Links (confirmed, same NHS number, or probable and held by no rule), clusters, review."""
    left, right = pairs
    n = len(nhs)
    prob = scores.prob
    both_nhs = (nhs[left] >= 0) & (nhs[right] >= 0)
    is_nhs = both_nhs & (nhs[left] == nhs[right])
    confirmed = _is_pair_in(left, right, decided.link, n)
    refused_by_person = _is_pair_in(left, right, decided.no_link, n)
    held = _held(scores.levels, both_nhs, is_nhs, settings)
    held = {k: v & ~confirmed for k, v in held.items()}
    blocked = np.logical_or.reduce(list(held.values())) | refused_by_person
    automatic = (is_nhs | (prob >= settings.auto_link_threshold)) & ~blocked
    held["ambiguous"] = _ambiguous(automatic & ~is_nhs & ~confirmed, left, right, nhs)
    automatic &= ~held["ambiguous"]
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
    )
    accepted = np.zeros(len(prob), dtype=bool)
    accepted[chosen[outcome == APPLIED]] = True
    pair_outcome = np.zeros(len(prob), dtype=np.int8)
    pair_outcome[chosen] = outcome
    refused = pair_outcome != APPLIED
    # Two different valid NHS numbers, or one name born years apart, settle the question:
    # such pairs are not reviewed. A pair the twin rule held back is reviewed only when
    # the model alone would have linked it.
    settled = held["different_nhs_numbers"] | held.get("father_son", False)
    twin = held.get("twin", np.zeros(len(prob), dtype=bool))
    band = (prob >= settings.review_threshold) & ~twin
    overruled = twin & (prob >= settings.auto_link_threshold)
    in_review = (
        ~accepted & ~confirmed & ~refused_by_person & ~settled & (refused | band | overruled)
    )
    return _Decided(is_nhs, confirmed, held, accepted, pair_outcome, in_review, labels)


def link_records(
    records: pd.DataFrame,
    settings: LinkageSettings | None = None,
    decisions: pd.DataFrame | None = None,
) -> LinkageResult:
    """Link records of any number of sources into persons (see interfaces.md).

    `decisions` (DECISION_COLUMNS) are a person's verdicts on pairs: "link" joins the two
    records' persons (unless their valid NHS numbers differ); "no_link" keeps them in
    different persons whatever the model or a chain of links says. Decided pairs never
    return to review; decisions naming records not in `records` are ignored.
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
    decided = read_decisions(decisions, keys_of_records)
    lap("prepare")
    keys, left, right = _index(prepared, settings, decided.pairs)
    lap("index")
    levels = compare(
        prepared, pd.MultiIndex.from_arrays([left, right]), fields, compare_module.progress_hook
    )
    lap("compare")
    model = _fit(prepared, keys, levels, (left, right), fields, settings)
    scores = _score(model, prepared, levels, left)
    lap("classify")
    nhs = prepared["nhs_code"].to_numpy()
    done = _decide(scores, nhs, record_ranks(keys_of_records), (left, right), decided, settings)
    lap("cluster")
    shown = {
        name: _explained_pairs(records, model, scores, np.flatnonzero(mask), (left, right), done)
        for name, mask in (("links", done.accepted), ("review", done.in_review))
    }
    accepted = done.accepted
    assignments = _assignments(
        records,
        person_ids(done.labels, keys_of_records),
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
    )


def link(records: pd.DataFrame) -> pd.DataFrame:
    """source, source_record_id, person_id per input record, in input order (interfaces.md)."""
    return link_records(records).assignments[["source", "source_record_id", "person_id"]]
