"""Write the index tables to SQLite or PostgreSQL in one transaction.

Readers see the previous index until the transaction commits, and a failed run rolls back,
leaving the last published index in place.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from care_etl.errors import DatabaseError

log = logging.getLogger(__name__)

metadata = sa.MetaData()
ANALYST_SCHEMA = "analyst"
#: SQLite's page cache for a publish, in KiB (allocated only as pages are read): with the
#: default 2 MiB, updating the link tables' rows in key order re-read pages from the file
#: system half the time (measured at 100k records: about twice as slow).
SQLITE_CACHE_KIB = 262_144

person_index = sa.Table(
    "person_index",
    metadata,
    sa.Column("person_id", sa.String(32), primary_key=True),
    sa.Column("given_name", sa.Text),
    sa.Column("family_name", sa.Text),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("sex", sa.String(1)),
    sa.Column("nhs_number", sa.String(10)),
    sa.Column("postcode", sa.String(8)),
    sa.Column("uprn", sa.String(12)),
    sa.Column("source_count", sa.Integer, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("address", sa.Text),
)

person_source_link = sa.Table(
    "person_source_link",
    metadata,
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(200), primary_key=True),
    sa.Column("link_type", sa.String(20), nullable=False),
    sa.Column("match_probability", sa.Float),
    sa.Column("lineage", sa.Text),
    sa.Column("ocr_confidence", sa.Float),
    sa.Column("field_confidence", sa.Text),
    sa.Column("quality_issues", sa.Text),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("source_record_id", sa.String(300), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text),
)

review_queue = sa.Table(
    "review_queue",
    metadata,
    sa.Column("left_source", sa.String(100), primary_key=True),
    sa.Column("left_source_record_id", sa.String(200), primary_key=True),
    sa.Column("right_source", sa.String(100), primary_key=True),
    sa.Column("right_source_record_id", sa.String(200), primary_key=True),
    sa.Column("match_probability", sa.Float, nullable=False),
    sa.Column("match_weight", sa.Float),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("pair_key", sa.Text),  # review decisions (care_etl/review)
    sa.Column("queued_at", sa.DateTime),
)

#: Every value each person's records give, the golden one flagged with its source and rule.
person_field_value = sa.Table(
    "person_field_value",
    metadata,
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("field", sa.String(40), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("is_golden", sa.Boolean, nullable=False),
    sa.Column("rule", sa.String(20)),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("source_count", sa.Integer, nullable=False),
    sa.Column("last_recorded_on", sa.Date),
)

#: Each word of every name person_field_value keeps for a person (former surnames and aliases
#: too), as match_key spells it, and how it sounds (name_sound): `care-etl find --name` looks
#: the words up by index, where it read every name the index holds.
person_name_word = sa.Table(
    "person_name_word",
    metadata,
    # Text, not a bounded string: a word is as long as a source wrote it (an unspaced scan).
    sa.Column("word", sa.Text, primary_key=True),
    sa.Column("person_id", sa.String(32), primary_key=True, index=True),
    sa.Column("sound", sa.Text, index=True),
)

person_address = sa.Table(
    "person_address",
    metadata,
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("source_record_id", sa.String(200), nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("postcode", sa.String(8)),
    sa.Column("uprn", sa.String(12)),
    sa.Column("address_key", sa.Text, nullable=False),
    sa.Column("from_date", sa.Date),
    sa.Column("to_date", sa.Date),
    sa.Column("is_current", sa.Boolean, nullable=False),
    #: The record's own date (a GP registration, a referral), where its contract maps one.
    sa.Column("recorded_on", sa.Date),
)

household = sa.Table(
    "household",
    metadata,
    sa.Column("household_id", sa.String(16), primary_key=True),
    # Its own index too: the key leads with the household, and "the household of person X"
    # (household_members, related_elsewhere) would scan every row for each person asked.
    sa.Column("person_id", sa.String(32), primary_key=True, index=True),
    sa.Column("address", sa.Text),
    sa.Column("postcode", sa.String(8)),
    sa.Column("uprn", sa.String(12)),
    sa.Column("basis", sa.String(10), nullable=False),
    #: What says the person lives there (households.evidence_of): the latest date, the
    #: sources, and those holding an open period (a tenancy or address row not ended).
    sa.Column("last_evidence_on", sa.Date),
    sa.Column("evidence_sources", sa.Text),
    sa.Column("open_period_sources", sa.Text),
)

relationship = sa.Table(
    "relationship",
    metadata,
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("related_person_id", sa.String(32), nullable=False),
    sa.Column("relationship", sa.String(40), nullable=False),
    sa.Column("source", sa.String(100)),
    sa.Column("basis", sa.String(12), nullable=False),
    #: Sources may declare different relationships between two persons: one row of the pair
    #: is preferred, by `rule` (households.prefer_declared), and it names the terms of the
    #: others that contradict it in other_relationships ("Son (social_care_case_management)").
    sa.Column("preferred", sa.Boolean),
    sa.Column("rule", sa.String(20)),
    sa.Column("other_relationships", sa.Text),
)

#: Services a source records as involved with its records (a contract's `role: involvement`
#: object: social care's involvements), keyed by the record and not the person, so that the
#: person_services view follows the record to whatever person it is linked to now. Only
#: records the index holds have rows: a withdrawn or quarantined record's are not published.
service_involvement = sa.Table(
    "service_involvement",
    metadata,
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("source_record_id", sa.String(200), nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("status", sa.Text),
    sa.Index("ix_service_involvement_record", "source", "source_record_id"),
)

#: Appended to, never replaced: how a retired id leads to its successor.
person_id_history = sa.Table(
    "person_id_history",
    metadata,
    sa.Column("history_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("old_person_id", sa.String(32), nullable=False, index=True),
    sa.Column("new_person_id", sa.String(32)),
    sa.Column("change", sa.String(10), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.DateTime, nullable=False),
)

pipeline_run = sa.Table(
    "pipeline_run",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("persons", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)

analyst_person = sa.Table(
    "analyst_person",
    metadata,
    sa.Column("person_key", sa.String(24), primary_key=True),
    sa.Column("sex", sa.String(1)),
    sa.Column("age_band", sa.String(8)),
    sa.Column("postcode_district", sa.String(4)),
    sa.Column("household_key", sa.String(24)),
    sa.Column("source_count", sa.Integer, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    # a source records their death: they live nowhere now (null before this column was added)
    sa.Column("deceased", sa.Boolean),
    schema=ANALYST_SCHEMA,
)

analyst_person_source_link = sa.Table(
    "analyst_person_source_link",
    metadata,
    sa.Column("person_key", sa.String(24), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("record_key", sa.String(24), primary_key=True),
    sa.Column("link_type", sa.String(20), nullable=False),
    sa.Column("match_probability", sa.Float),
    schema=ANALYST_SCHEMA,
)

analyst_household = sa.Table(
    "analyst_household",
    metadata,
    sa.Column("household_key", sa.String(24), nullable=False),
    sa.Column("person_key", sa.String(24), nullable=False),
    sa.Column("basis", sa.String(10)),
    schema=ANALYST_SCHEMA,
)

analyst_relationship = sa.Table(
    "analyst_relationship",
    metadata,
    sa.Column("person_key", sa.String(24), nullable=False),
    sa.Column("related_person_key", sa.String(24), nullable=False),
    sa.Column("relationship", sa.String(40), nullable=False),
    sa.Column("basis", sa.String(12), nullable=False),
    schema=ANALYST_SCHEMA,
)

#: The review backlog, its records by their analyst_person_source_link.record_key.
analyst_review_queue = sa.Table(
    "analyst_review_queue",
    metadata,
    sa.Column("left_source", sa.String(100), nullable=False),
    sa.Column("left_record_key", sa.String(24), primary_key=True),
    sa.Column("right_source", sa.String(100), nullable=False),
    sa.Column("right_record_key", sa.String(24), primary_key=True),
    sa.Column("match_probability", sa.Float, nullable=False),
    sa.Column("queued_at", sa.DateTime),
    schema=ANALYST_SCHEMA,
)

#: Replaced as a whole by every run.
INDEX_TABLES = (
    person_index,
    person_source_link,
    quarantine,
    review_queue,
    person_field_value,
    person_name_word,
    person_address,
    household,
    relationship,
    service_involvement,
)
ANALYST_TABLES = (
    analyst_person,
    analyst_person_source_link,
    analyst_household,
    analyst_relationship,
    analyst_review_queue,
)


#: Evidence that a person lives at an address is stale when it is older than this many years
#: and no source holds them there now: a tenancy or address row not ended (its source would
#: end it if they left), or a record of a current register (a contract's `currentRegister`:
#: the GP extract lists the patients registered now). Five years: within that time a
#: household often changes (a move, a separation, a child leaving), and a referral form is
#: dated when it was made, never when the address was last confirmed. In the demo 8 of the
#: 1,500 members living with someone are then flagged, each known there only from a paper
#: referral (with GP registrations dated as old evidence, 639 were, 612 of them GP-only).
STALE_AFTER_YEARS = 5


def evidence_stale_sql(dialect: str, row: str) -> str:
    """Whether the evidence of household row `row` is stale (STALE_AFTER_YEARS), as a
    boolean expression in `dialect`: the date arithmetic differs, and it is worked out when
    read, so that evidence ages without a run."""
    if dialect == "postgresql":
        cutoff = f"CURRENT_DATE - INTERVAL '{STALE_AFTER_YEARS} years'"
    else:  # SQLite stores a date as ISO text, which sorts as the date
        cutoff = f"date('now', '-{STALE_AFTER_YEARS} years')"
    return f"""CASE WHEN {row}.open_period_sources IS NULL
                 AND ({row}.last_evidence_on IS NULL OR {row}.last_evidence_on < {cutoff})
            THEN TRUE ELSE FALSE END"""


def _declared(column: str) -> str:
    """A column of the preferred declared relationship row between h and m, in SQL that
    SQLite and PostgreSQL read alike."""
    return f"""(SELECT r.{column} FROM relationship r
          WHERE r.person_id = h.person_id AND r.related_person_id = m.person_id
            AND r.basis = 'declared'
          ORDER BY CASE WHEN r.preferred THEN 0 ELSE 1 END, r.relationship, r.source
          LIMIT 1)"""


def _date_of_death(person: str) -> str:
    return f"""(SELECT MIN(d.value) FROM person_field_value d
        WHERE d.person_id = {person} AND d.field = 'date_of_death' AND d.is_golden)"""


def household_members_view(dialect: str) -> str:
    """ "Who lives with person X, and how are they related" (relationship: what the member
    is to X). date_of_death (text, ISO) is set for a member a source records as having
    died: their address has not been updated, but they do not live there; a worker must not
    expect them. The relationship is the preferred declared one (a row of an earlier
    release, with no `preferred`, after those that are; then in text order),
    relationship_source the source declaring it, other_relationships what other sources
    declare against it. Then how old the evidence is that the member lives there (household's
    evidence columns, and evidence_stale: STALE_AFTER_YEARS)."""
    return f"""
CREATE VIEW household_members AS
SELECT h.person_id, h.household_id, h.address, h.postcode, h.uprn,
       m.person_id AS member_person_id,
       p.given_name, p.family_name, p.date_of_birth, p.sex,
       COALESCE(CAST({_declared("relationship")} AS TEXT), 'Co-resident') AS relationship,
       CASE WHEN EXISTS (SELECT 1 FROM relationship r
                         WHERE r.person_id = h.person_id AND r.related_person_id = m.person_id
                           AND r.basis = 'declared')
            THEN 'declared' ELSE 'co-resident' END AS basis,
       {_date_of_death("m.person_id")}
         AS date_of_death,
       {_declared("source")} AS relationship_source,
       {_declared("other_relationships")} AS other_relationships,
       m.last_evidence_on, m.evidence_sources, m.open_period_sources,
       {evidence_stale_sql(dialect, "m")} AS evidence_stale
FROM household h
JOIN household m ON m.household_id = h.household_id AND m.person_id <> h.person_id
JOIN person_index p ON p.person_id = m.person_id
"""


def related_elsewhere_view(dialect: str) -> str:
    """Relatives a source declares who do not live with the person: a carer daughter two
    streets away never shows in household_members, which is about one address. One row per
    related person, with the preferred declared relationship (relationship: what they are to
    the person), where they live now (their household; null: no current address known), how
    old that evidence is, and their date of death where a source records one."""
    return f"""
CREATE VIEW related_elsewhere AS
SELECT r.person_id, r.related_person_id,
       p.given_name, p.family_name, p.date_of_birth, p.sex,
       r.relationship, r.source AS relationship_source, r.other_relationships,
       m.household_id, m.address, m.postcode,
       {_date_of_death("r.related_person_id")} AS date_of_death,
       m.last_evidence_on, m.evidence_sources, m.open_period_sources,
       CASE WHEN m.person_id IS NULL THEN NULL
            ELSE {evidence_stale_sql(dialect, "m")} END AS evidence_stale
FROM relationship r
JOIN person_index p ON p.person_id = r.related_person_id
LEFT JOIN household m ON m.person_id = r.related_person_id
WHERE r.basis = 'declared' AND r.preferred
  AND NOT EXISTS (SELECT 1 FROM household h JOIN household o ON o.household_id = h.household_id
                  WHERE h.person_id = r.person_id AND o.person_id = r.related_person_id)
"""


#: Statuses that say an involvement has ended, whatever its end date says.
ENDED_STATUSES = ("closed", "ended", "cancelled")


def person_services_view(dialect: str) -> str:
    """ "Which services already work with person X": each involvement of each of the
    person's records, and is_open, worked out when read (a planned end date passes without
    a run): open unless it has ended by its date or its status says closed."""
    today = "CURRENT_DATE" if dialect == "postgresql" else "date('now')"
    ended = ", ".join(f"'{s}'" for s in ENDED_STATUSES)
    return f"""
CREATE VIEW person_services AS
SELECT l.person_id, s.service, s.start_date, s.end_date, s.status,
       CASE WHEN s.end_date IS NOT NULL AND s.end_date <= {today} THEN FALSE
            WHEN LOWER(TRIM(s.status)) IN ({ended}) THEN FALSE
            ELSE TRUE END AS is_open,
       s.source, s.source_record_id
FROM service_involvement s
JOIN person_source_link l
  ON l.source = s.source AND l.source_record_id = s.source_record_id
"""


#: Each view's DDL, by dialect name.
VIEWS: dict[str, Callable[[str], str]] = {
    "household_members": household_members_view,
    "related_elsewhere": related_elsewhere_view,
    "person_services": person_services_view,
}


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite index URL whose file is not there, else None: opening it would
    create an empty database, so the commands that read an index refuse it first."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # engine_for says so in its own words
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    return file if file not in (None, "", ":memory:") and not Path(file).is_file() else None


def engine_for(url: str) -> sa.Engine:
    """An engine, or a one-line DatabaseError that does not echo the URL's password."""
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # opening a file reads nothing of it: read it
                conn.exec_driver_sql("PRAGMA schema_version")
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        raise DatabaseError(f"database URL not understood: {safe_url(url)}{_hint(url)}") from None
    except ImportError as exc:  # the URL names a driver that is not installed
        raise DatabaseError(
            f"database URL {safe_url(url)}: its driver ({exc.name or 'a module'}) is not "
            f"installed{_hint(url)}"
        ) from None
    except sa.exc.DBAPIError as exc:  # unreachable, or a file that is not a database
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        verb = "reach" if isinstance(exc, sa.exc.OperationalError) else "use"
        raise DatabaseError(f"cannot {verb} database {safe_url(url)}: {reason}") from None
    return engine


@contextmanager
def connected(url: str, failed: str, *, begin: bool = False) -> Iterator[sa.Connection]:
    """A connection to the database at `url` (one transaction with `begin`), its engine
    disposed of after; a database error on the way is one line, `failed` with `{url}` (without
    its password) and `{why}` filled in."""
    engine = engine_for(url)
    try:
        with engine.begin() if begin else engine.connect() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(failed.format(url=safe_url(url), why=why(exc))) from None
    finally:
        engine.dispose()


def why(exc: BaseException) -> str:
    """A database error in words fit for a log: the driver's first line where it names no
    value (permission denied, no such table, cannot connect: ProgrammingError and
    OperationalError), else the error's class (a DataError may quote the value it refused)."""
    orig = getattr(exc, "orig", None)
    if orig is not None and isinstance(exc, sa.exc.ProgrammingError | sa.exc.OperationalError):
        lines = str(orig).strip().splitlines()
        if lines:
            return f"{lines[0]} ({type(exc).__name__})"
    return type(exc).__name__


def _hint(url: str) -> str:
    """What to write instead, for the URLs people write for PostgreSQL from habit."""
    scheme = url.partition("://")[0].lower()
    if scheme.startswith(("postgres", "postgresql")) and scheme != "postgresql+psycopg":
        return " (for PostgreSQL write postgresql+psycopg://USER@HOST/DATABASE)"
    return ""


def publish(
    url: str,
    tables: Mapping[str, pd.DataFrame],
    *,
    run_id: str,
    summary: str,
    persons: int,
    analyst: Mapping[str, pd.DataFrame] | None = None,
    delta: Any = None,
) -> None:
    """Replace the index tables' contents atomically, append id history and record the run.

    One transaction for everything, analyst tables and history included: readers see the
    previous index until it commits, and a failure anywhere leaves the previous one whole.
    `analyst` None empties the analyst tables (no pseudonym key: nothing to publish).
    `delta` (care_etl.incremental.delta.PublishDelta) rewrites only the persons whose rows
    changed, where it can tell that safely; every other table is replaced whole.
    Records that leave the index, and return, are noted for retention (index.retention).
    """
    from care_etl.index.retention import Presence

    with connected(url, "writing the index to {url} failed: {why}", begin=True) as raw:
        if raw.dialect.name == "sqlite":
            raw.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        conn = prepare(raw)
        presence = Presence.read(conn)  # which records leave, for retention
        for table in INDEX_TABLES:
            if delta is not None and delta.write(conn, table, tables.get(table.name), _insert):
                continue
            conn.execute(table.delete())
            _insert(conn, table, tables.get(table.name))
        _insert(conn, person_id_history, tables.get(person_id_history.name))
        for table in ANALYST_TABLES:
            frame = None if analyst is None else analyst.get(table.name)
            if delta is not None and delta.write(conn, table, frame, _insert):
                continue
            conn.execute(table.delete())
            _insert(conn, table, frame)
        finished_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        presence.record(conn, finished_at)
        conn.execute(
            pipeline_run.insert(),
            [
                {
                    "run_id": run_id,
                    "finished_at": finished_at,
                    "persons": persons,
                    "summary": summary,
                }
            ],
        )


def prepare(conn: sa.Connection) -> sa.Connection:
    """Create what is missing (schema, tables, columns a newer release adds, views).

    Returns the connection to use: on SQLite, which has no schemas, the analyst tables are
    plain tables named analyst_*.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ANALYST_SCHEMA}"))
    else:
        conn = conn.execution_options(schema_translate_map={ANALYST_SCHEMA: None})
    from care_etl.index.access import metadata as access

    metadata.create_all(conn)
    access.create_all(conn)  # by whoever publishes, before roles are made
    add_missing_columns(conn, metadata)
    add_missing_columns(conn, access)
    add_missing_indexes(conn, metadata)
    _views(conn)
    return conn


def _views(conn: sa.Connection) -> None:
    """Create the views, or bring an earlier release's up to this one's definition."""
    existing = set(sa.inspect(conn).get_view_names())
    for name, make in VIEWS.items():
        ddl = make(conn.dialect.name)
        if name not in existing:
            conn.execute(sa.text(ddl))
        elif conn.dialect.name == "postgresql":
            _replace_view(conn, name, ddl)
        elif _words(_stored_view(conn, name)) != _words(ddl):
            conn.execute(sa.text(f"DROP VIEW {name}"))
            conn.execute(sa.text(ddl))


def _replace_view(conn: sa.Connection, name: str, ddl: str) -> None:
    """CREATE OR REPLACE keeps the roles' grants; a view whose columns changed cannot be
    replaced so and is created anew (`care-etl roles create` then grants on it again)."""
    try:
        with conn.begin_nested():
            conn.execute(sa.text(ddl.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)))
    except sa.exc.DBAPIError:
        log.warning("publish: view %s recreated; run `care-etl roles create` again", name)
        conn.execute(sa.text(f"DROP VIEW {name}"))
        conn.execute(sa.text(ddl))


def _stored_view(conn: sa.Connection, name: str) -> str:
    return (
        conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = :n"), {"n": name}
        ).scalar_one_or_none()
        or ""
    )


def _words(sql: str) -> list[str]:
    return sql.split()


def add_missing_columns(conn: sa.Connection, tables: sa.MetaData) -> None:
    """A table created by an earlier release gains the nullable columns added since."""
    inspector = sa.inspect(conn)
    for table in tables.sorted_tables:
        schema = conn.schema_for_object(table)
        present = {c["name"] for c in inspector.get_columns(table.name, schema=schema)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=conn.dialect)
                where = f"{schema}.{table.name}" if schema else table.name
                conn.execute(sa.text(f"ALTER TABLE {where} ADD COLUMN {column.name} {kind}"))


def add_missing_indexes(conn: sa.Connection, tables: sa.MetaData) -> None:
    """A table created by an earlier release gains the indexes added since (create_all
    makes them only with a new table)."""
    for table in tables.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def latest_run(conn: sa.Connection) -> str | None:
    """The run id of the index last published to this database (None before any)."""
    return conn.execute(
        sa.select(pipeline_run.c.run_id).order_by(pipeline_run.c.finished_at.desc()).limit(1)
    ).scalar_one_or_none()


def previous_index(url: str) -> tuple[pd.DataFrame, set[str]]:
    """The last published links (source, source_record_id, person_id) and every id issued.

    Empty on a database that holds no index yet.
    """
    columns = ["source", "source_record_id", "person_id"]
    with connected(url, "reading the previous index from {url} failed: {why}") as conn:
        names = set(sa.inspect(conn).get_table_names())
        if person_source_link.name not in names:
            return pd.DataFrame(columns=columns), set()
        links = pd.read_sql(sa.select(*(person_source_link.c[c] for c in columns)), conn)
        issued = set(links["person_id"])
        if person_id_history.name in names:
            h = person_id_history.c
            for old, new in conn.execute(sa.select(h.old_person_id, h.new_person_id)):
                issued.update(i for i in (old, new) if i)
    return links.astype(object), issued


def published_rows(url: str, names: Sequence[str]) -> dict[str, int]:
    """Rows each of these index tables holds now (an incremental run builds only some)."""
    wanted = [t for t in INDEX_TABLES if t.name in names]
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in wanted
            }
    except sa.exc.SQLAlchemyError:
        return {}
    finally:
        engine.dispose()


def is_production(url: str) -> bool:
    """PostgreSQL is the production target; SQLite is for demos and tests."""
    try:
        return sa.engine.make_url(url).get_backend_name() == "postgresql"
    except sa.exc.ArgumentError:
        return False


def _insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame | None) -> None:
    if frame is None or frame.empty:
        return
    if conn.dialect.name == "sqlite":
        _insert_sqlite(conn, table, frame)
        return
    rows = _rows(frame, table)
    if rows:
        conn.execute(table.insert(), rows)


def _insert_sqlite(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """The rows as tuples straight to sqlite3's executemany, each value bound as SQLAlchemy
    binds it for its column type: a dict per row through SQLAlchemy took several seconds
    per hundred thousand rows."""
    columns = [c for c in table.columns if not (c.autoincrement is True and c.primary_key)]
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {_sqlite_name(conn, table)} ({', '.join(quote(c.name) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    conn.exec_driver_sql(sql, _bound_rows(conn, columns, frame))


def _sqlite_name(conn: sa.Connection, table: sa.Table) -> str:
    quote = conn.dialect.identifier_preparer.quote
    schema = conn.schema_for_object(table)
    return f"{quote(schema)}.{quote(table.name)}" if schema else quote(table.name)


def _bound_rows(conn: sa.Connection, columns: list[sa.Column], frame: pd.DataFrame) -> list:
    """The frame's rows as tuples of these columns' values, bound as SQLAlchemy binds them."""
    subset = frame.reindex(columns=[c.name for c in columns])
    values = []
    for column in columns:
        bind = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        text = _iso_text(subset[column.name], column.type, bind)
        if text is not None:
            values.append(text)
            continue
        plain = _column_values(subset[column.name], column.type)
        values.append(plain if bind is None else [None if v is None else bind(v) for v in plain])
    return list(zip(*values, strict=True))


def _iso_text(
    series: pd.Series, kind: sa.types.TypeEngine, bind: Callable[[object], object] | None
) -> list[object] | None:
    """A column of datetimes as the text SQLite stores for `kind`, formatted by numpy in
    one call; None where that is not certain to equal what `bind` makes of each value.

    Binding value by value made a Timestamp, a datetime and a string of each (2.7 s of
    the 24 s a 100k-people index took to write)."""
    if bind is None or not pd.api.types.is_datetime64_dtype(series.dtype):
        return None
    unit = "D" if isinstance(kind, sa.Date) else "us" if isinstance(kind, sa.DateTime) else None
    if unit is None:
        return None
    array = series.to_numpy()
    text = np.char.replace(np.datetime_as_string(array, unit=unit), "T", " ").astype(object)
    missing = np.isnat(array)
    text[missing] = None
    present = np.flatnonzero(~missing)
    if len(present):  # the storage format is the dialect's: check it on one value
        first = _converter(kind)(array[present[0]])
        if bind(first) != text[present[0]]:
            return None
    return text.tolist()


def update_rows(
    conn: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame | None,
    keys: Sequence[str],
    columns: Sequence[str] | None = None,
) -> None:
    """Set `columns` (default: every other column) of the rows whose `keys` columns match
    the frame's rows."""
    if frame is None or frame.empty:
        return
    key_columns = [table.c[k] for k in keys]
    others = [c for c in table.columns if c.name not in keys]
    if columns is not None:
        others = [c for c in others if c.name in columns]
    if conn.dialect.name == "sqlite":
        quote = conn.dialect.identifier_preparer.quote
        sql = (
            f"UPDATE {_sqlite_name(conn, table)} "
            f"SET {', '.join(f'{quote(c.name)} = ?' for c in others)} "
            f"WHERE {' AND '.join(f'{quote(c.name)} = ?' for c in key_columns)}"
        )
        conn.exec_driver_sql(sql, _bound_rows(conn, [*others, *key_columns], frame))
        return
    statement = (
        table.update()
        .where(sa.and_(*(c == sa.bindparam(f"key_{c.name}") for c in key_columns)))
        .values({c.name: sa.bindparam(f"value_{c.name}") for c in others})
    )
    wanted = {*keys, *(c.name for c in others)}
    rows = _rows(frame, table)
    renamed = [
        {(f"key_{k}" if k in keys else f"value_{k}"): v for k, v in r.items() if k in wanted}
        for r in rows
    ]
    conn.execute(statement, renamed)


def delete_rows(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame | None, keys: Sequence[str]
) -> None:
    """Delete the rows whose `keys` columns match the frame's rows."""
    if frame is None or frame.empty:
        return
    key_columns = [table.c[k] for k in keys]
    statement = table.delete().where(
        sa.and_(*(c == sa.bindparam(f"key_{c.name}") for c in key_columns))
    )
    values = [frame[k].astype(object).tolist() for k in keys]
    conn.execute(
        statement,
        [
            {f"key_{k}": v for k, v in zip(keys, row, strict=True)}
            for row in zip(*values, strict=True)
        ],
    )


def _rows(frame: pd.DataFrame, table: sa.Table) -> list[dict[str, object]]:
    """Rows for the table's columns (absent ones NULL), each value as the column's type wants."""
    columns = [c for c in table.columns if not (c.autoincrement is True and c.primary_key)]
    subset = frame.reindex(columns=[c.name for c in columns])
    values = [_column_values(subset[c.name], c.type) for c in columns]
    names = [c.name for c in columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _column_values(series: pd.Series, kind: sa.types.TypeEngine) -> list[object]:
    """A column as plain Python values, None for every kind of missing (numpy scalars in a
    column of objects unwrapped: looked for by type first, as most columns hold none)."""
    array = series.to_numpy(dtype=object, copy=True)
    array[pd.isna(array)] = None
    values = array.tolist()
    if series.dtype == object and any(issubclass(t, np.generic) for t in set(map(type, values))):
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
    convert = _converter(kind)
    if convert is None:
        return values
    return [None if v is None else convert(v) for v in values]


def _converter(kind: sa.types.TypeEngine) -> Callable[[object], object] | None:
    if isinstance(kind, sa.DateTime):
        return lambda v: pd.Timestamp(v).tz_localize(None).to_pydatetime()
    if isinstance(kind, sa.Date):
        return lambda v: pd.Timestamp(v).date()
    if isinstance(kind, sa.Boolean):
        return bool
    return None


def safe_url(url: str) -> str:
    """The URL with its password hidden, fit for a message or a summary."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"
