"""The ground truth names every record written, and the trap pairs are really traps."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from care_etl.errors import CareEtlError
from care_etl.synthetic.generate import SOURCES, GenerateSummary, generate
from care_etl.synthetic.population import Population, build_population
from care_etl_tests.synthetic.conftest import PEOPLE
from care_etl_tests.synthetic.test_layouts import normal_postcode


def _records_in_files(out_dir: Path, health_rows, db) -> dict[str, list[str]]:
    housing = []
    for path in sorted((out_dir / "housing").glob("*.xlsx")):
        sheet = openpyxl.load_workbook(path)["Household Members"]
        housing.extend(row[1] for row in sheet.iter_rows(min_row=2, values_only=True))
    return {
        "health_gp_registrations": [f"{r['Practice Code']}:{r['Patient ID']}" for r in health_rows],
        "housing_tenancies": housing,
        "social_care_case_management": [
            str(r[0]) for r in db.execute("SELECT person_id FROM persons WHERE is_deleted = 0")
        ],
        "paper_referrals": [p.stem for p in (out_dir / "paper").iterdir()],
    }


def test_one_truth_row_per_record_written(generated, health_rows, db, truth) -> None:
    out_dir, summary = generated
    files = _records_in_files(out_dir, health_rows, db)
    with (out_dir / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["source", "source_record_id", "true_person_id"]
        rows = list(reader)
    assert len(rows) == len(truth)  # no record listed twice
    for source in SOURCES:
        listed = sorted(rid for s, rid in truth if s == source)
        assert listed == sorted(files[source]), source
        assert summary.records[source] == len(listed) > 0
    deleted = {str(r[0]) for r in db.execute("SELECT person_id FROM persons WHERE is_deleted = 1")}
    assert deleted and summary.withdrawn == len(deleted)
    assert not deleted & {rid for s, rid in truth if s == "social_care_case_management"}
    assert summary.files == sum(1 for p in out_dir.rglob("*") if p.is_file())
    assert summary.people == PEOPLE


def test_presence_in_each_source_is_realistic(truth, population: Population) -> None:
    assert set(truth.values()) <= set(population.by_id)
    people = {s: {pid for (src, _), pid in truth.items() if src == s} for s in SOURCES}
    share = {s: len(ids) / PEOPLE for s, ids in people.items()}
    assert 0.78 <= share["health_gp_registrations"] <= 0.92
    assert 0.20 <= share["housing_tenancies"] <= 0.40
    assert 0.08 <= share["social_care_case_management"] <= 0.24
    assert 0.02 <= share["paper_referrals"] <= 0.09
    # some people appear twice within a source
    for source in ("health_gp_registrations", "social_care_case_management"):
        counts = Counter(pid for (s, _), pid in truth.items() if s == source)
        assert any(n > 1 for n in counts.values()), source


def test_trap_pairs_have_their_defining_properties(out_dir, population, health_rows, truth) -> None:
    with (out_dir / "ground_truth_pairs.csv").open(encoding="utf-8", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    assert {p["kind"] for p in pairs} == {"twin", "father_son", "namesake"}
    in_health = {}
    for r in health_rows:
        in_health.setdefault(
            truth[("health_gp_registrations", f"{r['Practice Code']}:{r['Patient ID']}")], []
        ).append(r)
    for pair in pairs:
        a, b = (
            population.by_id[pair["true_person_id_a"]],
            population.by_id[pair["true_person_id_b"]],
        )
        ha, hb = in_health[a.person_id], in_health[b.person_id]  # both always in health, once
        assert len(ha) == len(hb) == 1
        ra, rb = ha[0], hb[0]
        same_name = (ra["Forename"], ra["Surname"]) == (rb["Forename"], rb["Surname"])
        same_dob = ra["Date of Birth"] == rb["Date of Birth"]
        same_postcode = normal_postcode(ra["Postcode"]) == normal_postcode(rb["Postcode"])
        same_home = a.household_id == b.household_id
        kind = pair["kind"]
        if kind == "twin":
            assert ra["Surname"] == rb["Surname"] and ra["Forename"] != rb["Forename"]
            assert same_dob and same_postcode and same_home
        elif kind == "father_son":
            assert a.sex == b.sex == "M" and a.person_id in b.parents
            assert same_name and not same_dob and same_postcode and same_home
        else:
            assert same_name and same_dob and not same_postcode and not same_home
            assert not set(a.parents) & set(b.parents) and a.partner != b.person_id


def test_housing_relationships_agree_with_households(out_dir, population, truth) -> None:
    members: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((out_dir / "housing").glob("*.xlsx")):
        sheet = openpyxl.load_workbook(path)["Household Members"]
        for ref, person_ref, *_, relation, _ni in sheet.iter_rows(min_row=2, values_only=True):
            members.setdefault(ref, []).append((truth[("housing_tenancies", person_ref)], relation))
    for rows in members.values():
        people = [population.by_id[pid] for pid, _ in rows]
        assert len({p.household_id for p in people}) == 1  # one tenancy, one household
        lead = next(p for (pid, rel), p in zip(rows, people, strict=True) if rel == "Lead Tenant")
        for (_, relation), person in zip(rows, people, strict=True):
            if relation == "Partner":
                assert person.partner == lead.person_id
            elif relation in ("Son", "Daughter"):
                assert lead.person_id in person.parents
                assert person.sex == ("M" if relation == "Son" else "F")
            elif relation == "Parent":
                assert person.person_id in lead.parents


def test_social_care_relationships_agree_with_households(db, population, truth) -> None:
    true_id = {rid: pid for (s, rid), pid in truth.items() if s == "social_care_case_management"}
    rows = db.execute("SELECT person_id, related_person_id, relationship_type FROM relationships")
    kinds = Counter()
    for person_id, related_id, kind in rows:
        a = population.by_id[true_id[str(person_id)]]
        b = population.by_id[true_id[str(related_id)]]
        kinds[kind] += 1
        assert a.household_id == b.household_id
        if kind in ("Mother", "Father"):
            assert b.person_id in a.parents and b.sex == ("F" if kind == "Mother" else "M")
        elif kind == "Child":
            assert a.person_id in b.parents
        elif kind == "Sibling":
            assert set(a.parents) & set(b.parents)
        elif kind in ("Partner", "Carer"):
            assert a.partner == b.person_id
    assert {"Mother", "Child", "Sibling", "Partner"} <= set(kinds)


def test_people_below_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CareEtlError, match="people"):
        generate(tmp_path, 0)


def test_summary_and_progress_report_without_personal_data(tmp_path: Path) -> None:
    messages: list[str] = []
    summary = generate(tmp_path, 120, 5, scans=0, progress=messages.append)
    assert isinstance(summary, GenerateSummary) and summary.seconds > 0
    assert len(messages) >= 5 and any("health_gp_registrations" in m for m in messages)
    rows = list(csv.reader((tmp_path / "ground_truth.csv").open(encoding="utf-8")))
    assert len(rows) - 1 == sum(summary.records.values())
    words = {w for m in messages for w in re.findall(r"[A-Za-z']+", m)}
    names = {n for p in build_population(120, 5).persons for n in (p.forename, p.surname)}
    assert not words & names
