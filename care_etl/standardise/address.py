"""Addresses as one comparable line: `FLAT 3, 12 HIGH STREET, LONDON`.

Only safe rewrites: case, punctuation, spacing, a postcode repeated at the end (it has its own
field), and a few street-type abbreviations whose expansion is not in doubt.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique, to_ascii
from care_etl.standardise.identifiers import _clean_uprn_value
from care_etl.standardise.postcode import _clean_postcode_value, is_valid_postcode

_ABBREVIATIONS = {
    "RD": "ROAD",
    "AVE": "AVENUE",
    "CL": "CLOSE",
    "CRES": "CRESCENT",
    "GDNS": "GARDENS",
}
_TRAILING_POSTCODE = re.compile(r"(?:^|\s)([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$")
_APOSTROPHES = str.maketrans("", "", "'’‘`")
_NOT_WORD = re.compile(r"[^A-Z0-9 ]")


@lru_cache(maxsize=1 << 16)  # parts repeat (towns, 'Flat 3'): each is cleaned once
def _clean_part(part: str) -> str:
    part = part.translate(_APOSTROPHES)  # St John's -> ST JOHNS
    part = _NOT_WORD.sub(" ", part)
    words = [_ABBREVIATIONS.get(w, w) for w in part.split()]
    if len(words) > 1 and words[-1] == "ST":  # ST first is SAINT, last is STREET
        words[-1] = "STREET"
    return " ".join(words)


def split_address(value: object) -> tuple[str | None, str | None]:
    """The normalised address line and the postcode found at its end (raw), if any."""
    text = as_text(value)
    if text is None:
        return None, None
    parts = [p.strip() for p in to_ascii(text).upper().replace(";", ",").split(",")]
    parts = [p for p in parts if p]
    postcode = None
    match = _TRAILING_POSTCODE.search(parts[-1]) if parts else None
    if match and is_valid_postcode(match.group(1)):
        postcode = match.group(1)
        parts[-1] = parts[-1][: match.start(1)]
    cleaned = [c for c in (_clean_part(p) for p in parts) if c]
    return (", ".join(cleaned) or None), postcode


def _clean_address_value(value: object) -> tuple[str | None, str | None]:
    return _clean_split(value, split_address(value))


def _clean_split(
    value: object, split: tuple[str | None, str | None]
) -> tuple[str | None, str | None]:
    line, postcode = split
    if line is None and postcode is None and as_text(value) is not None:
        return None, "no letters or digits"
    return line, None


def clean_address(values: pd.Series) -> Cleaned:
    """One upper-case line per address: parts trimmed, punctuation (bar commas) removed,
    a trailing postcode dropped, RD/AVE/ST/CL/CRES/GDNS written out."""
    return map_unique(values, _clean_address_value)


def address_postcode(values: pd.Series) -> pd.Series:
    """The postcode written at the end of each address (raw text), or null."""
    return map_unique(values, lambda v: (split_address(v)[1], None)).value


def clean_address_and_postcode(values: pd.Series) -> tuple[Cleaned, pd.Series]:
    """`clean_address` and `address_postcode` together, splitting each distinct address once
    (the split is most of the cost of both)."""
    splits: dict[object, tuple[str | None, str | None]] = {}

    def line(value: object) -> tuple[str | None, str | None]:
        splits[value] = found = split_address(value)
        return _clean_split(value, found)

    cleaned = map_unique(values, line)
    postcode = map_unique(values, lambda v: (splits[v][1], None)).value
    return cleaned, postcode


def _clean_history_value(value: object) -> tuple[str | None, str | None]:
    """One record's former addresses (canonical.PREVIOUS_ADDRESSES, a JSON list) with each
    entry's address, postcode and UPRN cleaned as the current ones are, so that linkage
    compares like with like; entries left with nothing to compare are dropped."""
    text = as_text(value)
    if text is None:
        return None, None
    try:
        entries = json.loads(text)
    except ValueError:
        return None, "not a list of addresses"
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None, "not a list of addresses"
    cleaned = []
    for entry in entries:
        line, trailing = split_address(entry.get("address"))
        postcode = _clean_postcode_value(entry.get("postcode") or trailing)[0]
        uprn = _clean_uprn_value(entry.get("uprn"))[0]
        found = {"address": line, "postcode": postcode, "uprn": uprn}
        found |= {k: as_text(entry.get(k)) for k in ("address_from", "address_to")}
        if line or postcode or uprn:
            cleaned.append({k: v for k, v in found.items() if v is not None})
    return (json.dumps(cleaned) if cleaned else None), None


def clean_previous_addresses(values: pd.Series) -> Cleaned:
    """Former addresses (a JSON list per record, canonical.PREVIOUS_ADDRESSES) cleaned entry by
    entry as `clean_address`, `clean_postcode` and `clean_uprn` clean the current address."""
    return map_unique(values, _clean_history_value)
