"""Full run against an incremental rerun after 1% of the records changed, at 100k people.

Generates the sources once, runs the whole pipeline (full) into SQLite, changes about 1% of
every source's records (a third added, a third removed, a third corrected, in every file of
the CSV and Excel sources, rows of the social care database and paper forms), then reruns
the same changed sources on top of the same first index three times, each its own process
(for honest peak memory):

- incrementally, on the first run's cache (it applies the model the first run trained);
- full (`full=True`: forgets the cache and trains the model again): the ratio is the
  incremental rerun's time over this one's, what a full run costs;
- a full recomputation applying the first run's kept model (a copy with only the model
  file in its cache): what the incremental rerun must equal.

After the incremental rerun, the same sources are run once more with nothing changed: the
floor of an incremental run as it is built (every file is read, every row hashed and
checked, every record blocked), and a check that such a run changes nothing in the index.

What is compared: the incremental rerun's index against the recomputation with the kept
model, table for table (persons, links with ids and probabilities, review pairs): must be
identical. Against the retrained full rerun, persons and links (ids, link types) are
compared without probabilities, and the probabilities' drift is reported apart (a model
trained on the changed records gives every pair a slightly different probability, and may
move a pair across a threshold).

    .venv/bin/python benchmarks/bench_incremental.py [--people 100000] [--share 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# care_etl_tests from the project; care_etl from PYTHONPATH (the frozen copy) when set, so
# the project goes after it: others editing the tree must not change the code a run uses.
sys.path.append(str(PROJECT))


def child(work: Path, name: str, full: bool) -> dict:
    """One run of the pipeline over `work/<name>`: seconds, steps, mode, peak memory."""
    from care_etl.pipeline import run_pipeline

    folder = work / name
    start = time.perf_counter()
    outcome = run_pipeline(
        folder / "sources",
        work / "code" / "data_contracts",
        f"sqlite:///{folder / 'index.db'}",
        folder / "reports",
        full=full,
    )
    return {
        "run_s": round(time.perf_counter() - start, 1),
        "steps": outcome.step_seconds,
        "mode": outcome.incremental,
        "persons": outcome.figures["persons"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "model": _model_facts(folder),
    }


def _model_facts(folder: Path) -> str:
    """Which model the run applied: trained or kept, and the changes since training."""
    import numpy as np

    from care_etl.incremental.kept import MODEL_FILE
    from care_etl.incremental.state import FOLDER

    try:
        with np.load(folder / FOLDER / MODEL_FILE, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
    except (OSError, KeyError, ValueError):
        return "no kept model"
    kind = "kept" if meta["changed"] else "trained (or kept, nothing changed)"
    return f"{kind}: trained {meta['trained_at']}, {meta['changed']} records changed since"


def _run(work: Path, name: str, full: bool) -> dict:
    """A child process on the frozen copy of the code (others may edit the tree meanwhile,
    which would rightly make the rerun full)."""
    args = [sys.executable, __file__, "--child", str(work), name] + (["--full"] if full else [])
    env = {**os.environ, "PYTHONPATH": str(work / "code")}
    # As in production: one pseudonym key, so analyst tables are comparable across runs.
    env.setdefault("CARE_ETL_PSEUDONYM_KEY", "bench-incremental-key-not-a-secret")
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"run {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tables(path: Path) -> dict:
    """Persons, links (ids, types, probabilities) and review pairs of an index."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        found = {
            "links": pd.read_sql(
                "SELECT person_id, source, source_record_id, link_type, match_probability "
                "FROM person_source_link ORDER BY source, source_record_id",
                conn,
            ),
            "review": pd.read_sql(
                "SELECT left_source, left_source_record_id, right_source, "
                "right_source_record_id, match_probability FROM review_queue "
                "ORDER BY 1, 2, 3, 4",
                conn,
            ),
            "persons": pd.read_sql("SELECT * FROM person_index ORDER BY person_id", conn),
        }
    engine.dispose()
    return found


def _same_index(a: Path, b: Path) -> str:
    """Whether two indexes hold the same persons, links (with ids) and review pairs."""
    left, right = _tables(a), _tables(b)
    differ = [k for k in left if not left[k].equals(right[k])]
    return "identical" if not differ else "differ in " + ", ".join(differ)


def _drift(a: Path, b: Path) -> str:
    """Persons and links (ids, types) of two indexes, and how far probabilities moved."""
    left, right = _tables(a), _tables(b)
    keys = ["source", "source_record_id"]
    la, lb = left["links"].set_index(keys), right["links"].set_index(keys)
    common = la.index.intersection(lb.index)
    ids = int((la.loc[common, "person_id"] != lb.loc[common, "person_id"]).sum())
    kinds = int((la.loc[common, "link_type"] != lb.loc[common, "link_type"]).sum())
    delta = (la.loc[common, "match_probability"] - lb.loc[common, "match_probability"]).abs()
    persons = len(left["persons"]) - len(right["persons"])
    return (
        f"{ids} records with another person id, {kinds} with another link type, "
        f"persons {persons:+d}; record probabilities differ by at most {delta.max():.2g} "
        f"(mean {delta.mean():.2g}); review pairs {len(left['review'])} vs {len(right['review'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.full)))
        return
    from care_etl.synthetic.generate import generate
    from care_etl_tests.incremental.changes import change_sources

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(PROJECT / "care_etl", work / "code" / "care_etl")
        shutil.copytree(PROJECT / "data_contracts", work / "code" / "data_contracts")
        generate(work / "inc" / "sources", people=args.people, seed=7, scans=0)
        first = _run(work, "inc", full=True)
        changes = change_sources(work / "inc" / "sources", share=args.share)
        from care_etl.incremental.kept import MODEL_FILE
        from care_etl.incremental.state import FOLDER

        for name in ("full", "kept"):
            (work / name).mkdir()
            shutil.copytree(work / "inc" / "sources", work / name / "sources")
            shutil.copy(work / "inc" / "index.db", work / name / "index.db")
        (work / "kept" / FOLDER).mkdir()
        shutil.copy(work / "inc" / FOLDER / MODEL_FILE, work / "kept" / FOLDER / MODEL_FILE)
        incremental = _run(work, "inc", full=False)
        before = _tables(work / "inc" / "index.db")
        unchanged = _run(work, "inc", full=False)
        after = _tables(work / "inc" / "index.db")
        still = [k for k in before if not before[k].equals(after[k])]
        full = _run(work, "full", full=True)
        kept = _run(work, "kept", full=False)
        same = _same_index(work / "inc" / "index.db", work / "kept" / "index.db")
        drift = _drift(work / "inc" / "index.db", work / "full" / "index.db")
    print(
        f"{args.people:,} people; {changes.total:,} records changed "
        f"(added {sum(changes.added.values())}, removed {sum(changes.removed.values())}, "
        f"corrected {sum(changes.corrected.values())})"
    )
    print(f"{'run':<26} {'seconds':>8} {'peak MB':>8}")
    for label, r in (
        ("first run (full)", first),
        ("rerun, full", full),
        ("rerun, incremental", incremental),
        ("rerun, full, kept model", kept),
        ("rerun, nothing changed", unchanged),
    ):
        print(f"{label:<26} {r['run_s']:>8} {r['peak_rss_mb']:>8,}")
    print(f"ratio incremental / full: {incremental['run_s'] / full['run_s']:.2f}")
    print(f"incremental run: {incremental['mode']}; model {incremental['model']}")
    print(f"incremental vs full recomputation with the kept model: {same}")
    print(f"incremental vs full rerun (model retrained): {drift}")
    print(
        "rerun with nothing changed: index "
        + ("unchanged" if not still else "changed in " + ", ".join(still))
    )
    for label, r in (("full", full), ("incremental", incremental), ("unchanged", unchanged)):
        steps = sorted(r["steps"].items(), key=lambda kv: -kv[1])
        print(f"steps ({label}): " + ", ".join(f"{k} {v:.1f}s" for k, v in steps))


if __name__ == "__main__":
    main()
