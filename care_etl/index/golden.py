"""The golden record: per person and field the chosen value, its source and the rule that chose it.

A caseworker trusts a best-known value only when they can see where it came from and why it
beat the others, and the values that lost still matter (a former surname, a previous
address, a second date of birth). So every distinct value is kept, and the winner is the
first in this order, the rule named being the first that told it from the runner-up:

1. `contract_trust`: a contract ranks its source for this field (`trust: N` on the column);
2. `recency`: for address fields, the value from the most recently dated record (when every
   value compared has a date);
3. `agreement`: the value more sources agree on;
4. `default_trust`: the source's place in the trust order (a contract's top-level `trust`,
   else DEFAULT_TRUST);
5. `most_records`, then `tie_break` (the first value in sort order, so reruns agree).

A value no other contradicts is `only_value` (one source) or `unanimous` (several).

The address fields (address, postcode, UPRN) of a person who lives somewhere now are then
taken from that address (`current_address`: the person's current rows of `person_address`,
which household building chose, the latest dated first), each field from the same property:
chosen field by field, a GP's postcode from before a move could sit beside housing's new
address line, and the worker would be sent to neither. A field the current address lacks
has no best-known value then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Where a source comes when nothing ranks it: after every ranked one.
UNRANKED = 1_000_000
#: Fields where people change the value over time, so the latest dated record wins.
RECENCY_FIELDS = ("address", "postcode", "uprn", "address_key")
#: A record's date, when its contract maps one (e.g. a registration or referral date).
RECORDED_ON = "recorded_on"
#: The address fields taken together from where a person lives now (at_current_address).
HOME_FIELDS = ("address", "postcode", "uprn")
CURRENT_ADDRESS = "current_address"

CANDIDATE_COLUMNS = [
    "person_id",
    "field",
    "value",
    "is_golden",
    "rule",
    "source",
    "sources",
    "record_count",
    "source_count",
    "last_recorded_on",
]

# (column, ascending, rule named when it decides)
_ORDER = (
    ("contract_rank", True, "contract_trust"),
    ("recency", False, "recency"),
    ("source_count", False, "agreement"),
    ("default_rank", True, "default_trust"),
    ("record_count", False, "most_records"),
    ("value", True, "tie_break"),
)


@dataclass(frozen=True)
class Trust:
    """Which source to believe: per field from the contracts, else one order for all fields."""

    default: tuple[str, ...]
    #: field -> source -> rank (lower is more trusted), from the contracts' `trust` property.
    by_field: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: Sources whose extract lists the people they hold now, at the address they hold now
    #: (a contract's `currentRegister: true`, as a GP's registered patients): a record there
    #: places its person at that address today, whatever its own date (households.evidence_of).
    registers: frozenset[str] = frozenset()

    def default_rank(self, source: str) -> int:
        return self.default.index(source) if source in self.default else len(self.default)

    def contract_rank(self, field_name: str, source: str) -> int:
        return int(self.by_field.get(field_name, {}).get(source, UNRANKED))


def trust_from_contracts(contracts: Iterable[object], fallback: Sequence[str]) -> Trust:
    """Trust from each contract's `trust` ranks: top-level for the source, per column by field.

    Sources whose contract gives no top-level rank keep the fallback order, after ranked ones.
    """
    contracts = list(contracts)
    ranked = {c.id: int(c.custom["trust"]) for c in contracts if c.custom.get("trust") is not None}
    fallback_pos = {s: i for i, s in enumerate(fallback)}
    everyone = sorted(
        {*fallback, *(c.id for c in contracts)},
        key=lambda s: (ranked.get(s, UNRANKED), fallback_pos.get(s, len(fallback)), s),
    )
    by_field: dict[str, dict[str, int]] = {}
    for contract in contracts:
        for obj in contract.objects:
            for col in obj.columns:
                rank = getattr(col, "trust", None)
                if col.canonical and rank is not None:
                    current = by_field.setdefault(col.canonical, {})
                    current[contract.id] = min(int(rank), current.get(contract.id, UNRANKED))
    registers = frozenset(c.id for c in contracts if c.custom.get("currentRegister") is True)
    return Trust(tuple(everyone), by_field, registers)


def field_values(linked: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """Long form: person_id, field, value (text), typed, source, recorded_on, one row per record."""
    recorded = (
        parse_dates(linked[RECORDED_ON])
        if RECORDED_ON in linked.columns
        else pd.Series(pd.NaT, index=linked.index)
    )
    frames = []
    for name in fields:
        if name not in linked.columns:
            continue
        present = linked[name].notna()
        if not present.any():
            continue
        typed = linked.loc[present, name]
        frames.append(
            pd.DataFrame(
                {
                    "person_id": linked.loc[present, "person_id"].to_numpy(),
                    "field": name,
                    "value": _texts(typed),
                    "typed": typed.to_numpy(object),
                    "source": linked.loc[present, "source"].to_numpy(),
                    "recorded_on": recorded[present].to_numpy(),
                }
            )
        )
    if not frames:
        columns = ["person_id", "field", "value", "typed", "source", "recorded_on"]
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def choose(values: pd.DataFrame, trust: Trust) -> pd.DataFrame:
    """Every distinct value per (person, field), the golden one flagged with the rule that won.

    Sorting and grouping run on integer codes (sorted factorisation keeps text order): at
    100k people grouping the text columns themselves took most of the index build.
    """
    if values.empty:
        return pd.DataFrame(columns=[*CANDIDATE_COLUMNS, "typed"])
    (person, _), (field_code, _), (value, _), (source, names) = (
        _codes(values[c]) for c in ("person_id", "field", "value", "source")
    )
    contract, default = _ranks(values, trust)
    # stable, as sort_values on several columns is: ties keep their order
    order = np.lexsort((default, contract, value, field_code, person))
    p, f, v, s = person[order], field_code[order], value[order], source[order]
    contract, default = contract[order], default[order]
    starts = _starts(p, f, v)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    head = order[first]  # each group's first row in `values`
    recorded = values["recorded_on"].take(order)
    cand = pd.DataFrame(
        {
            **{c: values[c].to_numpy()[head] for c in ("person_id", "field", "value", "typed")},
            "source": values["source"].to_numpy()[head],
            "record_count": np.diff(np.append(first, len(order))).astype("int64"),
            "source_count": _distinct_per_group(group, s, len(first)),
            "contract_rank": np.minimum.reduceat(contract, first),
            "default_rank": np.minimum.reduceat(default, first),
            "last_recorded_on": recorded.groupby(group, sort=True).max().to_numpy(),
        }
    )
    cand["sources"] = _source_lists(s, names, group, len(first))
    # recency decides only where every value compared has a date: no date is not "older"
    pf = _starts(p[first], f[first])
    pf_group = np.cumsum(pf) - 1
    dated_count = np.bincount(pf_group, weights=cand["last_recorded_on"].notna().to_numpy())
    size = np.bincount(pf_group)
    all_dated = (dated_count == size)[pf_group]
    dated = cand["field"].isin(RECENCY_FIELDS).to_numpy() & all_dated
    cand["recency"] = np.where(
        dated, cand["last_recorded_on"].astype("int64"), np.iinfo("int64").min
    )
    # the _ORDER sort: descending columns by bitwise not (no overflow at int64's minimum)
    final = np.lexsort(
        (
            v[first],
            ~cand["record_count"].to_numpy(),
            cand["default_rank"].to_numpy(),
            ~cand["source_count"].to_numpy(),
            ~cand["recency"].to_numpy(),
            cand["contract_rank"].to_numpy(),
            f[first],
            p[first],
        )
    )
    cand = cand.iloc[final].reset_index(drop=True)
    pf_start = _starts(p[first][final], f[first][final])
    position = np.arange(len(cand)) - np.maximum.accumulate(
        np.where(pf_start, np.arange(len(cand)), 0)
    )
    cand["is_golden"] = position == 0
    cand["rule"] = None
    cand.loc[cand["is_golden"], "rule"] = _rules(cand, position)
    return cand[[*CANDIDATE_COLUMNS, "typed"]]


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes in the column's sort order, and the distinct values in that order.

    Text is sorted as numpy strings (the same code point order as Python's, several times
    faster than sorting Python objects); anything else as pandas sorts it.
    """
    codes, distinct = pd.factorize(column)
    if pd.api.types.infer_dtype(distinct, skipna=False) == "string" and (codes >= 0).all():
        try:
            rank = np.argsort(np.asarray(distinct, dtype=np.dtypes.StringDType()), kind="stable")
        except (TypeError, ValueError, UnicodeError):  # e.g. lone surrogates
            rank = None
        if rank is not None:
            position = np.empty(len(rank), dtype="int64")
            position[rank] = np.arange(len(rank))
            return position[codes], np.asarray(distinct, dtype=object)[rank]
    codes, distinct = pd.factorize(column, sort=True)
    return codes.astype("int64"), np.asarray(distinct, dtype=object)


def sort_rows(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """frame.sort_values(by) for two columns or more (then pandas' sort is stable too):
    ascending, missing last, labels kept; text sorted as numpy strings."""
    if len(by) < 2:
        raise ValueError("sort_rows: give two columns or more (one column sorts unstably)")
    if len(frame) < 2:
        return frame.sort_values(list(by))
    keys = []
    for column in reversed(by):
        codes, _ = _codes(frame[column])
        keys.append(np.where(codes < 0, codes.max() + 1, codes))
    return frame.iloc[np.lexsort(keys)]


def _starts(*codes: np.ndarray) -> np.ndarray:
    """True where a row begins a new run of equal keys (the rows sorted by those keys)."""
    starts = np.zeros(len(codes[0]), dtype=bool)
    if len(starts):
        starts[0] = True
    for c in codes:
        starts[1:] |= c[1:] != c[:-1]
    return starts


def _ranks(values: pd.DataFrame, trust: Trust) -> tuple[np.ndarray, np.ndarray]:
    """Each row's contract rank for its field and default rank of its source, by distinct pair."""
    pairs = values[["field", "source"]].drop_duplicates()
    contract = {
        (f, s): trust.contract_rank(f, s)
        for f, s in zip(pairs["field"], pairs["source"], strict=True)
    }
    keys = pd.MultiIndex.from_frame(values[["field", "source"]])
    contract_rank = pd.Series(contract).reindex(keys).to_numpy("int64")
    default = {s: trust.default_rank(s) for s in pairs["source"].unique()}
    return contract_rank, values["source"].map(default).to_numpy("int64")


def _distinct_per_group(group: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    """How many distinct codes each group holds."""
    width = int(codes.max()) + 1
    pairs = pd.unique(group * width + codes)
    return np.bincount(pairs // width, minlength=groups).astype("int64")


def _source_lists(
    codes: np.ndarray, names: np.ndarray, group: np.ndarray, groups: int
) -> np.ndarray:
    """', '-joined sorted sources per group (a bit per source, summed)."""
    width = len(names)
    pairs = pd.unique(group * width + codes)
    bits = np.left_shift(1, pairs % width).astype("float64")  # exact: a bit per source
    masks = np.bincount(pairs // width, weights=bits, minlength=groups).astype("int64")
    text = {m: ", ".join(n for i, n in enumerate(names) if m >> i & 1) for m in pd.unique(masks)}
    return np.array([text[m] for m in masks], dtype=object)


def _rules(cand: pd.DataFrame, position: np.ndarray) -> np.ndarray:
    """For each winner, the first ordering column in which it differs from the runner-up."""
    winners = np.flatnonzero(position == 0)
    following = np.minimum(winners + 1, len(cand) - 1)
    decided = (winners + 1 < len(cand)) & (position[following] == 1)
    rule = np.where(cand["source_count"].to_numpy()[winners] > 1, "unanimous", "only_value")
    rule = rule.astype(object)
    for column, _, name in reversed(_ORDER):
        col = cand[column].to_numpy()
        differs = decided & (col[winners] != col[following])
        rule = np.where(differs, name, rule)
    return rule


def at_current_address(
    candidates: pd.DataFrame, addresses: pd.DataFrame, trust: Trust
) -> pd.DataFrame:
    """The candidates with the golden address fields of each person who lives somewhere now
    taken from their current address rows (`addresses`: person_address), by rule
    `current_address` where that changes the winner or settles a choice."""
    current = _current_values(addresses, trust)
    if current.empty or candidates.empty:
        return candidates
    out = candidates.copy()
    home = np.flatnonzero(out["field"].isin(HOME_FIELDS).to_numpy())
    housed = pd.Series(out["person_id"].to_numpy()[home]).isin(set(current["person_id"]))
    home = home[housed.to_numpy()]
    rows = out.iloc[home]
    wins = _among(rows, current, ["person_id", "field", "value"])
    was = rows["is_golden"].to_numpy(bool)
    kept_rule = was & wins & rows["rule"].isin(["only_value", "unanimous"]).to_numpy()
    golden = out["is_golden"].to_numpy(bool).copy()
    golden[home] = wins
    rule = out["rule"].to_numpy(object).copy()
    rule[home] = np.where(kept_rule, rows["rule"].to_numpy(object),
                          np.where(wins, CURRENT_ADDRESS, None))  # fmt: skip
    out["is_golden"], out["rule"] = golden, rule
    return out


def _current_values(addresses: pd.DataFrame, trust: Trust) -> pd.DataFrame:
    """person_id, field, value (text): per person and address field, the value of their
    current address rows, from the latest dated row that has one (then the most trusted
    source, then text order)."""
    now = addresses[addresses["is_current"].astype(bool)]
    if now.empty:
        return pd.DataFrame(columns=["person_id", "field", "value"])
    dated = pd.to_datetime(now["from_date"]).fillna(pd.to_datetime(now["recorded_on"]))
    latest = -_days_or_min(dated)
    ranks = {source: trust.default_rank(source) for source in pd.unique(now["source"])}
    rank = now["source"].map(ranks).to_numpy()
    frames = []
    for name in HOME_FIELDS:
        present = now[name].notna().to_numpy()
        if present.any():
            frames.append(
                pd.DataFrame(
                    {
                        "person_id": now["person_id"].to_numpy()[present],
                        "field": name,
                        "value": _texts(now[name][present]),
                        "latest": latest[present],
                        "rank": rank[present],
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["person_id", "field", "value"])
    long = pd.concat(frames, ignore_index=True)
    text_order = pd.factorize(long["value"], sort=True)[0]
    long = long.iloc[np.lexsort((text_order, long["rank"], long["latest"]))]
    return long.drop_duplicates(["person_id", "field"])[["person_id", "field", "value"]]


def _among(rows: pd.DataFrame, wanted: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Whether each row's values in `columns` are those of a row of `wanted`: one integer
    key per row (codes shared by both sides), where a MultiIndex would sort every column."""
    key = np.zeros(len(rows) + len(wanted), dtype=np.int64)
    for column in columns:
        both = np.concatenate([rows[column].to_numpy(object), wanted[column].to_numpy(object)])
        codes = pd.factorize(both)[0].astype(np.int64)
        key = key * (int(codes.max(initial=0)) + 1) + codes  # fits: persons x 3 x values
    return pd.Series(key[: len(rows)]).isin(key[len(rows) :]).to_numpy()


def _days_or_min(dates: pd.Series) -> np.ndarray:
    """Dates as day numbers, a missing date before every other (int64's minimum + 1, so
    that its negation still fits)."""
    days = dates.to_numpy("datetime64[D]").astype("int64")
    return np.where(dates.isna().to_numpy(), np.iinfo("int64").min + 1, days)


def golden_values(candidates: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """One row per person, one typed column per field (the golden value, or missing)."""
    won = candidates[candidates["is_golden"] & candidates["field"].isin(fields)]
    wide = won.pivot(index="person_id", columns="field", values="typed")
    return wide.reindex(columns=list(fields)).reset_index()


def parse_dates(values: pd.Series) -> pd.Series:
    """Dates as a source writes them (ISO, day-first, Excel serials) -> datetime64, NaT if not."""
    from care_etl.standardise.dates import clean_dates

    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    parsed = clean_dates(values.astype(object).where(values.notna(), None)).value
    return pd.Series(parsed.to_numpy(), index=values.index)


def _texts(typed: pd.Series) -> np.ndarray:
    """_text of every value: ISO dates and text columns without a call per row."""
    if pd.api.types.is_datetime64_dtype(typed.dtype):
        return np.datetime_as_string(typed.to_numpy("datetime64[ns]"), unit="D").astype(object)
    values = typed.to_numpy(object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return np.array([_text(v) for v in values], dtype=object)


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    return str(value)
