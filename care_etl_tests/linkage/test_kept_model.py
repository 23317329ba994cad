"""A kept model (link_records(model=...)) scores exactly as the run that trained it.

An incremental run applies the model the last training run estimated instead of estimating
one again: on the training records it must give that run's result exactly, after a change
the pairs of unchanged records must keep their probabilities, and written to the cache and
read back it must still be the same model.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from care_etl.linkage import link_records
from care_etl.linkage.model import TrainedModel, unseen_share
from care_etl_tests.linkage.people import crowd

PAIR_KEY = ["left_source", "left_source_record_id", "right_source", "right_source_record_id"]


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return crowd(220, seed=5).drop(columns="person").reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(records: pd.DataFrame):
    return link_records(records)


def _changed(records: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """Records with a few removed, one surname corrected and one record added; and the
    ids of the records that changed or came."""
    changed = records.drop(index=[3, 40, 41]).reset_index(drop=True)
    corrected = changed.index[10]
    changed.loc[corrected, "family_name"] = "Quennell"
    added = changed.iloc[[20]].assign(source_record_id="NEW0001", given_name="Zebedee")
    touched = {changed.loc[corrected, "source_record_id"], "NEW0001"}
    return pd.concat([changed, added], ignore_index=True), touched


def _pairs(result) -> pd.DataFrame:
    frame = pd.concat([result.links, result.review], ignore_index=True)
    return frame.set_index(PAIR_KEY)[["match_weight"]]


def _round_trip(model: TrainedModel) -> TrainedModel:
    buffer = io.BytesIO()
    np.savez(buffer, **model.to_arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        return TrainedModel.from_arrays({name: stored[name] for name in stored.files})


def test_a_kept_model_on_its_training_records_gives_the_training_run(records, trained):
    assert trained.model_trained and trained.model is not None
    again = link_records(records, model=_round_trip(trained.model))
    assert not again.model_trained
    for name in ("assignments", "links", "review", "parameters"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(trained, name), obj=name)
    assert again.prior_probability == trained.prior_probability
    assert _round_trip(trained.model).version == trained.model.version


def test_unchanged_pairs_keep_their_probabilities_under_a_kept_model(records, trained):
    changed, touched = _changed(records)
    kept = link_records(changed, model=trained.model)
    retrained = link_records(changed)
    before, after = _pairs(trained), _pairs(kept)
    ids = after.index.to_frame(index=False)
    untouched = ~ids["left_source_record_id"].isin(touched) & ~ids["right_source_record_id"].isin(
        touched
    )
    common = after.index[untouched.to_numpy()].intersection(before.index)
    assert len(common) > 50
    np.testing.assert_array_equal(
        after.loc[common, "match_weight"].to_numpy(), before.loc[common, "match_weight"].to_numpy()
    )
    # Meaningful: estimating again on the changed records moves the weights.
    moved = _pairs(retrained).reindex(common)["match_weight"].to_numpy()
    assert not np.array_equal(moved, before.loc[common, "match_weight"].to_numpy())
    pd.testing.assert_frame_equal(kept.parameters, trained.parameters)


def test_a_name_the_kept_table_does_not_know_counts_as_seen_once(records, trained):
    model = trained.model
    keys, shares = model.term_frequencies["family_name"]
    unknown = np.array([np.uint64(12345)], dtype=np.uint64)
    unknown = unknown[~np.isin(unknown, keys)]
    found = model.shares_by_code("family_name", np.concatenate([keys[:3], unknown]))
    np.testing.assert_array_equal(found[:3], shares[:3])
    present = int(records["family_name"].notna().sum())
    typical = float(model.model.u["family_name"][0])
    assert found[3] == pytest.approx(unseen_share(present, typical))
    # Seen once is rarer than the typical name, yet not as rare as 1 in the records alone.
    assert 1.0 / present < found[3] < typical


def test_a_model_of_other_fields_is_trained_again(records, trained):
    fewer = records.assign(postcode=None)
    result = link_records(fewer, model=trained.model)
    assert result.model_trained
    assert "postcode" not in set(result.parameters["field"])
