"""What information governance relies on beyond lint's findings: the register names the
common law duty of confidentiality, and a contract that is not UTF-8 is one line from every
command, never a traceback."""

from __future__ import annotations

import shutil

from care_etl.cli import main
from care_etl.contracts.register import load_entries, markdown
from care_etl_tests.conftest import CONTRACTS_DIR

GP = CONTRACTS_DIR / "health_gp_registrations.yaml"
SOCIAL = CONTRACTS_DIR / "social_care_case_management.yaml"
PAPER = CONTRACTS_DIR / "paper_referrals.yaml"


def _section(md: str, source: str) -> list[str]:
    return md.split(f"(`{source}`)")[1].split("\n## ")[0].splitlines()


def test_the_register_names_the_common_law_duty_of_confidentiality():
    md = markdown(load_entries([CONTRACTS_DIR]))
    for source in (GP.stem, SOCIAL.stem, PAPER.stem):
        assert any(
            line.startswith("- **Common law duty of confidentiality**: ")
            for line in _section(md, source)
        ), source


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
