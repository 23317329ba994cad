"""One run at a time over a sources folder, and a killed run never leaves the folder locked."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from care_etl.run_lock import RunInProgress, lock_path, one_run_at_a_time

_HOLD = """
import sys, time
from care_etl.run_lock import one_run_at_a_time
with one_run_at_a_time(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(cache_dir: Path) -> subprocess.Popen:
    """Another process holding the folder's lock (as a run would), once it says so."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(cache_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_first_and_a_killed_run_frees_the_folder(tmp_path):
    cache_dir = tmp_path / ".ocr_cache"
    holder = _holder(cache_dir)
    try:
        with pytest.raises(RunInProgress) as refused, one_run_at_a_time(cache_dir):
            pass
        message = str(refused.value)
        assert message.startswith(f"another care-etl run is working on {tmp_path} (process ")
        assert f"process {holder.pid}, since " in message
        assert message.endswith("wait for it to finish, then run again")
        assert "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)  # killed halfway, as a run can be
        holder.wait()
    ran = False
    with one_run_at_a_time(cache_dir):
        ran = True
    assert ran and lock_path(cache_dir).is_file()


def test_a_step_of_the_run_holding_the_lock_takes_it_again(tmp_path):
    # `care-etl run` holds the lock for the whole run; the Dagster assets it runs in the same
    # process ask for it again, and must not refuse their own run.
    cache_dir = tmp_path / ".ocr_cache"
    steps = []
    with one_run_at_a_time(cache_dir):
        with one_run_at_a_time(cache_dir):
            steps.append("index")
        steps.append("after")
    assert steps == ["index", "after"]
    holder = _holder(cache_dir)  # released at the end: another process can take it
    holder.send_signal(signal.SIGKILL)
    holder.wait()


def test_two_folders_lock_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    holder = _holder(tmp_path / "a" / ".ocr_cache")
    try:
        start = time.monotonic()
        with one_run_at_a_time(tmp_path / "b" / ".ocr_cache"):
            pass
        assert time.monotonic() - start < 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_care_etl_run_is_refused_in_one_line_while_another_run_holds_the_folder(
    generated, tmp_path, capsys
):
    from care_etl.cli import main

    sources = tmp_path / "sources"
    shutil.copytree(generated, sources)
    holder = _holder(tmp_path / ".ocr_cache")  # the cache beside the sources, as run uses
    try:
        code = main(["run", "--sources", str(sources), "--reports", str(tmp_path / "reports")])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("care-etl: error: another care-etl run is working on ")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "care_etl.db").exists() or not _published(tmp_path / "care_etl.db")
    assert not (tmp_path / ".care_etl_cache").exists(), "the refused run wrote nothing"


def _published(path: Path) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return sa.inspect(engine).has_table("person_index")
    finally:
        engine.dispose()


def test_a_dagster_run_fails_its_linkage_step_in_one_line_while_another_run_works(
    generated, tmp_path
):
    # The UI's run, while `care-etl run` works on the same folder: its sources are read and
    # checked (nothing shared is written), but it neither links nor publishes.
    from care_etl_tests.test_dagster_operations import failures, run_job, settings_for

    index = tmp_path / "index.db"
    settings = settings_for(tmp_path, generated, f"sqlite:///{index}")
    holder = _holder(settings.cache_dir)
    try:
        result = run_job(settings)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not result.success
    told = failures(result)
    assert set(told) == {"link__linked_records"}, told
    assert told["link__linked_records"].startswith("another care-etl run is working on ")
    assert not _published(index)


def test_retention_apply_waits_for_no_run_and_says_so(tmp_path, capsys):
    # Deleting from the caches and the index while a run rewrites them would race it.
    from care_etl.cli import main

    sources = tmp_path / "sources"
    sources.mkdir()
    (tmp_path / "care_etl.db").write_bytes(b"")
    holder = _holder(tmp_path / ".ocr_cache")
    try:
        code = main(["retention", "--sources", str(sources), "--apply"])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("care-etl: error: another care-etl run is working on ")
