"""The published index and the coverage report."""

import json
import uuid
from pathlib import Path

import dagster as dg

from care_etl.index.build import PublishedIndex, index_tables
from care_etl.index.publish import publish
from care_etl.quality.staging import StagedSource
from care_etl.report.coverage import coverage, write_reports
from care_etl.resources import CareEtlSettings

PERSON_RECORDS = dg.AssetKey(["link", "person_records"])
LINKED = dg.AssetKey(["link", "linked_records"])
INDEX = dg.AssetKey(["index", "person_index"])


@dg.asset(
    key=INDEX,
    group_name="index",
    ins={"person_records": dg.AssetIn(key=PERSON_RECORDS), "linked": dg.AssetIn(key=LINKED)},
    kinds={"sqlalchemy"},
    tags={"stage": "index"},
    description="person_index, person_source_link, quarantine and review_queue, published "
    "together in one transaction to the configured database.",
)
def person_index(
    context: dg.AssetExecutionContext,
    settings: CareEtlSettings,
    person_records: list[StagedSource],
    linked,  # a care_etl.linkage.LinkageResult; not imported here to keep loading light
) -> PublishedIndex:
    tables = index_tables(person_records, linked).as_dict()
    figures = coverage(person_records, tables["person_source_link"], tables["review_queue"])
    publish(
        settings.database_url,
        tables,
        run_id=context.run_id or uuid.uuid4().hex,
        summary=json.dumps(figures),
        persons=len(tables["person_index"]),
    )
    context.add_output_metadata(
        {name: dg.MetadataValue.int(len(frame)) for name, frame in tables.items()}
    )
    return PublishedIndex(tables, figures)


@dg.asset(
    key=dg.AssetKey(["report", "coverage_report"]),
    group_name="report",
    ins={"index": dg.AssetIn(key=INDEX)},
    kinds={"html", "json"},
    tags={"stage": "report"},
    description="reports/coverage.json and reports/coverage.html: per-source counts that "
    "reconcile (read = linked + quarantined + withdrawn) and persons by number of sources.",
)
def coverage_report(
    context: dg.AssetExecutionContext, settings: CareEtlSettings, index: PublishedIndex
) -> dict:
    figures = index.figures
    json_path, html_path = write_reports(figures, Path(settings.reports_dir))
    context.add_output_metadata(
        {
            "persons": figures["persons"],
            "review_queue": figures["review_queue"],
            "json": dg.MetadataValue.path(str(json_path)),
            "html": dg.MetadataValue.path(str(html_path)),
        }
    )
    return figures
