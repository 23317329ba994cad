"""care_etl.review.show: what a reviewer reads about a pair."""

from __future__ import annotations

from care_etl.linkage.linker import CAPPED_REASONS
from care_etl.review.show import HELD, _notes, reason_held


def test_every_rule_that_holds_a_pair_is_put_in_words() -> None:
    assert set(HELD) == set(CAPPED_REASONS)
    assert all(sentence[-1] in ".?" for sentence in HELD.values())


def test_a_held_pair_says_why_in_a_sentence() -> None:
    (note,) = _notes({"capped": "unnamed_newborn"})
    assert note == (
        "Held for review: a baby recorded before being named: one baby on two records, or twins?"
    )
    # A reason from a later release reads as its words.
    assert _notes({"capped": "new_rule"}) == ["Held for review: new rule."]


def test_the_queue_says_why_each_pair_is_there() -> None:
    held = '{"capped": "twin", "fields": {"given_name": {"level": "different"}}}'
    assert reason_held(held) == "twin"
    differ = '{"fields": {"given_name": {"level": "different"}, "sex": {"level": "agree"}}}'
    assert reason_held(differ) == "differs: given_name"
    assert reason_held('{"fields": {"given_name": {"level": "close"}}}') == "partly agrees"
