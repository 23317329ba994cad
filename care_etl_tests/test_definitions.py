"""The Dagster definitions load, show every stage, and materialise for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg

from care_etl.definitions import build_definitions, defs
from care_etl.resources import CareEtlSettings
from care_etl_tests.conftest import CONTRACTS_DIR, PROJECT_DIR


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


def test_every_asset_has_a_description_and_a_group():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name and node.group_name != "default", key


def test_workspace_yaml_loads_with_the_dagster_cli():
    dagster = Path(PROJECT_DIR / ".venv/bin/dagster")
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
