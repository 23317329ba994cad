"""`care-etl contracts lint | diff | register`: the commands information governance relies on.

Exit codes: lint 0 = clean, 1 = findings; diff 0 = no change needs IG review, 1 = a change
needs IG review; register 0 (`--out -` prints the register's Markdown). Any command: 2 = bad
input (a one-line error, from care-etl).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from care_etl.locations import DEFAULT_CONTRACTS_DIR


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `contracts` and its three subcommands to the care-etl parser."""
    contracts = subparsers.add_parser(
        "contracts", help="lint, compare or register the data contracts"
    )
    commands = contracts.add_subparsers(dest="contracts_command", required=True)

    lint = commands.add_parser(
        "lint",
        help="check contracts against the ODCS schema and our governance rules "
        "(exit 1 on findings)",
    )
    lint.add_argument(
        "targets",
        nargs="*",
        type=Path,
        help="contract files or folders (default: the project's data_contracts/)",
    )
    lint.add_argument("--json", action="store_true", help="print findings as JSON")
    lint.set_defaults(handler=_lint)

    diff = commands.add_parser(
        "diff",
        help="classify every change between two versions: breaking? needs IG review? "
        "(exit 0 no review needed, 1 review needed, 2 error)",
    )
    diff.add_argument("old", type=Path, help="the old contract file (or folder)")
    diff.add_argument("new", type=Path, help="the new contract file (or folder)")
    diff.add_argument("--json", action="store_true", help="print changes as JSON")
    diff.set_defaults(handler=_diff)

    register = commands.add_parser(
        "register", help="write the register of processing (register.md, register.html)"
    )
    register.add_argument(
        "targets",
        nargs="*",
        type=Path,
        help="contract files or folders (default: the project's data_contracts/)",
    )
    register.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder to write into (default: reports/); '-' prints the Markdown instead, "
        "writing nothing",
    )
    register.set_defaults(handler=_register)


def _lint(args: argparse.Namespace) -> int:
    from care_etl.contracts.lint import lint_paths

    findings = lint_paths(args.targets or [DEFAULT_CONTRACTS_DIR])
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding.line())
        print(f"{len(findings)} finding(s)" if findings else "contracts: no findings")
    return 1 if findings else 0


def _diff(args: argparse.Namespace) -> int:
    from care_etl.contracts.diff import EXIT_NO_REVIEW, EXIT_REVIEW, diff_paths, review_needed

    changes = diff_paths(args.old, args.new)
    review = review_needed(changes)
    if args.json:
        print(
            json.dumps(
                {"review_needed": review, "changes": [c.as_dict() for c in changes]}, indent=2
            )
        )
    else:
        for change in changes:
            print(change.line())
        breaking = sum(c.breaking for c in changes)
        reviews = sum(c.review for c in changes)
        print(
            f"{len(changes)} change(s): {breaking} breaking, {reviews} needing information "
            "governance review"
        )
    return EXIT_REVIEW if review else EXIT_NO_REVIEW


def _register(args: argparse.Namespace) -> int:
    from care_etl.contracts.register import load_entries, markdown, write_register

    entries = load_entries(args.targets or [DEFAULT_CONTRACTS_DIR])
    if str(args.out) == "-":  # to read in a terminal or paste into a DPIA
        print(markdown(entries), end="")
        return 0
    md, page = write_register(entries, args.out)
    print(f"register of processing ({len(entries)} sources): {md}, {page}")
    return 0
