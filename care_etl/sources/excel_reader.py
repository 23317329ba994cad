"""Read one sheet of an .xlsx workbook as raw records: text values, sheet-row lineage.

Housing workbooks put titles, a generation date and blank rows above the header, sometimes in
merged cells, and the number of those rows varies; so the header row is found by looking for
the expected column names rather than assumed. Excel shows a 12-digit UPRN stored as a number
as `1.00023E+11`: integral numbers are written back as their digits.
"""

from __future__ import annotations

import datetime as dt
import math
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.errors import SourceReadError

# What a damaged .xlsx raises from its zip and XML layers (XML errors subclass SyntaxError).
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError, SyntaxError)
HEADER_SEARCH_ROWS = 30
HEADER_MIN_SHARE = 0.5  # a row holding at least half the expected columns is the header


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheet names, in workbook order."""
    with _workbook(Path(path)) as wb:
        return list(wb.sheetnames)


def read_sheet(path: Path, sheet: str, expected_columns: Sequence[str]) -> pd.DataFrame:
    """Raw records of `sheet`, with the header row found among the first 30 rows.

    `df.attrs` holds `header_row` (sheet row number), `headers` (the names seen there) and
    `missing_columns` (expected names not found), for the caller's schema-drift check.
    Columns without a header cell are not read. Fully empty rows are skipped.
    """
    return read_sheets(path, {sheet: expected_columns})[sheet]


def read_sheets(path: Path, sheets: dict[str, Sequence[str]]) -> dict[str, pd.DataFrame]:
    """`read_sheet` for several sheets of one workbook, opening it once (opening reads the
    workbook's whole table of shared strings, a good part of reading a sheet)."""
    path_str = str(path)
    path = Path(path)
    with _workbook(path) as wb:
        frames = {}
        for sheet, expected_columns in sheets.items():
            if sheet not in wb.sheetnames:
                raise SourceReadError(
                    f"{path}: no sheet {sheet!r} (the workbook has "
                    f"{', '.join(map(repr, wb.sheetnames))})"
                )
            with _damage(path, sheet):
                frames[sheet] = _read_open_sheet(wb[sheet], path, path_str, sheet, expected_columns)
    return frames


def _read_open_sheet(
    ws: Any, path: Path, path_str: str, sheet: str, expected_columns: Sequence[str]
) -> pd.DataFrame:
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # some writers record a wrong used range; read what is there
    rows = ws.iter_rows(values_only=True)
    header_row, header_cells = _find_header(rows, expected_columns, path, sheet)
    columns = _columns(header_cells, path, sheet, header_row)
    records = []
    for row_number, row in enumerate(rows, start=header_row + 1):
        values = [_text(row[i]) if i < len(row) else None for i, _ in columns]
        if any(v is not None for v in values):
            records.append((row_number, values))
    names = [name for _, name in columns]
    df = pd.DataFrame([v for _, v in records], columns=names, dtype=object).astype(object)
    df["_file"] = path_str
    df["_sheet"] = sheet
    df["_row"] = pd.Series([n for n, _ in records], dtype="int64")
    found = {_key(n) for n in names}
    df.attrs.update(
        sheet=sheet,
        header_row=header_row,
        headers=names,
        missing_columns=[c for c in expected_columns if _key(c) not in found],
    )
    return df


@contextmanager
def _damage(path: Path, sheet: str) -> Iterator[None]:
    """Read-only mode parses lazily: a damaged sheet part only fails while rows are read."""
    try:
        yield
    except _DAMAGE as exc:
        raise SourceReadError(
            f"{path} [{sheet}]: damaged sheet data ({type(exc).__name__})"
        ) from exc


@contextmanager
def _workbook(path: Path, sheet: str | None = None) -> Iterator[Any]:
    """Open read-only (streams large sheets); any failure is one line naming the file."""
    import openpyxl  # imported here: only the housing source needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError as exc:
        raise SourceReadError(f"{path}: file not found") from exc
    except (InvalidFileException, *_DAMAGE) as exc:
        raise SourceReadError(
            f"{path}: not a readable .xlsx workbook ({type(exc).__name__})"
        ) from exc
    try:
        yield wb
    except _DAMAGE as exc:
        # read-only mode parses lazily: a damaged sheet part only fails while rows are read
        where = f"{path} [{sheet}]" if sheet else str(path)
        raise SourceReadError(f"{where}: damaged sheet data ({type(exc).__name__})") from exc
    finally:
        wb.close()


def _find_header(
    rows: Iterator[tuple[Any, ...]], expected: Sequence[str], path: Path, sheet: str
) -> tuple[int, tuple[Any, ...]]:
    """The first row holding enough of the expected names (the first non-empty row if none given)."""
    wanted = {_key(c) for c in expected}
    needed = max(1, math.ceil(len(wanted) * HEADER_MIN_SHARE))
    for number, row in enumerate(rows, start=1):
        if number > HEADER_SEARCH_ROWS:
            break
        keys = {_key(v) for v in row if isinstance(v, str)}
        if (wanted and len(wanted & keys) >= needed) or (not wanted and any(_text(v) for v in row)):
            return number, row
    raise SourceReadError(
        f"{path} [{sheet}]: no header row in the first {HEADER_SEARCH_ROWS} rows holds at least "
        f"{needed} of the {len(wanted)} expected columns"
    )


def _columns(cells: tuple[Any, ...], path: Path, sheet: str, row: int) -> list[tuple[int, str]]:
    """(position, name) of each named header cell; a repeated name is an error."""
    columns = [(i, str(v).strip()) for i, v in enumerate(cells) if _text(v) is not None]
    names = [name for _, name in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceReadError(f"{path} [{sheet}]: row {row}: duplicate column {duplicates[0]!r}")
    return columns


def _key(name: object) -> str:
    return " ".join(str(name).split()).casefold()


def _text(value: Any) -> str | None:
    """A cell as the text a person means by it (dates ISO, integral numbers as digits)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return text or None
