"""The whole pipeline on a generated population: nothing lost, counts that reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow


def _tables(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = ["person_index", "person_source_link", "quarantine", "review_queue"]
        tables = {n: pd.read_sql_table(n, conn) for n in names}
    engine.dispose()
    return tables


def _withdrawn_ids(generated: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{generated / 'social_care/case_management.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT person_id FROM persons WHERE is_deleted")).all()
    engine.dispose()
    return {str(r[0]) for r in rows}


def test_every_ground_truth_record_is_linked_or_quarantined_once(generated_run, generated):
    tables = _tables(generated_run["url"])
    truth = pd.read_csv(generated / "ground_truth.csv", dtype=str)
    placed = pd.concat(
        [
            tables["person_source_link"][["source", "source_record_id"]],
            tables["quarantine"][["source", "source_record_id"]],
        ]
    )
    assert not placed.duplicated().any()
    keys = set(map(tuple, placed.to_numpy()))
    missing = [
        k for k in map(tuple, truth[["source", "source_record_id"]].to_numpy()) if k not in keys
    ]
    assert missing == []
    assert len(placed) == len(truth)


def test_withdrawn_social_care_rows_are_counted_but_indexed_nowhere(generated_run, generated):
    withdrawn = _withdrawn_ids(generated)
    assert withdrawn, "the generator writes soft-deleted rows"
    tables = _tables(generated_run["url"])
    for name in ("person_source_link", "quarantine"):
        social = tables[name][tables[name]["source"] == "social_care_case_management"]
        assert not withdrawn & set(social["source_record_id"])
    source = generated_run["figures"]["sources"]["social_care_case_management"]
    assert source["records_withdrawn"] == len(withdrawn)


def test_coverage_reconciles_per_source_and_overall(generated_run):
    report = json.loads((generated_run["reports"] / "coverage.json").read_text())
    tables = _tables(generated_run["url"])
    assert set(report["sources"]) == {
        "health_gp_registrations",
        "housing_tenancies",
        "social_care_case_management",
        "paper_referrals",
    }
    for source, f in report["sources"].items():
        assert f["records_read"] > 0, source
        assert f["records_read"] == (
            f["records_linked"] + f["records_quarantined"] + f["records_withdrawn"]
        ), source
        linked = tables["person_source_link"]["source"].eq(source).sum()
        assert f["records_linked"] == linked
        assert f["records_unaccounted"] == 0, source
    assert report["records_unaccounted"] == 0

    assert report["persons"] == len(tables["person_index"])
    assert sum(report["persons_by_source_count"].values()) == report["persons"]
    assert (
        "Coverage of the person index" in (generated_run["reports"] / "coverage.html").read_text()
    )


def test_a_new_sqlite_index_is_readable_by_its_owner_only(generated_run):
    index = Path(generated_run["url"].removeprefix("sqlite:///"))
    assert index.stat().st_mode & 0o777 == 0o600


def test_linkage_joins_records_of_one_true_person(generated_run, generated):
    tables = _tables(generated_run["url"])
    truth = pd.read_csv(generated / "ground_truth.csv", dtype=str)
    links = tables["person_source_link"].merge(truth, on=["source", "source_record_id"])
    # Pairs of records that share a person_id should almost always share a true person.
    per_cluster = links.groupby("person_id")["true_person_id"].nunique()
    assert (per_cluster == 1).mean() > 0.97
    multi_source = tables["person_index"]["source_count"].gt(1).sum()
    assert multi_source > 0.3 * len(tables["person_index"])


def test_index_columns_are_as_interfaces_md_promises(generated_run):
    tables = _tables(generated_run["url"])
    assert {
        "person_id",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "nhs_number",
        "postcode",
        "uprn",
        "source_count",
    } <= set(tables["person_index"].columns)
    assert {"person_id", "source", "source_record_id", "link_type", "match_probability"} <= set(
        tables["person_source_link"].columns
    )
    assert {"source", "source_record_id", "reason"} <= set(tables["quarantine"].columns)
    assert {
        "left_source",
        "left_source_record_id",
        "right_source",
        "right_source_record_id",
        "match_probability",
        "evidence",
    } <= set(tables["review_queue"].columns)


def test_every_link_says_where_its_record_came_from(generated_run):
    links = _tables(generated_run["url"])["person_source_link"]
    assert links["lineage"].notna().all()
    # Relative to the sources folder, so the index does not depend on where it ran.
    assert not links["lineage"].str.startswith("/").any()
    health = links.loc[links["source"] == "health_gp_registrations", "lineage"]
    assert health.str.fullmatch(r"health/gp_registrations_\w+\.csv row \d+").all()
    housing = links.loc[links["source"] == "housing_tenancies", "lineage"]
    assert housing.str.fullmatch(
        r"housing/tenancies_\w+\.xlsx sheet Household Members row \d+"
    ).all()


def test_values_nulled_by_standardisation_keep_their_reason(generated_run):
    links = _tables(generated_run["url"])["person_source_link"]
    issues = links["quality_issues"].dropna()
    assert issues.str.contains("nhs_number: failed modulus 11 check").any()
    # Reasons name the field and the rule, never a value: no digits in them.
    assert not issues.str.contains(r"\d{6,}").any()


def test_paper_records_carry_their_ocr_confidence(generated_run):
    links = _tables(generated_run["url"])["person_source_link"]
    paper = links[links["source"] == "paper_referrals"]
    assert len(paper)
    scanned = paper["ocr_confidence"].dropna()
    assert len(scanned) >= 1
    assert scanned.between(0, 1).all()
    # Every paper record, scanned or bureau text, says how sure the reading of each field is.
    fields = paper["field_confidence"].map(json.loads)
    assert fields.map(lambda f: 0 <= f["Date of Birth"] <= 1).all()
    assert links.loc[links["source"] != "paper_referrals", "field_confidence"].isna().all()
