"""Incremental runs give the index a full run gives, on real generated sources and SQLite.

Scenario: a first (full) run; a reviewer decides a queued pair; the sources change (records
added, removed and corrected in every source). Then the same changed sources and the same
first index are run twice: incrementally (reusing the first run's cache) and fully (on a
copy, without cache but with the model the first run trained: an incremental run applies
that kept model, care_etl.incremental.kept, so a full recomputation with it is what it must
equal). The two indexes must agree: persons, links, ids, probabilities, review pairs.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.errors import CareEtlError
from care_etl.incremental import kept as kept_module
from care_etl.incremental.kept import MODEL_FILE
from care_etl.incremental.state import FOLDER
from care_etl.pipeline import RunOutcome, run_pipeline
from care_etl.review import store
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.incremental.changes import change_sources
from care_etl_tests.incremental.environment import BUILT_TABLES, lasting_pseudonym_key

PEOPLE = 300
#: Compared row for row, in any order (on SQLite the analyst tables are plain analyst_*).
#: Read whole by _tables; person_index and person_source_link are read by its queries.
WHOLE_TABLES = tuple(t for t in BUILT_TABLES if t not in ("person_index", "person_source_link"))


@dataclass
class Reruns:
    incremental: RunOutcome
    full: RunOutcome
    inc_url: str
    full_url: str
    decided: tuple[tuple[str, str], tuple[str, str]]


def _url(folder: Path) -> str:
    return f"sqlite:///{folder / 'index.db'}"


def _run(folder: Path, *, full: bool = False, contracts: Path = CONTRACTS_DIR) -> RunOutcome:
    return run_pipeline(folder / "sources", contracts, _url(folder), folder / "reports", full=full)


def _copy(source: Path, target: Path) -> None:
    """Sources and index of one working folder into another, without the cache but with
    the kept model: a run there recomputes everything, applying the same model."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "sources", target / "sources")
    shutil.copy(source / "index.db", target / "index.db")
    (target / FOLDER).mkdir()
    shutil.copy(source / FOLDER / MODEL_FILE, target / FOLDER / MODEL_FILE)


def _only_the_model(folder: Path) -> None:
    """Drop the cache but the kept model: the next run there recomputes everything."""
    for path in (folder / FOLDER).iterdir():
        if path.name != MODEL_FILE:
            path.unlink()


def _tables(url: str, whole: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    queries = {
        "links": "SELECT person_id, source, source_record_id, link_type, match_probability "
        "FROM person_source_link ORDER BY source, source_record_id",
        "review": "SELECT left_source, left_source_record_id, right_source, "
        "right_source_record_id, match_probability, evidence FROM review_queue ORDER BY 1, 2, 3, 4",
        "persons": "SELECT * FROM person_index ORDER BY person_id",
        "quarantine": "SELECT source, source_record_id, reason FROM quarantine ORDER BY 1, 2",
        "history": "SELECT old_person_id, new_person_id, change FROM person_id_history "
        "ORDER BY 1, 2, 3",
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = {name: pd.read_sql(sa.text(q), conn) for name, q in queries.items()}
            for name in whole or WHOLE_TABLES:
                frame = pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn)
                found[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
            return found
    finally:
        engine.dispose()


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def _decide_first_queued(url: str) -> tuple[tuple[str, str], tuple[str, str]]:
    queue = _tables(url)["review"]
    assert len(queue), "the generated data gave no pair to review"
    row = queue.iloc[0]
    pair = (
        (row["left_source"], row["left_source_record_id"]),
        (row["right_source"], row["right_source_record_id"]),
    )
    code, _ = _cli(
        "review", "decide", *(f"{s}/{r}" for s, r in pair), "--no-link",
        "--reviewer", "A. Reviewer", "--reason", "different people", "--database", url,
    )  # fmt: skip
    assert code == 0
    return pair


@pytest.fixture(scope="module", autouse=True)
def pseudonym_key() -> Iterator[None]:
    """One key for every run, so analyst tables of two runs can be compared; and the model
    kept however much a few hundred records change (change_sources changes at least one
    record of each kind per file: more than kept.RETRAIN_SHARE of so few), so that the
    incremental runs here apply a kept model."""
    key = lasting_pseudonym_key("incremental-tests-key-not-a-secret")
    with key, pytest.MonkeyPatch.context() as patch:
        patch.setattr(kept_module, "RETRAIN_SHARE", 0.9)
        yield


def _one_way(database: Path) -> None:
    """Half the relationships the generator declares both ways, declared one way only (as a
    case management system may hold them), so that the index lists their other side."""
    with sqlite3.connect(database) as db:
        db.execute(
            "DELETE FROM relationships WHERE rowid % 2 = 0 AND person_id > related_person_id"
        )
    db.close()


@pytest.fixture(scope="module")
def reruns(tmp_path_factory: pytest.TempPathFactory) -> Reruns:
    from care_etl.synthetic.generate import generate

    work = tmp_path_factory.mktemp("incremental")
    inc, full = work / "inc", work / "full"
    generate(inc / "sources", people=PEOPLE, seed=11, scans=0)
    _one_way(inc / "sources" / "social_care" / "case_management.db")
    _run(inc)
    decided = _decide_first_queued(_url(inc))
    change_sources(inc / "sources", share=0.05, seed=3)
    _copy(inc, full)
    return Reruns(_run(inc), _run(full), _url(inc), _url(full), decided)


def test_the_rerun_is_incremental_and_reuses_most_pairs(reruns: Reruns):
    facts = reruns.incremental.incremental
    assert facts["run_mode"] == "incremental"
    assert facts["records_new_or_changed"] > 0
    assert facts["pairs_compared"] > 0
    assert facts["pairs_reused"] > 4 * facts["pairs_compared"]
    assert facts["publish_mode"] == "changed persons only"
    assert 0 < facts["persons_rewritten"] < facts["persons_kept"]
    assert reruns.full.incremental["run_mode"] == "full"
    assert reruns.full.incremental["pairs_reused"] == 0
    whole = reruns.full.incremental  # no publish signatures in its cache: written whole
    assert whole["publish_mode"] == "every table whole"
    assert (whole["persons_rewritten"], whole["persons_kept"]) == (
        reruns.full.figures["persons"],
        0,
    )
    # Both applied the model the first run trained (kept, with the changes counted).
    for folder in (reruns.inc_url, reruns.full_url):
        model = Path(folder.removeprefix("sqlite:///")).parent / FOLDER / MODEL_FILE
        with np.load(model, allow_pickle=False) as stored:
            assert '"changed": 0' not in str(stored["meta"])
    assert reruns.full.incremental["publish_mode"] == "every table whole"


def test_incremental_and_full_reruns_give_the_same_index(reruns: Reruns):
    incremental, full = _tables(reruns.inc_url), _tables(reruns.full_url)
    assert (~incremental["person_address"]["is_current"].astype(bool)).any()  # former ones
    for name in incremental:
        pd.testing.assert_frame_equal(incremental[name], full[name], obj=name)

    def figures(outcome: RunOutcome) -> dict:
        return {k: v for k, v in outcome.figures.items() if k != "generated_at"}

    assert figures(reruns.incremental) == figures(reruns.full)


def test_nothing_read_is_lost_in_an_incremental_run(reruns: Reruns):
    tables = _tables(reruns.inc_url)
    placed = pd.concat([tables["links"], tables["quarantine"]])[["source", "source_record_id"]]
    assert not placed.duplicated().any()
    for source, f in reruns.incremental.figures["sources"].items():
        assert f["records_read"] == (
            f["records_linked"] + f["records_quarantined"] + f["records_withdrawn"]
        ), source


def test_a_reviewer_decision_holds_in_an_incremental_run(reruns: Reruns):
    tables = _tables(reruns.inc_url)
    engine = sa.create_engine(reruns.inc_url)
    with engine.connect() as conn:
        decision = store.decisions(conn, status=None).iloc[-1]
    engine.dispose()
    queued = set(store.pair_keys(tables["review"]))
    person = dict(
        zip(
            zip(tables["links"]["source"], tables["links"]["source_record_id"], strict=True),
            tables["links"]["person_id"],
            strict=True,
        )
    )
    a, b = reruns.decided
    if decision["status"] == store.ACTIVE:  # both records unchanged: the decision holds
        assert store.pair_key(a, b) not in queued
        assert person[a] != person[b]
    else:  # a record changed or went: the pair is for a person to look at again
        assert decision["status"] == store.STALE


def test_full_flag_and_a_changed_contract_force_a_full_run(tmp_path: Path):
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "sources", people=120, seed=5, scans=0)
    args = ["run", "--sources", str(tmp_path / "sources"), "--database", _url(tmp_path)]
    args += ["--reports", str(tmp_path / "reports")]
    first = _cli(*args)[1]
    assert first.count("run: full (no previous state)") == 1
    assert ": trained (no kept model)" in first
    again = _cli(*args)[1]
    assert "run: incremental" in again
    assert ": kept (0 records changed" in again  # the same sources: the model is applied
    forced = _cli(*args, "--full")[1]
    assert "run: full (--full)" in forced and ": trained (no kept model)" in forced
    assert "run: incremental" in _cli(*args)[1]
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    contract = contracts / "paper_referrals.yaml"
    contract.write_text(contract.read_text(encoding="utf-8") + "\n# reviewed\n", encoding="utf-8")
    outcome = _run(tmp_path, contracts=contracts)
    assert outcome.incremental["run_mode"] == "full"
    assert "contracts" in outcome.incremental["run_mode_reason"]
    assert _run(tmp_path, contracts=contracts).incremental["run_mode"] == "incremental"


def test_a_failed_run_leaves_the_index_and_a_cache_the_next_run_can_trust(tmp_path: Path):
    from care_etl.synthetic.generate import generate

    inc = tmp_path / "inc"
    generate(inc / "sources", people=150, seed=8, scans=0)
    _run(inc)
    before = _tables(_url(inc))
    change_sources(inc / "sources", share=0.05, seed=4)
    engine = sa.create_engine(_url(inc))
    with engine.begin() as conn:  # publishing fails inside its transaction
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON person_index "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(CareEtlError, match="publishing the index failed"):
        _run(inc)
    after = _tables(_url(inc))
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    assert (inc / FOLDER).is_dir()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse"))
    engine.dispose()
    _copy(inc, tmp_path / "full")
    again = _run(inc)
    assert again.incremental["run_mode"] == "incremental"
    _run(tmp_path / "full")
    incremental, full = _tables(_url(inc)), _tables(_url(tmp_path / "full"))
    for name in incremental:
        pd.testing.assert_frame_equal(incremental[name], full[name], obj=name)


def test_full_empties_a_cache_folder_that_is_a_link(tmp_path: Path):
    """An operator moves the cache to a bigger disk and links it back: `--full` must still
    empty it (it left a link alone, so the run read the old state and kept the model)."""
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "sources", people=120, seed=13, scans=0)
    _run(tmp_path)
    elsewhere = tmp_path / "bigger_disk" / "cache"
    shutil.move(tmp_path / FOLDER, elsewhere)
    (tmp_path / FOLDER).symlink_to(elsewhere, target_is_directory=True)
    assert _run(tmp_path).incremental["run_mode"] == "incremental"  # the link is followed
    forced = _run(tmp_path, full=True).incremental
    assert (forced["run_mode"], forced["model"]) == ("full", "trained")
    assert forced["pairs_reused"] == 0
    assert (tmp_path / FOLDER).is_symlink()  # the link stays, and the next run uses it
    assert _run(tmp_path).incremental["run_mode"] == "incremental"


def test_full_stops_when_it_cannot_delete_the_cache(tmp_path: Path):
    """A cache folder made read-only: `--full` cannot delete it, and it said nothing and ran
    incrementally with the kept model, while the summary said `run: full (--full)`. It now
    stops before the run, naming the folder, and the index stays as it was."""
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "sources", people=120, seed=14, scans=0)
    _run(tmp_path)
    before = _tables(_url(tmp_path))
    refused = pytest.raises(CareEtlError, match=r"--full: cannot delete .*\.care_etl_cache")
    with _undeletable(tmp_path / FOLDER), refused:
        _run(tmp_path, full=True)
    for name, frame in _tables(_url(tmp_path)).items():
        pd.testing.assert_frame_equal(before[name], frame, obj=name)


@contextmanager
def _undeletable(folder: Path) -> Iterator[None]:
    """The folder's entries cannot be deleted: read-only for a user, immutable (chattr) for
    root, who may delete in a read-only folder; skipped where neither can be had."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif shutil.which("chattr") and not subprocess.run(["chattr", "+i", str(folder)]).returncode:
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("no way to make a folder read-only here (root without chattr)")
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize("damage", ["cut short", "empty"])
def test_a_damaged_cache_file_is_set_aside_not_fatal(tmp_path: Path, damage: str):
    """A cache file cut short (a power cut before the file system wrote it out, a restore
    that ran out of space) raises EOFError or BadZipFile from numpy, neither an OSError nor
    a ValueError: every reader must treat it as no cache, as it does an unreadable one."""
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "sources", people=120, seed=12, scans=0)
    _run(tmp_path)
    before = _tables(_url(tmp_path))
    damaged = sorted((tmp_path / FOLDER).glob("*.npz"))  # manifest.json kept: pairs are read
    assert {p.name for p in damaged} >= {MODEL_FILE, "pairs.npz", "index_state.npz"}
    for path in damaged:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "cut short" else b"")
    outcome = _run(tmp_path)
    assert outcome.incremental["run_mode"] == "incremental"
    assert outcome.incremental["pairs_reused"] == 0  # the pair cache was set aside
    after = _tables(_url(tmp_path))
    for name in ("links", "persons", "history"):  # the same sources: the same persons and ids
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    again = _run(tmp_path)  # and the cache the run wrote in their place serves the next
    assert again.incremental["pairs_compared"] == 0


def test_an_incremental_run_on_postgresql_matches_a_full_one(postgres_url: str, tmp_path: Path):
    """The person-by-person publish on PostgreSQL gives what a full run gives on SQLite."""
    from care_etl.synthetic.generate import generate

    pg, lite = tmp_path / "pg", tmp_path / "lite"
    generate(pg / "sources", people=150, seed=9, scans=0)
    shutil.copytree(pg / "sources", lite / "sources")

    def run_pg() -> RunOutcome:
        return run_pipeline(pg / "sources", CONTRACTS_DIR, postgres_url, pg / "reports")

    run_pg()
    _run(lite, full=True)
    for folder in (pg, lite):
        change_sources(folder / "sources", share=0.05, seed=6)
    outcome = run_pg()
    assert outcome.incremental["run_mode"] == "incremental"
    assert outcome.incremental["publish_mode"] == "changed persons only"
    _only_the_model(lite)  # a full recomputation applying the model both first runs trained
    _run(lite)
    whole = ("person_field_value", "household")
    on_pg, on_lite = _tables(postgres_url, whole), _tables(_url(lite), whole)
    for name in ("links", "persons", "review", *whole):
        pd.testing.assert_frame_equal(_plain(on_pg[name]), _plain(on_lite[name]), obj=name)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text, as both databases give them (dates, booleans, nulls), sorted."""

    def text(value: object) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, bool):
            return str(int(value))
        return str(value)

    out = frame.astype(object).map(text)
    return out.sort_values(list(out.columns)).reset_index(drop=True)


def test_people_of_a_file_missing_for_one_run_get_their_ids_back(tmp_path: Path):
    """A practice's extract that did not arrive one month retires the people only it knows;
    when it is back they get their ids again (person_id_history: retired, then reinstated),
    where they were given new ids that nothing led the old ones to."""
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "sources", people=400, seed=21, scans=0)
    _run(tmp_path)
    before = _tables(_url(tmp_path))["links"].set_index(["source", "source_record_id"])
    extract = sorted((tmp_path / "sources" / "health").glob("*.csv"))[0]
    shutil.move(extract, tmp_path / "aside.csv")
    _run(tmp_path)
    shutil.move(tmp_path / "aside.csv", extract)
    _run(tmp_path)
    tables = _tables(_url(tmp_path))
    after = tables["links"].set_index(["source", "source_record_id"])
    assert after.index.equals(before.index)
    assert (after["person_id"] == before["person_id"]).all()
    changes = tables["history"].groupby("change").size().to_dict()
    assert changes.get("retired", 0) > 0
    assert changes.get("reinstated") == changes["retired"]


def test_a_person_whose_id_was_minted_for_a_record_since_gone_gets_it_back_after_a_missing_file(
    tmp_path: Path,
):
    """Their id came from their smallest record, removed since; they kept it on their other
    record, whose practice's file then missed a run. Back, no cluster is named after the id:
    the record's departure, noted with the id it held, brings it back (reinstated)."""
    from care_etl.synthetic.generate import generate
    from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows

    generate(tmp_path / "sources", people=400, seed=7, scans=0)
    _run(tmp_path)
    links = _tables(_url(tmp_path))["links"]
    gp = links[links["source"] == "health_gp_registrations"]
    two = gp.groupby("person_id")["source_record_id"].agg(sorted)
    two = two[two.map(lambda r: len(r) == 2 and len({k.split(":")[0] for k in r}) == 2)]
    person_id, (first, second) = two.index[0], two.iloc[0]
    assert (links["person_id"] == person_id).sum() == 2  # a person of these two records only
    practice, patient = first.split(":")
    path = tmp_path / "sources" / "health" / f"gp_registrations_{practice}.csv"
    rows, encoding = read_csv_rows(path)
    write_csv_rows(path, [r for r in rows if r[0] != patient], encoding)
    _run(tmp_path)
    extract = tmp_path / "sources" / "health" / f"gp_registrations_{second.split(':')[0]}.csv"
    shutil.move(extract, tmp_path / "aside.csv")
    _run(tmp_path)
    shutil.move(tmp_path / "aside.csv", extract)
    _run(tmp_path)
    tables = _tables(_url(tmp_path))
    now = tables["links"].set_index(["source", "source_record_id"])["person_id"]
    assert now[("health_gp_registrations", second)] == person_id
    history = tables["history"]
    mine = history[history["old_person_id"] == person_id]["change"].tolist()
    assert sorted(mine) == ["reinstated", "retired"]
