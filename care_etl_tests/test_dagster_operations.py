"""Operating care_etl in Dagster as an engineer does: materialising a selection of assets
from the command line (as the UI launches it), with the code location loaded from
care_etl.definitions and its settings from the environment. Real files, real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from care_etl_tests.conftest import PROJECT_DIR

DAGSTER = Path(sys.executable).parent / "dagster"


def dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dagster …` in the project folder, on this checkout's code."""
    return subprocess.run(
        [str(DAGSTER), *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def materialise(selection: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What the UI's "Materialize" does for a selection: a run of Dagster's asset job."""
    return dagster(
        ["asset", "materialize", "-m", "care_etl.definitions", "--select", selection], env
    )


def deployment(sources: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a deployment: its own Dagster home, index, reports and cache."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {
        "DAGSTER_HOME": str(home),
        "CARE_ETL_SOURCES_DIR": str(sources),
        "CARE_ETL_DATABASE_URL": f"sqlite:///{tmp_path / 'index.db'}",
        "CARE_ETL_REPORTS_DIR": str(tmp_path / "reports"),
        "CARE_ETL_CACHE_DIR": str(tmp_path / "cache" / ".ocr_cache"),
    }


def test_a_selection_runs_in_one_process_and_an_index_alone_says_what_to_materialise_first(
    generated: Path, tmp_path: Path
):
    env = deployment(generated, tmp_path)

    alone = materialise("index/person_index", env)
    assert alone.returncode != 0
    # one line that says what to do, not a FileNotFoundError from Dagster's storage
    assert "has not been materialised in this Dagster home" in alone.stderr
    assert "select '*link/" in alone.stderr
    assert "FileNotFoundError" not in alone.stderr

    one_source = materialise("group:housing_tenancies", env)
    assert one_source.returncode == 0, one_source.stderr[-3000:]
    assert "Executing steps in process" in one_source.stderr
    assert "multiprocess" not in one_source.stderr
