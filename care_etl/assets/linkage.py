"""All sources together, linked into persons."""

import dagster as dg
import pandas as pd

from care_etl.assets.failures import in_one_line
from care_etl.assets.owners import ENGINEERING
from care_etl.assets.sources import staged_key
from care_etl.contracts.model import Contract
from care_etl.quality.staging import StagedSource
from care_etl.resources import CareEtlSettings
from care_etl.run_lock import one_run_at_a_time


def linkage_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    ins = {f"staged_{c.id}": dg.AssetIn(key=staged_key(c)) for c in contracts}

    @dg.asset(
        key=dg.AssetKey(["link", "person_records"]),
        group_name="linkage",
        ins=ins,
        kinds={"pandas"},
        tags={"stage": "link"},
        owners=[ENGINEERING],
        description="Every accepted record of every source, one row each, standardised.",
    )
    def person_records(**staged: StagedSource) -> list[StagedSource]:
        return list(staged.values())

    @dg.asset(
        key=dg.AssetKey(["link", "linked_records"]),
        group_name="linkage",
        ins={"person_records": dg.AssetIn(key=dg.AssetKey(["link", "person_records"]))},
        kinds={"recordlinkage"},
        tags={"stage": "link"},
        owners=[ENGINEERING],
        description="Records linked into persons: deterministic links on a valid NHS number "
        "and a Fellegi-Sunter model; pairs the model is unsure of go to review, not merged. "
        "Reviewers' decisions hold, unless a record changed since: then the pair is queued again. "
        "Incremental: pairs of records unchanged since the last run keep their comparison, "
        "and the model trained before is applied until the records drift.",
    )
    def linked_records(
        context: dg.AssetExecutionContext,
        settings: CareEtlSettings,
        person_records: list[StagedSource],
    ):
        from care_etl.incremental.run import link_incrementally
        from care_etl.index.build import staged_records

        with_records = [s for s in person_records if len(s.records)]
        records = (
            staged_records(with_records)[0]
            if with_records
            else pd.DataFrame(columns=["source", "source_record_id"])  # every feed blocked or empty
        )
        with in_one_line(), one_run_at_a_time(settings.cache_dir):
            run = link_incrementally(
                records,
                database_url=settings.database_url,
                run_id=context.run_id,
                ocr_cache_dir=settings.cache_dir,
                contract_files=[c.file for c in contracts],
            )
        outcome = run.outcome
        result = outcome.result
        context.add_output_metadata(
            {
                "records": len(records),
                "persons": int(result.assignments["person_id"].nunique()),
                "candidate_pairs": int(result.candidate_pairs),
                "automatic_links": len(result.links),
                "review_pairs": len(result.review),
                "decisions_applied": outcome.applied,
                "decisions_stale": outcome.stale,
                "decisions_queued_again": outcome.requeued,
                "decisions_links_not_made": outcome.links_not_made,
                **run.metadata(),
                # Which model made the links (model_version above), in full: m, u, weight.
                "model_parameters": dg.MetadataValue.json(_parameters(result.parameters)),
            }
        )
        return result

    return [person_records, linked_records]


def _parameters(parameters: pd.DataFrame) -> list[dict]:
    """The model's m, u and weight per field level, as JSON (no NaN: null)."""
    rounded = parameters.round(6).astype(object)
    return rounded.where(parameters.notna(), None).to_dict("records")
