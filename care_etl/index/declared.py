"""Relationships a source declares between its own records (social care's `relationships`).

The readers bring person rows and lookups joined onto them, one row per person; a table of
pairs does not fit that shape, so it is read here, for the household tables only. A contract
declares one with a schema object of `role: relationship` whose first two columns that
reference the person object's key are the person and the related person, and whose first
other column is the relationship ("what the related person is to the person").
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from care_etl.contracts.model import Contract, SourceObject
from care_etl.errors import SourceReadError

DECLARED_COLUMNS = ["source", "source_record_id", "related_source_record_id", "relationship"]
log = logging.getLogger(__name__)


def read_declared(contracts: list[Contract], sources_dir: Path) -> pd.DataFrame:
    """Every declared relationship of every relational source; a table that fails is skipped."""
    frames = []
    for contract in contracts:
        for obj in contract.objects:
            if obj.role != "relationship" or contract.format != "sqlite":
                continue
            try:
                frames.append(_read(contract, obj, sources_dir))
            except SourceReadError as exc:
                log.warning("declared relationships not read: %s", exc)
    frames = [f for f in frames if len(f)]
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DECLARED_COLUMNS)
    )


def _read(contract: Contract, obj: SourceObject, sources_dir: Path) -> pd.DataFrame:
    from care_etl.sources.read import database_location
    from care_etl.sources.sql_reader import read_table

    person = contract.person_object.id
    refs = [c.name for c in obj.columns if c.references and c.references.split(".")[0] == person]
    kinds = [c.name for c in obj.columns if not c.references]
    if len(refs) < 2 or not kinds:
        raise SourceReadError(
            f"{contract.file}: schema/{obj.name}: a relationship object needs two columns "
            "referencing the person key and one naming the relationship"
        )
    url, label = database_location(contract, sources_dir)
    table = read_table(url, obj.physical_name, [refs[0], refs[1], kinds[0]], label=label)
    table = table.dropna(subset=[refs[0], refs[1]])
    return pd.DataFrame(
        {
            "source": contract.id,
            "source_record_id": table[refs[0]].astype(str),
            "related_source_record_id": table[refs[1]].astype(str),
            "relationship": table[kinds[0]],
        }
    )[DECLARED_COLUMNS]
