"""`care-etl household`, `roles create` and `retention`: the index's own commands.

`household` is for the worker about to visit: who lives with a person and how they are
related, read from the household_members view. `roles create` sets up PostgreSQL so that an
analyst role reads only the pseudonymised tables (schema `analyst`) and an engineer role reads
and writes everything.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from care_etl.errors import CareEtlError
from care_etl.index.access import log_access

ANALYST_ROLE = "care_etl_analyst"
ENGINEER_ROLE = "care_etl_engineer"


def add_commands(commands: Any) -> None:
    """Add the index's sub-commands to care-etl's parser."""
    home = commands.add_parser("household", help="who lives with a person, and how related")
    home.add_argument("person_id", help="a person_id of person_index (a retired one is followed)")
    database_option(home)
    home.set_defaults(handler=_household)

    roles = commands.add_parser("roles", help="PostgreSQL roles for analysts and engineers")
    actions = roles.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create",
        help=f"create {ANALYST_ROLE} (pseudonymised tables only) and {ENGINEER_ROLE} "
        "(everything); grant them to people with GRANT <role> TO <user>",
    )
    database_option(create)
    create.set_defaults(handler=_roles_create)

    from care_etl.index.lookup import add_commands as add_lookup_commands
    from care_etl.index.retention_command import add_command as add_retention_command

    add_lookup_commands(commands)
    add_retention_command(commands)


def database_option(parser: argparse.ArgumentParser) -> None:
    """--database, as every command reading the index takes it."""
    parser.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL of the index (default: $CARE_ETL_DATABASE_URL, else care_etl.db "
        "beside $CARE_ETL_SOURCES_DIR, the demo's demo/care_etl.db when that is not set)",
    )


def _url(args: argparse.Namespace) -> str:
    from care_etl.locations import index_url_for, sources_dir_for

    return index_url_for(sources_dir_for(), args.database)


def reading(url: str) -> AbstractContextManager[sa.Connection]:
    """A connection to the index; a database error is one line naming it (no password)."""
    from care_etl.index.publish import connected

    return connected(url, "reading {url} failed: {why}")


def index_tables(conn: sa.Connection, url: str) -> set[str]:
    """The index's tables; a database no run has published into is refused in one line."""
    names = set(sa.inspect(conn).get_table_names())
    if "person_index" not in names:
        raise CareEtlError(f"{_safe(url)} holds no index: run care-etl run first")
    return names


def current_person(conn: sa.Connection, url: str, person_id: str) -> tuple[str, set[str]]:
    """The id that holds `person_id` now (itself, or its successor after merges), and the
    index's tables."""
    from care_etl.index.ids import successor

    names = index_tables(conn, url)
    return _current_id(conn, person_id, names, successor), names


def household_members(url: str, person_id: str) -> tuple[str, pd.DataFrame]:
    """The person's current id (after merges) and the members of their household."""
    with reading(url) as conn:
        current, _ = current_person(conn, url, person_id)
        query = (
            "SELECT * FROM household_members WHERE person_id = :p "
            "ORDER BY date_of_birth, member_person_id"
        )
        return current, pd.read_sql(sa.text(query), conn, params={"p": current})


def related_elsewhere(url: str, person_id: str) -> pd.DataFrame:
    """The person's declared relatives who do not live with them (the related_elsewhere
    view; empty on an index of an earlier release, which has no such view)."""
    with reading(url) as conn:
        if "related_elsewhere" not in sa.inspect(conn).get_view_names():
            return pd.DataFrame()
        query = (
            "SELECT * FROM related_elsewhere WHERE person_id = :p "
            "ORDER BY date_of_birth, related_person_id"
        )
        return pd.read_sql(sa.text(query), conn, params={"p": person_id})


#: Involvements shown per person: the open ones, then the latest ended; the rest are counted.
SHOWN_SERVICES = 3


def person_services(url: str, person_ids: list[str]) -> dict[str, str]:
    """Per person, in words, the services involved with them ("Children's Social Care, open
    since 2023-04-01"), for those with any; none on an index of an earlier release."""
    ids = list(dict.fromkeys(person_ids))
    with reading(url) as conn:
        if not ids or "person_services" not in sa.inspect(conn).get_view_names():
            return {}
        query = sa.text(
            "SELECT person_id, service, start_date, end_date, is_open FROM person_services "
            "WHERE person_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        found = pd.read_sql(query, conn, params={"ids": ids})
    return {str(p): _services(rows) for p, rows in found.groupby("person_id")}


def _services(rows: pd.DataFrame) -> str:
    """One person's involvements in words, open first, each group latest first."""
    start = rows["start_date"].fillna("").astype(str)  # an unknown start sorts last
    rows = rows.assign(is_open=rows["is_open"].astype(bool), start=start)
    rows = rows.sort_values(["is_open", "start"], ascending=False)
    words = []
    for row in rows.to_dict("records"):
        began, ended = day_text(row["start_date"], "an unknown date"), day_text(row["end_date"])
        if row["is_open"]:
            words.append(f"{row['service']}, open since {began}")
        else:
            words.append(f"{row['service']}, {began} to {ended}" if ended else
                         f"{row['service']}, from {began}, closed")  # fmt: skip
    more = len(words) - SHOWN_SERVICES
    return "; ".join(words[:SHOWN_SERVICES]) + (f"; and {more} earlier" if more > 0 else "")


def _current_id(conn: sa.Connection, person_id: str, names: set[str], successor) -> str:
    for spelling in dict.fromkeys((person_id, person_id.upper())):  # ids are upper case
        found = conn.execute(
            sa.text("SELECT 1 FROM person_index WHERE person_id = :p"), {"p": spelling}
        ).first()
        if found:
            return spelling
    person_id = person_id.upper()
    if "person_id_history" in names:
        history = pd.read_sql(sa.text("SELECT * FROM person_id_history"), conn)
        current = successor(history, person_id)
        exists = conn.execute(
            sa.text("SELECT 1 FROM person_index WHERE person_id = :p"), {"p": current}
        ).first()
        if current != person_id and exists:
            return current
        if (history["old_person_id"] == person_id).any():
            raise CareEtlError(f"person {person_id} was retired: none of their records remain")
    raise CareEtlError(f"person {person_id} is not in the index")


@dataclass
class Home:
    """Who a person is and where they live now, in words."""

    name: str
    #: "(born <date>; died <date>)", the parts known.
    dates: str
    #: None when no record gives a current address (moved away, or never known), which is
    #: not the same as living alone.
    where: str | None
    dead: bool
    #: What says they live there (household_members' evidence columns), where known.
    evidence: dict | None = None


def person_home(url: str, person_id: str) -> Home:
    """The person's name, dates, current address and household, from the index."""
    with reading(url) as conn:
        person = conn.execute(
            sa.text(
                "SELECT given_name, family_name, date_of_birth FROM person_index "
                "WHERE person_id = :p"
            ),
            {"p": person_id},
        ).first()
        death = conn.execute(
            sa.text(
                "SELECT MIN(value) FROM person_field_value WHERE person_id = :p "
                "AND field = 'date_of_death' AND is_golden"
            ),
            {"p": person_id},
        ).scalar()
        home = _household_row(conn, person_id)
    name, dates = (full_name(person[0], person[1]), _born(person[2], death)) if person else ("", "")
    if home is None:
        return Home(name, dates, None, bool(death))
    where = ", ".join(str(v) for v in (home["address"], home["postcode"]) if v)
    evidence = {k: home[k] for k in _EVIDENCE} if "evidence_stale" in home else None
    return Home(name, dates, f"{where} (household {home['household_id']})", bool(death), evidence)


#: The evidence columns of a household row, with whether it is stale by the view's rule.
_EVIDENCE = ("last_evidence_on", "evidence_sources", "open_period_sources", "evidence_stale")


def _household_row(conn: sa.Connection, person_id: str) -> dict | None:
    """The person's household row, with its evidence unless the index is of an earlier
    release (no evidence columns); None when they have no household."""
    from care_etl.index.publish import evidence_stale_sql

    columns = {c["name"] for c in sa.inspect(conn).get_columns("household")}
    evidence = (
        ", h.last_evidence_on, h.evidence_sources, h.open_period_sources, "
        f"{evidence_stale_sql(conn.dialect.name, 'h')} AS evidence_stale"
        if "open_period_sources" in columns
        else ""
    )
    row = conn.execute(
        sa.text(
            f"SELECT h.household_id, h.address, h.postcode{evidence} "
            "FROM household h WHERE h.person_id = :p"
        ),
        {"p": person_id},
    ).first()
    return None if row is None else dict(row._mapping)


def full_name(given: object, family: object) -> str:
    return " ".join(str(v) for v in (given, family) if v)


def _born(value: object, death: object = None) -> str:
    """The dates in parentheses: born, and died where a source records a death."""
    dates = [f"born {day_text(value)}"] if day_text(value) else []
    dates += [f"died {str(death)[:10]}"] if death else []
    return f"({'; '.join(dates)})" if dates else ""


def _relation(member: dict) -> str:
    """How a member is related, in words: a source's declaration (naming the source, and
    any source that declares otherwise), or only the address."""
    declared = member["basis"] == "declared"
    said = f"{member['relationship']} ({_declared_by(member)})"
    if member.get("date_of_death"):
        return f"died {str(member['date_of_death'])[:10]}; " + (
            said if declared else "no relationship recorded"
        )
    return said if declared else "lives there too; no relationship recorded"


def _index_file(url: str) -> None:
    """Refuse a SQLite index that is not there: opening it would leave an empty file behind."""
    from care_etl.index.publish import missing_sqlite_file

    missing = missing_sqlite_file(url)
    if missing:
        raise CareEtlError(f"no index database at {missing}")


def _declared_by(member: dict) -> str:
    """ "declared by <source>", then what other sources declare instead, where any does."""
    source = member.get("relationship_source")
    words = f"declared by {source}" if is_known(source) else "declared by a source"
    others = member.get("other_relationships")
    if not is_known(others):
        return words
    said = []
    for item in str(others).split("; "):
        term, _, by = item.rpartition(" (")
        said.append(f"{by.rstrip(')')} says {term}" if term else item)
    return f"{words}; but {', '.join(said)}"


def is_known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def asked_for(args: argparse.Namespace) -> tuple[str, str]:
    """The person_id a command is asked about, and the index's URL; either missing is refused
    in one line."""
    wanted = args.person_id.strip()
    if not wanted:
        raise CareEtlError("give a person_id, as person_index has it (e.g. P0F368096C76E)")
    return wanted, index_url(args)


def index_url(args: argparse.Namespace) -> str:
    """The index a command reads (--database, else as `care-etl run` writes it), refused in
    one line when it is a SQLite file that is not there."""
    url = _url(args)
    _index_file(url)
    return url


def _household(args: argparse.Namespace) -> int:
    wanted, url = asked_for(args)
    current, members = household_members(url, wanted)
    home = person_home(url, current)
    elsewhere = related_elsewhere(url, current)
    shown = [current, *members.get("member_person_id", []),
             *elsewhere.get("related_person_id", [])]  # fmt: skip
    services = person_services(url, shown)
    log_access(url, "household", shown)
    if current.upper() != wanted.upper():
        print(f"{wanted} was merged into {current}; showing {current}")
    who = " ".join(v for v in (current, home.name, home.dates) if v)
    if current in services:
        print(f"{who}: {SERVICES}{services[current]}")
    if home.where is None:
        print(f"{who}: no current address is known, so no household to show")
        _print_elsewhere(elsewhere, home, current, services)
        return 0
    at = f"{who} {'was last recorded' if home.dead else 'lives'} at {home.where}"
    if home.evidence and home.evidence["evidence_stale"]:
        at += f" ({_evidence(home.evidence)})"
    died = _died(members)
    living, dead = members[~died], members[died]
    if living.empty:
        print(f"{at}: no one else is known to live there")
    else:
        print(f"{at} with:")
        _print_members(living, services)
    if len(dead):
        print("Recorded at this address, but a source records their death (not there now):")
        _print_members(dead, services)
    if len(members):
        print(f"A declared relationship is what that person is to {home.name or current}.")
    _print_elsewhere(elsewhere, home, current, services)
    if _disagree(members) or _disagree(elsewhere):
        print(
            "Where sources declare different relationships, the one shown is the more "
            "specific term (Mother rather than Parent), else the most trusted source's; "
            "check the others with the family."
        )
    if _any_stale(members, elsewhere, home):
        from care_etl.index.publish import STALE_AFTER_YEARS

        print(
            f"'known here only from' marks evidence older than {STALE_AFTER_YEARS} years, with no "
            "tenancy, address period or register that holds them now: check they still live there."
        )
    return 0


def _any_stale(members: pd.DataFrame, elsewhere: pd.DataFrame, home: Home) -> bool:
    """Whether any evidence printed is stale (the rule is then said once, at the end)."""
    frames = [f for f in (members, elsewhere) if "evidence_stale" in f.columns]
    flagged = any(bool(f["evidence_stale"].fillna(False).astype(bool).any()) for f in frames)
    return flagged or bool(home.evidence and home.evidence["evidence_stale"])


def _evidence(row: dict, here: str = "here") -> str:
    """How old the evidence is that someone lives at the address, in words: "known here only
    from paper_referrals, 1998-03-02" when stale, else its sources and latest date."""
    day = day_text(row.get("last_evidence_on"), missing="undated")
    sources = row.get("evidence_sources") or "no source"
    if row.get("evidence_stale"):
        return f"known {here} only from {sources}, {day}"
    held = row.get("open_period_sources")
    opened = f"; current in {held}" if is_known(held) else ""
    return f"evidence: {sources}, latest {day}{opened}"


def day_text(value: object, missing: str = "") -> str:
    """A date as YYYY-MM-DD, or `missing`."""
    return missing if value is None or pd.isna(value) else str(value)[:10]


def _print_elsewhere(
    elsewhere: pd.DataFrame, home: Home, current: str, services: dict[str, str]
) -> None:
    """Relatives a source declares who live at another address (or none known)."""
    if elsewhere.empty:
        return
    print(f"Related, living elsewhere (what that person is to {home.name or current}):")
    for row in elsewhere.to_dict("records"):
        name = full_name(row["given_name"], row["family_name"])
        said = f"{row['relationship']} ({_declared_by(row)})"
        print(
            f"  {row['related_person_id']}  {name:<30} {day_text(row['date_of_birth']):<10}  "
            f"{said}, {_there(row)}"
        )
        _print_services(services, row["related_person_id"])


def _there(row: dict) -> str:
    """Where a relative lives, as a postcode district (the view has the address)."""
    from care_etl.index.analyst import postcode_district

    if is_known(row.get("date_of_death")):
        return f"died {str(row['date_of_death'])[:10]}"
    if not is_known(row.get("household_id")):
        return "no current address known"
    district = postcode_district(row.get("postcode"))
    where = f"at {district}" if district else f"at {row.get('address') or 'an unnamed address'}"
    if row.get("evidence_stale"):
        return f"{where} ({_evidence(row, 'there')})"
    return where


def _disagree(members: pd.DataFrame) -> bool:
    """Whether any member's relationship is declared otherwise by another source."""
    if "other_relationships" not in members.columns:
        return False
    return bool(members["other_relationships"].notna().any())


def _died(members: pd.DataFrame) -> pd.Series:
    """Members a source records as dead (a view of an earlier release has no such column)."""
    if "date_of_death" not in members.columns:
        return pd.Series(False, index=members.index)
    return members["date_of_death"].notna()


def _print_members(members: pd.DataFrame, services: dict[str, str]) -> None:
    """A line per member, and under it how old the evidence is that they live there and the
    services involved with them."""
    for member in members.to_dict("records"):
        name = full_name(member["given_name"], member["family_name"])
        day = day_text(member["date_of_birth"])
        print(f"  {member['member_person_id']}  {name:<30} {day:<10}  {_relation(member)}")
        if "evidence_stale" in member:
            mark = "!" if member["evidence_stale"] else " "
            print(f"  {mark:<15}{_evidence(member)}")
        _print_services(services, member["member_person_id"])


#: How the services involved with a person are introduced.
SERVICES = "services involved: "


def _print_services(services: dict[str, str], person_id: str) -> None:
    if person_id in services:
        print(f"  {'':<15}{SERVICES}{services[person_id]}")


def create_roles(url: str) -> None:
    """Create (or bring up to date) the two roles and their grants; safe to run again."""
    from care_etl.index.publish import ANALYST_SCHEMA, connected, is_production, prepare

    if not is_production(url):
        raise CareEtlError("roles need PostgreSQL: pass --database postgresql+psycopg://...")
    database = sa.engine.make_url(url).database
    with connected(url, "creating roles in {url} failed: {why}", begin=True) as conn:
        # Grants apply to the tables there are, and the account that runs the pipeline
        # must own them: tables made here would belong to whoever creates the roles.
        if not sa.inspect(conn).has_table("pipeline_run"):
            raise CareEtlError(
                f"{_safe(url)} holds no index yet: run care-etl run into it first, as the "
                "account that will own it, then create the roles"
            )
        prepare(conn)
        for role in (ANALYST_ROLE, ENGINEER_ROLE):
            conn.execute(sa.text(_CREATE_ROLE.format(role=role)))
            conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
        for statement in _grants(ANALYST_SCHEMA):
            conn.execute(sa.text(statement))
        _analyst_on_search_path(conn, database, ANALYST_SCHEMA)


def _analyst_on_search_path(conn: sa.Connection, database: str, schema: str) -> None:
    """Put the analyst schema on the database's search path, so that an analyst's query
    names analyst_person as it does on SQLite (the guide's queries run on both); the index's
    own tables keep their names in public, and no table of public is named analyst_*."""
    path = conn.execute(sa.text("SELECT current_setting('search_path')")).scalar_one()
    schemas = [p.strip() for p in path.split(",") if p.strip()]
    if schema not in schemas:  # the database's owner may, as GRANT CONNECT above needs
        value = ", ".join([*schemas, schema])
        conn.execute(sa.text(f'ALTER DATABASE "{database}" SET search_path = {value}'))


_CREATE_ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role} NOLOGIN;
  END IF;
END $$
"""


def _grants(analyst: str) -> list[str]:
    a, e = ANALYST_ROLE, ENGINEER_ROLE
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {a}",
        f"GRANT USAGE ON SCHEMA {analyst} TO {a}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {analyst} TO {a}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {analyst} GRANT SELECT ON TABLES TO {a}",
        f"GRANT USAGE, CREATE ON SCHEMA public, {analyst} TO {e}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public, {analyst} TO {e}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public, {analyst} TO {e}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public, {analyst} GRANT ALL ON TABLES TO {e}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public, {analyst} GRANT ALL ON SEQUENCES TO {e}",
        # who looked at whom is appended to, never rewritten (retention runs as the owner)
        f"REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM {e}",
    ]


def _roles_create(args: argparse.Namespace) -> int:
    url = _url(args)
    create_roles(url)
    print(f"roles {ANALYST_ROLE} (schema analyst, read only) and {ENGINEER_ROLE} (all) ready")
    return 0


def _safe(url: str) -> str:
    from care_etl.index.publish import safe_url

    return safe_url(url)
