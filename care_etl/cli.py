"""care-etl: link a council's sources into one person index (run), and the everyday tasks
around it: review uncertain pairs, show a household, create database roles, apply retention,
check data contracts; generate and demo make a synthetic council to try it on.

Errors a user can fix (a bad argument, an unreadable contract, an unreachable database)
print one line on stderr and exit non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from care_etl.contracts.cli import add_commands as add_contract_commands
from care_etl.errors import CareEtlError
from care_etl.index.cli import add_commands as add_index_commands
from care_etl.locations import DEFAULT_CONTRACTS_DIR
from care_etl.review.cli import add_commands as add_review_commands

DEFAULT_PEOPLE = 2000
DEFAULT_SEED = 7


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CareEtlError as exc:
        print(f"care-etl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("care-etl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`care-etl review list | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="care-etl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write the four synthetic sources and ground truth")
    gen.add_argument("--out", type=Path, required=True, help="folder to write the sources into")
    _population_options(gen)
    gen.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="materialise every asset over a sources folder")
    run.add_argument("--sources", type=Path, required=True, help="the sources folder")
    run.add_argument(
        "--contracts",
        type=Path,
        default=None,
        help="data contracts folder (default: $CARE_ETL_CONTRACTS_DIR, else the project's "
        "data_contracts/)",
    )
    run.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL of the index (default: $CARE_ETL_DATABASE_URL, else the SQLite "
        "file care_etl.db beside the sources folder)",
    )
    run.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="folder for coverage.json and coverage.html (default: $CARE_ETL_REPORTS_DIR, "
        "else reports/)",
    )
    run.add_argument(
        "--full",
        action="store_true",
        help="a full run: reuse nothing of the last run (by default, pairs of records "
        "unchanged since the last run keep their comparison, and only persons whose rows "
        "changed are written again)",
    )
    _progress_option(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="generate, then run, into one working folder")
    demo.add_argument("--workdir", type=Path, default=Path("demo"), help="default: ./demo")
    _population_options(demo)
    demo.set_defaults(handler=_demo)
    add_review_commands(commands)
    add_index_commands(commands)
    add_contract_commands(commands)
    return parser


def _population_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--people",
        type=_positive,
        default=DEFAULT_PEOPLE,
        help=f"people in the synthetic population (default {DEFAULT_PEOPLE})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--scans",
        type=_non_negative,
        default=None,
        help="paper forms rendered as PNG/PDF scans (default 40); the rest are .txt",
    )
    _progress_option(parser)


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress bars on stderr even when it is not a terminal",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _generate(args: argparse.Namespace) -> int:
    from care_etl.report.progress import bars, wanted
    from care_etl.synthetic.generate import generate

    kwargs = {} if args.scans is None else {"scans": args.scans}
    # population, four sources, ground truth: six messages from the generator
    with bars(wanted(args.progress)) as progress:
        kwargs["progress"] = progress.stages("generating", 6)
        summary = generate(args.out, people=args.people, seed=args.seed, **kwargs)
    print(f"Generated {summary.people:,} people into {args.out} in {summary.seconds:.1f} s")
    print(f"  {'source':<32} {'records':>9}")
    for source, count in summary.records.items():
        print(f"  {source:<32} {count:>9,}")
    if summary.withdrawn:
        print(f"  {'(withdrawn social care rows)':<32} {summary.withdrawn:>9,}")
    print(f"  {'total':<32} {sum(summary.records.values()):>9,}   ({summary.files:,} files)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from care_etl.linkage import compare
    from care_etl.locations import contracts_dir_for, index_url_for, reports_dir_for
    from care_etl.pipeline import run_pipeline
    from care_etl.report.progress import bars, wanted
    from care_etl.sources import paper_reader

    # each setting as Dagster reads it from the environment, unless given here
    database = index_url_for(args.sources, args.database)
    contracts, reports = contracts_dir_for(args.contracts), reports_dir_for(args.reports)
    with bars(wanted(args.progress)) as progress:
        paper_reader.progress_hook = progress.counter("reading paper forms (OCR)", "form")
        compare.progress_hook = progress.counter("comparing candidate pairs", "pair")
        try:
            outcome = run_pipeline(args.sources, contracts, database, reports, full=args.full)
        finally:
            paper_reader.progress_hook = compare.progress_hook = None
    _print_summary(outcome.figures, database, reports, outcome.step_seconds)
    _print_mode(outcome.incremental, forced=args.full)
    return 1 if _lost(outcome.figures) else 0


def _lost(figures: dict) -> bool:
    """Say, and exit 1 for, records read that reached neither the index nor quarantine: a
    fault of the run (nothing may be lost), which a scheduler must see."""
    from care_etl.report.coverage import unaccounted

    lost = unaccounted(figures)
    for source, count in lost.items():
        print(
            f"care-etl: error: {source}: {count:+,} record(s) read but neither linked, "
            "quarantined nor withdrawn; the index is published, report this run",
            file=sys.stderr,
        )
    return bool(lost)


def _print_mode(facts: dict, *, forced: bool = False) -> None:
    """One line: full or incremental, and what an incremental run reused."""
    if facts.get("run_mode") == "incremental":
        print(
            f"run: incremental ({facts.get('records_reused', 0):,} records unchanged, "
            f"{facts.get('records_new_or_changed', 0):,} new or changed; "
            f"{facts.get('pairs_reused', 0):,} pairs reused, "
            f"{facts.get('pairs_compared', 0):,} compared)"
        )
    elif facts:
        print(f"run: full ({'--full' if forced else facts.get('run_mode_reason')})")
    if facts.get("model"):
        print(
            f"linkage model {facts.get('model_version', '')}: {facts['model']} "
            f"({facts.get('model_reason') or 'trained on this run'})"
        )


def _demo(args: argparse.Namespace) -> int:
    sources = args.workdir / "sources"
    progress = args.progress
    _generate(
        argparse.Namespace(
            out=sources, people=args.people, seed=args.seed, scans=args.scans, progress=progress
        )
    )
    run = argparse.Namespace(
        progress=progress,
        full=False,
        sources=sources,
        contracts=DEFAULT_CONTRACTS_DIR,
        database=f"sqlite:///{args.workdir.resolve() / 'care_etl.db'}",
        reports=args.workdir / "reports",
    )
    return _run(run)


def _print_summary(
    figures: dict, database: str, reports: Path, step_seconds: dict[str, float] | None = None
) -> None:
    """The run's summary table: per source, then persons, review, time and where things went."""
    from care_etl.index.publish import safe_url
    from care_etl.review.commands import default_url

    def rate(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    print()
    print(
        f"{'source':<32} {'read':>9} {'linked':>9} {'quarant.':>9} {'withdrawn':>9} {'to other':>8}"
    )
    for source, f in figures["sources"].items():
        held = f.get("records_held_back", 0)
        blocked = f"  BLOCKED ({held:,} read this run, held back)" if f.get("blocked") else ""
        print(
            f"{source:<32} {f['records_read']:>9,} {f['records_linked']:>9,} "
            f"{f['records_quarantined']:>9,} {f['records_withdrawn']:>9,} "
            f"{rate(f.get('linkage_rate')):>8}{blocked}"
        )
    totals = [
        sum(f[k] for f in figures["sources"].values())
        for k in ("records_read", "records_linked", "records_quarantined", "records_withdrawn")
    ]
    print(
        f"{'total':<32} {totals[0]:>9,} {totals[1]:>9,} {totals[2]:>9,} {totals[3]:>9,} "
        f"{rate(figures.get('linkage_rate')):>8}"
    )
    by_count = ", ".join(f"{k}: {v:,}" for k, v in figures["persons_by_source_count"].items())
    print(f"\npersons: {figures['persons']:,} (by number of sources: {by_count})")
    age = figures.get("review_queue_age") or {}
    oldest = f", oldest waiting {age['oldest_days']:.0f} days" if age.get("oldest_days") else ""
    print(f"pairs awaiting review: {figures['review_queue']:,}{oldest}")
    for feed in figures.get("blocked_feeds") or []:
        print(
            f"care-etl: warning: feed {feed['source']} blocked: "
            f"{feed['reason'].removeprefix('Feed blocked: ')}",
            file=sys.stderr,
        )
    if step_seconds:
        slowest = sorted(step_seconds.items(), key=lambda kv: -kv[1])[:3]
        total = sum(step_seconds.values())
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in slowest)
        print(f"time: {total:.1f} s in steps (slowest: {steps})")
    # What could not be read, then what was read but with a loss (a declared column missing,
    # lines in another encoding): both name the file, never a value.
    problems = [
        m for f in figures["sources"].values() for m in (*f["errors"], *f.get("warnings", ()))
    ]
    for message in problems:
        print(f"care-etl: warning: {message}", file=sys.stderr)
    print(f"index: {safe_url(database)}")
    if figures["review_queue"] and _where(database) != _where(default_url()):
        print(f"review: care-etl review list --database '{safe_url(database)}'")
    print(f"reports: {reports / 'coverage.html'}, {reports / 'coverage.json'}")


def _where(url: str) -> str:
    """A SQLite URL as its absolute file, so that demo/care_etl.db and its full path agree."""
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///")).resolve())
    return url


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
