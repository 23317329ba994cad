"""A spreadsheet error value (`#REF!`, `#N/A`) in a cell is no value: nulled with its reason,
never read as a name, an address or a date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

from care_etl.contracts import load_contract
from care_etl.quality.staging import stage_source
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR

HOUSING = load_contract(CONTRACTS_DIR / "housing_tenancies.yaml")


def _workbook(sources: Path) -> None:
    wb = openpyxl.Workbook()
    tenancies = wb.active
    tenancies.title = "Tenancies"
    tenancies.append(["Tenancy Ref", "UPRN", "Property Address", "Postcode", "Tenancy Start"])
    tenancies.append(["T-1", 100023000000, "#N/A", "E8 3QP", dt.datetime(2015, 4, 1)])
    members = wb.create_sheet("Household Members")
    members.append(["Tenancy Ref", "Person Ref", "Name", "DOB", "Gender"])
    members.append(["T-1", "HM-0000001", "#REF!", dt.datetime(1948, 7, 3), "F"])
    members.append(["T-1", "HM-0000002", "LI, Ann", "#N/A", "F"])
    members.append(["T-1", "HM-0000003", "LI, Bo", dt.datetime(1950, 1, 2), "#VALUE!"])
    (sources / "housing").mkdir(parents=True)
    wb.save(sources / "housing" / "tenancies_North.xlsx")


def test_error_cells_are_nulled_with_their_reason_not_read_as_values(tmp_path):
    _workbook(tmp_path)

    staged = stage_source(read_source(HOUSING, tmp_path), HOUSING)

    quarantine = staged.quarantine.set_index("source_record_id")["reason"].to_dict()
    assert quarantine == {
        "HM-0000001": "no usable name (full_name: a spreadsheet error (#REF!), not a value; "
        "address: a spreadsheet error (#N/A), not a value)",
        "HM-0000002": "no valid date of birth or NHS number (date_of_birth: a spreadsheet "
        "error (#N/A), not a value; address: a spreadsheet error (#N/A), not a value)",
    }
    kept = staged.records.set_index("source_record_id")
    assert kept.loc["HM-0000003", "sex"] is None
    assert (
        "sex: a spreadsheet error (#VALUE!), not a value"
        in kept.loc["HM-0000003", "quality_issues"]
    )
    assert kept.loc["HM-0000003", "address"] is None
