"""Bad input: one-line errors naming the file and the problem; the rest of the run completes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from care_etl.pipeline import run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture
def damaged(generated: Path, tmp_path: Path) -> Path:
    """The generated sources with one file of each kind broken."""
    sources = tmp_path / "sources"
    shutil.copytree(generated, sources)
    workbook = sorted((sources / "housing").glob("*.xlsx"))[0]
    workbook.write_bytes(b"this is not a workbook")
    practices = sorted((sources / "health").glob("*.csv"))
    # A missing required column blocks the whole feed (care_etl_tests/quality/test_blocking.py);
    # here each damage is confined to one file, so the rest of the feed still runs.
    # Bytes that are neither UTF-8 nor Windows-1252 (0x81, 0x8D, 0x8F, 0x90 are undefined there).
    practices[0].write_bytes(practices[0].read_bytes()[:200] + b"\x81\x8d\x8f\x90 \xe9\x81\n")
    with practices[1].open("ab") as ragged:
        ragged.write(b"P9999999,only,three\r\n")
    Image.new("L", (400, 300), color=255).save(sources / "paper" / "BLANK-0001.png")
    return sources


def test_a_damaged_source_is_reported_by_file_and_the_run_completes(damaged, tmp_path):
    figures = run_pipeline(
        damaged, CONTRACTS_DIR, f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "r"
    ).figures
    housing = figures["sources"]["housing_tenancies"]
    health = figures["sources"]["health_gp_registrations"]
    errors = housing["errors"] + health["errors"]
    assert any("tenancies_" in e and ".xlsx" in e for e in housing["errors"])
    assert health["blocked"] is None, "damage confined to one file does not block the feed"
    assert any("cannot decode" in e or "encoding" in e for e in health["errors"])
    assert all("\n" not in e for e in errors)
    # The other files of each source still ran.
    assert housing["records_read"] > 0 and health["records_read"] > 0
    ragged = [r for r in health["quarantine_reasons"] if "fields where the header has" in r]
    assert ragged, "the ragged row is quarantined, not the file"
    paper = figures["sources"]["paper_referrals"]
    assert paper["quarantine_reasons"], "the blank scan is quarantined with its reason"
    assert figures["persons"] > 0


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """care-etl with these arguments, and these variables added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "care_etl.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_cli_missing_sources_folder_is_one_line(tmp_path):
    result = _cli("run", "--sources", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nowhere: sources folder not found" in result.stderr
    assert "Traceback" not in result.stderr


def _one_line(result: subprocess.CompletedProcess) -> str:
    """The error line, after checking it is the only line and the exit code is 2."""
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    return result.stderr.strip()


def test_a_folder_without_any_source_is_one_line_and_writes_nothing(tmp_path):
    # The common slip: the folder above the sources (or an empty one).
    (tmp_path / "demo" / "sources").mkdir(parents=True)
    for folder in (tmp_path / "demo", tmp_path / "demo" / "sources"):
        line = _one_line(_cli("run", "--sources", str(folder), "--reports", str(tmp_path / "r")))
        assert line.startswith(f"care-etl: error: {folder}: no source files found (expected ")
        assert "health/" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert not (tmp_path / "care_etl.db").exists() and not (tmp_path / "r").exists()


def test_a_file_given_as_sources_folder_is_named_as_a_file(tmp_path):
    (tmp_path / "sources.csv").write_text("x\n")
    line = _one_line(_cli("run", "--sources", str(tmp_path / "sources.csv")))
    assert line.endswith("sources.csv: is a file, not a folder")


def test_reports_path_that_is_a_file_stops_the_run_before_the_index(generated, tmp_path):
    (tmp_path / "afile").write_text("")
    database = tmp_path / "index.db"
    result = _cli(
        "run", "--sources", str(generated), "--reports", str(tmp_path / "afile"),
        "--database", f"sqlite:///{database}",
    )  # fmt: skip
    assert _one_line(result).endswith("afile: reports folder is a file, not a folder")
    assert not database.exists(), "stopped before the index was written"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://someone:secret@localhost/db", "its driver (MySQLdb) is not installed"),
        (
            "postgresql+psycopg2://someone:secret@127.0.0.1/test",
            "is not installed (for PostgreSQL write postgresql+psycopg://",
        ),
        ("postgres://someone:secret@127.0.0.1/test", "not understood: postgres://someone:***@"),
        ("sqlite://", "an in-memory index would be lost when the run ends"),
    ],
)
def test_database_urls_people_write_get_one_line_with_what_to_write(
    generated, tmp_path, url: str, says: str
):
    line = _one_line(_cli("run", "--sources", str(generated), "--database", url))
    assert says in line and "secret" not in line


def test_a_file_that_is_not_a_database_is_named_as_the_index(generated, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_text("garbage\n" * 100)
    line = _one_line(_cli("run", "--sources", str(generated), "--database", f"sqlite:///{garbage}"))
    assert (
        line == f"care-etl: error: cannot use database sqlite:///{garbage}: file is not a database"
    )
    line = _one_line(_cli("review", "list", "--database", f"sqlite:///{garbage}"))
    assert "file is not a database" in line
    assert garbage.read_text() == "garbage\n" * 100, "left as it was"


def test_cli_bad_compare_processes_is_one_line_before_anything_is_read(generated, tmp_path):
    result = _cli(
        "run", "--sources", str(generated), "--database", f"sqlite:///{tmp_path / 'i.db'}",
        "--reports", str(tmp_path / "r"), env={"CARE_ETL_COMPARE_PROCESSES": "two"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "care-etl: error: CARE_ETL_COMPARE_PROCESSES='two' is not a number of processes (1, 2, ...)"
    )
    assert not (tmp_path / "i.db").exists(), "stopped before the database was touched"


def test_cli_unreachable_database_is_one_line_without_password(generated, tmp_path):
    url = "postgresql+psycopg://someone:secret@127.0.0.1:1/nowhere"
    result = _cli("run", "--sources", str(generated), "--database", url)
    assert result.returncode == 2
    assert "cannot reach database" in result.stderr
    assert "secret" not in result.stderr and "Traceback" not in result.stderr


def test_cli_unreadable_contract_is_one_line(generated, tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / "broken.yaml").write_text("kind: [", encoding="utf-8")
    result = _cli("run", "--sources", str(generated), "--contracts", str(contracts))
    assert result.returncode == 2
    assert "broken.yaml: not valid YAML" in result.stderr
    assert result.stderr.strip().count("\n") == 0
