"""care_etl.review.show: what a reviewer reads about a pair."""

from __future__ import annotations

from care_etl.linkage.linker import CAPPED_REASONS
from care_etl.review.show import HELD, HELD_SHORT, _notes, pair_view, reason_held


def test_every_rule_that_holds_a_pair_is_put_in_words() -> None:
    assert set(HELD) == set(CAPPED_REASONS) == set(HELD_SHORT)
    assert all(sentence[-1] in ".?" for sentence in HELD.values())
    assert all("_" not in words for words in HELD_SHORT.values())


def test_a_held_pair_says_why_in_a_sentence() -> None:
    (note,) = _notes({"capped": "unnamed_newborn"})
    assert note == (
        "Held for review: a baby recorded before being named: one baby on two records, or twins?"
    )
    # A reason from a later release reads as its words.
    assert _notes({"capped": "new_rule"}) == ["Held for review: new rule."]


def test_the_queue_says_why_each_pair_is_there() -> None:
    held = '{"capped": "twin", "fields": {"given_name": {"level": "different"}}}'
    assert reason_held(held) == "twins or siblings?"
    assert reason_held('{"capped": "cluster_nhs_conflict"}') == "would join two NHS numbers"
    assert reason_held('{"capped": "new_rule"}') == "new rule"
    differ = '{"fields": {"given_name": {"level": "different"}, "sex": {"level": "agree"}}}'
    assert reason_held(differ) == "differs: given name"
    assert reason_held('{"fields": {"given_name": {"level": "close"}}}') == "partly agrees"


def test_a_pair_reads_in_words_not_column_names() -> None:
    """Field names, a yes/no flag and a decision as a caseworker says them."""
    left = {
        "source": "social_care_case_management",
        "source_record_id": "189489",
        "standardised": '{"family_name": "LLOYD", "dob_estimated": 0, "nhs_number": "4396465068"}',
    }
    right = {
        "source": "health_gp_registrations",
        "source_record_id": "F1:P1",
        "standardised": '{"family_name": "LLOUD", "dob_estimated": 1}',
    }
    decided = {"decision_id": 1, "decision": "no_link", "reviewer": "A", "status": "active"}
    decided |= {"decided_at": None, "reason": "sisters", "events": []}
    shown = pair_view("abcdefabcdef", left, right, None, [decided])
    rows = {line.split("  ")[0]: line for line in shown.splitlines()}
    assert "family name" in rows and "NHS number" in rows
    assert rows["birth date estimated"].split()[-2:] == ["no", "yes"]
    assert "#1 no link by A" in shown
    assert "no_link" not in shown and "family_name" not in shown and "dob_estimated" not in shown
