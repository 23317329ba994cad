"""Per source: read it (ingest), then map, standardise and quarantine (standardise)."""

from pathlib import Path

import dagster as dg

from care_etl.contracts.model import Contract
from care_etl.quality.staging import StagedSource, stage_source
from care_etl.resources import CareEtlSettings
from care_etl.sources.read import RawSource, read_source


def raw_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["ingest", f"raw_{contract.id}"])


def staged_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["standardise", f"staged_{contract.id}"])


def source_assets(contract: Contract) -> list[dg.AssetsDefinition]:
    """The two assets of one source, grouped under the source's contract id."""

    @dg.asset(
        key=raw_key(contract),
        group_name=contract.id,
        kinds={contract.format, "python"},
        tags={"stage": "ingest"},
        description=f"{contract.name}: every record as read from {contract.location}, as text, "
        "with its lineage (file and row, sheet, or table and key).",
    )
    def raw(context: dg.AssetExecutionContext, settings: CareEtlSettings) -> RawSource:
        result = read_source(
            contract, Path(settings.sources_dir), cache_dir=Path(settings.cache_dir)
        )
        for message in result.errors:
            context.log.error(message)
        for message in result.warnings:
            context.log.warning(message)
        context.add_output_metadata(
            {
                "dagster/row_count": len(result.records),
                "files_read": len(result.files),
                "file_errors": len(result.errors),
                **result.counts,
            }
        )
        return result

    @dg.asset(
        key=staged_key(contract),
        group_name=contract.id,
        ins={"raw": dg.AssetIn(key=raw_key(contract))},
        kinds={"pandas"},
        tags={"stage": "standardise"},
        description=f"{contract.name}: records mapped to the person model by the contract "
        "and standardised; rows that cannot be indexed go to quarantine with a reason.",
    )
    def staged(context: dg.AssetExecutionContext, raw: RawSource) -> StagedSource:
        result = stage_source(raw, contract)
        context.add_output_metadata(
            {
                "records_read": result.read,
                "records_accepted": len(result.records),
                "records_quarantined": len(result.quarantine),
                "records_withdrawn": result.withdrawn,
            }
        )
        return result

    return [raw, staged]
