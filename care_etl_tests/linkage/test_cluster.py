"""Clustering labels the groups no rule can touch at once; it must give what applying every
link in order gives (cluster._apply_in_order), refusals included."""

from __future__ import annotations

import numpy as np
import pytest

from care_etl.linkage.cluster import (
    APPLIED,
    CANNOT_LINK,
    CHAIN,
    HELD_APART,
    NHS_CONFLICT,
    Support,
    _apply_in_order,
    _rules_may_refuse,
    connected_components,
    plain_components,
)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the records alike (label values may differ)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", range(6))
def test_grouping_at_once_gives_what_applying_in_order_gives(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    # Links mostly within small groups (people of one to three records), some between them
    # (chains, namesakes), and some groups that grow large.
    person = rng.integers(0, 1500, n)
    order = np.argsort(person, kind="stable")
    together = person[order[:-1]] == person[order[1:]]
    left = np.concatenate([order[:-1][together], rng.integers(0, n, 150)])
    right = np.concatenate([order[1:][together], rng.integers(0, n, 150)])
    keep = left != right
    left, right = np.minimum(left, right)[keep], np.maximum(left, right)[keep]
    strength = rng.random(len(left))
    nhs = np.where(rng.random(n) < 0.4, person % 700, -1)
    nhs[rng.random(n) < 0.03] = rng.integers(700, 900)  # a wrong NHS number now and then
    strong = rng.random(len(left)) < 0.2
    cannot = [(int(a), int(b)) for a, b in zip(left[:15], right[:15], strict=True)]
    probable = zip(left[::3], right[::3], strict=True)
    support = Support(n, {int(a) * n + int(b): 0.9 for a, b in probable})
    ranks = rng.permutation(n)
    kwargs = {"strong": strong, "cannot_link": cannot, "support": support}
    # Pairs a rule holds apart: of one group (joined by its links), or anywhere.
    apart = (
        np.r_[left[15:30], rng.integers(0, n, 200)],
        np.r_[right[16:31], rng.integers(0, n, 200)],
    )

    labels, outcome = connected_components(
        n, left, right, strength, nhs, ranks, held_apart=apart, **kwargs
    )
    roots, expected = _apply_in_order(
        n, left, right, strength, nhs, ranks,
        held_apart=list(zip(*(x.tolist() for x in apart), strict=True)), **kwargs,
    )  # fmt: skip

    assert _same_partition(labels, roots)
    assert outcome.tolist() == expected.tolist()
    # Every kind of refusal occurred, and many links were in groups no rule touches.
    assert {APPLIED, NHS_CONFLICT, CANNOT_LINK, CHAIN, HELD_APART} <= set(outcome.tolist())
    whole = plain_components(n, left, right)
    untouched = ~_rules_may_refuse(whole, nhs, cannot, chains=True)[whole[left]]
    assert 0.25 < untouched.mean() < 0.9


def test_no_records_no_links() -> None:
    empty = np.zeros(0, dtype=np.int64)
    labels, outcome = connected_components(0, empty, empty, np.zeros(0), empty, empty)
    assert len(labels) == 0 and len(outcome) == 0


def test_records_a_rule_holds_apart_are_not_joined_through_a_third() -> None:
    """A father (0) and his son (1) of one name, held apart; a form without a date of
    birth (2) links to both. Only a strong link (confirmed, one NHS number) may join them."""
    left, right = np.array([0, 1]), np.array([2, 2])
    strength, nhs, ranks = np.array([0.99, 0.98]), np.full(3, -1), np.arange(3)
    apart = (np.array([0]), np.array([1]))
    labels, outcome = connected_components(3, left, right, strength, nhs, ranks, held_apart=apart)
    assert labels[0] == labels[2] != labels[1]
    assert outcome.tolist() == [APPLIED, HELD_APART]
    strong = np.array([False, True])
    labels, outcome = connected_components(
        3, left, right, strength, nhs, ranks, strong=strong, held_apart=apart
    )
    assert labels[0] == labels[1] == labels[2]
    assert outcome.tolist() == [APPLIED, APPLIED]
