"""The published index and the coverage report."""

import uuid
from pathlib import Path

import dagster as dg

from care_etl.assets.failures import in_one_line
from care_etl.assets.owners import ENGINEERING
from care_etl.contracts.model import Contract
from care_etl.index.build import PublishedIndex
from care_etl.index.publish import published_rows
from care_etl.index.stage import make_index, publish_index
from care_etl.quality.staging import StagedSource
from care_etl.report.coverage import coverage, unaccounted, write_reports
from care_etl.resources import CareEtlSettings
from care_etl.run_lock import one_run_at_a_time

PERSON_RECORDS = dg.AssetKey(["link", "person_records"])
LINKED = dg.AssetKey(["link", "linked_records"])
INDEX = dg.AssetKey(["index", "person_index"])
COVERAGE = dg.AssetKey(["report", "coverage_report"])


@dg.asset(
    key=COVERAGE,
    group_name="report",
    ins={"index": dg.AssetIn(key=INDEX)},
    kinds={"html", "json", "plotly"},
    tags={"stage": "report"},
    owners=[ENGINEERING],
    description="coverage.json and coverage.html in the reports folder (CARE_ETL_REPORTS_DIR, "
    "else reports/): per-source counts that "
    "reconcile (read = linked + quarantined + withdrawn), overlap between sources, linkage "
    "rates by age, sex and ethnic group, quarantine reasons, data-quality results, field "
    "completeness, match probabilities and the review queue. Counts and rates only.",
    check_specs=[
        dg.AssetCheckSpec(
            "records_accounted_for",
            asset=COVERAGE,
            description="[error] Every record read is linked, quarantined or withdrawn: "
            "nothing is lost between reading and the index (records_unaccounted is 0).",
        )
    ],
)
def coverage_report(settings: CareEtlSettings, index: PublishedIndex):
    from care_etl.report.metadata import coverage_metadata

    figures = index.figures
    json_path, html_path = _write(figures, Path(settings.reports_dir))
    yield dg.Output(
        figures,
        metadata={
            **coverage_metadata(figures),
            "json": dg.MetadataValue.path(str(json_path)),
            "html": dg.MetadataValue.path(str(html_path)),
        },
    )
    yield accounted_for(figures)


def accounted_for(figures: dict) -> dg.AssetCheckResult:
    """The reconciliation as an asset check: fails (error) naming the sources, by count."""
    lost = unaccounted(figures)
    return dg.AssetCheckResult(
        check_name="records_accounted_for",
        passed=not lost,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={f"{s}/records_unaccounted": lost.get(s, 0) for s in figures["sources"]},
    )


def _write(figures: dict, reports_dir: Path) -> tuple[Path, Path]:
    """The report's two files; a folder that cannot be written is the operator's to fix."""
    try:
        return write_reports(figures, reports_dir)
    except OSError as exc:
        raise dg.Failure(
            description=f"{reports_dir}: cannot write the coverage report there "
            f"({exc.strerror or type(exc).__name__}): set CARE_ETL_REPORTS_DIR to a folder "
            "this process can write (the index is published)"
        ) from None


def _after_publish(settings: CareEtlSettings, contracts: list[Contract]) -> None:
    """Keep each source's retention and prune the OCR cache of forms long gone."""
    from care_etl.index.retention_command import Where, after_run

    sources = Path(settings.sources_dir)
    where = Where(settings.database_url, sources, Path(settings.cache_dir), None)
    after_run(where, contracts)


def index_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    """The index, built with the run's contracts (trust order, declared relationships), and
    the coverage report."""

    @dg.asset(
        key=INDEX,
        group_name="index",
        ins={
            "person_records": dg.AssetIn(key=PERSON_RECORDS),
            "linked": dg.AssetIn(key=LINKED),
        },
        kinds={"sqlalchemy"},
        tags={"stage": "index"},
        owners=[ENGINEERING],
        description="person_index (ids stable across runs), person_source_link, quarantine, "
        "review_queue, golden-value provenance, addresses, households, relationships, the "
        "services involved with each person, id history and the pseudonymised analyst tables, "
        "published together in one transaction.",
    )
    def person_index(
        context: dg.AssetExecutionContext,
        settings: CareEtlSettings,
        person_records: list[StagedSource],
        linked,  # a care_etl.linkage.LinkageResult; not imported here to keep loading light
    ) -> PublishedIndex:
        from care_etl.incremental.delta import PublishDelta
        from care_etl.incremental.state import cache_root

        run_id = context.run_id or uuid.uuid4().hex
        in_run = {s.contract_id for s in person_records}
        state_dir = cache_root(settings.cache_dir)
        with in_one_line(), one_run_at_a_time(settings.cache_dir):
            made = make_index(
                person_records,
                linked,
                database_url=settings.database_url,
                run_id=run_id,
                contracts=[c for c in contracts if c.id in in_run],
                state_dir=state_dir,
            )
            tables = made.tables.as_dict()
            figures = coverage(person_records, tables["person_source_link"], tables["review_queue"])
            # an incremental build brings its own person-by-person writer
            delta = made.delta or PublishDelta.load(state_dir)
            publish_index(made, settings.database_url, run_id=run_id, figures=figures, delta=delta)
            _after_publish(settings, [c for c in contracts if c.id in in_run])
            rows = {name: len(frame) for name, frame in tables.items()}
            if made.delta is not None:  # the tables built hold the rebuilt persons' rows only
                rows.update(published_rows(settings.database_url, list(rows)))
        context.add_output_metadata(
            {
                **{name: dg.MetadataValue.int(n) for name, n in rows.items()},
                **made.counts,
                "publish_mode": "changed persons only" if delta.used else "every table whole",
                # written whole, every person was written again and none kept
                **(
                    delta.counts
                    if delta.used
                    else {"persons_rewritten": rows.get("person_index", 0), "persons_kept": 0}
                ),
            }
        )
        return PublishedIndex(rows, figures)

    return [person_index, coverage_report]
