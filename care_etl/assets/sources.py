"""Per source: read it (ingest), then map, standardise, quarantine and check (standardise).

The contract's data-quality checks are asset checks on the staged asset, yielded from its
body: a failed error check blocks that feed (its last accepted version is passed on instead,
care_etl.quality.gate), a failed warning only shows in the UI. Check metadata carries counts
and rates only.
"""

from pathlib import Path

import dagster as dg

from care_etl.assets.failures import check_settings, in_one_line
from care_etl.assets.owners import contract_owners
from care_etl.contracts.model import Contract
from care_etl.quality.checks import ERROR, CheckPlan, plan_checks
from care_etl.resources import CareEtlSettings
from care_etl.sources.read import RawSource, read_source


def raw_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["ingest", f"raw_{contract.id}"])


def staged_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["standardise", f"staged_{contract.id}"])


def source_assets(
    contract: Contract, contracts: list[Contract] | None = None
) -> list[dg.AssetsDefinition]:
    """The two assets of one source, grouped under the source's contract id. Reading first
    checks the run's settings against all the run's `contracts` (default: this one)."""
    run_contracts = contracts or [contract]

    @dg.asset(
        key=raw_key(contract),
        group_name=contract.id,
        kinds={contract.format, "python"},
        tags={"stage": "ingest"},
        owners=contract_owners(contract),
        description=f"{contract.name}: every record as read from {contract.location}, as text, "
        "with its lineage (file and row, sheet, or table and key).",
    )
    def raw(context: dg.AssetExecutionContext, settings: CareEtlSettings) -> RawSource:
        check_settings(settings, run_contracts)
        with in_one_line():
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

    plans = plan_checks(contract)

    @dg.asset(
        key=staged_key(contract),
        group_name=contract.id,
        ins={"raw": dg.AssetIn(key=raw_key(contract))},
        kinds={"pandas", "great_expectations"},
        tags={"stage": "standardise"},
        owners=contract_owners(contract),
        check_specs=check_specs(contract, plans),
        description=f"{contract.name}: records mapped to the person model by the contract "
        "and standardised; rows that cannot be indexed go to quarantine with a reason. "
        "When an error check fails, the feed is blocked and its last accepted version stands in.",
    )
    def staged(context: dg.AssetExecutionContext, settings: CareEtlSettings, raw: RawSource):
        from care_etl.incremental.state import cache_root
        from care_etl.quality.gate import gate_source

        with in_one_line():
            result = gate_source(
                raw,
                contract,
                database_url=settings.database_url,
                run_id=context.run_id,
                plans=plans,
                cache_dir=cache_root(settings.cache_dir),
            )
        if result.blocked:
            context.log.error(f"{contract.id}: {result.blocked}")
        failed = [r for r in result.dq_results if not r["success"]]
        yield dg.Output(
            result,
            metadata={
                "records_read": result.read,
                "records_accepted": len(result.records),
                "records_quarantined": len(result.quarantine),
                "records_withdrawn": result.withdrawn,
                "blocked": result.blocked or "no",
                "records_standardised_reused": result.rows_reused or 0,
                "checks_failed_error": sum(r["severity"] == ERROR for r in failed),
                "checks_failed_warning": sum(r["severity"] != ERROR for r in failed),
            },
        )
        yield from check_results(result.dq_results)

    return [raw, staged]


def check_specs(contract: Contract, plans: list[CheckPlan]) -> list[dg.AssetCheckSpec]:
    """One asset check per planned check. Not Dagster-blocking: the gate blocks per feed."""
    return [
        dg.AssetCheckSpec(
            name=plan.name,
            asset=staged_key(contract),
            description=f"[{plan.severity}] {plan.description}",
        )
        for plan in plans
    ]


def check_results(results: list[dict]) -> list[dg.AssetCheckResult]:
    """Dagster results: pass/fail, severity and counts or rates (never a value)."""
    numbers = ("element_count", "unexpected_count", "unexpected_rate", "observed_value")
    return [
        dg.AssetCheckResult(
            check_name=r["check_name"],
            passed=bool(r["success"]),
            severity=dg.AssetCheckSeverity.ERROR
            if r["severity"] == ERROR
            else dg.AssetCheckSeverity.WARN,
            metadata={
                **{k: r[k] for k in numbers if r[k] is not None},
                **({"column": r["column_name"]} if r["column_name"] else {}),
            },
        )
        for r in results
    ]
