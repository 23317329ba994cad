"""A run killed halfway through publishing: the last index stays readable and whole, and the
next run gives the index an uninterrupted run gives.

The kill is real: SIGKILL to `care-etl run`'s process group in the middle of its publishing
transaction (what an operator's `kill -9`, the out-of-memory killer or a power cut leaves),
once it has replaced the first tables: on SQLite when its rollback journal holds 40% of the
database's pages, on PostgreSQL when it is inserting person_field_value's rows or a later
table's. A third of the records changed, so every table is replaced whole: the longest
publish. The run is incremental: when it is killed, its link step has already saved its
cache for the new sources, while the database still holds the last index.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.incremental.pairs import PAIRS_FILE
from care_etl.incremental.state import FOLDER
from care_etl.index.publish import (
    ANALYST_TABLES,
    INDEX_TABLES,
    person_id_history,
    pipeline_run,
)
from care_etl.pipeline import run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR, fresh_postgres_database
from care_etl_tests.incremental.changes import change_sources
from care_etl_tests.incremental.environment import (
    KEY_ENV,
    lasting_pseudonym_key,
    published_tables,
)

pytestmark = pytest.mark.slow

PEOPLE = 1500
KEY = "killed-run-tests-key-not-a-secret"
#: What a publish writes: every index and analyst table, the id history and the run's row.
PUBLISHED = (*INDEX_TABLES, *ANALYST_TABLES, person_id_history, pipeline_run)
#: A publishing transaction inserting into one of these has replaced the tables before them.
LATE_TABLES = r"^INSERT INTO (person_field_value|person_address|household|relationship) "
#: Columns that say when or in which run a row was written, not what the index holds.
WHEN = {"queued_at", "history_id", "run_id", "changed_at", "finished_at", "summary"}


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from care_etl.synthetic.generate import generate

    out = tmp_path_factory.mktemp("killed") / "sources"
    generate(out, people=PEOPLE, seed=23, scans=0)
    return out


@pytest.fixture(autouse=True)
def pseudonym_key() -> Iterator[None]:
    """One key for every run, the killed one included, as production has."""
    with lasting_pseudonym_key(KEY):
        yield


def _first_run_then_changes(population: Path, work: Path, url: str) -> None:
    """A first index over the population, then a new delivery of every source, a third of
    its records changed (over a fifth of persons to rebuild: every table is replaced)."""
    shutil.copytree(population, work / "sources")
    _run(work, url)
    change_sources(work / "sources", share=0.3, seed=3)


def _run(work: Path, url: str) -> None:
    run_pipeline(work / "sources", CONTRACTS_DIR, url, work / "reports")


def _kill_while_publishing(work: Path, url: str, publishing: Callable[[], bool]) -> None:
    """`care-etl run` over the changed sources, killed once `publishing()` says its
    publishing transaction is halfway (asked once the link step has saved its cache: no
    other transaction writes the index after that)."""
    cache = work / FOLDER / PAIRS_FILE
    saved_before = cache.stat().st_mtime_ns
    run = subprocess.Popen(
        [sys.executable, "-m", "care_etl.cli", "run", "--sources", str(work / "sources"),
         "--database", url, "--reports", str(work / "reports")],
        env={**os.environ, KEY_ENV: KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its compare workers die with it
    )  # fmt: skip
    try:
        while not (cache.stat().st_mtime_ns != saved_before and publishing()):
            if run.poll() is not None:
                said = run.stderr.read().strip().splitlines()[-1:] if run.stderr else []
                pytest.fail(
                    f"the run ended ({run.returncode}) before it was seen publishing: {said}"
                )
            time.sleep(0.001)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL


def _check_killed_run(
    work: Path,
    url: str,
    control: Path,
    control_url: str,
    publishing: Callable[[], bool],
    killed_inside: Callable[[], bool] = lambda: True,
) -> None:
    before = published_tables(url, PUBLISHED)
    _kill_while_publishing(work, url, publishing)
    assert killed_inside()
    _same(published_tables(url, PUBLISHED), before)  # the killed run changed nothing a reader sees

    _run(work, url)  # the next run, on the cache the killed run left
    _run(control, control_url)  # the same sources and first index, never interrupted
    after, expected = (published_tables(u, PUBLISHED, WHEN) for u in (url, control_url))
    _same(after, expected)
    assert len(after["pipeline_run"]) == 2, "the killed run left a run behind"


def _same(found: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert found.keys() == expected.keys()
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, check_exact=True, obj=name)


def test_a_killed_run_leaves_the_last_sqlite_index_whole_and_the_next_run_right(
    population: Path, tmp_path: Path
) -> None:
    work, control = tmp_path / "work", tmp_path / "control"
    database = work / "index.db"
    url = f"sqlite:///{database}"
    _first_run_then_changes(population, work, url)
    shutil.copytree(work, control)  # sources, first index and cache, as the killed run finds them
    journal = Path(f"{database}-journal")
    halfway = 0.4 * database.stat().st_size

    def publishing() -> bool:
        try:
            return journal.stat().st_size > halfway
        except FileNotFoundError:
            return False

    _check_killed_run(
        work, url, control, f"sqlite:///{control / 'index.db'}", publishing,
        # the journal left behind is hot: the kill came inside the transaction
        killed_inside=journal.exists,
    )  # fmt: skip
    check = sa.create_engine(url)
    with check.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    check.dispose()


@pytest.mark.postgres
def test_a_killed_run_leaves_the_last_postgresql_index_whole_and_the_next_run_right(
    population: Path, tmp_path: Path
) -> None:
    work, control = tmp_path / "work", tmp_path / "control"
    with fresh_postgres_database() as url, fresh_postgres_database() as control_url:
        _first_run_then_changes(population, work, url)
        _first_run_then_changes(population, control, control_url)
        watch = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with watch.connect() as conn:

                def publishing() -> bool:  # the run's transaction is at a late table
                    return bool(
                        conn.exec_driver_sql(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid() "
                            "AND backend_xid IS NOT NULL AND query ~ %s",
                            (LATE_TABLES,),
                        ).scalar()
                    )

                _check_killed_run(work, url, control, control_url, publishing)
        finally:
            watch.dispose()
