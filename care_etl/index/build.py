"""Turn linked records into the index tables: one golden row per person, one link per record,
every value with its provenance, and who lives with whom."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from care_etl.index import households
from care_etl.index.golden import (
    RECORDED_ON,
    Trust,
    at_current_address,
    choose,
    field_values,
    golden_values,
    parse_dates,
    sort_rows,
)
from care_etl.index.ids import HISTORY_COLUMNS
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

#: Fields whose every value is kept in person_field_value (former names, previous addresses).
PROVENANCE_FIELDS = (
    *GOLDEN_FIELDS,
    "title",
    "middle_names",
    "other_names",
    "address",
    "ni_number",
    "date_of_death",
)

#: person_field_value's fields whose every word person_name_word holds, for `find --name`.
NAME_FIELDS = ("given_name", "middle_names", "family_name", "other_names")

#: person_source_link's columns, in its order.
LINK_COLUMNS = [
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
    person_field_value: pd.DataFrame = field(default_factory=pd.DataFrame)
    person_name_word: pd.DataFrame = field(default_factory=pd.DataFrame)
    person_address: pd.DataFrame = field(default_factory=pd.DataFrame)
    household: pd.DataFrame = field(default_factory=pd.DataFrame)
    relationship: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Every indexed record's service involvements (declared.read_involvements), always whole.
    service_involvement: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: This run's rows only: the table is appended to, never replaced.
    person_id_history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=HISTORY_COLUMNS)
    )

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {
            "person_index": self.person_index,
            "person_source_link": self.person_source_link,
            "review_queue": self.review_queue,
            "quarantine": self.quarantine,
            "person_field_value": self.person_field_value,
            "person_name_word": self.person_name_word,
            "person_address": self.person_address,
            "household": self.household,
            "relationship": self.relationship,
            "service_involvement": self.service_involvement,
            "person_id_history": self.person_id_history,
        }


@dataclass
class PublishedIndex:
    """Rows per table as published, and the coverage figures: what the report step reads
    (the tables themselves are in the database; passing them on would only cost Dagster a
    pickle of every row between the two steps)."""

    rows: dict[str, int]
    figures: dict[str, Any]


def staged_records(staged: Sequence[StagedSource]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every source's accepted records, and every quarantined row."""
    frames = [s.records for s in staged]
    if frames and all(set(f.columns) == set(frames[0].columns) for f in frames):
        # the same columns in another order make pandas align them, at twice the cost
        frames = [
            f if f.columns.equals(frames[0].columns) else f[frames[0].columns] for f in frames
        ]
    records = pd.concat(frames, ignore_index=True)
    rejected = [s.quarantine for s in staged if len(s.quarantine)]
    quarantine = (
        pd.concat(rejected, ignore_index=True)
        if rejected
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    return records, quarantine


def index_tables(
    staged: Sequence[StagedSource],
    linked: LinkageResult,
    trust: Trust | None = None,
    declared: pd.DataFrame | None = None,
) -> IndexTables:
    """The index of every source's accepted records, their links and every quarantined row."""
    records, quarantine = staged_records(staged)
    return build_index(records, linked.assignments, linked.review, quarantine, trust, declared)


def build_index(
    records: pd.DataFrame,
    assignments: pd.DataFrame,
    review: pd.DataFrame,
    quarantine: pd.DataFrame,
    trust: Trust | Sequence[str] | None = None,
    declared: pd.DataFrame | None = None,
) -> IndexTables:
    """Golden values by the rules of golden.py; every other value kept as an alternative.

    `declared`: relationships a source declares between its own records (source,
    source_record_id, related_source_record_id, relationship), if it has any.
    """
    linked = link_records(records, assignments)
    return tables_from_linked(linked, review, quarantine, trust, declared)


def link_records(records: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """Each record with its person (and link columns), its date parsed once for all uses."""
    keys = ["source", "source_record_id"]
    extra = [c for c in assignments.columns if c not in records.columns or c in keys]
    if _in_step(records, assignments, keys):  # what the join gives, without joining
        added = assignments[[c for c in extra if c not in keys]].reset_index(drop=True)
        linked = pd.concat([records, added], axis=1)
    else:
        linked = records.merge(assignments[extra], on=keys, how="inner", validate="one_to_one")
    if RECORDED_ON in linked.columns:  # parsed once for golden values and addresses alike
        linked[RECORDED_ON] = parse_dates(linked[RECORDED_ON])
    return linked


def _in_step(records: pd.DataFrame, assignments: pd.DataFrame, keys: list[str]) -> bool:
    """Whether the assignments name the records' keys row for row, each once (linkage keeps
    the records' order): the join is then a side-by-side copy (half a second at 100k)."""
    if len(records) != len(assignments) or not records.index.equals(pd.RangeIndex(len(records))):
        return False
    for key in keys:
        if not np.array_equal(records[key].to_numpy(object), assignments[key].to_numpy(object)):
            return False
    return not records.duplicated(keys).any()


def service_involvements(involvements: pd.DataFrame, linked: pd.DataFrame) -> pd.DataFrame:
    """The involvements of records the index holds: a withdrawn or quarantined record's
    special-category rows stay out of it."""
    keys = ["source", "source_record_id"]
    held = pd.MultiIndex.from_frame(linked[keys].astype(str))
    mine = pd.MultiIndex.from_frame(involvements[keys].astype(str)).isin(held)
    return sort_rows(involvements[mine], [*keys, "start_date", "service"])


def link_table(linked: pd.DataFrame) -> pd.DataFrame:
    """person_source_link: one row per linked record."""
    return sort_rows(linked.reindex(columns=LINK_COLUMNS), ["person_id", "source"])


def name_words(values: pd.DataFrame) -> pd.DataFrame:
    """person_name_word: each distinct word of each person's names (person_field_value rows
    of NAME_FIELDS), as match_key spells it, with how it sounds."""
    from care_etl.standardise import match_key, name_sound

    names = values[values["field"].isin(NAME_FIELDS)]
    words = match_key(names["value"]).str.split().explode().dropna()
    found = pd.DataFrame(
        {"word": words.to_numpy(), "person_id": names["person_id"].loc[words.index].to_numpy()}
    ).drop_duplicates(ignore_index=True)
    return found.assign(sound=name_sound(found["word"]))


def tables_from_linked(
    linked: pd.DataFrame,
    review: pd.DataFrame,
    quarantine: pd.DataFrame,
    trust: Trust | Sequence[str] | None = None,
    declared: pd.DataFrame | None = None,
    address_keys: pd.Series | None = None,
    former_keys: pd.Series | None = None,
) -> IndexTables:
    """The tables of the persons in `linked` (link_records); `address_keys` and `former_keys`
    as in households.build, when `linked` holds only some persons' records."""
    if not isinstance(trust, Trust):
        trust = Trust(tuple(trust or DEFAULT_TRUST))
    home = households.build(linked, trust, declared, address_keys, former_keys)
    candidates = choose(field_values(linked, PROVENANCE_FIELDS), trust)
    candidates = at_current_address(candidates, home.person_address, trust)
    persons = pd.DataFrame(
        {"person_id": pd.Series(sorted(linked["person_id"].unique()), dtype=object)}
    )
    golden = golden_values(candidates, (*GOLDEN_FIELDS, "address"))
    persons = persons.merge(golden, on="person_id", how="left")
    counts = linked.groupby("person_id").agg(
        source_count=("source", "nunique"), record_count=("source", "size")
    )
    persons = persons.merge(counts, on="person_id", how="left")
    return IndexTables(
        person_index=persons,
        person_source_link=link_table(linked),
        review_queue=review.copy(),
        quarantine=quarantine.copy(),
        person_field_value=candidates.drop(columns=["typed"]),
        person_name_word=name_words(candidates),
        person_address=home.person_address,
        household=home.household,
        relationship=home.relationship,
    )
