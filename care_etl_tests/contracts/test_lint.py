"""`care-etl contracts lint`: one test per rule, each on a real contract with one thing broken."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from care_etl.cli import main
from care_etl.contracts.lint import lint_file, lint_paths
from care_etl_tests.conftest import CONTRACTS_DIR

GP = CONTRACTS_DIR / "health_gp_registrations.yaml"
SOCIAL = CONTRACTS_DIR / "social_care_case_management.yaml"


def _doc(path: Path = GP) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _column(doc: dict[str, Any], name: str, obj: int = 0) -> dict[str, Any]:
    return next(p for p in doc["schema"][obj]["properties"] if p["name"] == name)


def _custom(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["customProperties"] if c["property"] == name)


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_the_project_contracts_have_no_findings(capsys):
    assert lint_paths([CONTRACTS_DIR]) == []
    assert main(["contracts", "lint"]) == 0
    assert "no findings" in capsys.readouterr().out


def test_the_data_engineers_guide_contract_has_no_findings(tmp_path):
    # The guide's step 3 promises "no findings" for its Blue Badge contract: a rule added to
    # lint (a data controller, say) must come with the guide's contract following it.
    guide = (CONTRACTS_DIR.parent / "docs" / "data-engineer.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S)
                if "id: parking_blue_badges" in b]  # fmt: skip
    path = tmp_path / "parking_blue_badges.yaml"
    path.write_text(block, encoding="utf-8")
    assert lint_file(path) == []


def _break_schema(doc):
    doc["servicelevels"] = [{"property": "retention", "value": 1}]


def _break_reading(doc):
    for prop in doc["schema"][0]["properties"]:
        prop.pop("primaryKey", None)
        prop.pop("primaryKeyPosition", None)


def _no_classification(doc):
    del _column(doc, "Title")["classification"]


def _unknown_classification(doc):
    _column(doc, "Title")["classification"] = "secret"


def _person_field_classified_internal(doc):
    _column(doc, "Postcode")["classification"] = "internal"


def _dob_not_critical(doc):
    del _column(doc, "Date of Birth")["criticalDataElement"]


def _no_usage(doc):
    del doc["description"]["usage"]


def _no_lawful_basis(doc):
    doc["customProperties"] = [c for c in doc["customProperties"] if c["property"] != "lawfulBasis"]


def _lawful_basis_not_article_6(doc):
    _custom(doc, "lawfulBasis")["value"] = "the council needs it"


def _no_retention(doc):
    doc["slaProperties"] = [s for s in doc["slaProperties"] if s["property"] != "retention"]


def _retention_without_unit(doc):
    next(s for s in doc["slaProperties"] if s["property"] == "retention").pop("unit")


def _retention_sla(doc):
    return next(s for s in doc["slaProperties"] if s["property"] == "retention")


def _retention_unit_unknown(doc):
    _retention_sla(doc)["unit"] = "decades"  # care-etl retention would never apply it


def _retention_in_words(doc):
    _retention_sla(doc)["value"] = "eight"


def _retention_negative(doc):
    _retention_sla(doc)["value"] = -8  # everything would be past retention at once


def _retention_zero(doc):
    _retention_sla(doc)["value"] = 0


def _second_retention(doc):
    doc["slaProperties"].append({"property": "retention", "value": 1, "unit": "d"})


def _retention_capitalised(doc):
    _retention_sla(doc)["property"] = "Retention"


def _lawful_basis_as_a_list(doc):
    _custom(doc, "lawfulBasis")["value"] = ["Art 6(1)(e) public task"]


def _lawful_basis_twice(doc):
    doc["customProperties"].append({"property": "lawfulBasis", "value": "Art 6(1)(a) consent"})


def _no_controller(doc):
    doc["customProperties"] = [c for c in doc["customProperties"] if c["property"] != "controller"]


def _no_confidentiality_basis(doc):
    doc["customProperties"] = [
        c for c in doc["customProperties"] if c["property"] != "confidentialityBasis"
    ]


def _condition_without_special_category_columns(doc):
    for obj in doc["schema"]:
        for prop in obj["properties"]:
            if prop["classification"] == "special-category":
                prop["classification"] = "personal"


def _no_roles(doc):
    del doc["roles"]


def _role_the_database_does_not_grant(doc):
    doc["roles"].append({"role": "everyone", "access": "read", "firstLevelApprovers": "IG"})


def _analyst_may_write(doc):
    next(r for r in doc["roles"] if r["role"] == "care_etl_analyst")["access"] = "write"


def _role_nobody_approves(doc):
    del next(r for r in doc["roles"] if r["role"] == "care_etl_engineer")["firstLevelApprovers"]


def _no_owner(doc):
    doc["team"]["members"] = [m for m in doc["team"]["members"] if m["role"] != "owner"]


def _no_approver(doc):
    doc["team"]["members"] = [m for m in doc["team"]["members"] if m["role"] == "owner"]


def _remote_reference(doc):
    _column(doc, "Patient ID")["relationships"] = [
        {"to": "https://example.org/contracts/patients.yaml#/schema/patients/properties/id"}
    ]


def _dangling_reference(doc):
    _column(doc, "Patient ID")["relationships"] = [{"to": "schema/nowhere/properties/id"}]


def _unsupported_quality_rule(doc):
    _column(doc, "Surname")["quality"] = [{"metric": "nullValues", "mustNotBe": 3}]


def _text_quality_rule(doc):
    _column(doc, "Surname")["quality"] = [{"type": "text", "description": "looks right"}]


def _date_format_strptime_refuses(doc):
    _column(doc, "Date of Birth")["logicalTypeOptions"]["format"] = "%d/%m/%Q"


CASES: list[tuple[str, Callable[[dict], None], str, str]] = [
    ("schema", _break_schema, "(top level)", "ODCS"),
    ("reading", _break_reading, "schema/gp_registration", "primaryKey"),
    ("reading", _date_format_strptime_refuses, "Date of Birth", "%Q is not a strptime directive"),
    (
        "classification",
        _no_classification,
        "schema/gp_registration/properties/Title",
        "add classification",
    ),
    ("classification", _unknown_classification, "properties/Title/classification", "one of"),
    (
        "personal-classified",
        _person_field_classified_internal,
        "properties/Postcode/classification",
        "personal",
    ),
    (
        "critical-data-element",
        _dob_not_critical,
        "properties/Date of Birth",
        "criticalDataElement: true",
    ),
    ("purpose", _no_usage, "description/usage", "description.usage"),
    ("lawful-basis", _no_lawful_basis, "customProperties/lawfulBasis", "Art 6(1)"),
    ("lawful-basis", _lawful_basis_not_article_6, "customProperties/lawfulBasis", "Art 6(1)"),
    ("retention", _no_retention, "slaProperties", "retention"),
    ("retention", _retention_without_unit, "slaProperties/", "unit"),
    ("retention", _retention_unit_unknown, "slaProperties/0/unit", "use one of d, day"),
    ("retention", _retention_in_words, "slaProperties/0/value", "as a number"),
    ("retention", _retention_negative, "slaProperties/0/value", "as a number"),
    ("retention", _retention_zero, "slaProperties/0/value", "as a number"),
    ("retention", _second_retention, "slaProperties/2", "keep one retention"),
    ("retention", _retention_capitalised, "slaProperties/0/property", "property: retention"),
    ("lawful-basis", _lawful_basis_as_a_list, "customProperties/lawfulBasis", "one line of text"),
    ("given-twice", _lawful_basis_twice, "customProperties/lawfulBasis", "keep one lawfulBasis"),
    ("controller", _no_controller, "customProperties/controller", "property: controller"),
    (
        "confidentiality",
        _no_confidentiality_basis,
        "customProperties/confidentialityBasis",
        "confidentialityBasis",
    ),
    (
        "special-category-condition",
        _condition_without_special_category_columns,
        "customProperties/specialCategoryCondition",
        "classify the columns the condition covers special-category",
    ),
    ("roles", _no_roles, "roles", "care_etl_analyst"),
    ("roles", _role_the_database_does_not_grant, "roles/everyone", "care_etl_analyst"),
    ("roles", _analyst_may_write, "roles/care_etl_analyst/access", "access: read"),
    ("roles", _role_nobody_approves, "roles/care_etl_engineer", "firstLevelApprovers"),
    ("owner", _no_owner, "team/members", "role: owner"),
    ("approver", _no_approver, "team/members", "information governance approver"),
    (
        "references-offline",
        _remote_reference,
        "properties/Patient ID/relationships/0/to",
        "schema/",
    ),
    (
        "references-offline",
        _dangling_reference,
        "properties/Patient ID/relationships/0/to",
        "schema/",
    ),
    ("quality-rules", _unsupported_quality_rule, "properties/Surname/quality/0", "bound"),
    ("quality-rules", _text_quality_rule, "properties/Surname/quality/0", "library metric"),
]


@pytest.mark.parametrize(
    ("rule", "breaker", "path", "fix"), CASES, ids=[f"{c[0]}:{c[1].__name__}" for c in CASES]
)
def test_each_rule_names_the_contract_the_path_and_the_fix(tmp_path, rule, breaker, path, fix):
    doc = _doc()
    breaker(doc)
    contract = _write(tmp_path, doc)
    findings = [f for f in lint_file(contract) if f.rule == rule]
    assert findings, f"rule {rule} did not fire"
    finding = findings[0]
    assert finding.contract == str(contract)
    assert path in finding.path
    assert fix in finding.fix
    assert finding.message and "\n" not in finding.line()


def test_special_category_needs_article_9_and_schedule_1(tmp_path):
    doc = _doc(SOCIAL)
    _custom(doc, "specialCategoryCondition")["value"] = "Art 9(2)(h) health or social care"
    rules = [f for f in lint_file(_write(tmp_path, doc)) if f.rule == "special-category-condition"]
    assert [f.path for f in rules] == ["customProperties/specialCategoryCondition"]
    assert "Schedule 1" in rules[0].fix

    doc["customProperties"] = [
        c for c in doc["customProperties"] if c["property"] != "specialCategoryCondition"
    ]
    rules = [f for f in lint_file(_write(tmp_path, doc)) if f.rule == "special-category-condition"]
    assert len(rules) == 1 and "special-category column(s)" in rules[0].message


def test_a_contract_without_special_category_columns_needs_no_condition(tmp_path):
    doc = _doc()
    for obj in doc["schema"]:
        for prop in obj["properties"]:
            if prop["classification"] == "special-category":
                prop["classification"] = "personal"
    doc["customProperties"] = [
        c
        for c in doc["customProperties"]
        if c["property"] not in ("specialCategoryCondition", "confidentialityBasis")
    ]
    assert lint_file(_write(tmp_path, doc)) == []


def test_cli_exits_non_zero_on_findings_and_prints_one_line_each(tmp_path, capsys):
    doc = copy.deepcopy(_doc())
    _no_owner(doc)
    _dob_not_critical(doc)
    bad = _write(tmp_path, doc, "bad.yaml")
    assert main(["contracts", "lint", str(bad), str(GP)]) == 1
    out = capsys.readouterr().out.splitlines()
    findings = [line for line in out if line.startswith(str(bad))]
    assert len(findings) == 2 and all("Fix:" in line for line in findings)
    assert not any(line.startswith(str(GP)) for line in out)
    assert main(["contracts", "lint", "--json", str(bad)]) == 1
    assert '"rule": "owner"' in capsys.readouterr().out


def test_cli_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["contracts", "lint", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.yaml" in err and "\n" not in err


def test_a_folder_with_two_contracts_of_one_id_is_a_finding(tmp_path):
    _write(tmp_path, _doc(), "health.yaml")
    _write(tmp_path, _doc(), "health copy.yaml")
    (finding,) = [f for f in lint_paths([tmp_path]) if f.path == "id"]
    assert finding.contract == str(tmp_path / "health.yaml")
    assert (
        finding.message
        == f"id 'health_gp_registrations' is also the id of {tmp_path / 'health copy.yaml'}"
    )


def test_a_misspelt_key_is_one_finding_with_the_key_meant(tmp_path):
    doc = _doc()
    column = _column(doc, "Patient ID")
    column["primarykey"] = column.pop("primaryKey")
    findings = [f for f in lint_file(_write(tmp_path, doc)) if f.rule == "schema"]
    assert len(findings) == 1
    assert "'primarykey' was unexpected) (did you mean 'primaryKey'?)" in findings[0].message


def test_a_contract_not_in_utf8_is_one_finding_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(GP.read_text(encoding="utf-8").replace("Title", "Titr\u00e9").encode("latin-1"))
    [finding] = lint_file(bad)
    assert (finding.path, finding.message) == ("(file)", "not UTF-8 text")
    assert main(["contracts", "lint", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{bad}: (file): [schema]")
    folder = tmp_path / "folder"
    folder.mkdir()
    bad.rename(folder / "latin1.yaml")
    assert [f.message for f in lint_paths([folder])] == ["not UTF-8 text"]


def test_a_person_field_with_no_classification_is_not_said_to_be_classified_none(tmp_path):
    doc = _doc()
    del _column(doc, "Postcode")["classification"]
    [finding] = [f for f in lint_file(_write(tmp_path, doc)) if f.rule == "personal-classified"]
    assert finding.message == "column maps to the person field 'postcode' but has no classification"
