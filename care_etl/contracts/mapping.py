"""Map a source's raw rows onto the canonical person model, as its contract says."""

from __future__ import annotations

import numpy as np
import pandas as pd

from care_etl.contracts.model import Contract
from care_etl.sources.read import HISTORY_COLUMN, RawSource


def canonical_columns(contract: Contract) -> dict[str, list[str]]:
    """Canonical field -> the raw columns mapped to it, in contract order (lookups namespaced)."""
    mapping: dict[str, list[str]] = {}
    for obj in (contract.person_object, *contract.lookups):
        prefix = "" if obj is contract.person_object else f"{obj.id}."
        for col in obj.columns:
            if col.canonical:
                mapping.setdefault(col.canonical, []).append(prefix + col.name)
        history = obj.custom.get("historyAs")  # the rows rowFilter sets aside (sources.read)
        if history and prefix:
            mapping.setdefault(str(history), []).append(prefix + HISTORY_COLUMN)
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
    if not len(parts):
        return pd.Series(dtype=object)
    texts = [parts[c].astype(str).to_numpy(object) for c in key_columns]
    joined = texts[0]
    for text in texts[1:]:  # column by column: ':'.join of each row, without a row loop
        joined = joined + ":" + text
    return pd.Series(joined, index=parts.index, dtype=object).where(complete, None)


def _join_text(frame: pd.DataFrame) -> pd.Series:
    """Address lines joined in contract order, blanks skipped."""
    joined = np.full(len(frame), "", dtype=object)
    for column in frame.columns:  # column by column, without a row loop
        text = _stripped(frame[column])
        both = (joined != "") & (text != "")
        joined = np.where(both, joined + ", " + text, np.where(text != "", text, joined))
    return pd.Series(np.where(joined == "", None, joined), index=frame.index, dtype=object)


def _stripped(values: pd.Series) -> np.ndarray:
    """Each value as stripped text, '' when missing; each distinct text stripped once."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return values.astype(str).str.strip().where(values.notna(), "").to_numpy(object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([u.strip() for u in uniques] + [""], dtype=object)
    return texts[np.where(codes < 0, len(uniques), codes)]


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
