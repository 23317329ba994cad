"""Explanations that add up: each pair's evidence lists every field's level and weight.

`{"fields": {field: {"level", "weight"}}, "prior_weight", "total_weight", "match_probability"}`
with total_weight = prior_weight + the field weights (log2 Bayes factors) and
match_probability = 2^total / (1 + 2^total). A reviewer can see why a pair scored as it did.

Extra members say what the numbers alone do not: a name field may carry `"swapped": true`
(forename and surname compared crosswise) or `"via": "other_names"` (matched an alias or
middle name); the pair may carry `"rule": "nhs_number"` (linked on the NHS number whatever
the model says) or `"capped": reason` (held at review: different_nhs_numbers,
different_date_of_birth, different_given_name, cluster_nhs_conflict).

The strings are assembled from pre-rendered pieces per field level, so explaining a few
hundred thousand links costs a second, not a minute.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from care_etl.linkage.compare import LEVELS
from care_etl.linkage.model import FellegiSunter

_NAME_FLAGS = {"given_name": "given_name_alias", "family_name": "family_name_alias"}


def _pieces(model: FellegiSunter, field: str) -> np.ndarray:
    """Rendered `"field": {...}` per (level code + 1) * 4 + swapped * 2 + alias."""
    names = ["missing", *LEVELS[field]]
    weights = np.roll(model.level_weights(field), 1)  # MISSING (last) first, as in `names`
    pieces = []
    for level, weight in zip(names, weights.tolist(), strict=True):
        for swapped in (False, True):
            for alias in (False, True):
                body: dict[str, object] = {"level": level, "weight": weight}
                if swapped:
                    body["swapped"] = True
                if alias:
                    body["via"] = "other_names"
                pieces.append(f"{json.dumps(field)}: {json.dumps(body)}")
    return np.array(pieces, dtype=object)


def evidence(
    model: FellegiSunter,
    levels: pd.DataFrame,
    total_weight: np.ndarray,
    match_probability: np.ndarray,
    notes: np.ndarray,
) -> np.ndarray:
    """One JSON string per pair; `notes` are extra rendered members (', "rule": ...') or ''."""
    n = len(levels)
    if n == 0:
        return np.zeros(0, dtype=object)
    swapped = levels["names_swapped"].to_numpy().astype(np.int64)
    fields = np.full(n, "", dtype=object)
    for i, field in enumerate(model.fields):
        code = levels[field].to_numpy().astype(np.int64) + 1
        alias = levels[_NAME_FLAGS[field]].to_numpy() if field in _NAME_FLAGS else 0
        flag_swap = swapped if field in _NAME_FLAGS else 0
        piece = _pieces(model, field)[code * 4 + flag_swap * 2 + np.asarray(alias, np.int64)]
        fields = fields + (", " if i else "") + piece
    totals = np.array([json.dumps(w) for w in total_weight.tolist()], dtype=object)
    probs = np.array([json.dumps(p) for p in match_probability.tolist()], dtype=object)
    head = '{"fields": {'
    prior = f'}}, "prior_weight": {json.dumps(model.prior_weight)}, "total_weight": '
    return head + fields + prior + totals + ', "match_probability": ' + probs + notes + "}"
