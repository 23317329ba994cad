"""Cluster: people are built from automatic and confirmed links, strongest first.

Links are applied in order of strength (confirmed by a person, then the same NHS number,
then by probability). A link is refused when it would
- put two different valid NHS numbers into one person (a chain through records without an
  NHS number must not merge two people the NHS says are different);
- join two records a person said are different people (a "no_link" decision);
- join, by probable links through other records, two records a hard rule holds apart
  (twins, a father and son of one name): a record that matches both (a father's form with
  his date of birth unreadable) must not make them one person. A confirmed link or the
  same NHS number may join them;
- hold two groups of two or more records together by one weak link (chaining): a
  probabilistic link between groups is applied only when most of the pairs across them
  are probable too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csgraph

#: Why a link was refused (0: applied).
APPLIED, NHS_CONFLICT, CANNOT_LINK, CHAIN, HELD_APART = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Support:
    """Probabilities of the scored pairs, to judge a link between two groups.

    `pairs` maps left * n + right (left < right) to the pair's probability, for pairs at or
    above the review threshold; a pair not scored counts as improbable.
    """

    n: int
    pairs: dict[int, float]
    #: Share of the cross pairs that must be at least `threshold` probable.
    share: float = 0.5
    threshold: float = 0.5

    def agrees(self, group_a: list[int], group_b: list[int]) -> bool:
        n, pairs, threshold = self.n, self.pairs, self.threshold
        good = 0
        for a in group_a:
            for b in group_b:
                key = a * n + b if a < b else b * n + a
                if pairs.get(key, 0.0) >= threshold:
                    good += 1
        return good >= self.share * len(group_a) * len(group_b)


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
    *,
    strong: np.ndarray | None = None,
    cannot_link: list[tuple[int, int]] = (),  # type: ignore[assignment]
    support: Support | None = None,
    held_apart: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Component label per record and, per link, APPLIED or why it was refused.

    `strength` orders the links, strongest first; equal ones go in the order of their
    records' `ranks` (see `record_ranks`), so the input's row order changes nothing.
    `nhs_codes` holds an integer per distinct valid NHS number, -1 when the record has none.
    `strong` links (confirmed, same NHS number) skip the chaining test; `support` enables it.
    `held_apart` (left and right records) are pairs a hard rule keeps apart: only a strong
    link may join them, directly or through others.

    Only the groups of links where a rule could refuse one are applied link by link
    (`_apply_in_order`): in the others every link is applied, whatever the order, so they
    are labelled at once. Most people are one to three records, and a Python loop over
    every link was the longest step of linking a million records.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(len(left), dtype=np.int8)
    whole = plain_components(n, left, right)
    apart = _within(whole, held_apart)
    ruled = _rules_may_refuse(whole, nhs_codes, [*cannot_link, *apart], chains=support is not None)
    first = np.full(n, n, dtype=np.int64)
    np.minimum.at(first, whole, np.arange(n))
    labels = first[whole]
    outcome = np.zeros(len(left), dtype=np.int8)
    rows = np.flatnonzero(ruled[whole[left]])
    if len(rows):
        roots, outcome[rows] = _apply_in_order(
            n,
            left[rows],
            right[rows],
            strength[rows],
            nhs_codes,
            ranks,
            strong=None if strong is None else strong[rows],
            cannot_link=cannot_link,
            support=support,
            held_apart=apart,
        )
        in_ruled = ruled[whole]
        labels[in_ruled] = roots[in_ruled]
    return labels, outcome


def plain_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component per record of the graph of all the links, none refused."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1].astype(np.int64)


def _within(
    component: np.ndarray, pairs: tuple[np.ndarray, np.ndarray] | None
) -> list[tuple[int, int]]:
    """The pairs whose two records the links would join: only those can be refused, and
    a rule may hold apart millions of pairs (every two of one surname) at a million records."""
    if pairs is None or not len(pairs[0]):
        return []
    left, right = pairs
    joined = component[left] == component[right]
    return list(zip(left[joined].tolist(), right[joined].tolist(), strict=True))


def _rules_may_refuse(
    component: np.ndarray,
    nhs_codes: np.ndarray,
    cannot_link: list[tuple[int, int]],
    chains: bool,
) -> np.ndarray:
    """Per component, whether a rule could refuse one of its links: its records hold two
    valid NHS numbers, or two records a person said are different people, or (with the
    chaining test) four records or more, enough for two groups of two."""
    count = int(component.max(initial=-1)) + 1
    width = int(nhs_codes.max(initial=0)) + 1
    has_nhs = nhs_codes >= 0
    numbers = np.unique(component[has_nhs] * width + nhs_codes[has_nhs]) // width
    ruled = np.bincount(numbers, minlength=count) > 1
    for a, b in cannot_link:
        if component[a] == component[b]:
            ruled[component[a]] = True
    if chains:
        ruled |= np.bincount(component, minlength=count) >= 4
    return ruled


def _apply_in_order(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    strength: np.ndarray,
    nhs_codes: np.ndarray,
    ranks: np.ndarray,
    *,
    strong: np.ndarray | None,
    cannot_link: list[tuple[int, int]],
    support: Support | None,
    held_apart: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> tuple[np.ndarray, np.ndarray]:
    """Each record's root and each link's outcome, the links applied strongest first."""
    parent = list(range(n))
    nhs = nhs_codes.tolist()
    members: dict[int, list[int]] = {}
    forbidden, apart = by_record(cannot_link), by_record(held_apart)
    outcome = np.zeros(len(left), dtype=np.int8)
    low = np.minimum(ranks[left], ranks[right])
    high = np.maximum(ranks[left], ranks[right])
    order = np.lexsort((high, low, -strength))
    lefts, rights = left.tolist(), right.tolist()
    is_strong = np.zeros(len(left), bool) if strong is None else strong
    strong_list = is_strong.tolist()
    for k in order.tolist():
        a, b = lefts[k], rights[k]
        # Most records are still their own root: look further only when not (a call each
        # for a hundred thousand links adds up).
        if parent[a] != a:
            a = _find(parent, a)
        if parent[b] != b:
            b = _find(parent, b)
        if a == b:
            continue
        if nhs[a] >= 0 and nhs[b] >= 0 and nhs[a] != nhs[b]:
            outcome[k] = NHS_CONFLICT
            continue
        group_a, group_b = members.get(a, [a]), members.get(b, [b])
        if (a in forbidden or b in forbidden) and _forbidden(forbidden, a, b, group_a, group_b):
            outcome[k] = CANNOT_LINK
            continue
        if (
            not strong_list[k]
            and (a in apart or b in apart)
            and _forbidden(apart, a, b, group_a, group_b)
        ):
            outcome[k] = HELD_APART
            continue
        if (
            support is not None
            and not strong_list[k]
            and len(group_a) > 1
            and len(group_b) > 1
            and not support.agrees(group_a, group_b)
        ):
            outcome[k] = CHAIN
            continue
        root, child = (a, b) if len(group_a) >= len(group_b) else (b, a)
        parent[child] = root
        joined = members.pop(child, None) or [child]
        if root in members:
            members[root].extend(joined)
        else:
            members[root] = [root, *joined]
        for kept in (forbidden, apart):
            if child in kept:
                kept.setdefault(root, set()).update(kept.pop(child))
        if nhs[root] < 0:
            nhs[root] = nhs[child]
    return _roots(np.array(parent, dtype=np.int64)), outcome


def by_record(pairs: list[tuple[int, int]]) -> dict[int, set[int]]:
    """Per record, the records it must not be joined with (both ways)."""
    found: dict[int, set[int]] = {}
    for a, b in pairs:
        found.setdefault(a, set()).add(b)
        found.setdefault(b, set()).add(a)
    return found


def _roots(parent: np.ndarray) -> np.ndarray:
    """Each node's root (what _find gives), for every node at once: jumping to the parent's
    parent until nothing moves takes a few passes, as the trees are shallow."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def _forbidden(
    forbidden: dict[int, set[int]], a: int, b: int, group_a: list[int], group_b: list[int]
) -> bool:
    """Whether a member of one group was declared a different person from one of the other.

    `forbidden` is keyed by component root; a record's own entry sits under its root once
    merged, so the members of the other group are checked against the root's set."""
    return bool(forbidden.get(a, set()).intersection(group_b)) or bool(
        forbidden.get(b, set()).intersection(group_a)
    )


def record_keys(sources: np.ndarray, record_ids: np.ndarray) -> pd.Series:
    """Each record's "source|source_record_id": unique, and independent of row order."""
    return pd.Series(sources.astype(str), dtype=object) + "|" + record_ids.astype(str)


def record_ranks(keys: pd.Series) -> np.ndarray:
    """Position of each record's key in sorted order."""
    rank, _ = pd.factorize(keys, sort=True)
    return rank.astype(np.int64)


def person_ids(labels: np.ndarray, keys: pd.Series, ranks: np.ndarray | None = None) -> np.ndarray:
    """Per record, "P" + sha256 of its cluster's smallest key, 12 hex digits in upper case.

    An id that depends only on who is in the cluster, not on row order or run. `ranks` are
    record_ranks(keys), when the caller has them (sorting the keys is most of the cost).
    """
    n = len(keys)
    if ranks is None:
        ranks = record_ranks(keys)
    smallest = np.full(n, n, dtype=np.int64)
    np.minimum.at(smallest, labels, ranks)
    # The record holding each rank (equal keys share a rank and a text: either will do).
    record_at = np.zeros(max(n, 1), dtype=np.int64)
    record_at[ranks] = np.arange(n)
    firsts, inverse = np.unique(smallest[labels], return_inverse=True)
    texts = keys.to_numpy()[record_at[firsts]]
    ids = np.array(
        ["P" + hashlib.sha256(t.encode("utf-8")).hexdigest()[:12].upper() for t in texts],
        dtype=object,
    )
    return ids[inverse.reshape(-1)]
