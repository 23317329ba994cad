"""The only Dagster wiring: assets per contract, the shared stages, one job, its schedule and
sensor, and the resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from care_etl.assets.automation import daily_schedule, source_files_sensor
from care_etl.assets.index import index_assets
from care_etl.assets.linkage import linkage_assets
from care_etl.assets.sources import source_assets
from care_etl.contracts import load_contracts
from care_etl.contracts.model import Contract
from care_etl.locations import contracts_dir_for
from care_etl.pipeline import collect_less_often
from care_etl.resources import CareEtlSettings, StoredOutputs

JOB_NAME = "care_etl_job"


def assets_for(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    per_source = [a for c in contracts for a in source_assets(c, contracts)]
    return [*per_source, *linkage_assets(contracts), *index_assets(contracts)]


def build_definitions(contracts_dir: Path, settings: CareEtlSettings) -> dg.Definitions:
    contracts = load_contracts(contracts_dir)
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all(),
        executor_def=dg.in_process_executor,
        description="Read every source, standardise, link, publish the index and write the "
        "coverage report.",
    )
    return dg.Definitions(
        assets=assets_for(contracts),
        jobs=[job],
        schedules=[daily_schedule(job)],
        sensors=[source_files_sensor(contracts, job)],
        resources={"settings": settings, "io_manager": StoredOutputs()},
        # Every run in one process, the job's and those the UI launches for a selection of
        # assets (Dagster's implicit asset job): one process per step would import Great
        # Expectations and recordlinkage again in each, 44 s against 12 s for the demo.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Built when Dagster loads the code location, not on import: `care-etl run` imports this
    module for assets_for and should neither load the default contracts twice nor fail on
    them when it was given others. The processes that load it run the flow, so they collect
    garbage less often (care_etl.pipeline.GC_THRESHOLDS)."""
    collect_less_often()
    return build_definitions(
        contracts_dir_for(),  # CARE_ETL_CONTRACTS_DIR, as care-etl run reads it
        CareEtlSettings.from_environment(url_by_reference=True),
    )
