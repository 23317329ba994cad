"""The operator's day: the daily schedule, the source-file sensor, failures told in words."""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from care_etl.assets.automation import read_cursor
from care_etl.definitions import JOB_NAME, build_definitions
from care_etl.definitions import defs as load_defs
from care_etl.errors import CareEtlError, SourceReadError
from care_etl.pipeline import _failure
from care_etl.resources import CareEtlSettings
from care_etl_tests.conftest import CONTRACTS_DIR


@pytest.fixture
def sources(generated: Path, tmp_path: Path) -> Path:
    """A private copy of the generated sources, for the sensor to watch change."""
    copy = tmp_path / "sources"
    shutil.copytree(generated, copy)
    return copy


def _defs(sources_dir: Path, tmp_path: Path) -> tuple[dg.Definitions, CareEtlSettings]:
    settings = CareEtlSettings(
        sources_dir=str(sources_dir),
        database_url=f"sqlite:///{tmp_path / 'i.db'}",
        reports_dir=str(tmp_path / "reports"),
        cache_dir=str(tmp_path / "cache"),
    )
    return build_definitions(CONTRACTS_DIR, settings), settings


def _tick(defs: dg.Definitions, settings: CareEtlSettings, cursor: str | None):
    """One evaluation of the sensor, as the daemon makes it: with an instance and a cursor."""
    sensor = defs.resolve_sensor_def("care_etl_source_files")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"settings": settings}
        )
        return sensor(context)


def test_the_daily_schedule_targets_the_job(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CARE_ETL_SCHEDULE_CRON", raising=False)
    defs, _ = _defs(tmp_path, tmp_path)
    schedule = defs.resolve_schedule_def("care_etl_daily")
    assert schedule.job_name == JOB_NAME
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "Europe/London"
    assert defs.resolve_sensor_def("care_etl_source_files").job_name == JOB_NAME


@pytest.mark.parametrize("cron", ["bogus", "0 6 * *", ""])
def test_a_bad_schedule_cron_is_one_line_naming_the_variable(cron: str, monkeypatch):
    monkeypatch.setenv("CARE_ETL_SCHEDULE_CRON", cron)
    thresholds = gc.get_threshold()  # loading the code location sets the run process's
    try:
        with pytest.raises(CareEtlError) as raised:
            load_defs()  # as `dagster definitions validate` and the daemon load it
    finally:
        gc.set_threshold(*thresholds)
    message = str(raised.value)
    assert message.startswith(f"CARE_ETL_SCHEDULE_CRON={cron!r} is not a cron schedule: ")
    assert "'0 6 * * *'" in message and "\n" not in message


def test_the_schedule_cron_comes_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CARE_ETL_SCHEDULE_CRON", "30 5 * * 1-5")
    defs, _ = _defs(tmp_path, tmp_path)
    assert defs.resolve_schedule_def("care_etl_daily").cron_schedule == "30 5 * * 1-5"


def test_the_sensor_starts_a_run_when_a_source_file_is_dropped_in(sources: Path, tmp_path: Path):
    defs, settings = _defs(sources, tmp_path)
    first = _tick(defs, settings, None)  # every file is new to a sensor that never ran
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1

    unchanged = _tick(defs, settings, first.cursor)
    assert isinstance(unchanged, dg.SkipReason)

    (sources / "notes.txt").write_text("not a source file\n")  # matches no contract's path
    assert isinstance(_tick(defs, settings, first.cursor), dg.SkipReason)

    practice = next((sources / "health").glob("gp_registrations_*.csv"))
    shutil.copy(practice, sources / "health" / "gp_registrations_Z99999.csv")
    dropped = _tick(defs, settings, first.cursor)
    assert isinstance(dropped, dg.SensorResult) and len(dropped.run_requests) == 1
    request = dropped.run_requests[0]
    assert request.tags["source_files"] == "1 new"
    assert request.run_key != first.run_requests[0].run_key
    assert isinstance(_tick(defs, settings, dropped.cursor), dg.SkipReason)


def test_the_sensor_sees_a_changed_file(sources: Path, tmp_path: Path):
    defs, settings = _defs(sources, tmp_path)
    cursor = _tick(defs, settings, None).cursor
    workbook = next((sources / "housing").glob("*.xlsx"))
    stat = workbook.stat()
    os.utime(workbook, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    changed = _tick(defs, settings, cursor)
    assert isinstance(changed, dg.SensorResult)
    assert changed.run_requests[0].tags["source_files"] == "1 changed"


def test_a_file_that_comes_back_starts_a_run_with_a_key_never_used_before(
    sources: Path, tmp_path: Path
):
    # Dagster drops a run request whose key an earlier run of the sensor had: a key made from
    # the files alone came round again when a removed file was put back, and no run started
    defs, settings = _defs(sources, tmp_path)
    first = _tick(defs, settings, None)
    practice = next((sources / "health").glob("gp_registrations_*.csv"))
    aside = tmp_path / practice.name
    shutil.move(practice, aside)  # shutil.move keeps the modification time
    removed = _tick(defs, settings, first.cursor)
    assert removed.run_requests[0].tags["source_files"] == "1 removed"
    shutil.move(aside, practice)
    restored = _tick(defs, settings, removed.cursor)
    assert isinstance(restored, dg.SensorResult) and len(restored.run_requests) == 1
    assert restored.run_requests[0].tags["source_files"] == "1 new"
    keys = [r.run_requests[0].run_key for r in (first, removed, restored)]
    assert len(set(keys)) == 3
    assert isinstance(_tick(defs, settings, restored.cursor), dg.SkipReason)


def test_a_tick_evaluated_twice_asks_for_the_same_run(sources: Path, tmp_path: Path):
    # the daemon stores the cursor only after the runs start: a tick it evaluates again (the
    # daemon stopped in between) must ask for the same run key, so Dagster starts it once
    defs, settings = _defs(sources, tmp_path)
    cursor = _tick(defs, settings, None).cursor
    next((sources / "housing").glob("*.xlsx")).unlink()
    again = [_tick(defs, settings, cursor) for _ in range(2)]
    assert again[0].run_requests[0].run_key == again[1].run_requests[0].run_key
    assert again[0].cursor == again[1].cursor


def test_a_cursor_from_before_changes_were_counted_still_reads(sources: Path, tmp_path: Path):
    # a running sensor keeps its cursor across an upgrade: the bare snapshot it held then
    # must neither start a run for files that did not change nor lose the files it names
    defs, settings = _defs(sources, tmp_path)
    files = read_cursor(_tick(defs, settings, None).cursor)[1]
    old = json.dumps(files, sort_keys=True)
    assert isinstance(_tick(defs, settings, old), dg.SkipReason)
    next((sources / "paper").glob("*.txt")).unlink()
    removed = _tick(defs, settings, old)
    assert removed.run_requests[0].tags["source_files"] == "1 removed"
    assert read_cursor(removed.cursor)[0] == 1


def _materialise_failing(body) -> dg.ExecuteInProcessResult:
    key = dg.AssetKey(["ingest", "raw_housing_tenancies"])
    spec = dg.AssetCheckSpec("nhs_number_valid", asset=key, blocking=True)

    @dg.asset(key=key, check_specs=[spec])
    def raw():
        yield from body()

    return dg.materialize(
        [raw],
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )


def test_a_failed_run_names_the_source_and_the_record():
    def body():
        raise SourceReadError("housing/tenancies_East.xlsx row 14: column 'DOB' missing")
        yield  # pragma: no cover

    message = _failure(_materialise_failing(body))
    assert message == (
        "reading source housing_tenancies failed: "
        "housing/tenancies_East.xlsx row 14: column 'DOB' missing"
    )


def test_a_failed_run_names_the_rule_that_blocked_it():
    def body():
        yield dg.Output(1)
        yield dg.AssetCheckResult(
            check_name="nhs_number_valid",
            passed=False,
            description="12 of 100 NHS numbers fail modulus 11",
        )

    assert _failure(_materialise_failing(body)) == (
        "reading source housing_tenancies failed a blocking data-quality check: "
        "rule nhs_number_valid (12 of 100 NHS numbers fail modulus 11)"
    )
