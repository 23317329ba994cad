"""Excel reader on workbooks as people make them: header cells merged down or across, and
group titles over the names."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from care_etl.errors import SourceReadError
from care_etl.sources.excel_reader import _read_differently, read_sheet
from care_etl_tests.sources.test_excel_reader import (
    MEMBER_COLUMNS,
    TENANCY_COLUMNS,
)

MEMBER = ["T-1", "HM-0000001", "SMITH, Ann", dt.datetime(1950, 1, 2), "F", "Lead Tenant", None]


def _tenancies(ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
    ws.title = "Tenancies"
    ws["A1"] = "Tenancy extract — North office"
    ws.merge_cells("A1:F1")


def _save(wb: openpyxl.Workbook, path: Path, *, openpyxl_path: bool = False) -> Path:
    """Save; with `openpyxl_path`, with an error cell in a title row, which has the workbook
    read with openpyxl instead of calamine (the merges must read the same)."""
    if openpyxl_path:
        wb.worksheets[0]["H1"] = "#N/A"
    wb.save(path)
    assert _read_differently(path) == openpyxl_path
    return path


READERS = pytest.mark.parametrize("openpyxl_path", [False, True], ids=["calamine", "openpyxl"])


@READERS
def test_a_group_title_merged_over_names_in_the_row_below_is_joined(tmp_path, openpyxl_path):
    # Row 3 holds the names, merged down over row 4 except "Tenancy", merged across E3:F3
    # over "Start" and "End". The group row was the header: "Tenancy" named E, F was unread,
    # and row 4 ("Start", "End") became a record.
    wb = openpyxl.Workbook()
    ws = wb.active
    _tenancies(ws)
    ws.append([])
    ws.append([*TENANCY_COLUMNS[:4], "Tenancy"])
    ws.append([None, None, None, None, "Start", "End"])
    for col in "ABCD":
        ws.merge_cells(f"{col}3:{col}4")
    ws.merge_cells("E3:F3")
    ws.append(["T-1", 100023000000, "1 Mill Lane", "E8 3QP", dt.datetime(2015, 4, 1), None])
    path = _save(wb, tmp_path / "group.xlsx", openpyxl_path=openpyxl_path)

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["header_row"] == 3
    assert df.attrs["headers"] == TENANCY_COLUMNS
    assert df.attrs["missing_columns"] == [] and df.attrs["warnings"] == []
    assert df["_row"].tolist() == [5]
    assert df["Tenancy Start"].tolist() == ["2015-04-01"]


@READERS
def test_group_titles_above_the_header_and_a_name_merged_down_are_read(tmp_path, openpyxl_path):
    # "Tenancy Ref" merged down A1:A2 and "Person" merged across B1:C1 over "Ref" and "Name":
    # the header (row 2) lost Tenancy Ref, a required column, and had "Ref", not Person Ref.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Household Members"
    ws.append(["Tenancy Ref", "Person"])
    ws.append([None, "Ref", *MEMBER_COLUMNS[2:]])
    ws.merge_cells("A1:A2")
    ws.merge_cells("B1:C1")
    ws.append(MEMBER)
    path = _save(wb, tmp_path / "members.xlsx", openpyxl_path=openpyxl_path)

    df = read_sheet(path, "Household Members", MEMBER_COLUMNS)

    assert df.attrs["header_row"] == 2
    assert df.attrs["headers"] == MEMBER_COLUMNS
    assert df["_row"].tolist() == [3]
    assert df[["Tenancy Ref", "Person Ref", "Name"]].iloc[0].tolist() == [
        "T-1",
        "HM-0000001",
        "SMITH, Ann",
    ]


@READERS
def test_a_name_merged_across_two_columns_names_the_first_and_reports_the_other(
    tmp_path, openpyxl_path
):
    # "Property Address" merged across C4:D4 over two columns of values: D's were dropped
    # with nothing said, and Postcode (E) read as expected.
    wb = openpyxl.Workbook()
    ws = wb.active
    _tenancies(ws)
    ws.append([])
    ws.append([])
    ws.append(["Tenancy Ref", "UPRN", "Property Address", None, *TENANCY_COLUMNS[3:]])
    ws.merge_cells("C4:D4")
    for n in range(2):
        ws.append([f"T-{n}", 1000230000 + n, "Flat 3", "12 Mill Lane", "E8 3QP", None, None])
    path = _save(wb, tmp_path / "wide.xlsx", openpyxl_path=openpyxl_path)

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["headers"] == TENANCY_COLUMNS
    assert df["Property Address"].tolist() == ["Flat 3", "Flat 3"]
    assert df["Postcode"].tolist() == ["E8 3QP", "E8 3QP"]
    assert df.attrs["warnings"] == [
        "2 values in column D under no header name, not read (D is under the merged header "
        "cell C4:D4): unmerge it and give each column its own name"
    ]


def test_values_under_no_header_cell_are_counted_not_shown(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tenancies"
    ws.append(TENANCY_COLUMNS)
    ws.append(["T-1", None, "1 Mill Lane", None, None, None, None, "SMITH, Ann"])
    path = _save(wb, tmp_path / "stray.xlsx")

    df = read_sheet(path, "Tenancies", TENANCY_COLUMNS)

    assert df.attrs["warnings"] == [
        "1 value in column H under no header name, not read: give each column a header name, "
        "or clear it"
    ]


def test_a_sheet_damaged_inside_its_compressed_data_is_still_one_line(tmp_path):
    """Reading the merged ranges meets the damage first: the cell readers still name it."""
    wb = openpyxl.Workbook()
    _tenancies(wb.active)
    wb.active.append(TENANCY_COLUMNS)
    good = _save(wb, tmp_path / "good.xlsx")
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    data = bytearray(good.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 10] ^= 0xFF
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(bytes(data))

    with pytest.raises(SourceReadError) as err:
        read_sheet(damaged, "Tenancies", TENANCY_COLUMNS)
    assert str(err.value).startswith(f"{damaged}: not a readable .xlsx workbook")
