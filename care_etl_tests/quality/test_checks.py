"""The contract's checks, run by GX on generated feeds; the gate that blocks a bad feed."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from care_etl.contracts import load_contract
from care_etl.quality.checks import ERROR, WARNING, plan_checks
from care_etl.quality.gate import gate_source
from care_etl.quality.results import RESULT_KEYS
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.quality.feeds import (
    drop_column,
    edit_csv,
    gp_files,
    half_dates_unparseable,
    spoil_every_other,
)

GP = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")


@pytest.fixture(scope="module")
def clean_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small population without scans (paper forms as OCR text), generated once."""
    from care_etl.synthetic.generate import generate

    out = tmp_path_factory.mktemp("quality") / "sources"
    generate(out, people=300, seed=3, scans=0)
    return out


@pytest.fixture
def sources(clean_sources: Path, tmp_path: Path) -> Path:
    """A private copy each test may break."""
    return Path(shutil.copytree(clean_sources, tmp_path / "sources"))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.db'}"


def _gate(sources: Path, db: str, run_id: str, contract=GP):
    return gate_source(read_source(contract, sources), contract, database_url=db, run_id=run_id)


def _failed(staged) -> dict[str, str]:
    return {r["check_name"]: r["severity"] for r in staged.dq_results if not r["success"]}


def test_plans_follow_the_contract():
    plans = {p.name: p for p in plan_checks(GP)}
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in plans)
    for name in (
        "schema_required_columns",
        "not_null__forename",
        "not_null__surname",
        "date_parses__date_of_birth",
        "dob_in_range__date_of_birth",
        "nhs_number_valid__nhs_number",
        "pattern__postcode",
        "unique_record_id",
        "row_count_not_collapsed",
        "row_count_steady",
        "quality__practice_code__practice_code_format",
        "quality__gp_registration__no_duplicate_registrations",
    ):
        assert name in plans, name
    assert plans["unique_record_id"].params["columns"] == ["Practice Code", "Patient ID"]
    # A critical data element's checks are errors; an ordinary column's are warnings.
    assert plans["date_parses__date_of_birth"].severity == ERROR
    assert plans["date_parses__registration_date"].severity == WARNING
    assert plans["quality__sex__sex_coding"].severity == WARNING  # the rule's own severity


def test_a_good_feed_passes_is_accepted_and_its_results_are_stored(sources, db):
    staged = _gate(sources, db, "run-1")
    assert staged.blocked is None and staged.accepted_at
    assert len(staged.records) > 100
    assert [r["check_name"] for r in staged.dq_results] == [p.name for p in plan_checks(GP)]
    assert all(tuple(r) == RESULT_KEYS for r in staged.dq_results)
    assert not [n for n, s in _failed(staged).items() if s == ERROR]
    nhs = next(r for r in staged.dq_results if r["check_name"] == "nhs_number_valid__nhs_number")
    assert nhs["element_count"] == staged.read and 0 <= nhs["unexpected_rate"] < 0.1
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from dq_result where run_id='run-1'"))
        assert stored.scalar() == len(staged.dq_results)
        accepted = conn.execute(sa.text("select run_id, record_count from accepted_source"))
        assert accepted.all() == [("run-1", len(staged.records))]
    engine.dispose()


def test_half_the_dates_unparseable_blocks_the_feed_and_the_last_accepted_stands_in(sources, db):
    good = _gate(sources, db, "run-1")
    half_dates_unparseable(sources)
    blocked = _gate(sources, db, "run-2")
    failed = _failed(blocked)
    assert failed["date_parses__date_of_birth"] == ERROR
    assert blocked.blocked.startswith("Feed blocked:")
    assert "date_parses__date_of_birth" in blocked.blocked
    assert "last accepted version" in blocked.blocked
    # The stand-in is the accepted version, record for record, with this run's results.
    assert list(blocked.records["source_record_id"]) == list(good.records["source_record_id"])
    assert blocked.records["date_of_birth"].equals(good.records["date_of_birth"])
    assert blocked.accepted_at == good.accepted_at
    assert {r["run_id"] for r in blocked.dq_results} == {"run-2"}
    result = next(r for r in blocked.dq_results if r["check_name"] == "date_parses__date_of_birth")
    assert 0.45 < result["unexpected_rate"] < 0.55


def test_a_missing_required_column_stops_the_source(sources, db):
    first, *_ = gp_files(sources)
    drop_column(first, "Surname")
    raw = read_source(GP, sources)
    assert raw.missing_required == ["Surname"]
    message = next(e for e in raw.errors if "missing required" in e)
    assert first.name in message and "Surname" in message and "stands in" in message
    staged = gate_source(raw, GP, database_url=db, run_id="run-1")
    assert _failed(staged)["schema_required_columns"] == ERROR
    assert "required column(s) Surname missing" in staged.blocked
    # Nothing was ever accepted, so the source adds nothing rather than its bad rows.
    assert len(staged.records) == 0 and "No version has passed" in staged.blocked


def test_an_extra_column_is_a_warning_naming_the_contract_change(sources, db):
    first, *_ = gp_files(sources)
    edit_csv(
        first,
        lambda rows: [{**r, "Email": "x"} for r in rows],
        [*GP.person_object.column_names, "Email"],
    )
    raw = read_source(GP, sources)
    [warning] = [w for w in raw.warnings if "unexpected" in w]
    assert first.name in warning and "'Email'" in warning
    assert "schema/gp_registration/properties" in warning and "classification" in warning
    assert _gate(sources, db, "run-1").blocked is None


def test_dates_of_birth_in_the_future_or_over_120_years_ago_fail(sources, db):
    future = (dt.date.today() + dt.timedelta(days=400)).strftime("%d/%m/%Y")
    for path in gp_files(sources):
        edit_csv(path, spoil_every_other("Date of Birth", future))
    staged = _gate(sources, db, "run-1")
    failed = _failed(staged)
    assert failed["dob_in_range__date_of_birth"] == ERROR
    assert "date_parses__date_of_birth" not in failed  # a date in the future still reads


def test_a_collapsed_row_count_blocks_against_the_previous_run(sources, db):
    _gate(sources, db, "run-1")
    for path in gp_files(sources)[1:]:
        path.unlink()
    staged = _gate(sources, db, "run-2")
    failed = _failed(staged)
    assert failed["row_count_not_collapsed"] == ERROR
    assert failed["row_count_steady"] == WARNING
    result = next(r for r in staged.dq_results if r["check_name"] == "row_count_not_collapsed")
    assert result["observed_value"] < staged.read / 2


def test_the_contracts_own_rules_run_with_their_severity(sources, db):
    for path in gp_files(sources):
        edit_csv(path, spoil_every_other("Sex", "Other"))
    staged = _gate(sources, db, "run-1")
    assert _failed(staged) == {"quality__sex__sex_coding": WARNING}
    assert staged.blocked is None  # a warning shows; it does not block
    for path in gp_files(sources):
        edit_csv(
            path, lambda rows: [{**r, "Practice Code": r["Practice Code"].lower()} for r in rows]
        )
    staged = _gate(sources, db, "run-2")
    assert _failed(staged)["quality__practice_code__practice_code_format"] == ERROR
    assert staged.blocked


def test_one_odd_practice_code_shows_without_blocking_the_feed(sources, db):
    """Under one row in a hundred passes (the contract's tolerance): an odd row is not a
    broken extract, and blocking every practice's records for it would hide them all."""
    first = gp_files(sources)[0]
    edit_csv(first, lambda rows: [{**rows[0], "Practice Code": "F8400"}, *rows[1:]])
    staged = _gate(sources, db, "run-1")
    assert staged.blocked is None
    result = next(
        r for r in staged.dq_results
        if r["check_name"] == "quality__practice_code__practice_code_format"
    )  # fmt: skip
    assert result["success"] and result["unexpected_count"] == 1


@pytest.mark.parametrize(
    ("rows", "bad", "blocked"),
    [(3, 1, False), (8, 4, False), (8, 5, True), (3, 3, True), (2, 2, False)],
)
def test_a_small_feed_is_blocked_by_a_share_only_when_five_rows_fail(
    sources, db, rows: int, bad: int, blocked: bool
):
    """One form in a batch of three whose date OCR could not read failed "at least 90% read
    as a date" and blocked the batch: none of the three reached the index. A few odd rows
    are handled one by one; five or more that fail a share still mean a broken extract, as
    does every row of three or more (a new date format)."""
    first, *others = gp_files(sources)
    for path in others:
        path.unlink()
    edit_csv(
        first,
        lambda found: [
            {**row, "Date of Birth": "31/13/1950" if i < bad else "14/03/1961"}
            for i, row in enumerate(found[:rows])
        ],
    )
    staged = _gate(sources, db, "run-1")
    result = next(r for r in staged.dq_results if r["check_name"] == "date_parses__date_of_birth")
    assert not result["success"] and result["unexpected_count"] == bad
    assert (staged.blocked is not None) is blocked
    assert result["severity"] == (ERROR if blocked else WARNING)
    said = [w for w in staged.warnings if "fewer than 5 rows" in w]
    assert len(said) == (0 if blocked else 1)
    if not blocked:  # every row read is in the index's input or in quarantine
        assert len(staged.records) + len(staged.quarantine) == rows


def test_results_and_reasons_carry_no_personal_value(sources, db):
    half_dates_unparseable(sources)
    raw = read_source(GP, sources)
    staged = gate_source(raw, GP, database_url=db, run_id="run-1")
    text = json.dumps(staged.dq_results) + (staged.blocked or "")
    values = {
        str(v)
        for column in ("Surname", "Forename", "NHS Number", "Postcode", "Date of Birth")
        for v in raw.records[column].dropna()
        if len(str(v)) > 3 and str(v) != "not known"
    }
    assert values and not [v for v in values if v in text]


def test_gx_runs_offline_with_analytics_off(sources, monkeypatch):
    from care_etl.quality.expectations import offline_context, run_checks, validation_frame

    def no_network(*args, **kwargs):
        raise AssertionError("GX tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert os.environ["GX_ANALYTICS_ENABLED"] == "False"
    context = offline_context()
    assert type(context).__name__ == "EphemeralDataContext"
    assert context.config.analytics_enabled is False
    assert context.config.progress_bars.globally is False
    raw = read_source(GP, sources)
    results = run_checks(
        plan_checks(GP),
        validation_frame(raw, GP),
        source=GP.id,
        run_id="offline",
        previous_rows=None,
        missing_required=[],
        run_time=dt.datetime(2026, 1, 1),
    )
    assert len(results) == len(plan_checks(GP)) and all(r["success"] for r in results)


def test_results_and_accepted_versions_round_trip_on_postgresql(sources, postgres_url):
    good = _gate(sources, postgres_url, "run-1")
    half_dates_unparseable(sources)
    blocked = _gate(sources, postgres_url, "run-2")
    assert blocked.blocked
    for column in ("source_record_id", "given_name", "date_of_birth", "postcode"):
        assert blocked.records[column].equals(good.records[column]), column
    assert blocked.quarantine.equals(good.quarantine)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select success, severity from dq_result where check_name = :c order by run_time"
            ),
            {"c": "date_parses__date_of_birth"},
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(True, "error"), (False, "error")]


def test_a_table_that_drifts_names_its_missing_and_unexpected_columns(sources, db):
    social = load_contract(CONTRACTS_DIR / "social_care_case_management.yaml")
    engine = sa.create_engine(f"sqlite:///{sources / 'social_care' / 'case_management.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("alter table persons add column email text"))
        conn.execute(sa.text("alter table persons drop column other_names"))
    engine.dispose()
    raw = read_source(social, sources)
    assert raw.missing_required == [] and not raw.errors
    missing = next(w for w in raw.warnings if "missing column" in w)
    assert "table persons" in missing and "'other_names'" in missing
    unexpected = next(w for w in raw.warnings if "unexpected column" in w)
    assert "'email'" in unexpected and "schema/persons/properties" in unexpected
    assert raw.records["other_names"].isna().all() and "email" not in raw.records
    assert _gate(sources, db, "run-1", social).blocked is None


def test_a_stand_in_gains_the_columns_staging_gives_today(sources, db):
    from care_etl.quality.accepted import save_accepted

    good = _gate(sources, db, "run-1")
    good.records = good.records.drop(columns=["uprn"])  # as if accepted before uprn was mapped
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        save_accepted(conn, good, run_id="run-1", rows_checked=good.read)
    engine.dispose()
    half_dates_unparseable(sources)
    blocked = _gate(sources, db, "run-2")
    assert blocked.blocked and "uprn" in blocked.records.columns
    assert blocked.records["uprn"].isna().all() and len(blocked.records) == len(good.records)


def test_a_feed_with_no_readable_rows_is_told_in_plain_words():
    from care_etl.quality.gate import blocked_reason

    plans = plan_checks(GP)
    empty = {
        "check_name": "row_count_not_collapsed",
        "unexpected_rate": None,
        "element_count": None,
        "observed_value": 0.0,
    }
    assert blocked_reason([empty], plans) == (
        "the feed has no rows that could be read (row_count_not_collapsed)"
    )
    shrunk = {**empty, "observed_value": 12.0}
    assert blocked_reason([shrunk], plans).endswith(", but it has 12 (row_count_not_collapsed)")
    # A second reason continues the sentence: "...; the feed has no rows", not "; The".
    unparsed = {
        "check_name": "date_parses__date_of_birth",
        "unexpected_rate": 0.5,
        "element_count": 10,
        "unexpected_count": 5,
        "observed_value": None,
    }
    both = blocked_reason([unparsed, unparsed], plans)
    first, second = both.split("; ")
    assert first[0].isupper() and second == first[0].lower() + first[1:]
