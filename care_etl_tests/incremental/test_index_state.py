"""An incremental index build (only the affected persons rebuilt) publishes what a full one does.

Small hand-made records, so that each case names the cross-person dependency it exercises:
a shared household, a UPRN known from another person's record, a tenancy's lead, removed
records. Each case publishes a first index, changes the records, then publishes once
incrementally and once whole (on a copy of the first index) and compares every table.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.incremental.index import STATE_FILE, Bands, IndexState
from care_etl.index.stage import make_index, publish_index
from care_etl_tests.incremental.environment import BUILT_TABLES, lasting_pseudonym_key

TABLES = BUILT_TABLES
HOUSING, GP = "housing_tenancies", "health_gp_registrations"


@pytest.fixture(autouse=True)
def pseudonym_key() -> Iterator[None]:
    with lasting_pseudonym_key("index-state-tests-key-not-a-secret"):
        yield


def _record(source, rid, person, given, address, postcode, uprn=None, role=None, dob="1980-05-01"):
    return {
        "source": source,
        "source_record_id": rid,
        "person": person,
        "given_name": given,
        "family_name": "Okafor",
        "date_of_birth": pd.Timestamp(dob),
        "sex": "F",
        "address": address,
        "postcode": postcode,
        "uprn": uprn,
        "relationship_to_head": role,
        "recorded_on": "2024-01-01",
    }


def _first() -> list[dict]:
    """Two tenancies and a GP practice's view of the same people, and bystanders."""
    return [
        _record(HOUSING, "H1", "P1", "Ada", "Flat 1, 2 Mill Road", "E8 1AA", "100", "Lead tenant"),
        _record(HOUSING, "H2", "P2", "Ben", "Flat 1, 2 Mill Road", "E8 1AA", "100", "Son"),
        _record(HOUSING, "H3", "P3", "Cy", "Flat 1, 2 Mill Road", "E8 1AA", "100", "Lodger"),
        _record(GP, "G1", "P1", "Ada", "Flat 1, 2 Mill Road", "E8 1AA"),
        _record(GP, "G4", "P4", "Dee", "7 Oak Lane", "E8 2BB"),  # UPRN known from H5
        _record(HOUSING, "H5", "P5", "Eve", "7 Oak Lane", "E8 2BB", "200", "Lead tenant"),
        _record(GP, "G6", "P6", "Fay", "9 Elm Street", "E8 3CC", dob="1950-01-01"),
        _record(GP, "G7", "P7", "Gus", "9 Elm Street", "E8 3CC", dob="1951-01-01"),
        _record(GP, "G8", "P8", "Hal", "12 Ash Close", "E9 4DD", dob="1990-01-01"),
        # Ben has moved on since (a later record): he lives with Ivo, who shares nothing else
        {**_record(GP, "G2", "P2", "Ben", "5 Birch Way", "E8 6FF"), "recorded_on": "2025-02-01"},
        _record(GP, "G9", "P9", "Ivo", "5 Birch Way", "E8 6FF"),
    ] + [  # bystanders, so that a change touches under MAX_SHARE of the persons
        _record(GP, f"B{i}", f"Q{i}", f"Iva{i}", f"{i} Yew Road", "E5 5EE") for i in range(40)
    ]


def _inputs(rows: list[dict]) -> tuple[list, SimpleNamespace]:
    frame = pd.DataFrame(rows)
    probability = frame["probability"] if "probability" in frame.columns else 0.99
    records = frame.drop(columns=["person", "probability"], errors="ignore")
    assignments = pd.DataFrame(
        {
            "source": frame["source"],
            "source_record_id": frame["source_record_id"],
            "person_id": frame["person"],
            "link_type": "probabilistic",
            "match_probability": probability,
        }
    )
    staged = [
        SimpleNamespace(records=records, quarantine=pd.DataFrame(), contract_id="any", declared={})
    ]
    return staged, SimpleNamespace(assignments=assignments, review=pd.DataFrame())


def _publish(url: str, rows: list[dict], run_id: str, state_dir: Path | None):
    staged, linked = _inputs(rows)
    run = make_index(staged, linked, database_url=url, run_id=run_id, state_dir=state_dir)
    publish_index(run, url, run_id=run_id, figures={})
    return run


def _tables(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {n: pd.read_sql(sa.text(f"SELECT * FROM {n}"), conn) for n in TABLES}
    engine.dispose()
    return {n: f.sort_values(list(f.columns)).reset_index(drop=True) for n, f in found.items()}


def _both_ways(tmp_path: Path, changed: list[dict], before: list[dict] | None = None):
    """(incremental run, its tables, the tables of a whole build) after `changed` (the first
    publish: `before`, default _first())."""
    inc, full = tmp_path / "inc.db", tmp_path / "full.db"
    state = tmp_path / "state"
    first = _publish(f"sqlite:///{inc}", before or _first(), "run-1", state)
    assert first.delta is None  # nothing to build on yet: whole
    shutil.copy(inc, full)
    run = _publish(f"sqlite:///{inc}", changed, "run-2", state)
    _publish(f"sqlite:///{full}", changed, "run-2", None)
    return run, _tables(f"sqlite:///{inc}"), _tables(f"sqlite:///{full}")


def _assert_same(incremental: dict, full: dict) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(incremental[name], full[name], obj=name)


def test_a_move_out_of_a_shared_household_rebuilds_the_co_residents(tmp_path: Path):
    rows = _first()
    rows[2] = {**rows[2], "address": "12 Ash Close", "postcode": "E9 4DD", "uprn": None}
    run, incremental, full = _both_ways(tmp_path, rows)
    assert run.delta is not None, "the rerun should have been incremental"
    rebuilt = run.delta.plan.build
    assert {"P1", "P2", "P3", "P8"} <= rebuilt  # old and new household of the lodger
    assert not {"P6", "P7", "P9"} & rebuilt  # other households: kept as published
    _assert_same(incremental, full)
    ben = incremental["household"].set_index("person_id").loc["P2", "address"]
    assert ben == "5 Birch Way"  # rebuilt with his current household, Ivo included
    relations = incremental["relationship"]
    assert not ((relations["person_id"] == "P3") & (relations["related_person_id"] == "P1")).any()


def test_removed_records_and_a_removed_person_leave_nothing_behind(tmp_path: Path):
    rows = [r for r in _first() if r["source_record_id"] not in ("G1", "G7")]
    run, incremental, full = _both_ways(tmp_path, rows)
    assert run.delta is not None
    assert "P7" in run.delta.plan.rewrite and "P7" not in run.delta.plan.build
    _assert_same(incremental, full)
    assert "P7" not in set(incremental["relationship"]["related_person_id"])
    assert (incremental["person_index"].set_index("person_id").loc["P1", "record_count"]) == 1


def test_a_uprn_corrected_on_one_record_moves_another_persons_address_key(tmp_path: Path):
    rows = _first()
    rows[5] = {**rows[5], "uprn": "201"}  # P4's GP record took its UPRN from this one
    run, incremental, full = _both_ways(tmp_path, rows)
    assert run.delta is not None and "P4" in run.delta.plan.build
    _assert_same(incremental, full)
    keys = incremental["person_address"].set_index("person_id")["address_key"]
    assert keys.loc["P4"] == "UPRN:201"


def _with_history(rows: list[dict], at: int, *entries: dict) -> list[dict]:
    """rows with the record at `at` given former addresses (previous_addresses)."""
    rows = [{**r, "previous_addresses": None} for r in rows]
    rows[at] = {**rows[at], "previous_addresses": json.dumps(list(entries))}
    return rows


OAK_LANE = {"address": "7 Oak Lane", "postcode": "E8 2BB", "address_to": "2020-03-31"}


def test_a_change_to_an_address_history_only_rebuilds_the_person(tmp_path: Path):
    """Hal (G8) once lived at 7 Oak Lane; the history gains an entry: only his rows move, and
    the former address is listed, not current, and not his household."""
    before = _with_history(_first(), 8, OAK_LANE)
    elm = {"address": "9 Elm Street", "postcode": "E8 3CC", "address_from": "2001-02-03"}
    rows = _with_history(_first(), 8, OAK_LANE, elm)
    run, incremental, full = _both_ways(tmp_path, rows, before)
    assert run.delta is not None and "P8" in run.delta.plan.build
    assert not {"P4", "P5", "P6", "P7"} & run.delta.plan.build  # former: not co-residents
    _assert_same(incremental, full)
    hal = incremental["person_address"].set_index("person_id").loc[["P8"]]
    assert hal["is_current"].astype(bool).tolist().count(True) == 1
    former = hal[~hal["is_current"].astype(bool)].set_index("address")
    assert former.loc["7 Oak Lane", "address_key"] == "UPRN:200"  # known from Eve's tenancy
    assert str(former.loc["7 Oak Lane", "to_date"]) == "2020-03-31"
    assert str(former.loc["9 Elm Street", "from_date"]) == "2001-02-03"
    household = incremental["household"].set_index("person_id")
    assert household.loc["P8", "address"] == "12 Ash Close"
    assert not (incremental["relationship"]["person_id"] == "P8").any()


def test_a_uprn_corrected_elsewhere_moves_a_former_address_key(tmp_path: Path):
    """Hal's former address takes its UPRN from Eve's tenancy: correcting it there rebuilds
    Hal (his record unchanged) though he lives elsewhere now."""
    before = _with_history(_first(), 8, OAK_LANE)
    rows = _with_history(_first(), 8, OAK_LANE)
    rows[5] = {**rows[5], "uprn": "201"}
    run, incremental, full = _both_ways(tmp_path, rows, before)
    assert run.delta is not None and "P8" in run.delta.plan.build
    _assert_same(incremental, full)
    hal = incremental["person_address"].set_index("person_id").loc[["P8"]]
    assert "UPRN:201" in set(hal.loc[~hal["is_current"].astype(bool), "address_key"])


def test_a_newer_record_date_renews_the_evidence_only_for_its_person(tmp_path: Path):
    """Hal's GP record is dated anew: his household row's evidence moves with it, and the
    incremental build gives what a whole one does."""
    rows = _first()
    rows[8] = {**rows[8], "recorded_on": "2026-01-02"}
    run, incremental, full = _both_ways(tmp_path, rows)
    assert run.delta is not None and "P8" in run.delta.plan.build
    assert not {"P1", "P6", "P7"} & run.delta.plan.build
    _assert_same(incremental, full)
    evidence = incremental["household"].set_index("person_id")
    assert str(evidence.loc["P8", "last_evidence_on"]) == "2026-01-02"
    assert str(evidence.loc["P6", "last_evidence_on"]) == "2024-01-01"
    assert evidence.loc["P8", "evidence_sources"] == GP


def test_a_merge_of_two_persons_is_rebuilt_under_the_surviving_id(tmp_path: Path):
    rows = _first()
    rows[7] = {**rows[7], "person": "P6"}  # linkage now puts Gus's record with Fay's
    run, incremental, full = _both_ways(tmp_path, rows)
    assert run.delta is not None
    _assert_same(incremental, full)
    assert "P7" not in set(incremental["person_index"]["person_id"])


def test_an_age_band_that_moves_overnight_marks_the_person_changed():
    today = dt.date(2026, 11, 26)
    persons = pd.DataFrame(
        {
            "person_id": ["A", "B", "C"],
            "date_of_birth": [pd.Timestamp("2008-11-27"), pd.Timestamp("2000-01-01"), None],
        }
    )
    bands = Bands.of(persons, today)
    assert list(bands.moved(today)) == []
    assert list(bands.moved(today + dt.timedelta(days=1))) == ["A"]  # turns 18


def test_a_state_written_for_another_publish_is_not_used(tmp_path: Path):
    url, state = f"sqlite:///{tmp_path / 'index.db'}", tmp_path / "state"
    _publish(url, _first(), "run-1", state)
    _publish(url, _first(), "run-elsewhere", None)  # published without updating the state
    rows = _first()
    rows[2] = {**rows[2], "given_name": "Cyrus"}
    run = _publish(url, rows, "run-2", state)
    assert run.delta is None  # built and published whole
    _publish(url, rows, "run-3", state)
    again = _publish(url, rows, "run-4", state)
    assert again.delta is not None and again.delta.plan.build == set()  # nothing changed


def test_link_rows_are_updated_only_where_lineage_or_probability_moved(tmp_path: Path):
    """A removed row renumbers the lineage of the rows after it, a model estimated again moves
    probabilities: those rows are updated in place, their persons are not rebuilt."""

    def numbered(rows: list[dict]) -> list[dict]:
        return [{**r, "lineage": f"gp.csv row {n}", "probability": 0.99}
                for n, r in enumerate(rows, start=2)]  # fmt: skip

    first, url = numbered(_first()), f"sqlite:///{tmp_path / 'inc.db'}"
    state = tmp_path / "state"
    _publish(url, first, "run-1", state)
    shutil.copy(tmp_path / "inc.db", tmp_path / "full.db")
    kept = [r for r in _first() if r["source_record_id"] != "B10"]  # renumbers B11..B39
    changed = numbered([*kept, _record(GP, "B40", "Q40", "Iva40", "40 Yew Road", "E5 5EE")])
    changed[3] = {**changed[3], "probability": 0.97}  # G1: Ada's GP record, analyst row too
    run = _publish(url, changed, "run-2", state)
    _publish(f"sqlite:///{tmp_path / 'full.db'}", changed, "run-2", None)
    assert run.delta is not None
    assert not {"Q11", "Q20", "P1"} & run.delta.plan.build  # only their link rows moved
    counts = run.delta.counts
    assert (counts["links_updated"], counts["links_inserted"], counts["links_deleted"]) == (
        30,
        1,
        1,
    )
    assert (counts["analyst_links_updated"], counts["analyst_links_inserted"]) == (1, 1)
    # B11..B39 only moved a row: their lineage alone is set; G1's probability moved too
    psl = run.delta.plan.links["person_source_link"]
    assert len(psl.update_rest) == 29 and list(psl.update) == [f"{GP}\x1fG1"]
    assert counts["analyst_links_deleted"] == 1
    _assert_same(_tables(url), _tables(f"sqlite:///{tmp_path / 'full.db'}"))
    links = _tables(url)["person_source_link"].set_index("source_record_id")
    assert (
        links.loc["B11", "lineage"] == "gp.csv row 23"
        and links.loc["G1", "match_probability"] == 0.97
    )


def test_pseudonyms_kept_in_the_state_are_those_of_the_current_key(tmp_path: Path):
    """The state keeps each record's and person's pseudonym; a rerun takes them from there,
    and under another key the state is not used, so every pseudonym is computed again."""
    from care_etl.index.analyst import pseudonym

    url, state = f"sqlite:///{tmp_path / 'index.db'}", tmp_path / "state"
    first = _publish(url, _first(), "run-1", state)
    records, persons = first.state.kept_pseudonyms(first.state.facts)
    key = b"index-state-tests-key-not-a-secret"
    where = list(first.state.facts.keys).index(f"{GP}\x1fG1")
    assert records[where] == pseudonym(key, "record", f"{GP}|G1")
    assert persons[where] == pseudonym(key, "person", "P1")
    rows = _first()
    rows[2] = {**rows[2], "given_name": "Cyrus"}
    again = _publish(url, rows, "run-2", state)
    assert again.delta is not None
    assert list(again.state.record_pseudonyms) == list(first.state.record_pseudonyms)
    with lasting_pseudonym_key("another-key-not-a-secret"):
        run = _publish(url, _first(), "run-3", state)
    assert run.delta is None  # another key: built whole, every pseudonym computed again
    records, persons = run.state.kept_pseudonyms(run.state.facts)
    assert persons[where] == pseudonym(b"another-key-not-a-secret", "person", "P1")


def test_link_tables_are_written_whole_on_postgresql_when_most_rows_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """On PostgreSQL updating most rows one by one is slower than replacing the table: the
    link tables are then written whole, and still hold what a full build gives."""
    from care_etl.index import stage

    monkeypatch.setattr(stage, "is_production", lambda url: True)  # SQLite standing in
    monkeypatch.setattr(stage, "LINK_UPDATE_MAX_SHARE", 0.0)  # any change is "most"
    rows = _first()
    rows[2] = {**rows[2], "given_name": "Cyrus"}
    run, incremental, full = _both_ways(tmp_path, rows[:-1])
    assert run.delta is not None and run.delta.plan.links == {
        "person_source_link": None,
        "analyst_person_source_link": None,
    }
    assert run.delta.counts["analyst_person_source_link_written_whole"] == 1
    _assert_same(incremental, full)


def test_age_bands_computed_by_whole_arrays_are_those_of_age_band():
    from care_etl.incremental.index import _bands
    from care_etl.index.analyst import age_band

    days = pd.date_range("1900-01-01", "2030-12-31", freq="37D")
    dob = np.array(["", "1984-02-29", "2024-02-29", *(d.date().isoformat() for d in days)])
    for today in (dt.date(2026, 11, 26), dt.date(2024, 2, 29), dt.date(2025, 2, 28)):
        want = [(age_band(str(d), today) or "") if d else "" for d in dob]
        assert _bands(dob, today, age_band).tolist() == want


def test_a_state_of_an_older_release_is_set_aside_in_words(tmp_path: Path, caplog) -> None:
    np.savez(tmp_path / STATE_FILE, run_id=np.array(["r1"]))  # no facts: an older layout
    with caplog.at_level(logging.INFO, logger="care_etl.incremental.index"):
        assert IndexState.load(tmp_path, f"sqlite:///{tmp_path / 'i.db'}", "any") is None
    assert "older release" in caplog.text and "unreadable" not in caplog.text

    (tmp_path / STATE_FILE).write_bytes(b"not a state")  # damaged: a warning
    with caplog.at_level(logging.INFO, logger="care_etl.incremental.index"):
        assert IndexState.load(tmp_path, f"sqlite:///{tmp_path / 'i.db'}", "any") is None
    assert "unreadable" in caplog.text


def test_the_code_that_builds_the_index_is_in_its_state_key() -> None:
    """Every module of the index package the index stage loads, the tables it writes
    (publish.py) among them, and the reader of the declared relationships it builds on
    (sources/declared.py), is folded into the state's fingerprint: a change to any of them
    builds the index whole."""
    import sys

    import care_etl
    from care_etl.incremental.index import INDEX_MODULES

    package = Path(care_etl.__file__).parent
    keyed = {p.relative_to(package).as_posix() for m in INDEX_MODULES for p in package.glob(m)}
    loaded = {
        name.removeprefix("care_etl.").replace(".", "/") + ".py"
        for name in sys.modules
        if name.startswith("care_etl.index.")
    }
    assert {"index/publish.py", "index/stage.py"} <= loaded <= keyed
    assert "sources/declared.py" in keyed


def test_a_whole_build_that_replaces_person_index_whole_counts_every_person_rewritten(
    tmp_path: Path,
):
    """A whole build (no index state) publishes through the signatures of the last publish
    (delta.PublishDelta): tables with few persons changed are written by person, a table with
    more than MAX_SHARE of them is replaced whole. When person_index was among those replaced
    whole, the counts said `persons_rewritten` 0 and no `persons_kept` (the run's metadata:
    "changed persons only", 0 persons rewritten), where every person was written again."""
    from care_etl.incremental.delta import PublishDelta

    url, state = f"sqlite:///{tmp_path / 'index.db'}", tmp_path / "state"

    def whole(rows: list[dict], run_id: str) -> tuple[PublishDelta, int]:
        staged, linked = _inputs(rows)
        run = make_index(staged, linked, database_url=url, run_id=run_id, state_dir=None)
        delta = PublishDelta.load(state)
        publish_index(run, url, run_id=run_id, figures={}, delta=delta)
        return delta, len(run.tables.person_index)

    whole(_first(), "run-1")
    renamed = [{**r, "given_name": r["given_name"] + "a"} for r in _first()]  # every person
    delta, persons = whole(renamed, "run-2")
    assert delta.used  # households, addresses: unchanged, written by person
    assert (delta.counts["persons_rewritten"], delta.counts["persons_kept"]) == (persons, 0)
