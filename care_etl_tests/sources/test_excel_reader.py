"""Excel reader: the housing workbook layout, value rendering, header search and errors."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from care_etl.errors import SourceReadError
from care_etl.sources.excel_reader import read_sheet, sheet_names

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
