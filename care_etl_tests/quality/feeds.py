"""Break a generated feed the way real feeds break: the files are edited in place."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from openpyxl import load_workbook

from care_etl.sources.csv_reader import detect_encoding

Row = dict[str, str]


def edit_csv(
    path: Path, change: Callable[[list[Row]], list[Row]], header: list[str] | None = None
) -> None:
    """Rewrite a CSV file through `change`, in its own encoding; `header` replaces the columns."""
    encoding = detect_encoding(path)
    text = path.read_bytes().decode(encoding)
    reader = csv.DictReader(io.StringIO(text))
    rows = change(list(reader))
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=header or list(reader.fieldnames or []), extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding if encoding != "utf-8-sig" else "utf-8"))


def gp_files(sources: Path) -> list[Path]:
    return sorted((sources / "health").glob("*.csv"))


def spoil_every_other(column: str, value: str) -> Callable[[list[Row]], list[Row]]:
    """Every other row's `column` becomes `value`."""

    def change(rows: list[Row]) -> list[Row]:
        for i, row in enumerate(rows):
            if i % 2 == 0:
                row[column] = value
        return rows

    return change


def half_dates_unparseable(sources: Path, column: str = "Date of Birth") -> None:
    for path in gp_files(sources):
        edit_csv(path, spoil_every_other(column, "not known"))


def drop_column(path: Path, column: str) -> None:
    encoding = detect_encoding(path)
    header = next(csv.reader(io.StringIO(path.read_bytes().decode(encoding))))
    edit_csv(path, lambda rows: rows, [c for c in header if c != column])


def rename_household_column(sources: Path, old: str, new: str) -> None:
    """Rename a column header in every housing workbook's member sheet (header below titles)."""
    for path in sorted((sources / "housing").glob("*.xlsx")):
        book = load_workbook(path)
        sheet = book["Household Members"]
        for row in sheet.iter_rows(max_row=15):
            for cell in row:
                if cell.value == old:
                    cell.value = new
        book.save(path)
