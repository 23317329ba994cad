"""Who looked at whom: the commands that show a person's data log it in `access_log`.

`care-etl household`, `person`, `find` and `review show` print names, dates of birth and
addresses. Before they print, each writes one row per person it is about to show: the
person_id, the command, the operating-system user, the database user (PostgreSQL), the time
and what was asked without its values; never a value shown.
Information governance can then answer "who has looked at this person's record, and when" (a
subject access request, a suspicion of misuse). A log that cannot be written stops the command
before it prints anything: no access without its record. The log is kept ACCESS_LOG_YEARS,
after which `care-etl retention --apply` deletes it (retention.py); analysts cannot read it.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterable

import sqlalchemy as sa

#: Years an access is kept: six, the time within which a claim can be brought in England
#: (Limitation Act 1980), long enough to investigate a complaint about who saw a record.
ACCESS_LOG_YEARS = 6

metadata = sa.MetaData()

access_log = sa.Table(
    "access_log",
    metadata,
    sa.Column("access_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("accessed_at", sa.DateTime, nullable=False, index=True),
    sa.Column("command", sa.String(20), nullable=False),
    #: Null: a search that found no one (it is logged too: someone looked).
    sa.Column("person_id", sa.String(32), index=True),
    sa.Column("os_user", sa.Text, nullable=False),
    sa.Column("database_user", sa.Text),
    #: What was asked, without a value: the fields a search used, the pair a review showed.
    sa.Column("detail", sa.Text),
)


def log_access(
    url: str, command: str, person_ids: Iterable[str], detail: str | None = None
) -> None:
    """One row per person about to be shown (one with no person when none is); raises a
    one-line DatabaseError when it cannot, so that nothing is shown unlogged."""
    from care_etl.index.publish import connected

    ids = list(dict.fromkeys(person_ids)) or [None]
    failed = command + ": not shown: the access could not be logged in {url} ({why})"
    with connected(url, failed, begin=True) as conn:
        access_log.create(conn, checkfirst=True)
        at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        who, database_user = _os_user(), _database_user(conn)
        conn.execute(
            access_log.insert(),
            [
                {"accessed_at": at, "command": command, "person_id": p, "os_user": who,
                 "database_user": database_user, "detail": detail}
                for p in ids
            ],
        )  # fmt: skip


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


def _database_user(conn: sa.Connection) -> str | None:
    if conn.dialect.name != "postgresql":
        return None
    return conn.execute(sa.text("SELECT session_user")).scalar()
