"""The scan renderer the synthetic generator uses for paper referrals (no OCR here)."""

from __future__ import annotations

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from care_etl.sources.ocr import estimate_skew
from care_etl.synthetic.scans import render_scan

TEXT = "REFERRAL FORM\nName: Zoë O'Brien\nDate of Birth: 03/07/1948\nPostcode: E8 3QP"


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_same_seed_same_bytes_other_seed_other_scan(tmp_path, suffix):
    a, b, c = (tmp_path / f"{name}{suffix}" for name in "abc")

    render_scan(TEXT, a, seed=3)
    render_scan(TEXT, b, seed=3)
    render_scan(TEXT, c, seed=4)

    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_pdf_carries_no_timestamp_or_file_name(tmp_path):
    path = tmp_path / "R0001.pdf"

    render_scan(TEXT, path, seed=1)

    raw = path.read_bytes()
    assert b"CreationDate" not in raw and b"ModDate" not in raw
    assert b"R0001" not in raw
    pdf = pdfium.PdfDocument(path)
    try:
        assert len(pdf) == 1
        width, height = pdf[0].get_size()
        assert (round(width), round(height)) == (595, 842)  # A4 in points
    finally:
        pdf.close()


def test_png_is_an_a4_page_at_150_dpi_with_ink_and_grain(tmp_path):
    path = tmp_path / "R0002.png"

    render_scan(TEXT, path, seed=2)

    with Image.open(path) as im:
        assert im.size == (1240, 1754)
        assert round(im.info["dpi"][0]) == 150
        pixels = np.asarray(im.convert("L"))
    assert (pixels < 100).mean() > 0.002  # the text is there
    assert len(np.unique(pixels[:100, :100])) > 1  # the margin is not clean white: grain


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_page_is_slightly_skewed(tmp_path, seed):
    path = tmp_path / "skewed.png"
    render_scan(TEXT * 3, path, seed=seed)

    with Image.open(path) as im:
        angle = estimate_skew(im.convert("L"))

    assert 0.3 <= abs(angle) <= 2.2


def test_other_suffixes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="png or .pdf"):
        render_scan(TEXT, tmp_path / "scan.jpg", seed=1)


@pytest.mark.parametrize("turn", [4.5, -4.5])
def test_a_page_fed_in_further_askew_is_measured_whole(tmp_path, turn):
    """A bureau's feeder skews a page 3.5-4.5 degrees: the search stopped at 3 (3.4 with the
    fine step), so such a page was only partly straightened before OCR."""
    path = tmp_path / "skewed.png"
    render_scan(TEXT * 3, path, seed=5)
    with Image.open(path) as im:
        page = im.convert("L")
    straight = page.rotate(estimate_skew(page), resample=Image.Resampling.BICUBIC, fillcolor=240)
    skewed = straight.rotate(turn, resample=Image.Resampling.BICUBIC, fillcolor=240)

    assert abs(estimate_skew(skewed) + turn) <= 0.3
