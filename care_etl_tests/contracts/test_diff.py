"""`care-etl contracts diff`: one test per class of change, and the exit code CI relies on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from care_etl.cli import main
from care_etl.contracts.diff import diff_documents, diff_paths
from care_etl_tests.conftest import CONTRACTS_DIR

SOCIAL = CONTRACTS_DIR / "social_care_case_management.yaml"
GP = CONTRACTS_DIR / "health_gp_registrations.yaml"


def _doc(path: Path = SOCIAL) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _props(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["schema"][0]["properties"]


def _column(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in _props(doc) if p["name"] == name)


def _custom(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["customProperties"] if c["property"] == name)


def _retention(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["slaProperties"] if s["property"] == "retention")


def _remove_column(doc):
    doc["schema"][0]["properties"] = [p for p in _props(doc) if p["name"] != "other_names"]


def _retype_column(doc):
    _column(doc, "person_id")["logicalType"] = "string"


def _change_date_format(doc):
    _column(doc, "date_of_birth")["logicalTypeOptions"]["format"] = "%d/%m/%Y"


def _raise_classification(doc):
    _column(doc, "created_at")["classification"] = "personal"


def _lower_classification(doc):
    _column(doc, "ethnicity")["classification"] = "personal"


def _add_special_column(doc):
    _props(doc).append(
        {"name": "religion", "logicalType": "string", "classification": "special-category"}
    )


def _add_personal_column(doc):
    _props(doc).append({"name": "email", "logicalType": "string", "classification": "personal"})


def _add_unclassified_column(doc):
    _props(doc).append({"name": "Email", "id": "email", "logicalType": "string"})


def _add_misclassified_column(doc):
    _props(doc).append({"name": "Email", "logicalType": "string", "classification": "Personal"})


def _add_object_with_unclassified_column(doc):
    doc["schema"].append(
        {
            "name": "gp_contacts",
            "properties": [
                {"name": "Practice Code", "classification": "internal"},
                {"name": "Contact", "logicalType": "string"},
            ],
        }
    )


def _unclassify_column(doc):
    del _column(doc, "Surname")["classification"]


def _blank_classification(doc):
    _column(doc, "Surname")["classification"] = None


def _remove_lawful_basis(doc):
    doc["customProperties"] = [c for c in doc["customProperties"] if c["property"] != "lawfulBasis"]


def _change_sharing_agreement(doc):
    _custom(doc, "dataSharingAgreement")["value"] = (
        "Health and social care information sharing agreement (ISA-2025-02)"
    )


def _drop_sharing_agreement(doc):
    doc["customProperties"] = [
        c for c in doc["customProperties"] if c["property"] != "dataSharingAgreement"
    ]


def _widen_path(doc):
    doc["servers"][0]["path"] = "health/*.csv"


def _narrow_path(doc):
    doc["servers"][0]["path"] = "health/gp_registrations_A*.csv"


def _path_into_subfolders(doc):
    doc["servers"][0]["path"] = "health/**/gp_registrations_*.csv"


def _add_server(doc):
    doc["servers"].append(
        {"server": "gp_extract_sftp", "type": "sftp", "location": "sftp://gp.example/out"}
    )


def _approver(doc):
    return next(m for m in doc["team"]["members"] if m["username"] == "ig@council.example")


def _demote_approver(doc):
    _approver(doc)["role"] = "reviewer"


def _remove_approver(doc):
    doc["team"]["members"].remove(_approver(doc))


def _replace_approver_email(doc):
    _approver(doc)["username"] = "someone.else@council.example"


def _add_team_member(doc):
    doc["team"]["members"].append(
        {"username": "analyst@council.example", "name": "Analyst", "role": "reader"}
    )


def _add_internal_column(doc):
    _props(doc).append({"name": "batch", "logicalType": "string", "classification": "internal"})


def _change_purpose(doc):
    doc["description"]["purpose"] += " And to plan services."


def _change_usage(doc):
    doc["description"]["usage"] += " Also exported weekly."


def _change_lawful_basis(doc):
    _custom(doc, "lawfulBasis")["value"] = "Art 6(1)(c) legal obligation"


def _change_condition(doc):
    _custom(doc, "specialCategoryCondition")["value"] = (
        "Art 9(2)(g) substantial public interest, DPA 2018 Schedule 1 Part 2 paragraph 6"
    )


def _longer_retention(doc):
    _retention(doc)["value"] = 100


def _longer_retention_by_unit(doc):
    _retention(doc).update(value=900, unit="months")  # 75 y = 900 months: longer? no, equal


def _shorter_retention(doc):
    _retention(doc)["value"] = 10


def _widen_roles(doc):
    doc["roles"].append({"role": "care_etl_reporting", "access": "read"})


def _make_required(doc):
    _column(doc, "surname")["required"] = True


def _remap(doc):
    _column(doc, "other_names")["customProperties"][0]["value"] = "middle_names"


def _change_server(doc):
    doc["servers"][0]["path"] = "social_care/other.db"


def _move_database(doc):
    doc["servers"][1]["host"] = "casemgmt-copy.council.example"


def _describe_server(doc):
    doc["servers"][0]["description"] = "A SQLite copy for the demo."


def _reformat_server(doc):
    doc["servers"][0]["format"] = "csv"


def _describe(doc):
    _column(doc, "surname")["description"] = "Family name as recorded."


def _add_quality_rule(doc):
    _column(doc, "surname")["quality"] = [
        {"metric": "nullValues", "mustBeLessThan": 5, "unit": "percent"}
    ]


def _drop_history(doc):
    addresses = next(o for o in doc["schema"] if o["name"] == "addresses")
    custom = addresses["customProperties"]
    custom[:] = [c for c in custom if c["property"] != "historyAs"]


# (class, change, breaking, review)
CASES: list[tuple[str, Callable[[dict], None], bool, bool]] = [
    ("column-removed", _remove_column, True, False),
    ("column-retyped", _retype_column, True, False),
    ("column-retyped", _change_date_format, True, False),
    ("classification-raised", _raise_classification, False, True),
    ("classification-lowered", _lower_classification, False, True),
    ("column-added-special-category", _add_special_column, False, True),
    ("column-added-personal", _add_personal_column, False, True),
    ("column-added", _add_internal_column, False, False),
    ("purpose-changed", _change_purpose, False, True),
    ("usage-changed", _change_usage, False, True),
    ("lawful-basis-changed", _change_lawful_basis, False, True),
    ("special-category-condition-changed", _change_condition, False, True),
    ("retention-longer", _longer_retention, False, True),
    ("retention-shorter", _shorter_retention, False, False),
    ("roles-changed", _widen_roles, False, True),
    ("history-changed", _drop_history, False, True),
    ("column-required", _make_required, True, False),
    ("mapping", _remap, True, False),
    ("server-location-changed", _change_server, True, True),
    ("server-location-changed", _move_database, True, True),
    ("server", _reformat_server, True, False),
    ("other", _describe_server, False, False),
    ("other", _describe, False, False),
    ("other", _add_quality_rule, False, False),
]


@pytest.mark.parametrize(
    ("kind", "change", "breaking", "review"), CASES, ids=[c[1].__name__ for c in CASES]
)
def test_each_class_of_change(kind, change, breaking, review):
    old, new = _doc(), _doc()
    change(new)
    changes = diff_documents(old, new)
    assert [c.kind for c in changes] == [kind]
    assert (changes[0].breaking, changes[0].review) == (breaking, review)
    assert changes[0].contract == "social_care_case_management"


# Gaps a tester found editing the GP contract by hand: (class, change, breaking, review, message)
GP_CASES: list[tuple[str, Callable[[dict], None], bool, bool, str]] = [
    (
        "column-added-unclassified",
        _add_unclassified_column,
        False,
        True,
        "new column with no valid classification ((none)): it may be personal data until "
        "classified",
    ),
    (
        "column-added-unclassified",
        _add_misclassified_column,
        False,
        True,
        "new column with no valid classification (Personal): it may be personal data until "
        "classified",
    ),
    (
        "object-added",
        _add_object_with_unclassified_column,
        False,
        True,
        "new table or sheet with 0 personal column(s) and 1 unclassified",
    ),
    (
        "classification-removed",
        _unclassify_column,
        False,
        True,
        "classification personal -> (none)",
    ),
    (
        "classification-removed",
        _blank_classification,
        False,
        True,
        "classification personal -> (none)",
    ),
    (
        "lawful-basis-changed",
        _remove_lawful_basis,
        False,
        True,
        "lawful basis Art 6(1)(e) public task -> (none)",
    ),
    (
        "sharing-agreement-changed",
        _change_sharing_agreement,
        False,
        True,
        "data sharing agreement Health and social care information sharing agreement "
        "(ISA-2024-07) -> Health and social care information sharing agreement (ISA-2025-02): "
        "who the data is shared with, on what terms",
    ),
    (
        "sharing-agreement-changed",
        _drop_sharing_agreement,
        False,
        True,
        "data sharing agreement Health and social care information sharing agreement "
        "(ISA-2024-07) -> (none): who the data is shared with, on what terms",
    ),
    (
        "server-location-changed",
        _widen_path,
        True,
        True,
        "health/gp_registrations_*.csv -> health/*.csv: may read files or tables not read "
        "before (new data)",
    ),
    (
        "server-location-changed",
        _path_into_subfolders,
        True,
        True,
        "health/gp_registrations_*.csv -> health/**/gp_registrations_*.csv: may read files or "
        "tables not read before (new data)",
    ),
    (
        "server-location-changed",
        _add_server,
        True,
        True,
        "(none) -> (server): may read files or tables not read before (new data)",
    ),
    (
        "server",
        _narrow_path,
        True,
        False,
        "health/gp_registrations_*.csv -> health/gp_registrations_A*.csv",
    ),
    (
        "approver-changed",
        _demote_approver,
        False,
        True,
        "information governance approver changed: information governance approver -> reviewer",
    ),
    (
        "approver-changed",
        _remove_approver,
        False,
        True,
        "information governance approver changed: removed",
    ),
    (
        "approver-changed",
        _replace_approver_email,
        False,
        True,
        "information governance approver changed: ig@council.example -> "
        "someone.else@council.example",
    ),
    ("other", _add_team_member, False, False, "added"),
]


@pytest.mark.parametrize(
    ("kind", "change", "breaking", "review", "message"),
    GP_CASES,
    ids=[c[1].__name__ for c in GP_CASES],
)
def test_each_gap_found_on_the_gp_contract(kind, change, breaking, review, message):
    old, new = _doc(GP), _doc(GP)
    change(new)
    changes = diff_documents(old, new)
    assert [(c.kind, c.breaking, c.review, c.message) for c in changes] == [
        (kind, breaking, review, message)
    ]


def test_classifying_an_unclassified_column_is_its_own_kind_needing_review():
    old, new = _doc(GP), _doc(GP)
    _unclassify_column(old)
    [change] = diff_documents(old, new)
    assert (change.kind, change.review) == ("classification-added", True)
    assert change.message == "classification (none) -> personal"


@pytest.mark.parametrize(
    ("block", "kinds"),
    [
        (
            "customProperties",
            {
                "lawful-basis-changed",
                "special-category-condition-changed",
                "confidentiality-basis-changed",
                "controller-changed",
                "sharing-agreement-changed",
                "other",  # currentRegister: how the index reads the source, not IG's to sign
            },
        ),
        ("description", {"purpose-changed", "usage-changed", "other"}),
        ("slaProperties", {"retention-longer", "other"}),
    ],
)
def test_a_governed_block_removed_whole_is_each_thing_in_it_removed(block, kinds):
    old, new = _doc(GP), _doc(GP)
    del new[block]
    changes = diff_documents(old, new)
    assert {c.kind for c in changes} == kinds
    assert any(c.review for c in changes)
    assert {c.kind for c in diff_documents(new, old)} == kinds  # and added whole


def test_retention_in_other_units_is_compared_as_a_period():
    old, new = _doc(), _doc()
    _longer_retention_by_unit(new)  # 75 years -> 900 months (27,000 days < 27,375)
    [change] = diff_documents(old, new)
    assert change.kind == "retention-shorter" and not change.review


def test_reordering_columns_is_no_change():
    old, new = _doc(), _doc()
    _props(new).reverse()
    assert diff_documents(old, new) == []


def test_folders_pair_contracts_by_id_and_see_sources_come_and_go(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / "social.yaml").write_text(SOCIAL.read_text())
    (new / "renamed_file.yaml").write_text(SOCIAL.read_text())
    gp = CONTRACTS_DIR / "health_gp_registrations.yaml"
    (new / "gp.yaml").write_text(gp.read_text())
    kinds = {(c.contract, c.kind, c.review) for c in diff_paths(old, new)}
    assert kinds == {("health_gp_registrations", "source-added", True)}
    kinds = {(c.contract, c.kind, c.breaking) for c in diff_paths(new, old)}
    assert kinds == {("health_gp_registrations", "source-removed", True)}


def _files(
    tmp_path: Path, change: Callable[[dict], None], source: Path = SOCIAL
) -> tuple[str, str]:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(source.read_text())
    doc = _doc(source)
    change(doc)
    new.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(old), str(new)


def test_exit_code_says_whether_review_is_needed(tmp_path, capsys):
    assert main(["contracts", "diff", *_files(tmp_path, _retype_column)]) == 0
    out = capsys.readouterr().out
    assert "column-retyped" in out and "[BREAKING]" in out
    assert main(["contracts", "diff", *_files(tmp_path, _add_special_column)]) == 1
    assert "[IG REVIEW]" in capsys.readouterr().out
    assert main(["contracts", "diff", "--json", *_files(tmp_path, _change_lawful_basis)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["review_needed"] is True
    assert report["changes"][0]["path"] == "customProperties/lawfulBasis/value"
    assert main(["contracts", "diff", str(SOCIAL), str(SOCIAL)]) == 0


@pytest.mark.parametrize(
    ("kind", "change", "breaking", "review", "message"),
    GP_CASES,
    ids=[c[1].__name__ for c in GP_CASES],
)
def test_the_gp_gaps_as_the_tester_ran_them(
    tmp_path, capsys, kind, change, breaking, review, message
):
    assert main(["contracts", "diff", *_files(tmp_path, change, GP)]) == int(review)
    assert f": {kind}: {message}" in capsys.readouterr().out


def test_unreadable_contract_exits_2_with_one_line(tmp_path, capsys):
    assert main(["contracts", "diff", str(SOCIAL), str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.yaml" in err and "\n" not in err
