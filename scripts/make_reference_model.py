"""Write care_etl/linkage/reference_model.json: the linkage model's m and u per field level,
as estimated on a full run over generated council data.

The linker starts its estimates from these (care_etl.linkage.reference): on a few dozen
records the data cannot tell how often strangers share a date of birth, so without a
starting point nothing links, not even two identical records. Regenerate it when the
comparison levels change (a test fails when they and the file disagree):

    .venv/bin/python scripts/make_reference_model.py [--people 50000] [--seed 11]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    from care_etl.incremental.kept import MODEL_FILE
    from care_etl.incremental.state import FOLDER
    from care_etl.linkage.model import LATE_LEVELS, TrainedModel, level_names
    from care_etl.linkage.reference import REFERENCE_FILE
    from care_etl.pipeline import run_pipeline
    from care_etl.synthetic.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work / "sources", people=args.people, seed=args.seed, scans=0)
        run_pipeline(
            work / "sources",
            PROJECT / "data_contracts",
            f"sqlite:///{work / 'index.db'}",
            work / "reports",
            full=True,
        )
        with np.load(work / FOLDER / MODEL_FILE, allow_pickle=False) as stored:
            trained = TrainedModel.from_arrays({k: stored[k] for k in stored.files})
    model = trained.model
    fields = {
        f: {
            level: {"m": round(float(m), 8), "u": round(float(u), 10)}
            for level, m, u in zip(level_names(f), model.m[f], model.u[f], strict=True)
        }
        for f in model.fields
        if f not in LATE_LEVELS  # estimated after linking, from the links
    }
    reference = {
        "about": "m and u per field level estimated on generated council data; "
        "written by scripts/make_reference_model.py",
        "generated": {"people": args.people, "seed": args.seed, "records": trained.records},
        "written": dt.date.today().isoformat(),
        "prior": model.prior,
        "fields": fields,
    }
    path = PROJECT / "care_etl" / "linkage" / REFERENCE_FILE
    path.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(PROJECT)}: {len(fields)} fields, {trained.records} records")


if __name__ == "__main__":
    main()
