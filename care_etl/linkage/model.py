"""Classify: a Fellegi-Sunter model with several levels per field, estimated from the data.

u (how often two different people agree at a level) comes from random pairs of records,
where almost every pair is two different people. m (how often one person's two records agree
at a level) comes from expectation maximisation over the candidate pairs of each blocking
rule with u held fixed, leaving out the fields the rule constrains: pairs that share a date of
birth say nothing about how often a person's dates of birth agree (the approach of Splink).
recordlinkage's ECMClassifier takes binary features only; levels carry more evidence.

A missing value is a level of its own with no weight either way (m = u).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from care_etl.linkage.compare import LEVELS, MISSING, codes_of
from care_etl.linkage.reference import (
    REFERENCE_MATCHES,
    REFERENCE_PAIRS,
    REFERENCE_RECORDS,
    reference_m,
    reference_prior,
    reference_u,
)

#: Pseudo-count added to every level's count, so that no level gets an infinite weight.
PSEUDO_COUNT = 1.0
#: Bounds of the term-frequency adjustment (bits): a rare name is evidence, but a name
#: seen once may be a typo, so its bonus is capped; a very common one may lose more.
TF_BOUNDS = (-10.0, 4.0)
_P_FLOOR = 1e-12

#: Fields the linker derives after comparing, with the compared field whose levels they
#: take. "postcode_at_address" is the postcode of pairs whose addresses agree: an address
#: that agrees may already imply the postcode (a full UK address) or not at all (a street
#: name shared by many towns), so the postcode gets its own m and u in that context, and
#: the pair of weights is log2 of P(address, postcode | match) / P(... | non-match), with no
#: assumption that the two are independent.
DERIVED = {"postcode_at_address": "postcode"}
#: Fields the linker adds after a first round of links, with their levels (see
#: linker.moved_together).
LATE_LEVELS = {"moved_together": ("yes", "no")}


#: Forename levels that keep the initial: the same name, or one a letter or two apart.
_SAME_INITIAL = codes_of("given_name", "exact", "close")


def level_names(field: str) -> tuple[str, ...]:
    """The levels of a compared or derived field, strongest agreement first."""
    if field in LATE_LEVELS:
        return LATE_LEVELS[field]
    return LEVELS[DERIVED.get(field, field)]


def initial_m(levels: int) -> np.ndarray:
    """A neutral start for EM: strongest level likely for a match, the rest sharing the remainder."""
    if levels == 1:
        return np.ones(1)
    rest = 0.5 ** np.arange(1, levels)
    return np.concatenate([[0.9], 0.1 * rest / rest.sum()])


def level_frequencies(
    codes: np.ndarray,
    levels: int,
    weights: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    strength: float = 0.0,
):
    """Smoothed share of each level among the pairs where the field is not missing, the
    `reference` shares counted as `strength` pairs more (care_etl.linkage.reference)."""
    present = codes != MISSING
    counts = np.bincount(
        codes[present].astype(np.int64),
        weights=None if weights is None else weights[present],
        minlength=levels,
    )[:levels].astype(float)
    counts += PSEUDO_COUNT / levels
    if reference is not None:
        counts += strength * reference
    return counts / counts.sum()


def term_frequencies(codes: np.ndarray, vocabulary: int, typical: float) -> np.ndarray:
    """Share of the records with a value that carry each value code, with a few records more
    (`_reference_strength`) whose share is `typical` (u of exact agreement, the share of the
    name a random record carries, on average): in a few records every name looks common."""
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=vocabulary).astype(float)
    extra = _reference_strength(REFERENCE_RECORDS, len(present))
    return (counts + extra * typical) / (len(present) + extra)


def unseen_share(present: int, typical: float) -> float:
    """`term_frequencies`' share of a value seen once among `present` records."""
    extra = _reference_strength(REFERENCE_RECORDS, present)
    return (1.0 + extra * typical) / (present + extra)


def _reference_strength(full: float, sample: int) -> float:
    """How many observations the reference counts for beside `sample` of the data's own:
    `full` in a sample of as many or fewer, fading with the square of the sample beyond
    (a thousandth of `full` in a sample a thousand times `full`'s size, where the data's own
    rare agreements, another country's postcodes or a rare name, must not be swamped)."""
    return full * min(1.0, full / max(sample, 1)) ** 2


def estimate_u(
    random_levels: pd.DataFrame, fields: list[str], weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """u per field level from pairs of records drawn at random, each counted with its
    `weight` (the chance that it is two people; all 1 at first)."""
    return {f: field_u(random_levels[f].to_numpy(), f, weights) for f in fields}


def field_u(codes: np.ndarray, field: str, weights: np.ndarray | None = None) -> np.ndarray:
    """u of one field from its levels in pairs of (mostly) two people, from the reference on
    (as strong as the pairs where the field is known are few)."""
    names = level_names(field)
    strength = _reference_strength(REFERENCE_PAIRS, int((codes != MISSING).sum()))
    return level_frequencies(codes, len(names), weights, reference_u(field, names), strength)


def non_match_chance(
    random_levels: pd.DataFrame,
    fields: list[str],
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    prior: float,
) -> np.ndarray:
    """Per random pair, the model's chance that it is two people.

    Random pairs are almost all two people, but the few that are one person agree on
    nearly everything, and where u is read in a narrow context (a postcode beside an
    agreeing address) they are a good part of it: counting them as strangers would make
    agreement look common among strangers."""
    logit = np.full(len(random_levels), np.log(prior) - np.log1p(-prior))
    for f in fields:
        logit += _log_ratios(m[f], u[f])[random_levels[f].to_numpy().astype(np.int64)]
    return 1.0 / (1.0 + np.exp(np.clip(logit, -700.0, 700.0)))


@dataclass
class Session:
    """One EM run on the pairs of one blocking rule."""

    rule: str
    pairs: int
    match_share: float
    m: dict[str, np.ndarray]
    #: Expected number of matching pairs in which each field was known: m's sample size.
    seen: dict[str, float]
    iterations: int

    @property
    def expected_matches(self) -> float:
        return self.match_share * self.pairs


def _log_ratios(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """log(m/u) per level, with a zero appended for MISSING (index -1)."""
    return np.concatenate([np.log(m) - np.log(u), [0.0]])


def em_session(
    rule: str,
    levels: pd.DataFrame,
    fields: list[str],
    u: dict[str, np.ndarray],
    max_iterations: int,
    tolerance: float,
) -> Session:
    """Estimate m for `fields` and the share of matches among these pairs, u held fixed.

    Pairs with the same levels on every field have the same chance of being a match, so
    EM runs once per distinct pattern of levels, weighted by how many pairs show it: a few
    thousand patterns however many million pairs."""
    patterns, count = level_patterns(levels, fields)
    codes = {f: patterns[f] for f in fields}  # int8: MISSING (-1) reads the last
    m = {f: initial_m(len(level_names(f))) for f in fields}
    share = 0.1
    iterations = 0
    total = float(count.sum())
    while iterations < max_iterations:
        iterations += 1
        logit = np.full(len(count), np.log(share) - np.log1p(-share))
        for f in fields:
            logit += _log_ratios(m[f], u[f])[codes[f]]
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -700.0, 700.0)))
        matches = p * count
        new_m = {f: _field_m(codes[f], f, matches) for f in fields}
        new_share = float(np.clip(matches.sum() / max(total, 1.0), _P_FLOOR, 1 - 1e-9))
        change = max([abs(new_share - share)] + [np.abs(new_m[f] - m[f]).max() for f in fields])
        m, share = new_m, new_share
        if change < tolerance:
            break
    seen = {f: float(matches[codes[f] != MISSING].sum()) for f in fields}
    return Session(rule, len(levels), share, m, seen, iterations)


def _field_m(codes: np.ndarray, field: str, matches: np.ndarray) -> np.ndarray:
    names = level_names(field)
    return level_frequencies(
        codes, len(names), matches, reference_m(field, names), REFERENCE_MATCHES
    )


def level_patterns(levels: pd.DataFrame, fields: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of these level columns, and how many pairs show each."""
    key = np.zeros(len(levels), dtype=np.int64)
    sizes = []
    for f in fields:
        size = len(level_names(f)) + 1  # MISSING (-1) is a value too
        key = key * size + (levels[f].to_numpy().astype(np.int64) + 1)
        sizes.append(size)
    unique, count = np.unique(key, return_counts=True)
    columns = {}
    for f, size in zip(reversed(fields), reversed(sizes), strict=True):
        columns[f] = (unique % size - 1).astype(np.int8)
        unique = unique // size
    return pd.DataFrame({f: columns[f] for f in fields}), count


def combine_sessions(sessions: list[Session], fields: list[str]) -> dict[str, np.ndarray]:
    """Average each field's m over the sessions that estimated it, weighted by matches seen."""
    m = {}
    for f in fields:
        found = [(s.seen[f], s.m[f]) for s in sessions if f in s.m]
        total = sum(w for w, _ in found)
        if total > 0:
            m[f] = sum(w * v for w, v in found) / total
        else:
            known = reference_m(f, level_names(f))
            m[f] = initial_m(len(level_names(f))) if known is None else known
    return m


@dataclass
class FellegiSunter:
    """Estimated parameters and the scoring they imply (weights are log2 Bayes factors)."""

    fields: list[str]
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float
    sessions: list[Session]
    #: Per name field: the share of records carrying each value code (term frequency).
    term_frequencies: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per field: the share of random pairs in which both records carry a value.
    presence: dict[str, float] = field(default_factory=dict)

    def with_field(self, name: str, m: np.ndarray, u: np.ndarray) -> FellegiSunter:
        """This model with one more field, estimated outside EM."""
        return replace(
            self, fields=[*self.fields, name], m={**self.m, name: m}, u={**self.u, name: u}
        )

    @property
    def prior_weight(self) -> float:
        return float(np.log2(self.prior) - np.log2(1 - self.prior))

    def level_weights(self, field: str) -> np.ndarray:
        """log2(m/u) per level code, MISSING (-1, the last entry) weighing 0."""
        return _log_ratios(self.m[field], self.u[field]) / np.log(2.0)

    def field_weights(self, levels: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            f: self.level_weights(f)[levels[f].to_numpy().astype(np.int64)] for f in self.fields
        }

    def tf_adjustments(self, exact_values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """log2(u_exact / frequency of the shared value) for exact agreements (Splink's
        term-frequency adjustment): two records called Smith agree less tellingly than two
        called Quennell. `exact_values` holds the shared value's code, -1 where not exact."""
        adjust = {}
        for f, codes in exact_values.items():
            if f not in self.fields or f not in self.term_frequencies:
                continue
            shown = codes >= 0
            out = np.zeros(len(codes))
            freq = self.term_frequencies[f][codes[shown]]
            out[shown] = np.clip(
                np.log2(self.u[f][0]) - np.log2(np.maximum(freq, _P_FLOOR)), *TF_BOUNDS
            )
            adjust[f] = out
        return adjust

    def total_weight(self, field_weights: dict[str, np.ndarray], n: int) -> np.ndarray:
        total = np.full(n, self.prior_weight)
        for f in self.fields:
            total = total + field_weights[f]
        return total

    def parameters(self) -> pd.DataFrame:
        """One row per field level: m, u and the weight log2(m/u)."""
        rows = []
        for f in self.fields:
            weights = self.level_weights(f)
            for i, level in enumerate(level_names(f)):
                rows.append((f, level, float(self.m[f][i]), float(self.u[f][i]), float(weights[i])))
            rows.append((f, "missing", np.nan, np.nan, 0.0))
        return pd.DataFrame(rows, columns=["field", "level", "m", "u", "weight"])


def probability(weight: np.ndarray) -> np.ndarray:
    """2^w / (1 + 2^w), computed without overflow."""
    return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=float)))


def estimate_prior(
    sessions: list[Session],
    m: dict[str, np.ndarray],
    presence: dict[str, float],
    total_pairs: int,
    n_records: int,
) -> float:
    """Probability that two records drawn at random are one person.

    A rule's session found `expected_matches` matching pairs; those are the share of all
    matching pairs that the rule can see (for the date of birth and forename initial rule:
    both dates present and equal, both forenames present with one initial), so dividing by
    that share counts all matching pairs. With no such session it
    assumes each record has one other record of the same person, or the reference's
    chance when that is less (two records alone are not even odds of one person).
    """
    by_rule = {s.rule: s for s in sessions}
    visible = None
    session = by_rule.get("date_of_birth_given_initial")
    if session is not None and "date_of_birth" in m and "given_name" in m:
        same_initial = m["given_name"][list(_SAME_INITIAL)].sum()
        visible = (
            m["date_of_birth"][0]
            * presence["date_of_birth"]
            * same_initial
            * presence["given_name"]
        )
    else:
        session = by_rule.get("postcode_initial")
        if session is not None and "postcode" in m and "given_name" in m:
            same_initial = m["given_name"][list(_SAME_INITIAL)].sum()
            visible = (
                m["postcode"][0] * presence["postcode"] * same_initial * presence["given_name"]
            )
    if session is not None and visible:
        matches = session.expected_matches / visible
    else:
        alone = n_records / 2 / max(total_pairs, 1)
        return float(np.clip(min(alone, reference_prior()), 1e-12, 0.5))
    return float(np.clip(matches / max(total_pairs, 1), 1e-12, 0.5))


#: Bumped when what a kept model holds, or how it is written, changes.
MODEL_FORMAT = 1


@dataclass
class TrainedModel:
    """A model estimated on a full run, kept so that later runs apply it unchanged.

    Everything the probabilities and the hard rules read that is estimated from the whole
    data: m and u per field level (moved_together, when the run weighed it, last), the
    prior, the presence of each field, the household census (linker.Households) and the
    term frequencies. The term-frequency tables are keyed by a 64-bit hash of each name
    value (never the value), because a run's value codes are its own: every value of the
    training run's name vocabulary is kept with its share (0 for a value seen only as
    another name part), and a value the table does not know counts as seen once (share
    1 / the records that carried the field), the rarest a seen value can be; its bonus is
    then capped by TF_BOUNDS like any rare name's.
    """

    model: FellegiSunter
    #: Per name field: (value hashes, sorted; share of the records carrying each).
    term_frequencies: dict[str, tuple[np.ndarray, np.ndarray]]
    #: Per name field: the share of a value the table does not know.
    unseen_share: dict[str, float]
    #: Household census at training (linker.Households: observed, chance).
    households: tuple[int, float]
    #: When it was trained (UTC, ISO 8601), and on how many records.
    trained_at: str
    records: int
    #: Records added, changed or removed since training, against the records it was trained on.
    changed: int = 0

    @property
    def version(self) -> str:
        """12 hex digits that change with any parameter: which model made a link."""
        import hashlib

        digest = hashlib.sha256(repr((self.model.fields, self.model.prior)).encode())
        for f in self.model.fields:
            digest.update(np.ascontiguousarray(self.model.m[f], dtype=float).tobytes())
            digest.update(np.ascontiguousarray(self.model.u[f], dtype=float).tobytes())
        for f in sorted(self.term_frequencies):
            for part in self.term_frequencies[f]:
                digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()[:12]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat numpy arrays (read back with allow_pickle=False): a JSON text of the
        scalars and one array per field's m, u and term-frequency table."""
        import json

        model = self.model
        meta = {
            "format": MODEL_FORMAT,
            "fields": model.fields,
            "prior": model.prior,
            "presence": model.presence,
            "sessions": [[s.rule, s.pairs, s.match_share, s.iterations] for s in model.sessions],
            "unseen_share": self.unseen_share,
            "households": list(self.households),
            "trained_at": self.trained_at,
            "records": self.records,
            "changed": self.changed,
        }
        arrays = {"meta": np.array(json.dumps(meta))}
        for f in model.fields:
            arrays[f"m:{f}"] = np.asarray(model.m[f], dtype=float)
            arrays[f"u:{f}"] = np.asarray(model.u[f], dtype=float)
        for f, (keys, shares) in self.term_frequencies.items():
            arrays[f"tf_keys:{f}"] = keys.astype(np.uint64)
            arrays[f"tf_share:{f}"] = shares.astype(float)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrainedModel:
        """The model `to_arrays` wrote; ValueError when it is of another format."""
        import json

        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"kept model of format {meta.get('format')}, not {MODEL_FORMAT}")
        fields = list(meta["fields"])
        sessions = [Session(r, int(p), float(s), {}, {}, int(i)) for r, p, s, i in meta["sessions"]]
        model = FellegiSunter(
            fields,
            {f: arrays[f"m:{f}"] for f in fields},
            {f: arrays[f"u:{f}"] for f in fields},
            float(meta["prior"]),
            sessions,
            {},
            {k: float(v) for k, v in meta["presence"].items()},
        )
        tables = {
            f: (arrays[f"tf_keys:{f}"], arrays[f"tf_share:{f}"]) for f in meta["unseen_share"]
        }
        observed, chance = meta["households"]
        return cls(
            model,
            tables,
            {f: float(v) for f, v in meta["unseen_share"].items()},
            (int(observed), float(chance)),
            str(meta["trained_at"]),
            int(meta["records"]),
            int(meta["changed"]),
        )

    def shares_by_code(self, field: str, hashes: np.ndarray) -> np.ndarray:
        """Per value code of this run (its value's hash in `hashes`), the kept share."""
        keys, shares = self.term_frequencies[field]
        at = np.minimum(np.searchsorted(keys, hashes), max(len(keys) - 1, 0))
        known = (keys[at] == hashes) if len(keys) else np.zeros(len(hashes), dtype=bool)
        return np.where(known, shares[at] if len(keys) else 0.0, self.unseen_share[field])
