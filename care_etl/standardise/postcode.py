"""UK postcodes: validated against Royal Mail's format, written `E8 3QP`, OCR slips repaired.

The format rules (which letters may stand where) are what make a repair safe: the inward part
is always digit-letter-letter, so `E8 3QP` read as `EB 3QP` has only one valid reading.
"""

from __future__ import annotations

import itertools
import re

import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique

# Royal Mail: Q V X never first; I J Z never second; the A9A third letter and the AA9A fourth
# letter come from short lists; the inward letters never use C I K M O V.
_OUTWARD = r"[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRVWXY])"
_POSTCODE = re.compile(rf"(?:{_OUTWARD})\d[ABD-HJLNP-UW-Z]{{2}}|GIR0AA")

_TO_DIGIT = {"O": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2"}
_TO_LETTER = {"0": "O", "1": "IL", "5": "S", "8": "B", "2": "Z"}
#: Shapes of the outward part by length (A letter, 9 digit); the inward part is 9AA.
_OUTWARD_SHAPES = {2: ("A9",), 3: ("A99", "AA9", "A9A"), 4: ("AA99", "AA9A")}


def _format(compact: str) -> str:
    return compact[:-3] + " " + compact[-3:]


_NOT_ALPHANUMERIC = re.compile(r"[^A-Z0-9]")


def _compact(text: str) -> str:
    return _NOT_ALPHANUMERIC.sub("", text.upper())


def is_valid_postcode(text: str) -> bool:
    """True for a UK postcode in any case, with or without spaces."""
    return bool(_POSTCODE.fullmatch(_compact(text)))


def _options(char: str, kind: str) -> str:
    if kind == "9":
        return char if char.isdigit() else _TO_DIGIT.get(char, "")
    return char if char.isalpha() else _TO_LETTER.get(char, "")


def _ocr_readings(compact: str) -> set[str]:
    """Every valid postcode reachable by swapping look-alike letters and digits in place."""
    readings = set()
    for shape in _OUTWARD_SHAPES.get(len(compact) - 3, ()):
        pattern = shape + "9AA"
        choices = [_options(c, kind) for c, kind in zip(compact, pattern, strict=True)]
        if all(choices):
            for letters in itertools.product(*choices):
                candidate = "".join(letters)
                if _POSTCODE.fullmatch(candidate):
                    readings.add(candidate)
    return readings


def _clean_postcode_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    compact = _compact(text)
    if not compact:
        return None, "not a valid UK postcode"
    if _POSTCODE.fullmatch(compact):
        return _format(compact), None
    readings = _ocr_readings(compact)
    if len(readings) == 1:
        return _format(readings.pop()), "corrected OCR characters"
    return None, "not a valid UK postcode"


def clean_postcode(values: pd.Series) -> Cleaned:
    """Postcodes as `OUTWARD INWARD` in capitals; invalid ones null with the reason.

    When the text is not a postcode, look-alike characters (O/0, I/L/1, S/5, B/8, Z/2) are
    swapped where the format demands the other kind; the repair is kept only when exactly one
    valid postcode results.
    """
    return map_unique(values, _clean_postcode_value)


def _part(value: object, inward_chars: int) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    compact = _compact(text)
    if not _POSTCODE.fullmatch(compact):
        return None
    outward = compact[:-3]
    return outward + (" " + compact[-3:][:inward_chars] if inward_chars else "")


def postcode_sector(postcodes: pd.Series) -> pd.Series:
    """Sector (`E8 3`) of each valid postcode, for blocking and comparison; else null."""
    return map_unique(postcodes, lambda v: (_part(v, 1), None)).value


def postcode_district(postcodes: pd.Series) -> pd.Series:
    """District, i.e. the outward part (`E8`), of each valid postcode; else null."""
    return map_unique(postcodes, lambda v: (_part(v, 0), None)).value
