"""Every SQL example in docs/ runs on a demo-sized index, on SQLite and on PostgreSQL, as the
role it names, and gives the same rows on both.

Analysts copy these queries: a renamed column, a dialect slip or an analyst example that needs
a table only engineers may read must fail here rather than in front of them. A ```sql block
names its role on its first line (`-- as: analyst` or `-- as: engineer`); on PostgreSQL it
runs with SET ROLE to that role, as `care-etl roles create` made it. The data engineer's
`sqlite3 ... "SELECT ..."` lines run as the engineer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from care_etl.index.cli import ANALYST_ROLE, ENGINEER_ROLE, create_roles
from care_etl.pipeline import run_pipeline
from care_etl_tests.conftest import CONTRACTS_DIR, PROJECT_DIR, fresh_postgres_database
from care_etl_tests.incremental.environment import lasting_pseudonym_key

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DOCS = PROJECT_DIR / "docs"
KEY = "a key for the docs' queries only"
ROLES = {"analyst": ANALYST_ROLE, "engineer": ENGINEER_ROLE}
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)
SQLITE3_LINE = re.compile(r'^sqlite3 [^"\n]*"(.*?)"', re.S | re.M)
#: A block's line saying it finds what the generated sources never hold (it must still run).
NONE_IN_DEMO = "-- none in the demo"
ROLE_LINE = re.compile(r"\A-- as: (\w+)\n")
DIALECT_LINE = re.compile(r"^-- (SQLite|PostgreSQL)\n", re.M)
#: The example person of "who lives with a person": replaced by one who has a household.
PERSON_ID = re.compile(r"'P[0-9A-F]{12}'")
#: Run times differ between the two builds; a SQLite timestamp is text.
TIMESTAMP_TEXT = re.compile(r"\A\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


@dataclass(frozen=True)
class Example:
    """One query of the docs: where it is, who runs it, its text per dialect."""

    where: str
    role: str
    sqlite: str
    postgresql: str


def _examples() -> list[Example]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for match in SQL_BLOCK.finditer(text):
            found.append(_example(f"{doc.name}:{_line(text, match)}", match.group(1)))
        for match in SQLITE3_LINE.finditer(text):
            where = f"{doc.name}:{_line(text, match)}"
            found.append(Example(where, "engineer", match.group(1), match.group(1)))
    return found


def _line(text: str, match: re.Match) -> int:
    return text.count("\n", 0, match.start()) + 1


def _example(where: str, block: str) -> Example:
    """A ```sql block: its role line, then one query, or one per dialect under `-- SQLite`
    and `-- PostgreSQL`."""
    role = ROLE_LINE.match(block)
    name = role.group(1) if role else "(none)"
    body = block[role.end() :] if role else block
    parts = DIALECT_LINE.split(body)
    if len(parts) == 1:
        return Example(where, name, body, body)
    by_dialect = dict(zip(parts[1::2], parts[2::2], strict=True))
    return Example(where, name, by_dialect.get("SQLite", ""), by_dialect.get("PostgreSQL", ""))


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def sqlite_index(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("docs_sql_sqlite")
    url = f"sqlite:///{work / 'index.db'}"
    with lasting_pseudonym_key(KEY):
        run_pipeline(generated, CONTRACTS_DIR, url, work / "reports")
    return url


@pytest.fixture(scope="module")
def postgres_index(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("docs_sql_postgres")
    with fresh_postgres_database() as url, lasting_pseudonym_key(KEY):
        run_pipeline(generated, CONTRACTS_DIR, url, work / "reports")
        create_roles(url)
        yield url


def _rows(url: str, sql: str, role: str) -> list[tuple]:
    """The query's rows, run as the role on PostgreSQL (SQLite has no roles)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            person = conn.execute(
                sa.text("SELECT MIN(person_id) FROM household_members WHERE date_of_death IS NULL")
            ).scalar_one()
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET ROLE {ROLES[role]}"))
            query = PERSON_ID.sub(f"'{person}'", sql.strip().rstrip(";"))
            return conn.execute(sa.text(query)).all()
    finally:
        engine.dispose()


def _cell(value: object) -> object:
    """A value as both databases can agree on it: numbers to six places, dates as ISO text,
    booleans as 0/1, and run times (which differ between the two builds) left out."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and TIMESTAMP_TEXT.match(value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    return value


def _comparable(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(_cell(v) for v in row) for row in rows), key=repr)


def test_every_sql_block_names_a_role_and_both_dialects():
    assert len(EXAMPLES) >= 15
    for example in EXAMPLES:
        assert example.role in ROLES, f"{example.where}: first line must be -- as: analyst|engineer"
        assert example.sqlite.strip() and example.postgresql.strip(), example.where


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_the_example_runs_on_sqlite_and_postgresql_as_its_role_alike(
    example: Example, sqlite_index: str, postgres_index: str
):
    on_sqlite = _rows(sqlite_index, example.sqlite, example.role)
    on_postgres = _rows(postgres_index, example.postgresql, example.role)
    assert _comparable(on_sqlite) == _comparable(on_postgres), example.where
    # the guide's new source, and what a block says the generated sources never hold
    if "parking_blue_badges" not in example.sqlite and NONE_IN_DEMO not in example.sqlite:
        assert on_sqlite, f"{example.where} returns nothing on the demo index"


def test_the_analyst_role_is_refused_an_engineer_example(postgres_index: str):
    """So an analyst example that needs a full table cannot pass unnoticed."""
    engineers = [e for e in EXAMPLES if e.role == "engineer"]
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        _rows(postgres_index, engineers[0].postgresql, "analyst")


def _scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


#: Each should count nothing: what an analyst's join or count would get wrong.
ANALYST_AGREES = {
    "persons of analyst_person not in person_index (or missing from it)": """
        SELECT ABS((SELECT COUNT(*) FROM analyst_person) - (SELECT COUNT(*) FROM person_index))
        """,
    "link, household or relationship keys naming no analyst_person": """
        SELECT (SELECT COUNT(*) FROM analyst_person_source_link l WHERE l.person_key NOT IN
                  (SELECT person_key FROM analyst_person))
             + (SELECT COUNT(*) FROM analyst_household h WHERE h.person_key NOT IN
                  (SELECT person_key FROM analyst_person))
             + (SELECT COUNT(*) FROM analyst_relationship r WHERE r.related_person_key NOT IN
                  (SELECT person_key FROM analyst_person))
        """,
    "review pairs whose record keys are not in analyst_person_source_link": """
        SELECT COUNT(*) FROM analyst_review_queue q
        WHERE q.left_record_key NOT IN (SELECT record_key FROM analyst_person_source_link)
           OR q.right_record_key NOT IN (SELECT record_key FROM analyst_person_source_link)
        """,
    "review pairs missing from analyst_review_queue": """
        SELECT (SELECT COUNT(*) FROM review_queue) - (SELECT COUNT(*) FROM analyst_review_queue)
        """,
    "households in more than one postcode district": """
        SELECT COUNT(*) FROM (SELECT household_key FROM analyst_person
                              WHERE household_key IS NOT NULL GROUP BY household_key
                              HAVING COUNT(DISTINCT postcode_district) > 1) AS h
        """,
    "persons with a household key other than analyst_household's": """
        SELECT COUNT(*) FROM analyst_person p JOIN analyst_household h
          ON h.person_key = p.person_key AND h.household_key <> p.household_key
        """,
    "deceased persons other than those a source records as dead": """
        SELECT ABS((SELECT COUNT(*) FROM analyst_person WHERE deceased)
                   - (SELECT COUNT(DISTINCT person_id) FROM person_field_value
                      WHERE field = 'date_of_death' AND is_golden))
        """,
}


@pytest.mark.parametrize("what", ANALYST_AGREES)
def test_the_analyst_tables_agree_with_the_index(what: str, sqlite_index: str):
    assert _scalar(sqlite_index, ANALYST_AGREES[what]) == 0, what


def test_the_demo_has_what_those_checks_need(sqlite_index: str):
    """The checks above count nothing wrong only where there is something to count (no one
    dies in a population this small: test_fast_paths checks `deceased`)."""
    assert _scalar(sqlite_index, "SELECT COUNT(*) FROM analyst_review_queue") > 0
    assert _scalar(sqlite_index, "SELECT COUNT(DISTINCT household_key) FROM analyst_person") > 1
