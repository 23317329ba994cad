"""Full run against an incremental rerun after 1% of the records changed, at 100k people.

Generates the sources once, runs the whole pipeline (full) into SQLite, changes about 1% of
every source's records (a third added, a third removed, a third corrected, in every file of
the CSV and Excel sources, rows of the social care database and paper forms), then reruns:
once incrementally on top of the first run's index and cache, and once full on a copy of
the same changed sources and of the same first index, for the ratio and for checking both
give the same persons, links and ids. Each run is its own process, for honest peak memory.

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
sys.path.insert(1, str(PROJECT))  # care_etl_tests; care_etl comes from PYTHONPATH when set


def child(work: Path, name: str, full: bool) -> dict:
    """One run of the pipeline over `work/<name>`: seconds, steps, mode, peak memory."""
    from care_etl.pipeline import run_pipeline

    folder = work / name
    start = time.perf_counter()
    outcome = run_pipeline(
        folder / "sources",
        PROJECT / "data_contracts",
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
    }


def _run(work: Path, name: str, full: bool) -> dict:
    """A child process on the frozen copy of the code (others may edit the tree meanwhile,
    which would rightly make the rerun full)."""
    args = [sys.executable, __file__, "--child", str(work), name] + (["--full"] if full else [])
    env = {**os.environ, "PYTHONPATH": str(work / "code")}
    # As in production: one pseudonym key, so analyst tables are comparable across runs.
    env.setdefault("CARE_ETL_PSEUDONYM_KEY", "bench-incremental-key-not-a-secret")
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _same_index(a: Path, b: Path) -> str:
    """Whether two indexes hold the same persons, links (with ids) and review pairs."""
    import pandas as pd
    import sqlalchemy as sa

    def tables(path: Path) -> dict:
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

    left, right = tables(a), tables(b)
    differ = [k for k in left if not left[k].equals(right[k])]
    return "identical" if not differ else "differ in " + ", ".join(differ)


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
        generate(work / "inc" / "sources", people=args.people, seed=7, scans=0)
        first = _run(work, "inc", full=True)
        changes = change_sources(work / "inc" / "sources", share=args.share)
        (work / "full").mkdir()
        shutil.copytree(work / "inc" / "sources", work / "full" / "sources")
        shutil.copy(work / "inc" / "index.db", work / "full" / "index.db")
        incremental = _run(work, "inc", full=False)
        full = _run(work, "full", full=True)
        same = _same_index(work / "inc" / "index.db", work / "full" / "index.db")
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
    ):
        print(f"{label:<26} {r['run_s']:>8} {r['peak_rss_mb']:>8,}")
    print(f"ratio incremental / full: {incremental['run_s'] / full['run_s']:.2f}")
    print(f"incremental run: {incremental['mode']}")
    print(f"indexes of the two reruns: {same}")
    for label, r in (("full", full), ("incremental", incremental)):
        steps = sorted(r["steps"].items(), key=lambda kv: -kv[1])
        print(f"steps ({label}): " + ", ".join(f"{k} {v:.1f}s" for k, v in steps))


if __name__ == "__main__":
    main()
