"""End-to-end timings and peak memory: generate, then run the whole pipeline into SQLite.

Each size runs in its own process so that its peak memory is its own. Scans are off (OCR
speed is measured per scan by the paper reader's own figures); every other stage is real.

    .venv/bin/python benchmarks/bench_pipeline.py [--people 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def one(people: int) -> dict:
    from care_etl.pipeline import run_pipeline
    from care_etl.synthetic.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        summary = generate(work / "sources", people=people, seed=7, scans=0)
        generate_s = time.perf_counter() - start
        start = time.perf_counter()
        outcome = run_pipeline(
            work / "sources", PROJECT / "data_contracts", f"sqlite:///{work / 'i.db'}", work / "r"
        )
        run_s = time.perf_counter() - start
    records = sum(summary.records.values())
    return {
        "people": people,
        "records": records,
        "generate_s": round(generate_s, 1),
        "run_s": round(run_s, 1),
        "persons": outcome.figures["persons"],
        "review": outcome.figures["review_queue"],
        "steps": outcome.step_seconds,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child)))
        return
    print(
        f"{'people':>8} {'records':>8} {'generate s':>10} {'run s':>7} {'persons':>8} "
        f"{'review':>7} {'peak MB':>8}"
    )
    for people in args.people:
        out = (
            subprocess.run(
                [sys.executable, __file__, "--child", str(people)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        print(
            f"{r['people']:>8,} {r['records']:>8,} {r['generate_s']:>10} {r['run_s']:>7} "
            f"{r['persons']:>8,} {r['review']:>7,} {r['peak_rss_mb']:>8,}"
        )
        slowest = sorted(r["steps"].items(), key=lambda kv: -kv[1])[:5]
        print("         slowest steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in slowest))


if __name__ == "__main__":
    main()
