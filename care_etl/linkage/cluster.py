"""Cluster: people are the connected components of the automatic links.

Links are applied strongest first (NHS number links, then by probability), and a link that
would put two different valid NHS numbers into one person is refused: a chain of
probabilistic links through records without an NHS number must not merge two people the
NHS says are different.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def _find(parent: list[int], node: int) -> int:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:
        parent[node], node = root, parent[node]
    return root


def connected_components(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    strength: np.ndarray,
    nhs_codes: np.ndarray,
    ranks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Component label per record and whether each link was applied (False: refused).

    `strength` orders the links, strongest first; equal ones go in the order of their
    records' `ranks` (see `record_ranks`), so the input's row order changes nothing.
    `nhs_codes` holds an integer per distinct valid NHS number, -1 when the record has none.
    """
    parent = list(range(n))
    nhs = nhs_codes.tolist()
    applied = np.ones(len(left), dtype=bool)
    low = np.minimum(ranks[left], ranks[right])
    high = np.maximum(ranks[left], ranks[right])
    order = np.lexsort((high, low, -strength))
    lefts, rights = left.tolist(), right.tolist()
    for k in order.tolist():
        a, b = _find(parent, lefts[k]), _find(parent, rights[k])
        if a == b:
            continue
        if nhs[a] >= 0 and nhs[b] >= 0 and nhs[a] != nhs[b]:
            applied[k] = False
            continue
        root, child = min(a, b), max(a, b)
        parent[child] = root
        if nhs[root] < 0:
            nhs[root] = nhs[child]
    labels = np.array([_find(parent, i) for i in range(n)], dtype=np.int64)
    return labels, applied


def record_keys(sources: np.ndarray, record_ids: np.ndarray) -> pd.Series:
    """Each record's "source|source_record_id": unique, and independent of row order."""
    return pd.Series(sources.astype(str), dtype=object) + "|" + record_ids.astype(str)


def record_ranks(keys: pd.Series) -> np.ndarray:
    """Position of each record's key in sorted order."""
    rank, _ = pd.factorize(keys, sort=True)
    return rank.astype(np.int64)


def person_ids(labels: np.ndarray, keys: pd.Series) -> np.ndarray:
    """Per record, "P" + sha256 of its cluster's smallest key, 12 hex digits in upper case.

    An id that depends only on who is in the cluster, not on row order or run.
    """
    rank, ordered = pd.factorize(keys, sort=True)
    smallest = np.full(len(keys), len(keys), dtype=np.int64)
    np.minimum.at(smallest, labels, rank)
    chosen = smallest[labels]
    digest = {
        int(r): "P" + hashlib.sha256(ordered[r].encode("utf-8")).hexdigest()[:12].upper()
        for r in np.unique(chosen)
    }
    return np.array([digest[r] for r in chosen.tolist()], dtype=object)
