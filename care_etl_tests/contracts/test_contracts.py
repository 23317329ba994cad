from pathlib import Path

import pytest
import yaml

from care_etl.canonical import CANONICAL_FIELDS, EXTENDED_FIELDS
from care_etl.contracts import load_contract, load_contracts, schema_errors
from care_etl.errors import ContractError
from care_etl_tests.conftest import CONTRACTS_DIR

SOURCE_IDS = {
    "health_gp_registrations",
    "housing_tenancies",
    "social_care_case_management",
    "paper_referrals",
}


def test_each_source_has_a_contract_valid_against_the_odcs_schema():
    contracts = load_contracts(CONTRACTS_DIR)
    assert {c.id for c in contracts} == SOURCE_IDS
    for contract in contracts:
        assert schema_errors(contract.document) == [], contract.file


def test_governance_fields_are_present_in_every_contract():
    for contract in load_contracts(CONTRACTS_DIR):
        doc = contract.document
        assert {"purpose", "usage", "limitations"} <= set(doc["description"])
        assert contract.custom["lawfulBasis"].startswith("Art 6(1)")
        assert any(s["property"] == "retention" for s in doc["slaProperties"])
        roles = {m["role"] for m in doc["team"]["members"]}
        assert {"owner", "information governance approver"} <= roles
        for obj in doc["schema"]:
            for prop in obj["properties"]:
                assert prop["classification"] in {
                    "public",
                    "internal",
                    "personal",
                    "special-category",
                }, f"{contract.id}: {prop['name']}"


def test_contracts_map_columns_to_canonical_fields():
    health = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")
    assert health.record_id_columns == ["Practice Code", "Patient ID"]
    canon = {c.name: c.canonical for c in health.person_object.columns}
    assert canon["Forename"] == "given_name" and canon["NHS Number"] == "nhs_number"
    assert health.date_formats["date_of_birth"] == ["%d/%m/%Y"]
    housing = load_contract(CONTRACTS_DIR / "housing_tenancies.yaml")
    assert [o.name for o in housing.lookups] == ["Tenancies"]
    mapped = {c.canonical for o in housing.objects for c in o.columns if c.canonical}
    assert {"full_name", "uprn", "postcode", "address"} <= mapped
    assert mapped <= set(CANONICAL_FIELDS) | set(EXTENDED_FIELDS)


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _health() -> dict:
    return yaml.safe_load((CONTRACTS_DIR / "health_gp_registrations.yaml").read_text())


def test_an_invalid_contract_gives_a_one_line_error_naming_the_file(tmp_path):
    doc = _health()
    doc["apiVersion"] = "v9"
    with pytest.raises(ContractError) as err:
        load_contract(_write(tmp_path, doc))
    message = str(err.value)
    assert "broken.yaml" in message and "apiVersion" in message and "\n" not in message


def test_an_unknown_canonical_field_is_named(tmp_path):
    doc = _health()
    doc["schema"][0]["properties"][1]["customProperties"][0]["value"] = "nhs_no"
    with pytest.raises(ContractError, match="unknown canonical field 'nhs_no'"):
        load_contract(_write(tmp_path, doc))


def test_a_contract_without_a_record_id_is_refused(tmp_path):
    doc = _health()
    for prop in doc["schema"][0]["properties"]:
        prop.pop("primaryKey", None)
        prop.pop("primaryKeyPosition", None)
    with pytest.raises(ContractError, match="primaryKey"):
        load_contract(_write(tmp_path, doc))


def test_yaml_that_does_not_parse_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nschema: [\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_contract(path)


@pytest.mark.parametrize(
    ("history", "drop_filter"), [("previous_names", False), ("previous_addresses", True)]
)
def test_a_history_other_than_former_addresses_or_without_a_row_filter_is_refused(
    tmp_path, history, drop_filter
):
    path = CONTRACTS_DIR / "social_care_case_management.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    addresses = next(o for o in doc["schema"] if o["name"] == "addresses")
    custom = addresses["customProperties"]
    next(p for p in custom if p["property"] == "historyAs")["value"] = history
    if drop_filter:
        custom[:] = [p for p in custom if p["property"] != "rowFilter"]
    with pytest.raises(ContractError, match="schema/addresses: historyAs must be"):
        load_contract(_write(tmp_path, doc))


def test_a_current_register_flag_that_is_not_true_or_false_is_one_line(tmp_path):
    # "yes" was read as not a register, silently: every GP member's evidence then went stale.
    doc = _health()
    for prop in doc["customProperties"]:
        if prop["property"] == "currentRegister":
            prop["value"] = "yes"
    with pytest.raises(ContractError) as err:
        load_contract(_write(tmp_path, doc))
    assert str(err.value) == (
        f"{tmp_path / 'broken.yaml'}: customProperties/currentRegister: 'yes' is not true or "
        "false (true: the extract lists the people the system holds now)"
    )
    assert (
        load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml").custom["currentRegister"]
        is True
    )
