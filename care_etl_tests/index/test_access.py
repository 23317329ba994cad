"""Who looked at whom: household, person and find log every person they show, before they show
it; a log that cannot be written shows nothing; the log is kept six years, then retention
deletes it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.contracts import load_contracts
from care_etl.index import retention
from care_etl.index.access import ACCESS_LOG_YEARS, access_log
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.index.test_households import _read
from care_etl_tests.index.test_publish import publish_small_index, small_index

pytestmark = pytest.mark.slow


@pytest.fixture
def index_copy(generated_run: dict, tmp_path: Path) -> str:
    """A copy of the shared index, so that the log starts empty and can be aged."""
    source = Path(generated_run["url"].removeprefix("sqlite:///"))
    shutil.copy(source, tmp_path / "index.db")
    url = f"sqlite:///{tmp_path / 'index.db'}"
    with sa.create_engine(url).begin() as conn:
        access_log.drop(conn, checkfirst=True)
    return url


def _log(url: str) -> pd.DataFrame:
    return _read(url, "SELECT * FROM access_log ORDER BY access_id")


def test_each_command_logs_every_person_it_shows_and_no_value(index_copy, capsys):
    home = _read(
        index_copy,
        "SELECT person_id, member_person_id FROM household_members ORDER BY person_id LIMIT 1",
    ).iloc[0]
    assert main(["household", home["person_id"], "--database", index_copy]) == 0
    shown = capsys.readouterr().out
    log = _log(index_copy)
    assert set(log["command"]) == {"household"}
    assert {home["person_id"], home["member_person_id"]} <= set(log["person_id"])
    assert all(p in shown for p in log["person_id"])  # whom it logged, it showed
    assert set(log.columns) == {
        "access_id", "accessed_at", "command", "person_id", "os_user", "database_user", "detail"
    }  # fmt: skip
    assert log["os_user"].str.len().min() > 0

    assert main(["person", home["member_person_id"], "--database", index_copy]) == 0
    assert main(["find", "--name", "Nobody Atall", "--database", index_copy]) == 1
    log = _log(index_copy)
    person, search = log.iloc[-2], log.iloc[-1]
    assert (person["command"], person["person_id"]) == ("person", home["member_person_id"])
    assert search["command"] == "find" and search["person_id"] is None  # someone looked
    assert search["detail"] == "by name: 0 found"  # the fields searched, never the values


def test_review_show_logs_the_persons_of_the_pair_it_shows(index_copy, capsys):
    pair = _read(index_copy, "SELECT pair_key FROM review_queue ORDER BY pair_key LIMIT 1")
    if pair.empty:
        pytest.fail("the generated sources gave no pair to review")
    assert main(["review", "show", pair["pair_key"][0], "--database", index_copy]) == 0
    log = _log(index_copy)
    assert set(log["command"]) == {"review show"}
    assert set(log["detail"]) == {f"pair {pair['pair_key'][0]}"}
    assert log["person_id"].notna().all() and 1 <= len(log) <= 2


def test_the_log_is_kept_six_years_then_retention_deletes_it(index_copy):
    assert main(["find", "--postcode", "E1 1AA", "--database", index_copy]) in (0, 1)
    assert main(["person", _read(index_copy, "SELECT person_id FROM person_index LIMIT 1")
                 ["person_id"][0], "--database", index_copy]) == 0  # fmt: skip
    old = dt.datetime.now() - dt.timedelta(days=round(365.25 * ACCESS_LOG_YEARS) + 2)
    engine = sa.create_engine(index_copy)
    with engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(access_log.c.access_id))).scalar_one()
        conn.execute(
            access_log.update().where(access_log.c.access_id == first).values(accessed_at=old)
        )
        total = conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar_one()
        found = retention.survey(conn, load_contracts(CONTRACTS_DIR), retention.utcnow())
        (item,) = [i for i in found.items if i.store == "access_log"]
        assert (item.held, item.past) == (total, 1)
        retention.apply(conn, found, "test")
    with engine.connect() as conn:
        left = [r[0] for r in conn.execute(sa.select(access_log.c.access_id))]
        logged = conn.execute(
            sa.select(retention.retention_log.c.deleted, retention.retention_log.c.detail)
            .where(retention.retention_log.c.store == "access_log")
        ).all()  # fmt: skip
    engine.dispose()
    assert first not in left and len(left) == total - 1
    assert [tuple(r) for r in logged] == [(1, f"older than {ACCESS_LOG_YEARS} years")]


@pytest.mark.postgres
def test_a_user_who_may_read_but_not_log_is_shown_nothing(postgres_url, capsys):
    publish_small_index(postgres_url, small_index(3), "run-1")
    person_id = _read(postgres_url, "SELECT person_id FROM person_index LIMIT 1")["person_id"][0]
    assert main(["person", person_id, "--database", postgres_url]) == 0  # creates the log
    capsys.readouterr()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP ROLE IF EXISTS care_etl_test_reader"))
        conn.execute(sa.text("CREATE ROLE care_etl_test_reader LOGIN"))
        conn.execute(sa.text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO care_etl_test_reader"))
    reader = sa.make_url(postgres_url).set(username="care_etl_test_reader", password=None)
    try:
        code = main(["person", person_id, "--database", reader.render_as_string(False)])
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        assert "person: not shown: the access could not be logged" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP OWNED BY care_etl_test_reader"))
            conn.execute(sa.text("DROP ROLE care_etl_test_reader"))
        engine.dispose()
