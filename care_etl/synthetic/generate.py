"""Generate the four sources of source-systems.md, with the ground truth that scores linkage.

One true population is drawn first; each source then writes its own view of it, mess
included, from its own random stream. `ground_truth.csv` names the true person behind every
record written (withdrawn social care rows excepted: they must reach no index), and
`ground_truth_pairs.csv` lists the trap pairs that must never be merged.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from care_etl.errors import CareEtlError
from care_etl.synthetic.common import SourceOutput
from care_etl.synthetic.health import write_health
from care_etl.synthetic.housing import write_housing
from care_etl.synthetic.paper import write_paper
from care_etl.synthetic.population import build_population
from care_etl.synthetic.social_care import write_social_care

HEALTH = "health_gp_registrations"
HOUSING = "housing_tenancies"
SOCIAL_CARE = "social_care_case_management"
PAPER = "paper_referrals"
SOURCES: tuple[str, ...] = (HEALTH, HOUSING, SOCIAL_CARE, PAPER)

GROUND_TRUTH = "ground_truth.csv"
GROUND_TRUTH_PAIRS = "ground_truth_pairs.csv"
TRAP_KINDS: tuple[str, ...] = ("twin", "father_son", "namesake")

#: What a previous run may have left, removed first so the ground truth matches the folder.
_OUTPUT_GLOBS = (
    "health/gp_registrations_*.csv",
    "housing/tenancies_*.xlsx",
    "social_care/case_management.db",
    "paper/*.txt",
    "paper/*.png",
    "paper/*.pdf",
    GROUND_TRUTH,
    GROUND_TRUTH_PAIRS,
)


@dataclass
class GenerateSummary:
    people: int
    #: Records written per source id (social care without its withdrawn rows).
    records: dict[str, int]
    #: Social care rows with is_deleted true.
    withdrawn: int
    files: int
    seconds: float


def _clear(out_dir: Path) -> None:
    for pattern in _OUTPUT_GLOBS:
        for path in sorted(out_dir.glob(pattern)):
            path.unlink()


def _write_truth(out_dir: Path, outputs: dict[str, SourceOutput]) -> None:
    with (out_dir / GROUND_TRUTH).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("source", "source_record_id", "true_person_id"))
        for source in SOURCES:
            writer.writerows((source, rid, pid) for rid, pid in outputs[source].records)


def _write_pairs(out_dir: Path, pairs: list[tuple[str, str, str]]) -> None:
    with (out_dir / GROUND_TRUTH_PAIRS).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("kind", "true_person_id_a", "true_person_id_b"))
        writer.writerows(sorted(pairs, key=lambda p: (TRAP_KINDS.index(p[0]), p[1], p[2])))


def generate(
    out_dir: Path,
    people: int = 2000,
    seed: int = 7,
    *,
    scans: int = 40,
    progress: Callable[[str], None] | None = None,
) -> GenerateSummary:
    """Write the four sources and the ground truth under `out_dir`.

    The same (people, seed, scans) gives byte-identical files. `scans` paper forms become
    page images (half PNG, half PDF); every other form is written as OCR text.
    """
    if people < 1:
        raise CareEtlError(f"--people must be at least 1, got {people}")
    if scans < 0:
        raise CareEtlError(f"scans must be 0 or more, got {scans}")
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)

    population = build_population(people, seed)
    say(f"population: {people} people in {len(population.households)} households")
    outputs: dict[str, SourceOutput] = {}
    writers: list[tuple[str, Callable[[], SourceOutput]]] = [
        (HEALTH, lambda: write_health(out_dir / "health", population, seed)),
        (HOUSING, lambda: write_housing(out_dir / "housing", population, seed)),
        (SOCIAL_CARE, lambda: write_social_care(out_dir / "social_care", population, seed)),
        (PAPER, lambda: write_paper(out_dir / "paper", population, seed, scans)),
    ]
    for source, write in writers:
        outputs[source] = write()
        say(f"{source}: {len(outputs[source].records)} records in {outputs[source].files} files")
    _write_truth(out_dir, outputs)
    _write_pairs(out_dir, population.trap_pairs)
    summary = GenerateSummary(
        people=people,
        records={source: len(outputs[source].records) for source in SOURCES},
        withdrawn=outputs[SOCIAL_CARE].withdrawn,
        files=sum(o.files for o in outputs.values()) + 2,
        seconds=round(time.perf_counter() - started, 3),
    )
    say(
        f"ground truth: {sum(summary.records.values())} records, "
        f"{len(population.trap_pairs)} trap pairs"
    )
    return summary
