"""Operating care_etl in Dagster as an engineer does: materialising a selection of assets
from the command line (as the UI launches it), with the code location loaded from
care_etl.definitions and its settings from the environment. Real files, real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from care_etl.definitions import build_definitions
from care_etl.resources import CareEtlSettings
from care_etl_tests.conftest import CONTRACTS_DIR, PROJECT_DIR

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


def run_job(settings: CareEtlSettings) -> dg.ExecuteInProcessResult:
    """care_etl_job as the code location defines it, on these settings."""
    definitions = build_definitions(CONTRACTS_DIR, settings)
    return definitions.resolve_job_def("care_etl_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's one line: the description Dagster keeps of a dg.Failure."""
    told = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data.user_failure_data
            told[event.step_key] = data.description if data else event.step_failure_data.error
    return told


def settings_for(tmp_path: Path, sources: Path, database_url: str) -> CareEtlSettings:
    return CareEtlSettings(
        sources_dir=str(sources),
        database_url=database_url,
        reports_dir=str(tmp_path / "reports"),
        cache_dir=str(tmp_path / "cache" / ".ocr_cache"),
    )


def test_a_sources_folder_that_is_not_there_fails_the_run_in_one_line_and_publishes_nothing(
    tmp_path: Path,
):
    index = tmp_path / "index.db"
    result = run_job(settings_for(tmp_path, tmp_path / "typo", f"sqlite:///{index}"))
    assert not result.success
    told = failures(result)
    assert told["ingest__raw_health_gp_registrations"] == (
        f"{tmp_path / 'typo'}: sources folder not found (CARE_ETL_SOURCES_DIR)"
    )
    assert not index.exists()  # not an empty index, nor every feed blocked


def test_an_unreachable_database_fails_its_steps_with_the_message_care_etl_run_gives(
    generated: Path, tmp_path: Path
):
    url = "postgresql+psycopg://care_etl@127.0.0.1:1/care"
    result = run_job(settings_for(tmp_path, generated, url))
    assert not result.success
    told = failures(result)
    assert told["ingest__raw_housing_tenancies"].startswith(
        f"cannot reach database {url}: connection failed"
    )
    assert all(isinstance(line, str) and "\n" not in line for line in told.values()), told


def test_a_sqlite_index_in_a_folder_not_made_yet_is_made_as_care_etl_run_makes_it(
    generated: Path, tmp_path: Path
):
    index = tmp_path / "new" / "folder" / "index.db"
    result = run_job(settings_for(tmp_path, generated, f"sqlite:///{index}"))
    assert result.success, failures(result)
    assert index.is_file()


def test_the_schedule_and_the_sensor_wait_while_a_run_is_in_progress_and_lose_no_change(
    generated: Path, tmp_path: Path
):
    """Two runs at once would write one index and one cache together: the morning tick and
    a file change during a run start nothing, and the change starts a run once it ended."""
    definitions = build_definitions(
        CONTRACTS_DIR, settings_for(tmp_path, generated, f"sqlite:///{tmp_path / 'i.db'}")
    )
    schedule = definitions.resolve_schedule_def("care_etl_daily")
    sensor = definitions.resolve_sensor_def("care_etl_source_files")
    settings = settings_for(tmp_path, generated, f"sqlite:///{tmp_path / 'i.db'}")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        running = dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
        instance.add_run(running)

        morning = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert not morning.run_requests
        assert f"run {running.run_id[:8]} of __ASSET_JOB is started" in morning.skip_message
        tick = sensor(dg.build_sensor_context(instance=instance, resources={"settings": settings}))
        assert isinstance(tick, dg.SkipReason)

        instance.report_run_failed(running)
        later = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert len(later.run_requests) == 1
        assert later.run_requests[0].tags["trigger"] == "schedule"
        after = sensor(dg.build_sensor_context(instance=instance, resources={"settings": settings}))
        assert isinstance(after, dg.SensorResult) and len(after.run_requests) == 1


def test_care_etl_run_tells_a_step_failed_in_dagsters_words_in_its_own_one_line():
    """A step's care_etl error is a dg.Failure in Dagster; `care-etl run` still prints it
    as the line the user can act on, with the step in words."""
    from care_etl.assets.failures import in_one_line
    from care_etl.errors import SourceReadError
    from care_etl.pipeline import _failure

    @dg.asset(key=dg.AssetKey(["ingest", "raw_housing_tenancies"]))
    def raw() -> None:
        with in_one_line():
            raise SourceReadError("housing/tenancies_East.xlsx row 14: column 'DOB' missing")

    result = dg.materialize([raw], raise_on_error=False, instance=dg.DagsterInstance.ephemeral())
    assert _failure(result) == (
        "reading source housing_tenancies failed: "
        "housing/tenancies_East.xlsx row 14: column 'DOB' missing"
    )


def test_a_bad_compare_processes_setting_stops_a_dagster_run_before_any_source_is_read(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CARE_ETL_COMPARE_PROCESSES", "two")
    result = run_job(settings_for(tmp_path, generated, f"sqlite:///{tmp_path / 'i.db'}"))
    assert not result.success
    told = failures(result)
    assert told["ingest__raw_health_gp_registrations"] == (
        "CARE_ETL_COMPARE_PROCESSES='two' is not a number of processes (1, 2, ...)"
    )
    assert "link__linked_records" not in told  # never reached: nothing was read
    assert not result.get_asset_materialization_events()


def test_a_sources_folder_with_no_source_in_it_fails_the_run_and_publishes_nothing(
    tmp_path: Path,
):
    """The parent of the drop folder, say: care-etl run refuses it, and so does Dagster."""
    empty = tmp_path / "drop"
    empty.mkdir()
    index = tmp_path / "index.db"
    result = run_job(settings_for(tmp_path, empty, f"sqlite:///{index}"))
    assert not result.success
    told = failures(result)["ingest__raw_paper_referrals"]
    assert told.startswith(f"{empty}: no source files found (expected ")
    assert told.endswith("(CARE_ETL_SOURCES_DIR)")
    assert not index.exists()


def the_job() -> dg.JobDefinition:
    """care_etl_job as a run worker rebuilds it from the code location."""
    from care_etl.definitions import defs

    return defs().resolve_job_def("care_etl_job")


def test_a_failed_run_re_executed_from_its_failure_runs_the_failed_step_on_stored_outputs(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The UI's "Re-execute from failure" (a selection of care_etl_job's assets, as the UI
    launches from the job's page): the index alone failed as nothing upstream was
    stored; once the linkage has run, re-executing that run publishes the index."""
    for name, value in deployment(generated, tmp_path).items():
        monkeypatch.setenv(name, value)
    job = dg.build_reconstructable_job("care_etl_tests.test_dagster_operations", "the_job")
    index = dg.AssetKey(["index", "person_index"])
    with dg.instance_for_test(temp_dir=os.environ["DAGSTER_HOME"]) as instance:
        with dg.execute_job(job, instance, asset_selection=[index]) as alone:
            assert not alone.success
        failed = [
            e
            for e in instance.all_logs(alone.run_id)
            if e.dagster_event and e.dagster_event.is_step_failure
        ]
        told = failed[0].dagster_event.step_failure_data.user_failure_data.description
        assert told.startswith("link/")  # which upstream to materialise, in words

        upstream = dg.AssetSelection.from_string("*link/linked_records")
        with dg.execute_job(
            job,
            instance,
            asset_selection=list(upstream.resolve(the_job().asset_layer.asset_graph)),
        ) as linked:
            assert linked.success

        again = dg.ReexecutionOptions.from_failure(alone.run_id, instance)
        with dg.execute_job(job, instance, reexecution_options=again) as rerun:
            assert rerun.success
            done = {e.asset_key for e in rerun.get_asset_materialization_events()}
        assert done == {index}
