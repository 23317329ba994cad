"""Coverage figures from a run, as JSON for programs and a self-contained HTML page for people.

Counts and rates only: no personal value ever reaches a report.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from care_etl.quality.staging import StagedSource


def coverage(
    staged: Sequence[StagedSource],
    person_source_link: pd.DataFrame,
    review_queue: pd.DataFrame,
) -> dict[str, Any]:
    """Per source read = linked + quarantined + withdrawn; overall persons by number of sources."""
    linked_by_source = person_source_link.groupby("source").size()
    sources: dict[str, Any] = {}
    for s in staged:
        reasons = s.quarantine["reason"].map(_reason_class).value_counts()
        sources[s.contract_id] = {
            "records_read": s.read,
            "records_linked": int(linked_by_source.get(s.contract_id, 0)),
            "records_quarantined": len(s.quarantine),
            "records_withdrawn": s.withdrawn,
            "files_read": len(s.files),
            "quarantine_reasons": {k: int(v) for k, v in reasons.items()},
            "errors": list(s.errors),
            "warnings": list(s.warnings),
            "counts": dict(s.counts),
        }
    per_person = person_source_link.groupby("person_id")["source"].nunique()
    by_count = per_person.value_counts().sort_index()
    link_types = person_source_link["link_type"].value_counts()
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "persons": int(per_person.size),
        "persons_by_source_count": {str(k): int(v) for k, v in by_count.items()},
        "records_linked": int(len(person_source_link)),
        "link_types": {k: int(v) for k, v in link_types.items()},
        "review_queue": int(len(review_queue)),
    }


def _reason_class(reason: str) -> str:
    """A reason without its parenthesised detail, so reasons group in the report."""
    return str(reason).split(" (")[0]


def write_reports(figures: dict[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    reports_dir.mkdir(parents=True, exist_ok=True)
    json_path = reports_dir / "coverage.json"
    json_path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    html_path = reports_dir / "coverage.html"
    html_path.write_text(render_html(figures), encoding="utf-8")
    return json_path, html_path


def render_html(figures: dict[str, Any]) -> str:
    """A plain, self-contained page: tables and inline bars, nothing fetched."""
    rows = "".join(
        "<tr><th>{}</th><td>{:,}</td><td>{:,}</td><td>{:,}</td><td>{:,}</td><td>{}</td></tr>".format(
            html.escape(source),
            f["records_read"],
            f["records_linked"],
            f["records_quarantined"],
            f["records_withdrawn"],
            _bar(f["records_linked"], f["records_read"]),
        )
        for source, f in figures["sources"].items()
    )
    by_count = figures["persons_by_source_count"]
    most = max(by_count.values(), default=1)
    count_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:,}</td><td>{_bar(v, most)}</td></tr>"
        for k, v in by_count.items()
    )
    reasons = (
        "".join(
            f"<tr><th>{html.escape(source)}</th><td>{html.escape(reason)}</td><td>{n:,}</td></tr>"
            for source, f in figures["sources"].items()
            for reason, n in f["quarantine_reasons"].items()
        )
        or "<tr><td colspan=3>No record was quarantined.</td></tr>"
    )
    problems = (
        "".join(
            f"<li>{html.escape(source)}: {html.escape(msg)}</li>"
            for source, f in figures["sources"].items()
            for msg in (*f["errors"], *f["warnings"])
        )
        or "<li>None.</li>"
    )
    return _PAGE.format(
        generated=html.escape(figures["generated_at"]),
        persons=figures["persons"],
        linked=figures["records_linked"],
        review=figures["review_queue"],
        source_rows=rows,
        count_rows=count_rows,
        reasons=reasons,
        problems=problems,
    )


def _bar(value: int, total: int) -> str:
    share = value / total if total else 0.0
    return f'<span class="bar"><span style="width:{share * 100:.1f}%"></span></span> {share:.1%}'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>care_etl coverage report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:64rem;color:#1b1b1b}}
table{{border-collapse:collapse;margin:1rem 0}}th,td{{padding:.3rem .8rem;text-align:left;
border-bottom:1px solid #ddd}}td{{font-variant-numeric:tabular-nums}}
.bar{{display:inline-block;width:10rem;height:.8rem;background:#eee;vertical-align:middle}}
.bar span{{display:block;height:100%;background:#1d70b8}}
.kpi{{display:inline-block;margin-right:2rem}}.kpi b{{display:block;font-size:1.6rem}}
</style></head><body>
<h1>Coverage of the person index</h1>
<p>Generated {generated} (UTC).</p>
<div><span class="kpi"><b>{persons:,}</b>persons</span>
<span class="kpi"><b>{linked:,}</b>records linked</span>
<span class="kpi"><b>{review:,}</b>pairs awaiting review</span></div>
<h2>Records per source</h2>
<table><tr><th>source</th><th>read</th><th>linked</th><th>quarantined</th><th>withdrawn</th>
<th>share linked</th></tr>{source_rows}</table>
<h2>Persons by number of sources</h2>
<table><tr><th>sources</th><th>persons</th><th></th></tr>{count_rows}</table>
<h2>Quarantine reasons</h2>
<table><tr><th>source</th><th>reason</th><th>records</th></tr>{reasons}</table>
<h2>Files and columns that need attention</h2>
<ul>{problems}</ul>
</body></html>
"""
