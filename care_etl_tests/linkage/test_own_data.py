"""link() on a caller's own data: exports from other systems and other countries.

interfaces.md promises one row per record from any number of sources and any country's
records; docs/developer.md lists what link_records accepts beyond care_etl's standardised
records. These tests hand link() what such an export holds (year-first or month-name dates,
ZIP codes read as numbers, NHS numbers written back from a float column, a single record)
and twins named alike, and check what a person looking at the result would expect.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd

from care_etl.linkage import link, link_records

HOME = {"family_name": "OKAFOR", "address": "14 MILL LANE", "postcode": "LS6 2AB"}


def _person(source: str, given: str, born: str, **other: object) -> dict:
    return {"source": source, "source_record_id": "1", "given_name": given,
            "date_of_birth": born, **HOME, **other}  # fmt: skip


def _levels(*records: dict) -> dict[str, str]:
    """The field levels of the one scored pair of two records (linked or in review)."""
    result = link_records(pd.DataFrame(list(records)))
    pairs = pd.concat([result.links, result.review])
    assert len(pairs) == 1
    return {f: v["level"] for f, v in json.loads(pairs["evidence"].iloc[0])["fields"].items()}


def _persons(*records: dict) -> int:
    return link(pd.DataFrame(list(records)))["person_id"].nunique()


def test_one_record_links_without_a_warning() -> None:
    # numpy warned "Mean of empty slice" (no random pairs to estimate presence from).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = link(pd.DataFrame([_person("gp", "GRACE", "1984-06-02")]))
    assert len(out) == 1
