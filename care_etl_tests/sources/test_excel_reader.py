"""Excel reader: the housing workbook layout, value rendering, header search and errors."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from care_etl.errors import SourceReadError
from care_etl.sources.excel_reader import _read_differently, read_sheet, read_sheets, sheet_names

TENANCY_COLUMNS = [
    "Tenancy Ref",
    "UPRN",
    "Property Address",
    "Postcode",
    "Tenancy Start",
    "Tenancy End",
]
MEMBER_COLUMNS = [
    "Tenancy Ref",
    "Person Ref",
    "Name",
    "DOB",
    "Gender",
    "Relationship to Lead Tenant",
    "NI Number",
]


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    """A tenancy workbook as an area office writes it (source-systems.md section 2)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tenancies"
    ws["A1"] = "Tenancy extract — North office"
    ws.merge_cells("A1:F1")
    ws["A2"] = "Generated"
    ws["B2"] = dt.datetime(2026, 11, 1, 9, 30)
    ws.merge_cells("B2:C2")
    ws.append([])  # row 3 blank
    ws.append([None, *TENANCY_COLUMNS[1:]])
    ws["A4"] = "  Tenancy Ref "  # stray spaces in a header cell
    ws.append(["T-004512", 100023000000, "Flat 3, 12 Mill Lane", "E8 3QP", dt.datetime(2015, 4, 1)])
    ws.append([])  # a fully empty row between records
    ws.append(
        [
            "T-004513",
            1.00023456789e11,
            " 4 Mare Street ",
            "e83qp",
            dt.datetime(2019, 6, 3),
            dt.datetime(2023, 1, 31),
        ]
    )
    ws.append(["T-004514", "010033445566", "7 Dalston Lane", None, dt.date(2020, 2, 29), None])

    members = wb.create_sheet("Household Members")
    members.append(MEMBER_COLUMNS)
    members.append(
        [
            "T-004512",
            "HM-0000871",
            "O'BRIEN, Zoë",
            dt.datetime(1948, 7, 3),
            "F",
            "Lead Tenant",
            "QQ123456C",
        ]
    )
    members.append(["T-004512", "HM-0000872", "Sean O'Brien", "03/07/1948", "M", "Partner", None])
    members.append(["T-004513", "HM-0000873", "LI, Ann", "3 July 1948", None, "Lodger", None])
    members.append(["T-009999", "HM-0000874", "Bill Evans", " 1948-07-03 ", "X", "Other", 12.5])
    path = tmp_path / "tenancies_NORTH.xlsx"
    wb.save(path)
    return path


def test_header_is_found_below_merged_title_rows(workbook):
    df = read_sheet(workbook, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["header_row"] == 4
    assert df.attrs["headers"] == TENANCY_COLUMNS
    assert df.attrs["missing_columns"] == []
    assert list(df.columns) == [*TENANCY_COLUMNS, "_file", "_sheet", "_row"]


def test_uprn_digits_survive_number_cells(workbook):
    df = read_sheet(workbook, "Tenancies", TENANCY_COLUMNS)

    # an int cell, a float cell Excel shows as 1.00023E+11, and a text cell with a leading zero
    assert df["UPRN"].tolist() == ["100023000000", "100023456789", "010033445566"]


def test_dates_become_iso_text_and_blanks_none(workbook):
    df = read_sheet(workbook, "Tenancies", TENANCY_COLUMNS)

    assert df["Tenancy Start"].tolist() == ["2015-04-01", "2019-06-03", "2020-02-29"]
    assert df["Tenancy End"].tolist() == [None, "2023-01-31", None]
    assert df["Property Address"].tolist()[1] == "4 Mare Street"  # stripped
    assert df["Postcode"].tolist() == ["E8 3QP", "e83qp", None]  # raw: not standardised here


def test_lineage_rows_match_the_sheet_and_skip_empty_rows(workbook):
    df = read_sheet(workbook, "Tenancies", TENANCY_COLUMNS)

    assert df["_row"].tolist() == [5, 7, 8]
    assert df["Tenancy Ref"].tolist() == ["T-004512", "T-004513", "T-004514"]
    assert set(df["_sheet"]) == {"Tenancies"}
    assert set(df["_file"]) == {str(workbook)}
    assert df["_row"].dtype == "int64"


def test_household_members_dob_as_date_and_as_text(workbook):
    df = read_sheet(workbook, "Household Members", MEMBER_COLUMNS)

    assert df.attrs["header_row"] == 1
    assert df["DOB"].tolist() == ["1948-07-03", "03/07/1948", "3 July 1948", "1948-07-03"]
    assert df["Name"].tolist()[0] == "O'BRIEN, Zoë"
    assert df["Gender"].tolist() == ["F", "M", None, "X"]
    assert df["NI Number"].tolist() == ["QQ123456C", None, None, "12.5"]
    assert df["_row"].tolist() == [2, 3, 4, 5]
    for column in MEMBER_COLUMNS:
        assert all(v is None or isinstance(v, str) for v in df[column]), column


def test_missing_expected_columns_are_reported_for_drift_checks(workbook):
    expected = [*TENANCY_COLUMNS, "Tenure Type", "Rent Account"]

    df = read_sheet(workbook, "Tenancies", expected)

    assert df.attrs["header_row"] == 4
    assert df.attrs["missing_columns"] == ["Tenure Type", "Rent Account"]


def test_no_header_in_the_first_rows_is_an_error(workbook):
    with pytest.raises(SourceReadError, match=r"tenancies_NORTH\.xlsx \[Tenancies\]: no header"):
        read_sheet(workbook, "Tenancies", ["Account", "Balance", "Arrears"])


def test_sheet_names_and_missing_sheet(workbook):
    assert sheet_names(workbook) == ["Tenancies", "Household Members"]

    with pytest.raises(SourceReadError) as err:
        read_sheet(workbook, "Tenants", TENANCY_COLUMNS)
    assert str(err.value).startswith(f"{workbook}: no sheet 'Tenants'")


def test_a_sheet_renamed_in_other_capitals_or_spacing_is_still_read(workbook, tmp_path):
    # A workbook saved by hand as "household  members" and "Tenancies " was skipped whole.
    wb = openpyxl.load_workbook(workbook)
    wb["Household Members"].title = "household  members"
    wb["Tenancies"].title = "Tenancies "
    path = tmp_path / "renamed.xlsx"
    wb.save(path)

    read = read_sheets(path, {"Tenancies": TENANCY_COLUMNS, "Household Members": MEMBER_COLUMNS})

    assert read["Tenancies"]["Tenancy Ref"].tolist() == ["T-004512", "T-004513", "T-004514"]
    assert read["Household Members"]["_sheet"].tolist() == ["household  members"] * 4


@pytest.mark.parametrize("damage", ["garbage", "truncated", "csv_renamed"])
def test_corrupt_workbook_is_one_line_naming_the_file(workbook, tmp_path, damage):
    path = tmp_path / f"{damage}.xlsx"
    good = workbook.read_bytes()
    path.write_bytes(
        {
            "garbage": b"\x00\x01 not a zip at all" * 40,
            "truncated": good[: len(good) // 2],
            "csv_renamed": b"Tenancy Ref,UPRN\nT-1,1\n",
        }[damage]
    )

    for call in (lambda: read_sheet(path, "Tenancies", TENANCY_COLUMNS), lambda: sheet_names(path)):
        with pytest.raises(SourceReadError) as err:
            call()
        message = str(err.value)
        assert message.startswith(str(path))
        assert "\n" not in message


def test_damaged_sheet_xml_names_file_and_sheet(workbook, tmp_path):
    """Read-only mode parses a sheet lazily: the damage shows only while rows are read."""
    path = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(workbook) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[: len(data) // 2] if name.endswith("sheet1.xml") else data)

    with pytest.raises(SourceReadError) as err:
        read_sheet(path, "Tenancies", TENANCY_COLUMNS)
    assert str(err.value).startswith(f"{path} [Tenancies]: damaged sheet data")


def test_non_xlsx_extension_is_refused_with_the_file_named(tmp_path):
    path = tmp_path / "tenancies.xls"
    path.write_bytes(b"old binary excel")

    with pytest.raises(SourceReadError, match=r"tenancies\.xls: not a readable \.xlsx"):
        read_sheet(path, "Tenancies", TENANCY_COLUMNS)


def _rewrite_part(src: Path, dst: Path, part: str, edit) -> Path:
    """A copy of the workbook with one zip part edited, as another writer might have saved it."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as b:
        for name in a.namelist():
            data = a.read(name)
            b.writestr(name, edit(data) if name == part else data)
    return dst


@pytest.fixture
def offset_workbook(tmp_path: Path) -> Path:
    """Data starting at C6: blank rows and columns before it, as some extracts are laid out."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tenancies"
    for col, name in enumerate(TENANCY_COLUMNS, start=3):
        ws.cell(6, col, name)
    ws.cell(7, 3, "T-1")
    ws.cell(7, 4, 100023000000)
    ws.cell(9, 3, "T-2")
    ws.cell(9, 7, dt.date(2021, 5, 6))
    path = tmp_path / "offset.xlsx"
    wb.save(path)
    return path


def test_lineage_counts_leading_blank_rows_and_columns(offset_workbook):
    df = read_sheet(offset_workbook, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["header_row"] == 6
    assert df["_row"].tolist() == [7, 9]
    assert df["Tenancy Ref"].tolist() == ["T-1", "T-2"]
    assert df["UPRN"].tolist() == ["100023000000", None]
    assert df["Tenancy Start"].tolist() == [None, "2021-05-06"]


@pytest.mark.parametrize("recorded", ["A1:B2", "A1:Z60000", None])
def test_a_wrong_recorded_used_range_is_ignored(offset_workbook, tmp_path, recorded):
    """Some writers record a wrong used range (`<dimension>`): the cells are read as they are."""
    tag = b"" if recorded is None else f'<dimension ref="{recorded}"/>'.encode()
    path = _rewrite_part(
        offset_workbook,
        tmp_path / "dimension.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb"<dimension [^>]*/>", tag, xml),
    )

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["header_row"] == 6
    assert df["_row"].tolist() == [7, 9]
    assert df["Tenancy Start"].tolist() == [None, "2021-05-06"]


def test_date_time_number_and_boolean_cells_as_text(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tenancies"
    ws.append(TENANCY_COLUMNS)
    ws.append(["T-1", 123456789012345, dt.date(2020, 2, 29), 3.0, dt.time(9, 30), True])
    ws.append(
        [
            "T-2",
            1.00023456789e11,
            dt.datetime(2019, 6, 3, 14, 5),
            12.5,
            dt.datetime(2023, 1, 31),
            False,
        ]
    )
    path = tmp_path / "values.xlsx"
    wb.save(path)

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df["UPRN"].tolist() == ["123456789012345", "100023456789"]
    assert df["Property Address"].tolist() == ["2020-02-29", "2019-06-03"]  # a date, a datetime
    assert df["Postcode"].tolist() == ["3", "12.5"]
    assert df["Tenancy Start"].tolist() == ["09:30:00", "2023-01-31"]
    assert df["Tenancy End"].tolist() == ["TRUE", "FALSE"]


def test_number_and_date_header_cells_keep_their_names(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Rents"
    ws.append([])
    ws.append(["Account", 2024, dt.datetime(2025, 4, 1)])
    ws.append(["A-1", 10, 20.5])
    path = tmp_path / "rents.xlsx"
    wb.save(path)

    df = read_sheet(path, "Rents", [])

    assert df.attrs["header_row"] == 2
    assert df.attrs["headers"] == ["Account", "2024", "2025-04-01 00:00:00"]
    assert df.iloc[0, :3].tolist() == ["A-1", "10", "20.5"]


def test_error_cells_and_escapes_read_as_their_text(tmp_path):
    """An error cell (#N/A from a lookup) is its text, not a blank; Excel's `_x000D_` escape
    for a carriage return stays as written."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tenancies"
    ws.append(TENANCY_COLUMNS)
    ws.append(["T-1", "#N/A", "Flat 1_x000D_\n2 Road", "E8 3QP", dt.date(2020, 1, 2)])
    path = tmp_path / "errors.xlsx"
    wb.save(path)
    assert b't="e"' in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df["UPRN"].tolist() == ["#N/A"]
    assert df["Property Address"].tolist() == ["Flat 1_x000D_\n2 Road"]
    assert df["Tenancy Start"].tolist() == ["2020-01-02"]


def test_the_fast_reader_serves_plain_workbooks(workbook):
    """Only workbooks holding error cells or escapes are handed to openpyxl (five times slower)."""
    assert not _read_differently(workbook)


def test_a_stray_value_far_right_is_read_without_a_full_grid(workbook, tmp_path):
    """calamine would hold every row as wide as the stray cell: such a workbook goes to openpyxl."""
    wb = openpyxl.load_workbook(workbook)
    wb["Tenancies"]["XFD2"] = "note"
    path = tmp_path / "stray.xlsx"
    wb.save(path)

    assert _read_differently(path)
    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)
    assert df["_row"].tolist() == [5, 7, 8]
    assert df["UPRN"].tolist() == ["100023000000", "100023456789", "010033445566"]


def test_password_protected_or_missing_workbook_is_one_line(tmp_path):
    protected = tmp_path / "protected.xlsx"  # Excel encrypts into an OLE container, not a zip
    protected.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000))

    with pytest.raises(SourceReadError) as err:
        read_sheet(protected, "Tenancies", TENANCY_COLUMNS)
    assert str(err.value) == (
        f"{protected}: not a readable .xlsx workbook (BadZipFile: saved with a password, or "
        "in Excel's older .xls format; save it as .xlsx without a password)"
    )

    with pytest.raises(SourceReadError) as err:
        read_sheet(tmp_path / "gone.xlsx", "Tenancies", TENANCY_COLUMNS)
    assert str(err.value) == f"{tmp_path / 'gone.xlsx'}: file not found"


def test_a_csv_named_xlsx_and_a_workbook_cut_short_are_told_apart(workbook, tmp_path):
    """Each said only 'BadZipFile': the person who asks for the file again needs to know what
    to ask for."""
    text = tmp_path / "tenancies_text.xlsx"
    text.write_text("Tenancy Ref,Name\nT1,Ann Lee\n", encoding="utf-8")
    cut = tmp_path / "tenancies_cut.xlsx"
    cut.write_bytes(workbook.read_bytes()[:400])
    told = {}
    for path in (text, cut):
        with pytest.raises(SourceReadError) as err:
            read_sheet(path, "Tenancies", TENANCY_COLUMNS)
        told[path.name] = str(err.value)
    assert told["tenancies_text.xlsx"].endswith(
        "(BadZipFile: it is a text file (a CSV?) named .xlsx)"
    )
    assert told["tenancies_cut.xlsx"].endswith("cut short or damaged; ask for it again)")
    assert all("Ann" not in message and "\n" not in message for message in told.values())


def test_a_workbook_named_as_another_type_is_refused(workbook, tmp_path):
    """calamine opens a workbook under any name, and .xls and .ods files too: the housing
    source takes .xlsx only, as before."""
    path = tmp_path / "tenancies.xlsx.bak"
    path.write_bytes(workbook.read_bytes())

    with pytest.raises(SourceReadError) as err:
        read_sheet(path, "Tenancies", TENANCY_COLUMNS)
    assert str(err.value) == f"{path}: not a readable .xlsx workbook (InvalidFileException)"


def test_a_misspelt_attribute_in_a_damaged_sheet_is_one_line(workbook, tmp_path):
    """calamine cannot read this sheet and hands the workbook to openpyxl, whose typed XML
    objects raise TypeError on the unknown attribute: still one line naming the file."""
    path = _rewrite_part(
        workbook,
        tmp_path / "misspelt.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<sheetFormatPr ", b'<sheetFormatPr rowHeighected="1" ')[
            : len(xml) // 2
        ],
    )

    with pytest.raises(SourceReadError) as err:
        read_sheet(path, "Tenancies", TENANCY_COLUMNS)
    assert str(err.value).startswith(f"{path}")
    assert "\n" not in str(err.value)
