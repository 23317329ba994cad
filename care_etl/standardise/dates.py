"""Dates of birth and death from every shape the sources write them in.

Day-first throughout (UK): 03/07/1948 is 3 July, and 07/25/1948 is an impossible date rather
than a guess at US order, unless the source's contract declares a US format. An impossible date
is nulled with the reason kept, never moved to a nearby real date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from care_etl.standardise._series import Cleaned, as_text, map_unique

#: Earliest plausible date for a person living in the records.
EARLIEST = dt.date(1890, 1, 1)

_EXCEL_EPOCH = dt.date(1899, 12, 30)  # 1900 date system, after Excel's 29/02/1900 bug
_EXCEL_MAX_SERIAL = 2958465  # 31/12/9999
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_DMY = re.compile(r"(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4}|\d{2})" + _TIME)
_DAY_MONTH_NAME = re.compile(
    r"(\d{1,2})(?:st|nd|rd|th)?[-/. ]*([a-z]+)\.?[-/., ]*(\d{4}|\d{2})" + _TIME
)
_MONTH_NAME_DAY = re.compile(r"([a-z]+)\.?[ ]+(\d{1,2})(?:st|nd|rd|th)?,?[ ]+(\d{4})")
_COMPACT = re.compile(r"\d{8}")
_SERIAL = re.compile(r"(\d{1,7})(?:\.(\d+))?")
_YEAR_ONLY = re.compile(r"1[89]\d\d|20\d\d")
_OCR_DIGITS = str.maketrans({"o": "0", "i": "1", "l": "1", "s": "5", "b": "8", "z": "2"})
_OCR_SHAPE = re.compile(r"[\doilsbz]{1,2}[-/. ][\doilsbz]{1,2}[-/. ][\doilsbz]{4}")


class _Rejected(Exception):
    """The text is clearly meant as a date, but does not give one; the message says why."""


def _make(year: int, month: int, day: int, two_digit_year: bool, today: dt.date) -> dt.date:
    if two_digit_year:
        year += 2000 if 2000 + year <= today.year else 1900
    try:
        return dt.date(year, month, day)
    except ValueError as error:
        raise _Rejected("impossible date") from error


def _from_serial(whole: str, fraction: str | None) -> dt.date | None:
    if _YEAR_ONLY.fullmatch(whole) and not (fraction or "").strip("0"):
        return None  # a bare year such as 1948 is not serial 1948 (1905)
    serial = int(whole)
    if len(whole.lstrip("0")) < 3 or serial > _EXCEL_MAX_SERIAL:
        return None  # one or two digits are more likely a stray day than a day in 1900
    if serial < 60:  # before Excel's fictitious 29/02/1900
        return _EXCEL_EPOCH + dt.timedelta(days=serial + 1)
    if serial == 60:
        raise _Rejected("impossible date")
    return _EXCEL_EPOCH + dt.timedelta(days=serial)


def _from_text(text: str, today: dt.date) -> tuple[dt.date | None, bool]:
    """Date from the shapes we know, and whether the year had two digits; None if unknown."""
    lower = text.lower()
    if match := _ISO.fullmatch(lower):
        year, month, day = (int(g) for g in match.groups())
        return _make(year, month, day, False, today), False
    if match := _DMY.fullmatch(lower):
        day, month, year = match.groups()
        short = len(year) == 2
        return _make(int(year), int(month), int(day), short, today), short
    if (match := _DAY_MONTH_NAME.fullmatch(lower)) and match.group(2) in _MONTHS:
        day, month, year = match.groups()
        short = len(year) == 2
        return _make(int(year), _MONTHS[month], int(day), short, today), short
    if (match := _MONTH_NAME_DAY.fullmatch(lower)) and match.group(1) in _MONTHS:
        month, day, year = match.groups()
        return _make(int(year), _MONTHS[month], int(day), False, today), False
    if _COMPACT.fullmatch(lower):
        if lower[:2] in ("18", "19", "20"):
            try:
                return _make(int(lower[:4]), int(lower[4:6]), int(lower[6:]), False, today), False
            except _Rejected:
                pass
        return _make(int(lower[4:]), int(lower[2:4]), int(lower[:2]), False, today), False
    if match := _SERIAL.fullmatch(lower):
        return _from_serial(*match.groups()), False
    return None, False


def _from_formats(text: str, formats: Sequence[str]) -> dt.date | None:
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _parse(value: object, formats: Sequence[str], today: dt.date) -> tuple[dt.date | None, str]:
    """The date, and a reason ('' when clean) for one raw value."""
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.date(), ""
    if isinstance(value, dt.date):
        return value, ""
    text = as_text(value)
    if text is None:
        return None, ""
    found = _from_formats(text, formats)
    if found is not None:
        return found, ""
    found, short = _from_text(text, today)
    if found is not None:
        return found, "two-digit year, century assumed" if short else ""
    if _YEAR_ONLY.fullmatch(text.split(".")[0]):
        raise _Rejected("year only, no day or month")
    if _OCR_SHAPE.fullmatch(text.lower()):
        found, _ = _from_text(text.lower().translate(_OCR_DIGITS), today)
        if found is not None:
            return found, "corrected OCR characters"
    return None, "not a recognised date"


def _date_cleaner(formats: Sequence[str], today: dt.date):
    def clean(value: object) -> tuple[pd.Timestamp | None, str | None]:
        try:
            found, note = _parse(value, formats, today)
        except _Rejected as why:
            return None, str(why)
        if found is None:
            return None, note or None
        if found < EARLIEST:
            return None, "impossible date (before 1890)"
        if found > today:
            return None, "impossible date (in the future)"
        return pd.Timestamp(found), note or None

    return clean


def clean_dates(
    values: pd.Series,
    formats: Sequence[str] | None = None,
    *,
    today: dt.date | None = None,
) -> Cleaned:
    """Dates as datetime64[ns] (NaT when missing or impossible), with a reason per row.

    Tries the contract's strptime `formats` first, then ISO (with a time part, as the Excel
    reader writes date cells), day-first numeric dates, dates with month names, Excel serial
    numbers (1900 date system) and, for OCR'd text, digits read as letters.
    """
    formats, today = tuple(formats or ()), today or dt.date.today()
    bulk = _bulk_dates(today) if set(formats) <= _BULK_SAFE_FORMATS else None
    return map_unique(values, _date_cleaner(formats, today), dates=True, bulk=bulk)


#: Contract formats under which the shapes read in bulk mean what `_from_text` reads them as
#: (each either fails on a shape or gives the same date).
_BULK_SAFE_FORMATS = frozenset({"%d/%m/%Y", "%Y-%m-%d"})
#: The shapes nearly every date is written in: (length, separator positions, separator,
#: positions of day, month and year), all else digits.
_BULK_SHAPES = (
    (10, (2, 5), "/", (0, 3, 6)),  # 03/07/1948
    (10, (4, 7), "-", (8, 5, 0)),  # 1948-07-03
    (19, (4, 7), "-", (8, 5, 0)),  # 1948-07-03 00:00:00 (time checked below)
)


def _bulk_dates(today: dt.date):
    """Read the common shapes of many distinct values at once: the same dates and reasons
    as the one-value path (`_date_cleaner`), which reads every other value."""

    def bulk(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        done = np.zeros(len(texts), dtype=bool)
        year = np.zeros(len(texts), dtype=np.int64)
        month, day = year.copy(), year.copy()
        for width, seps, sep, (d, m, y) in _BULK_SHAPES:
            rows, chars = _shape(texts, width, seps, sep, done)
            if not len(rows):
                continue
            digits = chars - ord("0")
            day[rows] = digits[:, d] * 10 + digits[:, d + 1]
            month[rows] = digits[:, m] * 10 + digits[:, m + 1]
            year[rows] = digits[:, y : y + 4] @ np.array([1000, 100, 10, 1])
            done[rows] = True
        return (done, *_judge(year[done], month[done], day[done], today))

    return bulk


def _shape(
    texts: np.ndarray, width: int, seps: tuple[int, ...], sep: str, taken: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows not yet taken that are text of this shape, and their characters' code points."""
    rows = np.flatnonzero(
        ~taken & np.fromiter((type(t) is str and len(t) == width for t in texts), bool, len(texts))
    )
    chars = np.array(list(texts[rows]), dtype=f"U{width}").view(np.uint32)
    chars = chars.reshape(len(rows), width).astype(np.int64)
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    expect = np.ones(width, dtype=bool)
    expect[list(seps)] = False
    if width == 19:  # the time part " HH:MM:SS" that the Excel reader writes
        expect[[10, 13, 16]] = False
        fits = (chars[:, 10] == ord(" ")) & (chars[:, 13] == ord(":")) & (chars[:, 16] == ord(":"))
    else:
        fits = np.ones(len(rows), dtype=bool)
    fits &= (digit == expect).all(axis=1) & (chars[:, list(seps)] == ord(sep)).all(axis=1)
    return rows[fits], chars[fits]


def _judge(
    year: np.ndarray, month: np.ndarray, day: np.ndarray, today: dt.date
) -> tuple[np.ndarray, np.ndarray]:
    """Dates (datetime64[ns], NaT when refused) and reasons, as `_date_cleaner` gives them."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    in_month = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month)
    number = year * 10000 + month * 100 + day
    early = real & (number < EARLIEST.year * 10000 + EARLIEST.month * 100 + EARLIEST.day)
    future = real & (number > today.year * 10000 + today.month * 100 + today.day)
    good = real & ~early & ~future
    reasons = np.full(len(year), None, dtype=object)
    reasons[~real] = "impossible date"
    reasons[early] = "impossible date (before 1890)"
    reasons[future] = "impossible date (in the future)"
    months = ((year - 1970) * 12 + month - 1)[good].astype("datetime64[M]")
    values = np.full(len(year), np.datetime64("NaT"), dtype="datetime64[ns]")
    values[good] = months.astype("datetime64[D]") + (day[good] - 1).astype("timedelta64[D]")
    return values, reasons


def check_death_after_birth(date_of_birth: pd.Series, date_of_death: pd.Series) -> Cleaned:
    """Null a date of death that falls before the date of birth (which of the two is wrong is
    unknown, so the birth date, which linkage leans on, is kept)."""
    before = (date_of_death < date_of_birth).fillna(False).to_numpy(bool)
    value = date_of_death.mask(before)
    reasons = np.where(before, "impossible date (before date of birth)", None).astype(object)
    issue = pd.Series(reasons, index=date_of_death.index, dtype=object)
    return Cleaned(value, issue)
