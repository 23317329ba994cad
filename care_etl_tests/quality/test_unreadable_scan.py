"""One unreadable scan in a small batch of referrals: read, staged and checked for real.

The generator's rendered scans go through Tesseract; the bad files are an empty PNG and a
PDF of random bytes. Each is a read failure: named in the run, quarantined with its reason
and left out of the checks, so the good referrals still go through.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from care_etl.contracts import load_contract
from care_etl.quality.checks import plan_checks
from care_etl.quality.gate import gate_source
from care_etl.quality.staging import StagedSource
from care_etl.sources.read import RawSource, read_source
from care_etl_tests.conftest import CONTRACTS_DIR

pytestmark = [pytest.mark.ocr, pytest.mark.slow, pytest.mark.usefixtures("tesseract")]

PAPER = load_contract(CONTRACTS_DIR / "paper_referrals.yaml")
EMPTY, CORRUPT = "REF-999998.png", "REF-999997.pdf"


def _gate(sources: Path, cache: Path, database: Path) -> tuple[RawSource, StagedSource]:
    """The paper feed read (OCR cached) and gated in a database of its own: no version has
    been accepted before, so a blocked feed would add nothing."""
    raw = read_source(PAPER, sources, cache_dir=cache)
    return raw, gate_source(raw, PAPER, database_url=f"sqlite:///{database}", run_id="test")


@pytest.fixture(scope="module")
def batches(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The generated referrals (real scans among them) gated as they are, then again with an
    empty and a corrupt file added."""
    root = tmp_path_factory.mktemp("unreadable_scan")
    clean, damaged, cache = root / "clean", root / "damaged", root / "ocr_cache"
    shutil.copytree(generated / "paper", clean / "paper")
    shutil.copytree(generated / "paper", damaged / "paper")
    (damaged / "paper" / EMPTY).write_bytes(b"")
    (damaged / "paper" / CORRUPT).write_bytes(random.Random(3).randbytes(3000))
    clean_raw, clean_staged = _gate(clean, cache, root / "clean.db")
    return {
        "referrals": len(clean_raw.records),
        "clean_unreadable": int(clean_raw.records["_read_error"].notna().sum()),
        "clean": clean_staged,
        "damaged": _gate(damaged, cache, root / "damaged.db")[1],
    }


def test_the_batch_is_small_and_holds_real_scans(batches, generated):
    scans = [p for p in (generated / "paper").iterdir() if p.suffix in {".png", ".pdf"}]
    assert scans, "the generated referrals include rendered scans"
    mostly = next(p.mostly for p in plan_checks(PAPER) if p.name == "not_null__name")
    blank_share = 2 / (batches["referrals"] + 2)
    assert blank_share > 1 - mostly, "counted as rows, the bad files would fail not_null__name"
    assert batches["clean"].blocked is None


def test_an_unreadable_file_does_not_block_the_feed(batches):
    staged = batches["damaged"]

    assert staged.blocked is None
    assert staged.accepted_at is not None


def test_the_good_referrals_are_staged_as_without_the_bad_files(batches):
    clean, damaged = batches["clean"], batches["damaged"]

    assert len(damaged.records) > 0
    assert sorted(damaged.records["source_record_id"]) == sorted(clean.records["source_record_id"])


def test_each_bad_file_is_quarantined_with_its_reason(batches):
    quarantine = batches["damaged"].quarantine.set_index("source_record_id")

    assert quarantine.loc["REF-999998", "reason"] == "not a readable image"
    assert quarantine.loc["REF-999997", "reason"] == "not a readable PDF"
    assert quarantine.loc["REF-999998", "lineage"] == f"paper/{EMPTY} row 1"
    assert quarantine.loc["REF-999997", "lineage"] == f"paper/{CORRUPT} row 1"


def test_each_bad_file_is_named_in_one_line_without_personal_data(batches):
    new = set(batches["damaged"].errors) - set(batches["clean"].errors)

    assert new == {
        f"paper/{EMPTY}: not a readable image; not indexed",
        f"paper/{CORRUPT}: not a readable PDF; not indexed",
    }


def test_the_checks_count_only_the_forms_read(batches):
    clean, damaged = batches["clean"], batches["damaged"]
    checked = {r["check_name"]: r["element_count"] for r in damaged.dq_results}

    assert checked == {r["check_name"]: r["element_count"] for r in clean.dq_results}
    assert checked["not_null__name"] == batches["referrals"] - batches["clean_unreadable"]


def test_every_record_read_is_linked_quarantined_or_withdrawn(batches):
    staged = batches["damaged"]

    assert staged.read == batches["referrals"] + 2
    assert len(staged.records) + len(staged.quarantine) + staged.withdrawn == staged.read
