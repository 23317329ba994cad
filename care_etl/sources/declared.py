"""What a source declares about its own records beyond their rows: relationships between
them (social care's `relationships`) and the services involved with them (its `involvements`).

The readers bring person rows and lookups joined onto them, one row per person; a table of
pairs, or of several rows per person, does not fit that shape, so it is read here, beside
them (ingest), and travels with the staged source to the index. It is kept in the source's
accepted version with its records, so when the database cannot be read, or a table of it,
or the feed is blocked, the last accepted relationships and involvements stand in with the
last accepted records, rather than vanishing from the index for a run. A contract declares
one with a schema object of a custom `role`:

- `relationship`: its first two columns that reference the person object's key are the
  person and the related person, and its first other column is the relationship ("what the
  related person is to the person");
- `involvement`: its first column that references the person object's key is the person;
  its other columns, primary key aside, are in order the service, the date it started, the
  date it ended (none while open) and its status (`Open`, `Closed`), the last optional.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from care_etl.contracts.model import Contract, SourceObject
from care_etl.errors import SourceReadError

RELATIONSHIP, INVOLVEMENT = "relationship", "involvement"
DECLARED_COLUMNS = ["source", "source_record_id", "related_source_record_id", "relationship"]
INVOLVEMENT_COLUMNS = ["source", "source_record_id", "service", "start_date", "end_date", "status"]
COLUMNS = {RELATIONSHIP: DECLARED_COLUMNS, INVOLVEMENT: INVOLVEMENT_COLUMNS}
log = logging.getLogger(__name__)
Reader = Callable[[Contract, SourceObject, Path], pd.DataFrame]


def declared_roles(contract: Contract) -> list[str]:
    """The roles (relationship, involvement) of the tables a relational source declares."""
    if contract.format != "sqlite":
        return []
    return sorted({o.role for o in contract.objects if o.role in COLUMNS})


def read_declared_tables(
    contract: Contract, sources_dir: Path
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The source's declared tables by role, and a one-line warning for each table that could
    not be read; a role whose table failed is left out, so its last accepted version can
    stand in (care_etl.quality.gate)."""
    readers: dict[str, Reader] = {RELATIONSHIP: _relationships, INVOLVEMENT: _involvements}
    found: dict[str, list[pd.DataFrame]] = {}
    failed: set[str] = set()
    warnings = []
    for obj in contract.objects:
        if obj.role not in declared_roles(contract):
            continue
        try:
            found.setdefault(obj.role, []).append(readers[obj.role](contract, obj, sources_dir))
        except SourceReadError as exc:
            failed.add(obj.role)
            warnings.append(f"declared {obj.role} not read: {exc}")
    tables = {role: _joined(frames, COLUMNS[role]) for role, frames in found.items()}
    return {r: t for r, t in tables.items() if r not in failed}, warnings


def joined_role(tables: list[dict[str, pd.DataFrame]], role: str) -> pd.DataFrame:
    """One role's tables of several sources as one frame (none: an empty frame)."""
    return _joined([t[role] for t in tables if role in t], COLUMNS[role])


def read_involvements(contracts: list[Contract], sources_dir: Path) -> pd.DataFrame:
    """Every service involvement of every relational source, dates as datetime64 (NaT where
    missing or unreadable), as the index would have them; a table that fails is skipped,
    with a warning."""
    tables = []
    for contract in contracts:
        found, warnings = read_declared_tables(contract, sources_dir)
        for warning in warnings:
            log.warning(warning)
        tables.append(found)
    return joined_role(tables, INVOLVEMENT)


def _joined(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _person_refs(contract: Contract, obj: SourceObject) -> list[str]:
    """The object's columns that reference the person object's key."""
    person = contract.person_object.id
    return [c.name for c in obj.columns if c.references and c.references.split(".")[0] == person]


def _table(contract: Contract, obj: SourceObject, sources_dir: Path, columns: list[str]):
    from care_etl.sources.read import database_location
    from care_etl.sources.sql_reader import read_table

    url, label = database_location(contract, sources_dir)
    return read_table(url, obj.physical_name, columns, label=label)


def _relationships(contract: Contract, obj: SourceObject, sources_dir: Path) -> pd.DataFrame:
    refs = _person_refs(contract, obj)
    kinds = [c.name for c in obj.columns if not c.references]
    if len(refs) < 2 or not kinds:
        raise SourceReadError(
            f"{contract.file}: schema/{obj.name}: a relationship object needs two columns "
            "referencing the person key and one naming the relationship"
        )
    table = _table(contract, obj, sources_dir, [refs[0], refs[1], kinds[0]])
    table = table.dropna(subset=[refs[0], refs[1]])
    return pd.DataFrame(
        {
            "source": contract.id,
            "source_record_id": table[refs[0]].astype(str),
            "related_source_record_id": table[refs[1]].astype(str),
            "relationship": table[kinds[0]],
        }
    )[DECLARED_COLUMNS]


def _involvements(contract: Contract, obj: SourceObject, sources_dir: Path) -> pd.DataFrame:
    from care_etl.standardise.dates import clean_dates

    refs = _person_refs(contract, obj)
    rest = [c for c in obj.columns if not c.references and c.primary_key_position is None]
    if not refs or len(rest) < 3:
        raise SourceReadError(
            f"{contract.file}: schema/{obj.name}: an involvement object needs a column "
            "referencing the person key, then the service, its start date and its end date"
        )
    columns = [refs[0], *(c.name for c in rest[:4])]
    table = _table(contract, obj, sources_dir, columns).dropna(subset=[refs[0], rest[0].name])
    found = pd.DataFrame(
        {
            "source": contract.id,
            "source_record_id": table[refs[0]].astype(str),
            "service": table[rest[0].name].astype(str).str.strip(),
            "status": table[rest[3].name] if len(rest) > 3 else None,
        }
    )
    # A planned end may lie ahead (so a two-digit year reads as 20xx); a start may not.
    later = dt.date(9999, 12, 31)
    for column, declared, today in (("start_date", rest[1], None), ("end_date", rest[2], later)):
        formats = [declared.date_format] if declared.date_format else None
        found[column] = clean_dates(table[declared.name], formats, today=today).value.to_numpy()
        unread = int((table[declared.name].notna() & found[column].isna()).sum())
        if unread:  # counted, never shown: the values are special-category data
            log.warning("%s: %s.%s: %d unreadable date(s) left blank",
                        contract.id, obj.name, declared.name, unread)  # fmt: skip
    return found[INVOLVEMENT_COLUMNS]
