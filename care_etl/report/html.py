"""The coverage page: one self-contained HTML file, charts drawn by plotly.js written inline.

Every chart and table is drawn from the figures dict that also goes to coverage.json, so the
page shows nothing the JSON does not hold. Nothing is fetched when the page opens.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from care_etl.report.coverage import unaccounted

#: The chart ids on the page, in order; tests check that each one is drawn.
CHART_IDS = (
    "chart-sources",
    "chart-overlap",
    "chart-source-count",
    "chart-bias-age",
    "chart-bias-sex",
    "chart-bias-ethnicity",
    "chart-quarantine",
    "chart-data-quality",
    "chart-completeness",
    "chart-match-probability",
    "chart-review-age",
)
BLUE, GREEN, ORANGE, GREY, RED, PURPLE = (
    "#1d70b8",
    "#00703c",
    "#f47738",
    "#b1b4b6",
    "#d4351c",
    "#4c2c92",
)
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["toImage"]}


def render_html(figures: dict[str, Any]) -> str:
    """The whole page: key figures, then one section per question, chart and table together."""
    sections = [
        _sources_section(figures),
        _overlap_section(figures),
        _source_count_section(figures),
        _bias_section(figures),
        _quarantine_section(figures),
        _data_quality_section(figures),
        _completeness_section(figures),
        _probability_section(figures),
        _review_section(figures),
        _blocked_section(figures),
        _problems_section(figures),
    ]
    return _PAGE.format(
        plotlyjs=get_plotlyjs(),
        generated=_e(figures["generated_at"]),
        kpis=_kpis(figures),
        blocked_banner=_blocked_banner(figures),
        body="\n".join(sections),
    )


# --- helpers ------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value))


def _n(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _chart(chart_id: str, fig: go.Figure, height: int = 360) -> str:
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        font={"family": "system-ui, sans-serif", "size": 12},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    if not any(
        len(getattr(trace, "x", None) or getattr(trace, "z", None) or []) for trace in fig.data
    ):
        fig.add_annotation(text="Nothing to show in this run", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 16})  # fmt: skip
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=chart_id, config=_CONFIG)
    return f'<div class="chart" data-chart="{chart_id}">{div}</div>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]], table_id: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = (
        "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        or f'<tr><td colspan="{len(list(headers)) or 1}">None.</td></tr>'
    )
    ident = f' id="{table_id}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _section(anchor: str, title: str, intro: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2><p class="intro">{intro}</p>{"".join(parts)}</section>'


# --- the page's parts ---------------------------------------------------------------------


def _kpis(f: dict[str, Any]) -> str:
    items = [
        ("kpi-persons", f["persons"], "persons in the index"),
        ("kpi-records-linked", f["records_linked"], "records linked"),
        ("kpi-records-quarantined", f.get("records_quarantined"), "records quarantined"),
        ("kpi-review-queue", f["review_queue"], "pairs awaiting review"),
    ]
    cards = "".join(
        f'<div class="kpi"><b id="{i}">{_n(v)}</b>{_e(label)}</div>' for i, v, label in items
    )
    rate = f.get("linkage_rate")
    cards += (
        f'<div class="kpi"><b id="kpi-linkage-rate">{_pct(rate)}</b>records linked to another</div>'
    )
    return cards


def _blocked_banner(f: dict[str, Any]) -> str:
    return _blocked_alert(f) + _unaccounted_alert(f)


def _blocked_alert(f: dict[str, Any]) -> str:
    blocked = f.get("blocked_feeds") or []
    if not blocked:
        return ""
    names = ", ".join(_e(b["source"]) for b in blocked)
    return f'<p class="alert">Blocked feeds: {names}. Their last accepted version stands in; see <a href="#blocked">below</a>.</p>'


def _unaccounted_alert(f: dict[str, Any]) -> str:
    """Records read that reached neither the index nor quarantine: a fault of the run, never
    of the data, which must not pass unseen."""
    lost = unaccounted(f)
    if not lost:
        return ""
    named = ", ".join(f"{_e(s)} {n:+,}" for s, n in lost.items())
    return (
        f'<p class="alert">Records not accounted for (read, but neither linked, quarantined '
        f"nor withdrawn): {named}. Report this run to the engineers.</p>"
    )


def _sources_section(f: dict[str, Any]) -> str:
    names = list(f["sources"])
    fig = go.Figure()
    for key, label, colour in (
        ("records_read", "read", GREY),
        ("records_linked", "linked", BLUE),
        ("records_quarantined", "quarantined", ORANGE),
        ("records_withdrawn", "withdrawn", PURPLE),
    ):
        values = [f["sources"][s][key] for s in names]
        fig.add_bar(name=label, x=names, y=values, marker_color=colour, text=values)
    fig.update_layout(barmode="group")
    rows = [
        [
            _e(s),
            _n(v["records_read"]),
            _n(v["records_linked"]),
            _n(v["records_quarantined"]),
            _n(v["records_withdrawn"]),
            _pct(v.get("linkage_rate")),
            _n(v["files_read"]),
        ]
        for s, v in f["sources"].items()
    ]
    table = _table(
        ["source", "read", "linked", "quarantined", "withdrawn", "linked to another", "files"],
        rows,
        "table-sources",
    )
    return _section(
        "sources",
        "Records per source",
        "Every record read ends in exactly one place: linked into the index, quarantined with "
        "a reason, or withdrawn at source (counted, indexed nowhere). "
        "<i>Linked to another</i> is the share of a source's records whose person has at least "
        "one other record.",
        _chart("chart-sources", fig),
        table,
    )


def _overlap_section(f: dict[str, Any]) -> str:
    overlap = (f.get("source_overlap") or [])[:20]
    sources = sorted({s for row in overlap for s in row["sources"]}) or list(f["sources"])
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.03
    )
    xs = list(range(len(overlap)))
    fig.add_bar(
        x=xs,
        y=[r["persons"] for r in overlap],
        text=[r["persons"] for r in overlap],
        marker_color=BLUE,
        name="persons",
        hovertext=[" + ".join(r["sources"]) for r in overlap],
        row=1,
        col=1,
    )
    for i, row in enumerate(overlap):
        member = [sources.index(s) for s in row["sources"]]
        fig.add_scatter(
            x=[i] * len(member),
            y=member,
            mode="lines+markers",
            marker={"size": 11, "color": "#0b0c0c"},
            line={"color": "#0b0c0c", "width": 2},
            hoverinfo="skip",
            showlegend=False,
            row=2,
            col=1,
        )
    fig.add_scatter(
        x=[i for i in xs for _ in sources],
        y=[j for _ in xs for j in range(len(sources))],
        mode="markers",
        marker={"size": 11, "color": "#e5e6e7"},
        hoverinfo="skip",
        showlegend=False,
        row=2,
        col=1,
    )
    fig.data = (fig.data[0], fig.data[-1], *fig.data[1:-1])  # grey dots under the black
    fig.update_yaxes(title_text="persons", row=1, col=1)
    fig.update_yaxes(
        tickvals=list(range(len(sources))), ticktext=sources, range=[-0.6, len(sources) - 0.4],
        row=2, col=1,
    )  # fmt: skip
    fig.update_xaxes(showticklabels=False, row=2, col=1)
    fig.update_layout(showlegend=False, margin={"l": 220})
    rows = [
        [_e(" + ".join(r["sources"])), _n(len(r["sources"])), _n(r["persons"])] for r in overlap
    ]
    return _section(
        "overlap",
        "Overlap between sources",
        "An UpSet chart: each column is one exact combination of sources (the black dots), and "
        "its bar counts the persons found in that combination and no other.",
        _chart("chart-overlap", fig, height=460),
        _table(["sources", "number of sources", "persons"], rows, "table-overlap"),
    )


def _source_count_section(f: dict[str, Any]) -> str:
    by_count = f["persons_by_source_count"]
    fig = go.Figure(
        go.Bar(
            x=[f"{k} source{'s' if k != '1' else ''}" for k in by_count],
            y=list(by_count.values()),
            text=list(by_count.values()),
            marker_color=BLUE,
        )
    )
    fig.update_yaxes(title_text="persons")
    rows = [[_e(k), _n(v)] for k, v in by_count.items()]
    return _section(
        "source-count",
        "Persons by number of sources",
        f"{_n(f['persons'])} persons in the index.",
        _chart("chart-source-count", fig, height=300),
        _table(["sources", "persons"], rows, "table-source-count"),
    )


def _bias_chart(chart_id: str, groups: list[dict[str, Any]], colour: str) -> str:
    fig = go.Figure(
        go.Bar(
            x=[g["group"] for g in groups],
            y=[g["rate"] for g in groups],
            text=[_pct(g["rate"]) for g in groups],
            customdata=[[g["linked"], g["records"]] for g in groups],
            hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]} records<extra></extra>",
            marker_color=colour,
        )
    )
    fig.update_yaxes(title_text="share linked", tickformat=".0%", range=[0, 1.05])
    return _chart(chart_id, fig, height=300)


def _bias_section(f: dict[str, Any]) -> str:
    bias = f.get("linkage_bias") or {}
    parts = []
    for key, title, chart_id in (
        ("age_band", "By age band", "chart-bias-age"),
        ("sex", "By sex", "chart-bias-sex"),
        ("ethnicity", "By ethnic group (sources that record it: {})", "chart-bias-ethnicity"),
    ):
        groups = bias.get(key) or []
        rows = [
            [_e(g["group"]), _n(g["records"]), _n(g["linked"]), _pct(g["rate"])] for g in groups
        ]
        title = title.format(", ".join(bias.get("ethnicity_sources") or []) or "none")
        parts.append(
            f"<h3>{_e(title)}</h3>"
            + _bias_chart(chart_id, groups, GREEN)
            + _table(["group", "records", "linked", "share linked"], rows, f"table-bias-{key}")
        )
    return _section(
        "bias",
        "Linkage rates by age, sex and ethnic group",
        "Linkage fails some groups more than others (young men and ethnic minorities, in "
        "published studies). The share of each group's records "
        f"{_e(bias.get('definition', 'linked to another record'))}. A low share means that "
        "group's records more often stand alone: either the person is known to one service "
        "only, or the linkage missed them.",
        *parts,
    )


def _quarantine_section(f: dict[str, Any]) -> str:
    reasons = sorted(f.get("quarantine_reasons") or {}, key=lambda r: -f["quarantine_reasons"][r])
    fig = go.Figure()
    for source, v in f["sources"].items():
        counts = [v["quarantine_reasons"].get(r, 0) for r in reasons]
        if any(counts):
            fig.add_bar(name=source, y=reasons, x=counts, orientation="h")
    fig.update_layout(barmode="stack", yaxis={"autorange": "reversed"}, margin={"l": 280})
    fig.update_xaxes(title_text="records")
    rows = [
        [_e(source), _e(reason), _n(n)]
        for source, v in f["sources"].items()
        for reason, n in v["quarantine_reasons"].items()
    ]
    return _section(
        "quarantine",
        "Quarantine reasons",
        f"{_n(f.get('records_quarantined'))} records could not be indexed. Each waits in the "
        "<code>quarantine</code> table with its reason and lineage (file and row).",
        _chart("chart-quarantine", fig, height=max(260, 60 + 34 * len(reasons))),
        _table(["source", "reason", "records"], rows, "table-quarantine"),
    )


def _data_quality_section(f: dict[str, Any]) -> str:
    names = list(f["sources"])
    dq = {s: f["sources"][s].get("data_quality") or {} for s in names}
    fig = go.Figure()
    fig.add_bar(name="passed", x=names, y=[dq[s].get("passed", 0) for s in names],
                marker_color=GREEN)  # fmt: skip
    fig.add_bar(name="failed", x=names, y=[dq[s].get("failed", 0) for s in names],
                marker_color=RED)  # fmt: skip
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="checks")

    def row(s: str, r: dict[str, Any]) -> list[str]:
        return [
            _e(s),
            _e(r.get("check")),
            _e(r.get("column") or "(table)"),
            _e(r.get("severity") or ""),
            '<span class="ok">passed</span>' if r["success"] else '<span class="bad">failed</span>',
            _n(r.get("unexpected_count")),
            _pct(r.get("unexpected_rate")),
        ]

    results = [(s, r) for s in names for r in dq[s].get("results", [])]
    headers = ["source", "check", "column", "severity", "result", "unexpected", "rate"]
    failed = [row(s, r) for s, r in results if not r["success"]]
    total = len(results)
    intro = (
        f"{total:,} checks declared by the contracts ran on this load (Great Expectations); "
        f"{len(failed):,} failed. Counts and rates only: failing values are never shown."
        if total
        else "No data-quality results were recorded in this run."
    )
    failed_table = (
        "<h3>Failed checks</h3>" + _table(headers, failed, "table-data-quality-failed")
        if failed
        else ""
    )
    return _section(
        "data-quality",
        "Data-quality results per contract",
        intro,
        _chart("chart-data-quality", fig, height=300),
        failed_table,
        f"<details><summary>All {total:,} results</summary>"
        f"{_table(headers, [row(s, r) for s, r in results], 'table-data-quality')}</details>",
    )


def _completeness_section(f: dict[str, Any]) -> str:
    names = list(f["sources"])
    fields = list(next(iter(f["sources"].values()), {}).get("completeness", {}))
    z = [[f["sources"][s]["completeness"].get(x) for x in fields] for s in names]
    text = [["" if v is None else f"{v:.0%}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=fields,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            hovertemplate="%{y} %{x}: %{text}<extra></extra>",
            colorbar={"tickformat": ".0%"},
        )
    )
    fig.update_layout(margin={"l": 220}, yaxis={"autorange": "reversed"})  # table order
    rows = [[_e(s), *[_pct(v) for v in row]] for s, row in zip(names, z, strict=True)]
    return _section(
        "completeness",
        "Field completeness per source",
        "The share of each source's accepted records with the field present after "
        "standardisation (a value that failed a check, such as an NHS number failing modulus "
        "11, counts as missing). 0% usually means the source does not carry the field.",
        _chart("chart-completeness", fig, height=80 + 45 * max(len(names), 1)),
        _table(["source", *fields], rows, "table-completeness"),
    )


def _probability_section(f: dict[str, Any]) -> str:
    mp = f.get("match_probability") or {}
    edges = mp.get("bin_edges") or []
    centres = [round((a + b) / 2, 3) for a, b in zip(edges, edges[1:], strict=False)]
    fig = go.Figure()
    colours = {"nhs_number": GREEN, "probabilistic": BLUE}
    for kind, counts in (mp.get("links") or {}).items():
        fig.add_bar(name=f"linked ({kind})", x=centres, y=counts,
                    marker_color=colours.get(kind, GREY))  # fmt: skip
    fig.add_bar(name="awaiting review", x=centres, y=mp.get("review", []), marker_color=ORANGE)
    counts = [c for series in (mp.get("links") or {}).values() for c in series]
    top = max([*counts, *(mp.get("review") or []), 1])
    fig.update_layout(barmode="group", bargap=0.1)
    fig.update_xaxes(title_text="match probability", range=[0, 1])
    # log scale: the few uncertain pairs stay visible beside hundreds of certain links
    fig.update_yaxes(title_text="records / pairs", type="log", range=[-0.1, math.log10(top) + 0.2])
    rows = [
        [f"{a:.2f}–{b:.2f}"]
        + [_n((mp.get("links") or {})[k][i]) for k in (mp.get("links") or {})]
        + [_n((mp.get("review") or [0] * len(centres))[i])]
        for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False))
    ]
    headers = ["probability", *[f"linked ({k})" for k in (mp.get("links") or {})], "review"]
    return _section(
        "match-probability",
        "Distribution of match probabilities",
        "For each linked record, the probability of its strongest accepted link (an NHS "
        "number match counts as 1.0); for each pair awaiting review, the model's probability. "
        "The count axis is logarithmic.",
        _chart("chart-match-probability", fig),
        f"<details><summary>Counts per bin</summary>{_table(headers, rows, 'table-match-probability')}</details>",
    )


def _review_section(f: dict[str, Any]) -> str:
    age = f.get("review_queue_age") or {"by_age": {}, "pairs": f["review_queue"]}
    buckets = age.get("by_age", {})
    fig = go.Figure(
        go.Bar(
            x=list(buckets),
            y=list(buckets.values()),
            text=list(buckets.values()),
            marker_color=ORANGE,
        )  # fmt: skip
    )
    fig.update_yaxes(title_text="pairs")
    note = (
        ""
        if age.get("queued_at_recorded")
        else " The queue does not record when pairs were queued yet, so every pair counts as new."
    )
    rows = [[_e(k), _n(v)] for k, v in buckets.items()]
    rows += [
        ["oldest (days)", _n(age.get("oldest_days"))],
        ["median (days)", _n(age.get("median_days"))],
    ]
    return _section(
        "review",
        "The review queue",
        f"{_n(age.get('pairs', f['review_queue']))} record pairs await a person's decision: the "
        "model was unsure, or a rule held a probable pair back (different NHS numbers, dates "
        f"of birth or first names). They stay apart until someone decides.{note}",
        _chart("chart-review-age", fig, height=280),
        _table(["waiting", "pairs"], rows, "table-review-age"),
    )


def _blocked_section(f: dict[str, Any]) -> str:
    blocked = f.get("blocked_feeds") or []
    rows = [[_e(b["source"]), _e(b["reason"])] for b in blocked]
    return _section(
        "blocked",
        "Blocked feeds",
        "A feed that failed a blocking data-quality check is not loaded; its last accepted "
        "version stands in until the supplier sends a good one."
        if blocked
        else "No feed was blocked in this run.",
        _table(["source", "why it was blocked"], rows, "table-blocked") if blocked else "",
    )


def _problems_section(f: dict[str, Any]) -> str:
    items = "".join(
        f"<li>{_e(source)}: {_e(msg)}</li>"
        for source, v in f["sources"].items()
        for msg in (*v["errors"], *v["warnings"])
    )
    return _section(
        "problems",
        "Files and columns that need attention",
        "Files that could not be read, and columns that drifted from the contract.",
        f"<ul>{items or '<li>None.</li>'}</ul>",
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>care_etl coverage report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;background:#f3f2f1}}
header{{background:#0b0c0c;color:#fff;padding:1rem 2rem}}header h1{{margin:.2rem 0}}
header p{{margin:.2rem 0;color:#ddd}}
nav{{padding:.5rem 2rem;background:#fff;border-bottom:1px solid #ddd;font-size:.9rem}}
nav a{{margin-right:1rem;color:#1d70b8}}
main{{max-width:72rem;margin:0 auto;padding:1rem 2rem}}
section{{background:#fff;margin:1rem 0;padding:1rem 1.5rem;border-radius:4px}}
.intro{{color:#505a5f;max-width:56rem}}.scroll{{overflow-x:auto}}
table{{border-collapse:collapse;margin:1rem 0;font-size:.9rem}}
th,td{{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}}
td{{font-variant-numeric:tabular-nums}}
.kpis{{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}}
.kpi{{background:#fff;padding:.8rem 1.2rem;border-left:5px solid #1d70b8;min-width:10rem}}
.kpi b{{display:block;font-size:1.8rem}}
.alert{{background:#fbe9e7;border-left:5px solid #d4351c;padding:.8rem 1.2rem}}
.ok{{color:#00703c}}.bad{{color:#d4351c;font-weight:bold}}
</style>
<script>{plotlyjs}</script>
</head><body>
<header><h1>Coverage of the person index</h1>
<p>Generated {generated} (UTC). Counts and rates only: this page holds no personal data.</p></header>
<nav><a href="#sources">Sources</a><a href="#overlap">Overlap</a><a href="#source-count">Persons</a>
<a href="#bias">Linkage bias</a><a href="#quarantine">Quarantine</a><a href="#data-quality">Data quality</a>
<a href="#completeness">Completeness</a><a href="#match-probability">Match probabilities</a>
<a href="#review">Review queue</a><a href="#blocked">Blocked feeds</a></nav>
<main>
{blocked_banner}
<div class="kpis">{kpis}</div>
{body}
</main></body></html>
"""
