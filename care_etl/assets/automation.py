"""When the job runs by itself: every morning, and whenever a source file appears or changes.

The sensor watches the files the contracts' servers name (their `path` globs under the
sources folder) and keeps, as its cursor, each file's size and modification time: a new,
changed or removed file starts one run of the whole job; nothing changed, no run.

Each run it asks for is keyed by the count of changes seen so far (kept in the cursor), so
the key is new for every change, even one that puts the files back as they were, yet the
same when the daemon evaluates one tick twice (it stores the cursor only once the run has
started), so that one change never starts two runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from care_etl.contracts.model import Contract
from care_etl.errors import CareEtlError
from care_etl.resources import CareEtlSettings

SCHEDULE_NAME = "care_etl_daily"
SENSOR_NAME = "care_etl_source_files"
#: 06:00 London time, before the working day; CARE_ETL_SCHEDULE_CRON overrides it.
DEFAULT_CRON = "0 6 * * *"
CRON_VARIABLE = "CARE_ETL_SCHEDULE_CRON"
TIMEZONE = "Europe/London"


def daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """The morning schedule, at CARE_ETL_SCHEDULE_CRON if set.

    A cron Dagster rejects is the operator's to put right, so it is told in one line naming
    the variable, not as a Dagster traceback that stops the whole code location loading.
    """
    cron = os.environ.get(CRON_VARIABLE)

    def morning_run(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = run_in_flight(context.instance, job.name)
        return dg.SkipReason(busy) if busy else dg.RunRequest(tags={"trigger": "schedule"})

    try:
        return dg.ScheduleDefinition(
            name=SCHEDULE_NAME,
            job=job,
            cron_schedule=DEFAULT_CRON if cron is None else cron,
            execution_timezone=TIMEZONE,
            description="Runs the whole job every morning, so the index is never more than a "
            "day old even when no file changed (a source database is read on every run); "
            "skipped while a run is queued or in progress.",
            execution_fn=morning_run,
        )
    except dg.DagsterInvalidDefinitionError:
        if cron is None:  # the default is valid: not the operator's mistake
            raise
        raise CareEtlError(
            f"{CRON_VARIABLE}={cron!r} is not a cron schedule: give five fields, minute hour "
            "day-of-month month day-of-week, in London time, e.g. '0 6 * * *' (06:00 every "
            "day, the default) or '30 5 * * 1-5' (05:30 on weekdays)"
        ) from None


#: The job Dagster runs for a selection of assets launched from the UI: it writes the index too.
ASSET_JOB = "__ASSET_JOB"
#: A run in these may still write the index or the cache (a NOT_STARTED run never launched).
BUSY = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def run_in_flight(instance: dg.DagsterInstance, job_name: str) -> str | None:
    """Why not to start a run now: another is queued or running. Two runs at once would
    write one index and one incremental cache together (and on SQLite lock each other out),
    so the schedule and the sensor wait for it rather than queue a second."""
    records = instance.get_run_records(dg.RunsFilter(job_name=None, statuses=list(BUSY)), limit=50)
    busy = [r.dagster_run for r in records if r.dagster_run.job_name in (job_name, ASSET_JOB)]
    if not busy:
        return None
    run = busy[0]
    return f"run {run.run_id[:8]} of {run.job_name} is {run.status.value.lower()}: not starting another"


def source_snapshot(contracts: list[Contract], sources_dir: Path) -> dict[str, list[int]]:
    """Every file the contracts read: path relative to the sources folder -> [mtime_ns, size]."""
    snapshot: dict[str, list[int]] = {}
    for contract in contracts:
        if not contract.location:
            continue
        for path in sorted(sources_dir.glob(contract.location)):
            if path.is_file():
                stat = path.stat()
                snapshot[path.relative_to(sources_dir).as_posix()] = [
                    stat.st_mtime_ns,
                    stat.st_size,
                ]
    return snapshot


def changes(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, list[str]]:
    """Which files are new, changed or removed since the last run request."""
    return {
        "new": sorted(set(after) - set(before)),
        "changed": sorted(p for p in set(after) & set(before) if after[p] != before[p]),
        "removed": sorted(set(before) - set(after)),
    }


def read_cursor(cursor: str | None) -> tuple[int, dict[str, list[int]]]:
    """The number of changes seen so far and the files as they were at the last one.

    A cursor written before changes were counted is the bare snapshot: its count is 0.
    """
    if not cursor:
        return 0, {}
    saved = json.loads(cursor)
    if isinstance(saved.get("files"), dict):
        return int(saved["change"]), saved["files"]
    return 0, saved


def write_cursor(change: int, files: dict[str, list[int]]) -> str:
    """The cursor for the `change`-th change, which left the files as `files`."""
    return json.dumps({"change": change, "files": files}, sort_keys=True)


def run_key(change: int, files: dict[str, list[int]]) -> str:
    """Unique per change, as Dagster skips a request whose key an earlier run had.

    The files alone would not do: putting back a removed file returns to an earlier set,
    and its run would be skipped. The count makes it new; the digest says which files.
    """
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return f"{change}-{digest[:16]}"


def source_files_sensor(
    contracts: list[Contract], job: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=60,
        description="Starts a run when a file named by a contract's server path appears, "
        "changes (size or modification time) or disappears under the sources folder.",
    )
    def watch_sources(
        context: dg.SensorEvaluationContext, settings: CareEtlSettings
    ) -> dg.SensorResult | dg.SkipReason:
        busy = run_in_flight(context.instance, job.name)
        if busy:  # the cursor stays: the change is seen again once that run has ended
            return dg.SkipReason(busy)
        sources_dir = Path(settings.sources_dir)
        if not sources_dir.is_dir():
            return dg.SkipReason(f"sources folder {sources_dir} not found")
        seen, before = read_cursor(context.cursor)
        after = source_snapshot(contracts, sources_dir)
        diff = changes(before, after)
        if not any(diff.values()):
            return dg.SkipReason(f"no source file changed ({len(after)} files watched)")
        summary = ", ".join(f"{len(v)} {k}" for k, v in diff.items() if v)
        request = dg.RunRequest(
            run_key=run_key(seen + 1, after),
            tags={"trigger": "source_files", "source_files": summary},
        )
        context.log.info(f"source files: {summary}: {', '.join(sum(diff.values(), [])[:10])}")
        return dg.SensorResult(run_requests=[request], cursor=write_cursor(seen + 1, after))

    return watch_sources
