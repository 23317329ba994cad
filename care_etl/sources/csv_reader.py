"""Read a CSV extract as raw records: every value text or None, with file and line lineage.

GP systems export UTF-8, UTF-8 with a byte-order mark, or Windows-1252 (Zoë, Seán), and
nobody says which, so the encoding is detected: strict UTF-8 first (the common case and the
only one that can fail loudly), then Windows-1252, then charset-normalizer for the rare rest.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd

from care_etl.errors import SourceReadError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# charset-normalizer guesses a code page for any bytes at all (it called a Windows-1252 file
# with one bad byte Shift-JIS). Only guesses a UK council's systems could have written count.
_PLAUSIBLE_FAMILIES = ("utf_16", "utf_32", "iso8859", "latin_1", "cp125", "mac_roman", "cp850")


def detect_encoding(path: Path) -> str:
    """The Python codec name that decodes the file: utf-8, utf-8-sig, cp1252, utf-16, ..."""
    return _detect(_read_bytes(Path(path)), Path(path))


def read_csv(path: Path, *, delimiter: str = ",") -> pd.DataFrame:
    """Raw records of a CSV file with a header line; `df.attrs["encoding"]` says how it was read.

    Columns are named exactly as the header (surrounding spaces removed); values are stripped
    text, None when empty; `_file` is the path as given, `_row` the line a record starts on
    (header = line 1), `_read_error` the reason a row could not be read whole (None when it
    could). Blank lines and lines of empty fields are not records.
    """
    path_str = str(path)
    path = Path(path)
    raw = _read_bytes(path)
    encoding = _detect(raw, path)
    text = raw.decode(encoding)
    header, header_line, records = _parse(text, path, delimiter)
    df = pd.DataFrame(
        [values for _, values in records], columns=[*header, "_read_error"], dtype=object
    ).astype(object)
    df["_file"] = path_str
    df["_row"] = pd.Series([line for line, _ in records], dtype="int64")
    df.attrs.update(encoding=encoding, header_line=header_line)
    return df


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceReadError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _detect(raw: bytes, path: Path) -> str:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        bad_byte = exc.start
    if b"\x00" not in raw:  # NULs mean UTF-16/32 without a BOM, which cp1252 would mangle
        try:
            raw.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    guess = _charset_normalizer_guess(raw)
    if guess:
        return guess
    raise SourceReadError(f"{path}: cannot decode as UTF-8 or Windows-1252 (byte {bad_byte})")


def _charset_normalizer_guess(raw: bytes) -> str | None:
    from charset_normalizer import from_bytes  # imported here: rarely needed

    best = from_bytes(raw).best()
    if best is None or not best.encoding.startswith(_PLAUSIBLE_FAMILIES):
        return None
    return best.encoding


def _parse(
    text: str, path: Path, delimiter: str
) -> tuple[list[str], int, list[tuple[int, list[str | None]]]]:
    """Header, its line number, and (start line, values + read error) per record.

    A row with the wrong number of fields is still a record: it keeps what fits and carries
    a read error, so that it is quarantined with its reason and the rest of the file is read.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[tuple[int, list[str | None]]] = []
    end_of_previous = 0
    try:
        for fields in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            values = [v.strip() or None for v in fields]  # _clean, inlined: the hot loop
            if not any(values):
                continue
            if header is None:
                header, header_line = _header(fields, path, start), start
            elif len(fields) != len(header):
                records.append((start, _ragged(values, len(header))))
            else:
                records.append((start, [*values, None]))
    except csv.Error as exc:
        raise SourceReadError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from exc
    if header is None:
        raise SourceReadError(f"{path}: line 1: no header line (the file is empty)")
    return header, header_line, records


def _ragged(values: list[str | None], width: int) -> list[str | None]:
    reason = f"{len(values)} fields where the header has {width}"
    return [*values[:width], *[None] * (width - len(values)), reason]


def _header(fields: list[str], path: Path, line: int) -> list[str]:
    names = [name.strip() for name in fields]
    for i, name in enumerate(names, start=1):
        if not name:
            raise SourceReadError(f"{path}: line {line}: header column {i} has no name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceReadError(f"{path}: line {line}: duplicate header column {duplicates[0]!r}")
    return names


def _clean(value: str) -> str | None:
    value = value.strip()
    return value or None
