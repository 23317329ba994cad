"""A bad feed is blocked in a real Dagster run; its last accepted version stands in."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from care_etl.assets.sources import source_assets
from care_etl.contracts import load_contract
from care_etl.pipeline import run_pipeline
from care_etl.quality.checks import plan_checks
from care_etl.resources import CareEtlSettings
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.quality.feeds import half_dates_unparseable, rename_household_column

pytestmark = pytest.mark.slow

GP, HOUSING = "health_gp_registrations", "housing_tenancies"
OTHERS = ("social_care_case_management", "paper_referrals")


@pytest.fixture(scope="module")
def clean_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from care_etl.synthetic.generate import generate

    out = tmp_path_factory.mktemp("blocking") / "sources"
    generate(out, people=300, seed=3, scans=0)
    return out


def _query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql))]
    engine.dispose()
    return rows


def _links(url: str, source: str) -> list[str]:
    return [
        r[0]
        for r in _query(
            url,
            f"select source_record_id from person_source_link where source = '{source}' "
            "order by source_record_id",
        )
    ]


def test_a_broken_feed_is_blocked_its_last_accepted_version_stands_in_and_others_run(
    clean_sources, tmp_path
):
    sources = Path(shutil.copytree(clean_sources, tmp_path / "sources"))
    url = f"sqlite:///{tmp_path / 'index.db'}"
    first = run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "r1").figures
    assert not [s for s, f in first["sources"].items() if f["blocked"]]
    linked_before = {s: _links(url, s) for s in (GP, HOUSING)}
    assert all(linked_before.values())

    half_dates_unparseable(sources)  # health: half its dates of birth unreadable
    rename_household_column(sources, "Name", "Full Name")  # housing: a required column gone
    for path in (sources / "social_care").glob("*.db"):  # the others change, and still run
        path.touch()
    second = run_pipeline(sources, CONTRACTS_DIR, url, tmp_path / "r2").figures

    health, housing = second["sources"][GP], second["sources"][HOUSING]
    assert "date_parses__date_of_birth" in health["blocked"]
    assert "required column(s) Name missing" in housing["blocked"]
    assert any("missing required column(s) Name" in e for e in housing["errors"])
    assert any("'Full Name'" in w and "contract" in w for w in housing["warnings"])
    for source in (GP, HOUSING):  # the index was built from the last accepted version
        assert _links(url, source) == linked_before[source]
        assert second["sources"][source]["records_read"] == first["sources"][source]["records_read"]
    # What this run read of them is held back, and said so: in neither index nor quarantine.
    assert health["records_held_back"] == first["sources"][GP]["records_read"]
    assert housing["records_held_back"] == 0  # a required column missing: no row was read
    assert all(second["sources"][s]["records_held_back"] == 0 for s in OTHERS)
    for source in OTHERS:
        assert second["sources"][source]["blocked"] is None
        assert second["sources"][source]["records_linked"] > 0

    runs = _query(url, "select distinct run_id from dq_result")
    assert len(runs) == 2
    accepted = dict(_query(url, "select source, run_id from accepted_source"))
    first_run = _query(
        url, f"select run_id from dq_result where source = '{GP}' order by run_time limit 1"
    )[0][0]
    assert accepted[GP] == accepted[HOUSING] == first_run
    assert all(accepted[s] != first_run for s in OTHERS), "passing feeds are accepted anew"
    failed = _query(
        url,
        "select source, check_name from dq_result where not success and severity = 'error' "
        "order by source, check_name",
    )
    assert (GP, "date_parses__date_of_birth") in failed
    assert (HOUSING, "schema_required_columns") in failed
    assert not [f for f in failed if f[0] in OTHERS]


def test_a_first_run_whose_every_feed_is_blocked_completes_with_an_empty_index(
    clean_sources, tmp_path
):
    """A new contract's first day, its one feed failing a check: nothing to link is not an
    error (linkage was handed a frame without columns and failed, and nothing was written,
    not even the check results)."""
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    shutil.copy(CONTRACTS_DIR / f"{GP}.yaml", contracts)
    sources = tmp_path / "sources"
    shutil.copytree(clean_sources / "health", sources / "health")
    half_dates_unparseable(sources)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    figures = run_pipeline(sources, contracts, url, tmp_path / "r").figures
    assert figures["persons"] == 0
    gp = figures["sources"][GP]
    assert "date_parses__date_of_birth" in gp["blocked"] and gp["records_held_back"] > 0
    assert _query(url, "select count(*) from person_index") == [(0,)]
    assert _query(url, f"select count(*) from dq_result where source = '{GP}'")[0][0] > 0


def test_checks_are_dagster_asset_checks_with_counts_only_and_warnings_visible(
    clean_sources, tmp_path
):
    contract = load_contract(CONTRACTS_DIR / "paper_referrals.yaml")
    settings = CareEtlSettings(
        sources_dir=str(clean_sources),
        database_url=f"sqlite:///{tmp_path / 'index.db'}",
        reports_dir=str(tmp_path / "reports"),
        cache_dir=str(tmp_path / "cache"),
    )
    result = dg.materialize(source_assets(contract), resources={"settings": settings})
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {p.name for p in plan_checks(contract)}
    severities = {e.check_name: e.severity for e in evaluations}
    assert severities["date_parses__date_of_birth"] == dg.AssetCheckSeverity.ERROR
    assert severities["pattern__postcode"] == dg.AssetCheckSeverity.WARN
    for evaluation in evaluations:
        for key, value in evaluation.metadata.items():
            assert key in {
                "element_count",
                "unexpected_count",
                "unexpected_rate",
                "observed_value",
                "column",
            }
            if key == "column":
                assert value.value in contract.person_object.column_names
            else:
                assert isinstance(value.value, int | float)
