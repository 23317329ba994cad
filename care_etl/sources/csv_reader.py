"""Read a CSV extract as raw records: every value text or None, with file and line lineage.

GP systems export UTF-8, UTF-8 with a byte-order mark, or Windows-1252 (Zoë, Seán), and
nobody says which, so the encoding is detected: strict UTF-8 first (the common case and the
only one that can fail loudly), then Windows-1252, then charset-normalizer for the rare rest.
A UTF-8 file with a few Windows-1252 lines (a record edited in another program) is decoded
line by line rather than read whole as Windows-1252, which would garble every UTF-8 name;
`df.attrs["cp1252_lines"]` lists those lines so that the caller can warn.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from care_etl.errors import SourceReadError
from care_etl.sources.headers import repeated_position

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
#: How the encoding of a file decoded line by line is named: `utf-8+cp1252 lines`.
MIXED = "+cp1252 lines"
#: The longest field read. The csv module's own limit (131,072 characters) raised an error
#: that stopped the whole run at one long free-text value; the file is in memory already,
#: so the field is read whole instead (2**31 - 1 is the largest limit every platform takes).
FIELD_SIZE_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class _Decoded:
    text: str
    encoding: str
    #: Line numbers (header = 1) decoded as Windows-1252 in an otherwise UTF-8 file.
    cp1252_lines: tuple[int, ...] = ()


def detect_encoding(path: Path) -> str:
    """The Python codec name that decodes the file: utf-8, utf-8-sig, cp1252, utf-16, ...;
    `utf-8+cp1252 lines` (or `utf-8-sig+...`) for a UTF-8 file with some Windows-1252 lines."""
    return _decode(_read_bytes(Path(path)), Path(path)).encoding


def read_csv(path: Path, *, delimiter: str = ",") -> pd.DataFrame:
    """Raw records of a CSV file with a header line; `df.attrs["encoding"]` says how it was read.

    Columns are named exactly as the header (surrounding spaces removed); values are stripped
    text, None when empty; `_file` is the path as given, `_row` the line a record starts on
    (header = line 1), `_read_error` the reason a row could not be read whole (None when it
    could). Blank lines and lines of empty fields are not records.
    """
    path_str = str(path)
    path = Path(path)
    decoded = _decode(_read_bytes(path), path)
    header, header_line, records = _parse(decoded.text, path, delimiter)
    df = pd.DataFrame(
        [values for _, values in records], columns=[*header, "_read_error"], dtype=object
    ).astype(object)
    df["_file"] = path_str
    df["_row"] = pd.Series([line for line, _ in records], dtype="int64")
    df.attrs.update(
        encoding=decoded.encoding,
        header_line=header_line,
        cp1252_lines=list(decoded.cp1252_lines),
    )
    return df


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceReadError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _decode(raw: bytes, path: Path) -> _Decoded:
    """The file's text and how it was decoded. Whole-file strict UTF-8 comes first: it is the
    common case and fast; the per-line fallback costs a Python loop over every line."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _decode_marked(raw, encoding, path)
    try:
        return _Decoded(raw.decode("utf-8"), "utf-8")  # the fast path: most files
    except UnicodeDecodeError as exc:
        bad_byte = exc.start
    if b"\x00" not in raw:  # NULs mean UTF-16/32 without a BOM, which cp1252 would mangle
        mixed = _by_line(raw, "utf-8")
        if mixed:
            return mixed
        try:
            return _Decoded(raw.decode("cp1252"), "cp1252")
        except UnicodeDecodeError:
            pass
    guess = _charset_normalizer_guess(raw)
    if guess:
        return _decode_marked(raw, guess, path)
    raise SourceReadError(f"{path}: cannot decode as UTF-8 or Windows-1252 (byte {bad_byte})")


def _decode_marked(raw: bytes, encoding: str, path: Path) -> _Decoded:
    """Decode in the encoding a byte-order mark (or charset-normalizer) names. A BOM'd UTF-8
    file with a few Windows-1252 lines is decoded line by line; other failures are one line
    naming the file, never a UnicodeDecodeError that would stop the whole source."""
    try:
        return _Decoded(raw.decode(encoding), encoding)
    except UnicodeDecodeError as exc:
        bad_byte = exc.start
    if encoding == "utf-8-sig":
        mixed = _by_line(raw[len(codecs.BOM_UTF8) :], encoding)
        if mixed:
            return mixed
    raise SourceReadError(f"{path}: cannot decode as {encoding} (byte {bad_byte})")


def _by_line(raw: bytes, encoding: str) -> _Decoded | None:
    """UTF-8 for the lines that are valid UTF-8, Windows-1252 for the others; None unless
    the file is mostly UTF-8: at least as many lines hold valid multi-byte UTF-8 as need
    Windows-1252. A Windows-1252 file has hardly any line that happens to be valid UTF-8, so
    it is still read whole as Windows-1252. Lines split as the csv module counts them."""
    texts: list[str] = []
    fallback: list[int] = []
    multibyte = 0
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        if line.isascii():
            texts.append(line.decode("ascii"))
            continue
        try:
            texts.append(line.decode("utf-8"))
            multibyte += 1
        except UnicodeDecodeError:
            try:
                texts.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                return None
            fallback.append(number)
    if multibyte < len(fallback):
        return None
    return _Decoded("".join(texts), encoding + MIXED, tuple(fallback))


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
    So is a line the csv module cannot parse (a quote opened and never closed, which would
    swallow the rest of the file): the reading goes on from the next line. A separator at
    the end of every line (an empty last column) is not a wrong number of fields: see
    `_settle_uneven`.
    """
    _allow_long_fields()
    header: list[str] | None = None
    header_line = width = 0
    records: list[tuple[int, list[str | None]]] = []
    uneven: list[int] = []  # records whose number of fields differs from the header line's
    lines: list[str] | None = None  # the physical lines, split only when a line is malformed
    offset, rest = 0, text  # `rest` is `text` from line offset + 1
    while True:
        reader = csv.reader(io.StringIO(rest, newline=""), delimiter=delimiter, strict=True)
        end_of_previous = 0
        try:
            for fields in reader:
                start, end_of_previous = offset + end_of_previous + 1, reader.line_num
                values = [v.strip() or None for v in fields]  # _clean, inlined: the hot loop
                if not any(values):
                    continue
                if header is None:
                    header, header_line = _header(fields, path, start), start
                    width = len(fields)
                elif len(fields) != width or len(header) != width:
                    uneven.append(len(records))
                    records.append((start, values))
                else:
                    records.append((start, [*values, None]))
            break
        except csv.Error as exc:
            start = offset + end_of_previous + 1
            if header is None:
                raise SourceReadError(f"{path}: line {start}: malformed CSV ({exc})") from exc
            lines = lines or io.StringIO(text, newline="").readlines()
            records.append((start, _malformed(lines[start - 1], delimiter, len(header), exc)))
            offset, rest = start, "".join(lines[start:])
    if header is None:
        raise SourceReadError(f"{path}: line 1: no header line (the file is empty)")
    _settle_uneven(records, uneven, len(header), width)
    _settle_padded_footer(records, len(header), width)
    return header, header_line, records


def _settle_uneven(
    records: list[tuple[int, list[str | None]]], uneven: list[int], named: int, width: int
) -> None:
    """Give each uneven record its values and read error, in place.

    Some exports end every line with a separator: the header line, the records, or both
    have an empty last field. A record is read as if the separator were not there when its
    fields beyond the header's names are empty and it has as many fields as the header's
    names, or as the header line, or as more than half of the file's records have. Any
    other length is a ragged row (a shifted row, say, whose last field is empty too, is one
    of few, so it is never read as a trailing separator).
    """
    if not uneven:
        return
    lengths = {named, width, _trailing_length(records, uneven, named)}
    few = _footer_fields(width)
    short = {i for i in uneven if len(records[i][1]) <= few}
    footer = _footer_start(len(records), short.__contains__)
    for i in uneven:
        start, values = records[i]
        if len(values) in lengths and not any(values[named:]):
            records[i] = (start, [*values[:named], None])
        elif i >= footer:
            records[i] = (start, _footer(values, width, named))
        else:
            records[i] = (start, _ragged(values, width, named))


#: The most lines a footer holds ("Total rows: 1234", "End of report", a generation date).
FOOTER_MAX_LINES = 5
#: The most fields a footer line has ("Total rows,1234"), a third of the header's at most.
FOOTER_MAX_FIELDS = 2


def _footer_fields(width: int) -> int:
    """The most fields a footer line holds, for a header line of `width` fields."""
    return min(FOOTER_MAX_FIELDS, max(1, width // 3))


def _footer_start(count: int, short: Callable[[int], bool]) -> int:
    """Where the file's footer begins: the last few of its `count` records, when each is
    `short` (a couple of fields, far fewer than the header's) and what comes before them is
    the header or a longer record; `count` when there is none. Only the end of the file is
    looked at, so a short line in the middle (a record cut short) stays a ragged row."""
    start = count
    while start > 0 and short(start - 1) and count - start < FOOTER_MAX_LINES:
        start -= 1
    return count if start > 0 and short(start - 1) else start


def _settle_padded_footer(
    records: list[tuple[int, list[str | None]]], named: int, width: int
) -> None:
    """A footer padded with separators to the header's width ("Total rows: 1234,,,,,"):
    the last few records with their first field or two filled and nothing else, below a
    record with more, carry the footer's reason in place of the "no usable name" staging
    would give them. They stay in quarantine, as a footer does."""
    few = _footer_fields(width)

    def padded(i: int) -> bool:
        values = records[i][1]
        filled = [at for at, v in enumerate(values[:named]) if v is not None]
        return values[named] is None and 0 < len(filled) <= few and filled[-1] < few

    for i in range(_footer_start(len(records), padded), len(records)):
        line, values = records[i]
        filled = sum(v is not None for v in values[:named])
        records[i] = (line, _footer(values[:filled], width, named, padded=True))


def _trailing_length(
    records: list[tuple[int, list[str | None]]], uneven: list[int], named: int
) -> int | None:
    """The length of most uneven records, when their fields past the header's names are
    empty and they are more than half of all records; else None."""
    lengths = Counter(
        len(records[i][1])
        for i in uneven
        if len(records[i][1]) >= named and not any(records[i][1][named:])
    )
    if not lengths:
        return None
    length, count = lengths.most_common(1)[0]
    return length if 2 * count > len(records) else None


def _allow_long_fields() -> None:
    """Raise the csv module's field limit (a setting of the whole process) to FIELD_SIZE_LIMIT."""
    if csv.field_size_limit() < FIELD_SIZE_LIMIT:
        csv.field_size_limit(FIELD_SIZE_LIMIT)


def _malformed(line: str, delimiter: str, width: int, exc: csv.Error) -> list[str | None]:
    """The fields a lenient reading of the one line finds (its record id, for the quarantine's
    lineage), with why the line is malformed as its read error."""
    fields = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
    values = [v.strip() or None for v in fields][:width]
    unclosed = "end of data" in str(exc) or "EOF" in str(exc)
    reason = "a quote opened on this line is never closed" if unclosed else f"malformed CSV ({exc})"
    return [*values, *[None] * (width - len(values)), reason]


def _footer(
    values: list[str | None], width: int, named: int, *, padded: bool = False
) -> list[str | None]:
    """A footer line as a record with its read error: it stays in quarantine, as it could be a
    record cut short by a file that ends early; the reason says which it looks like (never
    its text: a record's would be personal data)."""
    reason = (
        f"looks like a footer or summary line, not a record: at the end of the file, "
        f"{_fields(len(values))}{' filled' if padded else ''} where the header has {width} "
        "(if it is a record cut short, ask for the file again)"
    )
    return [*values[:named], *[None] * (named - len(values)), reason]


def _fields(count: int) -> str:
    return f"{count} field" if count == 1 else f"{count} fields"


def _ragged(values: list[str | None], width: int, named: int) -> list[str | None]:
    """What fits under the header's `named` columns, and why the row is ragged: its fields
    against the `width` of the header line."""
    if len(values) == width:  # as many fields as the header line, one under no name
        column = next(i for i, v in enumerate(values[named:], start=named + 1) if v)
        reason = f"a value in column {column}, which the header does not name"
    else:
        reason = f"{_fields(len(values))} where the header has {width}"
    return [*values[:named], *[None] * (named - len(values)), reason]


def _header(fields: list[str], path: Path, line: int) -> list[str]:
    """The header's names; empty ones at the end (a separator ending the line) are left out."""
    names = [name.strip() for name in fields]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise SourceReadError(f"{path}: line {line}: header column {i} has no name")
    first, again = repeated_position(names)
    if again:
        # By position, not name: a file without its header line has a record there.
        raise SourceReadError(
            f"{path}: line {line}: header columns {first} and {again} have the same name"
        )
    return names


def _clean(value: str) -> str | None:
    value = value.strip()
    return value or None
