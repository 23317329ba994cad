"""The coverage figures as Dagster metadata: numbers that plot across runs, and a summary.

Keys are stable ("<source>/records_linked", "linkage_rate/age_band/18-24"), so the Dagster UI
draws each one as a line over the runs of the coverage_report asset. Counts and rates only.
"""

from __future__ import annotations

from typing import Any

import dagster as dg


def coverage_metadata(figures: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """Overall and per-source counts and rates, plus a markdown summary under `summary`."""
    meta: dict[str, dg.MetadataValue] = {
        "persons": dg.MetadataValue.int(figures["persons"]),
        "records_linked": dg.MetadataValue.int(figures["records_linked"]),
        "records_quarantined": dg.MetadataValue.int(figures.get("records_quarantined", 0)),
        "review_queue": dg.MetadataValue.int(figures["review_queue"]),
        "blocked_feeds": dg.MetadataValue.int(len(figures.get("blocked_feeds") or [])),
    }
    _rate(meta, "linkage_rate", figures.get("linkage_rate"))
    for count, persons in figures["persons_by_source_count"].items():
        meta[f"persons_in_{count}_sources"] = dg.MetadataValue.int(persons)
    age = figures.get("review_queue_age") or {}
    if "oldest_days" in age:
        meta["review_queue_oldest_days"] = dg.MetadataValue.float(float(age["oldest_days"]))
    for source, f in figures["sources"].items():
        for key in ("records_read", "records_linked", "records_quarantined", "records_withdrawn"):
            meta[f"{source}/{key}"] = dg.MetadataValue.int(int(f[key]))
        _rate(meta, f"{source}/linkage_rate", f.get("linkage_rate"))
        dq = f.get("data_quality") or {}
        if dq.get("checks"):
            meta[f"{source}/dq_checks_failed"] = dg.MetadataValue.int(int(dq["failed"]))
    for dimension, groups in (figures.get("linkage_bias") or {}).items():
        if isinstance(groups, list):
            for g in groups:
                if isinstance(g, dict):
                    _rate(meta, f"linkage_rate/{dimension}/{g['group']}", g.get("rate"))
    meta["summary"] = dg.MetadataValue.md(markdown_summary(figures))
    return meta


def _rate(meta: dict[str, dg.MetadataValue], key: str, value: float | None) -> None:
    if value is not None:
        meta[key] = dg.MetadataValue.float(float(value))


def markdown_summary(figures: dict[str, Any]) -> str:
    """A short page for the asset's metadata panel: the sources table and what needs a person."""
    lines = [
        f"**{figures['persons']:,} persons** from {figures['records_linked']:,} linked records; "
        f"{figures.get('records_quarantined', 0):,} quarantined; "
        f"{figures['review_queue']:,} pairs awaiting review.",
        "",
        "| source | read | linked | quarantined | withdrawn | linked to another |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for source, f in figures["sources"].items():
        rate = f.get("linkage_rate")
        lines.append(
            f"| {source} | {f['records_read']:,} | {f['records_linked']:,} | "
            f"{f['records_quarantined']:,} | {f['records_withdrawn']:,} | "
            f"{'–' if rate is None else f'{rate:.1%}'} |"
        )
    by_count = ", ".join(f"{k}: {v:,}" for k, v in figures["persons_by_source_count"].items())
    lines += ["", f"Persons by number of sources: {by_count}."]
    for feed in figures.get("blocked_feeds") or []:
        lines.append(f"\n**Blocked:** {feed['source']}: {feed['reason']}")
    failed = [
        (source, r)
        for source, f in figures["sources"].items()
        for r in (f.get("data_quality") or {}).get("results", [])
        if not r["success"]
    ]
    if failed:
        lines += ["", "Failed data-quality checks:"]
        lines += [f"- {s}: {r['check']} on {r.get('column') or 'the table'}" for s, r in failed]
    return "\n".join(lines)
