"""One generated folder shared by the synthetic tests: generating is the slow part."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from care_etl.synthetic.generate import GenerateSummary, generate
from care_etl.synthetic.population import Population, build_population

PEOPLE = 800
SEED = 11


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate(out, PEOPLE, SEED, scans=0)


@pytest.fixture(scope="session")
def out_dir(generated: tuple[Path, GenerateSummary]) -> Path:
    return generated[0]


@pytest.fixture(scope="session")
def population() -> Population:
    return build_population(PEOPLE, SEED)


@pytest.fixture(scope="session")
def truth(out_dir: Path) -> dict[tuple[str, str], str]:
    with (out_dir / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        return {
            (r["source"], r["source_record_id"]): r["true_person_id"]
            for r in csv.DictReader(handle)
        }


def decode_health(path: Path) -> tuple[str, str]:
    """(encoding, text) of a GP extract: BOM, else UTF-8, else Windows-1252."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", raw.decode("utf-8-sig")
    try:
        return "utf-8", raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252", raw.decode("cp1252")


@pytest.fixture(scope="session")
def health_rows(out_dir: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted((out_dir / "health").glob("gp_registrations_*.csv")):
        _, text = decode_health(path)
        rows.extend(csv.DictReader(text.splitlines()))
    return rows


@pytest.fixture(scope="session")
def db(out_dir: Path):
    connection = sqlite3.connect(out_dir / "social_care" / "case_management.db")
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()
