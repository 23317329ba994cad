"""Coverage figures on small hand-made runs: every figure the page draws, and the metadata."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pandas as pd

from care_etl.index.analyst import AGE_BANDS, OLDEST_BAND
from care_etl.quality.staging import QUARANTINE_COLUMNS, StagedSource
from care_etl.report.coverage import coverage, write_reports
from care_etl.report.html import render_html
from care_etl.report.metadata import coverage_metadata, markdown_summary

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _staged(source: str, rows: list[dict], **extra) -> StagedSource:
    records = pd.DataFrame(rows)
    records["source"] = source
    records["date_of_birth"] = pd.to_datetime(records["date_of_birth"])
    staged = StagedSource(
        contract_id=source,
        records=records,
        quarantine=pd.DataFrame(
            [[source, "q1", "no usable name", "f.csv row 9"]], columns=QUARANTINE_COLUMNS
        ),
        read=len(rows) + 1,
        withdrawn=0,
    )
    for key, value in extra.items():
        setattr(staged, key, value)
    return staged


def _run():
    gp = _staged(
        "gp",
        [
            {"source_record_id": "g1", "date_of_birth": "2005-03-01", "sex": "M",
             "ethnicity": None, "nhs_number": "9434765919", "given_name": "A"},
            {"source_record_id": "g2", "date_of_birth": "1950-01-01", "sex": "F",
             "ethnicity": None, "nhs_number": None, "given_name": "B"},
        ],
        dq_results=[
            {"run_id": "r", "source": "gp", "check_name": "nhs_number_valid",
             "column_name": "nhs_number", "severity": "error", "success": False,
             "element_count": 2, "unexpected_count": 1, "unexpected_rate": 0.5,
             "observed_value": "Jane Smith"},  # a value must never reach the report
        ],
    )  # fmt: skip
    care = _staged(
        "care",
        [
            {"source_record_id": "c1", "date_of_birth": "2005-03-01", "sex": "M",
             "ethnicity": "Asian or Asian British - Indian", "nhs_number": None,
             "given_name": "A"},
            {"source_record_id": "c2", "date_of_birth": None, "sex": None,
             "ethnicity": None, "nhs_number": None, "given_name": "C"},
        ],
        blocked="Feed blocked: 3 of 10 NHS numbers fail modulus 11.",
    )  # fmt: skip
    links = pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P1", "P3"],
            "source": ["gp", "gp", "care", "care"],
            "source_record_id": ["g1", "g2", "c1", "c2"],
            "link_type": ["nhs_number", "single", "probabilistic", "single"],
            "match_probability": [1.0, None, 0.97, None],
        }
    )
    review = pd.DataFrame(
        {
            "match_probability": [0.6, 0.8, 0.9],
            "queued_at": ["2026-06-01T06:00:00", "2026-05-28T12:00:00", "2026-04-01T00:00:00"],
        }
    )
    return coverage([gp, care], links, review, now=NOW)


def test_the_promised_keys_are_kept():
    figures = _run()
    for key in ("records_read", "records_linked", "records_quarantined", "records_withdrawn"):
        assert figures["sources"]["gp"][key] == {"records_read": 3, "records_linked": 2,
                                                 "records_quarantined": 1,
                                                 "records_withdrawn": 0}[key]  # fmt: skip
    assert figures["persons"] == 3
    assert figures["persons_by_source_count"] == {"1": 2, "2": 1}


def test_overlap_counts_each_persons_exact_set_of_sources():
    # largest first, then fewer sources first, then by name
    assert _run()["source_overlap"] == [
        {"sources": ["care"], "persons": 1},
        {"sources": ["gp"], "persons": 1},
        {"sources": ["care", "gp"], "persons": 1},
    ]


def test_linkage_bias_counts_records_linked_to_another_by_group():
    bias = _run()["linkage_bias"]
    ages = {g["group"]: g for g in bias["age_band"]}
    # g1 and c1 (21 years old) are one person; g2 (76) and c2 (no date) stand alone
    assert ages["18-24"] == {"group": "18-24", "records": 2, "linked": 2, "rate": 1.0}
    assert ages["75-84"]["linked"] == 0 and ages["not recorded"]["records"] == 1
    assert list(ages) == ["18-24", "75-84", "not recorded"]
    sexes = {g["group"]: (g["records"], g["linked"]) for g in bias["sex"]}
    assert sexes == {"M": (2, 2), "F": (1, 0), "not recorded": (1, 0)}
    # ethnicity only over the source that records it, grouped by its broad category
    assert bias["ethnicity_sources"] == ["care"]
    ethnic = {g["group"]: (g["records"], g["linked"]) for g in bias["ethnicity"]}
    assert ethnic == {"Asian or Asian British": (1, 1), "not recorded": (1, 0)}
    assert _run()["linkage_rate"] == 0.5


def test_the_report_bands_ages_as_analyst_person_does():
    import datetime as dt

    from care_etl.index.analyst import age_band
    from care_etl.report.coverage import _age_bands

    today = dt.date(2026, 11, 27)
    born = ["2008-11-27", "2008-11-28", "1941-11-27", "1941-11-28", None, "2027-01-01"]
    bands = _age_bands(pd.Series(born), today).tolist()
    assert bands == ["18-24", "0-17", OLDEST_BAND, "75-84", "not recorded", "not recorded"]
    assert bands[:4] == [age_band(d, today) for d in born[:4]]
    assert set(bands) - {"not recorded"} <= {label for _, label in AGE_BANDS} | {OLDEST_BAND}


def test_quality_results_keep_counts_and_drop_values():
    dq = _run()["sources"]["gp"]["data_quality"]
    assert (dq["checks"], dq["passed"], dq["failed"]) == (1, 0, 1)
    result = dq["results"][0]
    assert result["check"] == "nhs_number_valid" and result["column"] == "nhs_number"
    assert result["unexpected_rate"] == 0.5 and result["observed"] is None
    assert "Jane" not in json.dumps(_run())


def test_blocked_feeds_review_age_and_probabilities():
    figures = _run()
    assert figures["blocked_feeds"] == [
        {"source": "care", "reason": "Feed blocked: 3 of 10 NHS numbers fail modulus 11."}
    ]
    age = figures["review_queue_age"]
    assert age["by_age"] == {"under 1 day": 1, "1-7 days": 1, "8-30 days": 0, "over 30 days": 1}
    assert age["oldest_days"] == 61.5
    mp = figures["match_probability"]
    assert mp["links"]["nhs_number"][-1] == 1 and mp["links"]["probabilistic"][-1] == 1
    assert sum(mp["review"]) == 3 and "single" not in mp["links"]


def test_review_queue_without_queued_at_counts_every_pair_as_new():
    figures = coverage([], pd.DataFrame(columns=["person_id", "source", "source_record_id",
                                                 "link_type", "match_probability"]),
                       pd.DataFrame({"match_probability": [0.7, 0.8]}), now=NOW)  # fmt: skip
    assert figures["review_queue_age"]["by_age"]["under 1 day"] == 2
    assert figures["review_queue_age"]["queued_at_recorded"] is False


def test_completeness_is_the_share_of_records_with_the_field():
    completeness = _run()["sources"]["gp"]["completeness"]
    assert completeness["nhs_number"] == 0.5
    assert completeness["given_name"] == 1.0
    assert completeness["postcode"] is None  # not a column of these records


def test_every_figure_goes_to_the_json_and_the_page(tmp_path):
    figures = _run()
    json_path, html_path = write_reports(figures, tmp_path)
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(figures))
    page = html_path.read_text()
    assert "Feed blocked: 3 of 10 NHS numbers fail modulus 11." in page
    assert "nhs_number_valid" in page


def test_metadata_plots_per_source_and_overall_and_has_a_summary():
    meta = coverage_metadata(_run())
    assert meta["persons"] == dg.MetadataValue.int(3)
    assert meta["gp/records_linked"] == dg.MetadataValue.int(2)
    assert meta["care/records_quarantined"] == dg.MetadataValue.int(1)
    assert meta["linkage_rate"] == dg.MetadataValue.float(0.5)
    assert meta["linkage_rate/sex/M"] == dg.MetadataValue.float(1.0)
    assert meta["blocked_feeds"] == dg.MetadataValue.int(1)
    assert meta["gp/dq_checks_failed"] == dg.MetadataValue.int(1)
    assert isinstance(meta["summary"], dg.MarkdownMetadataValue)
    summary = markdown_summary(_run())
    assert "| gp | 3 | 2 | 1 | 0 | 50.0% |" in summary
    assert "**Blocked:** care" in summary and "nhs_number_valid" in summary


def test_records_read_but_neither_linked_quarantined_nor_withdrawn_are_counted():
    # Nothing may be lost: the figures said read 3, linked 1, quarantined 1 and no more, and
    # nobody was told the third record had gone missing between staging and the index.
    assert _run()["sources"]["gp"]["records_unaccounted"] == 0
    assert _run()["records_unaccounted"] == 0
    gp = _staged("gp", [{"source_record_id": "g1", "date_of_birth": None},
                        {"source_record_id": "g2", "date_of_birth": None}])  # fmt: skip
    links = pd.DataFrame(
        {"person_id": ["P1"], "source": ["gp"], "source_record_id": ["g1"],
         "link_type": ["single"], "match_probability": [None]}
    )  # fmt: skip
    figures = coverage([gp], links, pd.DataFrame({"match_probability": [], "queued_at": []}))
    assert figures["sources"]["gp"]["records_unaccounted"] == 1
    assert figures["records_unaccounted"] == 1
    alert = "Records not accounted for (read, but neither linked, quarantined nor withdrawn): gp +1"
    assert alert in render_html(figures)
    assert "Records not accounted for" not in render_html(_run())


def test_lost_records_fail_the_asset_check_and_the_run_exits_1(capsys):
    from care_etl.assets.index import accounted_for
    from care_etl.cli import _lost

    fine = _run()
    assert accounted_for(fine).passed and not _lost(fine)
    lost = dict(fine, sources={**fine["sources"]})
    lost["sources"]["gp"] = dict(fine["sources"]["gp"], records_unaccounted=2)
    check = accounted_for(lost)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["gp/records_unaccounted"].value == 2
    capsys.readouterr()
    assert _lost(lost)
    assert capsys.readouterr().err == (
        "care-etl: error: gp: +2 record(s) read but neither linked, quarantined nor "
        "withdrawn; the index is published, report this run\n"
    )
