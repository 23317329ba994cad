"""`care-etl generate` and `run`: progress bars on stderr when asked, a summary table at the end."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main


def test_generate_shows_progress_when_asked_and_ends_with_a_table(tmp_path: Path, capsys):
    assert main(["generate", "--out", str(tmp_path / "a"), "--people", "30", "--scans", "0",
                 "--progress"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert re.search(r"generating: 100%.*6/6", err)
    assert re.search(r"^  total\s+[\d,]+\s+\(\d+ files\)$", out, re.M)
    assert re.search(r"^  health_gp_registrations\s+[\d,]+$", out, re.M)


def test_no_bars_when_stderr_is_not_a_terminal(tmp_path: Path, capsys):
    assert main(["generate", "--out", str(tmp_path / "b"), "--people", "30", "--scans", "0"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_run_shows_ocr_progress_and_a_summary_that_matches_the_index(report_run: dict):
    assert re.search(r"reading paper forms \(OCR\): 100%", report_run["stderr"])
    assert re.search(r"comparing candidate pairs: 100%", report_run["stderr"])
    engine = sa.create_engine(report_run["url"])
    with engine.connect() as conn:
        links = pd.read_sql_table("person_source_link", conn)
        persons = pd.read_sql_table("person_index", conn)
    engine.dispose()
    out = report_run["stdout"]
    for source, linked in links.groupby("source").size().items():
        row = re.search(rf"^{source}\s+([\d,]+)\s+([\d,]+)\s", out, re.M)
        assert row, source
        assert int(row.group(2).replace(",", "")) == linked
    assert re.search(rf"^total\s+[\d,]+\s+{len(links):,}\s", out, re.M)
    assert f"persons: {len(persons):,} " in out
    assert f"\nindex: {report_run['url']}\n" in out
    # Every file the run could not read, or read with a loss, is named on stderr.
    said = report_run["stderr"].splitlines()
    notes = [m for f in report_run["figures"]["sources"].values() for m in f["warnings"]]
    assert notes, "the generated workbooks hold household members of no tenancy"
    for message in notes:
        assert f"care-etl: warning: {message}" in said
    # The run wrote where `care-etl review` looks by default: no --database to add.
    assert "review: care-etl review list" not in out


def test_the_review_hint_reads_sqlite_urls_as_the_files_they_name(tmp_path, monkeypatch):
    """The demo writes demo/care_etl.db by its full path, where `care-etl review` looks by
    default: that is one file, and the summary adds no review command for it."""
    from care_etl.cli import _where
    from care_etl.review.commands import default_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARE_ETL_DATABASE_URL", raising=False)
    assert _where(f"sqlite:///{tmp_path / 'demo' / 'care_etl.db'}") == _where(default_url())
    assert _where(f"sqlite:///{tmp_path / 'care_etl.db'}") != _where(default_url())


def test_review_opens_the_index_run_and_household_open(tmp_path, monkeypatch):
    # With only CARE_ETL_SOURCES_DIR set, run and household opened care_etl.db beside that
    # folder and review looked for demo/care_etl.db in the current folder.
    from care_etl.locations import index_url_for
    from care_etl.review.commands import default_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARE_ETL_DATABASE_URL", raising=False)
    monkeypatch.setenv("CARE_ETL_SOURCES_DIR", str(tmp_path / "council" / "sources"))
    assert default_url() == f"sqlite:///{tmp_path / 'council' / 'care_etl.db'}"
    assert default_url() == index_url_for(tmp_path / "council" / "sources")
    monkeypatch.setenv("CARE_ETL_DATABASE_URL", "postgresql+psycopg://care@db/care")
    assert default_url() == "postgresql+psycopg://care@db/care"
