"""Housing: one tenancy workbook per area office, written with openpyxl.

Sheet `Tenancies` has a title block (rows 1-2, merged in some workbooks), a blank row 3 and
its header on row 4; `Household Members` has its header on row 1. UPRNs are number cells in
some rows and text in others, dates of birth are Excel dates in most rows and text in some,
and a few members point at a tenancy the extract no longer holds.

Workbooks are written in write-only mode (fast, and merged cells still work there) and saved
through a zip archive with fixed timestamps, so the same seed gives the same bytes.
"""

from __future__ import annotations

import random
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.writer.excel import ExcelWriter

from care_etl.synthetic.common import SourceOutput, stream, uk_date
from care_etl.synthetic.mess import Rates, View, record_view, strip_accents
from care_etl.synthetic.population import (
    DISTRICTS,
    REFERENCE_DATE,
    Household,
    Person,
    Population,
    random_date,
)

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

RATES = Rates(
    short_form=0.4, former_surname=0.05, strip_accents=0.3, dob_missing=0.005, nhs_missing=1.0
)
#: Share of households that are council tenants (about 30% of people).
TENANCY_SHARE = 0.30
#: Of tenant households that moved: the extract holds the ended tenancy at the old address.
ENDED_SHARE = 0.5
MEMBER_LISTED = 0.95
UPRN_AS_TEXT = 0.2
DOB_AS_TEXT = 0.05
#: Tenancies missing from the extract whose members are still listed (orphan members).
ORPHAN_SHARE = 0.01

_FIXED_TIME = (2025, 3, 31, 6, 0, 0)
_CREATED = datetime(2025, 3, 31, 6, 0, 0)
_DATE_FORMAT = "DD/MM/YYYY"
#: English month names, whatever the machine's locale (strftime's %B follows the locale).
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one timestamp, so equal content gives equal bytes."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=_FIXED_TIME)
            info.compress_type = self.compression
            info.external_attr = 0o600 << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        with open(filename, "rb") as handle:
            self.writestr(arcname or Path(filename).name, handle.read())


def _name_cell(view: View, rng: random.Random) -> str:
    if rng.random() < 0.8:
        given = view.forename
        if view.middle_names and rng.random() < 0.15:
            given = f"{given} {view.middle_names}"
        return f"{view.surname.upper()}, {given}"
    return f"{view.forename} {view.surname}"


def _dob_cell(view: View, rng: random.Random, ws) -> object:
    if view.dob is None:
        return None
    if rng.random() < DOB_AS_TEXT:
        d = view.dob
        return rng.choice((uk_date(d), f"{d.day} {_MONTHS[d.month - 1]} {d.year}", d.isoformat()))
    return _date_cell(ws, view.dob)


def _date_cell(ws, value: date | None) -> object:
    if value is None:
        return None
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = _DATE_FORMAT
    return cell


def _gender(person: Person, rng: random.Random) -> str | None:
    return None if rng.random() < 0.03 else person.sex


def _member_row(
    person: Person, hh: Household, ref: str, rng: random.Random, ws, as_of: date | None
) -> list[object]:
    view = record_view(person, hh, RATES, rng, as_of=as_of)
    ni = person.ni_number if person.ni_number and rng.random() < 0.45 else None
    return [
        ref,
        None,
        _name_cell(view, rng),
        _dob_cell(view, rng, ws),
        _gender(person, rng),
        person.role,
        ni,
    ]


def _tenancy(hh: Household, ref: str, rng: random.Random, ws) -> tuple[list[object], date | None]:
    """The tenancy row, and the date it ended (None while live)."""
    ended = hh.previous is not None and hh.moved_on is not None and rng.random() < ENDED_SHARE
    address = hh.previous if ended and hh.previous else hh.address
    lead_adult = date(hh.lead.dob.year + 18, hh.lead.dob.month, 1)
    start_floor = max(lead_adult, date(1985, 1, 1))
    if ended:
        end = hh.moved_on
        latest = (end or REFERENCE_DATE) - timedelta(days=200)
        start = random_date(rng, min(start_floor, latest), latest)
    else:
        end = None
        start = random_date(rng, max(start_floor, hh.moved_on or start_floor), REFERENCE_DATE)
    uprn: object = address.uprn if rng.random() < UPRN_AS_TEXT else int(address.uprn)
    postcode = address.postcode
    if rng.random() < RATES.postcode_lower:
        postcode = postcode.lower()
    if rng.random() < RATES.postcode_no_space:
        postcode = postcode.replace(" ", "")
    line = address.one_line(locality=rng.random() < 0.5)
    if rng.random() < 0.2:
        line = strip_accents(line)
    return [ref, uprn, line, postcode, _date_cell(ws, start), _date_cell(ws, end)], end


def _sheets(office: str, wb: Workbook, merged: bool):
    tenancies = wb.create_sheet("Tenancies")
    members = wb.create_sheet("Household Members")
    tenancies.append([f"Tenancy extract — {office} office"])
    tenancies.append([f"Generated {uk_date(REFERENCE_DATE)}"])
    tenancies.append([])
    tenancies.append(list(TENANCY_HEADER))
    if merged:
        tenancies.merged_cells.add("A1:F1")
        tenancies.merged_cells.add("A2:F2")
    members.append(list(MEMBER_HEADER))
    return tenancies, members


def _save(wb: Workbook, path: Path) -> None:
    wb.properties.created = _CREATED
    wb.properties.modified = _CREATED
    wb.properties.creator = "Housing management system"
    with _FixedTimeZip(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()


def _tenant_households(population: Population, rng: random.Random) -> list[Household]:
    return [hh for hh in population.households if rng.random() < TENANCY_SHARE]


def write_housing(out_dir: Path, population: Population, seed: int) -> SourceOutput:
    """Write `housing/tenancies_<Office>.xlsx`; Person Refs are unique across workbooks."""
    rng = stream(seed, "housing")
    offices = sorted({office for _, _, office in DISTRICTS})
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = _tenant_households(population, rng)
    tenancy_number = rng.randint(1000, 20000)
    person_number = rng.randint(1000, 50000)
    output = SourceOutput()
    by_office: dict[str, list[Household]] = {o: [] for o in offices}
    for hh in chosen:
        by_office[hh.address.office].append(hh)
    for index, office in enumerate(offices):
        wb = Workbook(write_only=True)
        tenancies, members = _sheets(office, wb, merged=index % 2 == 0)
        households = by_office[office]
        for position, hh in enumerate(households):
            tenancy_number += rng.randint(1, 5)
            ref = f"T-{tenancy_number:06d}"
            row, ended = _tenancy(hh, ref, rng, tenancies)
            # the first office's last tenancy is always missing, so every extract has an orphan
            orphan = rng.random() < ORPHAN_SHARE or (index == 0 and position == len(households) - 1)
            if not orphan:
                tenancies.append(row)
            for person in hh.members:
                if (
                    person.role != "Lead Tenant"
                    and not person.trap
                    and rng.random() >= MEMBER_LISTED
                ):
                    continue
                if ended and person.dob >= ended:
                    continue
                person_number += rng.randint(1, 3)
                member = _member_row(person, hh, ref, rng, members, ended)
                member[1] = f"HM-{person_number:07d}"
                members.append(member)
                output.records.append((member[1], person.person_id))
        _save(wb, out_dir / f"tenancies_{office}.xlsx")
        output.files += 1
    return output
