"""A person's decisions on pairs (issue 5's review screen feeds them back to the linkage)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import care_etl_tests.linkage.test_link as base
from care_etl.errors import CareEtlError
from care_etl.linkage import LinkageResult, link_records
from care_etl_tests.linkage.people import crowd, with_records

#: Three records of one person, each pair an automatic link.
TRIPLE = [
    dict(source=source, source_record_id=f"T-triple-{i}", given_name="Perpetua",
         family_name="Hollingsworth", date_of_birth="1944-02-17", sex="F", postcode="E5 0QQ")
    for i, source in enumerate(("health", "housing", "social_care"))
]  # fmt: skip


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return with_records(crowd().drop(columns="person"), [*base.CASES, *TRIPLE])


@pytest.fixture(scope="module")
def plain(records: pd.DataFrame) -> LinkageResult:
    return link_records(records)


def _decisions(*rows: tuple[str, str, str]) -> pd.DataFrame:
    source = {c["source_record_id"]: c["source"] for c in [*base.CASES, *TRIPLE]}
    return pd.DataFrame(
        [
            {
                "left_source": source[a],
                "left_source_record_id": a,
                "right_source": source[b],
                "right_source_record_id": b,
                "decision": decision,
            }
            for a, b, decision in rows
        ]
    )


def test_a_confirmed_link_joins_two_persons(records: pd.DataFrame, plain) -> None:
    assert base._person(plain, "T-alone") != base._person(plain, "T-abroad-3")
    result = link_records(records, decisions=_decisions(("T-alone", "T-abroad-3", "link")))
    assert base._person(result, "T-alone") == base._person(result, "T-abroad-3")
    row = base._pair(result.links, "T-alone", "T-abroad-3")
    assert row["link_type"].tolist() == ["confirmed"]
    assert row["match_probability"].tolist() == [1.0]
    evidence = json.loads(row["evidence"].iloc[0])
    assert evidence["rule"] == "confirmed"
    assert evidence["match_probability"] < 0.5  # the model's own view is kept
    kinds = result.assignments.set_index("source_record_id").loc[["T-alone", "T-abroad-3"]]
    assert kinds["link_type"].tolist() == ["confirmed", "confirmed"]
    assert result.decisions == {"link": 1, "no_link": 0, "ignored": 0}


def test_a_confirmed_link_never_joins_two_nhs_numbers(records: pd.DataFrame) -> None:
    result = link_records(records, decisions=_decisions(("T-differ-1", "T-differ-2", "link")))
    assert base._person(result, "T-differ-1") != base._person(result, "T-differ-2")
    assert base._pair(result.review, "T-differ-1", "T-differ-2").empty


def test_a_no_link_stays_apart_even_through_a_chain(records: pd.DataFrame, plain) -> None:
    persons = {base._person(plain, f"T-triple-{i}") for i in range(3)}
    assert len(persons) == 1  # without a decision, one person
    result = link_records(records, decisions=_decisions(("T-triple-0", "T-triple-2", "no_link")))
    # 0-1 and 1-2 are strong links, but 0 and 2 must end in different persons.
    assert base._person(result, "T-triple-0") != base._person(result, "T-triple-2")
    assert base._pair(result.review, "T-triple-0", "T-triple-2").empty
    assert base._pair(result.links, "T-triple-0", "T-triple-2").empty
    # The link that was refused for it goes to a person instead.
    refused = [json.loads(e).get("capped") for e in result.review["evidence"]]
    assert "cannot_link" in refused


def test_decided_pairs_never_return_to_review(records: pd.DataFrame, plain) -> None:
    assert len(plain.review) >= 2
    rows = plain.review.iloc[:2]
    decisions = rows[
        ["left_source", "left_source_record_id", "right_source", "right_source_record_id"]
    ].assign(decision=["link", "no_link"])
    result = link_records(records, decisions=decisions)
    for row, decision in zip(rows.itertuples(), ("link", "no_link"), strict=True):
        a, b = row.left_source_record_id, row.right_source_record_id
        assert base._pair(result.review, a, b).empty
        same = base._person(result, a) == base._person(result, b)
        assert same == (decision == "link")


def test_a_stale_decision_s_pair_is_reviewed_whatever_the_model_says(
    records: pd.DataFrame, plain
) -> None:
    # Two strangers (a decision made before their records changed) and two records with
    # different valid NHS numbers, which settle it.
    stale = _decisions(("T-alone", "T-abroad-3", "link"), ("T-differ-1", "T-differ-2", "link"))
    assert base._pair(plain.review, "T-alone", "T-abroad-3").empty
    result = link_records(records, requeue=stale.drop(columns="decision"))
    row = base._pair(result.review, "T-alone", "T-abroad-3")
    assert len(row) == 1 and row["match_probability"].iloc[0] < 0.5
    assert "fields" in json.loads(row["evidence"].iloc[0])  # the evidence, side by side
    assert base._pair(result.review, "T-differ-1", "T-differ-2").empty
    assert base._person(result, "T-alone") != base._person(result, "T-abroad-3")
    pd.testing.assert_frame_equal(result.assignments, plain.assignments)


def test_decisions_on_unknown_records_are_ignored(records: pd.DataFrame, plain) -> None:
    unknown = _decisions(("T-alone", "T-abroad-3", "link"))
    unknown["right_source_record_id"] = "not-in-this-run"
    result = link_records(records, decisions=unknown)
    assert result.decisions["ignored"] == 1
    pd.testing.assert_frame_equal(result.assignments, plain.assignments)


def test_bad_decisions_are_refused(records: pd.DataFrame) -> None:
    with pytest.raises(CareEtlError, match="decision must be"):
        link_records(records, decisions=_decisions(("T-alone", "T-abroad-3", "maybe")))
    with pytest.raises(CareEtlError, match="missing"):
        link_records(records, decisions=pd.DataFrame({"decision": ["link"]}))


def test_one_weak_link_does_not_chain_two_groups() -> None:
    from care_etl.linkage.cluster import CHAIN, Support, connected_components

    # Records 0-1 and 2-3 are two strong pairs; 1-2 is probable but nothing else across is.
    left, right = np.array([0, 2, 1]), np.array([1, 3, 2])
    strength = np.array([0.999, 0.999, 0.97])
    support = Support(4, {1: 0.999, 2 * 4 + 3: 0.999, 1 * 4 + 2: 0.97})
    labels, outcome = connected_components(
        4, left, right, strength, np.full(4, -1), np.arange(4), support=support
    )
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[1] != labels[2]
    assert outcome.tolist() == [0, 0, CHAIN]
    # With the pairs across probable as well, the groups are one person.
    support.pairs.update({2: 0.98, 3: 0.98, 1 * 4 + 3: 0.98})
    labels, outcome = connected_components(
        4, left, right, strength, np.full(4, -1), np.arange(4), support=support
    )
    assert len(set(labels.tolist())) == 1 and outcome.tolist() == [0, 0, 0]


def test_saying_which_of_two_people_a_record_is_settles_the_other_pair(records) -> None:
    """A form matching a father and his son alike goes to review with both; once a person
    links it to the son, its pair with the father is settled, not queued a second time."""
    with_either = with_records(records, [base.EITHER])
    decision = pd.DataFrame(
        [{"left_source": "paper", "left_source_record_id": "T-either",
          "right_source": "housing", "right_source_record_id": "T-son", "decision": "link"}]
    )  # fmt: skip
    result = link_records(with_either, decisions=decision)
    assert base._person(result, "T-either") == base._person(result, "T-son")
    assert base._person(result, "T-father") != base._person(result, "T-son")
    assert base._pair(result.review, "T-either", "T-father").empty
