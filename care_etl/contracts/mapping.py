"""Map a source's raw rows onto the canonical person model, as its contract says."""

from __future__ import annotations

import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.sources.read import RawSource


def canonical_columns(contract: Contract) -> dict[str, list[str]]:
    """Canonical field -> the raw columns mapped to it, in contract order (lookups namespaced)."""
    mapping: dict[str, list[str]] = {}
    for obj in (contract.person_object, *contract.lookups):
        prefix = "" if obj is contract.person_object else f"{obj.id}."
        for col in obj.columns:
            if col.canonical:
                mapping.setdefault(col.canonical, []).append(prefix + col.name)
    return mapping


def to_canonical(raw: RawSource, contract: Contract) -> pd.DataFrame:
    """One row per raw row: source, source_record_id, canonical fields as text, lineage."""
    records = raw.records
    out = pd.DataFrame(index=records.index)
    out["source"] = contract.id
    out["source_record_id"] = _record_ids(records, contract.record_id_columns)
    for field, columns in canonical_columns(contract).items():
        present = [c for c in columns if c in records.columns]
        if not present:
            out[field] = None
        elif field == "address":
            out[field] = _join_text(records[present])
        else:
            out[field] = records[present].bfill(axis=1).iloc[:, 0]  # first non-blank column
    out["lineage"] = _lineage(records)
    out["ocr_confidence"] = records.get("_ocr_confidence")
    out["field_confidence"] = records.get("_field_confidence")
    out["read_error"] = records.get("_read_error")
    out["withdrawn"] = records["_withdrawn"].astype(bool) if len(records) else pd.Series(dtype=bool)
    return out.astype(object).where(out.notna(), None).astype({"withdrawn": bool})


def _record_ids(records: pd.DataFrame, key_columns: list[str]) -> pd.Series:
    parts = records[key_columns].astype(object)
    complete = parts.notna().all(axis=1)
    joined = parts.astype(str).agg(":".join, axis=1) if len(parts) else pd.Series(dtype=object)
    return joined.where(complete, None)


def _join_text(frame: pd.DataFrame) -> pd.Series:
    """Address lines joined in contract order, blanks skipped."""

    def join(values: list[object]) -> str | None:
        parts = [str(v).strip() for v in values if pd.notna(v) and str(v).strip()]
        return ", ".join(parts) or None

    return pd.Series([join(row) for row in frame.itertuples(index=False)], index=frame.index)


def _lineage(records: pd.DataFrame) -> pd.Series:
    if not len(records):
        return pd.Series(dtype=object)
    sheet = (
        records["_sheet"] if "_sheet" in records.columns else pd.Series(None, index=records.index)
    )
    return pd.Series(
        [
            f"{file} sheet {sh} row {row}" if isinstance(sh, str) else f"{file} row {row}"
            for file, sh, row in zip(records["_file"], sheet, records["_row"], strict=True)
        ],
        index=records.index,
    )
