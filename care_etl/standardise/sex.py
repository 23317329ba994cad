"""Sex or gender as recorded, folded to 'M', 'F', 'X' or None (not known).

'X' covers indeterminate and non-binary. Codes that mean "not known" (U, Unknown, Not recorded,
NHS 0 and 9) become None without a reason; a code we do not recognise is nulled with a reason.
"""

from __future__ import annotations

import re

import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique

_CODES: dict[str, str | None] = {
    "M": "M",
    "MALE": "M",
    "MAN": "M",
    "1": "M",
    "F": "F",
    "FEMALE": "F",
    "WOMAN": "F",
    "2": "F",
    "X": "X",
    "INDETERMINATE": "X",
    "NONBINARY": "X",
    "U": None,
    "UNKNOWN": None,
    "NOTKNOWN": None,
    "NK": None,
    "NOTRECORDED": None,
    "NOTSTATED": None,
    "NOTSPECIFIED": None,
    "9": None,
    "0": None,
}


def _clean_sex_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    code = re.sub(r"[^A-Z0-9]", "", re.sub(r"\.0+$", "", text.upper()))
    if code in _CODES:
        return _CODES[code], None
    return None, "not a recognised sex code"


def clean_sex(values: pd.Series) -> Cleaned:
    """Sex codes (M/F/X/U, Male/Female/Indeterminate/Non-binary/Not recorded, NHS 1/2/9/0)."""
    return map_unique(values, _clean_sex_value)
