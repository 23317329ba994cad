"""Stable ids across reruns: added, removed, corrected, merged and split records."""

from __future__ import annotations

import pandas as pd

from care_etl.index.ids import stable_ids, successor


def _assign(clusters: dict[str, list[str]]) -> pd.DataFrame:
    """Linkage-style assignments: cluster id -> record ids (all in source 's')."""
    rows = [("s", r, c) for c, records in clusters.items() for r in records]
    return pd.DataFrame(rows, columns=["source", "source_record_id", "person_id"])


def _ids(result) -> dict[str, str]:
    frame = result.assignments
    return dict(zip(frame["source_record_id"], frame["person_id"], strict=True))


def _history(result) -> set[tuple]:
    h = result.history
    return set(zip(h["old_person_id"], h["new_person_id"], h["change"], strict=True))


PREVIOUS = _assign({"A": ["1", "2", "3"], "B": ["4", "5"], "C": ["6"]})


def test_a_first_run_keeps_linkage_ids_and_writes_no_history():
    result = stable_ids(_assign({"X": ["1", "2"], "Y": ["3"]}), PREVIOUS.iloc[:0])
    assert _ids(result) == {"1": "X", "2": "X", "3": "Y"}
    assert result.history.empty


def test_the_same_sources_rerun_give_the_same_ids():
    # linkage would call the clusters differently (say the smallest record changed its key)
    result = stable_ids(_assign({"Q": ["1", "2", "3"], "R": ["4", "5"], "S": ["6"]}), PREVIOUS)
    assert _ids(result) == {"1": "A", "2": "A", "3": "A", "4": "B", "5": "B", "6": "C"}
    assert result.history.empty
    again = stable_ids(_assign({"Q": ["1", "2", "3"], "R": ["4", "5"], "S": ["6"]}), PREVIOUS)
    assert _ids(again) == _ids(result)


def test_added_records_join_their_person_and_new_people_get_fresh_ids():
    now = _assign({"Q": ["1", "2", "3", "7"], "R": ["4", "5"], "S": ["6"], "NEW": ["8"]})
    result = stable_ids(now, PREVIOUS)
    ids = _ids(result)
    assert ids["7"] == "A" and ids["8"] == "NEW"
    assert result.history.empty


def test_removed_records_keep_the_id_and_a_person_with_none_left_is_retired():
    now = _assign({"Q": ["2", "3"], "R": ["4", "5"]})  # record 1 and person C (record 6) gone
    result = stable_ids(now, PREVIOUS)
    assert set(_ids(result).values()) == {"A", "B"}
    assert _history(result) == {("C", None, "retired")}


def test_a_corrected_record_moves_without_changing_either_persons_id():
    now = _assign({"Q": ["1", "2"], "R": ["3", "4", "5"], "S": ["6"]})  # 3 was wrongly in A
    result = stable_ids(now, PREVIOUS)
    ids = _ids(result)
    assert ids["3"] == "B" and ids["1"] == "A"
    assert result.history.empty


def test_a_merge_keeps_the_majority_id_and_leads_the_other_to_it():
    now = _assign({"Q": ["1", "2", "3", "4", "5"], "S": ["6"]})
    result = stable_ids(now, PREVIOUS)
    assert set(_ids(result).values()) == {"A", "C"}
    assert _history(result) == {("B", "A", "merged")}
    assert successor(result.history, "B") == "A"


def test_a_split_keeps_the_id_on_the_larger_part_and_mints_one_for_the_other():
    now = _assign({"Q": ["1", "2"], "Z": ["3"], "R": ["4", "5"], "S": ["6"]})
    result = stable_ids(now, PREVIOUS)
    ids = _ids(result)
    assert ids["1"] == ids["2"] == "A"
    assert ids["3"] not in {"A", "B", "C"}
    assert _history(result) == {("A", ids["3"], "split")}


def test_a_tie_is_broken_the_same_way_every_time():
    previous = _assign({"A": ["1"], "B": ["2"]})
    now = _assign({"Q": ["1", "2"]})
    first = stable_ids(now, previous)
    second = stable_ids(now.iloc[::-1], previous.iloc[::-1])
    assert set(_ids(first).values()) == set(_ids(second).values()) == {"A"}
    assert _history(first) == {("B", "A", "merged")}


def test_a_minted_id_never_reuses_one_held_in_the_last_run():
    # linkage names a new person "C", the id record 6's person still holds
    now = _assign({"Q": ["1", "2", "3"], "R": ["4", "5"], "S": ["6"], "C": ["9"]})
    result = stable_ids(now, PREVIOUS, issued={"A", "B", "C"})
    minted = _ids(result)["9"]
    assert minted not in {"A", "B", "C"} and minted.startswith("P")
    assert _ids(stable_ids(now, PREVIOUS, issued={"A", "B", "C"}))["9"] == minted


def test_a_person_back_after_a_run_away_gets_their_id_again():
    """A file missing for one run retires its people; when it comes back, linkage names
    each by its smallest record's key, as when the id was minted: the id is reinstated, not
    replaced by a new one that nothing leads to."""
    gone = stable_ids(_assign({"Q": ["1", "2", "3"], "R": ["4", "5"]}), PREVIOUS)
    assert _history(gone) == {("C", None, "retired")}
    published = gone.assignments[["source", "source_record_id", "person_id"]]
    back = stable_ids(
        _assign({"Q": ["1", "2", "3"], "R": ["4", "5"], "C": ["6"]}),
        published,
        issued={"A", "B", "C"},
    )
    assert _ids(back)["6"] == "C"
    assert _history(back) == {("C", "C", "reinstated")}
    assert successor(pd.concat([gone.history, back.history]), "C") == "C"


def test_a_person_split_back_out_of_a_wrong_merge_gets_their_id_again():
    merged = stable_ids(_assign({"Q": ["1", "2", "3", "4", "5"], "S": ["6"]}), PREVIOUS)
    assert _history(merged) == {("B", "A", "merged")}
    published = merged.assignments[["source", "source_record_id", "person_id"]]
    later = merged.history.assign(changed_at=merged.history["changed_at"] + pd.Timedelta("1D"))
    split = stable_ids(
        _assign({"Q": ["1", "2", "3"], "B": ["4", "5"], "S": ["6"]}),
        published,
        issued={"A", "B", "C"},
        changed_at=later["changed_at"].iloc[0],
    )
    assert _ids(split)["4"] == _ids(split)["5"] == "B"
    assert _history(split) == {("A", "B", "split"), ("B", "B", "reinstated")}
    assert successor(pd.concat([merged.history, split.history]), "B") == "B"


def test_a_chain_of_merges_leads_to_the_current_id():
    first = stable_ids(_assign({"Q": ["1", "2", "3", "4", "5"], "S": ["6"]}), PREVIOUS)
    published = first.assignments[["source", "source_record_id", "person_id"]]
    second = stable_ids(_assign({"Q": ["1", "2", "3", "4", "5", "6"]}), published)
    history = pd.concat([first.history, second.history], ignore_index=True)
    assert successor(history, "B") == "A"
    assert successor(history, "C") == "A"


def test_settled_clusters_among_a_merge_and_a_split_get_what_the_whole_algorithm_gives():
    # B and C keep exactly their records (settled, skipped by _inherit); A splits, D and E merge
    previous = _assign({"A": ["1", "2", "3"], "B": ["4", "5"], "C": ["6"], "D": ["7", "8"],
                        "E": ["9"]})  # fmt: skip
    now = _assign({"K": ["1", "2"], "L": ["3"], "M": ["4", "5"], "N": ["6"], "O": ["7", "8", "9"],
                   "P": ["10"]})  # fmt: skip
    result = stable_ids(now, previous, issued={"A", "B", "C", "D", "E", "L"})
    ids = _ids(result)
    assert ids["4"] == ids["5"] == "B" and ids["6"] == "C"
    assert ids["1"] == ids["2"] == "A" and ids["7"] == ids["8"] == ids["9"] == "D"
    # L, issued before and held by no one in the last run, is record 3's again (reinstated)
    assert ids["3"] == "L" and ids["10"] == "P"
    assert _history(result) == {("A", "L", "split"), ("E", "D", "merged"), ("L", "L", "reinstated")}


def test_a_person_retired_for_a_run_gets_back_an_id_minted_for_a_record_since_gone():
    """Their id came from record 1 (gone since), so no returning cluster is named after it:
    record 2 left holding it, and brings it back."""
    first = stable_ids(_assign({"PA": ["1", "2"]}), PREVIOUS.iloc[:0])
    second = stable_ids(_assign({"PB": ["2"]}), first.assignments, {"PA"})
    assert _ids(second) == {"2": "PA"}  # record 1 gone: the id follows record 2
    third = stable_ids(_assign({}), second.assignments, {"PA"})
    assert _history(third) == {("PA", None, "retired")}
    departed = pd.DataFrame({"source": ["s"], "source_record_id": ["2"], "person_id": ["PA"]})
    back = stable_ids(_assign({"PB": ["2"]}), third.assignments, {"PA"}, departed=departed)
    assert _ids(back) == {"2": "PA"}
    assert _history(back) == {("PA", "PA", "reinstated")}
    # without the departure noted, nothing leads to PA: a new id (what used to happen)
    lost = stable_ids(_assign({"PB": ["2"]}), third.assignments, {"PA"})
    assert _ids(lost)["2"] != "PA" and lost.history.empty


def test_a_departed_id_goes_to_the_returning_cluster_with_most_of_its_records_never_a_held_one():
    departed = pd.DataFrame(
        {"source": "s", "source_record_id": ["7", "8", "9", "10"],
         "person_id": ["Z", "Z", "Z", "A"]}
    )  # fmt: skip
    # A is held now (records 1-3 persist); Z is free: N holds two of its records, M one
    result = stable_ids(
        _assign({"A": ["1", "2", "3"], "B": ["4", "5"], "C": ["6"], "N": ["7", "8"],
                 "M": ["9", "10"]}),
        PREVIOUS,
        {"A", "B", "C", "Z"},
        departed=departed,
    )  # fmt: skip
    ids = _ids(result)
    assert ids["1"] == "A" and ids["7"] == ids["8"] == "Z" and ids["9"] not in {"A", "Z"}
    assert ("Z", "Z", "reinstated") in _history(result)
