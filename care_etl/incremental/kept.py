"""The kept linkage model: trained on a full run, applied by the runs after it.

Estimating the model (u from a million random pairs, m by EM per blocking rule, the prior,
the household census, the term frequencies) reads every record, so an incremental run that
estimated it again would cost in proportion to the data, not to the change, and every
pair's probability would move a little with every change anywhere. So a run keeps the
model it trained (`model.npz` in the cache folder, beside the pair cache) and later runs
apply it: pairs of records that did not change keep exactly their probabilities.

It is trained again when there is none, when the state key changed (code, contracts or
linkage settings: care_etl.incremental.state), when the model's own code changed
(MODEL_MODULES), on `care-etl run --full` (it forgets the folder), when it was trained on
other fields, or when the records have drifted: the records added,
changed or removed since training, counted against the records it was trained on, exceed
RETRAIN_SHARE of them (a tenth: that much new data moves m and u by little more than their
sampling noise on a few thousand matches, while retraining every run would make every run
cost a full one). Counted against training, not summed run by run, a file missing for one
run and back the next counts nothing once it is back. A corrected record counts twice (its
old version went, its new one came), which errs towards retraining.

The file (read with allow_pickle=False): model.TrainedModel.to_arrays() (m and u per field
level, prior, presence, household census, term frequencies keyed by 64-bit hashes of the
name values, when and on how many records it was trained, the changes since), the state
key it was trained under, and the 64-bit fingerprints of the records it was trained on,
against which the next run counts what changed. No personal value: hashes and figures only.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from care_etl.incremental.state import UNREADABLE, add_code, write_atomic
from care_etl.linkage.model import TrainedModel

log = logging.getLogger(__name__)

MODEL_FILE = "model.npz"
#: The code that estimates and applies the model: a change to it retrains, as a change to
#: the comparison's code does (state.COMPARISON_MODULES, in the state key).
MODEL_MODULES = (
    "linkage/estimate.py",
    "linkage/blocking.py",
    "linkage/model.py",
    "linkage/reference.py",
    "linkage/reference_model.json",
    "linkage/linker.py",
    "incremental/kept.py",
)
#: Share of the training records that may change (summed over runs) before retraining.
RETRAIN_SHARE = 0.10


@dataclass
class Choice:
    """The model to apply (None: train one), why, and the changes counted since training."""

    model: TrainedModel | None
    reason: str
    changed: int = 0
    #: Fingerprints of the records the kept model was trained on (kept with it).
    trained_on: np.ndarray | None = None


def model_key(state_key: str) -> str:
    """The state key with the model's own code: what a kept model must have been trained under."""
    digest = hashlib.sha256(state_key.encode())
    add_code(digest, MODEL_MODULES)
    return digest.hexdigest()


def read(root: Path, key: str) -> tuple[TrainedModel | None, np.ndarray | None, str]:
    """The kept model and the fingerprints of the records it was trained on, or None and why
    not."""
    path = root / MODEL_FILE
    if not path.is_file():
        return None, None, "no kept model"
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        if str(arrays.pop("key")) != key:
            return None, None, "code, contracts or linkage settings changed since training"
        prints = arrays.pop("prints")
        return TrainedModel.from_arrays(arrays), prints, ""
    except (*UNREADABLE, KeyError) as exc:
        log.warning("incremental: kept model unreadable (%s); training one", exc)
        return None, None, "kept model unreadable"


def changed_records(previous: np.ndarray, current: np.ndarray) -> int:
    """Records whose fingerprint is in one run and not the other (see the module doc)."""
    return int((~np.isin(current, previous)).sum() + (~np.isin(previous, current)).sum())


def choose(root: Path, key: str, prints: np.ndarray, retrain_share: float | None = None) -> Choice:
    """Keep the model, or train one (see the module doc for when)."""
    if retrain_share is None:
        retrain_share = RETRAIN_SHARE
    model, trained_on, why = read(root, key)
    if model is None or trained_on is None:
        return Choice(None, why)
    changed = changed_records(trained_on, prints)
    figures = f"{changed} records changed of {model.records} since training"
    if changed > retrain_share * model.records:
        return Choice(None, f"records drifted: {figures} (over {retrain_share:.0%})")
    return Choice(model, figures, changed, trained_on)


def save(root: Path, model: TrainedModel, key: str, prints: np.ndarray) -> None:
    """Keep the model with the fingerprints of the records it was trained on (whole or not at
    all)."""
    buffer = io.BytesIO()
    np.savez(buffer, **model.to_arrays(), key=np.array(key), prints=prints.astype(np.uint64))
    write_atomic(root / MODEL_FILE, buffer.getvalue())
