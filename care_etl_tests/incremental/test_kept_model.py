"""The linkage model is kept across runs until the records drift, then trained again.

Real generated sources, real pipeline runs on SQLite: the model file in the cache folder
says which model scored the run (care_etl.incremental.kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from care_etl.incremental import kept as kept_module
from care_etl.incremental.kept import MODEL_FILE
from care_etl.incremental.state import COMPARISON_MODULES, FOLDER
from care_etl.linkage import estimate
from care_etl.linkage.model import TrainedModel
from care_etl.pipeline import RunOutcome, run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.incremental.changes import change_sources
from care_etl_tests.incremental.environment import lasting_pseudonym_key


@pytest.fixture(autouse=True)
def pseudonym_key() -> Iterator[None]:
    with lasting_pseudonym_key("kept-model-tests-key-not-a-secret"):
        yield


def _run(folder: Path, full: bool = False) -> RunOutcome:
    url = f"sqlite:///{folder / 'index.db'}"
    return run_pipeline(folder / "sources", CONTRACTS_DIR, url, folder / "reports", full=full)


def _model(folder: Path) -> tuple[TrainedModel, np.ndarray]:
    """The kept model and the record fingerprints of the last run."""
    with np.load(folder / FOLDER / MODEL_FILE, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.pop("key")
    prints = arrays.pop("prints")
    return TrainedModel.from_arrays(arrays), prints


def test_the_model_is_kept_until_the_records_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from care_etl.synthetic.generate import generate

    # A few hundred records change by more than a tenth in one round of change_sources
    # (at least one of each kind per file): allow half, then a hundredth.
    monkeypatch.setattr(kept_module, "RETRAIN_SHARE", 0.5)
    generate(tmp_path / "sources", people=150, seed=12, scans=0)
    _run(tmp_path)
    trained, prints = _model(tmp_path)
    assert trained.changed == 0 and trained.records == len(prints)

    change_sources(tmp_path / "sources", share=0.02, seed=1)
    _run(tmp_path)
    kept, _ = _model(tmp_path)
    assert (kept.version, kept.trained_at) == (trained.version, trained.trained_at)
    assert 0 < kept.changed <= 0.5 * trained.records

    change_sources(tmp_path / "sources", share=0.02, seed=2)
    _run(tmp_path)
    still, _ = _model(tmp_path)
    assert still.version == trained.version and still.changed > kept.changed  # both rounds

    monkeypatch.setattr(kept_module, "RETRAIN_SHARE", 0.01)
    _run(tmp_path)  # nothing new, but the changes since training now exceed the share
    again, prints = _model(tmp_path)
    assert again.changed == 0 and again.records == len(prints)
    assert again.version != trained.version

    _run(tmp_path)  # nothing changed: kept, and no change counted
    same, _ = _model(tmp_path)
    assert (same.version, same.changed) == (again.version, 0)

    _run(tmp_path, full=True)  # --full forgets the cache: trained again, on the same records
    forced, _ = _model(tmp_path)
    assert forced.version == again.version and forced.trained_at >= again.trained_at


def test_a_file_missing_for_one_run_counts_nothing_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Changes are counted against the records the model was trained on, not summed run by
    run: the records of an extract gone for one run and back the next are no change."""
    from care_etl.synthetic.generate import generate

    monkeypatch.setattr(kept_module, "RETRAIN_SHARE", 0.5)  # one extract of a few is over 10%
    generate(tmp_path / "sources", people=150, seed=12, scans=0)
    _run(tmp_path)
    trained, _ = _model(tmp_path)
    extract = sorted((tmp_path / "sources" / "health").glob("*.csv"))[0]
    aside = tmp_path / extract.name
    extract.rename(aside)
    _run(tmp_path)
    away, _ = _model(tmp_path)
    assert away.version == trained.version and away.changed > 0
    aside.rename(extract)
    _run(tmp_path)
    back, _ = _model(tmp_path)
    assert (back.version, back.changed) == (trained.version, 0)


def test_the_code_that_trains_the_model_is_in_the_kept_model_s_key() -> None:
    """A kept model is retrained when the code that estimated it changes: every care_etl
    module whose functions `estimate` calls is in the key (estimation moved out of
    linker.py into a module the key did not name, so a change to it would have kept a
    model estimated by other code)."""
    used = {
        value.__module__
        for value in vars(estimate).values()
        if callable(value) and getattr(value, "__module__", "").startswith("care_etl.")
    }
    assert "care_etl.linkage.blocking" in used
    files = {name.removeprefix("care_etl.").replace(".", "/") + ".py" for name in used}
    assert files <= set(kept_module.MODEL_MODULES) | set(COMPARISON_MODULES)
