"""Decisions read back where the records moved under them, on PostgreSQL.

A pair held back by decisions that pull against an NHS number says why; a decision whose
record has since left the sources can still be shown with its audit.

A person of three records, two of one NHS number (a GP record and social care's) and a
housing record linked by the model. A reviewer says the housing record is not the GP
record's person but is social care's: the two same-NHS records can no longer be one person
without undoing a decision, so their pair goes to review. What the caseworker reads must
say a reviewer's decision holds it, never that it was linked on the NHS number.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from care_etl.review import store
from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows
from care_etl_tests.review.test_decisions import (
    SEED,
    cli,
    key,
    person_of,
    pick_model_links,
    ref,
    run,
)

GP, HOUSING, SOCIAL = "health_gp_registrations", "housing_tenancies", "social_care_case_management"


def _three_record_person(tables: dict[str, pd.DataFrame]) -> tuple[tuple, tuple, tuple]:
    """(GP, housing, social care) records of one person: GP and social care share an NHS
    number, the housing record joined them through the model."""
    links = tables["person_source_link"]
    for _, group in links.groupby("person_id"):
        if len(group) != 3 or set(group["source"]) != {GP, HOUSING, SOCIAL}:
            continue
        ids = dict(zip(group["source"], group["source_record_id"], strict=True))
        types = dict(zip(group["source"], group["link_type"], strict=True))
        if types[GP] == types[SOCIAL] == "nhs_number" and types[HOUSING] == "probabilistic":
            return (GP, ids[GP]), (HOUSING, ids[HOUSING]), (SOCIAL, ids[SOCIAL])
    pytest.fail("no GP + housing + social care person in the generated data")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_same_nhs_pair_held_by_a_decision_says_so(postgres_url: str, tmp_path: Path):
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=400, seed=SEED, scans=0)
    gp, housing, social = _three_record_person(run(sources, postgres_url, tmp_path))
    for pair, choice in (((housing, gp), "--no-link"), ((housing, social), "--link")):
        code, _, err = cli(
            "review", "decide", ref(pair[0]), ref(pair[1]), choice, "--reviewer", "T. Lead",
            "--reason", "checked with the family", "--database", postgres_url,
        )  # fmt: skip
        assert code == 0, err
    tables = run(sources, postgres_url, tmp_path)
    assert person_of(tables, housing) == person_of(tables, social) != person_of(tables, gp)
    queue = tables["review_queue"]
    row = queue[store.pair_keys(queue) == key((gp, social))]
    assert len(row) == 1
    evidence = json.loads(row["evidence"].iloc[0])
    assert evidence.get("capped") == "cannot_link" and "rule" not in evidence
    _, shown, _ = cli("review", "show", key((gp, social)), "--database", postgres_url)
    assert "Linked on the NHS number" not in shown
    assert "Held for review: a reviewer has kept these records' people apart." in shown
    _, listed, _ = cli("review", "list", "--database", postgres_url, "--limit", "1000")
    (line,) = [x for x in listed.splitlines() if key((gp, social)) in x]
    assert "reviewer kept apart" in line


def _remove_gp_record(sources: Path, record_id: str) -> None:
    """Delete a GP record's row from its practice file, as a deduplicated extract would."""
    practice, patient = record_id.split(":")
    path = sources / "health" / f"gp_registrations_{practice}.csv"
    rows, encoding = read_csv_rows(path)
    column = rows[0].index("Patient ID")
    write_csv_rows(path, [r for r in rows if not r or r[column] != patient], encoding)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_decision_whose_record_went_can_still_be_read_back(postgres_url: str, tmp_path: Path):
    """The reviewer's decision went stale because a record left the sources: `show` still
    prints the pair, the record that remains, and the audit; `decide` refuses the pair."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=400, seed=SEED, scans=0)
    first = run(sources, postgres_url, tmp_path)
    (pair,) = pick_model_links(first, 1)
    code, _, err = cli(
        "review", "decide", ref(pair[0]), ref(pair[1]), "--no-link", "--reviewer", "T. Lead",
        "--reason", "two sisters at one address", "--database", postgres_url,
    )  # fmt: skip
    assert code == 0, err
    gp = next(r for r in pair if r[0] == GP)
    _remove_gp_record(sources, gp[1])
    run(sources, postgres_url, tmp_path)
    code, shown, err = cli("review", "show", key(pair), "--database", postgres_url)
    assert code == 0, err
    assert f"({GP} {gp[1]}) is no longer in the index" in shown
    assert "two sisters at one address" in shown and "[stale]" in shown
    assert "record no longer indexed" in shown
    code, out, err = cli(
        "review", "decide", key(pair), "--link", "--reviewer", "T. Lead", "--reason", "r",
        "--database", postgres_url,
    )  # fmt: skip
    assert code == 2 and out == "" and f"record {GP}/{gp[1]} is not in the index" in err
