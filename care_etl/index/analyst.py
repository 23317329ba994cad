"""Pseudonymised copies of the index for analysts: keyed-hash ids, age bands, postcode districts.

Analysts need counts and journeys, not who someone is. Ids are HMAC-SHA256 under a key from
CARE_ETL_PSEUDONYM_KEY, so they are stable across runs, cannot be reversed or recomputed
without the key, and the key never lives in the repository or the database. SQLite has no
HMAC, and PostgreSQL has it only through an extension, so the tables are materialised when
the index is published rather than computed by views.

Without a key, PostgreSQL (production) gets no analyst rows at all; a SQLite demo uses a
random key for that run only (pseudonyms then change from run to run).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets

import numpy as np
import pandas as pd

from care_etl.index.households import CO_RESIDENT, INVERSE

KEY_ENV = "CARE_ETL_PSEUDONYM_KEY"
#: Upper bound (exclusive) of each age band, and its label; the last band is open.
AGE_BANDS = ((18, "0-17"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"),
             (65, "55-64"), (75, "65-74"), (85, "75-84"))  # fmt: skip
OLDEST_BAND = "85+"


def pseudonym_key(production: bool) -> bytes | None:
    """The key from the environment; None in production without one; else a one-run key."""
    key = os.environ.get(KEY_ENV, "")
    if key:
        return key.encode("utf-8")
    return None if production else secrets.token_bytes(32)


def pseudonym(key: bytes, kind: str, value: object) -> str | None:
    """kind initial + 20 hex digits of HMAC-SHA256(key, "kind:value"), lower case (real ids are
    upper case); kinds never collide."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    digest = hmac.digest(key, f"{kind}:{value}".encode(), hashlib.sha256).hex()
    return f"{kind[0]}{digest[:20]}"


def bands_of_ages(
    year: np.ndarray, month: np.ndarray, day: np.ndarray, on: dt.date
) -> tuple[np.ndarray, np.ndarray]:
    """Per date of birth (as whole arrays): its age band on `on`, as age_band gives it, and
    whether it has one (a birthday after `on` has none). The coverage report's bands are
    these too, so that an analyst can reproduce its figures from analyst_person."""
    ahead = (month > on.month) | ((month == on.month) & (day > on.day))
    age = on.year - year - ahead
    labels = np.array([label for _, label in AGE_BANDS] + [OLDEST_BAND], dtype=object)
    band = labels[np.searchsorted([upper for upper, _ in AGE_BANDS], age, side="right")]
    return band, age >= 0


def age_band(dob: object, on: dt.date) -> str | None:
    if dob is None or pd.isna(dob):
        return None
    born = pd.Timestamp(dob).date()
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    if age < 0:
        return None
    return next((label for upper, label in AGE_BANDS if age < upper), OLDEST_BAND)


#: The index's own relationship words (households.INVERSE's roles and their inverses,
#: Co-resident), by their lower case.
_RELATIONSHIP_WORDS = {
    **{w.lower(): w for w in (*INVERSE.values(), CO_RESIDENT)},
    **{w: w.capitalize() for w in INVERSE},
}


def coded_relationship(text: object) -> str | None:
    """A relationship as one of the index's own words (Partner, Son, Parent, Co-resident,
    ...), else "Other": the sources' free text may name a person ("Niece of ...")."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    return _RELATIONSHIP_WORDS.get(str(text).strip().lower(), "Other")


def postcode_district(postcode: object) -> str | None:
    """The outward code: 'E8 3QP' -> 'E8'."""
    if not isinstance(postcode, str) or not postcode.strip():
        return None
    text = postcode.strip().upper()
    return text.split()[0] if " " in text else text[:-3] or None


class Pseudonyms:
    """One HMAC per distinct id (ids recur across the tables); a missing value as before.

    `remember` takes pseudonyms computed before under the same key (the incremental index
    state keeps them), which are then not computed again.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.done: dict[tuple[str, str], str | None] = {}

    def remember(self, kind: str, values: np.ndarray, pseudonyms: np.ndarray) -> None:
        """Pseudonyms of these ids, computed before under this key (None: not known)."""
        known = [(v, p) for v, p in zip(values.tolist(), pseudonyms.tolist(), strict=True) if p]
        self.done.update(((kind, v), p) for v, p in known)

    def one(self, kind: str, value: str) -> str | None:
        if (kind, value) not in self.done:
            self.done[(kind, value)] = pseudonym(self.key, kind, value)
        return self.done[(kind, value)]

    def __call__(self, values: pd.Series, kind: str) -> list[str | None]:
        raw = values.to_numpy(object)
        if pd.api.types.infer_dtype(raw, skipna=True) != "string":
            return [pseudonym(self.key, kind, v) for v in raw]
        codes, distinct = pd.factorize(raw)
        out = np.array([self.one(kind, v) for v in distinct] + [None], dtype=object)[codes]
        missing = codes == -1
        out[missing] = [pseudonym(self.key, kind, v) for v in raw[missing]]
        return out.tolist()


def record_names(links: pd.DataFrame) -> pd.Series:
    """What a record's pseudonym is computed from: its source and id."""
    return links["source"] + "|" + links["source_record_id"]


def analyst_links(links: pd.DataFrame, key: bytes | Pseudonyms) -> pd.DataFrame:
    """analyst_person_source_link: a row per link (an incremental run passes only the links
    that changed)."""
    ids = key if isinstance(key, Pseudonyms) else Pseudonyms(key)
    return pd.DataFrame(
        {
            "person_key": ids(links["person_id"], "person"),
            "source": links["source"].to_numpy(),
            "record_key": ids(record_names(links), "record"),
            "link_type": links["link_type"].to_numpy(),
            "match_probability": links["match_probability"].to_numpy(),
        }
    )


def analyst_tables(
    tables: dict[str, pd.DataFrame], key: bytes | Pseudonyms, today: dt.date
) -> dict[str, pd.DataFrame]:
    """analyst_person, analyst_person_source_link, analyst_household, analyst_relationship,
    analyst_review_queue."""

    ids = key if isinstance(key, Pseudonyms) else Pseudonyms(key)

    def each_distinct(values: pd.Series, func) -> list:
        """func per distinct value (dates and postcodes recur across people)."""
        seen: dict = {}
        return [seen[v] if v in seen else seen.setdefault(v, func(v)) for v in values]

    person = tables["person_index"]
    household = tables.get("household", pd.DataFrame(columns=["household_id", "person_id"]))
    home = dict(zip(household["person_id"], household["household_id"], strict=True))
    postcodes = current_postcodes(person, household)
    links = tables["person_source_link"]
    related = tables.get("relationship", pd.DataFrame(columns=["person_id", "related_person_id"]))
    return {
        "analyst_person": pd.DataFrame(
            {
                "person_key": ids(person["person_id"], "person"),
                "sex": person["sex"].to_numpy(),
                "age_band": each_distinct(person["date_of_birth"], lambda d: age_band(d, today)),
                "postcode_district": each_distinct(postcodes, postcode_district),
                "household_key": ids(person["person_id"].map(home), "household"),
                "source_count": person["source_count"].to_numpy(),
                "record_count": person["record_count"].to_numpy(),
                "deceased": person["person_id"].isin(deceased(tables)).to_numpy(),
            }
        ),
        "analyst_person_source_link": analyst_links(links, ids),
        "analyst_household": pd.DataFrame(
            {
                "household_key": ids(household["household_id"], "household"),
                "person_key": ids(household["person_id"], "person"),
                "basis": household.get("basis", pd.Series(dtype=object)).to_numpy(),
            }
        ),
        "analyst_relationship": pd.DataFrame(
            {
                "person_key": ids(related["person_id"], "person"),
                "related_person_key": ids(related["related_person_id"], "person"),
                "relationship": each_distinct(
                    related.get("relationship", pd.Series(dtype=object)), coded_relationship
                ),
                "basis": related.get("basis", pd.Series(dtype=object)).to_numpy(),
            }
        ),
        "analyst_review_queue": analyst_review_queue(tables.get("review_queue"), ids),
    }


def current_postcodes(person: pd.DataFrame, household: pd.DataFrame) -> pd.Series:
    """Each person's postcode where they live now: their household's (built from the current
    address), else the best-known one. The best-known postcode can be a GP's address from
    before a move, which would put a household in two districts."""
    if "postcode" not in household.columns:
        return person["postcode"]
    lives = household.dropna(subset=["postcode"]).drop_duplicates("person_id")
    now = person["person_id"].map(lives.set_index("person_id")["postcode"])
    return now.where(now.notna(), person["postcode"])


def deceased(tables: dict[str, pd.DataFrame]) -> set[str]:
    """Persons a source records as having died: still in the index (and in a household, as a
    GP record keeps its address), so counts of who lives somewhere must leave them out."""
    values = tables.get("person_field_value")
    if values is None or values.empty:
        return set()
    died = (values["field"] == "date_of_death") & values["is_golden"].astype(bool)
    return set(values.loc[died, "person_id"])


REVIEW_COLUMNS = ["left_source", "left_record_key", "right_source", "right_record_key",
                  "match_probability", "queued_at"]  # fmt: skip


def analyst_review_queue(queue: pd.DataFrame | None, ids: Pseudonyms) -> pd.DataFrame:
    """The review backlog with record keys (those of analyst_person_source_link) and no
    evidence, so analysts can size and age it by source without seeing the records."""
    if queue is None or queue.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    left = queue["left_source"] + "|" + queue["left_source_record_id"]
    right = queue["right_source"] + "|" + queue["right_source_record_id"]
    return pd.DataFrame(
        {
            "left_source": queue["left_source"].to_numpy(),
            "left_record_key": ids(left, "record"),
            "right_source": queue["right_source"].to_numpy(),
            "right_record_key": ids(right, "record"),
            "match_probability": queue["match_probability"].to_numpy(),
            "queued_at": queue.get("queued_at", pd.Series(pd.NaT, index=queue.index)).to_numpy(),
        }
    )
