"""`care-etl retention`, and the pruning every run does on its own.

The command reports, per store and source, how many items are held for records no longer in
any source and how many of those are past the contract's retention since the record was last
seen, and the access log's rows and those older than its own period (index.access);
`--apply` deletes what is past (the database's in one transaction, then the files). Counts
only: no value of a record is read into the output. The ordinary run prunes only what can
be recomputed, the OCR cache; deleting a reviewer's decision is left to the command, run on
purpose or on a schedule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from care_etl.errors import CareEtlError, DatabaseError
from care_etl.index import retention, retention_files
from care_etl.index.retention import Held
from care_etl.run_lock import one_run_at_a_time

log = logging.getLogger(__name__)

ACTOR = "care-etl retention"


@dataclass
class Where:
    """The stores of one deployment: the index database and the folders beside the sources."""

    database_url: str
    sources_dir: Path
    ocr_cache: Path
    dagster_home: Path | None


def after_run(where: Where, contracts: list[Any]) -> None:
    """After a published run: keep each source's retention, note inferred departures and
    prune the OCR cache.

    Never fails the run: the index is already published, and the next run tries again.
    """
    now = retention.utcnow()
    try:
        engine = _engine(where.database_url)
        with engine.begin() as conn:
            retention.note_after_run(conn, contracts, now)
        engine.dispose()
        retention_files.prune_ocr_cache(where.ocr_cache, where.sources_dir, contracts, now)
    except (CareEtlError, sa.exc.SQLAlchemyError, OSError) as exc:
        log.warning("retention: not brought up to date after this run (%s)", type(exc).__name__)


def _engine(url: str) -> sa.Engine:
    from care_etl.index.publish import engine_for

    return engine_for(url)


def survey_all(
    where: Where, contracts: list[Any], now: dt.datetime, conn: sa.Connection
) -> tuple[retention.Survey, list[Held]]:
    """Every store's counts: the database's (with what --apply deletes) and the files'."""
    from care_etl.incremental.state import cache_root

    found = retention.survey(conn, contracts, now)
    # a source runs if a contract names it or the index holds its records (another folder)
    running = {c.id for c in contracts} | {source for source, _ in found.seen.present}
    digests = retention_files.form_digests(where.sources_dir, contracts)
    limits = found.seen.limits
    files = [
        *retention_files.ocr_held(where.ocr_cache, digests, contracts, now),
        *retention_files.incremental_held(cache_root(where.ocr_cache), running, limits, now),
        *retention_files.dagster_held(where.dagster_home, running, limits, now),
    ]
    return found, files


def run_retention(where: Where, contracts: list[Any], *, apply: bool) -> list[Held]:
    """Report (and with `apply`, delete) what is past retention; returns every store's counts."""
    from care_etl.index.publish import safe_url, why

    now = retention.utcnow()
    engine = _engine(where.database_url)
    try:
        with engine.begin() as conn:
            found, files = survey_all(where, contracts, now, conn)
            if apply:
                retention.apply(conn, found, ACTOR)
                retention.log_files(conn, files, ACTOR, now)
        if apply:
            retention_files.delete(files)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"retention in {safe_url(where.database_url)}: {why(exc)}") from None
    finally:
        engine.dispose()
    return [*found.items, *files]


# --- the command ---------------------------------------------------------------------------


def add_command(commands: Any) -> None:
    """Add `care-etl retention` to care-etl's parser."""
    from care_etl.locations import DEFAULT_CONTRACTS_DIR

    cmd = commands.add_parser(
        "retention",
        help="what the product keeps for records gone from the sources, and past retention",
    )
    cmd.add_argument("--sources", type=Path, required=True, help="the sources folder")
    cmd.add_argument(
        "--contracts",
        type=Path,
        default=DEFAULT_CONTRACTS_DIR,
        help="data contracts folder (default: the project's data_contracts/)",
    )
    cmd.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL of the index (default: $CARE_ETL_DATABASE_URL, else "
        "care_etl.db beside the sources folder)",
    )
    cmd.add_argument(
        "--dagster-home",
        type=Path,
        default=None,
        help="Dagster's home, for its storage (default: $DAGSTER_HOME, if set)",
    )
    cmd.add_argument(
        "--apply", action="store_true", help="delete what is past retention (default: report only)"
    )
    cmd.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from care_etl.contracts import load_contracts

    where = _where(args)
    # What is past retention is deleted even while a contract lacks what IG needs before a
    # source is read (its lawful basis, say): the run refuses it, the deletion must not.
    contracts = load_contracts(args.contracts, check_governance=False)
    # Deleting waits for no run, and no run starts meanwhile: a run rewrites what it deletes.
    with one_run_at_a_time(where.ocr_cache) if args.apply else nullcontext():
        items = run_retention(where, contracts, apply=args.apply)
    _print(items, where, applied=args.apply)
    return 0


def _where(args: argparse.Namespace) -> Where:
    """The deployment's stores, checked: a wrong path is one line, not an empty report."""
    from care_etl.locations import cache_dir_for, check_sources_folder, index_url_for

    sources = args.sources
    check_sources_folder(sources)

    url = index_url_for(sources, args.database)
    _check_index_exists(url)
    env_home = os.environ.get("DAGSTER_HOME")
    home = args.dagster_home or (Path(env_home) if env_home else None)
    if home is not None and not home.is_dir():
        raise CareEtlError(f"{home}: Dagster home folder not found")
    return Where(url, sources, Path(cache_dir_for(sources)), home)


def _check_index_exists(url: str) -> None:
    """A SQLite path with no file is a typo: opening it would create an empty database."""
    from care_etl.index.publish import missing_sqlite_file

    missing = missing_sqlite_file(url)
    if missing:
        raise CareEtlError(f"{missing}: no index there (run care-etl run first)")


def _print(items: list[Held], where: Where, *, applied: bool) -> None:
    from care_etl.index.publish import safe_url

    out = sys.stdout
    print(f"retention: {safe_url(where.database_url)}, sources {where.sources_dir}", file=out)
    shown = [i for i in items if i.held]
    if not shown:
        print("nothing is held for records gone from the sources", file=out)
    else:
        width = max(len(i.source) for i in shown) + 2
        print(f"{'store':<24}{'source':<{width}}{'held':>8}{'past':>8}  retention", file=out)
        for i in shown:
            print(f"{i.store:<24}{i.source:<{width}}{i.held:>8}{i.past:>8}  {i.limit}", file=out)
    past = sum(i.past for i in items)
    verb = "deleted" if applied else "past retention (run with --apply to delete)"
    print(f"{past} item(s) {verb}", file=out)
