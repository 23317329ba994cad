"""Turn linked records into the index tables: one golden row per person, one link per record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from care_etl.quality.staging import QUARANTINE_COLUMNS, StagedSource

if TYPE_CHECKING:  # recordlinkage (and scikit-learn) load only when linking
    from care_etl.linkage import LinkageResult

#: Fields of person_index chosen from a person's records (interfaces.md).
GOLDEN_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "nhs_number",
    "postcode",
    "uprn",
)

#: When values tie, the source earlier in this list wins. Sources not listed come after.
DEFAULT_TRUST = (
    "social_care_case_management",
    "health_gp_registrations",
    "housing_tenancies",
    "paper_referrals",
)


@dataclass
class IndexTables:
    person_index: pd.DataFrame
    person_source_link: pd.DataFrame
    review_queue: pd.DataFrame
    quarantine: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {
            "person_index": self.person_index,
            "person_source_link": self.person_source_link,
            "review_queue": self.review_queue,
            "quarantine": self.quarantine,
        }


@dataclass
class PublishedIndex:
    """The tables as published, and the coverage figures computed from them."""

    tables: dict[str, pd.DataFrame]
    figures: dict[str, Any]


def index_tables(staged: Sequence[StagedSource], linked: LinkageResult) -> IndexTables:
    """The index of every source's accepted records, their links and every quarantined row."""
    records = pd.concat([s.records for s in staged], ignore_index=True)
    rejected = [s.quarantine for s in staged if len(s.quarantine)]
    quarantine = (
        pd.concat(rejected, ignore_index=True)
        if rejected
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    return build_index(records, linked.assignments, linked.review, quarantine)


def build_index(
    records: pd.DataFrame,
    assignments: pd.DataFrame,
    review: pd.DataFrame,
    quarantine: pd.DataFrame,
    trust: Sequence[str] = DEFAULT_TRUST,
) -> IndexTables:
    """Golden values are the most common non-null value per person; ties go to the trusted source."""
    keys = ["source", "source_record_id"]
    linked = records.merge(assignments, on=keys, how="inner", validate="one_to_one")
    rank = {source: i for i, source in enumerate(trust)}
    linked["_trust"] = linked["source"].map(rank).fillna(len(rank)).astype(int)
    persons = pd.DataFrame({"person_id": sorted(linked["person_id"].unique())})
    for field in GOLDEN_FIELDS:
        persons = persons.merge(_golden(linked, field), on="person_id", how="left")
    counts = linked.groupby("person_id").agg(
        source_count=("source", "nunique"), record_count=("source", "size")
    )
    persons = persons.merge(counts, on="person_id", how="left")
    link_columns = [
        "person_id",
        "source",
        "source_record_id",
        "link_type",
        "match_probability",
        "lineage",
        "ocr_confidence",
        "field_confidence",
        "quality_issues",
    ]
    return IndexTables(
        person_index=persons,
        person_source_link=linked[link_columns].sort_values(["person_id", "source"]),
        review_queue=review.copy(),
        quarantine=quarantine.copy(),
    )


def _golden(linked: pd.DataFrame, field: str) -> pd.DataFrame:
    values = linked[["person_id", field, "_trust"]].dropna(subset=[field])
    if values.empty:
        return pd.DataFrame({"person_id": [], field: []})
    tally = (
        values.groupby(["person_id", field], sort=False)
        .agg(votes=("_trust", "size"), best_trust=("_trust", "min"))
        .reset_index()
        .sort_values(["person_id", "votes", "best_trust"], ascending=[True, False, True])
    )
    return tally.drop_duplicates("person_id")[["person_id", field]]
