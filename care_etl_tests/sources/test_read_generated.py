"""Each reader on the generator's files, through the contracts, as the pipeline reads them."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.contracts import load_contract
from care_etl.sources.csv_reader import detect_encoding
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR


def _read(source: str, generated: Path, tmp_path: Path | None = None):
    contract = load_contract(CONTRACTS_DIR / f"{source}.yaml")
    return read_source(contract, generated, cache_dir=tmp_path)


def _copy(generated: Path, tmp_path: Path, folder: str) -> Path:
    """A copy of one source's folder to break, leaving the shared generated sources alone."""
    shutil.copytree(generated / folder, tmp_path / "sources" / folder)
    return tmp_path / "sources"


def _utf8_gp_file(sources: Path) -> Path:
    """A GP file the generator wrote in UTF-8 (no BOM) with non-ASCII names in it."""
    return next(
        f
        for f in sorted((sources / "health").glob("*.csv"))
        if detect_encoding(f) == "utf-8" and not f.read_bytes().isascii()
    )


def _truth(generated: Path, source: str) -> pd.DataFrame:
    truth = pd.read_csv(generated / "ground_truth.csv", dtype=str)
    return truth[truth["source"] == source]


def test_health_reads_every_practice_file_in_its_own_encoding(generated):
    raw = _read("health_gp_registrations", generated)
    assert raw.errors == []
    files = sorted((generated / "health").glob("*.csv"))
    assert {detect_encoding(f) for f in files} >= {"utf-8", "utf-8-sig", "cp1252"}
    assert len(raw.records) == len(_truth(generated, "health_gp_registrations"))
    names = pd.concat([raw.records["Forename"], raw.records["Surname"]]).dropna()
    assert not names.str.contains("\ufffd|Ã|â€").any(), "no mojibake from a wrong encoding"
    assert names.str.contains("[À-ÿ]").any(), "accented names survive"
    assert raw.records["_row"].min() == 2 and raw.records["_file"].str.startswith("health/").all()


def test_housing_finds_the_header_and_keeps_uprn_digits(generated):
    raw = _read("housing_tenancies", generated)
    assert raw.errors == []
    records = raw.records
    assert len(records) == len(_truth(generated, "housing_tenancies"))
    uprns = records["tenancies.UPRN"].dropna()
    assert len(uprns) and uprns.str.fullmatch(r"\d{1,12}").all()
    assert records["_sheet"].eq("Household Members").all()
    assert raw.counts["unmatched_tenancies"] >= 1, "members of a missing tenancy are kept"
    dobs = records["DOB"].dropna()
    assert dobs.str.fullmatch(r"\d{4}-\d{2}-\d{2}").mean() > 0.8  # Excel date cells
    assert (~dobs.str.fullmatch(r"\d{4}-\d{2}-\d{2}")).any()  # and some typed as text


def test_social_care_excludes_withdrawn_rows_and_joins_the_current_address(generated):
    raw = _read("social_care_case_management", generated)
    assert raw.errors == []
    with sqlite3.connect(generated / "social_care/case_management.db") as db:
        deleted = db.execute("SELECT count(*) FROM persons WHERE is_deleted").fetchone()[0]
        current = dict(
            db.execute("SELECT person_id, postcode FROM addresses WHERE end_date IS NULL")
        )
    assert raw.counts["withdrawn"] == deleted > 0
    kept = raw.records[~raw.records["_withdrawn"]]
    assert len(kept) == len(_truth(generated, "social_care_case_management"))
    joined = kept.dropna(subset=["addresses.postcode"])
    assert len(joined)
    for person_id, postcode in zip(joined["person_id"], joined["addresses.postcode"], strict=True):
        assert current[int(person_id)] == postcode
    assert kept["other_names"].notna().any(), "aliases and former surnames are read"
    assert kept["_row"].str.match(r"person_id=\d+").all()


@pytest.mark.ocr
@pytest.mark.usefixtures("tesseract")
def test_paper_reads_scans_with_ocr_and_text_forms_as_they_are(generated, tmp_path):
    raw = _read("paper_referrals", generated, tmp_path)
    assert raw.errors == []
    records = raw.records
    assert len(records) == len(_truth(generated, "paper_referrals"))
    scanned = records["_file"].str.endswith((".png", ".pdf"))
    assert scanned.sum() == 4
    assert records.loc[scanned, "_ocr_confidence"].between(0, 1).all()
    assert records.loc[~scanned, "_ocr_confidence"].isna().all()
    assert records["Form ID"].notna().all()
    assert list(tmp_path.glob("*")), "the OCR results were cached"


def test_a_windows_1252_line_in_a_utf8_gp_file_is_read_as_such_and_named(generated, tmp_path):
    sources = _copy(generated, tmp_path, "health")
    path = _utf8_gp_file(sources)
    lines = path.read_bytes().splitlines(keepends=True)
    number = next(n for n, line in enumerate(lines[1:], start=2) if line.isascii())
    fields = lines[number - 1].split(b",")
    fields[3] = "Renée".encode("cp1252")  # Forename: Patient ID, NHS Number, Title come first
    lines[number - 1] = b",".join(fields)
    path.write_bytes(b"".join(lines))
    name = f"health/{path.name}"

    raw = _read("health_gp_registrations", sources)
    before = _read("health_gp_registrations", generated).records

    assert raw.errors == []
    assert raw.warnings == [
        f"{name}: line {number} is not UTF-8 like the rest of the file; read as "
        "Windows-1252 (check the accented letters of those records)"
    ]
    mine, theirs = (r[r["_file"] == name].set_index("_row") for r in (raw.records, before))
    assert mine.loc[number, "Forename"] == "Renée"
    others = mine.drop(index=number)
    names = others[["Forename", "Middle Names", "Surname"]].stack()
    assert names.str.contains("[^\x00-\x7f]").any(), "the file's UTF-8 names are compared"
    pd.testing.assert_frame_equal(others, theirs.drop(index=number))  # no name garbled


def _rewrite_csv(path: Path, delimiter: str = ",", drop: str | None = None) -> None:
    """The GP file rewritten, in its own encoding, with another separator or a column less."""
    encoding = detect_encoding(path)
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))
    keep = [i for i, column in enumerate(rows[0]) if column != drop]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows([[r[i] for i in keep] for r in rows])
    path.write_bytes(out.getvalue().encode(encoding))


def test_a_gp_file_without_its_nhs_number_column_says_so(generated, tmp_path):
    """NHS Number is declared but optional: the file is read, and the gap is named."""
    sources = _copy(generated, tmp_path, "health")
    path = sorted((sources / "health").glob("*.csv"))[0]
    _rewrite_csv(path, drop="NHS Number")
    name = f"health/{path.name}"

    raw = _read("health_gp_registrations", sources)

    assert raw.errors == [] and raw.missing_required == []
    records = raw.records[raw.records["_file"] == name]
    assert len(records) and records["NHS Number"].isna().all()
    assert raw.records.loc[raw.records["_file"] != name, "NHS Number"].notna().any()
    assert raw.warnings == [
        f"{name}: missing column(s) 'NHS Number' declared in the contract; the field is "
        f"empty for all {len(records)} records read from it (restore the column(s) in the "
        "extract, or remove them from schema/gp_registration/properties)"
    ]


def test_headers_in_other_capitals_or_spacing_are_the_declared_columns(generated, tmp_path):
    sources = _copy(generated, tmp_path, "health")
    path = sorted((sources / "health").glob("*.csv"))[0]
    encoding = detect_encoding(path)
    text = path.read_bytes().decode(encoding)
    header, _, body = text.partition("\n")
    assert "Surname" in header and "Date of Birth" in header
    header = header.replace("Surname", "SURNAME").replace("Date of Birth", " date of  birth")
    path.write_bytes(f"{header}\n{body}".encode(encoding))
    before = _read("health_gp_registrations", _copy(generated, tmp_path / "before", "health"))

    raw = _read("health_gp_registrations", sources)

    assert raw.errors == [] and raw.warnings == [] and raw.missing_required == []
    pd.testing.assert_frame_equal(raw.records, before.records)


def test_a_renamed_social_care_column_says_which_declared_one_is_missing(generated, tmp_path):
    sources = _copy(generated, tmp_path, "social_care")
    with sqlite3.connect(sources / "social_care/case_management.db") as db:
        db.execute("ALTER TABLE persons RENAME COLUMN surname TO last_name")
        rows = db.execute("SELECT count(*) FROM persons").fetchone()[0]
    db.close()

    raw = _read("social_care_case_management", sources)

    assert raw.errors == [] and raw.records["surname"].isna().all()
    where = "social_care/case_management.db: table persons"
    assert (
        f"{where}: missing column(s) 'surname' declared in the contract; the field is "
        in (raw.warnings[0])
    )
    assert f"empty for all {rows} records read from it" in raw.warnings[0]
    assert raw.warnings[1].startswith(f"{where}: unexpected column(s) 'last_name'; not read")


def test_a_social_care_value_stored_as_bytes_is_read_as_its_text(generated, tmp_path):
    # A BLOB forename was read as Python's repr of bytes: "b'Christopher'".
    sources = _copy(generated, tmp_path, "social_care")
    with sqlite3.connect(sources / "social_care/case_management.db") as db:
        first, second = (r[0] for r in db.execute("SELECT person_id FROM persons LIMIT 2"))
        db.execute("UPDATE persons SET forename = ? WHERE person_id = ?", ("Zoë".encode(), first))
        db.execute(
            "UPDATE persons SET forename = ? WHERE person_id = ?", ("Seán".encode("cp1252"), second)
        )
    db.close()

    raw = _read("social_care_case_management", sources)

    names = raw.records.set_index("person_id")["forename"]
    assert (names[str(first)], names[str(second)]) == ("Zoë", "Seán")


@pytest.mark.parametrize(("delimiter", "named"), [(";", "';'"), ("\t", "a tab"), (",", None)])
def test_missing_required_columns_hint_at_the_separator(generated, tmp_path, delimiter, named):
    """A file saved with ';' (a European spreadsheet locale) or tabs reads as one column."""
    sources = _copy(generated, tmp_path, "health")
    path = sorted((sources / "health").glob("*.csv"))[0]
    _rewrite_csv(path, delimiter, drop="Patient ID" if delimiter == "," else None)

    raw = _read("health_gp_registrations", sources)

    [error] = raw.errors
    assert "\n" not in error
    if named:
        required = "Patient ID, Forename, Surname, Date of Birth, Practice Code"
        hint = f" (the file seems to be separated by {named})"
    else:
        required, hint = "Patient ID", ""
    assert error.startswith(
        f"health/{path.name}: missing required column(s) {required}{hint}; the source is stopped"
    )
    assert ("separated" in error) == bool(named)


@pytest.mark.postgres
def test_a_social_care_database_that_cannot_be_reached_says_why(generated, monkeypatch):
    from care_etl_tests.conftest import PG_ADMIN_URL

    missing = sa.engine.make_url(PG_ADMIN_URL).set(database="care_etl_no_such_database")
    monkeypatch.setenv("CARE_ETL_SOCIAL_CARE_URL", missing.render_as_string(hide_password=False))
    raw = _read("social_care_case_management", generated)
    assert raw.records.empty
    (error,) = raw.errors
    assert error.startswith("$CARE_ETL_SOCIAL_CARE_URL: cannot read table persons: ")
    assert 'database "care_etl_no_such_database" does not exist' in error


def test_a_file_without_its_header_line_names_no_value(generated, tmp_path):
    """The first record is read as the header: its values must not reach a message."""
    sources = _copy(generated, tmp_path, "health")
    path = sorted((sources / "health").glob("*.csv"))[0]
    encoding = detect_encoding(path)
    lines = path.read_bytes().decode(encoding).splitlines(keepends=True)[1:]
    # Every field of the first record filled (an empty one is a nameless header column).
    first = [value or f"Filled{i}" for i, value in enumerate(next(csv.reader([lines[0]])))]
    out = io.StringIO()
    csv.writer(out).writerow(first)
    path.write_bytes((out.getvalue() + "".join(lines[1:])).encode(encoding))

    raw = _read("health_gp_registrations", sources)

    said = " ".join(raw.errors + raw.warnings)
    assert "is the header line missing?" in said
    shown = said.replace(path.name, "")  # the practice code is in the file's name
    assert not [v for v in first if len(v) > 3 and v in shown]


@pytest.mark.postgres
def test_a_postgresql_table_with_nan_and_infinity_reads_without_a_traceback(postgres_url):
    # PostgreSQL floats hold NaN and Infinity; reading them as text stopped the whole source
    # with "cannot convert float NaN to integer".
    from care_etl.sources.sql_reader import read_table

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE persons (person_id int, forename text, score float8)"))
        conn.execute(
            sa.text(
                "INSERT INTO persons VALUES (1, ' Ann ', 'NaN'), (2, NULL, 'Infinity'), "
                "(3, 'Bo', 2.0), (4, '  ', 2.5)"
            )
        )
    engine.dispose()

    frame = read_table(postgres_url, "persons", ["person_id", "forename", "score"], label="db")

    assert frame["person_id"].tolist() == ["1", "2", "3", "4"]
    assert frame["forename"].tolist() == ["Ann", None, "Bo", None]
    assert frame["score"].tolist() == [None, "inf", "2", "2.5"]
