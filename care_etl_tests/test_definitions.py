"""The Dagster definitions load, show every stage, and materialise for real."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from care_etl.definitions import build_definitions
from care_etl.definitions import defs as load_defs
from care_etl.pipeline import GC_THRESHOLDS, fewer_collections
from care_etl.resources import CareEtlSettings
from care_etl_tests.conftest import CONTRACTS_DIR, PROJECT_DIR

defs = load_defs()  # what Dagster builds when it loads the code location


def test_definitions_load_with_assets_for_every_source_and_stage():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for source in (
        "health_gp_registrations",
        "housing_tenancies",
        "social_care_case_management",
        "paper_referrals",
    ):
        assert f"ingest/raw_{source}" in keys
        assert f"standardise/staged_{source}" in keys
    assert {
        "link/person_records",
        "link/linked_records",
        "index/person_index",
        "report/coverage_report",
    } <= keys


def test_a_run_process_collects_garbage_less_often_and_a_run_restores_the_callers_setting():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        load_defs()  # a Dagster run process loading the code location
        assert gc.get_threshold() == GC_THRESHOLDS
        gc.set_threshold(700, 10, 10)
        with pytest.raises(RuntimeError), fewer_collections():  # run_pipeline's, failing
            assert gc.get_threshold() == GC_THRESHOLDS
            raise RuntimeError
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_every_asset_has_a_description_and_a_group():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name and node.group_name != "default", key


def test_every_asset_has_owners_and_kinds_and_sources_name_their_contract_owner():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert "team:data-engineering" in node.owners, key
        assert node.kinds, key
    raw_gp = graph.get(dg.AssetKey(["ingest", "raw_health_gp_registrations"]))
    staged_gp = graph.get(dg.AssetKey(["standardise", "staged_health_gp_registrations"]))
    assert "health.data@council.example" in raw_gp.owners  # the contract's team owner
    assert "health.data@council.example" in staged_gp.owners


def test_the_job_has_a_daily_schedule_and_a_source_file_sensor():
    assert defs.resolve_schedule_def("care_etl_daily").job_name == "care_etl_job"
    assert defs.resolve_sensor_def("care_etl_source_files").job_name == "care_etl_job"


def test_workspace_yaml_loads_with_the_dagster_cli():
    dagster = Path(sys.executable).parent / "dagster"  # the environment running the tests
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_job_materialises_in_process(generated: Path, tmp_path: Path):
    settings = CareEtlSettings(
        sources_dir=str(generated),
        database_url=f"sqlite:///{tmp_path / 'i.db'}",
        reports_dir=str(tmp_path / "reports"),
        cache_dir=str(tmp_path / "cache"),
    )
    definitions = build_definitions(CONTRACTS_DIR, settings)
    result = definitions.resolve_job_def("care_etl_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "report/coverage_report" in materialised
    assert (tmp_path / "reports" / "coverage.json").exists()
    # the report's figures as metadata: numbers that plot across runs, and a summary
    report = result.asset_materializations_for_node("report__coverage_report")[0].metadata
    figures = json.loads((tmp_path / "reports" / "coverage.json").read_text())
    assert report["persons"] == dg.MetadataValue.int(figures["persons"])
    gp = figures["sources"]["health_gp_registrations"]
    linked = report["health_gp_registrations/records_linked"]
    assert linked == dg.MetadataValue.int(gp["records_linked"])
    assert isinstance(report["linkage_rate"], dg.FloatMetadataValue)
    assert "health_gp_registrations" in report["summary"].value
