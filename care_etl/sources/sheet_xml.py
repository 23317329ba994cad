"""What a worksheet's XML says that the cell readers do not: its merged ranges (openpyxl's
read-only mode skips them) and its formula cells saved without a value.

A workbook written by a program (openpyxl, a script) and never opened in Excel holds its
formulas with no calculated value; calamine and openpyxl both read such a cell as blank, so
the reader must look at the XML to say why a value is missing.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_DOCUMENT = "/officeDocument"
#: What a damaged part raises while it is unzipped or parsed (ParseError is a SyntaxError).
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError, SyntaxError)
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?"')
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_CELL_END = re.compile(rb"</(?:\w+:)?c>|<(?:\w+:)?c\s")
_REF = re.compile(rb'\sr="([A-Z]+)([0-9]+)"')
_TYPE = re.compile(rb'\st="(\w+)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")


@dataclass(frozen=True)
class Merge:
    """A merged range, 0-based and inclusive: rows[row][col] is its top-left cell."""

    row: int
    col: int
    last_row: int
    last_col: int

    @property
    def ref(self) -> str:
        return f"{cell_ref(self.row, self.col)}:{cell_ref(self.last_row, self.last_col)}"


@dataclass(frozen=True)
class SheetXml:
    """The sheet's merged ranges and (row, col) of its formulas with no saved value, 0-based."""

    merges: list[Merge] = field(default_factory=list)
    uncached: list[tuple[int, int]] = field(default_factory=list)


def read_sheet_xml(path: Path, sheets: list[str]) -> dict[str, SheetXml]:
    """Each sheet's merged ranges and uncalculated formulas; empty for a sheet whose part
    cannot be found or read (the cell reader has read it, or says why it cannot)."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = _sheet_parts(archive)
            return {s: _parse(archive.read(parts[s])) if s in parts else SheetXml() for s in sheets}
    except _DAMAGE:
        return {s: SheetXml() for s in sheets}


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part in the archive, through the workbook's relationships."""
    workbook = _office_document(archive)
    folder, name = posixpath.split(workbook)
    rels = ElementTree.fromstring(archive.read(f"{folder}/_rels/{name}.rels"))
    targets = {
        r.get("Id"): _resolve(folder, r.get("Target", ""))
        for r in rels.iter(f"{_PACKAGE_REL}Relationship")
    }
    sheets = ElementTree.fromstring(archive.read(workbook)).iter(f"{_MAIN}sheet")
    return {
        s.get("name", ""): targets[s.get(f"{_REL}id")]
        for s in sheets
        if s.get(f"{_REL}id") in targets
    }


def _office_document(archive: zipfile.ZipFile) -> str:
    rels = ElementTree.fromstring(archive.read("_rels/.rels"))
    for rel in rels.iter(f"{_PACKAGE_REL}Relationship"):
        if rel.get("Type", "").endswith(_OFFICE_DOCUMENT):
            return _resolve("", rel.get("Target", ""))
    return "xl/workbook.xml"


def _resolve(folder: str, target: str) -> str:
    """A relationship's target as an archive name: absolute ("/xl/...") or relative."""
    if target.startswith("/"):
        return target[1:]
    return posixpath.normpath(posixpath.join(folder, target))


def _parse(xml: bytes) -> SheetXml:
    return SheetXml(_merges(xml), _uncached(xml) if _FORMULA.search(xml) else [])


def _merges(xml: bytes) -> list[Merge]:
    merges = []
    for m in _MERGE.finditer(xml):
        row, col = int(m[2]) - 1, column_index(m[1])
        last_row = int(m[4]) - 1 if m[4] else row
        last_col = column_index(m[3]) if m[3] else col
        merges.append(Merge(row, col, last_row, last_col))
    return merges


def _uncached(xml: bytes) -> list[tuple[int, int]]:
    """(row, col) of each formula cell with no saved value. A text result saved as empty
    (`t="str"`, `<v></v>`: a formula giving "") is a value, not a missing one."""
    cells = []
    for formula in _FORMULA.finditer(xml):
        start = _last_cell_start(xml, formula.start())
        end = _CELL_END.search(xml, formula.end())
        cell = xml[start : end.start() if end else len(xml)]
        tag = cell[: cell.find(b">") + 1]
        ref, kind, value = _REF.search(tag), _TYPE.search(tag), _VALUE.search(cell)
        if ref and not (value and value[1]) and not (kind and kind[1] == b"str" and value):
            cells.append((int(ref[2]) - 1, column_index(ref[1])))
    return cells


def _last_cell_start(xml: bytes, before: int) -> int:
    """Where the cell holding position `before` opens (`<c ` or a prefixed `<x:c `)."""
    plain = xml.rfind(b"<c ", 0, before)
    prefixed = xml.rfind(b":c ", 0, before)
    if prefixed > plain:
        return max(xml.rfind(b"<", 0, prefixed), 0)
    return max(plain, 0)


def column_index(letters: bytes | str) -> int:
    """0-based column of its letters ("A" is 0, "AA" is 26)."""
    number = 0
    for letter in letters.encode() if isinstance(letters, str) else letters:
        number = number * 26 + letter - ord("A") + 1
    return number - 1


def column_letters(index: int) -> str:
    """The letters of a 0-based column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def cell_ref(row: int, col: int) -> str:
    return f"{column_letters(col)}{row + 1}"
