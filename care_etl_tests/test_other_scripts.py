"""A name written in another script is the same name: the pipeline links it, and keeps it.

Residents' names reach a council written as they were given: a GP practice may hold a
Ukrainian patient's name in Cyrillic where housing holds it in Latin letters. Here GP
names are rewritten in Cyrillic letters that read back as the same Latin letters (Adam,
Адам); every run is full. The index must link every record as it does with Latin names
(ids, link types and probabilities), and show the names as the practice wrote them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from care_etl.index.publish import person_field_value, person_source_link
from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows
from care_etl_tests.incremental.environment import index_each, published_tables

pytestmark = pytest.mark.slow

#: Latin letters and the Cyrillic letters that transliterate back to them.
_LATIN, _CYRILLIC = (
    "abdefgiklmnoprstuvzABDEFGIKLMNOPRSTUVZ",
    "абдефгиклмнопрстувзАБДЕФГИКЛМНОПРСТУВЗ",
)
_TO_CYRILLIC = str.maketrans(_LATIN, _CYRILLIC)


def _in_cyrillic(sources: Path) -> set[str]:
    """GP names made only of those letters, rewritten in Cyrillic (files saved as UTF-8);
    the names so written."""
    written = set()
    for path in sorted((sources / "health").glob("gp_registrations_*.csv")):
        rows, _ = read_csv_rows(path)
        header = rows[0]
        for row in rows[1:]:
            for column in ("Forename", "Surname"):
                name = row[header.index(column)]
                if name and set(name) <= set(_LATIN):
                    row[header.index(column)] = name.translate(_TO_CYRILLIC)
                    written.add(row[header.index(column)])
        write_csv_rows(path, rows, "utf-8")
    return written


def test_names_in_cyrillic_link_as_in_latin_letters_and_are_kept(tmp_path: Path) -> None:
    from care_etl.synthetic.generate import generate

    generate(tmp_path / "latin" / "sources", people=600, seed=41, scans=0)
    shutil.copytree(tmp_path / "latin", tmp_path / "cyrillic")
    written = _in_cyrillic(tmp_path / "cyrillic" / "sources")
    assert len(written) > 100
    folders = (tmp_path / "latin", tmp_path / "cyrillic")
    urls = index_each(folders, "other-scripts-test-key-not-a-secret")
    tables = (person_source_link, person_field_value)
    latin, cyrillic = (published_tables(urls[n], tables, set()) for n in ("latin", "cyrillic"))
    links = ["source", "source_record_id", "person_id", "link_type", "match_probability"]
    pd.testing.assert_frame_equal(
        cyrillic["person_source_link"][links], latin["person_source_link"][links], rtol=1e-12
    )
    shown = cyrillic["person_field_value"]
    names = shown[shown["field"].isin(["given_name", "family_name"])]["value"]
    assert len(written & set(names)) > 100  # as the practice wrote them, not transliterated
