"""`care-etl run` and Dagster, given one deployment's environment (CARE_ETL_DATABASE_URL,
CARE_ETL_CACHE_DIR, CARE_ETL_REPORTS_DIR), read and write the same places: a Dagster run
after `care-etl run` reuses what it computed, on a real PostgreSQL database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from care_etl.definitions import defs as load_defs
from care_etl_tests.conftest import PROJECT_DIR

CARE_ETL = Path(sys.executable).parent / "care-etl"


def metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    """An asset's materialisation metadata as plain values."""
    event = result.asset_materializations_for_node(node)[0]
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_care_etl_run_and_a_dagster_run_share_index_cache_and_reports_from_the_environment(
    generated: Path, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    env = {
        "CARE_ETL_SOURCES_DIR": str(generated),
        "CARE_ETL_DATABASE_URL": postgres_url,
        "CARE_ETL_CACHE_DIR": str(tmp_path / "deployment" / ".ocr_cache"),
        "CARE_ETL_REPORTS_DIR": str(tmp_path / "deployment" / "reports"),
        "CARE_ETL_PSEUDONYM_KEY": "a-test-key-that-lasts-across-runs-0123456789",
    }
    run = subprocess.run(
        [str(CARE_ETL), "run", "--sources", str(generated)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = tmp_path / "deployment" / "reports" / "coverage.json"
    assert report.is_file()  # not ./reports
    read = json.loads(report.read_text())["sources"]["health_gp_registrations"]["records_read"]

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = (
        load_defs()
        .resolve_job_def("care_etl_job")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    assert result.success
    linked = metadata(result, "link__linked_records")
    assert linked["run_mode"] == "incremental", linked["run_mode_reason"]
    assert linked["records_new_or_changed"] == 0
    index = metadata(result, "index__person_index")
    assert index["publish_mode"] == "changed persons only"
    assert index["persons_rewritten"] == 0
    again = json.loads(report.read_text())["sources"]["health_gp_registrations"]
    assert again["records_read"] == read

    # and `care-etl household`, given no --database, opens the same index
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        person = conn.execute(sa.text("SELECT min(person_id) FROM person_index")).scalar_one()
    engine.dispose()
    household = subprocess.run(
        [str(CARE_ETL), "household", person],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert household.returncode == 0, household.stderr[-2000:]
    assert person in household.stdout


def test_without_a_database_url_dagster_opens_the_index_care_etl_run_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Beside the sources folder, not demo/care_etl.db under whatever folder Dagster runs in."""
    from care_etl.locations import index_url_for
    from care_etl.resources import CareEtlSettings

    sources = tmp_path / "drop" / "sources"
    monkeypatch.setenv("CARE_ETL_SOURCES_DIR", str(sources))
    monkeypatch.delenv("CARE_ETL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CARE_ETL_CACHE_DIR", raising=False)
    settings = CareEtlSettings.from_environment()
    assert settings.database_url == index_url_for(sources)  # what `care-etl run` opens
    assert settings.database_url == f"sqlite:///{tmp_path / 'drop' / 'care_etl.db'}"
    assert settings.cache_dir == str(tmp_path / "drop" / ".ocr_cache")


def test_a_database_password_stays_out_of_dagsters_snapshot_and_run_records(
    generated: Path, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The code location's snapshot (the UI's view of the resource) and every run stored in
    DAGSTER_HOME hold the name CARE_ETL_DATABASE_URL, never the password in its value."""
    secret = "NotARealSecret-4711"
    url = sa.engine.make_url(postgres_url).set(password=secret)
    monkeypatch.setenv("CARE_ETL_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("CARE_ETL_SOURCES_DIR", str(generated))
    monkeypatch.setenv("CARE_ETL_CACHE_DIR", str(tmp_path / "cache" / ".ocr_cache"))
    monkeypatch.setenv("CARE_ETL_REPORTS_DIR", str(tmp_path / "reports"))
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    definitions = load_defs()
    shown = serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))
    assert "CARE_ETL_DATABASE_URL" in shown and secret not in shown  # what the UI is sent
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        job = definitions.resolve_job_def("care_etl_job")
        assert job.execute_in_process(instance=instance).success  # the URL read at run time
        for run in instance.get_runs():
            assert secret not in serialize_value(instance.get_job_snapshot(run.job_snapshot_id))
    # nor in any file Dagster stores uncompressed (event logs, compute logs)
    stored = [p for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert stored == []
