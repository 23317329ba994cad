"""`care-etl contracts register`: the register of processing lists every personal field."""

from __future__ import annotations

import html
import re

import yaml

from care_etl.cli import main
from care_etl_tests.conftest import CONTRACTS_DIR


def _personal_columns() -> dict[str, list[tuple[str, str, str]]]:
    """Per source id: (table, column, classification) of every personal column, from the YAML."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        found[doc["id"]] = [
            (obj["name"], prop["name"], prop["classification"])
            for obj in doc["schema"]
            for prop in obj["properties"]
            if prop.get("classification") in ("personal", "special-category")
        ]
    return found


def _sections(text: str, marker: str) -> dict[str, str]:
    """Source id -> the part of the document about it (`marker` captures the id)."""
    parts = re.split(marker, text)  # [before, id1, body1, id2, body2, ...]
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_register_lists_every_personal_column_of_every_source(tmp_path, capsys):
    assert main(["contracts", "register", "--out", str(tmp_path)]) == 0
    assert "4 sources" in capsys.readouterr().out
    md = (tmp_path / "register.md").read_text(encoding="utf-8")
    page = (tmp_path / "register.html").read_text(encoding="utf-8")
    md_sections = _sections(md, r"\n## .*?\(`([a-z_]+)`\)")
    html_sections = _sections(page, r"<section id='([a-z_]+)'>")
    expected = _personal_columns()
    assert set(md_sections) == set(html_sections) == set(expected)
    total = 0
    for source, columns in expected.items():
        assert columns, f"{source} has personal columns"
        md_rows = md_sections[source].splitlines()
        for table, column, level in columns:
            row = f"| {table} | {column} | {level} |"
            assert any(line.startswith(row) for line in md_rows), (source, column)
            cells = f"<td>{html.escape(table, quote=True)}</td><td>{html.escape(column, quote=True)}</td><td>{level}</td>"
            assert cells in html_sections[source], (source, column)
            total += 1
    assert total >= 40


def test_register_carries_what_governance_signs(tmp_path):
    main(["contracts", "register", "--out", str(tmp_path)])
    md = (tmp_path / "register.md").read_text(encoding="utf-8")
    social = md.split("(`social_care_case_management`)")[1].split("\n## ")[0]
    assert "**Lawful basis (UK GDPR Art 6)**: Art 6(1)(e) public task" in social
    assert "Schedule 1 Part 2 paragraph 18" in social
    assert "**Retention**: 75 years" in social
    assert "**Owner**: Social care systems manager (sc.systems@council.example)" in social
    assert "**Information governance approver**: Information governance officer" in social
    assert "| care_etl_analyst | read | Sees pseudonymised views only." in social
    assert "| persons | ethnicity | special-category |" in social


def test_register_is_the_same_bytes_for_the_same_contracts(tmp_path):
    main(["contracts", "register", "--out", str(tmp_path / "a")])
    main(["contracts", "register", "--out", str(tmp_path / "b"), str(CONTRACTS_DIR)])
    for name in ("register.md", "register.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_register_names_the_data_sharing_agreement_as_a_reader_would(tmp_path):
    main(["contracts", "register", "--out", str(tmp_path)])
    md = (tmp_path / "register.md").read_text(encoding="utf-8")
    page = (tmp_path / "register.html").read_text(encoding="utf-8")
    gp = md.split("(`health_gp_registrations`)")[1].split("\n## ")[0]
    agreement = "Health and social care information sharing agreement (ISA-2024-07)"
    assert f"- **Data sharing agreement**: {agreement}" in gp
    assert f"<dt>Data sharing agreement</dt><dd>{agreement}</dd>" in page
    assert "dataSharingAgreement" not in md + page


def test_register_labels_a_custom_property_it_does_not_know_by_splitting_its_key(tmp_path):
    doc = yaml.safe_load((CONTRACTS_DIR / "health_gp_registrations.yaml").read_text())
    doc["customProperties"].append({"property": "dpiaReference", "value": "DPIA-2024-11"})
    contract = tmp_path / "gp.yaml"
    contract.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    main(["contracts", "register", "--out", str(tmp_path / "out"), str(contract)])
    md = (tmp_path / "out" / "register.md").read_text(encoding="utf-8")
    assert "- **Dpia reference**: DPIA-2024-11" in md


def test_register_out_dash_prints_the_markdown_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["contracts", "register", "--out", "-"]) == 0
    printed = capsys.readouterr().out
    main(["contracts", "register", "--out", str(tmp_path / "files")])
    assert printed == (tmp_path / "files" / "register.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files"]
