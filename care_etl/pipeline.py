"""Run every asset in this process, as `care-etl run` does, and return the coverage figures.

The same assets as `dagster dev` shows; checks the inputs first so that a user's mistake gets
a one-line error instead of a failed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from care_etl.errors import CareEtlError
from care_etl.index.publish import engine_for
from care_etl.resources import CareEtlSettings

_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunOutcome:
    """The coverage figures of a completed run and how long each step took."""

    figures: dict[str, Any]
    step_seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    sources_dir: Path, contracts_dir: Path, database_url: str, reports_dir: Path
) -> RunOutcome:
    import dagster as dg

    from care_etl.definitions import build_assets

    if not sources_dir.is_dir():
        raise CareEtlError(f"{sources_dir}: sources folder not found")
    assets = build_assets(contracts_dir)  # loads and checks every contract first
    _prepare_database(database_url)
    settings = CareEtlSettings(
        sources_dir=str(sources_dir),
        database_url=database_url,
        reports_dir=str(reports_dir),
        cache_dir=str(sources_dir.resolve().parent / ".ocr_cache"),
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        assets,
        resources={"settings": settings},
        instance=instance,
        run_config=_QUIET,
        raise_on_error=False,
    )
    if not result.success:
        raise CareEtlError(_failure(result))
    return RunOutcome(
        result.output_for_node("report__coverage_report"), _step_seconds(instance, result.run_id)
    )


def _prepare_database(url: str) -> None:
    """Create a SQLite file's folder, then check the database answers."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_for(url).dispose()


def _failure(result: Any) -> str:
    """The first failed step and its cause, in one line."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            message = error.message.strip().splitlines()[0]
            return f"step {event.step_key} failed: {message}"
    return "the run failed"


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Each step's wall time, from the run's event log."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and event.step_key in started:
            seconds[event.step_key] = round(entry.timestamp - started[event.step_key], 2)
    return seconds
