"""How long `care-etl find` takes to look a person up, by name and by other values.

Generates N people, runs the pipeline into SQLite, then times find_persons (the command's
lookup, without Python's start-up) for 50 persons of the index: by their name as
person_index holds it, with --similar, by name and date of birth, and by NHS number. Then
it empties person_name_word, as an index published by an earlier release has it, to time
the fallback that reads every name the index keeps.

    .venv/bin/python benchmarks/bench_lookup.py [--people 100000] [--index PATH]

--index reuses an index a run wrote (its tables are left as found, bar a copy emptied for
the fallback).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from care_etl.index.lookup import find_persons, search_terms  # noqa: E402

SAMPLE = 50


def _index(people: int, work: Path) -> Path:
    from care_etl.pipeline import run_pipeline
    from care_etl.synthetic.generate import generate

    generate(work / "sources", people=people, seed=7, scans=0)
    run_pipeline(
        work / "sources", PROJECT / "data_contracts", f"sqlite:///{work / 'i.db'}", work / "r"
    )
    return work / "i.db"


def _sample(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        persons = pd.read_sql(
            sa.text(
                "SELECT person_id, given_name, family_name, date_of_birth, nhs_number "
                "FROM person_index WHERE given_name IS NOT NULL AND family_name IS NOT NULL "
                "AND date_of_birth IS NOT NULL AND nhs_number IS NOT NULL"
            ),
            conn,
        )
    engine.dispose()
    return persons.sample(min(SAMPLE, len(persons)), random_state=7)


def _timed(url: str, searches: list[tuple[dict, bool]]) -> tuple[float, float, float]:
    """Median and longest milliseconds per search, and the mean of persons found."""
    seconds, found = [], []
    for terms, similar in searches:
        start = time.perf_counter()
        found.append(len(find_persons(url, terms, similar=similar)))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1e3, max(seconds) * 1e3, statistics.mean(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = args.index or _index(args.people, work)
        url = f"sqlite:///{path}"
        sample = _sample(url)
        names = [f"{r.given_name} {r.family_name}" for r in sample.itertuples()]
        borns = [str(r.date_of_birth)[:10] for r in sample.itertuples()]
        kinds = {
            "name": [(search_terms(None, n, None, None), False) for n in names],
            "name, --similar": [(search_terms(None, n, None, None), True) for n in names],
            "name and born": [
                (search_terms(None, n, b, None), False) for n, b in zip(names, borns, strict=True)
            ],
            "NHS number": [
                (search_terms(r.nhs_number, None, None, None), False) for r in sample.itertuples()
            ],  # fmt: skip
        }
        older = work / "older.db"
        shutil.copy(path, older)
        engine = sa.create_engine(f"sqlite:///{older}")
        with engine.begin() as conn:
            persons = conn.execute(sa.text("SELECT count(*) FROM person_index")).scalar_one()
            words = conn.execute(sa.text("SELECT count(*) FROM person_name_word")).scalar_one()
            conn.execute(sa.text("DELETE FROM person_name_word"))
        engine.dispose()
        print(f"{persons:,} persons, {words:,} name words; {len(sample)} searches of each kind")
        print(f"{'search':<34}{'median ms':>10}{'max ms':>10}{'found (mean)':>14}")
        for label, searches in kinds.items():
            median, longest, found = _timed(url, searches)
            print(f"{label:<34}{median:>10.1f}{longest:>10.1f}{found:>14.1f}")
        median, longest, found = _timed(f"sqlite:///{older}", kinds["name"])
        print(
            f"{'name, no person_name_word (older)':<34}{median:>10.1f}{longest:>10.1f}{found:>14.1f}"
        )


if __name__ == "__main__":
    main()
