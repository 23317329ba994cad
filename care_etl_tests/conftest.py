"""Shared fixtures: generated sources, a real PostgreSQL database, Tesseract.

In CI (CI=true) a test that needs PostgreSQL or Tesseract fails instead of skipping, so a
missing service can never pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_DIR / "data_contracts"
PG_ADMIN_URL = os.environ.get(
    "CARE_ETL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is not available in CI", pytrace=False)
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own user cache folder (`review list` keeps its rows there), not the
    home folder of whoever runs them."""
    folder = tmp_path_factory.mktemp("user_cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def tesseract() -> str:
    path = shutil.which("tesseract")
    if not path:
        _unavailable("Tesseract OCR")
    return path


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"care_etl_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        _unavailable("PostgreSQL on 127.0.0.1:5432")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated population with a few real scans, shared by the end-to-end tests."""
    from care_etl.synthetic.generate import generate

    out = tmp_path_factory.mktemp("generated") / "sources"
    generate(out, people=400, seed=11, scans=4)
    return out


@pytest.fixture(scope="session")
def generated_run(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run over `generated` into SQLite (url, figures, reports), for tests that only read
    what it wrote."""
    from care_etl.pipeline import run_pipeline

    work = tmp_path_factory.mktemp("generated_run")
    url = f"sqlite:///{work / 'index.db'}"
    figures = run_pipeline(generated, CONTRACTS_DIR, url, work / "reports").figures
    return {"url": url, "figures": figures, "reports": work / "reports"}
