"""Who lives where, and with whom: person_address, household and relationship.

A worker about to visit needs everyone at the address and how they relate. A household is
the people whose current address is one property: the same UPRN, or, where no record of the
address carries one, the same normalised address (its numbered parts and postcode). Declared
relationships come from the sources (housing's relationship to the lead tenant within a
tenancy; a source's own relationship table, read by sources/declared.py); everyone else in a
household is related as co-resident.

person_address also holds each record's former addresses (canonical.PREVIOUS_ADDRESSES, an
address history's ended rows) with their periods, never current: the worker sees where the
person lived, while households and co-residence are about now and read current rows only.

Relationship rows read "related_person_id is person_id's <relationship>". Where sources
declare different relationships between the same two persons (housing says Partner, social
care says Carer), every row is kept and one is `preferred`, by a stated rule (`rule`): a
term that only says more of the same relationship wins (Mother over Parent: `more_specific`);
otherwise the most trusted source's (its place in the trust order golden records use for
`default_trust`: `trust_order`), and the preferred row names the others in
`other_relationships` so that a worker sees the sources disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from care_etl.canonical import PREVIOUS_ADDRESSES
from care_etl.index.golden import RECORDED_ON, Trust, choose, parse_dates, sort_rows

#: Columns a contract may map to give an address its period (e.g. tenancy start and end).
ADDRESS_FROM, ADDRESS_TO = "address_from", "address_to"
LEAD = "lead tenant"
#: What A is to B when B is A's <key>: what the lead tenant is to a member who is the
#: lead's <key>, and the other direction of a relationship a source declares one way only.
INVERSE = {
    "partner": "Partner",
    "spouse": "Partner",
    "husband": "Partner",
    "wife": "Partner",
    "son": "Parent",
    "daughter": "Parent",
    "child": "Parent",
    "parent": "Child",
    "mother": "Child",
    "father": "Child",
    "grandchild": "Grandparent",
    "grandparent": "Grandchild",
    "sibling": "Sibling",
    "brother": "Sibling",
    "sister": "Sibling",
    "lodger": "Lead tenant",
    "carer": "Cared for",
    "cared for": "Carer",
    "other": "Other",
}
CO_RESIDENT = "Co-resident"
_DIGIT = re.compile(r"\d")
_has_digit = _DIGIT.search
ADDRESS_PARTS = ("address", "postcode", "uprn")
#: One source's records at one address form a tenancy (with a lead tenant, where one is named).
TENANCY = ["source", "address", "postcode", "uprn"]

ADDRESS_COLUMNS = [
    "person_id",
    "source",
    "source_record_id",
    "address",
    "postcode",
    "uprn",
    "address_key",
    "from_date",
    "to_date",
    "is_current",
    "recorded_on",
]
#: What says each member lives there (evidence_of): the latest date any of their records
#: there gives, the sources of those records, and the sources holding an open period there.
EVIDENCE_COLUMNS = ["last_evidence_on", "evidence_sources", "open_period_sources"]
HOUSEHOLD_COLUMNS = [
    "household_id",
    "person_id",
    "address",
    "postcode",
    "uprn",
    "basis",
    *EVIDENCE_COLUMNS,
]
#: A relationship as a source states it (or co-residence), then which of a pair's is preferred.
STATED_COLUMNS = ["person_id", "related_person_id", "relationship", "source", "basis"]
RELATIONSHIP_COLUMNS = [*STATED_COLUMNS, "preferred", "rule", "other_relationships"]
#: Relationship terms that say one relationship, the first the general one: Mother and
#: Father are kinds of Parent. A term not here is a relationship of its own (Carer, Lodger).
KIN = (
    ("parent", "mother", "father"),
    ("child", "son", "daughter"),
    ("partner", "spouse", "husband", "wife", "civil partner"),
    ("sibling", "brother", "sister"),
    ("grandparent", "grandmother", "grandfather"),
    ("grandchild", "grandson", "granddaughter"),
)
_KIN_OF = {term: kin[0] for kin in KIN for term in kin}
#: Terms that say nothing a source's other term contradicts.
VAGUE = frozenset({"other", "unknown", "not known", ""})


@dataclass
class Households:
    person_address: pd.DataFrame
    household: pd.DataFrame
    relationship: pd.DataFrame


def build(
    linked: pd.DataFrame,
    trust: Trust,
    declared: pd.DataFrame | None,
    keys: pd.Series | None = None,
    former_keys: pd.Series | None = None,
) -> Households:
    """The three tables from the linked records (and a source's declared relationships).

    `keys`, `former_keys`: the records' address keys and former address keys
    (record_keys_with_former), when computed over more records than `linked` (an incremental
    run builds a few persons, but a key depends on every record's address).
    """
    addresses = person_addresses(linked, trust, keys, former_keys)
    household = households(addresses, trust.registers)
    relationship = relationships(linked, household, declared, trust)
    return Households(addresses, household, relationship)


def person_addresses(
    linked: pd.DataFrame,
    trust: Trust,
    keys: pd.Series | None = None,
    former_keys: pd.Series | None = None,
) -> pd.DataFrame:
    """Every address a record gives a person, its period where known, the current one flagged;
    then the record's former addresses, never current.

    `keys`, `former_keys`: each record's address key and former address keys
    (record_keys_with_former), in the order of `linked`.
    """
    if keys is None or former_keys is None:
        computed, computed_former = record_keys_with_former(linked)
        keys = computed if keys is None else keys
        former_keys = computed_former if former_keys is None else former_keys
    recorded_on = _recorded_on(linked)
    frame = address_frame(linked)
    frame["recorded_on"] = _days(recorded_on)
    frame["from_date"] = _dates(_col(linked, ADDRESS_FROM))
    frame["to_date"] = _dates(_col(linked, ADDRESS_TO))
    frame["address_key"] = np.asarray(keys, dtype=object)
    frame = frame[frame["address_key"].notna()].reset_index(drop=True)
    former = _former_rows(linked, former_keys, recorded_on)
    if frame.empty:
        return former[ADDRESS_COLUMNS] if len(former) else pd.DataFrame(columns=ADDRESS_COLUMNS)
    live = frame[frame["to_date"].isna()]
    recorded = pd.to_datetime(live["from_date"]).fillna(pd.to_datetime(live["recorded_on"]))
    left = _left_since(live, recorded, [frame, former])
    live, recorded = live[~left], recorded[~left]
    values = pd.DataFrame(
        {
            "person_id": live["person_id"],
            "field": "address_key",
            "value": live["address_key"],
            "typed": live["address_key"],
            "source": live["source"],
            "recorded_on": recorded,
        }
    )
    chosen = choose(values, trust)
    # as bool: with no live address, an empty object column would select columns, not rows
    current = chosen[chosen["is_golden"].astype(bool)]
    current = pd.MultiIndex.from_arrays([current["person_id"], current["value"]])
    own = pd.MultiIndex.from_arrays([frame["person_id"], frame["address_key"]])
    frame["is_current"] = own.isin(current) & frame["to_date"].isna().to_numpy()
    if len(former):  # after the current rows: a record's current address sorts first
        frame = pd.concat([frame[ADDRESS_COLUMNS], former[ADDRESS_COLUMNS]], ignore_index=True)
    return sort_rows(frame[ADDRESS_COLUMNS], ["person_id", "source", "source_record_id"])


def _left_since(live: pd.DataFrame, since: pd.Series, periods: list[pd.DataFrame]) -> np.ndarray:
    """Per live row (no end date), whether another record of the person ended that very
    address after the row's date (`since`: its from_date, else the record's date) or the
    row has no date at all.

    A GP record is rarely updated when someone moves: it keeps naming the flat whose tenancy
    housing ended years ago. Taken as current, it seats the person in the new occupants'
    household, and a worker is told a stranger lives there. The ended period is the later
    word; a record dated after it (they moved back, or registered there since) still counts.
    """
    ended = pd.concat(
        [
            p.loc[p["to_date"].notna(), ["person_id", "address_key", "to_date"]]
            for p in periods
            if {"address_key", "to_date"} <= set(p.columns)
        ],
        ignore_index=True,
    )
    ended = ended[ended["address_key"].notna()]
    if ended.empty or live.empty:
        return np.zeros(len(live), dtype=bool)
    until = (
        pd.to_datetime(ended["to_date"])
        .groupby([ended["person_id"].to_numpy(), ended["address_key"].to_numpy()])
        .max()
    )
    row = pd.MultiIndex.from_arrays([live["person_id"], live["address_key"]])
    until = until.reindex(row).to_numpy()
    since = pd.to_datetime(since).to_numpy()
    return ~pd.isna(until) & (pd.isna(since) | (since <= until))


def _former_rows(
    linked: pd.DataFrame, former_keys: pd.Series, recorded_on: pd.Series
) -> pd.DataFrame:
    """person_address rows of the records' former addresses (is_current False), those with
    an address key only."""
    former = former_frame(linked)
    if former.empty:
        return former
    former["address_key"] = [k for ks in former_keys if isinstance(ks, tuple) for k in ks]
    former["from_date"] = _dates(former.pop(ADDRESS_FROM))
    former["to_date"] = _dates(former.pop(ADDRESS_TO))
    former["recorded_on"] = _days(recorded_on).to_numpy()[former.pop("_record").to_numpy()]
    former["is_current"] = False
    return former[former["address_key"].notna()].reset_index(drop=True)


def former_frame(linked: pd.DataFrame) -> pd.DataFrame:
    """One row per entry of the records' former addresses (canonical.PREVIOUS_ADDRESSES, as
    standardised): the record's person_id, source, source_record_id and position in `linked`
    (`_record`), the entry's address parts and its address_from / address_to as written."""
    names = ("person_id", "source", "source_record_id", *ADDRESS_PARTS, ADDRESS_FROM, ADDRESS_TO)
    rows: list[tuple] = []
    for position, text in enumerate(_col(linked, PREVIOUS_ADDRESSES)):
        if text is None:
            continue
        for entry in _entries(text):
            rows.append((position, *(entry.get(k) for k in names[3:])))
    frame = pd.DataFrame(rows, columns=["_record", *names[3:]], dtype=object)
    frame["_record"] = frame["_record"].astype("int64")
    at = frame["_record"].to_numpy()
    for column in reversed(names[:3]):
        frame.insert(0, column, _col(linked, column).to_numpy()[at])
    return frame


def _entries(text: object) -> list[dict]:
    """The entries of one record's former addresses (dicts; anything else is skipped)."""
    try:
        entries = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def record_keys_with_former(linked: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each linked record's address key (as record_address_keys), and a tuple of its former
    addresses' keys (None per entry without one; None for a record without any), in the
    records' order. A former address takes a UPRN its text has elsewhere, but gives none:
    the current addresses' keys, hence households, are those without any history."""
    now, former_keys, _ = keys_and_former(linked)
    return now, former_keys


def keys_and_former(linked: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """record_keys_with_former's keys and the former_frame they came from, so that a caller
    needing both parses the records' former addresses (JSON) once."""
    current = address_frame(linked)
    former = former_frame(linked)
    if former.empty:
        return address_keys(current), pd.Series([None] * len(linked), dtype=object), former
    both = pd.concat([current, former[current.columns]], ignore_index=True)
    teaches = np.arange(len(both)) < len(current)
    keys = address_keys(both, teaches)
    now = pd.Series(keys.to_numpy()[: len(current)], index=current.index, dtype=object)
    by_record = pd.Series(keys.to_numpy()[len(current) :]).groupby(former["_record"].to_numpy())
    grouped = by_record.agg(tuple).to_dict()
    return now, pd.Series([grouped.get(i) for i in range(len(linked))], dtype=object), former


def address_frame(linked: pd.DataFrame) -> pd.DataFrame:
    """person_id, source, source_record_id, address, postcode, uprn; missing as None."""
    names = ("person_id", "source", "source_record_id", *ADDRESS_PARTS)
    return pd.DataFrame({c: _col(linked, c) for c in names})


def record_address_keys(linked: pd.DataFrame) -> pd.Series:
    """Each linked record's address key (None without an address), in the records' order."""
    return address_keys(address_frame(linked))


def tenancy_frame(linked: pd.DataFrame) -> pd.DataFrame:
    """Per record, the columns naming its tenancy and its role in it (_role None: no tenancy)."""
    columns = ["person_id", "source", "address", "postcode", "uprn", "relationship_to_head"]
    frame = pd.DataFrame({c: _col(linked, c) for c in columns})
    frame["_role"] = _map_distinct(
        frame["relationship_to_head"], lambda v: str(v).strip().lower() if v else None
    )
    outside = frame["_role"].isna() | ~frame[["address", "uprn"]].notna().any(axis=1)
    frame.loc[outside.to_numpy(), "_role"] = None
    return frame


def address_keys(frame: pd.DataFrame, teaches: np.ndarray | None = None) -> pd.Series:
    """'UPRN:<uprn>', else 'ADDR:<postcode>|<numbered parts>'; an address seen elsewhere with a
    UPRN takes that UPRN, so a record without one still lands in the right household.

    `teaches`: the rows whose UPRN other rows may take (default: all)."""
    texts: dict[tuple[object, object], str | None] = {}
    text = []
    for pair in zip(frame["address"], frame["postcode"], strict=True):
        if pair not in texts:
            texts[pair] = _address_text(*pair)
        text.append(texts[pair])
    uprn = frame["uprn"].where(frame["uprn"].notna(), None)
    pairs = pd.DataFrame({"text": text, "uprn": uprn})
    known = _known_uprns((pairs if teaches is None else pairs[teaches]).dropna())
    keys = []
    for t, u in zip(text, uprn, strict=True):
        if u is not None:
            keys.append(f"UPRN:{u}")
        elif t is not None and t in known:
            keys.append(f"UPRN:{known[t]}")
        elif t is not None:
            keys.append(f"ADDR:{t}")
        else:
            keys.append(None)
    return pd.Series(keys, index=frame.index, dtype=object)


def _known_uprns(pairs: pd.DataFrame) -> dict[str, object]:
    """Per address text, its most common UPRN (value_counts' first, as before, where several)."""
    distinct = pairs.drop_duplicates()
    several = distinct["text"].duplicated(keep=False)
    known = dict(zip(distinct.loc[~several, "text"], distinct.loc[~several, "uprn"], strict=True))
    mixed = pairs[pairs["text"].isin(distinct.loc[several, "text"])]
    known.update(mixed.groupby("text")["uprn"].agg(lambda s: s.value_counts().index[0]))
    return known


#: Words for a flat that one system writes and another does not: read as FLAT.
_FLAT_WORDS = re.compile(r"^(?:APARTMENT|APT|FLT)\b\.?")
#: A flat and its building's number in one part ("FLAT 3 12 HIGH STREET"), as another
#: system writes two ("FLAT 3, 12 HIGH STREET").
_FLAT_THEN_HOUSE = re.compile(r"^(FLAT \S*\d\S*) (\d.*)$")
#: A part that says which dwelling but not where: a number, or a flat and its number.
_BARE = re.compile(r"^(?:(?:FLAT|UNIT|ROOM|NO\.?) )?\S*\d\S*$")


def _address_text(address: object, postcode: object) -> str | None:
    """Postcode and the parts holding a number (flat, house): localities are often left out.

    Apartment is read as flat; a flat comes first, split from its building's number when
    written before it without a comma (FLAT 3 12 HIGH STREET). Numbers alone take the part
    after them (_placed)."""
    if not isinstance(address, str) or not isinstance(postcode, str):
        return None
    parts = [q for p in map(str.strip, address.split(",")) if p for q in _dwelling_part(p)]
    at = [i for i, part in enumerate(parts) if _has_digit(part)]
    numbered = _placed([parts[i] for i in at], parts[at[-1] + 1 :]) if at else parts[:1]
    numbered.sort(key=lambda part: not part.startswith("FLAT "))  # 12 HIGH STREET, FLAT 3
    return f"{postcode.replace(' ', '')}|{', '.join(numbered)}" if numbered else None


def _placed(numbered: list[str], after: list[str]) -> list[str]:
    """Numbers alone ("12, HIGH STREET", read as 12 HIGH STREET) or a flat alone in a named
    building ("FLAT 3, ROSE COURT") with the part after them: they were the whole key,
    shared by every such dwelling of the postcode."""
    if not after or not all(_BARE.match(part) for part in numbered):
        return numbered
    if " " in numbered[-1]:  # FLAT 3, ROSE COURT
        return [*numbered, after[0]]
    return [*numbered[:-1], f"{numbered[-1]} {after[0]}"]


def _dwelling_part(part: str) -> list[str]:
    """One part of an address, with a flat's word as FLAT; two when a flat runs on into its
    building's number."""
    part = _FLAT_WORDS.sub("FLAT", part)
    flat_then_house = _FLAT_THEN_HOUSE.match(part)
    return list(flat_then_house.groups()) if flat_then_house else [part]


def households(addresses: pd.DataFrame, registers: frozenset[str] = frozenset()) -> pd.DataFrame:
    """The people whose current address is one property, now; `registers` as evidence_of."""
    now = addresses[addresses["is_current"]].drop_duplicates(["person_id", "address_key"])
    if now.empty:
        return pd.DataFrame(columns=HOUSEHOLD_COLUMNS)
    shown = _most_common(addresses[addresses["is_current"]], "address_key", ADDRESS_PARTS)
    out = now[["person_id", "address_key"]].merge(shown, on="address_key", how="left")
    out["household_id"] = out["address_key"].map(
        {k: household_id(k) for k in out["address_key"].unique()}
    )
    out["basis"] = out["address_key"].str.startswith("UPRN:").map({True: "uprn", False: "address"})
    evidence = evidence_of(addresses, registers)
    out = out.merge(evidence, on=["person_id", "address_key"], how="left")
    return sort_rows(out[HOUSEHOLD_COLUMNS], ["household_id", "person_id"]).reset_index(drop=True)


def evidence_of(addresses: pd.DataFrame, registers: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Per person and current address key, what says they live there: EVIDENCE_COLUMNS.

    A household is "who lives there now", but a member may be seated there by a form filled
    in decades ago, or a GP registration never updated: the worker must see how old that
    evidence is (inform, don't decide: no one is left out for it). `last_evidence_on` is the
    latest date any of the person's current records there gives (a period's start, such as a
    tenancy's, or the record's own date: a GP registration, a referral); a record with a start
    and no end is an open period (`open_period_sources`), which its source would have ended
    had they left, so it says they live there now whatever its start. So does a record of a
    `registers` source (golden.Trust.registers): a GP registration dated 2003 is on the
    practice's list today, at the address the practice holds today.
    """
    now = addresses[addresses["is_current"]]
    if now.empty:
        return pd.DataFrame(columns=["person_id", "address_key", *EVIDENCE_COLUMNS])
    start = pd.to_datetime(now["from_date"])
    dated = pd.concat([start, pd.to_datetime(now["recorded_on"])], axis=1).max(axis=1)
    keys = [now["person_id"], now["address_key"]]
    out = dated.groupby(keys, sort=False).max().rename("last_evidence_on").to_frame()
    out["last_evidence_on"] = _days(out["last_evidence_on"]).to_numpy()
    out["evidence_sources"] = _sources_of(now, keys, out.index)
    opened = (start.notna() | now["source"].isin(registers)).to_numpy()
    out["open_period_sources"] = _sources_of(now[opened], [k[opened] for k in keys], out.index)
    return out.rename_axis(["person_id", "address_key"]).reset_index()


def _sources_of(rows: pd.DataFrame, keys: list[pd.Series], index: pd.Index) -> pd.Series:
    """Per group of `index`, its rows' distinct sources, sorted and ', '-joined (None: none).

    Each group's set of sources is a bit mask summed in one groupby, and each distinct mask
    joined once: a Python join per group took 1.8 s of a 30k-people run."""
    names, codes = np.unique(rows["source"].to_numpy(dtype=str), return_inverse=True)
    if len(names) > 62:  # more sources than bits: join per group
        return _sources_joined(rows, keys, index)
    bits = pd.DataFrame({"k0": keys[0].to_numpy(), "k1": keys[1].to_numpy(),
                         "bit": np.left_shift(1, codes.astype(np.int64))}).drop_duplicates()  # fmt: skip
    masks = bits.groupby(["k0", "k1"], sort=False)["bit"].sum()
    words = {int(m): ", ".join(n for i, n in enumerate(names) if int(m) >> i & 1)
             for m in pd.unique(masks.to_numpy())}  # fmt: skip
    joined = masks.map(words)
    return pd.Series(joined.reindex(index).to_numpy(), index=index, dtype=object)


def _sources_joined(rows: pd.DataFrame, keys: list[pd.Series], index: pd.Index) -> pd.Series:
    """_sources_of, one Python join per group."""
    pairs = pd.DataFrame({"k0": keys[0].to_numpy(), "k1": keys[1].to_numpy(),
                          "source": rows["source"].to_numpy()}).drop_duplicates()  # fmt: skip
    pairs = pairs.sort_values(["k0", "k1", "source"], kind="stable")
    joined = pairs.groupby(["k0", "k1"], sort=False)["source"].agg(", ".join)
    return pd.Series(joined.reindex(index).to_numpy(), index=index, dtype=object)


def household_id(key: str) -> str:
    """'H' + 12 hex digits of the address key's hash: the same property, the same id."""
    return "H" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12].upper()


def relationships(
    linked: pd.DataFrame,
    household: pd.DataFrame,
    declared: pd.DataFrame | None,
    trust: Trust | None = None,
) -> pd.DataFrame:
    """Declared relationships on person ids (both directions), one of each pair's preferred
    (prefer_declared), then co-residence."""
    rows = [_tenancy_relationships(linked)]
    if declared is not None and len(declared):
        rows.append(_declared(linked, declared))
    stated = pd.concat(rows, ignore_index=True)
    stated = stated[stated["person_id"] != stated["related_person_id"]]
    stated = stated.drop_duplicates(["person_id", "related_person_id", "relationship", "source"])
    stated = prefer_declared(stated, trust or Trust(()))
    pairs = household.merge(household, on="household_id", suffixes=("", "_other"))
    pairs = pairs[pairs["person_id"] != pairs["person_id_other"]]
    known = pd.MultiIndex.from_arrays([stated["person_id"], stated["related_person_id"]])
    co = pd.DataFrame(
        {
            "person_id": pairs["person_id"],
            "related_person_id": pairs["person_id_other"],
            "relationship": CO_RESIDENT,
            "source": None,
            "basis": "co-resident",
            "preferred": True,
            "rule": None,
            "other_relationships": None,
        }
    )
    keep = ~pd.MultiIndex.from_arrays([co["person_id"], co["related_person_id"]]).isin(known)
    out = pd.concat([stated, co[keep]], ignore_index=True)[RELATIONSHIP_COLUMNS]
    return sort_rows(out, ["person_id", "related_person_id", "basis"]).reset_index(drop=True)


def prefer_declared(stated: pd.DataFrame, trust: Trust) -> pd.DataFrame:
    """The declared rows with `preferred`, `rule` and `other_relationships` set: per pair of
    persons one row is preferred, and where another source's term contradicts it (not merely
    less specific, nor vague), the preferred row names those terms and their sources."""
    stated = stated.assign(preferred=True, rule="only_value", other_relationships=None)
    stated["other_relationships"] = stated["other_relationships"].astype(object)
    pair = ["person_id", "related_person_id"]
    several = stated.duplicated(pair, keep=False).to_numpy()
    if not several.any():
        return stated
    agreed = _agreed(stated[several], pair, trust)
    losers: list[object] = list(agreed.losers)
    winners: dict[object, tuple[str, str | None]] = dict(agreed.winners)
    rest = several & ~stated.index.isin(agreed.rows)
    for _, group in stated[rest].groupby(pair, sort=False):
        rows = list(group.itertuples())
        chosen, rule, others = _prefer(rows, trust)
        winners[chosen] = (rule, others)
        losers += [r.Index for r in rows if r.Index != chosen]
    stated.loc[losers, ["preferred", "rule"]] = [False, None]
    chosen = list(winners)
    stated.loc[chosen, "rule"] = [w[0] for w in winners.values()]
    stated.loc[chosen, "other_relationships"] = pd.Series(
        [w[1] for w in winners.values()], index=chosen, dtype=object
    )
    return stated


@dataclass
class _Agreed:
    """Pairs whose sources all declare one term (most pairs several sources declare)."""

    rows: pd.Index  #: the rows of those pairs
    winners: dict[object, tuple[str, str | None]]
    losers: list[object]


def _agreed(several: pd.DataFrame, pair: list[str], trust: Trust) -> _Agreed:
    """What _prefer gives the pairs whose rows all say one term, found without a Python loop
    per pair: the most trusted source's row (then by source name), 'unanimous' (or
    'only_value', one source saying it twice in other capitals), nothing against it."""
    keys = [several[c] for c in pair]
    terms = several["relationship"].astype(str).str.strip().str.casefold()
    one_term = (terms.groupby(keys, sort=False).transform("nunique") == 1).to_numpy()
    agreed = several[one_term]
    sources = agreed["source"].groupby([agreed[c] for c in pair], sort=False).transform("nunique")
    ranks = agreed["source"].map({s: trust.default_rank(s) for s in agreed["source"].unique()})
    ordered = agreed.assign(_rank=ranks, _sources=sources).sort_values(
        ["_rank", "source"], kind="stable"
    )
    first = ~ordered.duplicated(pair, keep="first").to_numpy()
    rules = np.where(ordered["_sources"].to_numpy()[first] > 1, "unanimous", "only_value")
    winners = {i: (str(rule), None) for i, rule in zip(ordered.index[first], rules, strict=True)}
    return _Agreed(agreed.index, winners, list(ordered.index[~first]))


def _prefer(rows: list, trust: Trust) -> tuple[object, str, str | None]:
    """Of one pair's declared rows: the preferred row's index, the rule that chose it, and
    the contradicting terms ("Son (social_care_case_management)"; None when none)."""
    by_trust = sorted(rows, key=lambda r: (trust.default_rank(r.source), _term(r), r.source))
    definite = [r for r in by_trust if _term(r) not in VAGUE] or by_trust
    kin = _kin(definite[0])
    same = [r for r in definite if _kin(r) == kin]
    chosen = min(same, key=lambda r: (_kin(r) == _term(r), by_trust.index(r)))
    against = [r for r in definite if _kin(r) != kin]
    others = "; ".join(f"{r.relationship} ({r.source})" for r in against) or None
    return chosen.Index, _rule(rows, chosen, against, trust), others


def _rule(rows: list, chosen, against: list, trust: Trust) -> str:
    """Why `chosen` is preferred, in golden.py's manner: the first thing that told it apart."""
    if len({_term(r) for r in rows}) == 1:
        return "unanimous" if len({r.source for r in rows}) > 1 else "only_value"
    if not against:
        return "more_specific"
    ranks = {trust.default_rank(r.source) for r in (chosen, *against)}
    return "trust_order" if len(ranks) > 1 else "tie_break"


def _term(row) -> str:
    return str(row.relationship).strip().casefold()


def _kin(row) -> str:
    """The general relationship a term says (mother -> parent), else the term itself."""
    term = _term(row)
    return _KIN_OF.get(term, term)


def _tenancy_relationships(linked: pd.DataFrame) -> pd.DataFrame:
    """Each member to their tenancy's lead tenant, and back (a tenancy is one source's records
    sharing the tenancy's address, postcode and UPRN); rows in tenancy order, then record order."""
    frame = tenancy_frame(linked)
    frame = frame[frame["_role"].notna()]
    if frame.empty:
        return pd.DataFrame(columns=STATED_COLUMNS)
    frame = frame.assign(_tenancy=frame.groupby(TENANCY, dropna=False, sort=True).ngroup())
    is_lead = (frame["_role"] == LEAD).to_numpy()
    leads = frame[is_lead].groupby("_tenancy")["person_id"].agg(["nunique", "first"])
    # no lead, or two tenancies at one address: the link is unknown
    lead = frame["_tenancy"].map(leads.loc[leads["nunique"] == 1, "first"])
    members = frame.assign(_lead=lead)[lead.notna().to_numpy() & ~is_lead]
    members = members[members["person_id"] != members["_lead"]]
    if members.empty:
        return pd.DataFrame(columns=STATED_COLUMNS)
    members = members.sort_values("_tenancy", kind="stable")
    roles = members["_role"]
    to_member = pd.DataFrame(
        {
            "person_id": members["_lead"].to_numpy(),
            "related_person_id": members["person_id"].to_numpy(),
            "relationship": _map_distinct(roles, str.capitalize).to_numpy(),
        }
    )
    to_lead = pd.DataFrame(
        {
            "person_id": members["person_id"].to_numpy(),
            "related_person_id": members["_lead"].to_numpy(),
            "relationship": _map_distinct(roles, lambda r: INVERSE.get(r, "Other")).to_numpy(),
        }
    )
    # interleaved: each member's row to the lead follows the lead's row to them
    out = pd.concat([to_member, to_lead]).sort_index(kind="stable").reset_index(drop=True)
    out["source"] = np.repeat(members["source"].to_numpy(), 2)
    out["basis"] = "declared"
    return out[STATED_COLUMNS]


def _map_distinct(values: pd.Series, func) -> pd.Series:
    """func of each value, called once per distinct value."""
    done: dict = {}
    out = []
    for v in values:
        if v not in done:
            done[v] = func(v)
        out.append(done[v])
    return pd.Series(out, index=values.index, dtype=object)


def _declared(linked: pd.DataFrame, declared: pd.DataFrame) -> pd.DataFrame:
    """A source's relationship rows between its record ids, on person ids, with the other
    direction of each pair the source states one way only (_inverses)."""
    ids = linked[["source", "source_record_id", "person_id"]]
    out = declared.merge(ids, on=["source", "source_record_id"]).merge(
        ids.rename(
            columns={"source_record_id": "related_source_record_id", "person_id": "related"}
        ),
        on=["source", "related_source_record_id"],
    )
    stated = pd.DataFrame(
        {
            "person_id": out["person_id"],
            "related_person_id": out["related"],
            "relationship": out["relationship"],
            "source": out["source"],
            "basis": "declared",
        }
    )
    return pd.concat([stated, _inverses(stated)], ignore_index=True)


def _inverses(stated: pd.DataFrame) -> pd.DataFrame:
    """The other direction of each declared pair its source states one way only: "B is A's
    Mother" also says "A is B's Child", and the worker visiting B must see A. A pair the
    source states both ways keeps the source's own words for each."""
    keys = ["source", "person_id", "related_person_id"]
    there = pd.MultiIndex.from_frame(stated[keys])
    back = pd.MultiIndex.from_arrays([stated[k] for k in ("source", "related_person_id",
                                                           "person_id")])  # fmt: skip
    one_way = stated[~back.isin(there)]
    inverse = _map_distinct(
        one_way["relationship"], lambda r: INVERSE.get(str(r).strip().lower(), "Other")
    )
    return one_way.assign(
        person_id=one_way["related_person_id"].to_numpy(),
        related_person_id=one_way["person_id"].to_numpy(),
        relationship=inverse.to_numpy(),
    )


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype(object).where(frame[name].notna(), None).reset_index(drop=True)
    return pd.Series([None] * len(frame), dtype=object)


def _recorded_on(linked: pd.DataFrame) -> pd.Series:
    """The records' dates, parsed here unless build_index parsed them already."""
    if RECORDED_ON in linked.columns and pd.api.types.is_datetime64_dtype(linked[RECORDED_ON]):
        return linked[RECORDED_ON].reset_index(drop=True)
    return parse_dates(_col(linked, RECORDED_ON))


def _dates(values: pd.Series) -> pd.Series:
    return _days(parse_dates(values))


def _days(parsed: pd.Series) -> pd.Series:
    """Datetimes as dates (objects), None where missing, indexed from 0."""
    parsed = pd.to_datetime(parsed.reset_index(drop=True))
    days = parsed.dt.date.astype(object)
    return days.where(parsed.notna(), None)


def _most_common(frame: pd.DataFrame, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Per key, each column's most common value (ties: the first in sort order)."""
    out = pd.DataFrame({key: frame[key].drop_duplicates()}).reset_index(drop=True)
    for column in columns:
        chosen = _most_common_one(frame[[key, column]].dropna(), key, column)
        out[column] = out[key].map(chosen).astype(object)
    return out


def _most_common_one(pairs: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Key -> its most common value, counted on integer codes (sorted codes keep text order)."""
    keys, key_names = pd.factorize(pairs[key], sort=True)
    values, value_names = pd.factorize(pairs[column], sort=True)
    width = max(len(value_names), 1)
    distinct, counts = np.unique(keys.astype("int64") * width + values, return_counts=True)
    best = distinct[np.lexsort((distinct % width, -counts, distinct // width))]
    best = best[np.r_[True, best[1:] // width != best[:-1] // width]] if len(best) else best
    return pd.Series(
        np.asarray(value_names, dtype=object)[best % width],
        index=np.asarray(key_names, dtype=object)[best // width],
        dtype=object,
    )
