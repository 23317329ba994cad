"""Scanned forms: half PNG, half PDF, rendered by care_etl.synthetic.scans."""

from __future__ import annotations

import csv
from pathlib import Path

import pypdfium2
from PIL import Image

from care_etl.synthetic.generate import generate


def test_two_scans_give_one_png_and_one_pdf(tmp_path: Path) -> None:
    summary = generate(tmp_path, 300, 5, scans=2)
    paper = sorted((tmp_path / "paper").iterdir())
    by_suffix = {s: [p for p in paper if p.suffix == s] for s in (".png", ".pdf", ".txt")}
    assert len(by_suffix[".png"]) == len(by_suffix[".pdf"]) == 1
    assert len(by_suffix[".txt"]) == summary.records["paper_referrals"] - 2
    with Image.open(by_suffix[".png"][0]) as image:
        image.verify()
    pdf = pypdfium2.PdfDocument(by_suffix[".pdf"][0])
    try:
        assert len(pdf) == 1
    finally:
        pdf.close()
    with (tmp_path / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        ids = {
            r["source_record_id"]
            for r in csv.DictReader(handle)
            if r["source"] == "paper_referrals"
        }
    assert {p.stem for p in paper} == ids
