"""The pair cache hands back exactly the levels a fresh comparison gives, whatever moved.

A rerun's records come in another order (a file re-exported, a row removed near the top),
some changed: the cache must find last run's pairs by record, not by position, and compare
every pair with a changed record again.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from care_etl.incremental.pairs import PairCache, fingerprints
from care_etl.linkage.blocking import blocking_keys, candidate_codes
from care_etl.linkage.compare import compare, compared_fields, pair_index
from care_etl.linkage.prepare import prepare
from care_etl.review import store
from care_etl_tests.linkage.people import crowd


def _records() -> pd.DataFrame:
    return crowd(120, seed=3).drop(columns="person").reset_index(drop=True)


def _levels(records: pd.DataFrame, cache: PairCache) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the cache's levels, a fresh comparison's) of the records' candidate pairs."""
    prepared = prepare(records)
    n = len(prepared)
    codes = candidate_codes(blocking_keys(prepared, 1000))
    pairs = pair_index(codes // n, codes % n, n)
    fields = compared_fields(prepared)
    return cache.compare(prepared, pairs, fields), compare(prepared, pairs, fields)


def _saved(cache: PairCache) -> dict[str, np.ndarray]:
    """What the next run loads: the cache as written and read back."""
    buffer = io.BytesIO()
    np.savez(buffer, **cache._current)  # the bytes `save` writes
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def test_reordered_and_changed_records_get_a_fresh_comparisons_levels() -> None:
    records = _records()
    first = PairCache(records)
    _levels(records, first)
    rng = np.random.default_rng(4)
    again = records.iloc[rng.permutation(len(records))].reset_index(drop=True)
    changed = again.index[:5]
    again.loc[changed, "family_name"] = "Quennell"
    cache = PairCache(again, _saved(first))
    cached, fresh = _levels(again, cache)
    pd.testing.assert_frame_equal(cached, fresh)
    assert cache.counts["records_new_or_changed"] == 5
    # Every pair compared last run between two unchanged records, in either order, is
    # found again (and none other).
    old = _saved(first)
    was = {(int(a), int(b)) for a, b in zip(old["left"], old["right"], strict=True)}
    before = pd.Series(range(len(records)), index=records["source_record_id"])
    position = before[again["source_record_id"]].to_numpy()
    now = _saved(cache)
    unchanged = np.ones(len(again), dtype=bool)
    unchanged[changed] = False
    expected = sum(
        unchanged[a]
        and unchanged[b]
        and bool({(position[a], position[b]), (position[b], position[a])} & was)
        for a, b in zip(now["left"], now["right"], strict=True)
    )
    assert expected > 0
    assert cache.counts["pairs_reused"] == expected


def test_unchanged_records_in_reverse_order_reuse_every_pair() -> None:
    """A file exported the other way round turns every pair round: the levels are the same
    (the comparison is symmetric), so none is compared again."""
    records = _records()
    first = PairCache(records)
    _levels(records, first)
    backwards = records.iloc[::-1].reset_index(drop=True)
    cache = PairCache(backwards, _saved(first))
    cached, fresh = _levels(backwards, cache)
    pd.testing.assert_frame_equal(cached, fresh)
    assert cache.counts["pairs_compared"] == 0
    assert cache.counts["pairs_reused"] == len(fresh) > 0


def test_unchanged_records_in_the_same_order_reuse_every_pair() -> None:
    records = _records()
    first = PairCache(records)
    _levels(records, first)
    cache = PairCache(records, _saved(first))
    cached, fresh = _levels(records, cache)
    pd.testing.assert_frame_equal(cached, fresh)
    assert cache.counts["pairs_compared"] == 0


def test_the_cache_fingerprint_is_the_review_fingerprint_and_sees_every_linkage_field() -> None:
    records = _records()
    review = store.fingerprints(records)["fingerprint"]
    prints = fingerprints(records)
    assert prints.tolist() == [int(h[:16], 16) for h in review]
    as_text = records.assign(date_of_birth=records["date_of_birth"].astype(str))
    assert np.array_equal(fingerprints(as_text), prints)
    new_values = {
        "given_name": "Zed",
        "date_of_birth": pd.Timestamp("1901-01-01"),
        "postcode": "N1 1AA",
        "address": "1 High Road",  # a field the records lacked until now
        "nhs_number": "9434765919",
    }
    for column, value in new_values.items():
        changed = records.copy()
        changed.loc[0, column] = value
        assert fingerprints(changed)[0] != prints[0], column
        assert np.array_equal(fingerprints(changed)[1:], prints[1:])


def test_a_name_that_turns_forename_like_gets_its_pairs_compared_again() -> None:
    # Which record of a crosswise pair is the swapped one depends on how all records use
    # the names: new records that use "Beverley" as a surname change the levels of an old
    # pair of unchanged records, and the cache must not hand back the old ones.
    pair = pd.DataFrame(
        [
            dict(source="a", source_record_id="T-1", given_name="Beverley",
                 family_name="Wilson", date_of_birth=pd.Timestamp("1971-04-09")),
            dict(source="b", source_record_id="T-2", given_name="Barnes",
                 family_name="Beverley", date_of_birth=pd.Timestamp("1971-04-09")),
        ]
    )  # fmt: skip
    forenames = pd.DataFrame(
        [dict(source="c", source_record_id=f"T-f{i}", given_name="Beverley", family_name=name,
              date_of_birth=pd.Timestamp(f"19{40 + i}-03-04")) for i, name in
         enumerate(["Ames", "Boyd"])]
    )  # fmt: skip
    records = pd.concat([_records(), forenames, pair], ignore_index=True)
    first = PairCache(records)
    before, _ = _levels(records, first)
    surnames = pd.DataFrame(
        [dict(source="c", source_record_id=f"T-s{i}", given_name=name, family_name="Beverley",
              date_of_birth=pd.Timestamp(f"19{50 + i}-01-02")) for i, name in
         enumerate(["Ann", "Bob", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"])]
    )  # fmt: skip
    again = pd.concat([records, surnames], ignore_index=True)
    cache = PairCache(again, _saved(first))
    cached, fresh = _levels(again, cache)
    pd.testing.assert_frame_equal(cached, fresh)
    last = len(records) - 2  # T-1 and T-2 are the last of the first run's records
    at = lambda frame, r: frame.iloc[r]  # noqa: E731
    codes = candidate_codes(blocking_keys(prepare(again), 1000))
    row = int(np.flatnonzero(codes == last * len(again) + last + 1)[0])
    old_codes = candidate_codes(blocking_keys(prepare(records), 1000))
    old_row = int(np.flatnonzero(old_codes == last * len(records) + last + 1)[0])
    assert at(before, old_row)["given_name"] == 0  # a swap whose forename agrees...
    assert at(fresh, row)["given_name"] != 0  # ...until Beverley is mostly a surname
