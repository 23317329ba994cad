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
    return Trust(tuple(everyone), by_field)


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
                    "value": [_text(v) for v in typed],
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
    """Every distinct value per (person, field), the golden one flagged with the rule that won."""
    if values.empty:
        return pd.DataFrame(columns=[*CANDIDATE_COLUMNS, "typed"])
    values = values.copy()
    values["contract_rank"] = [
        trust.contract_rank(f, s) for f, s in zip(values["field"], values["source"], strict=True)
    ]
    values["default_rank"] = values["source"].map(trust.default_rank)
    keys = ["person_id", "field", "value"]
    ordered = values.sort_values([*keys, "contract_rank", "default_rank"])
    grouped = ordered.groupby(keys, sort=False)
    cand = grouped.agg(
        typed=("typed", "first"),
        source=("source", "first"),
        record_count=("source", "size"),
        source_count=("source", "nunique"),
        contract_rank=("contract_rank", "min"),
        default_rank=("default_rank", "min"),
        last_recorded_on=("recorded_on", "max"),
    ).reset_index()
    cand["sources"] = _source_lists(ordered, keys).to_numpy()
    # recency decides only where every value compared has a date: no date is not "older"
    group = cand.groupby(["person_id", "field"])["last_recorded_on"]
    all_dated = group.transform("count") == group.transform("size")
    dated = cand["field"].isin(RECENCY_FIELDS) & all_dated
    cand["recency"] = np.where(
        dated, cand["last_recorded_on"].astype("int64"), np.iinfo("int64").min
    )
    by = ["person_id", "field", *(c for c, _, _ in _ORDER)]
    cand = cand.sort_values(by, ascending=[True, True, *(a for _, a, _ in _ORDER)])
    cand = cand.reset_index(drop=True)
    position = cand.groupby(["person_id", "field"]).cumcount()
    cand["is_golden"] = position == 0
    cand["rule"] = None
    cand.loc[cand["is_golden"], "rule"] = _rules(cand, position)
    return cand[[*CANDIDATE_COLUMNS, "typed"]]


def _source_lists(values: pd.DataFrame, keys: list[str]) -> pd.Series:
    """', '-joined sorted sources per group, in the groups' order (a bit per source, summed)."""
    names = sorted(values["source"].unique())
    bits = values["source"].map({s: 1 << i for i, s in enumerate(names)})
    distinct = values[keys].assign(_bit=bits).drop_duplicates([*keys, "_bit"])
    masks = distinct.groupby(keys, sort=False)["_bit"].sum()
    text = {m: ", ".join(n for i, n in enumerate(names) if m >> i & 1) for m in masks.unique()}
    return masks.map(text)


def _rules(cand: pd.DataFrame, position: pd.Series) -> np.ndarray:
    """For each winner, the first ordering column in which it differs from the runner-up."""
    winners = cand[position == 0].reset_index(drop=True)
    runners = cand[position == 1].set_index(["person_id", "field"])
    runner = runners.reindex(pd.MultiIndex.from_frame(winners[["person_id", "field"]]))
    rule = np.where(winners["source_count"] > 1, "unanimous", "only_value").astype(object)
    decided = runner["value"].notna().to_numpy()
    for column, _, name in reversed(_ORDER):
        differs = decided & (winners[column].to_numpy() != runner[column].to_numpy())
        rule = np.where(differs, name, rule)
    return rule


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


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    return str(value)
