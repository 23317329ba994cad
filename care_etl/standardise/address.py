"""Addresses as one comparable line: `FLAT 3, 12 HIGH STREET, LONDON`.

Only safe rewrites: case, punctuation, spacing, a postcode repeated at the end (it has its own
field), and a few street-type abbreviations whose expansion is not in doubt.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique
from care_etl.standardise.postcode import is_valid_postcode

_ABBREVIATIONS = {
    "RD": "ROAD",
    "AVE": "AVENUE",
    "CL": "CLOSE",
    "CRES": "CRESCENT",
    "GDNS": "GARDENS",
}
_TRAILING_POSTCODE = re.compile(r"(?:^|\s)([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})$")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _clean_part(part: str) -> str:
    part = re.sub(r"['’‘`]", "", part)  # St John's -> ST JOHNS
    part = re.sub(r"[^A-Z0-9 ]", " ", part)
    words = [_ABBREVIATIONS.get(w, w) for w in part.split()]
    if len(words) > 1 and words[-1] == "ST":  # ST first is SAINT, last is STREET
        words[-1] = "STREET"
    return " ".join(words)


def split_address(value: object) -> tuple[str | None, str | None]:
    """The normalised address line and the postcode found at its end (raw), if any."""
    text = as_text(value)
    if text is None:
        return None, None
    parts = [p.strip() for p in _fold(text).upper().replace(";", ",").split(",")]
    parts = [p for p in parts if p]
    postcode = None
    match = _TRAILING_POSTCODE.search(parts[-1]) if parts else None
    if match and is_valid_postcode(match.group(1)):
        postcode = match.group(1)
        parts[-1] = parts[-1][: match.start(1)]
    cleaned = [c for c in (_clean_part(p) for p in parts) if c]
    return (", ".join(cleaned) or None), postcode


def _clean_address_value(value: object) -> tuple[str | None, str | None]:
    line, postcode = split_address(value)
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
