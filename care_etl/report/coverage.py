"""Coverage figures from a run, as JSON for programs and a self-contained HTML page for people.

Counts and rates only: no personal value ever reaches a report. Every chart of the HTML page
is drawn from these figures, so coverage.json holds everything the page shows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from care_etl.canonical import STANDARDISED_FIELDS
from care_etl.index.analyst import AGE_BANDS, OLDEST_BAND, bands_of_ages
from care_etl.quality.staging import StagedSource

#: Fields whose completeness is reported per source (ethnicity travels for the bias report).
COMPLETENESS_FIELDS: tuple[str, ...] = (*STANDARDISED_FIELDS, "ethnicity")
NOT_RECORDED = "not recorded"
#: Review queue age buckets: label, upper bound in days (exclusive).
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 day", 1),
    ("1-7 days", 8),
    ("8-30 days", 31),
    ("over 30 days", float("inf")),
)
PROBABILITY_BINS = 20  # match probability histogram: 0.05 wide
LINKED_MEANS = "linked to at least one other record (of any source) in the same person"


def coverage(
    staged: Sequence[StagedSource],
    person_source_link: pd.DataFrame,
    review_queue: pd.DataFrame,
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Per source read = linked + quarantined + withdrawn; overall persons by number of sources."""
    now = now or dt.datetime.now(dt.UTC)
    psl = person_source_link
    linked_by_source = psl.groupby("source").size()
    per_person = psl.groupby("person_id")["source"].nunique()
    records = _records_with_link_flag(staged, psl)
    sources: dict[str, Any] = {}
    for s in staged:
        reasons = s.quarantine["reason"].map(_reason_class).value_counts()
        own = records[records["source"] == s.contract_id]
        dq = _dq_results(s)
        sources[s.contract_id] = {
            "records_read": s.read,
            "records_linked": int(linked_by_source.get(s.contract_id, 0)),
            "records_quarantined": len(s.quarantine),
            "records_withdrawn": s.withdrawn,
            "records_unaccounted": _unaccounted(s, int(linked_by_source.get(s.contract_id, 0))),
            "files_read": len(s.files),
            "quarantine_reasons": {k: int(v) for k, v in reasons.items()},
            "errors": list(s.errors),
            "warnings": list(s.warnings),
            "counts": dict(s.counts),
            "records_accepted": len(s.records),
            "linkage_rate": _rate(int(own["linked"].sum()), len(own)),
            "completeness": _completeness(s.records),
            "blocked": getattr(s, "blocked", None),
            "records_held_back": getattr(s, "held_back", 0),
            "data_quality": {
                "checks": len(dq),
                "passed": sum(1 for r in dq if r["success"]),
                "failed": sum(1 for r in dq if not r["success"]),
                "results": dq,
            },
        }
    by_count = per_person.value_counts().sort_index()
    link_types = psl["link_type"].value_counts()
    all_reasons = (
        pd.concat([s.quarantine["reason"] for s in staged], ignore_index=True)
        .map(_reason_class)
        .value_counts()
        if staged
        else pd.Series(dtype=int)
    )
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "sources": sources,
        "persons": int(per_person.size),
        "persons_by_source_count": {str(k): int(v) for k, v in by_count.items()},
        "records_linked": int(len(psl)),
        "link_types": {k: int(v) for k, v in link_types.items()},
        "review_queue": int(len(review_queue)),
        "records_quarantined": int(sum(len(s.quarantine) for s in staged)),
        "records_unaccounted": sum(f["records_unaccounted"] for f in sources.values()),
        "quarantine_reasons": {k: int(v) for k, v in all_reasons.items()},
        "linkage_rate": _rate(int(records["linked"].sum()), len(records)),
        "source_overlap": _overlap(psl),
        "linkage_bias": _linkage_bias(records, now),
        "match_probability": _match_probability(psl, review_queue),
        "review_queue_age": _review_age(review_queue, now),
        "blocked_feeds": [
            {"source": sid, "reason": f["blocked"]} for sid, f in sources.items() if f["blocked"]
        ],
    }


def _unaccounted(source: StagedSource, linked: int) -> int:
    """Records read that are neither linked, quarantined nor withdrawn: 0 unless a stage lost
    some (nothing may be lost), or linked more than once (negative)."""
    return source.read - linked - len(source.quarantine) - source.withdrawn


def unaccounted(figures: dict[str, Any]) -> dict[str, int]:
    """The sources of a report with records unaccounted for, and how many (none: {})."""
    return {
        source: int(f["records_unaccounted"])
        for source, f in figures["sources"].items()
        if f.get("records_unaccounted")
    }


def _reason_class(reason: str) -> str:
    """A reason without its parenthesised detail, so reasons group in the report."""
    return str(reason).split(" (")[0]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _records_with_link_flag(staged: Sequence[StagedSource], psl: pd.DataFrame) -> pd.DataFrame:
    """Each accepted record's grouping columns and whether its person has another record."""
    wanted = ["source", "source_record_id", "date_of_birth", "sex", "ethnicity"]
    frames = [s.records.reindex(columns=wanted) for s in staged if len(s.records)]
    if not frames:
        return pd.DataFrame(columns=[*wanted, "linked"])
    records = pd.concat(frames, ignore_index=True)
    sizes = psl.groupby("person_id").size().rename("person_records")
    persons = psl[["source", "source_record_id", "person_id"]].join(sizes, on="person_id")
    records = records.merge(
        persons[["source", "source_record_id", "person_records"]],
        on=["source", "source_record_id"],
        how="left",
    )
    records["linked"] = records["person_records"].fillna(0).to_numpy() > 1
    return records


def _completeness(records: pd.DataFrame) -> dict[str, float | None]:
    """Share of accepted records with each field present (None: the source has no such field)."""
    out: dict[str, float | None] = {}
    for name in COMPLETENESS_FIELDS:
        if name not in records.columns or not len(records):
            out[name] = None
            continue
        present = records[name].notna().to_numpy()
        if records[name].dtype == object:  # blank text is not a value: judged once per value
            codes, distinct = pd.factorize(records[name])
            blank = np.array([str(v).strip() == "" for v in distinct] + [True], dtype=bool)
            present &= ~blank[codes]
        out[name] = round(float(present.mean()), 4)
    return out


def _dq_results(source: StagedSource) -> list[dict[str, Any]]:
    """Data-quality results as counts and rates; an observed value is kept only if a number.

    Accepts the staging keys (`check_name`, `column_name`, `observed_value`) and the short ones.
    """
    results = []
    for raw in getattr(source, "dq_results", None) or []:
        row = {
            "check": raw.get("check_name", raw.get("check")),
            "column": raw.get("column_name", raw.get("column")),
            "severity": raw.get("severity"),
            "success": bool(raw.get("success")),
            "element_count": raw.get("element_count"),
            "unexpected_count": raw.get("unexpected_count"),
        }
        rate = raw.get("unexpected_rate")
        row["unexpected_rate"] = None if rate is None else round(float(rate), 6)
        observed = raw.get("observed_value", raw.get("observed"))
        numeric = isinstance(observed, int | float) and not isinstance(observed, bool)
        row["observed"] = observed if numeric else None
        results.append(row)
    return results


def _overlap(psl: pd.DataFrame) -> list[dict[str, Any]]:
    """UpSet intersections: persons by the exact set of sources they are found in."""
    if psl.empty:
        return []
    # a bit per source, summed per person: no Python call per person
    codes, names = pd.factorize(psl["source"], sort=True)
    pairs = pd.DataFrame({"person": psl["person_id"].to_numpy(), "bit": 1 << codes.astype("int64")})
    masks = pairs.drop_duplicates().groupby("person")["bit"].sum()
    counts = masks.value_counts()
    rows = [
        {"sources": [n for i, n in enumerate(names) if int(m) >> i & 1], "persons": int(v)}
        for m, v in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["persons"], len(r["sources"]), r["sources"]))


def _group_rates(records: pd.DataFrame, groups: pd.Series, order: list[str]) -> list[dict]:
    table = (
        pd.DataFrame({"group": groups.to_numpy(), "linked": records["linked"].to_numpy()})
        .groupby("group")["linked"]
        .agg(["size", "sum"])
    )
    present = [g for g in order if g in table.index]
    rest = sorted(g for g in table.index if g not in present)
    return [
        {
            "group": g,
            "records": int(table.at[g, "size"]),
            "linked": int(table.at[g, "sum"]),
            "rate": _rate(int(table.at[g, "sum"]), int(table.at[g, "size"])),
        }
        for g in [*present, *rest]
    ]


def _age_bands(dates: pd.Series, today: dt.date) -> pd.Series:
    """Each record's age band on the report date, as analyst_person.age_band gives it."""
    dob = pd.to_datetime(dates, errors="coerce")
    known = dob.notna().to_numpy()
    bands = np.full(len(dob), NOT_RECORDED, dtype=object)
    if known.any():
        d = dob[known]
        band, born = bands_of_ages(
            d.dt.year.to_numpy(), d.dt.month.to_numpy(), d.dt.day.to_numpy(), today
        )
        bands[known] = np.where(born, band, NOT_RECORDED)
    return pd.Series(bands, index=dates.index, dtype=object)


def _linkage_bias(records: pd.DataFrame, now: dt.datetime) -> dict[str, Any]:
    """Linkage rate by age band, sex and ethnic group, where the source records them."""
    if records.empty:
        return {
            "definition": LINKED_MEANS,
            "age_band": [],
            "sex": [],
            "ethnicity": [],
            "ethnicity_sources": [],
        }
    bands = _age_bands(records["date_of_birth"], now.date())
    sex = records["sex"].where(records["sex"].notna(), NOT_RECORDED).astype(str)
    # Ethnicity only over the sources that record it: elsewhere its absence says nothing.
    recording = records.groupby("source")["ethnicity"].transform(lambda s: s.map(_present).any())
    with_ethnicity = records[recording.astype(bool)]
    ethnic = with_ethnicity["ethnicity"].map(
        lambda v: str(v).split(" - ")[0].strip() or NOT_RECORDED if _present(v) else NOT_RECORDED
    )
    band_order = [label for _, label in AGE_BANDS] + [OLDEST_BAND, NOT_RECORDED]
    return {
        "definition": LINKED_MEANS,
        "age_band": _group_rates(records, bands, band_order),
        "sex": _group_rates(records, sex, ["F", "M", "X", NOT_RECORDED]),
        "ethnicity": _group_rates(with_ethnicity, ethnic, []),
        "ethnicity_sources": sorted(with_ethnicity["source"].unique().tolist()),
    }


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value != ""


def _match_probability(psl: pd.DataFrame, review: pd.DataFrame) -> dict[str, Any]:
    """Histograms of the probability of each accepted link, by link type, and of review pairs."""
    edges = np.linspace(0.0, 1.0, PROBABILITY_BINS + 1)

    def histogram(values: pd.Series) -> list[int]:
        clean = pd.to_numeric(values, errors="coerce").dropna().clip(0.0, 1.0)
        return [int(n) for n in np.histogram(clean, bins=edges)[0]]

    by_type = {
        str(kind): histogram(group["match_probability"])
        for kind, group in psl.groupby("link_type")
        if group["match_probability"].notna().any()
    }
    has_prob = "match_probability" in review.columns
    return {
        "bin_edges": [round(float(e), 2) for e in edges],
        "links": by_type,
        "review": histogram(review["match_probability"]) if has_prob else [0] * PROBABILITY_BINS,
    }


def _review_age(review: pd.DataFrame, now: dt.datetime) -> dict[str, Any]:
    """How long pairs have waited; 0 days when the queue does not say when they were queued."""
    if "queued_at" in review.columns and len(review):
        queued = pd.to_datetime(review["queued_at"], errors="coerce", utc=True)
        days = ((pd.Timestamp(now) - queued).dt.total_seconds() / 86400).fillna(0.0).clip(0)
    else:
        days = pd.Series(0.0, index=review.index)
    buckets: dict[str, int] = {}
    lower = -np.inf
    for label, upper in AGE_BUCKETS:
        buckets[label] = int(((days >= lower) & (days < upper)).sum())
        lower = upper
    return {
        "pairs": int(len(review)),
        "queued_at_recorded": "queued_at" in review.columns,
        "oldest_days": round(float(days.max()), 2) if len(days) else 0.0,
        "median_days": round(float(days.median()), 2) if len(days) else 0.0,
        "by_age": buckets,
    }


def write_reports(figures: dict[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    from care_etl.report.html import render_html

    reports_dir.mkdir(parents=True, exist_ok=True)
    json_path = reports_dir / "coverage.json"
    json_path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    html_path = reports_dir / "coverage.html"
    html_path.write_text(render_html(figures), encoding="utf-8")
    return json_path, html_path


def render_html(figures: dict[str, Any]) -> str:
    """The page (kept here for callers that imported it from this module)."""
    from care_etl.report.html import render_html as render

    return render(figures)
