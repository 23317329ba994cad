"""All sources together, linked into persons."""

import dagster as dg
import pandas as pd

from care_etl.assets.sources import staged_key
from care_etl.contracts.model import Contract
from care_etl.quality.staging import StagedSource


def linkage_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    ins = {f"staged_{c.id}": dg.AssetIn(key=staged_key(c)) for c in contracts}

    @dg.asset(
        key=dg.AssetKey(["link", "person_records"]),
        group_name="linkage",
        ins=ins,
        kinds={"pandas"},
        tags={"stage": "link"},
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
        description="Records linked into persons: deterministic links on a valid NHS number "
        "and a Fellegi-Sunter model; pairs the model is unsure of go to review, not merged.",
    )
    def linked_records(context: dg.AssetExecutionContext, person_records: list[StagedSource]):
        from care_etl.linkage import link_records

        frames = [s.records for s in person_records if len(s.records)]
        records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        result = link_records(records)
        context.add_output_metadata(
            {
                "records": len(records),
                "persons": int(result.assignments["person_id"].nunique()),
                "candidate_pairs": int(result.candidate_pairs),
                "automatic_links": len(result.links),
                "review_pairs": len(result.review),
            }
        )
        return result

    return [person_records, linked_records]
