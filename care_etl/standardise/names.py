"""Names: display forms keep accents; match keys fold them so Zoë and Zoe compare equal."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

_NON_LETTERS = re.compile(r"[^A-Z ]+")
_SPACES = re.compile(r"\s+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def match_key(names: pd.Series) -> pd.Series:
    """Upper-case, accent-folded, letters and single spaces only; null when nothing is left.

    Hyphens and apostrophes become nothing ("O'Brien" -> "OBRIEN"), so spelling variants of
    punctuation do not count as disagreement during linkage.
    """

    def key(value: object) -> str | None:
        if not isinstance(value, str):
            return None
        folded = _fold(value).upper().replace("-", " ").replace("'", "").replace("’", "")
        folded = _SPACES.sub(" ", _NON_LETTERS.sub("", folded)).strip()
        return folded or None

    return names.map(key).astype(object)
