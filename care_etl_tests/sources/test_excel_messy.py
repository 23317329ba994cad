"""Excel reader on workbooks as people and scripts make them: header cells merged down or
across, group titles over the names, and formulas saved without a value."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from care_etl.contracts.model import load_contract
from care_etl.errors import SourceReadError
from care_etl.sources.excel_reader import _read_differently, read_sheet
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.sources.test_excel_reader import (
    MEMBER_COLUMNS,
    TENANCY_COLUMNS,
    _rewrite_part,
)

MEMBER = ["T-1", "HM-0000001", "SMITH, Ann", dt.datetime(1950, 1, 2), "F", "Lead Tenant", None]


def _tenancies(ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
    ws.title = "Tenancies"
    ws["A1"] = "Tenancy extract — North office"
    ws.merge_cells("A1:F1")


def _save(wb: openpyxl.Workbook, path: Path, *, openpyxl_path: bool = False) -> Path:
    """Save; with `openpyxl_path`, with an error cell in a title row, which has the workbook
    read with openpyxl instead of calamine (the merges and formulas must read the same)."""
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


def _members_with_formulas(path: Path, *, openpyxl_path: bool = False) -> Path:
    """A workbook written by a script: formulas, never calculated (openpyxl stores none)."""
    wb = openpyxl.Workbook()
    _tenancies(wb.active)
    wb.active.append([])
    wb.active.append(TENANCY_COLUMNS)
    wb.active.append(["T-1", 100023000000, "1 Mill Lane", "E8 3QP", dt.datetime(2015, 4, 1)])
    ws = wb.create_sheet("Household Members")
    ws.append(MEMBER_COLUMNS)
    ws.append([*MEMBER[:3], "=DATE(1950,1,2)", *MEMBER[4:]])
    ws.append(["T-1", "HM-0000002", '=CONCATENATE("JONES",", ","Bob")', "=DATE(1951,3,4)"])
    ws.append(["T-1", "HM-0000003", "LEE, Kim", dt.datetime(1960, 5, 6)])
    return _save(wb, path, openpyxl_path=openpyxl_path)


FORMULA_WARNING = (
    "3 cells in rows 2, 3 of columns C 'Name' (1), D 'DOB' (2) are formulas with no saved "
    "value, read as empty: the workbook was saved by a program that does not calculate "
    "formulas; open it in Excel or LibreOffice and save it, so that the values are stored"
)


@READERS
def test_formulas_without_a_saved_value_are_reported_by_column(tmp_path, openpyxl_path):
    # They read as blank, and nothing said why: a date of birth gone, the feed maybe blocked.
    path = _members_with_formulas(tmp_path / "formulas.xlsx", openpyxl_path=openpyxl_path)

    df = read_sheet(path, "Household Members", MEMBER_COLUMNS)

    assert df["Person Ref"].tolist() == ["HM-0000001", "HM-0000002", "HM-0000003"], "all kept"
    assert df["DOB"].tolist() == [None, None, "1960-05-06"]
    assert df.attrs["warnings"] == [FORMULA_WARNING]
    assert not re.search("DATE|JONES|1950", FORMULA_WARNING), "the formulas are not shown"


def test_the_source_warns_naming_file_and_sheet(tmp_path):
    (tmp_path / "housing").mkdir()
    _members_with_formulas(tmp_path / "housing" / "tenancies_NORTH.xlsx")

    result = read_source(load_contract(CONTRACTS_DIR / "housing_tenancies.yaml"), tmp_path)

    assert result.errors == []
    assert result.warnings == [
        f"housing/tenancies_NORTH.xlsx sheet Household Members: {FORMULA_WARNING}"
    ]
    assert len(result.records) == 3


def test_formulas_with_saved_values_or_an_empty_text_result_are_not_reported(tmp_path):
    written = _members_with_formulas(tmp_path / "script.xlsx")
    saved = tmp_path / "saved.xlsx"
    # As Excel saves them: each formula with its value; "" saved as an empty text result.
    _rewrite_part(
        written,
        saved,
        "xl/worksheets/sheet2.xml",
        lambda xml: (
            xml.replace(b"<f>DATE(1950,1,2)</f><v />", b"<f>DATE(1950,1,2)</f><v>18264</v>")
            .replace(b"<f>DATE(1951,3,4)</f><v />", b"<f>DATE(1951,3,4)</f><v>18691</v>")
            .replace(b'<c r="C3">', b'<c r="C3" t="str">')
            .replace(b'"Bob")</f><v />', b'"Bob")</f><v></v>')
        ),
    )

    df = read_sheet(saved, "Household Members", MEMBER_COLUMNS)

    assert df.attrs["warnings"] == []
    assert df["DOB"].tolist()[:2] == ["18264", "18691"]  # a number cell, as Excel would store


def test_a_formula_header_cell_without_a_value_is_named(tmp_path):
    wb = openpyxl.load_workbook(_members_with_formulas(tmp_path / "formulas.xlsx"))
    wb["Household Members"]["G1"] = '="NI Number"'
    wb.save(tmp_path / "header.xlsx")

    df = read_sheet(tmp_path / "header.xlsx", "Household Members", MEMBER_COLUMNS)

    assert df.attrs["missing_columns"] == ["NI Number"]
    (warning,) = df.attrs["warnings"]
    assert "(2) and header cell G1 (its column is not found) are formulas" in warning


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


@READERS
def test_a_tenancy_reference_merged_down_over_its_members_is_read_in_every_row(
    tmp_path, openpyxl_path
):
    # "T-1" merged down A2:A4 over three members, as Excel shows it: the readers gave it to
    # the first member only, so the other two had no tenancy and no address.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Household Members"
    ws.append(MEMBER_COLUMNS)
    for n, name in enumerate(["SMITH, Ann", "SMITH, Bob", "SMITH, Cy"]):
        ws.append([("T-1" if n == 0 else None), f"HM-{n}", name, None, "F", "Other", None])
    ws.append(["T-2", "HM-9", "JONES, Di", None, "F", "Lead Tenant", None])
    ws.merge_cells("A2:A4")
    path = _save(wb, tmp_path / "members.xlsx", openpyxl_path=openpyxl_path)

    df = read_sheet(path, "Household Members", MEMBER_COLUMNS)

    assert df["Tenancy Ref"].tolist() == ["T-1", "T-1", "T-1", "T-2"]
    assert df["Person Ref"].tolist() == ["HM-0", "HM-1", "HM-2", "HM-9"]
    assert df.attrs["warnings"] == [
        "1 cell merged down over several records (A2:A4): read into every row each spans, "
        "as Excel shows it"
    ]
