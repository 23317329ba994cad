"""The index stage of an incremental run: rebuild only the persons whose rows can have changed.

A person's index rows are a function of their own records, of the address keys, tenancies
and declared relationships they share with other persons, and of today's date (analyst age
bands). So the state of the last publish (`index_state.npz` in the cache folder) keeps, per
record, a 64-bit hash of the linked row (values, person id, parsed dates), of its address
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

import care_etl
from care_etl.incremental.delta import PERSON_KEYS, delete_persons, row_hashes
from care_etl.incremental.state import write_atomic

log = logging.getLogger(__name__)

STATE_FILE = "index_state.npz"
#: Bumped when the layout of the state file changes.
FORMAT = 1
#: The code an index row is computed by: a change to any of it forces a whole build.
INDEX_MODULES = (
    "index/build.py",
    "index/golden.py",
    "index/households.py",
    "index/ids.py",
    "index/analyst.py",
    "incremental/index.py",
    "incremental/delta.py",
)
#: Columns only person_source_link shows: their tables (and the analyst copy) are written
#: whole, as lineage (row numbers) and match probabilities move for most records every run.
WHOLE_ONLY = frozenset({"link_type", "match_probability", "lineage", "ocr_confidence",
                        "field_confidence", "quality_issues"})  # fmt: skip
WHOLE_TABLES = frozenset({"person_source_link", "analyst_person_source_link"})
#: Above this share of persons to rebuild, building and publishing whole is as quick.
MAX_SHARE = 0.2
_SEP = "\x1f"


def fingerprint(trust: object, key: bytes | None, columns: list[str]) -> str:
    """What every stored hash means: the index code, the trust order, the pseudonym key (as
    an HMAC of a constant, never the key) and the linked records' columns."""
    digest = hashlib.sha256(f"{FORMAT}|{trust!r}|{sorted(columns)!r}".encode())
    package = Path(care_etl.__file__).parent
    for name in INDEX_MODULES:
        digest.update(name.encode())
        digest.update((package / name).read_bytes())
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

    @classmethod
    def of(
        cls, linked: pd.DataFrame, address_keys: pd.Series, declared: pd.DataFrame | None
    ) -> RecordFacts:
        from care_etl.index.golden import parse_dates
        from care_etl.index.households import ADDRESS_FROM, ADDRESS_TO, TENANCY, tenancy_frame

        hashed = linked.reset_index(drop=True)
        columns = sorted(c for c in hashed.columns if c not in WHOLE_ONLY)
        for name in (ADDRESS_FROM, ADDRESS_TO):  # parsed as of today, as person_address does
            if name in hashed.columns:
                hashed[f"{name}:parsed"] = parse_dates(hashed[name]).to_numpy()
                columns.append(f"{name}:parsed")
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
            d_from = _record_keys(declared["source"], declared["source_record_id"])
            d_to = _record_keys(declared["source"], declared["related_source_record_id"])
            d_hash = row_hashes(declared, sorted(declared.columns))
        else:
            d_from = d_to = np.array([], dtype=str)
            d_hash = np.array([], dtype=np.uint64)
        return cls(
            keys=_record_keys(hashed["source"], hashed["source_record_id"]),
            person=hashed["person_id"].to_numpy(str),
            row=row_hashes(hashed, columns),
            address=address_hash,
            tenancy=tenancy_hash.astype(np.uint64),
            declared_from=d_from,
            declared_to=d_to,
            declared=d_hash,
        )


def _record_keys(source: pd.Series, record_id: pd.Series) -> np.ndarray:
    return (source.astype(str) + _SEP + record_id.astype(str)).to_numpy(str)


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
    bands = [age_band(str(d), today) if d else None for d in distinct]
    return np.array([b or "" for b in bands], dtype=str)[codes] if len(dob) else dob


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


@dataclass
class IndexState:
    """The state of the last publish, and what this run will store after its own."""

    run_id: str
    fingerprint: str
    facts: RecordFacts
    issued: np.ndarray
    bands: Bands

    @classmethod
    def fresh(cls, fingerprint: str, issued: set[str]) -> IndexState:
        """A state with nothing published yet (for after() on a whole build)."""
        empty = np.array([], dtype=str)
        facts = RecordFacts(empty, empty, *(np.array([], dtype=np.uint64),) * 3, empty, empty,
                            np.array([], dtype=np.uint64))  # fmt: skip
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
        except (OSError, ValueError, KeyError) as exc:
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
            str(stored["run_id"]), str(stored["fingerprint"]), facts, stored["issued"], bands
        )

    def previous_links(self) -> tuple[pd.DataFrame, set[str]]:
        """As publish.previous_index reads them from the database: the last links and every
        id ever issued."""
        source, _, record = np.char.partition(self.facts.keys.astype(str), _SEP).T
        links = pd.DataFrame(
            {"source": source, "source_record_id": record, "person_id": self.facts.person}
        ).astype(object)
        return links, set(self.issued.tolist())

    def plan(self, facts: RecordFacts, today: dt.date) -> Plan:
        """The changed persons, then the affected ones, then the records their build reads."""
        old = self.facts
        persons = set(facts.person.tolist())
        where = pd.Index(old.keys).get_indexer(facts.keys)
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
        )

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
              ids: pd.Series) -> IndexState:  # fmt: skip
        """The state once this run is published: every record's facts, ids issued, bands."""
        issued = np.union1d(self.issued, np.asarray(sorted(ids.dropna().astype(str)), dtype=str))
        if plan is not None:  # unchanged persons keep the bands published before
            keep = ~_isin(self.bands.person, plan.rewrite)
            bands = Bands(
                *(np.concatenate([getattr(self.bands, n)[keep], getattr(bands, n)])
                  for n in ("person", "dob", "band"))
            )  # fmt: skip
        return IndexState(run_id, self.fingerprint, facts, issued, bands)

    def save(self, folder: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "run_id": np.array(self.run_id),
            "fingerprint": np.array(self.fingerprint),
            "issued": self.issued.astype(str),
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
    persons gone, are deleted and the rebuilt ones inserted. Other tables are written whole."""

    plan: Plan
    previous_run: str
    #: The pseudonym of each person id to rewrite, for the analyst tables.
    pseudonyms: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def write(
        self,
        conn: sa.Connection,
        table: sa.Table,
        frame: pd.DataFrame | None,
        insert: Callable[[sa.Connection, sa.Table, pd.DataFrame | None], None],
    ) -> bool:
        key = PERSON_KEYS.get(table.name)
        if key is None or table.name in WHOLE_TABLES:
            return False
        from care_etl.index.publish import latest_run

        if latest_run(conn) != self.previous_run:
            from care_etl.errors import DatabaseError

            raise DatabaseError("the index was published by another run meanwhile: run again")
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

    @property
    def used(self) -> bool:
        return self.counts.get("tables_written_by_person", 0) > 0
