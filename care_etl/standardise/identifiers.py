"""NHS number, National Insurance number and UPRN: the identifiers that can link on their own.

Because a match on an identifier is strong evidence, a doubtful one is nulled (with the reason)
rather than kept: a wrong NHS number would merge two people.
"""

from __future__ import annotations

import operator
import re

import numpy as np
import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique

# --- NHS number --------------------------------------------------------------------------

_NHS_SEPARATORS = re.compile(r"[\s\-]+")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_FLOAT_TEXT = re.compile(r"([0-9]{10})\.0+")
_OCR_DIGITS = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2"})
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11 check digit for nine ASCII digits (weights 10..2); None when it would be 10."""
    total = sum(map(operator.mul, first_nine.encode("ascii"), _WEIGHTS)) - _ZERO_OFFSET
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(digits: str) -> bool:
    """True for 10 digits that pass modulus 11 and are not one repeated digit."""
    if not _TEN_DIGITS.fullmatch(digits) or digits.count(digits[0]) == 10:
        return False
    return nhs_check_digit(digits[:9]) == ord(digits[9]) - ord("0")


def _clean_nhs_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    if not _TEN_DIGITS.fullmatch(text):
        if match := _FLOAT_TEXT.fullmatch(text):
            text = match.group(1)  # 9434765919.0 from a numeric spreadsheet cell
        elif match := _SCIENTIFIC.fullmatch(text.upper()):  # 9.434765919E+09, as UPRNs
            text = _from_scientific(match.group(1), match.group(2) or "", int(match.group(3)))
            if text is None:
                return None, "stored in scientific notation, digits lost"
        text = _NHS_SEPARATORS.sub("", text.upper())
    if not _TEN_DIGITS.fullmatch(text):
        fixed = text.translate(_OCR_DIGITS)
        if len(fixed) == 10 and is_valid_nhs_number(fixed):
            return fixed, "corrected OCR characters"
        return None, "not 10 digits"
    if text.count(text[0]) == 10:
        return None, "placeholder (one repeated digit)"
    if not is_valid_nhs_number(text):
        return None, "failed modulus 11 check"
    return text, None


def clean_nhs_number(values: pd.Series) -> Cleaned:
    """NHS numbers as 10 digits that pass modulus 11; anything else null with the reason.

    Spaces and hyphens are dropped. Letters that OCR reads for digits (O, I, L, S, B, Z) are
    replaced only when the result then passes the check digit.
    """
    return map_unique(values, _clean_nhs_value, bulk=_bulk_nhs)


def ascii_digits(texts: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of the values are text of exactly `width` ASCII digits, and those digits (ints)."""
    is_text = np.fromiter((type(t) is str for t in texts), dtype=bool, count=len(texts))
    fixed = np.zeros(len(texts), dtype=bool)
    fixed[is_text] = [len(t) == width for t in texts[is_text]]
    candidates = np.flatnonzero(fixed)
    codes = np.array(list(texts[candidates]), dtype=f"U{width}").view(np.uint32)
    digits = codes.reshape(len(candidates), width).astype(np.int64) - ord("0")
    ok = ((digits >= 0) & (digits <= 9)).all(axis=1)
    fixed[candidates[~ok]] = False
    return fixed, digits[ok]


def _bulk_nhs(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ten-digit NHS numbers as written (nearly all of them), checked in one pass."""
    done, digits = ascii_digits(texts, 10)
    total = digits[:, :9] @ np.array(_WEIGHTS, dtype=np.int64)
    check = (11 - total % 11) % 11  # 11 becomes 0; 10 can never equal a digit
    repeated = (digits == digits[:, :1]).all(axis=1)
    valid = ~repeated & (check == digits[:, 9])
    reasons = np.where(
        repeated,
        "placeholder (one repeated digit)",
        np.where(valid, None, "failed modulus 11 check"),
    ).astype(object)
    clean = np.where(valid, texts[done], None).astype(object)
    return done, clean, reasons


# --- National Insurance number -------------------------------------------------------------

# HMRC: first letter not D F I Q U V; second not D F I O Q U V; some prefixes never issued.
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")
_NINO_UNUSED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _clean_nino_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    text = re.sub(r"[\s\-]+", "", text.upper())
    if not _NINO.fullmatch(text) or text[:2] in _NINO_UNUSED_PREFIXES:
        return None, "not a valid National Insurance number"
    return text, None


def clean_ni_number(values: pd.Series) -> Cleaned:
    """NI numbers as `AB123456C` (HMRC prefix rules, suffix A-D); anything else null."""
    return map_unique(values, _clean_nino_value)


# --- UPRN ----------------------------------------------------------------------------------

_UPRN_DECIMAL = re.compile(r"([0-9]+)(?:\.0*)?")
_SCIENTIFIC = re.compile(r"([0-9])(?:\.([0-9]*))?E\+?([0-9]+)")


def _from_scientific(mantissa_int: str, mantissa_frac: str, exponent: int) -> str | None:
    """Digits of a number in scientific notation, or None when the text dropped some."""
    digits = mantissa_int + mantissa_frac
    if len(digits) != exponent + 1:
        return None  # fewer significant digits shown than the number has
    return digits


def _clean_uprn_value(value: object) -> tuple[str | None, str | None]:
    text = as_text(value)
    if text is None:
        return None, None
    if not (text.isascii() and text.isdigit()):
        text = re.sub(r"\s+", "", text.upper())
    if text.isascii() and text.isdigit():
        digits = text
    elif match := _SCIENTIFIC.fullmatch(text):
        digits = _from_scientific(match.group(1), match.group(2) or "", int(match.group(3)))
        if digits is None:
            return None, "stored in scientific notation, digits lost"
    elif match := _UPRN_DECIMAL.fullmatch(text):
        digits = match.group(1)
    else:
        return None, "not a valid UPRN"
    digits = digits.lstrip("0")
    if not digits:
        return None, "not a valid UPRN"
    if len(digits) > 12:
        return None, "more than 12 digits"
    return digits, None


def clean_uprn(values: pd.Series) -> Cleaned:
    """UPRNs as text of 1-12 digits, leading zeros dropped (`100023000000.0` -> `100023000000`).

    A UPRN shown in scientific notation (`1.00023E+11`) has lost digits and cannot be trusted.
    """
    return map_unique(values, _clean_uprn_value)
