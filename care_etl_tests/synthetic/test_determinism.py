"""Same (people, seed, scans), same bytes: tests and benchmarks can rely on the data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from care_etl.synthetic.generate import generate


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = _digests_after(tmp_path / "a", seed=3)
    second = _digests_after(tmp_path / "b", seed=3)
    assert first == second
    kinds = {Path(name).suffix for name in first}
    assert {".csv", ".xlsx", ".db", ".txt"} <= kinds


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    first = _digests_after(tmp_path / "a", seed=3)
    other = _digests_after(tmp_path / "b", seed=4)
    for name in ("ground_truth.csv", "social_care/case_management.db"):
        assert first[name] != other[name]
    for suffix in (".csv", ".xlsx"):
        mine = {n: d for n, d in first.items() if n.endswith(suffix)}
        assert not set(mine.values()) & set(other.values()), suffix


def test_bytes_do_not_depend_on_python_hash_seed(tmp_path: Path) -> None:
    here = _digests_after(tmp_path / "here", seed=3)
    code = (
        "import sys; from pathlib import Path; from care_etl.synthetic.generate import generate;"
        "generate(Path(sys.argv[1]), 300, 3, scans=0)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env)
    assert _digests(tmp_path / "there") == here


def test_regenerating_replaces_the_previous_output(tmp_path: Path) -> None:
    generate(tmp_path, 300, 3, scans=0)
    stale = tmp_path / "paper" / "REF-999999.txt"
    stale.write_text("REFERRAL FORM\n", encoding="utf-8")
    summary = generate(tmp_path, 150, 4, scans=0)
    assert not stale.exists()
    papers = len(list((tmp_path / "paper").iterdir()))
    assert papers == summary.records["paper_referrals"]


def _digests_after(folder: Path, seed: int) -> dict[str, str]:
    generate(folder, 300, seed, scans=0)
    return _digests(folder)
