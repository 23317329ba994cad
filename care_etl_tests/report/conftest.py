"""A real `care-etl run` on the shared generated population, and a real headless Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from care_etl_tests.conftest import CONTRACTS_DIR, _unavailable


@pytest.fixture(scope="session")
def report_run(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`care-etl run --progress` into SQLite, its output kept, the report written beside it.
    The index is named by CARE_ETL_DATABASE_URL, as Dagster and `care-etl review` read it."""
    from care_etl.cli import main

    work = tmp_path_factory.mktemp("report_run")
    url = f"sqlite:///{work / 'index.db'}"
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", "--sources", str(generated), "--contracts", str(CONTRACTS_DIR)]
    argv += ["--reports", str(work / "reports"), "--progress"]
    os.environ["CARE_ETL_DATABASE_URL"] = url
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        del os.environ["CARE_ETL_DATABASE_URL"]
    assert code == 0, err.getvalue()[-2000:]
    figures = json.loads((work / "reports" / "coverage.json").read_text())
    return {
        "url": url,
        "figures": figures,
        "reports": work / "reports",
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
    }


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _unavailable("Chromium (Debian package chromium; `make setup` installs it)")
    return path
