"""CSV reader: the GP extract's encodings, raw-record convention and one-line errors."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from care_etl.errors import SourceReadError
from care_etl.sources.csv_reader import detect_encoding, read_csv

HEADER = "Patient ID,NHS Number,Forename,Surname,Date of Birth,Postcode"
ROWS = [
    "P0000001,943 476 5919,Zoë,O'Brien,03/07/1948,e83qp",
    "P0000002,, Seán ,MacDonald,12/11/1990,E8 3QP",
]


def _write(tmp_path: Path, text: str, encoding: str, name: str = "gp.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252")],
)
def test_reads_each_encoding_a_gp_system_exports(tmp_path, encoding, detected):
    path = _write(tmp_path, "\r\n".join([HEADER, *ROWS]) + "\r\n", encoding)

    df = read_csv(path)

    assert detect_encoding(path) == detected
    assert df.attrs["encoding"] == detected
    assert list(df.columns) == [
        *HEADER.split(","),
        "_read_error",
        "_file",
        "_row",
    ]  # no BOM in 'Patient ID'
    assert df["Forename"].tolist() == ["Zoë", "Seán"]  # decoded, and stripped of spaces
    assert df["Surname"].tolist() == ["O'Brien", "MacDonald"]
    assert df["NHS Number"].tolist() == ["943 476 5919", None]  # raw: spacing kept, blank None
    assert df["_row"].tolist() == [2, 3]
    assert df["_file"].tolist() == [str(path)] * 2


def test_values_are_str_or_none_never_nan(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROWS[1]}\n", "utf-8")

    df = read_csv(path)

    for column in HEADER.split(","):
        assert all(v is None or isinstance(v, str) for v in df[column]), column
    assert df.loc[0, "NHS Number"] is None
    assert df["_row"].dtype == "int64"


def test_lineage_is_the_line_a_person_sees(tmp_path):
    """Blank lines are skipped but counted; a quoted field may span lines."""
    text = "\n".join(
        [
            HEADER,
            ROWS[0],
            "",
            'P0000003,,"Ann\nMarie",Li,01/01/1950,N16 7XY',
            ",,,,,",
            ROWS[1],
        ]
    )
    df = read_csv(_write(tmp_path, text, "utf-8"))

    assert df["Patient ID"].tolist() == ["P0000001", "P0000003", "P0000002"]
    assert df["_row"].tolist() == [2, 4, 7]
    assert df.loc[1, "Forename"] == "Ann\nMarie"


def test_a_header_only_file_gives_no_records(tmp_path):
    df = read_csv(_write(tmp_path, HEADER + "\n", "utf-8"))

    assert len(df) == 0
    assert list(df.columns) == [*HEADER.split(","), "_read_error", "_file", "_row"]


def test_undecodable_bytes_name_the_file_and_byte(tmp_path):
    path = tmp_path / "gp_broken.csv"
    # 0x81 is undefined in Windows-1252 and invalid as a UTF-8 start byte.
    path.write_bytes(HEADER.encode() + b"\nP0000001,,Zo\x81,Li,01/01/1950,E8 3QP\n")
    bad_byte = path.read_bytes().index(b"\x81")

    with pytest.raises(SourceReadError) as err:
        read_csv(path)

    message = str(err.value)
    assert message == (f"{path}: cannot decode as UTF-8 or Windows-1252 (byte {bad_byte})")
    assert "\n" not in message


def test_utf16_from_a_spreadsheet_is_read_via_charset_detection(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROWS[0]}\n", "utf-16")

    df = read_csv(path)

    assert df.attrs["encoding"] == "utf-16"
    assert df.loc[0, "Forename"] == "Zoë"


def test_a_ragged_row_is_kept_with_its_reason_and_the_rest_is_read(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{ROWS[1]},extra\n{ROWS[0]}\n", "utf-8")

    df = read_csv(path)

    assert list(df["_row"]) == [2, 3]
    reason = df.loc[0, "_read_error"]
    assert reason == "7 fields where the header has 6"
    assert "Seán" not in reason and "MacDonald" not in reason
    assert df.loc[1, "_read_error"] is None
    assert df.loc[1, "Forename"] == "Zoë"


def test_a_quote_never_closed_costs_its_own_line_only(tmp_path):
    # Read strictly, the open quote would swallow the rest of the file.
    first, second = ROWS[0], ROWS[1]
    broken = second.replace(",", ',"', 1)  # a quote opened in the second field, never closed
    path = _write(tmp_path, f"{HEADER}\n{first}\n{broken}\n{first}\n{second}\n", "utf-8")

    df = read_csv(path)

    assert list(df["_row"]) == [2, 3, 4, 5]
    assert df.loc[1, "_read_error"] == "a quote opened on this line is never closed"
    assert df.loc[1, "Patient ID"] == second.split(",")[0], "its id, for the quarantine"
    assert df["_read_error"].drop(index=1).isna().all()
    assert list(df.loc[[2, 3], "Forename"]) == ["Zoë", "Seán"]


def test_a_field_longer_than_the_csv_module_limit_is_read_whole(tmp_path):
    # The csv module stops at 131,072 characters a field by default: that error stopped
    # the whole run, not just the file.
    long_name = "A" * 200_000
    path = _write(
        tmp_path, f"{HEADER}\nP0000001,,{long_name},Li,01/01/1950,E8 3QP\n{ROWS[0]}\n", "utf-8"
    )

    df = read_csv(path)

    assert df["Forename"].tolist() == [long_name, "Zoë"]
    assert df["_read_error"].isna().all()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_a_file_without_header_is_an_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)

    with pytest.raises(SourceReadError, match=r"empty\.csv: line 1: no header"):
        read_csv(path)


def test_missing_file_is_a_source_read_error(tmp_path):
    with pytest.raises(SourceReadError, match="nope.csv"):
        read_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(("bom", "label"), [(b"", "utf-8"), (b"\xef\xbb\xbf", "utf-8-sig")])
def test_a_utf8_file_with_a_windows_1252_line_is_decoded_line_by_line(tmp_path, bom, label):
    """One record edited in a Windows-1252 program must not garble every UTF-8 name."""
    utf8 = [
        "P0000001,,Małgorzata,Dąbrowska,13/03/1982,E8 3QP",
        "P0000003,,Büşra,Özdemir,23/03/2009,N16 7XY",
    ]
    path = tmp_path / "gp_mixed.csv"
    path.write_bytes(
        bom
        + "\r\n".join([HEADER, utf8[0], ""]).encode("utf-8")
        + "P0000002,,Renée,Li,01/01/1950,E8 3QP\r\n".encode("cp1252")
        + "\r\n".join([*utf8[1:], ROWS[0], ""]).encode("utf-8")
    )

    df = read_csv(path)

    assert df["Forename"].tolist() == ["Małgorzata", "Renée", "Büşra", "Zoë"]
    assert df["Surname"].tolist() == ["Dąbrowska", "Li", "Özdemir", "O'Brien"]
    assert df.attrs["encoding"] == detect_encoding(path) == f"{label}+cp1252 lines"
    assert df.attrs["cp1252_lines"] == [3]  # the line a person sees, as `_row` counts
    assert df["_row"].tolist() == [2, 3, 4, 5]
    assert df["Patient ID"].tolist()[0] == "P0000001"  # no BOM in the first value's column


def test_a_windows_1252_file_is_read_whole_even_where_a_line_looks_like_utf8(tmp_path):
    """'Ã©' in Windows-1252 is a valid UTF-8 'é': one such line among the file's Windows-1252
    lines is a coincidence, not a UTF-8 file, so nothing is decoded line by line."""
    rows = [*ROWS, "P0000003,,Ã©ric,Søren,01/01/1950,E8 3QP"]
    path = _write(tmp_path, "\n".join([HEADER, *rows]) + "\n", "cp1252")

    df = read_csv(path)

    assert df.attrs["encoding"] == "cp1252" and df.attrs["cp1252_lines"] == []
    assert df["Forename"].tolist() == ["Zoë", "Seán", "Ã©ric"]


def test_a_bom_file_that_does_not_decode_is_a_one_line_error(tmp_path):
    """A UTF-8 byte-order mark over Windows-1252 text: named, never a UnicodeDecodeError
    that would stop every other file of the source."""
    path = tmp_path / "gp_bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\n".join([HEADER, *ROWS]).encode("cp1252"))

    with pytest.raises(SourceReadError) as err:
        read_csv(path)

    assert str(err.value).startswith(f"{path}: cannot decode as utf-8-sig (byte ")


def test_a_repeated_header_name_is_told_by_position(tmp_path):
    # Without its header line, a file's first record is read as one, and a date of birth
    # equal to the date of registration repeats: the message must not quote it.
    path = _write(tmp_path, "P1,14/07/1933,Ann,14/07/1933\nP2,01/01/1990,Bo,02/02/2000\n", "utf-8")
    with pytest.raises(SourceReadError) as caught:
        read_csv(path)
    assert str(caught.value).endswith("line 1: header columns 2 and 4 have the same name")
    assert "1933" not in str(caught.value)


@pytest.mark.parametrize("header_too", [True, False], ids=["header-too", "records-only"])
def test_a_separator_ending_every_line_is_not_an_extra_column(tmp_path, header_too):
    # Some exports end every line with a comma: the header then had a column without a name
    # (the whole file was skipped), and the records one field too many (all quarantined).
    header = f"{HEADER}," if header_too else HEADER
    path = _write(tmp_path, "\n".join([header, *(f"{r}," for r in ROWS)]) + "\n", "utf-8")

    df = read_csv(path)

    assert list(df.columns) == [*HEADER.split(","), "_read_error", "_file", "_row"]
    assert df["_read_error"].isna().all()
    assert df["Forename"].tolist() == ["Zoë", "Seán"]
    assert df["Postcode"].tolist() == ["e83qp", "E8 3QP"]


def test_a_value_past_a_trailing_separator_or_a_shifted_row_is_still_ragged(tmp_path):
    shifted = ROWS[0].replace("O'Brien", "O'Brien,Jr") + ","  # an extra field, then the comma
    lines = [f"{HEADER},", f"{ROWS[1]},", f"{ROWS[0]},", f"{ROWS[0]},oops", shifted]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))

    assert df["_read_error"].tolist() == [
        None,
        None,
        "a value in column 7, which the header does not name",
        "8 fields where the header has 7",
    ]


FOOTER_REASON = "looks like a footer or summary line, not a record: at the end of the file, "


def test_footer_lines_at_the_end_are_kept_with_a_reason_saying_so(tmp_path):
    # An export ending "Total rows: 2" and "End of report" had them quarantined as ragged rows
    # ("1 fields where the header has 6"), as if records had been cut short.
    lines = [HEADER, *ROWS, "Total rows: 2", "", "Total,2", "End of report"]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))

    assert df["_read_error"].tolist()[:2] == [None, None]
    assert list(df["_row"]) == [2, 3, 4, 6, 7]
    assert df["_read_error"].tolist()[2:] == [
        f"{FOOTER_REASON}{n} where the header has 6 (if it is a record cut short, ask for the "
        "file again)"
        for n in ("1 field", "2 fields", "1 field")
    ]
    assert df.loc[2, "Patient ID"] == "Total rows: 2", "kept, so nothing is lost"
    assert not any("Total" in r or "End" in r for r in df["_read_error"].dropna())


def test_a_short_line_in_the_middle_or_a_long_short_run_is_a_ragged_row(tmp_path):
    cut = "P0000003"  # a record cut short in the middle: never called a footer
    lines = [HEADER, ROWS[0], cut, ROWS[1], "Total rows: 2"]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))
    assert df["_read_error"].tolist()[:3] == [None, "1 field where the header has 6", None]
    assert df.loc[3, "_read_error"].startswith(FOOTER_REASON)

    # Six short lines at the end are more than a footer holds: ragged rows, each of them.
    lines = [HEADER, ROWS[0], *(f"P000001{i}" for i in range(6))]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))
    assert df["_read_error"].tolist()[1:] == ["1 field where the header has 6"] * 6

    # Three fields are a record cut short (its id, NHS number and a name), not a footer.
    lines = [HEADER, ROWS[0], "P0000004,,Ann"]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))
    assert df.loc[1, "_read_error"] == "3 fields where the header has 6"


def test_a_footer_straight_below_the_header_is_named_a_footer(tmp_path):
    df = read_csv(_write(tmp_path, f"{HEADER}\nTotal rows: 0\n", "utf-8"))
    assert len(df) == 1 and df.loc[0, "_read_error"].startswith(FOOTER_REASON)


def test_a_footer_padded_with_separators_to_the_headers_width_is_named_a_footer(tmp_path):
    # "Total rows: 2,,,,," has all six fields, so it read as a record and was quarantined
    # for having no usable name.
    lines = [HEADER, *ROWS, "Total rows: 2,,,,,", "Generated,2026-11-27,,,,"]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))

    assert df["_read_error"].tolist()[:2] == [None, None]
    assert df["_read_error"].tolist()[2:] == [
        f"{FOOTER_REASON}{n} where the header has 6 (if it is a record cut short, ask for the "
        "file again)"
        for n in ("1 field filled", "2 fields filled")
    ]
    assert df.loc[2, "Patient ID"] == "Total rows: 2", "kept, so nothing is lost"

    # A record whose later fields are filled is a record, wherever it stands.
    lines = [HEADER, *ROWS, "P0000009,,,,,F"]
    df = read_csv(_write(tmp_path, "\n".join(lines) + "\n", "utf-8"))
    assert df["_read_error"].tolist() == [None, None, None]
