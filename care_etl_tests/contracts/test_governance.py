"""What information governance relies on beyond lint's findings: a source is not read without
its purpose, lawful basis, conditions and a retention that can be applied; the register names
the common law duty of confidentiality and says what each field is used for (data
minimisation); diff asks for review when which rows are read changes; and a contract that
is not UTF-8 is one line from every command, never a traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from care_etl.cli import main
from care_etl.contracts import load_contract, load_contracts
from care_etl.contracts.diff import diff_documents
from care_etl.contracts.register import load_entries, markdown
from care_etl.errors import ContractError
from care_etl_tests.conftest import CONTRACTS_DIR

UNUSED = "nothing (read, not used)"
NOT_READ = "not read"
GP = CONTRACTS_DIR / "health_gp_registrations.yaml"
SOCIAL = CONTRACTS_DIR / "social_care_case_management.yaml"
PAPER = CONTRACTS_DIR / "paper_referrals.yaml"


def _doc(path: Path = GP) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _without(doc: dict[str, Any], name: str) -> None:
    doc["customProperties"] = [c for c in doc["customProperties"] if c["property"] != name]


def _retention(doc: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in doc["slaProperties"] if s["property"] == "retention")


def _no_purpose(doc):
    del doc["description"]["purpose"]


def _no_lawful_basis(doc):
    _without(doc, "lawfulBasis")


def _vague_lawful_basis(doc):
    next(c for c in doc["customProperties"] if c["property"] == "lawfulBasis")["value"] = "public"


def _no_article_9_condition(doc):
    _without(doc, "specialCategoryCondition")


def _no_confidentiality_basis(doc):
    _without(doc, "confidentialityBasis")


def _unclassified_column(doc):
    del doc["schema"][0]["properties"][2]["classification"]


def _retention_unit_unknown(doc):
    _retention(doc)["unit"] = "decades"


def _retention_negative(doc):
    _retention(doc)["value"] = -8


REFUSED: list[tuple[Callable[[dict], None], str]] = [
    (_no_purpose, "description/purpose"),
    (_no_lawful_basis, "customProperties/lawfulBasis"),
    (_vague_lawful_basis, "customProperties/lawfulBasis"),
    (_no_article_9_condition, "customProperties/specialCategoryCondition"),
    (_unclassified_column, "schema/gp_registration/properties/Title"),
    (_retention_unit_unknown, "slaProperties/0/unit"),
    (_retention_negative, "slaProperties/0/value"),
]


@pytest.mark.parametrize(("breaker", "where"), REFUSED, ids=[b.__name__ for b, _ in REFUSED])
def test_a_source_is_not_read_without_what_governance_signs(tmp_path, breaker, where):
    doc = _doc()
    breaker(doc)
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: ") and "\n" not in message
    assert "not read without it" in message and "care-etl contracts lint" in message


def test_a_missing_confidentiality_basis_is_lints_finding_not_a_refusal(tmp_path):
    # interfaces.md lists what every contract holds, and the confidentiality basis is not
    # among it: a new source's contract written to that promise is read, and lint names it.
    from care_etl.contracts.lint import lint_file

    doc = _doc()
    _no_confidentiality_basis(doc)
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert load_contract(path).id == "health_gp_registrations"
    assert [f.path for f in lint_file(path)] == ["customProperties/confidentialityBasis"]


def test_run_refuses_a_contract_without_a_lawful_basis_in_one_line(tmp_path, capsys):
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    doc = _doc()
    _no_lawful_basis(doc)
    (contracts / GP.name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    sources = tmp_path / "sources"
    sources.mkdir()
    code = main(
        [
            "run",
            "--sources",
            str(sources),
            "--contracts",
            str(contracts),
            "--database",
            f"sqlite:///{tmp_path / 'index.db'}",
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert f"{contracts / GP.name}: customProperties/lawfulBasis: no lawful basis" in err
    assert not (tmp_path / "index.db").exists()


def test_the_project_contracts_load_with_every_governance_check():
    assert len(load_contracts(CONTRACTS_DIR)) == 4


def test_a_command_that_deletes_may_load_a_contract_missing_its_lawful_basis(tmp_path):
    doc = _doc()
    _no_lawful_basis(doc)
    (tmp_path / GP.name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(ContractError, match="lawfulBasis"):
        load_contracts(tmp_path)
    [contract] = load_contracts(tmp_path, check_governance=False)
    assert contract.id == "health_gp_registrations"


def test_a_contract_without_retention_still_loads_and_lint_names_it(tmp_path):
    """Storage limitation is lint's finding; a run is not stopped for it (a withdrawn or new
    source's retention is `unknown` to care-etl retention, and nothing is deleted)."""
    doc = _doc()
    doc["slaProperties"] = [s for s in doc["slaProperties"] if s["property"] != "retention"]
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert load_contract(path).id == "health_gp_registrations"


def _section(md: str, source: str) -> list[str]:
    return md.split(f"(`{source}`)")[1].split("\n## ")[0].splitlines()


def test_the_register_says_what_each_field_is_used_for():
    md = markdown(load_entries([CONTRACTS_DIR]))
    paper, social, gp = (_section(md, s) for s in (PAPER.stem, SOCIAL.stem, GP.stem))
    assert any(
        line.startswith("| referral_form | Referrer |") and line.endswith(f"| {UNUSED} |")
        for line in paper
    )
    assert any(
        line.startswith("| involvements | service | special-category |")
        and "involvement: the service" in line
        for line in social
    )
    # the involvement's own id is declared but never read (data minimisation, shown)
    assert any(
        line.startswith("| involvements | involvement_id |") and line.endswith(f"| {NOT_READ} |")
        for line in social
    )
    assert any(
        line.startswith("| persons | is_deleted |") and "withdrawn flag" in line for line in social
    )
    assert any(
        line.startswith("| gp_registration | Forename |") and "person field given_name" in line
        for line in gp
    )
    summary = next(line for line in md.splitlines() if line.startswith("| Digitised paper"))
    assert summary.endswith("| referral_form.Referrer, referral_form.Other household members |")


def test_the_register_names_the_common_law_duty_of_confidentiality():
    md = markdown(load_entries([CONTRACTS_DIR]))
    for source in (GP.stem, SOCIAL.stem, PAPER.stem):
        assert any(
            line.startswith("- **Common law duty of confidentiality**: ")
            for line in _section(md, source)
        ), source


def _set_custom(obj: dict[str, Any], name: str, value: Any) -> None:
    items = obj.setdefault("customProperties", [])
    items[:] = [c for c in items if c["property"] != name]
    if value is not None:
        items.append({"property": name, "value": value})


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in doc["schema"] if o["name"] == name)


ROWS: list[tuple[str, Callable[[dict], None], str]] = [
    ("the involvements table becomes a lookup", lambda d: _set_custom(
        _table(d, "involvements"), "role", "lookup"), "rows-read-changed"),
    ("withdrawn rows are no longer withdrawn", lambda d: _set_custom(
        _table(d, "persons"), "withdrawnWhen", None), "rows-read-changed"),
    ("the current-address filter is turned round", lambda d: _set_custom(
        _table(d, "addresses"), "rowFilter", "end_date is not null"), "rows-read-changed"),
    ("the history is read as another field", lambda d: _set_custom(
        _table(d, "addresses"), "historyAs", "previous_names"), "history-changed"),
    ("the duty of confidentiality is set aside otherwise", lambda d: _set_custom(
        d, "confidentialityBasis", "Explicit consent"), "confidentiality-basis-changed"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "kind"), ROWS, ids=[r[0] for r in ROWS])
def test_diff_asks_for_review_when_which_rows_are_read_changes(what, change, kind):
    old, new = _doc(SOCIAL), _doc(SOCIAL)
    change(new)
    changes = diff_documents(old, new)
    assert [(c.kind, c.review) for c in changes] == [(kind, True)], what


def test_every_command_gives_one_line_for_a_contract_not_in_utf8(tmp_path, capsys):
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    bad = contracts / GP.name
    bad.write_bytes(bad.read_text(encoding="utf-8").replace("Title", "Titr\u00e9").encode("cp1252"))
    sources = tmp_path / "sources"
    sources.mkdir()
    for argv in (
        ["contracts", "diff", str(GP), str(bad)],
        ["contracts", "register", "--out", str(tmp_path / "out"), str(bad)],
        ["run", "--sources", str(sources), "--contracts", str(contracts),
         "--database", f"sqlite:///{tmp_path / 'index.db'}", "--reports", str(tmp_path / "r")],
    ):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err == f"care-etl: error: {bad}: not UTF-8 text (save the contract as UTF-8)"


def test_the_refusal_is_the_line_the_information_governance_guide_shows(
    tmp_path, capsys, monkeypatch
):
    guide = (CONTRACTS_DIR.parent / "docs" / "information-governance.md").read_text()
    [shown] = [line for line in guide.splitlines() if "not read without it" in line]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CONTRACTS_DIR, tmp_path / "data_contracts")
    doc = _doc()
    _no_lawful_basis(doc)
    (tmp_path / "data_contracts" / GP.name).write_text(
        yaml.safe_dump(doc, sort_keys=False), encoding="utf-8"
    )
    (tmp_path / "sources").mkdir()
    argv = ["run", "--sources", "sources", "--contracts", "data_contracts"]
    assert main([*argv, "--database", f"sqlite:///{tmp_path / 'i.db'}"]) == 2
    assert capsys.readouterr().err.strip() == shown


def test_the_register_says_not_set_where_a_contract_is_silent(tmp_path):
    doc = _doc()
    del doc["description"]["purpose"], doc["roles"]
    for name in ("lawfulBasis", "specialCategoryCondition", "confidentialityBasis"):
        _without(doc, name)
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    lines = _section(markdown(load_entries([path])), GP.stem)
    for shown in (
        "- **Purpose**: NOT SET",
        "- **Lawful basis (UK GDPR Art 6)**: NOT SET",
        "- **Special-category condition (Art 9, DPA 2018 Sch 1)**: NOT SET (special-category "
        "fields held)",
        "- **Common law duty of confidentiality**: NOT SET (special-category fields held)",
        "| NOT SET |  | nothing says who may see the data |  |",
    ):
        assert shown in lines, shown


def test_diff_shows_the_article_9_condition_it_asks_ig_to_sign():
    old, new = _doc(SOCIAL), _doc(SOCIAL)
    condition = next(
        c for c in new["customProperties"] if c["property"] == "specialCategoryCondition"
    )
    condition["value"] = "Art 9(2)(a) explicit consent"
    [change] = diff_documents(old, new)
    assert change.kind == "special-category-condition-changed" and change.review
    assert change.message.startswith("Article 9 / Schedule 1 condition Art 9(2)(h) health")
    assert change.message.endswith(" -> Art 9(2)(a) explicit consent")


GIVEN_TWICE: list[tuple[str, Callable[[dict], None]]] = [
    ("customProperties", lambda d: d["customProperties"].append(
        {"property": "lawfulBasis", "value": "Art 6(1)(a) consent"})),
    ("slaProperties", lambda d: d["slaProperties"].append(
        {"property": "retention", "value": 80, "unit": "y"})),
    ("description", lambda d: d.__setitem__("description", "Identify residents.")),
]  # fmt: skip


@pytest.mark.parametrize(("block", "change"), GIVEN_TWICE, ids=[g[0] for g in GIVEN_TWICE])
def test_diff_asks_for_review_of_a_governed_block_it_cannot_compare_item_by_item(block, change):
    """A second lawfulBasis or retention was one 'other' change, exit 0."""
    old, new = _doc(GP), _doc(GP)
    change(new)
    for before, after in ((old, new), (new, old)):
        [found] = diff_documents(before, after)
        assert (found.path, found.kind, found.review) == (
            block,
            "governed-block-unreadable",
            True,
        )


@pytest.mark.parametrize(
    "breaker",
    [
        lambda d: d.__setitem__("description", "Identify residents."),
        lambda d: d.__setitem__("team", "Health data partnership"),
        lambda d: d["schema"][0]["properties"].__setitem__(0, "Patient ID"),
    ],
    ids=["description", "team", "column"],
)
def test_register_gives_one_line_for_a_contract_of_the_wrong_shape(tmp_path, capsys, breaker):
    doc = _doc()
    breaker(doc)
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert main(["contracts", "register", "--out", str(tmp_path / "out"), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"care-etl: error: {path}: not a valid ODCS contract: ")
    assert "\n" not in err and "care-etl contracts lint" in err


def test_the_register_and_diff_name_the_data_controller():
    md = markdown(load_entries([CONTRACTS_DIR]))
    for source in (GP.stem, SOCIAL.stem, PAPER.stem, "housing_tenancies"):
        assert any(
            line.startswith("- **Data controller**: The council") for line in _section(md, source)
        ), source
    old, new = _doc(GP), _doc(GP)
    _set_custom(new, "controller", "A data broker")
    [change] = diff_documents(old, new)
    assert (change.kind, change.review) == ("controller-changed", True)
    assert change.message.endswith(" -> A data broker")
