"""The coverage page opened in a real headless Chromium: every chart drawn, numbers from the DB.

The screenshot is kept as a test artefact: test-artifacts/coverage.png (gitignored).
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.report.html import CHART_IDS
from care_etl_tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.slow

ARTIFACTS = PROJECT_DIR / "test-artifacts"


def _chromium(binary: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",  # lets plotly.js draw before the DOM is taken
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def dom(report_run: dict, chromium: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    page = report_run["reports"] / "coverage.html"
    result = _chromium(chromium, page, tmp_path_factory.mktemp("profile"), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def tables(report_run: dict) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(report_run["url"])
    with engine.connect() as conn:
        names = ["person_index", "person_source_link", "quarantine", "review_queue"]
        frames = {n: pd.read_sql_table(n, conn) for n in names}
    engine.dispose()
    return frames


def _charts(dom: str) -> dict[str, str]:
    """Each chart's drawn markup, by chart id."""
    parts = dom.split('data-chart="')[1:]
    return {p[: p.index('"')]: p for p in parts}


def _bar_texts(chart: str) -> list[str]:
    return re.findall(r'<text class="bartext[^"]*"[^>]*>([^<]*)</text>', chart)


def _table(dom: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
    assert found, table_id
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1).split("<tbody>")[1], re.S)
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", r)]
        for r in rows
    ]


def _kpi(dom: str, name: str) -> str:
    found = re.search(rf'<b id="kpi-{name}">([^<]*)</b>', dom)
    assert found, name
    return found.group(1)


def test_every_chart_is_drawn_as_svg(dom: str):
    charts = _charts(dom)
    assert set(CHART_IDS) <= set(charts)
    for chart_id in CHART_IDS:
        drawn = charts[chart_id]
        # plotly.js replaces the empty div with its SVG layers only when the script ran
        assert 'class="main-svg"' in drawn, chart_id
        assert re.search(r'class="(cartesianlayer|hm)', drawn), chart_id
    assert 'class="hm"' in charts["chart-completeness"]  # the heatmap's cells


def test_the_key_numbers_agree_with_the_database(dom: str, tables: dict[str, pd.DataFrame]):
    persons, links = tables["person_index"], tables["person_source_link"]
    assert _kpi(dom, "persons") == f"{len(persons):,}"
    assert _kpi(dom, "records-linked") == f"{len(links):,}"
    assert _kpi(dom, "records-quarantined") == f"{len(tables['quarantine']):,}"
    assert _kpi(dom, "review-queue") == f"{len(tables['review_queue']):,}"

    per_source = links.groupby("source").size()
    rows = {r[0]: r for r in _table(dom, "table-sources")}
    assert set(rows) == set(per_source.index)
    for source, n in per_source.items():
        assert rows[source][2] == f"{n:,}", source
    quarantined = tables["quarantine"].groupby("source").size()
    for source, row in rows.items():
        assert row[3] == f"{quarantined.get(source, 0):,}", source
    # the bars of the per-source chart carry the same counts
    assert {f"{n}" for n in per_source} <= set(_bar_texts(_charts(dom)["chart-sources"]))


def test_persons_by_number_of_sources_chart_matches_person_index(
    dom: str, tables: dict[str, pd.DataFrame]
):
    by_count = tables["person_index"]["source_count"].value_counts().sort_index()
    assert _bar_texts(_charts(dom)["chart-source-count"]) == [str(v) for v in by_count]
    assert _table(dom, "table-source-count") == [[str(k), f"{v:,}"] for k, v in by_count.items()]


def test_overlap_chart_matches_the_links(dom: str, tables: dict[str, pd.DataFrame]):
    links = tables["person_source_link"]
    sets = links.groupby("person_id")["source"].agg(lambda s: " + ".join(sorted(set(s))))
    expected = sets.value_counts()
    shown = {r[0]: int(r[2].replace(",", "")) for r in _table(dom, "table-overlap")}
    assert shown == {k: int(v) for k, v in expected.head(20).items()}
    bars = [int(t) for t in _bar_texts(_charts(dom)["chart-overlap"])]
    assert sorted(bars, reverse=True) == sorted(shown.values(), reverse=True)


def test_linkage_rates_agree_with_the_links(dom: str, tables: dict[str, pd.DataFrame]):
    links = tables["person_source_link"]
    record_count = links.groupby("person_id")["source"].transform("size")
    assert _kpi(dom, "linkage-rate") == f"{round((record_count > 1).mean(), 4):.1%}"
    # every linked record falls in exactly one age band and one sex group
    for key in ("age_band", "sex"):
        records = sum(int(r[1].replace(",", "")) for r in _table(dom, f"table-bias-{key}"))
        assert records == len(links), key
    assert _bar_texts(_charts(dom)["chart-bias-age"]), "age bands drawn with their rates"


def test_review_queue_age_counts_every_pair(dom: str, tables: dict[str, pd.DataFrame]):
    rows = _table(dom, "table-review-age")
    waiting = sum(int(r[1].replace(",", "")) for r in rows if r[0].endswith(("day", "days")))
    assert waiting == len(tables["review_queue"])


def test_the_page_fetches_nothing(report_run: dict):
    page = (report_run["reports"] / "coverage.html").read_text(encoding="utf-8")
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)
    assert "Plotly.newPlot" in page


def test_screenshot_is_kept_as_an_artefact(report_run: dict, chromium: str, tmp_path: Path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "coverage.png"
    shot.unlink(missing_ok=True)
    page = report_run["reports"] / "coverage.html"
    result = _chromium(
        chromium,
        page,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,7000",
        "--hide-scrollbars",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a drawn page, not a blank one
    print(f"coverage report screenshot: {shot}")
