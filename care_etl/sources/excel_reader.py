"""Read one sheet of an .xlsx workbook as raw records: text values, sheet-row lineage.

Housing workbooks put titles, a generation date and blank rows above the header, sometimes in
merged cells, and the number of those rows varies; so the header row is found by looking for
the expected column names rather than assumed. Excel shows a 12-digit UPRN stored as a number
as `1.00023E+11`: integral numbers are written back as their digits.

Cells are read with calamine (Rust), several times faster than openpyxl's XML parser on these
workbooks, which are read whole on every run. The rare workbook that the two would read
differently is read with openpyxl, as before, so that records and errors stay as they were: one
calamine cannot open or whose sheet it cannot read (openpyxl names the failure, or tolerates
it), and one holding an error cell (`#N/A`: calamine gives a blank, openpyxl its text) or an
`_x000D_` escape (Excel's carriage return: calamine decodes it, openpyxl keeps the text).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.errors import SourceReadError
from care_etl.sources.headers import header_key, repeated_position

# What a damaged .xlsx raises from its zip and XML layers (XML errors subclass SyntaxError;
# openpyxl's typed XML objects raise TypeError on an attribute they do not know).
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    ValueError,
    OSError,
    SyntaxError,
    TypeError,
)
HEADER_SEARCH_ROWS = 30
HEADER_MIN_SHARE = 0.5  # a row holding at least half the expected columns is the header
#: The workbook types openpyxl opens; calamine would also open .xls and .ods files, and an
#: .xlsx file under any other name.
XLSX_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm")
#: How a sheet part marks an error cell (`<c r="B7" t="e"><v>#N/A</v></c>`).
_ERROR_CELL = (b't="e"', b"t='e'")
_ESCAPE = re.compile(rb"_x[0-9A-Fa-f]{4}_")
#: A sheet's recorded used range (`<dimension ref="A1:F4139"/>`), its last column's letters.
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension ref="[A-Z]*[0-9]*:?([A-Z]+)[0-9]+"')
#: calamine holds a sheet as a full grid: a stray value far to the right (column XFD) would
#: make every row that wide, where openpyxl reads only the cells there are.
MAX_CALAMINE_COLUMNS = 256

Rows = Sequence[Sequence[Any]]


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheet names, in workbook order."""
    with _workbook(Path(path)) as (names, _):
        return names


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
    try:
        return _read_sheets(path, sheets, calamine=True)
    except _CalamineCannot:
        return _read_sheets(path, sheets, calamine=False)


def _read_sheets(
    path: Path, sheets: dict[str, Sequence[str]], *, calamine: bool
) -> dict[str, pd.DataFrame]:
    path_str = str(path)
    path = Path(path)
    with _workbook(path, calamine=calamine) as (names, rows_of):
        frames = {}
        for sheet, expected_columns in sheets.items():
            found = _sheet_named(sheet, names, path)
            with _damage(path, found):
                rows = rows_of(found)
            frames[sheet] = _frame(rows, path, path_str, found, expected_columns)
    return frames


def _sheet_named(sheet: str, names: list[str], path: Path) -> str:
    """The workbook's name for `sheet`: written exactly, else in other capitals or spacing
    ("household members", "Tenancies "), as header names are matched; a workbook saved by
    hand renames sheets more often than it drops them."""
    if sheet in names:
        return sheet
    alike = [name for name in names if header_key(name) == header_key(sheet)]
    if len(alike) == 1:
        return alike[0]
    raise SourceReadError(
        f"{path}: no sheet {sheet!r} (the workbook has {', '.join(map(repr, names))})"
    )


def _frame(
    rows: Rows, path: Path, path_str: str, sheet: str, expected_columns: Sequence[str]
) -> pd.DataFrame:
    """The records below the header; `rows[0]` is sheet row 1."""
    header_row, header_cells = _find_header(iter(rows), expected_columns, path, sheet)
    columns = _columns(header_cells, path, sheet, header_row)
    records = []
    for row_number, row in enumerate(rows[header_row:], start=header_row + 1):
        values = [_text(row[i]) if i < len(row) else None for i, _ in columns]
        if any(v is not None for v in values):
            records.append((row_number, values))
    names = [name for _, name in columns]
    df = pd.DataFrame([v for _, v in records], columns=names, dtype=object).astype(object)
    df["_file"] = path_str
    df["_sheet"] = sheet
    df["_row"] = pd.Series([n for n, _ in records], dtype="int64")
    found = {header_key(n) for n in names}
    df.attrs.update(
        sheet=sheet,
        header_row=header_row,
        headers=names,
        missing_columns=[c for c in expected_columns if header_key(c) not in found],
    )
    return df


class _CalamineCannot(Exception):
    """calamine cannot read a sheet: the workbook is read with openpyxl instead."""


def _calamine_rows(wb: Any) -> Callable[[str], Rows]:
    from python_calamine import CalamineError

    def rows_of(sheet: str) -> Rows:
        # skip_empty_area=False keeps the blank rows and columns above and left of the data,
        # so that rows[0] is sheet row 1 and the lineage row numbers hold. calamine takes the
        # used range from the cells, not from a (sometimes wrong) recorded dimension.
        try:
            rows = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except CalamineError as exc:  # a damaged sheet part: openpyxl names it as before
            raise _CalamineCannot(sheet) from exc
        rows[:HEADER_SEARCH_ROWS] = [
            [_as_openpyxl(v) for v in r] for r in rows[:HEADER_SEARCH_ROWS]
        ]
        return rows

    return rows_of


def _as_openpyxl(value: Any) -> Any:
    """A cell as openpyxl gives it, so a header cell's name reads as before: calamine gives
    blanks as "", every number as a float, and a date cell at midnight as a date."""
    if value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def _openpyxl_rows(wb: Any) -> Callable[[str], Rows]:
    def rows_of(sheet: str) -> Rows:
        ws = wb[sheet]
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some writers record a wrong used range; read what is there
        return list(ws.iter_rows(values_only=True))

    return rows_of


def _read_differently(path: Path) -> bool:
    """Whether a part of the workbook may hold a cell calamine reads differently from openpyxl
    (text that only looks like one costs reading the workbook with openpyxl), or a sheet
    recorded as too wide for calamine's full grid."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.lower().endswith(".xml"):
                    data = archive.read(info)
                    if any(m in data for m in _ERROR_CELL) or (
                        b"_x" in data and _ESCAPE.search(data)
                    ):
                        return True
                    dimension = _DIMENSION.search(data, 0, 4096)
                    if dimension and _column_number(dimension[1]) > MAX_CALAMINE_COLUMNS:
                        return True
    except _DAMAGE:
        return False  # calamine has opened it; if it cannot read a sheet, openpyxl will
    return False


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - ord("A") + 1
    return number


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
def _workbook(
    path: Path, *, calamine: bool = True
) -> Iterator[tuple[list[str], Callable[[str], Rows]]]:
    """The sheet names and a reader of a sheet's rows: calamine's, or openpyxl's for a workbook
    the two would read differently. Any failure to open is one line naming the file."""
    with ExitStack() as stack:
        wb = _calamine_workbook(path) if calamine else None
        if wb is not None:
            stack.callback(wb.close)
        if wb is None or not wb.sheet_names or _read_differently(path):
            xl = stack.enter_context(_openpyxl_workbook(path))
            yield list(xl.sheetnames), _openpyxl_rows(xl)
        else:
            yield list(wb.sheet_names), _calamine_rows(wb)


def _calamine_workbook(path: Path) -> Any | None:
    """The workbook opened with calamine; None where openpyxl is to open it or refuse it: a
    file calamine cannot open, or another type (.xls, .ods) that calamine reads and openpyxl
    refuses."""
    import python_calamine  # imported here: only the housing source needs it

    if path.suffix.lower() not in XLSX_SUFFIXES:
        return None
    try:
        return python_calamine.load_workbook(path)
    except (python_calamine.CalamineError, OSError):
        return None


@contextmanager
def _openpyxl_workbook(path: Path) -> Iterator[Any]:
    """Open read-only (streams large sheets); any failure is one line naming the file."""
    import openpyxl  # imported here: only the housing source needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError as exc:
        raise SourceReadError(f"{path}: file not found") from exc
    except (InvalidFileException, *_DAMAGE) as exc:
        raise SourceReadError(
            f"{path}: not a readable .xlsx workbook ({type(exc).__name__}{_what_it_is(path, exc)})"
        ) from exc
    try:
        yield wb
    finally:
        wb.close()


#: The first bytes of an Office file in an OLE container: Excel's older .xls, or an .xlsx
#: saved with a password (Excel encrypts it into one), which no reader here can open.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _what_it_is(path: Path, exc: BaseException) -> str:
    """What a workbook that is no zip, or a broken one, looks like from its first bytes, in a
    few words for the person who must ask for it again: all three said only 'BadZipFile'."""
    if not isinstance(exc, zipfile.BadZipFile | EOFError | zlib.error):
        return ""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return ""
    if head.startswith(_OLE):
        return (
            ": saved with a password, or in Excel's older .xls format; save it as .xlsx "
            "without a password"
        )
    if head.startswith(b"PK"):
        return ": the file is cut short or damaged; ask for it again"
    if head and b"\x00" not in head and _looks_like_text(head):
        return ": it is a text file (a CSV?) named .xlsx"
    return ""


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _find_header(
    rows: Iterator[Sequence[Any]], expected: Sequence[str], path: Path, sheet: str
) -> tuple[int, Sequence[Any]]:
    """The first row holding enough of the expected names (the first non-empty row if none given)."""
    wanted = {header_key(c) for c in expected}
    needed = max(1, math.ceil(len(wanted) * HEADER_MIN_SHARE))
    for number, row in enumerate(rows, start=1):
        if number > HEADER_SEARCH_ROWS:
            break
        keys = {header_key(v) for v in row if isinstance(v, str)}
        if (wanted and len(wanted & keys) >= needed) or (not wanted and any(_text(v) for v in row)):
            return number, row
    raise SourceReadError(
        f"{path} [{sheet}]: no header row in the first {HEADER_SEARCH_ROWS} rows holds at least "
        f"{needed} of the {len(wanted)} expected columns"
    )


def _columns(cells: Sequence[Any], path: Path, sheet: str, row: int) -> list[tuple[int, str]]:
    """(position, name) of each named header cell; a repeated name is an error."""
    columns = [(i, str(v).strip()) for i, v in enumerate(cells) if _text(v) is not None]
    names = [name for _, name in columns]
    first, again = repeated_position(names)
    if again:  # by position: a sheet without its header row has a record there
        raise SourceReadError(
            f"{path} [{sheet}]: row {row}: header cells {first} and {again} have the same name"
        )
    return columns


def _text(value: Any) -> str | None:
    """A cell as the text a person means by it (dates ISO, integral numbers as digits)."""
    if value.__class__ is str:  # most cells: tested first, as this runs for every cell
        return value.strip() or None
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
