"""Change a generated sources folder as a new delivery would: some records added, some
removed, some corrected, in every source (every file of the CSV and Excel sources).

Shared by the incremental tests and benchmarks/bench_incremental.py.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Changes:
    """How many records of each source were added, removed and corrected."""

    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    corrected: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.added.values()) + sum(self.removed.values()) + sum(self.corrected.values())


def change_sources(sources: Path, share: float = 0.01, seed: int = 1) -> Changes:
    """Change about `share` of each source's records: a third added, removed, corrected."""
    rng = np.random.default_rng(seed)
    changes = Changes()
    _health(sources, share, rng, changes)
    _housing(sources, share, rng, changes)
    _social_care(sources, share, rng, changes)
    _paper(sources, share, rng, changes)
    return changes


def _split(count: int, share: float) -> tuple[int, int, int]:
    """How many to add, remove and correct: `share` of `count`, at least one of each."""
    each = max(1, round(count * share / 3))
    return each, each, each


def _note(changes: Changes, source: str, added: int, removed: int, corrected: int) -> None:
    for kind, n in (("added", added), ("removed", removed), ("corrected", corrected)):
        bucket = getattr(changes, kind)
        bucket[source] = bucket.get(source, 0) + n


def read_csv_rows(path: Path) -> tuple[list[list[str]], str]:
    """A GP file's rows as text, and the encoding it came in (to write it back alike)."""
    raw = path.read_bytes()
    encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "cp1252", raw.decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline=""))), encoding


def write_csv_rows(path: Path, rows: list[list[str]], encoding: str) -> None:
    """Rows written back as read_csv_rows read them: the same encoding, one line each."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


def _health(sources: Path, share: float, rng: np.random.Generator, changes: Changes) -> None:
    for path in sorted((sources / "health").glob("gp_registrations_*.csv")):
        rows, encoding = read_csv_rows(path)
        header, body = rows[0], rows[1:]
        if len(body) < 6:
            continue
        add, remove, correct = _split(len(body), share)
        picked = rng.choice(len(body), size=remove + correct, replace=False)
        for i in picked[remove:]:
            body[i][header.index("Forename")] = body[i][header.index("Forename")] + "e"
        new = [list(body[i]) for i in rng.choice(len(body), size=add, replace=False)]
        for n, row in enumerate(new):
            row[header.index("Patient ID")] = f"PNEW{path.stem[-6:]}{n:05d}"
            row[header.index("Surname")] = row[header.index("Surname")] + "son"
        removed = set(picked[:remove].tolist())
        kept = [r for i, r in enumerate(body) if i not in removed]
        write_csv_rows(path, [header, *kept, *new], encoding)
        _note(changes, "health_gp_registrations", add, remove, correct)


def _housing(sources: Path, share: float, rng: np.random.Generator, changes: Changes) -> None:
    import openpyxl

    for number, path in enumerate(sorted((sources / "housing").glob("tenancies_*.xlsx"))):
        book = openpyxl.load_workbook(path)
        sheet = book["Household Members"]
        header = [c.value for c in sheet[1]]
        count = sheet.max_row - 1
        if count < 6:
            continue
        add, remove, correct = _split(count, share)
        picked = rng.choice(np.arange(2, sheet.max_row + 1), size=remove + correct, replace=False)
        name = header.index("Name") + 1
        for row in picked[remove:]:
            cell = sheet.cell(row=int(row), column=name)
            cell.value = f"{cell.value}e"
        copies = rng.choice(np.arange(2, sheet.max_row + 1), size=add, replace=False)
        values = [[c.value for c in sheet[int(r)]] for r in copies]
        for row in sorted((int(r) for r in picked[:remove]), reverse=True):
            sheet.delete_rows(row)
        ref = header.index("Person Ref")
        for n, row in enumerate(values):
            # A new reference as the system writes them (HM- and seven digits), beyond the
            # generator's: a new household member, not a feed the checks must block.
            row[ref] = f"HM-9{number:02d}{n:04d}"
            sheet.append(row)
        book.save(path)
        _note(changes, "housing_tenancies", add, remove, correct)


def _social_care(sources: Path, share: float, rng: np.random.Generator, changes: Changes) -> None:
    conn = sqlite3.connect(sources / "social_care" / "case_management.db")
    try:
        ids = [r[0] for r in conn.execute("SELECT person_id FROM persons WHERE NOT is_deleted")]
        add, remove, correct = _split(len(ids), share)
        picked = [int(i) for i in rng.choice(ids, size=remove + correct + add, replace=False)]
        gone, fixed, copied = picked[:remove], picked[remove : remove + correct], picked[-add:]
        conn.executemany("DELETE FROM persons WHERE person_id = ?", [(i,) for i in gone])
        conn.executemany(
            "UPDATE persons SET forename = forename || 'e' WHERE person_id = ?",
            [(i,) for i in fixed],
        )
        top = conn.execute("SELECT MAX(person_id) FROM persons").fetchone()[0]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(persons)")]
        others = ", ".join(c for c in columns if c != "person_id")
        for n, source_id in enumerate(copied, start=1):
            conn.execute(
                f"INSERT INTO persons (person_id, {others}) "
                f"SELECT ?, {others} FROM persons WHERE person_id = ?",
                (top + n, source_id),
            )
        _social_care_history(conn, sorted(set(ids) - set(picked)), max(correct, 2), rng)
        conn.commit()
    finally:
        conn.close()
    _note(changes, "social_care_case_management", add, remove, correct)


def _social_care_history(
    conn: sqlite3.Connection, ids: list[int], count: int, rng: np.random.Generator
) -> None:
    """Change only the address history of `count` persons with an ended address (untouched
    otherwise): one ended address ends a day earlier, or (every other one) becomes the
    current address of someone else, whose household it must not join. Counted as
    corrections of the person's record (previous_addresses changes)."""
    ended = sorted(
        {r[0] for r in conn.execute("SELECT person_id FROM addresses WHERE end_date IS NOT NULL")}
        & set(ids)
    )
    homes = conn.execute(
        "SELECT address_text, postcode, uprn FROM addresses WHERE end_date IS NULL "
        "ORDER BY address_id"
    ).fetchall()
    picked = rng.choice(ended, size=min(count, len(ended)), replace=False)
    for n, person in enumerate(int(p) for p in picked):
        row = conn.execute(
            "SELECT MIN(address_id) FROM addresses WHERE person_id = ? AND end_date IS NOT NULL",
            (person,),
        ).fetchone()[0]
        if n % 2 == 0:
            conn.execute(
                "UPDATE addresses SET end_date = date(end_date, '-1 day') WHERE address_id = ?",
                (row,),
            )
        else:
            text, postcode, uprn = homes[int(rng.integers(len(homes)))]
            conn.execute(
                "UPDATE addresses SET address_text = ?, postcode = ?, uprn = ? "
                "WHERE address_id = ?",
                (text, postcode, uprn, row),
            )


def _paper(sources: Path, share: float, rng: np.random.Generator, changes: Changes) -> None:
    files = sorted((sources / "paper").glob("REF-*.txt"))
    add, remove, correct = _split(len(files), share)
    picked = rng.choice(len(files), size=remove + correct + add, replace=False)
    for i in picked[:remove]:
        files[i].unlink()
    for i in picked[remove : remove + correct]:
        lines = files[i].read_text(encoding="utf-8").split("\n")
        at = next(k for k, line in enumerate(lines) if line.startswith("Name:"))
        lines[at] = lines[at] + "e"
        files[i].write_text("\n".join(lines), encoding="utf-8")
    for n, i in enumerate(picked[remove + correct :]):
        text = files[i].read_text(encoding="utf-8")
        (sources / "paper" / f"REF-9{n:05d}.txt").write_text(text, encoding="utf-8")
    _note(changes, "paper_referrals", add, remove, correct)
