"""Linkage accuracy of the whole pipeline against the generator's ground truth.

Prints pairwise precision, recall and F1 over every record placed in the index, the review
queue's size and how many of its pairs are one person, how many trap pairs (twins, father
and son, namesakes) were merged, and the blocking's pairs completeness (true pairs among the
candidate pairs) with compared pairs per second and peak memory.

    .venv/bin/python benchmarks/bench_accuracy.py [--people 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from itertools import combinations
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent


def pairs(frame: pd.DataFrame, column: str) -> set[tuple[str, str]]:
    """Every pair of records that share a value of `column`."""
    keys = frame["source"] + "|" + frame["source_record_id"]
    found: set[tuple[str, str]] = set()
    for _, members in keys.groupby(frame[column]):
        found.update(combinations(sorted(members), 2))
    return found


def evaluate(sources: Path, url: str) -> dict[str, float]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        links = pd.read_sql_table("person_source_link", conn)
        review = pd.read_sql_table("review_queue", conn)
    engine.dispose()
    truth = pd.read_csv(sources / "ground_truth.csv", dtype=str)
    placed = links.merge(truth, on=["source", "source_record_id"])
    predicted, true = pairs(placed, "person_id"), pairs(placed, "true_person_id")
    hits = len(predicted & true)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(true) if true else 1.0
    person_of = placed.groupby("true_person_id")["person_id"].agg(set)
    traps = pd.read_csv(sources / "ground_truth_pairs.csv", dtype=str)
    merged = traps[
        [
            bool(person_of.get(a, set()) & person_of.get(b, set()))
            for a, b in zip(traps["true_person_id_a"], traps["true_person_id_b"], strict=True)
        ]
    ]
    true_id = truth.set_index(truth["source"] + "|" + truth["source_record_id"])["true_person_id"]
    sides = [
        true_id.reindex(review[f"{side}_source"] + "|" + review[f"{side}_source_record_id"])
        for side in ("left", "right")
    ]
    return {
        "records": len(links),
        "review_true": int((sides[0].to_numpy() == sides[1].to_numpy()).sum()),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "review": len(review),
        "traps": len(traps),
        **{
            f"merged_{kind}": int((merged["kind"] == kind).sum())
            for kind in ("twin", "father_son", "namesake")
        },
    }


def completeness(records: pd.DataFrame, sources: Path) -> float:
    """Share of the true same-person pairs that the blocking rules propose."""
    from care_etl.linkage.blocking import blocking_keys, candidate_pairs
    from care_etl.linkage.linker import LinkageSettings
    from care_etl.linkage.prepare import prepare

    prepared = prepare(records)
    index = candidate_pairs(blocking_keys(prepared, LinkageSettings().max_block_size))
    keys = (prepared["source"] + "|" + prepared["source_record_id"]).to_numpy()
    found = {tuple(sorted(p)) for p in zip(keys[index.codes[0]], keys[index.codes[1]], strict=True)}
    truth = pd.read_csv(sources / "ground_truth.csv", dtype=str)
    frame = pd.DataFrame(
        {"source": prepared["source"], "source_record_id": prepared["source_record_id"]}
    )
    placed = frame.merge(truth, on=["source", "source_record_id"])
    true = pairs(placed, "true_person_id")
    return len(found & true) / len(true) if true else 1.0


def main() -> None:
    import care_etl.linkage
    from care_etl.pipeline import run_pipeline
    from care_etl.synthetic.generate import generate

    seen = {}
    original = care_etl.linkage.link_records

    def spy(records, *args, **kwargs):
        seen["records"] = records
        seen["result"] = original(records, *args, **kwargs)
        return seen["result"]

    care_etl.linkage.link_records = spy

    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work / "sources", people=args.people, seed=args.seed, scans=0)
        url = f"sqlite:///{work / 'index.db'}"
        run_pipeline(work / "sources", PROJECT / "data_contracts", url, work / "reports")
        r = evaluate(work / "sources", url)
        complete = completeness(seen["records"], work / "sources")
    result = seen["result"]
    per_second = result.candidate_pairs / max(result.timings.get("compare", 0.0), 1e-9)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"people {args.people:,} seed {args.seed}: {r['records']:,} records indexed")
    print(f"  precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}")
    print(
        f"  review pairs {r['review']:,} ({r['review'] / r['records']:.1%} of records), "
        f"{r['review_true']:,} of them one person"
    )
    print(
        f"  trap pairs {r['traps']}: merged twins {r['merged_twin']}, "
        f"father/son {r['merged_father_son']}, namesakes {r['merged_namesake']}"
    )
    print(f"  candidate pairs {result.candidate_pairs:,}, pairs completeness {complete:.4f}")
    print(f"  linkage {result.timings}; compared pairs/s {per_second:,.0f}")
    print(f"  peak memory (RSS, whole pipeline) {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
