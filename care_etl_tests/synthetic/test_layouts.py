"""The four sources come out in exactly the layouts of source-systems.md."""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import openpyxl

from care_etl_tests.synthetic.conftest import decode_health

HEALTH_HEADER = [
    "Patient ID",
    "NHS Number",
    "Title",
    "Forename",
    "Middle Names",
    "Surname",
    "Date of Birth",
    "Sex",
    "Address Line 1",
    "Address Line 2",
    "Address Line 3",
    "Address Line 4",
    "Postcode",
    "Practice Code",
    "Registration Date",
    "Date of Death",
]
TENANCY_HEADER = (
    "Tenancy Ref",
    "UPRN",
    "Property Address",
    "Postcode",
    "Tenancy Start",
    "Tenancy End",
)
MEMBER_HEADER = (
    "Tenancy Ref",
    "Person Ref",
    "Name",
    "DOB",
    "Gender",
    "Relationship to Lead Tenant",
    "NI Number",
)
RELATIONSHIPS = {
    "Lead Tenant",
    "Partner",
    "Son",
    "Daughter",
    "Parent",
    "Grandchild",
    "Lodger",
    "Other",
}
UK_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
LONG_DATE = re.compile(r"^\d{1,2} [A-Z][a-z]+ \d{4}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][ABD-HJLNP-UW-Z]{2}$")


def normal_postcode(text: str) -> str:
    compact = text.upper().replace(" ", "")
    return f"{compact[:-3]} {compact[-3:]}"


def test_health_csv_header_ids_and_values(out_dir: Path) -> None:
    files = sorted((out_dir / "health").glob("gp_registrations_*.csv"))
    assert len(files) >= 4
    for path in files:
        _, text = decode_health(path)
        lines = text.splitlines()
        assert lines[0].split(",") == HEALTH_HEADER
        rows = list(csv.DictReader(lines))
        code = path.stem.removeprefix("gp_registrations_")
        assert re.fullmatch(r"F84\d{3}", code)
        assert {r["Practice Code"] for r in rows} == {code}
        ids = [r["Patient ID"] for r in rows]
        assert len(ids) == len(set(ids))
        assert all(re.fullmatch(r"P\d{7}", i) for i in ids)
        for r in rows:
            assert UK_DATE.match(r["Date of Birth"]) and UK_DATE.match(r["Registration Date"])
            assert r["Date of Death"] == "" or UK_DATE.match(r["Date of Death"])
            assert r["Sex"] in {"Male", "Female", "Indeterminate", "Unknown"}
            assert r["Title"] in {"Mr", "Mrs", "Ms", "Miss", "Dr", "Mx", ""}
            assert POSTCODE.match(normal_postcode(r["Postcode"]))
            nhs = r["NHS Number"]
            assert nhs == "" or re.fullmatch(r"\d{10}|\d{3} \d{3} \d{4}", nhs)


def test_health_encodings_one_cp1252_one_bom_rest_utf8(out_dir: Path) -> None:
    encodings = [decode_health(p)[0] for p in sorted((out_dir / "health").glob("*.csv"))]
    assert encodings.count("cp1252") == 1  # undecodable as UTF-8: it holds accented names
    assert encodings.count("utf-8-sig") == 1
    assert encodings.count("utf-8") == len(encodings) - 2


def _workbooks(out_dir: Path) -> list[openpyxl.Workbook]:
    paths = sorted((out_dir / "housing").glob("tenancies_*.xlsx"))
    assert len(paths) >= 3
    return [openpyxl.load_workbook(p) for p in paths]


def test_housing_sheets_title_block_and_headers(out_dir: Path) -> None:
    merged = 0
    for wb in _workbooks(out_dir):
        assert wb.sheetnames == ["Tenancies", "Household Members"]
        ten, mem = wb["Tenancies"], wb["Household Members"]
        assert str(ten["A1"].value).startswith("Tenancy extract — ")
        assert ten["A2"].value
        assert all(c.value is None for c in ten[3])
        assert tuple(c.value for c in ten[4]) == TENANCY_HEADER
        assert tuple(c.value for c in mem[1]) == MEMBER_HEADER
        merged += "A1:F1" in {str(r) for r in ten.merged_cells.ranges}
        for row in ten.iter_rows(min_row=5, values_only=True):
            assert isinstance(row[4], datetime) and (row[5] is None or isinstance(row[5], datetime))
            assert len(str(row[1])) <= 12 and str(row[1]).isdigit()
    assert merged >= 1
    assert merged < len(_workbooks(out_dir))  # and some workbooks without


def test_housing_cell_types_and_orphans(out_dir: Path) -> None:
    uprn_types, dob_types, text_dobs = set(), set(), []
    tenancy_refs, member_refs, person_refs = set(), [], []
    for wb in _workbooks(out_dir):
        for row in wb["Tenancies"].iter_rows(min_row=5, values_only=True):
            tenancy_refs.add(row[0])
            uprn_types.add(type(row[1]))
        for row in wb["Household Members"].iter_rows(min_row=2, values_only=True):
            member_refs.append(row[0])
            person_refs.append(row[1])
            dob_types.add(type(row[3]))
            if isinstance(row[3], str):
                text_dobs.append(row[3])
            assert row[4] in {"M", "F", "X", None}
            assert row[5] in RELATIONSHIPS
            assert row[6] is None or re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", row[6])
            assert re.fullmatch(r"[^,]+, .+|\S.* \S+", row[2])
    assert uprn_types == {int, str}
    assert {datetime, str} <= dob_types
    assert text_dobs and all(
        UK_DATE.match(d) or LONG_DATE.match(d) or ISO_DATE.match(d) for d in text_dobs
    )
    assert len(person_refs) == len(set(person_refs))
    assert all(re.fullmatch(r"HM-\d{7}", p) for p in person_refs)
    assert any(ref not in tenancy_refs for ref in member_refs)  # an orphan member


def test_social_care_tables_and_columns(db) -> None:
    columns = {
        table: [r["name"] for r in db.execute(f"PRAGMA table_info({table})")]
        for table in ("persons", "addresses", "relationships", "involvements")
    }
    assert columns == {
        "persons": [
            "person_id",
            "forename",
            "surname",
            "other_names",
            "date_of_birth",
            "dob_estimated",
            "gender",
            "nhs_number",
            "ethnicity",
            "created_at",
            "updated_at",
            "is_deleted",
        ],
        "addresses": [
            "address_id",
            "person_id",
            "address_text",
            "postcode",
            "uprn",
            "start_date",
            "end_date",
        ],
        "relationships": ["person_id", "related_person_id", "relationship_type"],
        "involvements": [
            "involvement_id",
            "person_id",
            "service",
            "start_date",
            "end_date",
            "status",
        ],
    }
    value_sets = {
        "SELECT DISTINCT gender FROM persons": {"Male", "Female", "Non-binary", "Not recorded"},
        "SELECT DISTINCT relationship_type FROM relationships": {
            "Mother",
            "Father",
            "Sibling",
            "Partner",
            "Child",
            "Carer",
            "Other",
        },
        "SELECT DISTINCT service FROM involvements": {
            "Children's Social Care",
            "Adult Social Care",
        },
    }
    for query, allowed in value_sets.items():
        found = {r[0] for r in db.execute(query)}
        assert found <= allowed and len(found) >= 2, query
    dates = [r[0] for r in db.execute("SELECT date_of_birth FROM persons")]
    assert all(ISO_DATE.match(d) for d in dates)


def test_social_care_history_shows(db) -> None:
    def one(query: str) -> int:
        return db.execute(query).fetchone()[0]

    assert one("SELECT count(*) FROM persons WHERE is_deleted = 1") > 0
    assert one("SELECT count(*) FROM persons WHERE dob_estimated = 1") > 0
    assert (
        one(
            "SELECT count(*) FROM persons WHERE dob_estimated = 1 "
            "AND date_of_birth NOT LIKE '%-01-01'"
        )
        == 0
    )
    assert one("SELECT count(*) FROM persons WHERE other_names LIKE '%;%'") > 0
    assert one("SELECT count(*) FROM addresses WHERE end_date IS NOT NULL") > 0
    assert one("SELECT count(*) FROM addresses WHERE end_date IS NULL") > 0
    assert (
        one("SELECT count(*) FROM persons WHERE person_id NOT IN (SELECT person_id FROM addresses)")
        > 0
    )
    assert (
        one("SELECT count(*) FROM addresses WHERE person_id NOT IN (SELECT person_id FROM persons)")
        == 0
    )
    assert one(
        "SELECT count(*) FROM relationships r JOIN persons p ON p.person_id = r.related_person_id"
    ) == one("SELECT count(*) FROM relationships")


PAPER_LABELS = (
    "Name:",
    "Date of Birth:",
    "NHS No:",
    "Address:",
    "Postcode:",
    "Referrer:",
    "Date of referral:",
    "Other household members:",
)


def test_paper_forms_are_the_typed_form_in_order(out_dir: Path) -> None:
    files = sorted((out_dir / "paper").iterdir())
    assert files and all(f.suffix == ".txt" for f in files)  # scans=0 writes no images
    for path in files:
        assert re.fullmatch(r"REF-\d{6}", path.stem)
        text = path.read_text(encoding="utf-8")
        assert text.startswith("REFERRAL FORM\n")
        positions = [text.find("\n" + label) for label in PAPER_LABELS]
        assert all(p > 0 for p in positions), path.name
        assert positions == sorted(positions), path.name
