"""The index stage of an incremental run: rebuild only the persons whose rows can have changed.

A person's index rows are a function of their own records, of the address keys, tenancies
and declared relationships they share with other persons, and of today's date (analyst age
bands). So the state of the last publish (`index_state.npz` in the cache folder) keeps, per
record, a 64-bit hash of the linked row (values, person id, parsed dates, and its former
addresses' keys and periods: a former address takes a UPRN other records give), of its address
key and of its tenancy, and per person the age band and date of birth it was published with.
A run then finds:

- changed persons: those holding a new, removed or changed record (a record whose person id
  changed by a merge or split is changed), both under their new and their old id, those at
  either end of an added or removed declared relationship, and those whose age band moved;
- affected persons: the changed ones, and everyone holding a record at an address key or in
  a tenancy that a changed person's record holds (or held), or declaring a relationship to
  one of their records: their household, co-residents, known UPRN or lead tenant may differ.

Only the affected persons' rows are built, from the records of the affected persons and of
their neighbours (same address key, tenancy or declared relationship; address keys are
computed over every record, as they depend on every record giving the address), and only
their rows (and those of persons who are gone) are deleted and written again, in the
publish's single transaction. Everyone else's rows stay as published, which is what a full
build would give them. The state's previous links and issued ids replace reading the
previous person_source_link from the database for stable ids.

The two link tables are keyed by record, not person, and change for records of unchanged
persons too (a removed row renumbers the lineage of the rows after it in its file; a model
estimated again moves match probabilities): the state keeps a hash of each record's
person_source_link row and of its analyst row, and only rows whose hash changed are updated,
new records inserted and removed ones deleted (on SQLite, updating in place was quicker
than replacing the table even with nine rows in ten changed, measured at 100k records; on
PostgreSQL a table with most rows changed is replaced whole: care_etl.index.stage). The
state also keeps each current person's and record's pseudonym (a keyed hash of its id: the
same under the same key, which the fingerprint covers), so that they are not computed again.

The state is trusted only when the database's latest published run is the one that wrote it,
with the same index code, trust order and pseudonym key (a fingerprint); else, or when over
MAX_SHARE of the persons are affected, the run builds and publishes the index whole.
The file holds hashes, record keys and person ids (in the index anyway), and a date of birth
and age band per person id: no more than the index itself, in the cache folder beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from care_etl.canonical import PREVIOUS_ADDRESSES
from care_etl.incremental.delta import PERSON_KEYS, Insert, delete_persons, row_hashes
from care_etl.incremental.state import UNREADABLE, add_code, write_atomic

log = logging.getLogger(__name__)

STATE_FILE = "index_state.npz"
#: Bumped when the layout of the state file changes.
FORMAT = 1
#: The code an index row is computed by, and the tables it is written to (index/publish.py):
#: a change to any of it forces a whole build. The whole index package, so that a module
#: the index comes to depend on cannot be left out (publish.py was), and the reader of the
#: declared relationships and involvements it builds on (sources/declared.py).
INDEX_MODULES = ("index/*.py", "sources/declared.py", "incremental/index.py",
                 "incremental/delta.py")  # fmt: skip
#: Columns only the link tables show: they are written record by record (LinkChanges), not
#: with the persons, as lineage (row numbers) and match probabilities move for records of
#: unchanged persons.
WHOLE_ONLY = frozenset({"link_type", "match_probability", "lineage", "ocr_confidence",
                        "field_confidence", "quality_issues"})  # fmt: skip
#: The link tables (keyed by record).
WHOLE_TABLES = frozenset({"person_source_link", "analyst_person_source_link"})
#: Each link table's key columns; its other columns are hashed per record (RecordFacts).
LINK_KEYS = {"person_source_link": ("source", "source_record_id"),
             "analyst_person_source_link": ("record_key",)}  # fmt: skip
#: person_source_link's columns besides its keys and those of its analyst copy.
_LINK_COLUMNS = ("lineage", "ocr_confidence", "field_confidence", "quality_issues")
_ANALYST_LINK_COLUMNS = ("person_id", "link_type", "match_probability")
#: The column of a link table's frame naming each row's record as RecordFacts.keys does.
RECORD = "_record"
#: Above this share of persons to rebuild, building and publishing whole is as quick.
MAX_SHARE = 0.2
_SEP = "\x1f"
_PRIME = np.uint64(0x100000001B3)


def fingerprint(trust: object, key: bytes | None, columns: list[str]) -> str:
    """What every stored hash means: the index code, the trust order, the pseudonym key (as
    an HMAC of a constant, never the key) and the linked records' columns."""
    digest = hashlib.sha256(f"{FORMAT}|{trust!r}|{sorted(columns)!r}".encode())
    add_code(digest, INDEX_MODULES)
    if key is not None:
        digest.update(hmac.digest(key, b"care_etl index state", hashlib.sha256))
    return digest.hexdigest()


@dataclass
class RecordFacts:
    """Per linked record: its key, person, and hashes of its row, address key and tenancy."""

    keys: np.ndarray
    person: np.ndarray
    row: np.ndarray
    address: np.ndarray
    tenancy: np.ndarray
    #: Declared relationships: the declaring and the related record's keys, and a row hash.
    declared_from: np.ndarray
    declared_to: np.ndarray
    declared: np.ndarray
    #: Hashes of the record's analyst link row (person, link type, probability) and of the
    #: rest of its person_source_link row (lineage, confidences, issues).
    link: np.ndarray
    analyst_link: np.ndarray

    def link_rows(self) -> np.ndarray:
        """A hash of the record's whole person_source_link row (bar its keys)."""
        with np.errstate(over="ignore"):
            return self.link * _PRIME ^ self.analyst_link

    @classmethod
    def of(
        cls,
        linked: pd.DataFrame,
        address_keys: pd.Series,
        declared: pd.DataFrame | None,
        former_keys: pd.Series | None = None,
        former: pd.DataFrame | None = None,
    ) -> RecordFacts:
        """`former_keys`: each record's former address keys (record_keys_with_former): they
        depend on other records' UPRNs, so they are hashed with the record's row. `former`:
        the records' former_frame, when the caller has it (households.keys_and_former)."""
        from care_etl.index.golden import parse_dates
        from care_etl.index.households import ADDRESS_FROM, ADDRESS_TO, TENANCY, tenancy_frame

        # a shallow copy (columns are only added): reset_index copied every value
        plain = linked.index.equals(pd.RangeIndex(len(linked)))
        hashed = linked.copy(deep=False) if plain else linked.reset_index(drop=True)
        columns = sorted(c for c in hashed.columns if c not in WHOLE_ONLY)
        for name in (ADDRESS_FROM, ADDRESS_TO):  # parsed as of today, as person_address does
            if name in hashed.columns:
                hashed[f"{name}:parsed"] = parse_dates(hashed[name]).to_numpy()
                columns.append(f"{name}:parsed")
        if former_keys is not None and PREVIOUS_ADDRESSES in hashed.columns:
            hashed[f"{PREVIOUS_ADDRESSES}:parsed"] = _former_facts(linked, former_keys, former)
            columns.append(f"{PREVIOUS_ADDRESSES}:parsed")
        tenancy = tenancy_frame(linked)
        in_one = tenancy["_role"].notna().to_numpy()
        tenancy_hash = np.where(in_one, row_hashes(tenancy, TENANCY) | np.uint64(1), np.uint64(0))
        keys = np.asarray(address_keys, dtype=object)
        address_hash = np.where(
            pd.notna(keys),
            pd.util.hash_array(np.where(pd.notna(keys), keys, "")) | np.uint64(1),
            np.uint64(0),
        ).astype(np.uint64)
        declared = declared if declared is not None else pd.DataFrame()
        if len(declared):
            d_from = record_keys(declared["source"], declared["source_record_id"])
            d_to = record_keys(declared["source"], declared["related_source_record_id"])
            d_hash = row_hashes(declared, sorted(declared.columns))
        else:
            d_from = d_to = np.array([], dtype=str)
            d_hash = np.array([], dtype=np.uint64)
        return cls(
            keys=record_keys(hashed["source"], hashed["source_record_id"]),
            person=hashed["person_id"].to_numpy(str),
            row=row_hashes(hashed, columns),
            address=address_hash,
            tenancy=tenancy_hash.astype(np.uint64),
            declared_from=d_from,
            declared_to=d_to,
            declared=d_hash,
            link=row_hashes(hashed, list(_LINK_COLUMNS)),
            analyst_link=row_hashes(hashed, list(_ANALYST_LINK_COLUMNS)),
        )


def _former_facts(
    linked: pd.DataFrame, former_keys: pd.Series, former: pd.DataFrame | None = None
) -> np.ndarray:
    """Per record, its former addresses' keys and periods as person_address shows them
    (dates parsed as of today), as text: None for a record without any."""
    from care_etl.index.golden import parse_dates
    from care_etl.index.households import ADDRESS_FROM, ADDRESS_TO, former_frame

    former = former_frame(linked) if former is None else former
    out = np.full(len(linked), None, dtype=object)
    if former.empty:
        return out
    keys = [k for ks in former_keys if isinstance(ks, tuple) for k in ks]
    start, end = (parse_dates(former[n]).astype(str).to_numpy() for n in (ADDRESS_FROM, ADDRESS_TO))
    text = pd.Series(keys, dtype=object).astype(str) + "|" + start + "|" + end
    joined = text.groupby(former["_record"].to_numpy()).agg(_SEP.join)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return out


def record_keys(source: pd.Series, record_id: pd.Series) -> np.ndarray:
    return (source.astype(str) + _SEP + record_id.astype(str)).to_numpy(str)


def split_keys(keys: np.ndarray) -> list[tuple[str, str]]:
    """(source, source_record_id) of each record key."""
    return [(s, r) for s, _, r in [str(k).partition(_SEP) for k in np.asarray(keys).tolist()]]


@dataclass
class Bands:
    """Per person: the date of birth (ISO text, '' if none) and age band published."""

    person: np.ndarray
    dob: np.ndarray
    band: np.ndarray

    @classmethod
    def of(cls, person_index: pd.DataFrame, today: dt.date) -> Bands:
        from care_etl.index.analyst import age_band

        dob = _dob_texts(person_index.get("date_of_birth", pd.Series(dtype=object)))
        return cls(
            person_index["person_id"].to_numpy(str),
            dob,
            _bands(dob, today, age_band),
        )

    def moved(self, today: dt.date) -> np.ndarray:
        """Persons whose age band today differs from the one published."""
        from care_etl.index.analyst import age_band

        return self.person[_bands(self.dob, today, age_band) != self.band]


def _dob_texts(values: pd.Series) -> np.ndarray:
    def text(v: object) -> str:
        return "" if v is None or pd.isna(v) else pd.Timestamp(v).date().isoformat()

    return np.array([text(v) for v in values], dtype=str)


def _bands(dob: np.ndarray, today: dt.date, age_band: Callable) -> np.ndarray:
    codes, distinct = pd.factorize(dob)
    bands = _iso_bands(np.asarray(distinct, dtype=str), today, age_band)
    return bands[codes] if len(dob) else dob


def _iso_bands(dob: np.ndarray, today: dt.date, age_band: Callable) -> np.ndarray:
    """age_band of each ISO date text ('' gives ''), by whole arrays: a Timestamp per
    distinct date took half a second at 100k persons. Other texts go through age_band."""
    from care_etl.index.analyst import bands_of_ages

    texts = dob.tolist()
    out = np.full(len(texts), "", dtype=object)
    iso = np.array([len(d) == 10 and d[4] == "-" == d[7] for d in texts], dtype=bool)
    if iso.any():
        year, month, day = np.array([d.split("-") for d in dob[iso].tolist()], dtype=np.int64).T
        band, born = bands_of_ages(year, month, day, today)
        out[iso] = np.where(born, band, "")
    for i in np.flatnonzero(~iso & (dob != "")):
        out[i] = age_band(texts[i], today) or ""
    return out.astype(str)


@dataclass
class Plan:
    """Which persons an incremental build rebuilds, and which records it reads to do so."""

    #: Persons whose rows are built again (their new rows replace their old ones).
    build: set[str]
    #: Persons whose rows are deleted: `build`, and old ids that are gone.
    rewrite: set[str]
    #: Whether each linked record is read for the build (its person or a neighbour's).
    context: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    #: Per link table: the records (keys as RecordFacts.keys) whose row to update, to insert
    #: (new records), and the records gone (rows to delete); None to write the table whole.
    links: dict[str, LinkChanges | None] = field(default_factory=dict)


@dataclass
class LinkChanges:
    """The rows of one link table that differ from the ones published, by record key."""

    update: np.ndarray
    insert: np.ndarray
    delete: np.ndarray
    #: Of `update`, the records whose row changed only outside its analyst columns (lineage
    #: mostly, renumbered by a removed row): only those columns are set.
    update_rest: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    #: Whether each of the run's records (in RecordFacts' order) is in `update`, `update_rest`
    #: or `insert`.
    written: np.ndarray | None = None

    @classmethod
    def of(cls, old_keys: np.ndarray, old_hash: np.ndarray, keys: np.ndarray,
           hashes: np.ndarray, where: np.ndarray) -> LinkChanges:  # fmt: skip
        """`where`: each record's position in the old keys (-1: new)."""
        found = where >= 0
        differs = found & (old_hash[np.where(found, where, 0)] != hashes)
        kept = np.zeros(len(old_keys), dtype=bool)
        kept[where[found]] = True
        return cls(keys[differs], keys[~found], old_keys[~kept], written=differs | ~found)


def _with_rest(whole: LinkChanges, analyst: LinkChanges) -> LinkChanges:
    """person_source_link's changes, with the updates that leave the analyst columns as they
    were set apart (cheaper to write: fewer columns)."""
    rest = ~pd.Series(whole.update, dtype=object).isin(analyst.update).to_numpy()
    whole.update, whole.update_rest = whole.update[~rest], whole.update[rest]
    return whole


@dataclass
class IndexState:
    """The state of the last publish, and what this run will store after its own."""

    run_id: str
    fingerprint: str
    facts: RecordFacts
    issued: np.ndarray
    bands: Bands
    #: The pseudonym (ASCII bytes) of each record of `facts` and of its person, under the
    #: fingerprint's key; empty when none were kept.
    record_pseudonyms: np.ndarray = field(default_factory=lambda: np.array([], dtype="S1"))
    person_pseudonyms: np.ndarray = field(default_factory=lambda: np.array([], dtype="S1"))
    #: The last positions() asked for: (the record keys, their positions).
    _positions: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def positions(self, facts: RecordFacts) -> np.ndarray:
        """Each record of `facts` at its position in this state's records (-1: new), found
        once for kept_pseudonyms and plan alike."""
        if self._positions is None or self._positions[0] is not facts.keys:
            self._positions = (facts.keys, pd.Index(self.facts.keys).get_indexer(facts.keys))
        return self._positions[1]

    @classmethod
    def fresh(cls, fingerprint: str, issued: set[str]) -> IndexState:
        """A state with nothing published yet (for after() on a whole build)."""
        empty = np.array([], dtype=str)
        none = np.array([], dtype=np.uint64)
        facts = RecordFacts(empty, empty, none, none, none, empty, empty, none, none, none)
        issued_ids = np.asarray(sorted(issued), dtype=str)
        return cls("", fingerprint, facts, issued_ids, Bands(empty, empty, empty))

    @classmethod
    def load(cls, folder: Path | None, database_url: str, fingerprint: str) -> IndexState | None:
        """The stored state, if it was written for this database's latest run and this code."""
        path = None if folder is None else folder / STATE_FILE
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                state = cls._from_arrays(stored)
        except KeyError as exc:  # an array this release keeps is missing: an older layout
            log.info("incremental: index state of an older release (no %s); building whole", exc)
            return None
        except UNREADABLE as exc:
            log.warning("incremental: index state unreadable (%s); building whole", exc)
            return None
        if state.fingerprint != fingerprint:
            log.info("incremental: index code, trust or key changed; building whole")
            return None
        if _latest_run(database_url) != state.run_id:
            log.info("incremental: the index state is not of this database's last run")
            return None
        return state

    @classmethod
    def _from_arrays(cls, stored) -> IndexState:
        facts = RecordFacts(
            **{name: stored[f"facts:{name}"] for name in RecordFacts.__dataclass_fields__}
        )
        bands = Bands(**{name: stored[f"bands:{name}"] for name in Bands.__dataclass_fields__})
        return cls(
            str(stored["run_id"]), str(stored["fingerprint"]), facts, stored["issued"], bands,
            stored["record_pseudonyms"], stored["person_pseudonyms"],
        )  # fmt: skip

    def kept_pseudonyms(self, facts: RecordFacts) -> tuple[np.ndarray, np.ndarray]:
        """The stored pseudonym of each record of `facts` and of its person (None where this
        state holds none), found by record key and person id: no id is hashed again."""
        old = self.facts
        records = np.full(len(facts.keys), None, dtype=object)
        persons = np.full(len(facts.keys), None, dtype=object)
        if len(self.record_pseudonyms) != len(old.keys) or not len(old.keys):
            return records, persons
        where = self.positions(facts)
        found = where >= 0
        records[found] = self.record_pseudonyms[where[found]].astype(str)
        first = ~pd.Index(old.person).duplicated()
        by_person = pd.Index(old.person[first])
        where = by_person.get_indexer(facts.person)
        found = where >= 0
        persons[found] = self.person_pseudonyms[first][where[found]].astype(str)
        return records, persons

    def previous_links(self) -> tuple[pd.DataFrame, set[str]]:
        """As publish.previous_index reads them from the database: the last links and every
        id ever issued."""
        parts = [k.partition(_SEP) for k in self.facts.keys.astype(str).tolist()]
        links = pd.DataFrame(
            {
                "source": pd.Series([p[0] for p in parts], dtype=object),
                "source_record_id": pd.Series([p[2] for p in parts], dtype=object),
                "person_id": pd.Series(self.facts.person.astype(str).tolist(), dtype=object),
            }
        )
        return links, set(self.issued.tolist())

    def plan(self, facts: RecordFacts, today: dt.date) -> Plan:
        """The changed persons, then the affected ones, then the records their build reads."""
        old = self.facts
        persons = set(facts.person.tolist())
        where = self.positions(facts)
        found = where >= 0
        at = np.where(found, where, 0)
        same = found & (old.row[at] == facts.row) & (old.person[at] == facts.person)
        same &= (old.address[at] == facts.address) & (old.tenancy[at] == facts.tenancy)
        kept_old = np.zeros(len(old.keys), dtype=bool)
        kept_old[where[same]] = True
        changed = {*facts.person[~same].tolist(), *old.person[~kept_old].tolist()}
        changed |= self._declared_ends(facts)
        changed |= set(self.bands.moved(today).tolist())
        # every record each changed person holds now or held before
        seed_new = _isin(facts.person, changed)
        seed_old = _isin(old.person, changed)
        build = changed & persons
        build |= _sharing(facts, [facts, old], [seed_new, seed_old])
        build_now = _isin(facts.person, build)
        context = _isin(facts.person, build | _sharing(facts, [facts], [build_now]))
        rewrite = build | (changed - persons)
        return Plan(
            build,
            rewrite,
            context,
            {
                "persons_changed": len(changed & persons),
                "persons_rebuilt": len(build),
                "persons_read": len(set(facts.person[context].tolist())),
            },
            {
                "person_source_link": _with_rest(
                    LinkChanges.of(old.keys, old.link_rows(), facts.keys, facts.link_rows(),
                                   where),
                    LinkChanges.of(old.keys, old.analyst_link, facts.keys, facts.analyst_link,
                                   where),
                ),
                "analyst_person_source_link": LinkChanges.of(
                    old.keys, old.analyst_link, facts.keys, facts.analyst_link, where
                ),
            },
        )  # fmt: skip

    def _declared_ends(self, facts: RecordFacts) -> set[str]:
        """Persons (before and now) at either end of a declared relationship added or removed."""
        old = self.facts
        new_rows = ~np.isin(facts.declared, old.declared)
        gone_rows = ~np.isin(old.declared, facts.declared)
        ends = {
            *facts.declared_from[new_rows].tolist(),
            *facts.declared_to[new_rows].tolist(),
            *old.declared_from[gone_rows].tolist(),
            *old.declared_to[gone_rows].tolist(),
        }
        if not ends:
            return set()
        return {
            *facts.person[_isin(facts.keys, ends)].tolist(),
            *old.person[_isin(old.keys, ends)].tolist(),
        }

    def after(self, run_id: str, facts: RecordFacts, bands: Bands, plan: Plan | None,
              ids: pd.Series,
              pseudonyms: tuple[np.ndarray, np.ndarray] | None = None) -> IndexState:  # fmt: skip
        """The state once this run is published: every record's facts, ids issued, bands,
        and the pseudonyms of each record of `facts` and of its person."""
        # distinct first (by hashing): union1d sorts what it is given
        new_ids = pd.unique(ids.dropna().astype(str).to_numpy(object))
        issued = np.union1d(self.issued, np.asarray(new_ids, dtype=str))
        if plan is not None:  # unchanged persons keep the bands published before
            keep = ~_isin(self.bands.person, plan.rewrite)
            bands = Bands(
                *(np.concatenate([getattr(self.bands, n)[keep], getattr(bands, n)])
                  for n in ("person", "dob", "band"))
            )  # fmt: skip
        state = IndexState(run_id, self.fingerprint, facts, issued, bands)
        if pseudonyms is not None:
            state.record_pseudonyms = np.asarray(pseudonyms[0]).astype("S")
            state.person_pseudonyms = np.asarray(pseudonyms[1]).astype("S")
        return state

    def save(self, folder: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "run_id": np.array(self.run_id),
            "fingerprint": np.array(self.fingerprint),
            "issued": self.issued.astype(str),
            "record_pseudonyms": self.record_pseudonyms.astype("S"),
            "person_pseudonyms": self.person_pseudonyms.astype("S"),
        }
        for name in RecordFacts.__dataclass_fields__:
            arrays[f"facts:{name}"] = getattr(self.facts, name)
        for name in Bands.__dataclass_fields__:
            arrays[f"bands:{name}"] = getattr(self.bands, name).astype(str)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(folder / STATE_FILE, buffer.getvalue())


def _sharing(facts: RecordFacts, sides: list[RecordFacts], seeds: list[np.ndarray]) -> set[str]:
    """Persons holding a record (now) at an address key or in a tenancy that a seed record
    holds, or declaring a relationship to a seed record (now)."""
    addresses = np.concatenate([s.address[m] for s, m in zip(sides, seeds, strict=True)])
    tenancies = np.concatenate([s.tenancy[m] for s, m in zip(sides, seeds, strict=True)])
    records = np.concatenate([s.keys[m] for s, m in zip(sides, seeds, strict=True)])
    hit = np.isin(facts.address, addresses[addresses != 0])
    hit |= np.isin(facts.tenancy, tenancies[tenancies != 0])
    declaring = facts.declared_from[_isin(facts.declared_to, records)]
    related = facts.declared_to[_isin(facts.declared_from, records)]
    hit |= _isin(facts.keys, np.concatenate([declaring, related]))
    return set(facts.person[hit].tolist())


def _isin(values: np.ndarray, wanted) -> np.ndarray:
    """np.isin for text, by hashing (np.isin sorts both sides: slow for text arrays)."""
    wanted = list(wanted) if isinstance(wanted, set) else wanted
    return pd.Series(values, dtype=object).isin(wanted).to_numpy()


def _latest_run(database_url: str) -> str | None:
    from care_etl.index.publish import engine_for, latest_run, pipeline_run

    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(pipeline_run.name):
                return None
            return latest_run(conn)
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


@dataclass
class PersonWrite:
    """Handed to publish() as its `delta`: the person-keyed tables hold the rebuilt persons'
    rows (and maybe neighbours' rows, which are not written); their rows, and those of the
    persons gone, are deleted and the rebuilt ones inserted. The link tables are written
    record by record (LinkChanges): their frames carry each row's record key in `RECORD`.
    Other tables are written whole."""

    plan: Plan
    previous_run: str
    #: The pseudonym of each person id to rewrite, for the analyst tables.
    pseudonyms: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: The analyst record key of each record gone (RecordFacts.keys -> record_key).
    gone_record_keys: dict[str, str] = field(default_factory=dict)

    def write(
        self,
        conn: sa.Connection,
        table: sa.Table,
        frame: pd.DataFrame | None,
        insert: Insert,
    ) -> bool:
        key = PERSON_KEYS.get(table.name)
        if key is None:
            return False
        from care_etl.index.publish import latest_run

        if latest_run(conn) != self.previous_run:
            from care_etl.errors import DatabaseError

            raise DatabaseError("the index was published by another run meanwhile: run again")
        if table.name in WHOLE_TABLES:
            self._write_links(conn, table, frame, insert)
            return True
        if key == "person_id":
            stale, built = sorted(self.plan.rewrite), self.plan.build
        else:
            stale = sorted({self.pseudonyms[p] for p in self.plan.rewrite if p in self.pseudonyms})
            built = {self.pseudonyms[p] for p in self.plan.build if p in self.pseudonyms}
        delete_persons(conn, table, key, stale)
        if frame is not None and len(frame):
            insert(conn, table, frame[frame[key].isin(built).to_numpy()])
        self.counts["tables_written_by_person"] = self.counts.get("tables_written_by_person", 0) + 1
        return True

    def _write_links(
        self,
        conn: sa.Connection,
        table: sa.Table,
        frame: pd.DataFrame | None,
        insert: Insert,
    ) -> None:
        """Update the changed records' rows, insert the new ones', delete the gone ones'."""
        from care_etl.index.publish import delete_rows, update_rows

        changes = self.plan.links[table.name]
        keys = LINK_KEYS[table.name]
        if frame is None:  # no pseudonym key: the analyst tables stay empty
            return
        if changes is None:  # most rows changed: replaced whole (care_etl.index.stage)
            conn.execute(table.delete())
            insert(conn, table, frame)
            self.counts[f"{table.name}_written_whole"] = 1
            return
        if table.name == "person_source_link":
            pairs = split_keys(changes.delete)
            gone = pd.DataFrame(pairs, columns=["source", "source_record_id"], dtype=object)
        else:
            gone = pd.DataFrame({"record_key": [self.gone_record_keys[k] for k in changes.delete]})
        delete_rows(conn, table, gone, keys)
        if RECORD in frame.columns:
            record = frame[RECORD]
        else:
            record = pd.Series(record_keys(frame["source"], frame["source_record_id"]))
        update_rows(conn, table, frame[record.isin(changes.update).to_numpy()], keys)
        rest = frame[record.isin(changes.update_rest).to_numpy()]
        update_rows(conn, table, rest, keys, columns=_LINK_COLUMNS)
        insert(conn, table, frame[record.isin(changes.insert).to_numpy()])
        name = "analyst_links" if table.name.startswith("analyst") else "links"
        self.counts.update({f"{name}_updated": len(changes.update) + len(changes.update_rest),
                            f"{name}_inserted": len(changes.insert),
                            f"{name}_deleted": len(changes.delete)})  # fmt: skip

    @property
    def used(self) -> bool:
        return self.counts.get("tables_written_by_person", 0) > 0
