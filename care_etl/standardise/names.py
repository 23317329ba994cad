"""Names: display forms keep accents; match keys fold them so Zoë and Zoe compare equal.

Display values are tidied (spaces, stray punctuation, capitals typed in capitals) but a name
already written in mixed case is trusted as written: only its owner knows "McDonald" from
"Mcdonald". Comparison is the job of `match_key`, which ignores case, accents and punctuation.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique, to_ascii

_NON_LETTERS = re.compile(r"[^A-Z ]+")
_SPACES = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "′": "'"})
_DASHES = str.maketrans({"‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-"})
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")

#: Values systems use for "no name": nulled rather than linked on.
_PLACEHOLDERS = frozenset(
    # Not "NA" or "NK": Na is a given name.
    {"UNKNOWN", "NOT KNOWN", "NOTKNOWN", "N/A", "N.A.", "N/K", "NONE", "NULL", "TBC"}
)
#: Surname particles written in lower case when they are not the first word.
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "le", "la", "ten",
     "ter", "bin", "ibn", "binti", "bint"}
)  # fmt: skip
#: "Mac" names that are not Mac + capitalised name (after Lingua::EN::NameCase).
_MAC_EXCEPTIONS = frozenset(
    {"macedo", "macevicius", "machado", "machar", "machin", "machlin", "macias", "maciulis",
     "mackie", "mackle", "macklin", "mackmin", "macquarie", "mackintosh", "macaulay"}
)  # fmt: skip
_MAC_NAME = re.compile(r"mac[a-z]{2,}[^aciozj]")

_TITLES = {
    "MR": "Mr",
    "MISTER": "Mr",
    "MRS": "Mrs",
    "MS": "Ms",
    "MISS": "Miss",
    "DR": "Dr",
    "DOCTOR": "Dr",
    "MX": "Mx",
}
#: Honorifics recognised at the start of a full name (moved to title, which keeps only _TITLES).
_HONORIFICS = frozenset(
    set(_TITLES)
    | {"PROF", "PROFESSOR", "REV", "REVD", "REVEREND", "SIR", "DAME", "LADY", "LORD", "MASTER",
       "FR", "FATHER", "SISTER", "CAPT", "CAPTAIN", "MADAM", "MADAME"}
)  # fmt: skip
_SUFFIXES = frozenset({"JR", "JNR", "JUNIOR", "SR", "SNR", "SENIOR", "II", "III", "IV"})


def _key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    folded = to_ascii(value.translate(_APOSTROPHES).translate(_DASHES)).upper()
    folded = folded.replace("-", " ").replace("'", "")
    folded = _SPACES.sub(" ", _NON_LETTERS.sub("", folded)).strip()
    return folded or None


def match_key(names: pd.Series) -> pd.Series:
    """Upper-case, Latin letters and single spaces only; null when nothing is left.

    Apostrophes become nothing ("O'Brien" -> "OBRIEN") and hyphens a space ("Smith-Jones" ->
    "SMITH JONES"), so spelling variants of punctuation do not count as disagreement during
    linkage. Accents fold to the base letter ("Zoë" -> "ZOE", "Seán" -> "SEAN") and other
    scripts to Latin letters ("Иван" -> "IVAN"), so the same name in two scripts can agree.
    """
    codes, uniques = pd.factorize(names, use_na_sentinel=True)
    keys = pd.Series([_key(u) for u in uniques] + [None], dtype=object)
    return pd.Series(keys.to_numpy()[codes], index=names.index, name=names.name, dtype=object)


def name_sound(words: pd.Series) -> pd.Series:
    """How each word of a match key sounds (Metaphone): Smith, Smyth and Smythe sound alike,
    as do Catherine and Kathryn, so a name heard rather than read can still be found.
    Metaphone rather than Soundex, which keeps the first letter (Catherine, Kathryn apart)."""
    import jellyfish

    codes, uniques = pd.factorize(words, use_na_sentinel=True)
    sounds = pd.Series([jellyfish.metaphone(u) or None for u in uniques] + [None], dtype=object)
    return pd.Series(sounds.to_numpy()[codes], index=words.index, name=words.name, dtype=object)


# --- display forms ---------------------------------------------------------------------


def _tidy(text: str) -> str:
    """NFC, one kind of apostrophe and hyphen, stray punctuation to spaces, spaces collapsed."""
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    text = text.translate(_APOSTROPHES).translate(_DASHES)
    kept = "".join(
        ch if ch in "-'" or ch.isalnum() or unicodedata.combining(ch) else " " for ch in text
    )
    kept = re.sub(r"\s*-[\s-]*", "-", kept)  # "Smith - Jones" -> "Smith-Jones"
    kept = re.sub(r"'+", "'", kept)
    words = (w.strip("-'") for w in kept.split())
    return " ".join(w for w in words if w)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _case_part(part: str) -> str:
    """One hyphen-free piece of a name typed in capitals or lower case, in name case."""
    lower = part.lower()
    if "'" in lower:
        head, _, tail = lower.partition("'")
        if len(head) == 1:  # O'Brien, D'Arcy
            return head.upper() + "'" + _case_part(tail)
        return _capitalise(head) + "'" + tail
    if lower.startswith("mc") and len(lower) > 2:
        return "Mc" + _capitalise(lower[2:])
    if _MAC_NAME.fullmatch(lower) and lower not in _MAC_EXCEPTIONS:
        return "Mac" + _capitalise(lower[3:])
    return _capitalise(lower)


def name_case(text: str) -> str:
    """Name case for text typed all in capitals or all in lower case; mixed case is kept."""
    if not (text.isupper() or text.islower()):
        return text
    words = []
    for position, word in enumerate(text.split(" ")):
        if position and word.lower() in _PARTICLES:
            words.append(word.lower())
        else:
            words.append("-".join(_case_part(p) for p in word.split("-")))
    return " ".join(words)


def _clean_name_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    if text.upper() in _PLACEHOLDERS:
        return None, "placeholder value"
    tidy = _tidy(text)
    if not any(ch.isalpha() for ch in tidy):
        return None, "no letters"
    reason = "contains digits" if any(ch.isdigit() for ch in tidy) else None
    return name_case(tidy), reason


def clean_name(values: pd.Series) -> Cleaned:
    """Given, middle or family names for display: tidied, capitals fixed, accents kept."""
    return map_unique(values, _clean_name_value)


def _clean_other_names_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    names, reasons = [], []
    for piece in text.split(";"):
        name, reason = _clean_name_value(piece)
        if name is not None and name not in names:
            names.append(name)
        if reason is not None and reason not in reasons:
            reasons.append(reason)
    reason = ", ".join(reasons) if reasons else None
    return ("; ".join(names) or None), reason


def clean_other_names(values: pd.Series) -> Cleaned:
    """Aliases and former names, ';'-separated: each cleaned like a name, rejoined with '; '."""
    return map_unique(values, _clean_other_names_value)


def _title_token(text: str) -> str:
    return re.sub(r"[^A-Z]", "", to_ascii(text).upper())


def _clean_title_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    title = _TITLES.get(_title_token(text))
    return (title, None) if title else (None, "not a recognised title")


def clean_title(values: pd.Series) -> Cleaned:
    """Title as one of Mr, Mrs, Ms, Miss, Dr, Mx; any other title is nulled with a reason."""
    return map_unique(values, _clean_title_value)


# --- full names ------------------------------------------------------------------------

FULL_NAME_PARTS: tuple[str, ...] = ("title", "given_name", "middle_names", "family_name")


def _take_title(words: list[str]) -> tuple[str | None, list[str]]:
    if len(words) > 1 and _title_token(words[0]) in _HONORIFICS:
        return words[0], words[1:]
    return None, words


#: One word that is two names run together, the second starting with a capital: OCR drops the
#: space between them ("Name: MatildaDavies"). A first part that is a surname prefix
#: (McLeod, MacDonald, DeVito, LeBlanc, FitzGerald) is one surname, not two names.
_GLUED = re.compile(r"([A-Z][a-z]+)([A-Z][A-Za-z'-]*[a-z][A-Za-z'-]*)")
_SURNAME_PREFIXES = _PARTICLES | {"mc", "mac", "fitz", "o", "st"}


def _glued(word: str) -> tuple[str, str] | None:
    """The given and family name of a word that runs them together, else None."""
    found = _GLUED.fullmatch(word)
    if found is None or found.group(1).lower() in _SURNAME_PREFIXES:
        return None
    return found.group(1), found.group(2)


def _split_family(words: list[str]) -> tuple[list[str], list[str]]:
    """Forenames and surname of `Forename Middle Surname`; particles stay with the surname."""
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _PARTICLES:
        start -= 1
    return words[:start], words[start:]


def parse_full_name_value(value: object) -> tuple[dict[str, str | None], str | None]:
    """Title, given, middle and family name (raw text) from one full name, and any reason."""
    parts: dict[str, str | None] = dict.fromkeys(FULL_NAME_PARTS)
    text = as_text(value)
    if text is None:
        return parts, None
    text = _SPACES.sub(" ", text.translate(_APOSTROPHES).replace(";", " "))
    reasons = []
    if "," in text:  # SURNAME, Forename Middle
        family_text, _, rest = text.partition(",")
        title, family = _take_title(family_text.split())
        forenames = rest.replace(",", " ").split()
        if title is None:
            title, forenames = _take_title(forenames)
    else:  # Forename Middle Surname
        title, words = _take_title(text.split())
        if len(words) > 1 and _title_token(words[-1]) in _SUFFIXES:
            words = words[:-1]
            reasons.append("generational suffix dropped")
        glued = _glued(words[0]) if len(words) == 1 else None
        if glued:
            words = list(glued)
            reasons.append("given and family names run together: split at the capital")
        forenames, family = _split_family(words) if len(words) > 1 else ([], words)
    if not forenames or not family:
        reasons.append("could not be split into given and family names")
    parts["title"] = title
    parts["given_name"] = forenames[0] if forenames else None
    parts["middle_names"] = " ".join(forenames[1:]) or None
    parts["family_name"] = " ".join(family) or None
    return parts, (", ".join(reasons) or None)


def parse_full_name(values: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Split full names (`SURNAME, Forename Middle` or `Forename Middle Surname`).

    Returns raw (uncleaned) parts in columns FULL_NAME_PARTS and a reason per row; clean the
    parts with `clean_name` and `clean_title` afterwards.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = [parse_full_name_value(u) for u in uniques]
    table = pd.DataFrame([p for p, _ in parsed] + [dict.fromkeys(FULL_NAME_PARTS)], dtype=object)
    take = np.where(codes < 0, len(uniques), codes)
    frame = table.iloc[take].set_axis(values.index)
    reasons = pd.Series([r for _, r in parsed] + [None], dtype=object).iloc[take]
    return frame[list(FULL_NAME_PARTS)], reasons.set_axis(values.index)
