"""Run every asset in this process, as `care-etl run` does, and return the coverage figures.

The same assets as `dagster dev` shows; checks the inputs first so that a user's mistake gets
a one-line error instead of a failed run.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from care_etl.errors import CareEtlError
from care_etl.index.publish import engine_for
from care_etl.locations import cache_dir_for, check_sources_folder
from care_etl.resources import CareEtlSettings

_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

#: Python's cyclic garbage collector runs after this many new objects (its default, 700, and
#: the older generations' default ratios, 10 and 10). Reading, standardising and linking
#: 100k records make millions of short-lived lists and tuples, and at the default every
#: 700th starts a collection: at 100k people an incremental rerun took 17.4 s against 18.7 s
#: (means of four) and a full run 3% less, for 1-2% more peak memory. The older
#: generations keep their default ratios, so a cycle still gets freed.
GC_THRESHOLDS = (50_000, 10, 10)


def collect_less_often() -> None:
    """Set GC_THRESHOLDS for this process: a Dagster run process exists to run the flow."""
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """GC_THRESHOLDS while the block runs, then the caller's own thresholds again."""
    before = gc.get_threshold()
    collect_less_often()
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class RunOutcome:
    """The coverage figures of a completed run and how long each step took."""

    figures: dict[str, Any]
    step_seconds: dict[str, float] = field(default_factory=dict)
    #: Whether linkage ran incrementally, and records and pairs reused (care_etl.incremental).
    incremental: dict[str, Any] = field(default_factory=dict)


def run_pipeline(
    sources_dir: Path,
    contracts_dir: Path,
    database_url: str,
    reports_dir: Path,
    *,
    full: bool = False,
) -> RunOutcome:
    """`full` forgets the incremental state first, so nothing of the last run is reused."""
    import dagster as dg

    from care_etl.contracts import load_contracts
    from care_etl.definitions import assets_for
    from care_etl.incremental.state import cache_root
    from care_etl.linkage.compare import compare_processes
    from care_etl.run_lock import one_run_at_a_time

    compare_processes()  # a bad setting stops the run now, not after every source is read
    contracts = load_contracts(contracts_dir)  # loads and checks every contract first
    # Every mistake the user can see before the run stops it before anything is written.
    check_sources(sources_dir, contracts)
    check_reports(reports_dir)
    prepare_database(database_url)
    assets = assets_for(contracts)
    settings = CareEtlSettings(
        sources_dir=str(sources_dir),
        database_url=database_url,
        reports_dir=str(reports_dir),
        cache_dir=cache_dir_for(sources_dir),  # CARE_ETL_CACHE_DIR, as Dagster reads it
    )
    instance = dg.DagsterInstance.ephemeral()
    with one_run_at_a_time(settings.cache_dir), fewer_collections():
        if full:
            _forget_state(cache_root(settings.cache_dir))
        result = dg.materialize(
            assets,
            # One process, one run: assets hand their outputs over in memory; pickling
            # frames to disk between steps (Dagster's default) cost seconds at 100k records.
            resources={"settings": settings, "io_manager": dg.mem_io_manager},
            instance=instance,
            run_config=_QUIET,
            raise_on_error=False,
        )
    if not result.success:
        raise CareEtlError(_failure(result))
    return RunOutcome(
        result.output_for_node("report__coverage_report"),
        _step_seconds(instance, result.run_id),
        _incremental(result),
    )


def _forget_state(root: Path) -> None:
    """`--full` deletes the incremental cache first. One it cannot delete stops the run
    before it starts: run, it would read that cache and be incremental after all, keeping
    the model `--full` is asked to train again."""
    from care_etl.incremental.state import forget

    try:
        forget(root)
    except OSError as exc:
        raise CareEtlError(
            f"--full: cannot delete the incremental cache {root} ({exc.strerror or exc}): "
            "make it writable or delete it, then run again"
        ) from None


def _incremental(result: Any) -> dict[str, Any]:
    """What the run reused: records and pairs in linkage, persons in publishing (counts)."""
    names = {
        "link__linked_records": ("run_mode", "run_mode_reason", "records_reused",
                                 "records_new_or_changed", "pairs_reused", "pairs_compared",
                                 "model", "model_reason", "model_version"),
        "index__person_index": ("publish_mode", "persons_rewritten", "persons_kept"),
    }  # fmt: skip
    found: dict[str, Any] = {}
    for node, wanted in names.items():
        for event in result.asset_materializations_for_node(node):
            for key, value in event.metadata.items():
                if key in wanted:
                    found[key] = getattr(value, "value", value)
    return found


def check_sources(sources_dir: Path, contracts: list[Any]) -> None:
    """A sources folder that holds no source at all is a wrong path (the parent folder, an
    empty one), not a source that sent nothing: say so, rather than link nothing."""
    check_sources_folder(sources_dir)
    if contracts and not any(_has_input(c, sources_dir) for c in contracts):
        expected = ", ".join(sorted({c.location for c in contracts})[:4])
        raise CareEtlError(f"{sources_dir}: no source files found (expected {expected})")


def _has_input(contract: Any, sources_dir: Path) -> bool:
    """Whether the source has something to read: a file its location matches, or its
    database (in the environment, or a file under the folder)."""
    from care_etl.errors import SourceReadError
    from care_etl.sources.read import database_location

    if contract.format == "sqlite":
        try:
            return bool(database_location(contract, sources_dir))
        except SourceReadError:
            return False
    return any(p.is_file() for p in sources_dir.glob(contract.location))


def check_reports(reports_dir: Path) -> None:
    """Make the reports folder now: a path that cannot be one must not fail the run after
    the index is published."""
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CareEtlError(f"{reports_dir}: reports folder is a file, not a folder") from None
    except OSError as exc:
        raise CareEtlError(
            f"{reports_dir}: cannot make the reports folder ({exc.strerror})"
        ) from None


def prepare_database(url: str) -> None:
    """Refuse an index that would vanish, create a SQLite file's folder and the file
    itself readable by its owner only, then check the database answers."""
    if url.rstrip("/") in ("sqlite:", "sqlite:/") or url.startswith("sqlite:///:memory:"):
        raise CareEtlError(
            f"{url}: an in-memory index would be lost when the run ends; give a file, "
            "sqlite:///path/care_etl.db"
        )
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        _owner_only(path)
    engine_for(url).dispose()


def _owner_only(path: Path) -> None:
    """Create a new SQLite index as an empty file readable by its owner only (0600), as the
    caches are: SQLite would make it with the process's default permissions, readable by
    every account on the host under the usual umask 022. An existing file keeps its own."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise CareEtlError(f"{path}: cannot create the index file ({exc.strerror})") from None


def _failure(result: Any) -> str:
    """The first failed step and its cause, in one line of words: which source, and which
    record or data-quality rule, when the run knows them."""
    failed_checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
    ]
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        what = _step_in_words(event.step_key)
        checks = [
            c for c in failed_checks if _step_in_words(c.asset_key.to_python_identifier()) == what
        ]
        if checks:
            rules = "; ".join(
                f"rule {c.check_name}" + (f" ({c.description})" if c.description else "")
                for c in checks
            )
            return f"{what} failed a blocking data-quality check: {rules}"
        told = event.step_failure_data.user_failure_data
        if told is not None and told.description:  # a dg.Failure: ours, in words already
            return f"{what} failed: {told.description}"
        error = event.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        message = (error.message.strip().splitlines() or [""])[0]
        prefix = re.match(rf"([\w.]*){re.escape(error.cls_name or '')}: ", message)
        ours = bool(prefix) and prefix.group(1).startswith("care_etl.")
        message = message[prefix.end() :] if prefix else message
        # our errors are written for the user; anything else keeps its class as a clue
        detail = message if ours else f"{message} ({error.cls_name})" if message else error.cls_name
        return f"{what} failed: {detail}"
    return "the run failed"


def _step_in_words(step_key: str) -> str:
    """`ingest__raw_housing_tenancies` -> `reading source housing_tenancies`."""
    stage, _, name = step_key.partition("__")
    if stage == "ingest" and name.startswith("raw_"):
        return f"reading source {name.removeprefix('raw_')}"
    if stage == "standardise" and name.startswith("staged_"):
        return f"standardising source {name.removeprefix('staged_')}"
    words = {
        "link__person_records": "gathering the staged records",
        "link__linked_records": "linking records (comparing pairs)",
        "index__person_index": "publishing the index",
        "report__coverage_report": "writing the coverage report",
    }
    return words.get(step_key, f"step {step_key}")


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
