"""Paper reader with real Tesseract on scans rendered by render_scan (a handful of pages)."""

from __future__ import annotations

import json
import shutil
import unicodedata

import numpy as np
import pandas as pd
import pytesseract
import pytest
from PIL import Image

from care_etl.errors import SourceReadError
from care_etl.sources import ocr
from care_etl.sources.paper_reader import read_paper
from care_etl.synthetic.scans import render_scan
from care_etl_tests.sources.forms import PAPER_LABELS, form_text

# The `tesseract` fixture skips without Tesseract, and fails instead in CI.
pytestmark = [pytest.mark.ocr, pytest.mark.usefixtures("tesseract")]

FORMS = {
    "R0001.png": (
        11,
        {
            "Name": "Margaret O'Brien",
            "Date of Birth": "03/07/1948",
            "NHS No": "943 476 5919",
            "Address": "Flat 3, 12 Mill Lane, London",
            "Postcode": "E8 3QP",
            "Referrer": "Dr A Patel, Lower Clapton Group Practice",
            "Date of referral": "14/02/2009",
            "Other household members": "Bill O'Brien (husband)",
        },
    ),
    "R0002.pdf": (
        12,
        {
            "Name": "Zoë Smith-Jones",
            "Date of Birth": "29/11/1985",
            "NHS No": "4010232137",
            "Address": "41 Dalston Lane, London",
            "Postcode": "n167xy",
            "Referrer": "Health visitor",
            "Date of referral": "05/05/2010",
            "Other household members": "",
        },
    ),
    "R0003.png": (
        13,
        {
            "Name": "Kwame Okafor",
            "Date of Birth": "18/10/2001",
            "NHS No": "",
            # long enough to be typed over two lines
            "Address": "Flat 14, Victoria Park Court, 99 Victoria Park Road, Hackney, London",
            "Postcode": "E9 6DG",
            "Referrer": "School nurse",
            "Date of referral": "30/01/2015",
            "Other household members": "Aisha Okafor, Priya Okafor, William Okafor",
        },
    ),
}
UNREADABLE = {
    "blank.png": None,  # rendered with no text: paper grain and specks only
    "broken_image.png": b"\x89PNG\r\n\x1a\n but then nothing an image decoder wants",
    "broken_pdf.pdf": b"%PDF-1.4\n% cut off by the scanner",
}


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """The forms and unreadable files, read once through a two-process pool and a cache."""
    folder = tmp_path_factory.mktemp("paper")
    cache = tmp_path_factory.mktemp("ocr_cache")
    for name, (seed, values) in FORMS.items():
        render_scan(form_text(values), folder / name, seed=seed)
    for name, content in UNREADABLE.items():
        if content is None:
            render_scan("", folder / name, seed=99)
        else:
            (folder / name).write_bytes(content)
    files = [folder / name for name in [*FORMS, *UNREADABLE]]
    runs_before = ocr.ocr_runs
    df = read_paper(files, PAPER_LABELS, cache_dir=cache, workers=2)
    return {
        "files": files,
        "cache": cache,
        "df": df.set_index("_record_id", drop=False),
        "runs": ocr.ocr_runs - runs_before,
    }


def _fold(text: str | None) -> str | None:
    """Accents are what OCR loses first (Zoë -> Zoé); compare names without them."""
    if text is None:
        return None
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _postcode_key(text: str | None) -> str | None:
    """0/O and 1/I are repaired by standardisation, not by the reader."""
    if text is None:
        return None
    return text.upper().replace(" ", "").replace("O", "0").replace("I", "1")


@pytest.mark.parametrize("name", list(FORMS))
def test_rendered_forms_are_read_back(scans, name):
    row = scans["df"].loc[name.split(".")[0]]
    values = FORMS[name][1]

    assert row["_read_error"] is None
    assert row["Date of Birth"] == values["Date of Birth"]
    assert row["Date of referral"] == values["Date of referral"]
    assert row["NHS No"] == (values["NHS No"].replace(" ", "") or None)
    assert _fold(row["Name"]) == _fold(values["Name"])
    assert _postcode_key(row["Postcode"]) == _postcode_key(values["Postcode"])
    assert row["Referrer"] == values["Referrer"]


def test_value_typed_over_two_lines_is_joined(scans):
    row = scans["df"].loc["R0003"]

    assert row["Address"] == FORMS["R0003.png"][1]["Address"]
    assert row["Other household members"] == FORMS["R0003.png"][1]["Other household members"]


def test_confidences_are_in_range_and_cover_every_label(scans):
    for name in FORMS:
        row = scans["df"].loc[name.split(".")[0]]
        assert 0.5 < row["_ocr_confidence"] <= 1.0
        confidence = json.loads(row["_field_confidence"])
        assert set(confidence) == set(PAPER_LABELS)
        assert all(0.0 <= c <= 1.0 for c in confidence.values())


def test_unreadable_files_become_records_with_a_reason(scans):
    df = scans["df"]

    assert len(df) == len(FORMS) + len(UNREADABLE)
    assert df.loc["blank", "_read_error"] in {"no text recognised", "no form labels found"}
    assert df.loc["broken_image", "_read_error"] == "not a readable image"
    assert df.loc["broken_pdf", "_read_error"] == "not a readable PDF"
    for record_id in ("blank", "broken_image", "broken_pdf"):
        assert df.loc[record_id, "Name"] is None
        assert df.loc[record_id, "_field_confidence"] is None


def test_lineage(scans):
    df = scans["df"].reset_index(drop=True)

    assert df["_file"].tolist() == [str(f) for f in scans["files"]]
    assert df["_row"].tolist() == [1] * len(df)
    assert df["_record_id"].tolist() == [f.stem for f in scans["files"]]


def test_second_read_comes_from_the_cache(scans):
    cached = sorted(p.name for p in scans["cache"].glob("*.json"))
    assert len(cached) == len(scans["files"])  # one entry per distinct scan, errors included
    assert scans["runs"] == len(scans["files"])
    runs_before = ocr.ocr_runs

    again = read_paper(scans["files"], PAPER_LABELS, cache_dir=scans["cache"], workers=2)

    assert ocr.ocr_runs == runs_before  # nothing was sent to Tesseract
    pd.testing.assert_frame_equal(again, scans["df"].reset_index(drop=True))


def test_a_changed_scan_is_read_again(scans, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(scans["cache"], cache)
    path = tmp_path / "R0001.png"
    shutil.copy(scans["files"][0], path)
    runs_before = ocr.ocr_runs
    read_paper([path], PAPER_LABELS, cache_dir=cache)
    assert ocr.ocr_runs == runs_before  # same bytes in another folder: still a cache hit

    values = dict(FORMS["R0001.png"][1], **{"Date of Birth": "04/07/1948"})
    render_scan(form_text(values), path, seed=11)
    df = read_paper([path], PAPER_LABELS, cache_dir=cache, workers=1)

    assert ocr.ocr_runs == runs_before + 1
    assert df.loc[0, "Date of Birth"] == "04/07/1948"
    assert len(list(cache.glob("*.json"))) == len(scans["files"]) + 1


def test_missing_tesseract_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "R0009.png"
    render_scan(form_text(FORMS["R0001.png"][1]), path, seed=21)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))

    with pytest.raises(SourceReadError) as err:
        read_paper([path], PAPER_LABELS, cache_dir=tmp_path / "cache")

    message = str(err.value)
    assert message.startswith(str(path))
    assert "tesseract-ocr" in message and "\n" not in message


@pytest.mark.parametrize("angle", [90, 180])
def test_a_form_scanned_on_its_side_or_upside_down_is_read(scans, tmp_path, angle):
    """A form fed into the scanner the wrong way round was "no text recognised" (on its side)
    or "no form labels found" (upside down): the page is turned upright and read."""
    from PIL import Image

    upright = scans["files"][0]  # R0001.png
    turned = tmp_path / f"R0001_{angle}.png"
    Image.open(upright).rotate(angle, expand=True, fillcolor=255).save(turned)
    row = read_paper([turned], PAPER_LABELS, workers=1).iloc[0]
    values = FORMS["R0001.png"][1]
    assert row["_read_error"] is None
    assert row["Date of Birth"] == values["Date of Birth"]
    assert row["NHS No"] == values["NHS No"].replace(" ", "")
    assert _fold(row["Name"]) == _fold(values["Name"])


def _transparent(grey: Image.Image) -> Image.Image:
    """Ink as black of the page's darkness, on a transparent background (a PNG export)."""
    ink = 255 - np.asarray(grey.convert("L"))
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    return Image.fromarray(rgba, "RGBA")


def _sixteen_bit(grey: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(grey.convert("L")).astype(np.uint16) * 257)


@pytest.mark.parametrize("convert", [_transparent, _sixteen_bit])
def test_a_transparent_or_16_bit_png_is_read(scans, tmp_path, convert):
    """Pillow's convert("L") made a transparent background black and clipped a 16-bit scan
    to white: both were quarantined as "no text recognised"."""
    path = tmp_path / "R0001_converted.png"
    with Image.open(scans["files"][0]) as upright:
        convert(upright).save(path, dpi=(150, 150))

    row = read_paper([path], PAPER_LABELS, workers=1).iloc[0]

    values = FORMS["R0001.png"][1]
    assert row["_read_error"] is None
    assert row["Date of Birth"] == values["Date of Birth"]
    assert row["NHS No"] == values["NHS No"].replace(" ", "")


def test_a_scanned_form_with_short_labels_and_other_fields_is_read(tmp_path):
    """A bureau's form prints `D.O.B.` and `NHS Number`, and fields we do not read: the
    short labels were missed and their lines, like `Sex:`, ran on into the name."""
    text = (
        "REFERRAL FORM\nName : Margaret O'Brien\nSex: F\nD.O.B.: 03/07/1948\n"
        "NHS Number: 943 476 5919\nAddress: 12 Mill Lane, London\nTelephone: 020 7946 0123\n"
        "Postcode: E8 3QP\nReferrer: Health visitor\nDate of Referral: 14/02/2009\n"
    )
    path = tmp_path / "R0010.png"
    render_scan(text, path, seed=31)

    row = read_paper([path], PAPER_LABELS, workers=1).iloc[0]

    assert row["Name"] == "Margaret O'Brien"
    assert row["Date of Birth"] == "03/07/1948"
    assert row["NHS No"] == "9434765919"
    assert row["Address"] == "12 Mill Lane, London"


def test_a_scan_stamped_72_dpi_is_read_at_its_page_size(scans, tmp_path):
    """Image tools stamp 72 dpi whatever the scan: taken at its word, a 150 dpi page was
    upscaled twice over (a 300 dpi page 4 times the pixels) and read at that cost."""
    path = tmp_path / "R0001_72dpi.png"
    with Image.open(scans["files"][0]) as page:
        page.save(path, dpi=(72, 72))

    [(image, dpi)] = ocr.load_pages(path)
    row = read_paper([path], PAPER_LABELS, workers=1).iloc[0]

    assert image.width == 1240 and round(dpi) == 150
    assert row["Date of Birth"] == FORMS["R0001.png"][1]["Date of Birth"]


def test_a_blank_back_page_is_not_sent_to_tesseract(scans, tmp_path, monkeypatch):
    """A duplex scan's blank back cost 20 s against 4 s for the form: Tesseract read nothing
    on it, then orientation detection called it upside down and it was read again."""
    path = tmp_path / "R0001_duplex.pdf"
    back = tmp_path / "back.png"
    render_scan("", back, seed=99)
    with Image.open(scans["files"][0]) as front, Image.open(back) as blank:
        front.save(path, "PDF", resolution=150.0, save_all=True, append_images=[blank])
    read = []
    monkeypatch.setattr(
        ocr, "ocr_image", lambda page, dpi: read.append(page) or [[("Name:", 95.0)]]
    )
    monkeypatch.setattr(ocr, "_orientation", lambda page: pytest.fail("orientation asked"))

    ocr.ocr_file(path)

    assert len(read) == 1  # the front only
