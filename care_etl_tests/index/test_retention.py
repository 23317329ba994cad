"""Retention of what the product keeps beyond the sources, over real runs.

A GP practice's file leaves the sources: its records are noted as departed with the time of
the last run that had them; a reviewer's decision about two of them is deleted once they are
past the contract's retention, with a count in the audit, while a decision naming a record
still present stays. The OCR cache keeps an entry of a form gone for a week, then the run
deletes it. A source whose contract is removed keeps its retention, and its stand-in and
cached rows go when past it. Time passing is simulated by moving the recorded times back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.index import retention
from care_etl.index.retention import utcnow
from care_etl.pipeline import run_pipeline
from care_etl.sources.ocr import file_digest
from care_etl_tests.conftest import CONTRACTS_DIR

GP = "health_gp_registrations"
HOUSING = "housing_tenancies"
ORPHAN = "0" * 64  # an OCR cache entry of a form no longer in paper/


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def rows(url: str, sql: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(sql), conn)
    finally:
        engine.dispose()


def execute(url: str, sql: str, **params: object) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def refuse(*_args: object) -> None:
    raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))


def age(path: Path, days: float) -> None:
    """Set a file's modification time `days` ago."""
    stamp = (dt.datetime.now() - dt.timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def gp_ids(url: str, practice_file: str) -> list[str]:
    links = rows(
        url, f"SELECT source_record_id, lineage FROM person_source_link WHERE source = '{GP}'"
    )
    return sorted(
        links[links["lineage"].str.startswith(f"health/{practice_file} ")].source_record_id
    )


def decide(url: str, left: tuple[str, str], right: tuple[str, str], why: str) -> None:
    code, _, err = cli(
        "review", "decide", f"{left[0]}/{left[1]}", f"{right[0]}/{right[1]}", "--no-link",
        "--reviewer", "A. Reviewer", "--reason", why, "--database", url,
    )  # fmt: skip
    assert code == 0, err


def report(sources: Path, url: str, *extra: str) -> dict[tuple[str, str], tuple[int, int]]:
    """The command's table: (store, source) -> (held, past)."""
    code, out, err = cli("retention", "--sources", str(sources), "--database", url, *extra)
    assert code == 0, err
    found = {}
    for line in out.splitlines()[2:-1]:
        match = re.match(r"^(\S+)\s+(.+?)\s+(\d+)\s+(\d+)  ", line)
        assert match, line
        found[(match[1], match[2])] = (int(match[3]), int(match[4]))
    return found


def test_departed_records_and_their_decisions_go_when_past_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from care_etl.synthetic.generate import generate

    sources, url = tmp_path / "sources", f"sqlite:///{tmp_path / 'index.db'}"
    generate(sources, people=40, seed=3, scans=0)
    run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "reports")
    practices = sorted(p.name for p in (sources / "health").glob("*.csv"))
    leaving, staying = gp_ids(url, practices[0]), gp_ids(url, practices[1])
    assert len(leaving) >= 3 and staying
    decide(url, (GP, leaving[0]), (GP, staying[0]), "kept: one record is still sent")
    decide(url, (GP, leaving[1]), (GP, leaving[2]), "goes: both records have left")
    cache = tmp_path / ".ocr_cache"
    cache.mkdir(exist_ok=True)
    form = next((sources / "paper").iterdir())
    present, orphan = cache / f"{file_digest(form)}.json", cache / f"{ORPHAN}.json"
    for entry in (present, orphan):
        entry.write_text("{}")
        age(entry, 3)
    first_finished = rows(url, "SELECT finished_at FROM pipeline_run").finished_at[0]

    # The practice stops sending its file: its records leave every source.
    shutil.move(sources / "health" / practices[0], tmp_path / practices[0])
    run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "reports")
    departed = rows(url, "SELECT * FROM record_departure")
    assert sorted(departed.source_record_id) == leaving and set(departed.source) == {GP}
    assert set(departed.last_seen_at) == {first_finished}  # the last run that had them
    # A form gone three days is kept (it may come back); the present one is marked seen.
    assert orphan.exists() and dt.datetime.now().timestamp() - present.stat().st_mtime < 600
    kept = rows(url, "SELECT source, retention FROM source_retention")
    assert dict(zip(kept.source, kept.retention, strict=True))[GP] == "8 y"

    table = report(sources, url)
    assert table[("review_decision", GP)] == (1, 0)  # the one naming a present record: not held
    assert table[("review_decision_audit", GP)] == (2, 0)  # decided, then stale (gone)
    assert table[("record_departure", GP)] == (len(leaving), 0)
    assert table[("ocr_cache", "paper_referrals")] == (1, 0)
    code, out, _ = cli("retention", "--sources", str(sources), "--database", url)
    assert not any(record_id in out for record_id in leaving)  # counts, never a record

    # Nine years later (past the GP contract's eight), and the form ten days gone.
    execute(url, "UPDATE record_departure SET last_seen_at = :at",
            at=utcnow() - dt.timedelta(days=9 * 366))  # fmt: skip
    age(orphan, 10)
    table = report(sources, url)
    assert table[("review_decision", GP)] == (1, 1)
    assert table[("record_departure", GP)] == (len(leaving), len(leaving) - 1)
    assert table[("ocr_cache", "paper_referrals")] == (1, 1)

    # A failure half-way through deleting leaves everything as it was: one transaction.
    with monkeypatch.context() as patch:
        patch.setattr(retention, "_log", refuse)
        code, _, err = cli("retention", "--sources", str(sources), "--database", url, "--apply")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert len(rows(url, "SELECT * FROM review_decision")) == 2 and orphan.exists()

    code, out, err = cli("retention", "--sources", str(sources), "--database", url, "--apply")
    assert code == 0 and "item(s) deleted" in out, err
    decisions = rows(url, "SELECT * FROM review_decision")
    assert list(decisions.reason) == ["kept: one record is still sent"]
    audit = rows(url, "SELECT * FROM review_decision_audit ORDER BY audit_id")
    assert set(audit.decision_id) == {decisions.decision_id[0], 0}
    assert audit.detail.iloc[-1].startswith("1 decision(s) deleted")
    assert list(rows(url, "SELECT source_record_id FROM record_departure").source_record_id) == [
        leaving[0]  # still named by the decision that stays
    ]
    assert not orphan.exists() and present.exists()
    logged = rows(url, "SELECT store, deleted FROM retention_log")
    assert dict(zip(logged.store, logged.deleted, strict=True))["review_decision"] == 1
    assert report(sources, url) == {("record_departure", GP): (1, 0)}

    # The file comes back and the housing contract is withdrawn in the same run.
    shutil.move(tmp_path / practices[0], sources / "health" / practices[0])
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / f"{HOUSING}.yaml").unlink()
    gone_long = cache / f"{'1' * 64}.json"
    gone_long.write_text("{}")
    age(gone_long, 8)
    run_pipeline(sources, contracts, url, tmp_path / "reports")
    assert not gone_long.exists() and present.exists()  # the run prunes a week past
    departed = rows(url, "SELECT source, count(*) AS n FROM record_departure GROUP BY source")
    assert list(departed.source) == [HOUSING]  # the practice's records are back
    table = report(sources, url, "--contracts", str(contracts))
    held = table[("accepted_source", HOUSING)]
    assert held[0] == departed.n[0] and held[1] == 0
    assert table[(".care_etl_cache", HOUSING)][1] == 0
    stored = tmp_path / ".care_etl_cache" / f"rows_{HOUSING}.npz"
    home = tmp_path / "dagster"  # step outputs as Dagster's IO manager leaves them
    outputs = [
        home / "storage" / group / f"{step}_{source}"
        for group, step, source in (
            ("ingest", "raw", HOUSING),
            ("standardise", "staged", HOUSING),
            ("ingest", "raw", GP),
        )
    ]
    for output in outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(b"pickled records")
        age(output, 7 * 366)
    table = report(sources, url, "--contracts", str(contracts), "--dagster-home", str(home))
    assert table[("dagster_storage", HOUSING)] == (2, 2)  # written 7 years ago: past 6 y
    assert ("dagster_storage", GP) not in table  # a source still running
    execute(url, "UPDATE record_departure SET last_seen_at = :at",
            at=utcnow() - dt.timedelta(days=7 * 366))  # fmt: skip
    age(stored, 7 * 366)
    code, out, err = cli("retention", "--sources", str(sources), "--database", url, "--apply",
                         "--contracts", str(contracts), "--dagster-home", str(home))  # fmt: skip
    assert code == 0, err
    assert [o.exists() for o in outputs] == [False, False, True]  # GP still runs
    assert rows(url, "SELECT source FROM accepted_source").source.tolist().count(HOUSING) == 0
    assert not stored.exists() and (tmp_path / ".care_etl_cache" / f"rows_{GP}.npz").exists()
    assert rows(url, "SELECT count(*) AS n FROM record_departure").n[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sources", "/nonexistent/sources"], "sources folder not found"),
        (["--database", "sqlite:////nonexistent/index.db"], "no index there"),
        (["--database", "postgres://x@127.0.0.1:1/db"], "database URL"),
        (["--contracts", "/nonexistent/contracts"], "contracts folder not found"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, argv: list[str], message: str):
    (tmp_path / "sources").mkdir()
    (tmp_path / "care_etl.db").write_bytes(b"")
    base = {"--sources": str(tmp_path / "sources")}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    code, out, err = cli("retention", *(x for pair in base.items() for x in pair))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_retention_on_postgresql(tmp_path: Path, postgres_url: str):
    """On PostgreSQL: departures noted in the publish; a decision whose records left before
    departures were noted is dated from its audit, and deleted on apply."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=40, seed=3, scans=0)
    run_pipeline(sources, CONTRACTS_DIR, postgres_url, tmp_path / "reports")
    practice = sorted(p.name for p in (sources / "health").glob("*.csv"))[0]
    leaving = gp_ids(postgres_url, practice)
    decide(postgres_url, (GP, leaving[0]), (GP, leaving[1]), "both records leave")
    shutil.move(sources / "health" / practice, tmp_path / practice)
    run_pipeline(sources, CONTRACTS_DIR, postgres_url, tmp_path / "reports")
    assert report(sources, postgres_url)[("record_departure", GP)] == (len(leaving), 0)
    # As if the departures had been made by a release that did not note them, nine years
    # after the first run: the decision's records are dated from the run before the one
    # that marked it stale as "no longer indexed".
    execute(postgres_url, "DELETE FROM record_departure")
    execute(postgres_url, "UPDATE pipeline_run SET finished_at = :at "
            "WHERE finished_at = (SELECT min(finished_at) FROM pipeline_run)",
            at=utcnow() - dt.timedelta(days=9 * 366))  # fmt: skip
    table = report(sources, postgres_url)
    assert table[("review_decision", GP)] == (1, 1)
    assert table[("record_departure", GP)] == (2, 2)  # inferred for the decision's two
    code, _, err = cli("retention", "--sources", str(sources), "--database", postgres_url,
                       "--apply")  # fmt: skip
    assert code == 0, err
    assert rows(postgres_url, "SELECT count(*) AS n FROM review_decision").n[0] == 0
    assert rows(postgres_url, "SELECT count(*) AS n FROM record_departure").n[0] == 0
    audit = rows(postgres_url, "SELECT decision_id, event FROM review_decision_audit")
    assert audit.values.tolist() == [[0, "deleted"]]


def test_a_contract_a_run_refuses_for_its_governance_still_has_its_retention_applied(
    tmp_path: Path,
):
    # A contract that lost its lawful basis stops `care-etl run` (nothing is read without
    # one), but deleting what is past retention must go on: retention refused it too.
    from care_etl.synthetic.generate import generate

    sources, url = tmp_path / "sources", f"sqlite:///{tmp_path / 'index.db'}"
    generate(sources, people=20, seed=3, scans=0)
    run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "reports")
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    gp = contracts / f"{GP}.yaml"
    text = gp.read_text(encoding="utf-8")
    gp.write_text(re.sub(r"  - property: lawfulBasis\n    value: [^\n]*\n", "", text), "utf-8")

    code, _, err = cli("run", "--sources", str(sources), "--database", url,
                       "--contracts", str(contracts))  # fmt: skip
    assert code == 2 and "lawful" in err.lower(), err
    code, out, err = cli("retention", "--sources", str(sources), "--database", url,
                         "--contracts", str(contracts))  # fmt: skip
    assert code == 0 and "past retention" in out, err
    code, _, err = cli("retention", "--sources", str(sources), "--database", url, "--apply",
                       "--contracts", str(contracts))  # fmt: skip
    assert code == 0, err
