"""`care-etl review list | show | decide`: a person settles the pairs the model is unsure of.

PAIR is a pair key (from `list`), a row number of your last `list`, or two records written
SOURCE/RECORD_ID (to decide about a pair that is not queued, such as one the model linked).
A row number whose pair has left the queue since you listed is refused, never taken as the
pair that now stands in that row.
A decision takes effect on the next run and holds on every run after, until a record it was
made about changes.
"""

from __future__ import annotations

import argparse

from care_etl.index.cli import database_option

_PAIR_HELP = (
    "pair key or row number from your last `review list`, or two records as SOURCE/RECORD_ID"
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `review` and its three commands to the care-etl parser."""
    review = commands.add_parser(
        "review",
        help="list, show and decide the record pairs awaiting a person's decision",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = review.add_subparsers(dest="review_command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="the pairs awaiting review, oldest first")
    database_option(listing)
    listing.add_argument(
        "--limit", type=int, default=50, metavar="N", help="rows to show (default 50)"
    )
    listing.set_defaults(handler=_run("list_pairs"))

    showing = sub.add_parser("show", help="one pair's records side by side with the evidence")
    showing.add_argument("pair", nargs="+", metavar="PAIR", help=_PAIR_HELP)
    database_option(showing)
    showing.set_defaults(handler=_run("show_pair"))

    deciding = sub.add_parser("decide", help="record that a pair is, or is not, one person")
    deciding.add_argument("pair", nargs="+", metavar="PAIR", help=_PAIR_HELP)
    choice = deciding.add_mutually_exclusive_group()
    choice.add_argument(
        "--link", dest="decision", action="store_const", const="link", help="one person"
    )
    choice.add_argument(
        "--no-link",
        dest="decision",
        action="store_const",
        const="no_link",
        help="different people",
    )
    deciding.add_argument("--reviewer", metavar="NAME", help="who decides (kept in the audit)")
    deciding.add_argument("--reason", metavar="TEXT", help="why (kept in the audit)")
    database_option(deciding)
    deciding.set_defaults(handler=_run("decide_pair"))


def _run(name: str):
    """A handler that imports the commands (pandas, SQLAlchemy) only when one is run."""

    def handler(args: argparse.Namespace) -> int:
        from care_etl.review import commands

        return getattr(commands, name)(args)

    return handler
