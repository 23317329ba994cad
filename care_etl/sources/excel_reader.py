"""Read one sheet of an .xlsx workbook as raw records: text values, sheet-row lineage.

Housing workbooks put titles, a generation date and blank rows above the header, sometimes in
merged cells, and the number of those rows varies; so the header row is found by looking for
the expected column names rather than assumed. A merged cell's value is read in every cell it
spans while the header is looked for and named: a name merged down over two rows still names
its column, and a group title merged across columns is joined to the names below it where that
gives an expected name ("Tenancy" over "Start" and "End"). Among the records, a cell merged
down over several rows (a tenancy's reference over its members) is read into each of them,
with a warning naming the ranges. Excel shows a 12-digit UPRN
stored as a number as `1.00023E+11`: integral numbers are written back as their digits.

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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.errors import SourceReadError
from care_etl.sources.headers import header_key, repeated_position
from care_etl.sources.sheet_xml import Merge, SheetXml, cell_ref, column_letters, read_sheet_xml

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
    `missing_columns` (expected names not found), for the caller's schema-drift check, and
    `warnings`: what the caller should pass on (values under no header name, which are not
    read; formulas saved without a value, read as blank). Fully empty rows are skipped.
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
        found = {sheet: _sheet_named(sheet, names, path) for sheet in sheets}
        xml = read_sheet_xml(path, list(found.values()))
        frames = {}
        for sheet, expected_columns in sheets.items():
            with _damage(path, found[sheet]):
                rows = rows_of(found[sheet])
            frames[sheet] = _frame(
                rows, path, path_str, found[sheet], expected_columns, xml[found[sheet]]
            )
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
    rows: Rows,
    path: Path,
    path_str: str,
    sheet: str,
    expected_columns: Sequence[str],
    xml: SheetXml,
) -> pd.DataFrame:
    """The records below the header; `rows[0]` is sheet row 1."""
    header = _header(rows, xml.merges, expected_columns, path, sheet)
    columns = header.columns
    down = _merged_down(xml.merges, header)
    rows = _filled_down(rows, down) if down else rows
    records = []
    for row_number, row in enumerate(rows[header.last :], start=header.last + 1):
        values = [_text(row[i]) if i < len(row) else None for i, _ in columns]
        if any(v is not None for v in values):
            records.append((row_number, values))
    names = [name for _, name in columns]
    warnings = [
        *_merged_down_note(down),
        *_unnamed_values(rows[header.last :], header),
        *_uncached_formulas(xml.uncached, header),
    ]
    df = pd.DataFrame([v for _, v in records], columns=names, dtype=object).astype(object)
    df["_file"] = path_str
    df["_sheet"] = sheet
    df["_row"] = pd.Series([n for n, _ in records], dtype="int64")
    found = {header_key(n) for n in names}
    df.attrs.update(
        sheet=sheet,
        header_row=header.row,
        headers=names,
        missing_columns=[c for c in expected_columns if header_key(c) not in found],
        warnings=warnings,
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
        rows[: HEADER_SEARCH_ROWS + 1] = [  # and the row below, which may hold sub-names
            [_as_openpyxl(v) for v in r] for r in rows[: HEADER_SEARCH_ROWS + 1]
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


@dataclass(frozen=True)
class _Header:
    """Where a sheet's header is, and the column each named cell of it reads."""

    row: int  #: its sheet row (the first, when a second row holds names under group titles)
    last: int  #: its last sheet row: the records start below it
    columns: list[tuple[int, str]]  #: (position, name)
    #: Position -> the merged header cell spanning it from the left, for a position left
    #: unnamed because the cell's name reads the first column it spans.
    merged_over: dict[int, str]


def _header(
    rows: Rows, merges: list[Merge], expected: Sequence[str], path: Path, sheet: str
) -> _Header:
    """The header, found as before but with each merged cell's value in every cell it spans.

    A group title merged across columns ("Tenancy" over "Start" and "End", in the header row
    or the row above it) is joined to the names under it where that gives an expected name.
    Else a name merged across columns names the first of them only: their values cannot be
    told apart, and the others are reported when they hold any.
    """
    top = _filled(rows[: HEADER_SEARCH_ROWS + 1], merges)
    number, cells = _find_header(iter(top[:HEADER_SEARCH_ROWS]), expected, path, sheet)
    wanted = {header_key(c) for c in expected}
    names = [_header_name(v) for v in cells]
    groups = [m for m in merges if m.row < number <= m.last_row + 1 and m.last_col > m.col]
    below = _names_below(rows, number, groups, names, wanted)
    merged_over: dict[int, str] = {}
    for group in groups:
        for col in range(group.col, min(group.last_col + 1, len(names))):
            if below is not None and below[col] is not None:
                names[col] = _joined(cells[col], below[col], wanted, prefer_sub=True)
            elif col > group.col:
                names[col] = None
                merged_over[col] = group.ref
    if below is None and number > 1:
        _join_titles_above(names, rows, merges, number, wanted)
    columns = _columns(names, path, sheet, number)
    return _Header(number, number + (below is not None), columns, merged_over)


def _filled(rows: Rows, merges: list[Merge]) -> list[list[Any]]:
    """The rows with a merged range's value in every cell it spans, as Excel shows them."""
    filled = [list(r) for r in rows]
    width = max((len(r) for r in filled), default=0)
    for m in merges:
        if m.row >= len(filled) or m.col >= len(filled[m.row]):
            continue
        value, last = filled[m.row][m.col], min(m.last_col, width - 1)
        for row in filled[m.row : m.last_row + 1]:
            row.extend([None] * (last + 1 - len(row)))
            row[m.col : last + 1] = [value] * (last + 1 - m.col)
    return filled


def _merged_down(merges: list[Merge], header: _Header) -> list[Merge]:
    """Merged ranges among the records that span rows in a column read: a tenancy's
    reference or address merged down over its members' rows. Excel shows the value in every
    row; the cell readers give it to the first row only, leaving the rest without it."""
    named = {i for i, _ in header.columns}
    return [m for m in merges if m.row >= header.last and m.last_row > m.row and m.col in named]


def _filled_down(rows: Rows, merges: list[Merge]) -> Rows:
    """The rows with each range's value in every row it spans, in its first column only: a
    range across columns shows one value, which belongs to the first."""
    return _filled(rows, [replace(m, last_col=m.col) for m in merges])


def _merged_down_note(merges: list[Merge]) -> list[str]:
    """What was filled down, by range (never a value): a person should know the rows share
    a cell, as a merge can also be a slip of the mouse."""
    if not merges:
        return []
    refs = ", ".join(m.ref for m in merges[:MAX_ROWS_NAMED])
    more = f" and {len(merges) - MAX_ROWS_NAMED} more" if len(merges) > MAX_ROWS_NAMED else ""
    return [
        f"{_plural(len(merges), 'cell')} merged down over several records ({refs}{more}): "
        "read into every row each spans, as Excel shows it"
    ]


def _header_name(value: Any) -> str | None:
    return str(value).strip() if _text(value) is not None else None


def _names_below(
    rows: Rows, number: int, groups: list[Merge], names: list[str | None], wanted: set[str]
) -> list[str | None] | None:
    """The names in the row below the header, when it holds names under the header's group
    titles: each of its cells is blank or under a title merged across columns, and one title
    and name joined make an expected name. Else None: the row is a record."""
    if not groups or number >= len(rows):
        return None
    below = [_header_name(v) for v in rows[number]][: len(names)]
    below += [None] * (len(names) - len(below))
    filled = [i for i, v in enumerate(rows[number]) if _text(v) is not None]
    under = {c for g in groups if g.last_row < number for c in range(g.col, g.last_col + 1)}
    if not filled or not set(filled) <= under:
        return None
    if any(header_key(f"{names[i]} {below[i]}") in wanted for i in filled if i < len(names)):
        return below
    return None


def _joined(title: Any, name: str, wanted: set[str], *, prefer_sub: bool) -> str:
    """A group title and a name under it: joined when that is an expected name, else the
    name alone when it is expected, else joined (a name of its own, reported as unexpected)."""
    joined = f"{str(title).strip()} {name}"
    if header_key(joined) in wanted or not (prefer_sub and header_key(name) in wanted):
        return joined
    return name


def _join_titles_above(
    names: list[str | None], rows: Rows, merges: list[Merge], number: int, wanted: set[str]
) -> None:
    """A group title merged across columns in the row above the header joined to the names
    under it, only where a name is not expected and the title and name joined are."""
    for m in merges:
        title = rows[m.row][m.col] if m.col < len(rows[m.row]) else None
        if m.last_row != number - 2 or m.last_col == m.col or _text(title) is None:
            continue
        for col in range(m.col, min(m.last_col + 1, len(names))):
            name = names[col]
            if name is None or header_key(name) in wanted:
                continue
            joined = _joined(title, name, wanted, prefer_sub=False)
            if header_key(joined) in wanted:
                names[col] = joined


#: How many sheet rows a warning names; the rest are counted.
MAX_ROWS_NAMED = 10


def _unnamed_values(rows: Rows, header: _Header) -> list[str]:
    """The values in columns the header does not name, which are not read: a column under a
    header cell merged across it, or a column with no header cell (letters and counts only:
    the values may be personal data)."""
    named = {i for i, _ in header.columns}
    width = max((len(r) for r in rows), default=0)
    unnamed = [i for i in range(width) if i not in named]
    counts: Counter[int] = Counter()
    for row in rows if unnamed else ():
        counts.update(i for i in unnamed if i < len(row) and _text(row[i]) is not None)
    if not counts:
        return []
    columns = sorted(counts)
    text = (
        f"{_plural(sum(counts.values()), 'value')} in {_columns_named(columns)} under no "
        "header name, not read"
    )
    merged = [
        f"{column_letters(i)} is under the merged header cell {header.merged_over[i]}"
        for i in columns
        if i in header.merged_over
    ]
    if merged:
        return [f"{text} ({'; '.join(merged)}): unmerge it and give each column its own name"]
    return [f"{text}: give each column a header name, or clear it"]


def _uncached_formulas(cells: list[tuple[int, int]], header: _Header) -> list[str]:
    """Formula cells of the header and the records saved without a value (a workbook written
    by a program and never opened in Excel): read as blank, so the records are checked and
    quarantined as usual, and this says why (never the formula, which may hold values)."""
    named = dict(header.columns)
    header_cells = [cell_ref(r, c) for r, c in cells if r == header.row - 1]
    in_records = [(r, c) for r, c in cells if r >= header.last and c in named]
    if not header_cells and not in_records:
        return []
    parts = []
    if in_records:
        per_column = sorted(Counter(c for _, c in in_records).items())
        columns = ", ".join(f"{column_letters(c)} '{named[c]}' ({n})" for c, n in per_column)
        rows = _rows_named(sorted({r for r, _ in in_records}))
        column_word = "column" if len(per_column) == 1 else "columns"
        parts.append(f"{_plural(len(in_records), 'cell')} in {rows} of {column_word} {columns}")
    if header_cells:
        cell_word = "header cell" if len(header_cells) == 1 else "header cells"
        parts.append(f"{cell_word} {', '.join(header_cells)} (its column is not found)")
    verb = "is a formula" if len(in_records) + len(header_cells) == 1 else "are formulas"
    return [
        f"{' and '.join(parts)} {verb} with no saved value, read as empty: the workbook was "
        "saved by a program that does not calculate formulas; open it in Excel or LibreOffice "
        "and save it, so that the values are stored"
    ]


def _rows_named(rows: list[int]) -> str:
    """Sheet rows (0-based in) as a message names them: the first few, the rest counted."""
    named = ", ".join(str(r + 1) for r in rows[:MAX_ROWS_NAMED])
    more = f" and {len(rows) - MAX_ROWS_NAMED} more" if len(rows) > MAX_ROWS_NAMED else ""
    return f"row {named}" if len(rows) == 1 else f"rows {named}{more}"


def _columns_named(columns: list[int]) -> str:
    letters = ", ".join(column_letters(i) for i in columns)
    return f"column {letters}" if len(columns) == 1 else f"columns {letters}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _columns(
    names_at: Sequence[str | None], path: Path, sheet: str, row: int
) -> list[tuple[int, str]]:
    """(position, name) of each named header cell; a repeated name is an error."""
    columns = [(i, name) for i, name in enumerate(names_at) if name is not None]
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
