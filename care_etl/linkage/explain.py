"""Explanations that add up: each pair's evidence lists every field's level and weight.

`{"fields": {field: {"level", "weight", ...}}, "prior_weight", "total_weight",
"match_probability"}`, with total_weight = prior_weight + the field weights (log2 Bayes
factors) and match_probability = 2^total / (1 + 2^total): read in order, the fields are the
steps of a waterfall from the prior to the total. A reviewer can see why a pair scored as it
did.

A name field's weight includes its term-frequency adjustment, shown as `"tf_adjustment"`
(`"weight"` = the level's weight + the adjustment). Extra members say what the numbers alone
do not: a name field may carry `"swapped": true` (forename and surname compared crosswise)
or `"via": "other_names"` (matched an alias or middle name); the postcode carries
`"address_agrees": true` when it was weighed as a postcode beside an agreeing address (the
model's derived field postcode_at_address, shown under "postcode"); a level whose name may
not say enough to a caseworker carries `"says"`, a sentence (SAYS: the levels of
former_address, one record's address against the addresses the other record's person has
left, and of address_periods, whether the two addresses were held one after the other); the
pair may carry `"rule": "nhs_number" | "confirmed"` (linked on the NHS number, or by a
person, whatever the model says) or `"capped": reason` (not linked automatically, whatever the probability:
different_nhs_numbers, twin, unnamed_newborn, father_son, ambiguous, either_of_two, chain,
cannot_link, held_apart, cluster_nhs_conflict).

The strings are assembled from pre-rendered pieces per field level, so explaining a few
hundred thousand links costs a second, not a minute.
"""

from __future__ import annotations

import json
from itertools import repeat

import numpy as np
import pandas as pd

from care_etl.linkage.compare import MISSING
from care_etl.linkage.model import DERIVED, FellegiSunter, level_names

_NAME_FLAGS = {"given_name": "given_name_alias", "family_name": "family_name_alias"}
#: What a level means, in a caseworker's words, where its name alone may not say it.
SAYS = {
    ("former_address", "lived_there_before"): (
        "one record's address is an address the other record's person has moved away from"
    ),
    ("former_address", "former_postcode"): (
        "one record's postcode is that of an address the other record's person has moved away from"
    ),
    ("former_address", "different"): (
        "the addresses differ, and neither is one the other record's person is known to "
        "have lived at"
    ),
    ("address_periods", "one_after_the_other"): (
        "one record shows the person leaving their address before the other shows them at "
        "theirs, as when someone moves"
    ),
    ("address_periods", "overlapping"): (
        "one record shows the person at their address while the other still shows them at another"
    ),
}


def _pieces(model: FellegiSunter, field: str, adjusted: bool) -> np.ndarray:
    """Rendered `"field": {...` per (level code + 1) * 4 + swapped * 2 + alias.

    With `adjusted` the piece stops before the weight, which the caller appends per pair.
    A derived field is rendered under the name of the field it derives from.
    """
    names = ["missing", *level_names(field)]
    weights = np.roll(model.level_weights(field), 1)  # MISSING (last) first, as in `names`
    pieces = []
    for level, weight in zip(names, weights.tolist(), strict=True):
        for swapped in (False, True):
            for alias in (False, True):
                body: dict[str, object] = {"level": level}
                if (field, level) in SAYS:
                    body["says"] = SAYS[field, level]
                if swapped:
                    body["swapped"] = True
                if alias:
                    body["via"] = "other_names"
                if field in DERIVED:
                    body["address_agrees"] = True
                if adjusted:
                    text = json.dumps(body)[:-1] + ', "weight": '
                else:
                    body["weight"] = weight
                    text = json.dumps(body)
                pieces.append(f"{json.dumps(DERIVED.get(field, field))}: {text}")
    return np.array(pieces, dtype=object)


def _merge_derived(
    model: FellegiSunter, levels: pd.DataFrame, field: str, piece: np.ndarray
) -> np.ndarray:
    """Where a field derived from `field` speaks (the field itself is then missing), its
    piece replaces the field's: one key per field, and the weights still add up."""
    for derived, base in DERIVED.items():
        if base != field or derived not in model.fields:
            continue
        code = levels[derived].to_numpy().astype(np.int64)
        speaks = code != MISSING
        piece = piece.copy()
        piece[speaks] = _pieces(model, derived, False)[(code[speaks] + 1) * 4]
    return piece


def _numbers(values: np.ndarray) -> np.ndarray:
    """JSON numbers: repr of a finite float is its JSON text, and much faster to make."""
    floats = np.asarray(values, dtype=float).tolist()
    return np.array(list(map(repr, floats)), dtype=object)


def evidence(
    model: FellegiSunter,
    levels: pd.DataFrame,
    field_weights: dict[str, np.ndarray],
    adjustments: dict[str, np.ndarray],
    total_weight: np.ndarray,
    match_probability: np.ndarray,
    notes: np.ndarray,
) -> np.ndarray:
    """One JSON string per pair; `notes` are extra rendered members (', "rule": ...') or ''.

    `field_weights` are the weights per field as summed into `total_weight` (adjustments
    included), `adjustments` the term-frequency part of the name fields'.
    """
    n = len(levels)
    if n == 0:
        return np.zeros(0, dtype=object)
    swapped = levels["names_swapped"].to_numpy().astype(np.int64)
    parts: list[str | np.ndarray] = ['{"fields": {']
    shown = [f for f in model.fields if f not in DERIVED]
    for i, field in enumerate(shown):
        code = levels[field].to_numpy().astype(np.int64) + 1
        alias = levels[_NAME_FLAGS[field]].to_numpy() if field in _NAME_FLAGS else 0
        flag_swap = swapped if field in _NAME_FLAGS else 0
        adjusted = field in adjustments
        piece = _pieces(model, field, adjusted)[
            code * 4 + flag_swap * 2 + np.asarray(alias, np.int64)
        ]
        parts += [", "] if i else []
        parts.append(_merge_derived(model, levels, field, piece))
        if adjusted:
            weight, extra = _numbers(field_weights[field]), _numbers(adjustments[field])
            parts += [weight, ', "tf_adjustment": ', extra, "}"]
    parts.append(f'}}, "prior_weight": {json.dumps(model.prior_weight)}, "total_weight": ')
    parts += [_numbers(total_weight), ', "match_probability": ', _numbers(match_probability)]
    parts += [notes, "}"]
    return _joined(parts, n)


def _joined(parts: list[str | np.ndarray], n: int) -> np.ndarray:
    """Per row, its parts (a text for every row, or one per row) joined: one join per row
    instead of a pass over every row per part, several times quicker."""
    columns = [repeat(p, n) if isinstance(p, str) else p.tolist() for p in parts]
    return np.array(["".join(row) for row in zip(*columns, strict=False)], dtype=object)
