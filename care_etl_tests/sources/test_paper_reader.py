"""Paper reader without OCR: form parsing on bureau .txt files and value repair."""

from __future__ import annotations

import json

import pytest

from care_etl.sources.paper_reader import parse_value, read_paper
from care_etl_tests.sources.forms import PAPER_LABELS

GARBLED = """REFERRAL FORM
Narne: Zoë O'Brien
Dale of Birlh: O3/O7/l948
NHS N0 943 476 59l9
Address: Flat 3, 12 Mill Lane,
Hackney, London
Postcodc: E8 3QP.
Referrer; Dr A Patel
Date of referral: 14/02/2009
Other household members:
"""


def _txt(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_garbled_labels_broken_lines_and_lookalikes_parse(tmp_path):
    path = _txt(tmp_path, "P000123.txt", GARBLED)

    row = read_paper([path], PAPER_LABELS).iloc[0]

    assert row["Name"] == "Zoë O'Brien"
    assert row["Date of Birth"] == "03/07/1948"
    assert row["NHS No"] == "9434765919"  # colon lost, l read for 1, spaces removed
    assert row["Address"] == "Flat 3, 12 Mill Lane, Hackney, London"  # broken line joined
    assert row["Postcode"] == "E8 3QP"
    assert row["Referrer"] == "Dr A Patel"
    assert row["Date of referral"] == "14/02/2009"
    assert row["Other household members"] is None
    assert row["_read_error"] is None


def test_lineage_and_confidences_of_a_txt_record(tmp_path):
    path = _txt(tmp_path, "P000123.txt", GARBLED)

    df = read_paper([str(path)], PAPER_LABELS)

    assert list(df.columns) == [
        *PAPER_LABELS,
        "_file",
        "_row",
        "_record_id",
        "_ocr_confidence",
        "_field_confidence",
        "_read_error",
    ]
    row = df.iloc[0]
    assert (row["_file"], row["_row"], row["_record_id"]) == (str(path), 1, "P000123")
    assert row["_ocr_confidence"] is None  # the bureau gave no confidences
    confidence = json.loads(row["_field_confidence"])
    assert set(confidence) == set(PAPER_LABELS)
    assert all(0.0 <= c <= 1.0 for c in confidence.values())
    # an exact label and a clean value are trusted more than a misread label and a repaired date
    assert confidence["Date of referral"] == 1.0
    assert confidence["Date of Birth"] < 0.8


def test_missing_label_has_zero_confidence(tmp_path):
    text = "\n".join(line for line in GARBLED.splitlines() if not line.startswith("Referrer"))
    row = read_paper([_txt(tmp_path, "P1.txt", text)], PAPER_LABELS).iloc[0]

    assert row["Referrer"] is None
    assert json.loads(row["_field_confidence"])["Referrer"] == 0.0
    assert row["Postcode"] == "E8 3QP"  # the missing line does not shift the others


def test_title_misread_as_a_label_does_not_take_it(tmp_path):
    text = GARBLED.replace("REFERRAL FORM", "REFERRAL: FORM")

    row = read_paper([_txt(tmp_path, "P2.txt", text)], PAPER_LABELS).iloc[0]

    assert row["Referrer"] == "Dr A Patel"


def test_a_form_read_again_or_beside_other_labels_reads_alike(tmp_path):
    """Label matches are remembered per label set: neither a second read nor another form
    type's labels in between may change what a form gives."""
    path = _txt(tmp_path, "P4.txt", GARBLED)
    first = read_paper([path], PAPER_LABELS)
    other = read_paper([path], {"Name": "text", "Date of Birth": "date", "Postcode": "postcode"})
    again = read_paper([path], PAPER_LABELS)

    assert first.equals(again)
    assert other.iloc[0][["Name", "Date of Birth", "Postcode"]].tolist() == [
        "Zoë O'Brien",
        "03/07/1948",
        "E8 3QP",
    ]
    assert "NHS No" not in other.columns


def test_a_colon_ends_a_label_before_an_earlier_semicolon_in_the_word(tmp_path):
    text = "Name: Ann Lee\nReferrer;Dr:A Patel\nPostcode; E8 3QP\n"

    row = read_paper([_txt(tmp_path, "P5.txt", text)], PAPER_LABELS).iloc[0]

    assert row["Referrer"] == "A Patel"  # the label is 'Referrer;Dr', misread
    assert row["Postcode"] == "E8 3QP"  # with no colon, a semicolon ends the label


def test_windows_1252_text_file(tmp_path):
    path = _txt(tmp_path, "P3.txt", GARBLED.replace("Zoë", "Seán"), encoding="cp1252")

    assert read_paper([path], PAPER_LABELS).iloc[0]["Name"] == "Seán O'Brien"


SHORT_LABELS_AND_OTHER_FIELDS = """REFERRAL FORM
Name : Aisha Ahmed
Sex: F
D.O.B.: 03/04/1936
NHS Number: 526 018 1590
Address: Flat 19, 55 Mill Lane,
London
Telephone: 020 7946 0123
Postcode: N16 7XY
Referrer: Health visitor
Date of Referral: 21/11/2013
Other household members: Bill Ahmed (son)
Signed: J. Bloggs
"""


def test_short_labels_are_read_and_other_fields_do_not_run_into_ours(tmp_path):
    """`D.O.B.` and `NHS Number` were no labels, so both lines ran into the name; so did an
    unread `Sex:` line, and `Telephone:` into the address, all at confidence 1.0."""
    path = _txt(tmp_path, "P5.txt", SHORT_LABELS_AND_OTHER_FIELDS)

    row = read_paper([path], PAPER_LABELS).iloc[0]

    assert row["Name"] == "Aisha Ahmed"
    assert row["Date of Birth"] == "03/04/1936"
    assert row["NHS No"] == "5260181590"
    assert row["Address"] == "Flat 19, 55 Mill Lane, London"
    assert row["Other household members"] == "Bill Ahmed (son)"
    assert json.loads(row["_field_confidence"])["Date of Birth"] == 1.0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_file(tmp_path, encoding):
    """Notepad's "Unicode" is UTF-16: read as one byte a character, a NUL sat between the
    letters, the labels still matched and the values came through garbled at confidence 1."""
    path = _txt(tmp_path, "P4.txt", GARBLED.replace("\n", "\r\n"), encoding=encoding)

    row = read_paper([path], PAPER_LABELS).iloc[0]

    assert row["Name"] == "Zoë O'Brien"
    assert row["Date of Birth"] == "03/07/1948"
    assert row["NHS No"] == "9434765919"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", "", "no text recognised"),
        ("letter.txt", "Dear Sir,\nPlease find enclosed our invoice.\n", "no form labels found"),
        ("photo.heic", "not a form", "unsupported file type .heic"),
    ],
)
def test_unreadable_records_are_kept_with_a_reason(tmp_path, name, content, reason):
    good = _txt(tmp_path, "good.txt", GARBLED)
    bad = _txt(tmp_path, name, content)

    df = read_paper([good, bad], PAPER_LABELS)

    assert len(df) == 2  # quarantined downstream, never dropped
    assert df.iloc[1]["_read_error"] == reason
    assert df.iloc[1]["_field_confidence"] is None
    assert all(df.iloc[1][label] is None for label in PAPER_LABELS)
    assert df.iloc[0]["_read_error"] is None


def test_progress_counts_every_file(tmp_path):
    files = [_txt(tmp_path, f"P{i}.txt", GARBLED) for i in range(3)]
    seen = []

    read_paper(files, PAPER_LABELS, progress=lambda done, total: seen.append((done, total)))

    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_no_files_gives_an_empty_frame_with_the_columns():
    df = read_paper([], PAPER_LABELS)

    assert len(df) == 0
    assert "_read_error" in df.columns and "Name" in df.columns


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown label kinds"):
        read_paper([], {"Name": "person"})


@pytest.mark.parametrize(
    ("text", "kind", "value", "repaired"),
    [
        ("03/07/1948", "date", "03/07/1948", False),
        ("O3/O7/l948", "date", "03/07/1948", True),
        ("03l07l1948", "date", "03/07/1948", True),  # slashes read as l
        ("14/07/ 1984", "date", "14/07/1984", False),
        ("28/11/2004é", "date", "28/11/2004", True),  # a speck read as a letter
        ("25/13/1950", "date", "25/13/1950", False),  # month 13 kept: standardisation judges
        ("02/0/2019", "date", "02/0/2019", True),  # a digit lost: kept, but less sure
        ("943 476 5919", "digits", "9434765919", False),
        ("B43 S76 59l9", "digits", "8435765919", True),
        ("E8 3QP.", "postcode", "E8 3QP", False),
        ("E 8 3QP", "postcode", "E83QP", False),
        ("£8 3QP", "postcode", "E8 3QP", False),
        ("e83qp", "postcode", "e83qp", False),
        (" . Self referral ,", "text", "Self referral", False),
        ("", "date", None, False),
    ],
)
def test_value_repair(text, kind, value, repaired):
    parsed, factor = parse_value(text, kind)

    assert parsed == value
    assert (factor < 1.0) == repaired


def test_unparseable_date_is_kept_raw_with_low_confidence():
    parsed, factor = parse_value("about 1950", "date")

    assert parsed == "about 1950"
    assert factor <= 0.5


def test_every_scan_the_ocr_reads_is_taken_as_a_paper_form():
    from care_etl.sources.ocr import IMAGE_SUFFIXES, PDF_SUFFIXES
    from care_etl.sources.read import PAPER_SUFFIXES

    assert IMAGE_SUFFIXES | PDF_SUFFIXES | {".txt"} == PAPER_SUFFIXES
