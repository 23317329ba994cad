"""Read one source as its contract describes it: files or tables in, raw person rows out.

Each reader knows a format; this module knows which reader a contract needs, checks the
columns against the contract (schema drift), joins lookup objects onto the person rows (a
lookup's `historyAs` carries the rows its `rowFilter` sets aside, such as ended addresses, as
one extended field) and marks withdrawn rows. A file that cannot be read is reported by name and skipped, so the
other files of the source, and the other sources, still run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from care_etl.canonical import ADDRESS_HISTORY_KEYS
from care_etl.contracts.model import Contract, SourceObject, parse_row_filter
from care_etl.errors import SourceReadError
from care_etl.sources.headers import header_key

#: The column a lookup's history (`historyAs`) is joined as: `<lookup id>.<HISTORY_COLUMN>`.
HISTORY_COLUMN = "_history"
#: What the paper reader reads: ocr.IMAGE_SUFFIXES and PDF_SUFFIXES (kept in step by a test), and
#: a bureau's OCR text.
PAPER_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".txt"}
_TRUE = {"1", "true", "t", "yes", "y"}


@dataclass
class RawSource:
    """A source as read: person rows (text values, lineage) and what happened on the way."""

    contract_id: str
    records: pd.DataFrame
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: Required columns missing from some file or table: any one stops the whole source.
    missing_required: list[str] = field(default_factory=list)
    #: A relational source's declared tables by role (sources.declared), those it could read.
    declared: dict[str, pd.DataFrame] = field(default_factory=dict)


def read_source(
    contract: Contract,
    sources_dir: Path,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RawSource:
    """Read every file (or table) of the source; errors name the file and never stop the others."""
    readers = {"csv": _read_csv, "xlsx": _read_xlsx, "sqlite": _read_sql, "paper": _read_paper}
    result = RawSource(contract.id, pd.DataFrame())
    frames = readers[contract.format](contract, sources_dir, result, cache_dir, progress)
    frames = [f for f in frames if len(f)]
    person_cols = [*contract.person_object.column_names, "_file", "_row"]
    result.records = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=person_cols)
    )
    _mark_withdrawn(contract, result)
    return result


def _files(contract: Contract, sources_dir: Path, result: RawSource) -> list[Path]:
    files = sorted(p for p in sources_dir.glob(contract.location) if p.is_file())
    if not files:
        result.errors.append(f"{sources_dir / contract.location}: no files match")
    return files


def _each_file(
    contract: Contract,
    sources_dir: Path,
    result: RawSource,
    read_one: Callable[[Path, str], pd.DataFrame],
) -> list[pd.DataFrame]:
    """Read each file of the source; a file that fails is reported by name and skipped."""
    frames = []
    for path in _files(contract, sources_dir, result):
        name = _rel(path, sources_dir)
        try:
            frames.append(read_one(path, name))
            result.files.append(name)
        except SourceReadError as exc:
            result.errors.append(str(exc))
    return frames


def _read_csv(contract, sources_dir, result, cache_dir, progress) -> list[pd.DataFrame]:
    from care_etl.sources.csv_reader import read_csv

    def read_one(path: Path, name: str) -> pd.DataFrame:
        frame = read_csv(path)
        _warn_mixed_encoding(frame.attrs.get("cp1252_lines"), name, result)
        return _conform(frame.assign(_file=name), contract.person_object, name, result)

    return _each_file(contract, sources_dir, result, read_one)


#: How many line numbers a warning names; the rest are counted.
MAX_LINES_NAMED = 10


def _warn_mixed_encoding(lines: list[int] | None, name: str, result: RawSource) -> None:
    """A UTF-8 file some of whose lines were read as Windows-1252: a guess per line that a
    person should check, so it is named (lines only: a value is personal data)."""
    if not lines:
        return
    named = ", ".join(map(str, lines[:MAX_LINES_NAMED]))
    more = f" and {len(lines) - MAX_LINES_NAMED} more" if len(lines) > MAX_LINES_NAMED else ""
    which = f"lines {named}{more} are" if len(lines) > 1 else f"line {named} is"
    result.warnings.append(
        f"{name}: {which} not UTF-8 like the rest of the file; read as Windows-1252 "
        "(check the accented letters of those records)"
    )


def _read_xlsx(contract, sources_dir, result, cache_dir, progress) -> list[pd.DataFrame]:
    from care_etl.sources.excel_reader import read_sheets

    def read_one(path: Path, name: str) -> pd.DataFrame:
        objects = (contract.person_object, *contract.lookups)
        read = read_sheets(path, {obj.physical_name: obj.column_names for obj in objects})
        sheets = {}
        for obj in objects:
            where = f"{name} sheet {obj.physical_name}"
            sheet = read[obj.physical_name]
            result.warnings.extend(f"{where}: {w}" for w in sheet.attrs.get("warnings", ()))
            sheets[obj.id] = _conform(sheet.assign(_file=name), obj, where, result)
        return _join_lookups(contract, sheets, name, result)

    return _each_file(contract, sources_dir, result, read_one)


def database_location(contract: Contract, sources_dir: Path) -> tuple[str, str]:
    """The SQL source's URL, and how to name it in messages without a password: the URL in
    the environment variable the contract's server names, else the SQLite file it locates
    under the sources folder."""
    url_env = contract.server.get("databaseUrlEnv") or f"CARE_ETL_{contract.id.upper()}_URL"
    url = os.environ.get(str(url_env))
    if url:
        return url, f"${url_env}"
    path = sources_dir / contract.location
    if not path.is_file():
        raise SourceReadError(f"{path}: database file not found")
    return f"sqlite:///{path}", contract.location


def _read_sql(contract, sources_dir, result, cache_dir, progress) -> list[pd.DataFrame]:
    from care_etl.sources.declared import read_declared_tables
    from care_etl.sources.sql_reader import read_table

    try:
        url, label = database_location(contract, sources_dir)
        tables = {}
        for obj in (contract.person_object, *contract.lookups):
            found = _table_columns(url, obj.physical_name)
            present = [c for c in obj.column_names if found is None or c in found]
            table = read_table(url, obj.physical_name, present, label=label)
            where = f"{label}: table {obj.physical_name}"
            tables[obj.id] = _conform(table, obj, where, result, seen=found)
    except SourceReadError as exc:
        result.errors.append(str(exc))
        return []
    result.files.append(label)
    result.declared, warnings = read_declared_tables(contract, sources_dir)
    result.warnings.extend(warnings)
    person = tables[contract.person_object.id]
    key = contract.record_id_columns[0]
    person["_row"] = [f"{key}={value}" for value in person[key]]  # table and key, as lineage
    return [_join_lookups(contract, tables, label, result)]


def _read_paper(contract, sources_dir, result, cache_dir, progress) -> list[pd.DataFrame]:
    from care_etl.sources.paper_reader import read_errors, read_paper

    files = []
    for path in _files(contract, sources_dir, result):
        if path.suffix.lower() in PAPER_SUFFIXES:
            files.append(path)
        else:
            result.errors.append(f"{_rel(path, sources_dir)}: not a scan or OCR text file, skipped")
    if not files:
        return []
    obj = contract.person_object
    key = contract.record_id_columns[0]
    labels = {
        c.name: _paper_kind(c.canonical, c.logical_type) for c in obj.columns if c.name != key
    }
    try:
        frame = read_paper(files, labels, cache_dir=cache_dir, progress=progress)
    except SourceReadError as exc:
        result.errors.append(str(exc))
        return []
    frame[key] = frame["_record_id"]
    frame["_file"] = [_rel(Path(f), sources_dir) for f in frame["_file"]]
    result.files.extend(frame["_file"])
    result.errors.extend(read_errors(frame))
    return [frame]


def _paper_kind(canonical: str | None, logical_type: str | None) -> str:
    if logical_type == "date":
        return "date"
    return {"nhs_number": "digits", "postcode": "postcode"}.get(canonical or "", "text")


def _table_columns(url: str, table: str) -> list[str] | None:
    """The table's column names, or None when it cannot be inspected (read_table then says why)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return [c["name"] for c in sa.inspect(conn).get_columns(table)]
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError):
        return None


def _conform(
    frame: pd.DataFrame,
    obj: SourceObject,
    where: str,
    result: RawSource,
    *,
    seen: list[str] | None = None,
) -> pd.DataFrame:
    """Schema drift: a missing required column stops the source; others are warnings.

    `seen` lists the columns the file or table has when only the contract's were read.
    """
    expected = obj.column_names
    if seen is None:
        frame = _declared_names(frame, expected)
    seen = list(frame.columns) if seen is None else seen
    present = set(seen)
    missing = [c for c in expected if c not in present]
    required_missing = [c for c in missing if obj.column_by_name(c).required]
    optional_missing = [c for c in missing if c not in required_missing]
    if optional_missing:
        result.warnings.append(
            f"{where}: missing column(s) {_names(optional_missing)} declared in the contract; "
            f"the field is empty for all {len(frame):,} records read from it (restore the "
            f"column(s) in the extract, or remove them from schema/{obj.name}/properties)"
        )
    unexpected = [c for c in seen if not c.startswith("_") and c not in expected]
    if unexpected and 2 * (len(expected) - len(missing)) < len(expected):
        # Too few of the contract's names: the "header" may be a record (its line missing),
        # whose values must not go to a log.
        result.warnings.append(
            f"{where}: {len(unexpected)} column(s) the contract does not declare, and only "
            f"{len(expected) - len(missing)} of its {len(expected)}: is the header line "
            "missing? (their names are not shown: they may be a record's values)"
        )
    elif unexpected:
        result.warnings.append(
            f"{where}: unexpected column(s) {_names(unexpected)}; not read. To use them, add "
            f"to the contract's schema/{obj.name}/properties "
            + "; ".join(
                f"{{name: {c}, logicalType: string, classification: <class>}}" for c in unexpected
            )
            + " and have the change reviewed (care-etl contracts diff)"
        )
    if required_missing:
        hint = _separator_hint(seen, required_missing)
        _missing_required(required_missing, obj, where, result, hint)
    for col in missing:
        frame[col] = None
    lineage = [c for c in frame.columns if c.startswith("_")]
    return frame[[*expected, *lineage]]


def _declared_names(frame: pd.DataFrame, expected: list[str]) -> pd.DataFrame:
    """A header written in other capitals or spacing ("SURNAME", "Date of  birth") is the
    declared column, renamed to its declared name; one written exactly wins."""
    wanted = {header_key(c): c for c in expected if c not in frame.columns}
    renames: dict[str, str] = {}
    for column in frame.columns:
        target = wanted.get(header_key(column)) if column not in expected else None
        if target is not None and target not in renames.values():
            renames[column] = target
    return frame.rename(columns=renames) if renames else frame


def _missing_required(
    missing: list[str], obj: SourceObject, where: str, result: RawSource, hint: str = ""
) -> None:
    """Record the columns (the source is then blocked) and skip this file."""
    result.missing_required.extend(c for c in missing if c not in result.missing_required)
    raise SourceReadError(
        f"{where}: missing required column(s) {', '.join(missing)}{hint}; the source is "
        "stopped and its last accepted version stands in (restore the column in the extract, "
        f"or make it optional in the contract's schema/{obj.name} with information governance "
        "approval)"
    )


#: Separators an extract may use instead of a comma, as a message names them.
_OTHER_SEPARATORS = {";": "';'", "\t": "a tab"}


def _separator_hint(seen: list[str], missing: list[str]) -> str:
    """Why the columns may be missing: a file separated by ';' (a spreadsheet saved in a
    European locale) or tabs is read as one column, whose name is the whole header line.
    The hint is given only when the header, split that way, holds the missing columns."""
    line = ",".join(c for c in seen if not c.startswith("_"))
    for separator, name in _OTHER_SEPARATORS.items():
        if set(missing) <= {part.strip() for part in line.split(separator)}:
            return f" (the file seems to be separated by {name})"
    return ""


def _names(columns: list[str]) -> str:
    return ", ".join(f"'{c}'" for c in columns)


def _join_lookups(
    contract: Contract, frames: dict[str, pd.DataFrame], where: str, result: RawSource
) -> pd.DataFrame:
    """Left-join each lookup object onto the person rows through the contract's relationship."""
    person = contract.person_object
    records = frames[person.id]
    for lookup in contract.lookups:
        table = frames[lookup.id].drop(columns=["_file", "_row", "_sheet"], errors="ignore")
        person_key, lookup_key = _join_keys(contract, person, lookup)
        history = _history(table, lookup, lookup_key)
        table = _filter_rows(table, lookup)
        latest = lookup.custom.get("latestBy")
        if latest:
            table = table.sort_values(str(latest), ascending=False, na_position="last")
        table = table.drop_duplicates(subset=[lookup_key], keep="first")
        renamed = table.rename(columns={c: f"{lookup.id}.{c}" for c in table.columns})
        joined_key = f"{lookup.id}.{lookup_key}"
        records = records.merge(renamed, how="left", left_on=person_key, right_on=joined_key)
        if history is not None:
            records[f"{lookup.id}.{HISTORY_COLUMN}"] = records[person_key].map(history)
        unmatched = int(records[joined_key].isna().sum())
        if unmatched:
            count_name = f"unmatched_{lookup.id}"
            result.counts[count_name] = result.counts.get(count_name, 0) + unmatched
            if lookup.role == "lookup" and contract.format == "xlsx":
                result.warnings.append(
                    f"{where}: {unmatched} row(s) of {person.physical_name} match no row of "
                    f"{lookup.physical_name}; kept"
                )
    return records.astype(object).where(records.notna(), None)


def _join_keys(contract: Contract, person: SourceObject, lookup: SourceObject) -> tuple[str, str]:
    for col in person.columns:
        if col.references and col.references.split(".")[0] == lookup.id:
            target = lookup.column_by_id(col.references.split(".")[1])
            if target:
                return col.name, target.name
    for col in lookup.columns:
        if col.references and col.references.split(".")[0] == person.id:
            target = person.column_by_id(col.references.split(".")[1])
            if target:
                return target.name, col.name
    raise SourceReadError(
        f"{contract.file}: schema/{lookup.name}: no relationship joins it to {person.name}"
    )


def _history(table: pd.DataFrame, lookup: SourceObject, key: str) -> pd.Series | None:
    """With the lookup's `historyAs`: per person key, the rows its `rowFilter` sets aside (a
    person's ended addresses) as one JSON list of their canonical values, the latest first
    (`latestBy`); None without it. Linkage reads the list to recognise a person who moved:
    the old address on another record is then evidence for the pair, not against it."""
    if not lookup.custom.get("historyAs") or not lookup.custom.get("rowFilter"):
        return None
    column, want_null = parse_row_filter(str(lookup.custom["rowFilter"]))
    former = table[table[column].notna() if want_null else table[column].isna()]
    latest = lookup.custom.get("latestBy")
    if latest:
        former = former.sort_values(str(latest), ascending=False, na_position="last")
    fields = {
        c.name: c.canonical
        for c in lookup.columns
        if c.canonical in ADDRESS_HISTORY_KEYS and c.name in former.columns
    }
    if not fields or former.empty:
        return pd.Series(dtype=object)
    values = former[list(fields)].astype(object)
    values = values.where(values.notna(), None).rename(columns=fields)
    entries = [
        {k: str(v) for k, v in row.items() if v is not None} for row in values.to_dict("records")
    ]
    keyed = pd.DataFrame({"key": former[key].to_numpy(), "entry": entries})
    keyed = keyed[keyed["key"].notna() & keyed["entry"].map(bool)]
    return keyed.groupby("key", sort=False)["entry"].agg(lambda e: json.dumps(list(e)))


def _filter_rows(table: pd.DataFrame, lookup: SourceObject) -> pd.DataFrame:
    row_filter = lookup.custom.get("rowFilter")
    if not row_filter:
        return table
    column, want_null = parse_row_filter(str(row_filter))
    is_null = table[column].isna()
    return table[is_null if want_null else ~is_null]


def _mark_withdrawn(contract: Contract, result: RawSource) -> None:
    flag = contract.person_object.custom.get("withdrawnWhen")
    records = result.records
    if flag and flag in records.columns:
        records["_withdrawn"] = records[flag].map(lambda v: str(v).strip().lower() in _TRUE)
    else:
        records["_withdrawn"] = False
    result.counts["withdrawn"] = int(records["_withdrawn"].sum())


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
