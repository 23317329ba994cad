"""A mistake the user can fix fails a Dagster step with its one line, as `care-etl run`
prints it, and a run launched from Dagster checks its settings as `care-etl run` does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from care_etl.contracts.model import Contract
from care_etl.errors import CareEtlError
from care_etl.resources import CareEtlSettings


@contextmanager
def in_one_line(variable: str | None = None) -> Iterator[None]:
    """care_etl's errors (care_etl.errors) are written for the person who runs it: raised
    as they are, Dagster shows them under its own wrapper and a traceback through our code.
    As a dg.Failure the step's failure is the message, and Dagster keeps its description.
    `variable` names the setting to change, where the mistake is in one."""
    try:
        yield
    except CareEtlError as exc:
        where = f" ({variable})" if variable else ""
        raise dg.Failure(description=f"{exc}{where}") from None


def check_settings(settings: CareEtlSettings, contracts: list[Contract]) -> None:
    """What `care-etl run` checks before it reads anything: a sources folder that is not
    there, or holds no source of the run's `contracts`, is a wrong CARE_ETL_SOURCES_DIR, not
    sources that sent nothing (which would block every feed, or publish an empty index on a
    first run); the reports folder is made now, not found wanting once the index is
    published; a SQLite file's folder is made, the database must answer, and
    CARE_ETL_COMPARE_PROCESSES must be a number."""
    from care_etl.linkage.compare import compare_processes
    from care_etl.pipeline import check_reports, check_sources, prepare_database

    with in_one_line("CARE_ETL_SOURCES_DIR"):
        check_sources(Path(settings.sources_dir), contracts)
    with in_one_line("CARE_ETL_REPORTS_DIR"):
        check_reports(Path(settings.reports_dir))
    with in_one_line():
        prepare_database(settings.database_url)
        compare_processes()  # a bad CARE_ETL_COMPARE_PROCESSES, now, not after every read
