"""How long `generate` takes and how much memory it needs, per population size.

    .venv/bin/python benchmarks/bench_generate.py [--people 10000 100000] [--seed 7] [--scans 0]

Each size runs in a fresh process, so its peak resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
from pathlib import Path

from care_etl.synthetic.generate import SOURCES, generate

#: The target of the brief: 100,000 people without scans in under a minute on 2 cores.
TARGET_SECONDS = 60.0


def _run(people: int, seed: int, scans: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_generate_") as folder:
        summary = generate(Path(folder), people, seed, scans=scans)
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "seconds": summary.seconds,
        "records": summary.records,
        "withdrawn": summary.withdrawn,
        "files": summary.files,
        "megabytes": size / 1e6,
        "peak_mib": peak_kib / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scans", type=int, default=0)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    slow = False
    for people in args.people:
        with context.Pool(1) as pool:
            result = pool.apply(_run, (people, args.seed, args.scans))
        records = result["records"]
        print(
            f"people={people:,} scans={args.scans} seconds={result['seconds']:.1f} "
            f"peak_rss={result['peak_mib']:.0f} MiB files={result['files']:,} "
            f"output={result['megabytes']:.1f} MB"
        )
        for source in SOURCES:
            print(f"  {source:<36} {records[source]:>9,}")
        print(f"  {'social care withdrawn (is_deleted)':<36} {result['withdrawn']:>9,}")
        if people >= 100_000 and args.scans == 0:
            scaled = result["seconds"] * 100_000 / people
            slow |= scaled > TARGET_SECONDS
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
