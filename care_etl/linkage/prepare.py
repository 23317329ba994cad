"""Comparison keys: the canonical fields reduced to the forms that blocking and comparing use.

Standardisation has already decided what each value is; this module only derives keys from
it (name match keys, date components, postcode without spaces), so that every later step
works on plain columns and never re-parses a value.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import unicodedata

import numpy as np
import pandas as pd

from care_etl.errors import CareEtlError
from care_etl.linkage import nicknames
from care_etl.linkage.cluster import record_keys
from care_etl.standardise._series import to_ascii
from care_etl.standardise.dates import clean_dates
from care_etl.standardise.names import match_key, parse_full_name

log = logging.getLogger(__name__)

#: Input columns linkage reads, besides the keys; any may be absent.
INPUT_FIELDS: tuple[str, ...] = (
    "nhs_number",
    "given_name",
    "middle_names",
    "family_name",
    "other_names",
    "date_of_birth",
    "dob_estimated",
    "sex",
    "postcode",
    "uprn",
    "address",
)

#: Further input columns: a record's former addresses (canonical.PREVIOUS_ADDRESSES). Kept
#: out of INPUT_FIELDS, whose values make the review fingerprint of every record: adding a
#: field there would change every fingerprint and send every decision back to review.
HISTORY_FIELDS: tuple[str, ...] = ("previous_addresses",)
#: Further input columns, kept out of INPUT_FIELDS for the same reason: when the record's
#: address began (or, failing that, the day the record was made) and when it ended, as the
#: source wrote them. Two records at two addresses, one ended before the other was seen,
#: show a move (care_etl.linkage.compare.AddressPeriodsComparison).
PERIOD_FIELDS: tuple[str, ...] = ("address_from", "address_to", "recorded_on")
#: Days are counted from this date, so that every date of a person's life is positive.
_DAY_ZERO = np.datetime64("1800-01-01", "D")
#: Former addresses kept per record, most recent first: a person rarely has more that
#: another source still shows.
FORMER_SLOTS = 3
#: Per former address slot i (1..FORMER_SLOTS): its UPRN, address and postcode keys, formed
#: as the current ones are so that they share their codes.
FORMER_KEYS: tuple[tuple[str, str, str], ...] = tuple(
    (f"former_uprn{i}_key", f"former_address{i}_key", f"former_postcode{i}_key")
    for i in range(1, FORMER_SLOTS + 1)
)

_ZIP_PLUS_FOUR = re.compile(r"([0-9]{5})-[0-9]{4}")
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
#: 1948-02-14, 19480214, 1948/02/14 or 1948.02.14 (year first, as written in East Asia).
_ISO_DATE = r"^\s*(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})"
#: 14/02/1948, 14.02.1948, 14-02-1948 or 14/02/48: day and month in an order
#: _numeric_dates decides.
_NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")
_TRUE_TEXT = frozenset({"TRUE", "T", "Y", "YES", "1"})


def check_keys(records: pd.DataFrame) -> None:
    """Linkage needs one row per (source, source_record_id): anything else is an input error."""
    if not isinstance(records, pd.DataFrame):
        raise CareEtlError(f"linkage input: a pandas DataFrame, not {type(records).__name__}")
    if records.columns.nlevels > 1:
        raise CareEtlError(
            "linkage input: the columns have several header levels; give one name a column"
        )
    repeated = records.columns[records.columns.duplicated()]
    if len(repeated):
        raise CareEtlError(f"linkage input: column '{repeated[0]}' appears more than once")
    for column in ("source", "source_record_id"):
        if column not in records.columns:
            raise CareEtlError(f"linkage input: column '{column}' is missing")
        missing = _blank(records[column])
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise CareEtlError(f"linkage input: column '{column}' is empty at row {row}")
    duplicated = records.duplicated(["source", "source_record_id"]).to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise CareEtlError(
            f"linkage input: {int(duplicated.sum())} repeated (source, source_record_id) keys, "
            f"first at row {row}"
        )
    # Records are keyed as text (cluster.record_keys), and a person's id is the hash of its
    # smallest key: two records with one text key would give two people one id.
    keys = record_keys(records["source"].to_numpy(), records["source_record_id"].to_numpy())
    same_text = keys.duplicated().to_numpy()
    if same_text.any():
        row = int(np.flatnonzero(same_text)[0])
        raise CareEtlError(
            f"linkage input: {int(same_text.sum())} records whose source|source_record_id reads "
            f"as another's, first at row {row} (a '|' in a source name, or one id written "
            "both as a number and as text)"
        )


def _blank(values: pd.Series) -> np.ndarray:
    """Missing, or text of spaces only: a blank cell read as "" is no record id either, and
    two of them in one source would read as one record repeated."""
    blank = values.isna().to_numpy()
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        text = values[~blank].astype(str)
        blank[~blank] = (text.str.strip() == "").to_numpy()
    return blank


#: Names callers give the fields linkage reads, and the field each means.
_FIELD_ALIASES = {
    **dict.fromkeys(
        ("forename", "first_name", "firstname", "given", "christian_name"), "given_name"
    ),
    **dict.fromkeys(("surname", "last_name", "lastname", "family"), "family_name"),
    **dict.fromkeys(("dob", "birth_date", "birthdate", "born"), "date_of_birth"),
    **dict.fromkeys(("gender",), "sex"),
    **dict.fromkeys(("post_code", "zip", "zip_code", "postal_code"), "postcode"),
    **dict.fromkeys(("nhs", "nhs_no", "nhsnumber"), "nhs_number"),
    **dict.fromkeys(("address_1", "address_line_1", "address1", "street", "addr"), "address"),
    **dict.fromkeys(("name", "fullname"), "full_name"),
}
_READ = frozenset((*INPUT_FIELDS, "full_name", "previous_addresses"))


def check_fields(records: pd.DataFrame) -> None:
    """A column that looks like a field linkage reads but is not named as one is left unread,
    so say so: an error when linkage reads no other column (every record would stand
    alone), else a warning (column names only, never a value). Keys alone are no mistake."""
    unread = {}
    for column in map(str, records.columns):
        key = re.sub(r"[\s\-]+", "_", column.strip().lower())
        field = _FIELD_ALIASES.get(key, key if key in _READ and column not in _READ else None)
        if field is not None and field not in records.columns:
            unread[column] = field
    hints = ", ".join(f"'{c}' (did you mean '{f}'?)" for c, f in unread.items())
    if hints and not _READ & set(records.columns):
        raise CareEtlError(
            "linkage input: no column linkage reads (given_name, family_name, date_of_birth, "
            f"postcode, address, nhs_number, ...); not read: {hints}"
        )
    if hints:
        log.warning("linkage input: not read: %s", hints)


def _column(records: pd.DataFrame, name: str) -> pd.Series:
    if name in records.columns:
        return records[name].reset_index(drop=True)
    return pd.Series([None] * len(records), dtype=object)


def _map_unique(values: pd.Series, func) -> np.ndarray:
    """Apply a Python function once per distinct value: names and codes repeat a lot."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return mapped[codes]


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


#: Scripts that write a name in a few signs, each a syllable or a word (Chinese characters,
#: Japanese kana and kanji, Korean hangul).
_SIGNS = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


def _in_signs(values: pd.Series) -> np.ndarray:
    """1 where a name is written in such signs, else 0. Two such names that differ are two
    names however alike their Latin letters look (玲 LING and 婷 TING are one letter
    apart; 千代 QIANDAI and 加奈 JIANAI two), so the comparison reads them as different."""

    def signs(value: object) -> bool:
        text = _text(value)
        return text is not None and _SIGNS.search(text) is not None

    return np.array(_map_unique(values, signs), dtype=bool).astype(np.int8)  # None: False


def _typed_first_names(values: pd.Series) -> np.ndarray:
    """The first word of each name as typed, in its own script (upper case, accents kept),
    where it is not in Latin letters; else None. A typing error is one key in the script
    typed in: Cyrillic Алице for Алиуе is one, but in Latin letters ALITSE and ALIUE are
    two (ц reads TS), which would make a typed name look like a sibling's (the twin rule)."""

    def typed(value: object) -> str | None:
        text = _text(value)
        if text is None or text.isascii():
            return None
        words = unicodedata.normalize("NFC", text).upper().split()
        return words[0] if words else None

    return _map_unique(values, typed)


#: Match keys of the values systems write for "no name" (standardise.names nulls the same
#: ones; a caller's own data may still hold them): missing, not a name two records share.
#: Three hundred records of UNKNOWN UNKNOWN born on one placeholder date were one person.
_NO_NAME_KEYS = frozenset({"UNKNOWN", "NOT KNOWN", "NOTKNOWN", "N A", "N K", "NONE", "NULL", "TBC"})


#: Titles a forename field may begin with ("Mr John", "Frau Anna"): standardisation moves
#: them out of a full name, but a caller's own given-name column may hold them.
_TITLES = frozenset({"MR", "MRS", "MS", "MISS", "MX", "DR", "PROF", "REV", "SIR", "DAME",
                     "HERR", "FRAU", "MME", "MLLE", "SRA", "SENOR", "SENORA", "SIG", "SIGRA"})  # fmt: skip


def _without_title(keys: np.ndarray) -> np.ndarray:
    """Forename keys without a leading title: "MR JOHN" and "JOHN" read as another name,
    which the twin rule held from linking."""

    def untitled(key: object) -> object:
        if not isinstance(key, str) or " " not in key:
            return key
        first, rest = key.split(" ", 1)
        return rest if first in _TITLES else key

    return _map_unique(pd.Series(keys, dtype=object), untitled)


def _name_keys(values: pd.Series) -> np.ndarray:
    keys = match_key(values.astype(object).where(values.notna(), None)).to_numpy(dtype=object)
    keys[pd.Series(keys, dtype=object).isin(_NO_NAME_KEYS).to_numpy()] = None
    return keys


def _alias_tokens(other_names: pd.Series, middle_names: pd.Series) -> dict[str, np.ndarray]:
    """First two words of the aliases and the first middle name: alternatives for a name."""
    n = len(other_names)
    other = other_names.astype(object).where(other_names.notna(), None).dropna()
    pieces = other.astype(str).str.split(";").explode()
    words = match_key(pieces).dropna().str.split(" ").explode()
    found = words.rename("word").rename_axis("row").reset_index().drop_duplicates()
    found["rank"] = found.groupby("row").cumcount()
    tokens = {}
    for rank in (0, 1):
        column = np.full(n, None, dtype=object)
        chosen = found[found["rank"] == rank]
        column[chosen["row"].to_numpy(dtype=np.int64)] = chosen["word"].to_numpy()
        tokens[f"alias_other{rank + 1}"] = column
    middle = match_key(middle_names.astype(object).where(middle_names.notna(), None))
    tokens["alias_middle1"] = middle.str.split(" ").str[0].to_numpy(dtype=object)
    return tokens


#: Short-form groups kept per forename (a name in more groups keeps its first ones).
SHORT_FORM_SLOTS = 4


@functools.cache
def _short_form_groups() -> dict[str, tuple[int, ...]]:
    """Match key of each forename in the short-form table -> its group ids."""
    by_key: dict[str, list[int]] = {}
    for name, ids in nicknames.groups().items():
        key = match_key(pd.Series([name])).iloc[0]
        if isinstance(key, str):
            by_key.setdefault(key, []).extend(ids)
    return {k: tuple(sorted(set(v)))[:SHORT_FORM_SLOTS] for k, v in by_key.items()}


def _short_form_columns(given_keys: pd.Series) -> dict[str, np.ndarray]:
    """given_sf1..4: the forename's short-form group ids, -1 where none."""
    table = _short_form_groups()
    codes, uniques = pd.factorize(given_keys, use_na_sentinel=True)
    slots = np.full((len(uniques) + 1, SHORT_FORM_SLOTS), -1, dtype=np.int32)
    for i, key in enumerate(uniques):
        ids = table.get(key, ())
        if not ids and isinstance(key, str) and " " in key:
            ids = table.get(key.split(" ")[0], ())
        slots[i, : len(ids)] = ids
    chosen = slots[codes]  # code -1 picks the last row, all -1
    return {f"given_sf{i + 1}": chosen[:, i] for i in range(SHORT_FORM_SLOTS)}


def short_form_table(names: np.ndarray) -> np.ndarray:
    """Per name (a row each, then an all -1 row for a missing name): its short-form group
    ids, -1 where none. For names in either field: a swapped record's forename is written
    in the surname field."""
    slots = _short_form_columns(pd.Series(names, dtype=object))
    table = np.stack([slots[f"given_sf{i + 1}"] for i in range(SHORT_FORM_SLOTS)], axis=1)
    return np.vstack([table, np.full((1, SHORT_FORM_SLOTS), -1, dtype=np.int32)])


def _date_parts(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day as integers (-1 when missing); impossible dates keep their digits."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parts = [getattr(values.dt, p) for p in ("year", "month", "day")]
        return tuple(p.fillna(-1).astype(np.int32).to_numpy() for p in parts)  # type: ignore[return-value]

    def iso(value: object) -> str | None:
        if hasattr(value, "isoformat") and not isinstance(value, str):
            return value.isoformat()
        return _text(value)

    text = pd.Series(_map_unique(values, iso), dtype=object).astype("string")
    year, month, day = _numbers(text.str.extract(_ISO_DATE))
    unread = (year < 0) & text.notna().to_numpy()
    if unread.any():
        year[unread], month[unread], day[unread] = _numeric_dates(text[unread])
    unread = (year < 0) & text.notna().to_numpy()
    if unread.any():
        year[unread], month[unread], day[unread] = _dates_in_words(text[unread])
    _say_unread((year < 0) & text.notna().to_numpy())
    return year, month, day


#: A date of birth held by more records than this many times the usual count of a date
#: (the median over dates), and by more than _PLACEHOLDER_RECORDS, is a system's "unknown"
#: (01/01/1900), not a birthday: no day sees that many births among one set of records.
#: Except the 1st of January of a year someone alive may have been born in: that is where a
#: year known alone is written (01/01/YYYY, compared as an estimated date, its own level),
#: which a council may hold for many people born in a few years (dates of birth assigned on
#: arrival, say): the year is still evidence.
_PLACEHOLDER_TIMES = 20
_PLACEHOLDER_RECORDS = 30


def _placeholder_dates(dates: np.ndarray) -> np.ndarray:
    """Per record, whether its date of birth (an integer, -1 when none) is a placeholder
    (see _PLACEHOLDER_TIMES), to be compared as missing: 9% of 5,700 records given
    01/01/1900 lost a fifth of their links (recall 0.79), as each disagreed with the
    person's other records, and linked strangers who shared it."""
    known = dates >= 0
    values, inverse, counts = np.unique(dates[known], return_inverse=True, return_counts=True)
    if not len(values):
        return np.zeros(len(dates), dtype=bool)
    limit = max(_PLACEHOLDER_RECORDS, _PLACEHOLDER_TIMES * float(np.median(counts)))
    estimated = (values % 10000 == 101) & (values // 10000 >= _OLDEST_BIRTH_YEAR)
    over = (counts > limit) & ~estimated
    found = np.zeros(len(dates), dtype=bool)
    found[known] = over[inverse]
    if found.any():
        log.warning(
            "linkage input: %d records share %d dates of birth held by more than %d records "
            "each, first at row %d; read as placeholders and compared as missing",
            int(found.sum()),
            int(over.sum()),
            int(limit),
            int(np.flatnonzero(found)[0]),
        )
    return found


#: The earliest year a 1st of January is read as a year known alone rather than a
#: placeholder: 115 years before this one (no one alive was born earlier; 1900 is not).
_OLDEST_BIRTH_YEAR = dt.date.today().year - 115


def _numeric_dates(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dates of numbers with the year last (14/02/1948, 14.02.48): day first (the British
    way) unless the dates show month first: a second number over 12 somewhere and a first
    number over 12 nowhere (an American export). A two-digit year is of this century when
    that is not in the future, as standardisation reads it."""
    first, second, y = _numbers(text.str.extract(_NUMERIC_DATE))
    short = (y >= 0) & (y < 100)
    # Two digits last, but a number over 31 first or second: a year first (80-03-04), not
    # read here, nor let to say "month first" of the column.
    year_first = short & ((first > 31) | (second > 31))
    first[year_first], second[year_first], y[year_first] = -1, -1, -1
    short &= ~year_first
    this_year = dt.date.today().year
    y[short] += np.where(2000 + y[short] <= this_year, 2000, 1900).astype(np.int32)
    month_first = bool((second > 12).any() and not (first > 12).any())
    read = int((y > 0).sum())
    if read:
        order = "month" if month_first else "day"
        log.info("linkage: %d dates of birth written as numbers read %s first", read, order)
    return (y, first, second) if month_first else (y, second, first)


def _dates_in_words(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dates in the other shapes standardisation reads (month names, "4 March 1948",
    "04-MAR-1948", "March 4, 1948"; Excel serial numbers): a caller's own export, which
    would otherwise be compared as having no date of birth at all."""
    found = clean_dates(text.astype(object)).value
    parts = [getattr(found.dt, p) for p in ("year", "month", "day")]
    return tuple(p.fillna(-1).astype(np.int32).to_numpy() for p in parts)  # type: ignore[return-value]


def _say_unread(unread: np.ndarray) -> None:
    """Warn of dates of birth that were given but could not be read: they are compared as
    missing, and a caller should know their data lost a field (the count and the first
    row only, never a value)."""
    if unread.any():
        log.warning(
            "linkage input: %d dates of birth could not be read as whole dates (day, month "
            "and year), first at row %d; they are compared as missing (write them as "
            "1948-02-14 or 14/02/1948)",
            int(unread.sum()),
            int(np.flatnonzero(unread)[0]),
        )


def _numbers(found: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The extracted groups as integers, -1 where there is none."""
    return tuple(  # type: ignore[return-value]
        pd.to_numeric(found[i], errors="coerce").fillna(-1).astype(np.int32).to_numpy()
        for i in range(3)
    )


def _flag(values: pd.Series) -> np.ndarray:
    def truthy(value: object) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        text = _text(value)
        return text is not None and text.upper() in _TRUE_TEXT

    return np.array(_map_unique(values, truthy), dtype=bool) & values.notna().to_numpy()


_NHS_WEIGHTS = np.arange(10, 1, -1)


#: What separates an NHS number's groups of digits as people write it: spaces and hyphens.
_NHS_SEPARATORS = r"[\s-]"
#: ".0" after a whole number written as text from a float column (a CSV saved by pandas
#: from a column with blanks: 9434765919.0): not part of the number.
_FLOAT_TAIL = r"(?<=\d)\.0+$"


def _nhs_keys(values: pd.Series) -> np.ndarray:
    """Each value's NHS number (10 digits passing modulus 11, not one digit repeated), or
    None; the check done with numpy: a million records hold hundreds of thousands of
    distinct NHS numbers."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if all(isinstance(u, str) for u in uniques):
        text = pd.Series(uniques, dtype=object).str.strip()
    else:
        text = pd.Series([_text(u) for u in uniques], dtype=object)
    digits = text.str.replace(_NHS_SEPARATORS, "", regex=True)
    digits = digits.str.replace(_FLOAT_TAIL, "", regex=True)
    ten = digits.str.fullmatch(r"[0-9]{10}", na=False).to_numpy(dtype=bool)
    keys = np.full(len(uniques) + 1, None, dtype=object)  # code -1 reads the last
    candidates = digits[ten].to_numpy(dtype=object)
    if len(candidates):
        numbers = np.frombuffer("".join(candidates).encode("ascii"), dtype=np.uint8)
        numbers = numbers.reshape(-1, 10).astype(np.int64) - ord("0")
        check = 11 - (numbers[:, :9] * _NHS_WEIGHTS).sum(axis=1) % 11
        check[check == 11] = 0
        repeated = (numbers == numbers[:, :1]).all(axis=1)
        valid = (check == numbers[:, 9]) & ~repeated
        keys[np.flatnonzero(ten)[valid]] = candidates[valid]
    return keys[codes]


def _sex(value: object) -> str | None:
    """M, F or X from a code or word; NHS Data Dictionary numbers too (1 male, 2 female),
    and the words and letters of other languages (_SEX_WORDS) before the first letter:
    Spanish "Mujer" is a woman, not an M."""
    text = _text(value)
    if text in _SEX_NUMBERS:
        return _SEX_NUMBERS[text]
    if text and text.upper() in _SEX_WORDS:
        return _SEX_WORDS[text.upper()]
    return text[0].upper() if text and text[0].upper() in "MFX" else None


_SEX_NUMBERS = {"1": "M", "2": "F"}
#: Words (and letters) for sex in other languages whose first letter is not M, F or X, or
#: is the wrong one of them (Mujer); German m/w and Dutch M/V are the usual codes there.
_SEX_WORDS = {
    **dict.fromkeys(("MUJER", "MULHER", "DONNA", "WEIBLICH", "W", "VROUW", "V", "KOBIETA",
                     "KADIN", "ЖЕНСКИЙ", "Ж"), "F"),
    **dict.fromkeys(("HOMBRE", "HOMME", "HOMEM", "UOMO", "MÄNNLICH", "MAN", "MĘŻCZYZNA",
                     "ERKEK", "МУЖСКОЙ", "М", "H"), "M"),
}  # fmt: skip


def _with_h_and_m(keys: np.ndarray, sex: pd.Series, sources: pd.Series) -> np.ndarray:
    """A source that writes sex as H and M and never F (Spanish hombre and mujer) means a
    woman by M: read by its letter, every woman of it was a man, against the F of other
    sources. Decided per source, as the sources of one run may code sex differently."""
    letters = pd.Series(_map_unique(sex, lambda v: (_text(v) or "").upper()), dtype=object)
    found = keys.copy()
    for source in pd.unique(sources[letters.isin(["H"]).to_numpy()]):
        mine = (sources == source).to_numpy()
        used = set(letters[mine].dropna()) - {""}
        if {"H", "M"} <= used and used <= {"H", "M", "X"}:
            found[mine & (letters == "M").to_numpy()] = "F"
    return found


def _postcode(value: object) -> str | None:
    """The postcode without spaces, in capitals. A code of digits alone (a ZIP code, a
    PLZ) loses its leading zeros where a spreadsheet or a number column held it (02134
    read as 2134, or written back as 2134.0), so its key has none: one source's text and
    another's number agree. A US ZIP+4 (02134-1234) is read as its ZIP code: one system
    keeps the four digits, another not, and the codes disagreed for every person."""
    text = _text(value)
    if text is None:
        return None
    key = re.sub(_FLOAT_TAIL, "", "".join(text.upper().split()))
    if zip_plus_four := _ZIP_PLUS_FOUR.fullmatch(key):
        key = zip_plus_four.group(1)
    if key.isascii() and key.isdigit():
        key = key.lstrip("0") or "0"
    return key or None


def _district(postcode: object) -> str | None:
    """Outward code of a UK postcode; other countries' codes have no district level."""
    if not isinstance(postcode, str):
        return None
    found = _UK_POSTCODE.match(postcode)
    return found.group(1) if found else None


def _sector(postcode: object) -> str | None:
    """Outward code and the inward digit (E8 3): a few streets; UK postcodes only."""
    if not isinstance(postcode, str):
        return None
    found = _UK_POSTCODE.match(postcode)
    return f"{found.group(1)} {found.group(2)[0]}" if found else None


def _address(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _NOT_ALNUM.sub(" ", to_ascii(text).upper()).strip() or None


def _former_entries(value: object) -> tuple[tuple[str | None, str | None, str | None], ...]:
    """(uprn, address, postcode) keys of the first FORMER_SLOTS former addresses."""
    text = _text(value)
    if text is None:
        return ()
    try:
        entries = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(entries, list):
        return ()
    found = []
    for entry in entries:
        if isinstance(entry, dict):
            keys = (
                _text(entry.get("uprn")),
                _address(entry.get("address")),
                _postcode(entry.get("postcode")),
            )
            if any(keys):
                found.append(keys)
    return tuple(found[:FORMER_SLOTS])


def _add_former(out: pd.DataFrame, history: pd.Series) -> None:
    """The FORMER_KEYS columns: each record's former addresses, slot by slot."""
    codes, uniques = pd.factorize(history, use_na_sentinel=True)
    parsed = [_former_entries(u) for u in uniques]
    for slot, columns in enumerate(FORMER_KEYS):
        for part, column in enumerate(columns):
            values = [e[slot][part] if len(e) > slot else None for e in parsed]
            out[column] = np.array([*values, None], dtype=object)[codes]  # -1 reads None


def _days(values: pd.Series) -> np.ndarray:
    """Days since _DAY_ZERO (int32) of dates as a source writes them; -1 when not a date."""
    present = values.notna().to_numpy()
    out = np.full(len(values), -1, dtype=np.int32)
    if present.any():
        parsed = clean_dates(values[present].astype(object)).value.to_numpy("datetime64[D]")
        days = (parsed - _DAY_ZERO).astype("timedelta64[D]").astype(np.int64)
        out[np.flatnonzero(present)] = np.where(np.isnat(parsed), -1, days)
    return out


def _add_periods(out: pd.DataFrame, records: pd.DataFrame) -> None:
    """seen_day: when the record shows the person at its address (the address's start, else
    the record's date); left_day: when they left it. -1 when unknown."""
    start = _days(_column(records, "address_from"))
    recorded = _days(_column(records, "recorded_on"))
    out["seen_day"] = np.where(start >= 0, start, recorded).astype(np.int32)
    out["left_day"] = _days(_column(records, "address_to"))


def _history_prints(records: pd.DataFrame) -> np.ndarray:
    """Per record, a stable 64-bit hash of its HISTORY_FIELDS and PERIOD_FIELDS values (0
    when it has none). The review fingerprint (INPUT_FIELDS) does not cover them, so a
    cache of comparison levels (care_etl.incremental.pairs) must key records by it too."""
    prints = np.zeros(len(records), dtype=np.uint64)
    for column in (*HISTORY_FIELDS, *PERIOD_FIELDS):
        codes, uniques = pd.factorize(_column(records, column), use_na_sentinel=True)
        texts = pd.Series([_text(u) or "" for u in uniques], dtype=object)
        hashes = np.append(pd.util.hash_array(texts.to_numpy(object)), np.uint64(0))
        with np.errstate(over="ignore"):  # each distinct value hashed once, then mixed in
            prints = prints * np.uint64(0x100000001B3) ^ hashes[codes]
    return prints


def _names_from_full_name(col: dict[str, pd.Series], full_name: pd.Series) -> None:
    """Given, middle and family names split from `full_name` (as standardisation splits it)
    where a record has neither a given nor a family name: a caller of link() may hold one
    name field only. care_etl's own sources were split when standardised, so there this
    changes nothing; `full_name` is not in the review fingerprint (INPUT_FIELDS)."""
    if full_name.isna().all():
        return
    blank = {f: pd.isna(_map_unique(col[f], _text).astype(object)) for f in _NAME_PARTS}
    use = blank["given_name"] & blank["family_name"] & ~pd.isna(_map_unique(full_name, _text))
    if not use.any():
        return
    parts, _ = parse_full_name(full_name[use])
    for name in _NAME_PARTS:
        filled = col[name].astype(object).copy()
        take = use & blank[name]
        filled[take] = parts[name].reindex(filled.index[take]).to_numpy(object)
        col[name] = filled


#: The name fields a full name is split into.
_NAME_PARTS = ("given_name", "middle_names", "family_name")

#: Generational suffixes (as standardise.names knows them) and the generation each names:
#: 1 junior, 2 senior, then II, III, IV.
GENERATIONS = {"JR": 1, "JNR": 1, "JUNIOR": 1, "SR": 2, "SNR": 2, "SENIOR": 2,
               "II": 3, "III": 4, "IV": 5}  # fmt: skip


def _suffix_of(value: object) -> tuple[object, int]:
    """A name without its generational suffix ("Smith Jr." -> "Smith"), and the suffix's
    generation (-1 without one). A name of one word is left whole: Junior is a forename."""
    text = _text(value)
    words = text.split() if text else []
    generation = GENERATIONS.get(words[-1].strip(".,").upper(), -1) if len(words) > 1 else -1
    if generation < 0:
        return value, -1
    return " ".join(words[:-1]).rstrip(" ,"), generation


def _take_suffixes(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The names without their generational suffixes, and each suffix's generation."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    split = [_suffix_of(u) for u in uniques]
    generation = np.array([g for _, g in split] + [-1], dtype=np.int8)[codes]
    taken = np.array([n for n, _ in split] + [None], dtype=object)[codes]
    kept = np.where(generation >= 0, taken, values.to_numpy(dtype=object))
    return pd.Series(kept, index=values.index, dtype=object), generation


def _split_generations(col: dict[str, pd.Series], full_name: pd.Series) -> np.ndarray:
    """Per record, the generation its name's suffix says (-1 without one), the suffix taken
    off the name fields so that "Smith Jr" and "Smith" compare as one surname: the suffix
    speaks in a rule of its own (linker._by_suffix), a father and son at one address being
    alike in every field but it. A full name's suffix is read too (its split drops it)."""
    _, generation = _take_suffixes(full_name)
    for name in _NAME_PARTS:
        taken, suffix = _take_suffixes(col[name])
        if (suffix >= 0).any():
            col[name] = taken
            generation = np.where(generation >= 0, generation, suffix)
    return generation


def prepare(records: pd.DataFrame) -> pd.DataFrame:
    """One row per record (positional index), keys for blocking and comparing; a cell
    holding a list or a mapping, where a value belongs, is a one-line input error."""
    try:
        return _prepare(records)
    except TypeError:
        found = _first_container(records)
        if found is None:
            raise
        column, row = found
        raise CareEtlError(
            f"linkage input: column '{column}' holds a list or mapping at row {row}, where "
            "one value belongs"
        ) from None


def _first_container(records: pd.DataFrame) -> tuple[str, int] | None:
    """The first (column, row) holding a list, set, tuple, array or mapping (only looked for once
    linkage has failed on one: a pass over every value costs time on every run)."""
    if not isinstance(records, pd.DataFrame):
        return None
    for column in records.columns:
        values = records[column].to_numpy()
        if values.dtype != object:
            continue
        for row, value in enumerate(values):
            if isinstance(value, list | set | tuple | dict | np.ndarray):
                return str(column), row
    return None


def _prepare(records: pd.DataFrame) -> pd.DataFrame:
    check_keys(records)
    check_fields(records)
    col = {name: _column(records, name) for name in INPUT_FIELDS}
    _names_from_full_name(col, _column(records, "full_name"))
    generation = _split_generations(col, _column(records, "full_name"))
    out = pd.DataFrame(index=pd.RangeIndex(len(records)))
    out["source"] = records["source"].astype(str).to_numpy()
    out["source_record_id"] = records["source_record_id"].astype(str).to_numpy()
    out["nhs_key"] = _nhs_keys(col["nhs_number"])
    out["given_key"] = _without_title(_name_keys(col["given_name"]))
    out["family_key"] = _name_keys(col["family_name"])
    out["given_signs"] = _in_signs(col["given_name"])
    out["given_typed"] = _typed_first_names(col["given_name"])
    out["generation"] = generation
    out["family_signs"] = _in_signs(col["family_name"])
    for name, values in _short_form_columns(out["given_key"]).items():
        out[name] = values
    for name, values in _alias_tokens(col["other_names"], col["middle_names"]).items():
        out[name] = values
    year, month, day = _date_parts(col["date_of_birth"])
    complete = (year > 0) & (month >= 0) & (day >= 0)
    complete &= ~_placeholder_dates(np.where(complete, year * 10000 + month * 100 + day, -1))
    out["dob_y"] = np.where(complete, year, -1)
    out["dob_m"] = np.where(complete, month, -1)
    out["dob_d"] = np.where(complete, day, -1)
    out["dob_estimated"] = _flag(col["dob_estimated"])
    out["sex_key"] = _with_h_and_m(_map_unique(col["sex"], _sex), col["sex"], out["source"])
    out["postcode_key"] = _map_unique(col["postcode"], _postcode)
    out["postcode_district"] = _map_unique(out["postcode_key"], _district)
    out["postcode_sector"] = _map_unique(out["postcode_key"], _sector)
    out["address_key"] = _map_unique(col["address"], _address)
    out["uprn_key"] = _map_unique(col["uprn"], _text)
    _add_former(out, _column(records, HISTORY_FIELDS[0]))
    _add_periods(out, records)
    out["history_print"] = _history_prints(records)
    _add_codes(out)
    out.drop(columns=[k for keys in FORMER_KEYS for k in keys], inplace=True)  # codes suffice
    return out


#: Key columns that get integer codes; columns in one group share a vocabulary, so a given
#: name can be checked against the other record's aliases by comparing integers.
#: Former addresses come last in the groups of the current ones: the current keys' codes
#: are those they would have without them.
CODE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("nhs_key",),
    ("given_key", "family_key", "alias_other1", "alias_other2", "alias_middle1"),
    ("sex_key",),
    ("postcode_key", "postcode_district", "postcode_sector", *(k[2] for k in FORMER_KEYS)),
    ("address_key", *(k[1] for k in FORMER_KEYS)),
    ("uprn_key", *(k[0] for k in FORMER_KEYS)),
)


def code_column(key_column: str) -> str:
    """Name of the integer code column (-1 when missing) of a key column."""
    return key_column.removesuffix("_key") + "_code"


#: A code per distinct combination of the columns a comparison reads: two records with
#: one combination compare alike, so a comparison gathers one integer per record and
#: scores each distinct pair of combinations once.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "name_signature": (
        "given_code",
        "family_code",
        "alias_other1_code",
        "alias_other2_code",
        "alias_middle1_code",
        "given_signs",
        "family_signs",
    ),
    "dob_signature": ("dob_y", "dob_m", "dob_d", "dob_estimated"),
    "former_signature": tuple(code_column(k) for keys in FORMER_KEYS for k in keys),
}


def _add_codes(out: pd.DataFrame) -> None:
    """Integer codes make equality and presence tests cheap on millions of pairs."""
    for group in CODE_GROUPS:
        stacked = pd.concat([out[c] for c in group], ignore_index=True)
        codes, _ = pd.factorize(stacked, use_na_sentinel=True)
        for i, column in enumerate(group):
            out[code_column(column)] = codes[i * len(out) : (i + 1) * len(out)].astype(np.int32)
    for signature, columns in SIGNATURES.items():
        out[signature] = combination_codes([out[c].to_numpy() for c in columns])


def combination_codes(columns: list[np.ndarray]) -> np.ndarray:
    """0, 1, ... per distinct combination of these integer columns (values -1 and up)."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        values = column.astype(np.int64) + 1
        codes, _ = pd.factorize(codes * (int(values.max(initial=0)) + 1) + values)
    return codes.astype(np.int32)


def has_data(prepared: pd.DataFrame, columns: list[str]) -> bool:
    """Whether any record carries a value in any of these code columns (-1 is missing)."""
    return any(bool((prepared[column].to_numpy() >= 0).any()) for column in columns)
