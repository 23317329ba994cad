"""A new record that looks like one a reviewer kept apart brings that decision to the reviewer.

Run 1 links two records of a person (A, a GP record, and B); a reviewer says they are two
people; run 2 keeps them apart. Then a new GP record C arrives, a second registration of A
without an NHS number. It links to A, and its pair with B cannot link without undoing the
decision, so it is queued: whoever reviews it must read that A was kept apart from B, by
whom, when and why, not only that "a reviewer kept apart" someone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from care_etl.review import store
from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows
from care_etl_tests.review.test_decisions import (
    SEED,
    Pair,
    cli,
    key,
    person_of,
    pick_model_links,
    ref,
    run,
)

pytestmark = pytest.mark.slow
GP = "health_gp_registrations"
REASON = "two sisters at one address: different dates of first registration"


def add_second_registration(sources: Path, record_id: str) -> tuple[str, str]:
    """Copy a GP record as a new patient of its practice, without its NHS number."""
    practice, patient = record_id.split(":")
    path = sources / "health" / f"gp_registrations_{practice}.csv"
    rows, encoding = read_csv_rows(path)
    header = rows[0]
    (row,) = [r for r in rows[1:] if r and r[header.index("Patient ID")] == patient]
    copy = list(row)
    copy[header.index("Patient ID")] = "P9999999"
    copy[header.index("NHS Number")] = ""
    write_csv_rows(path, [*rows, copy], encoding)
    return GP, f"{practice}:P9999999"


@pytest.fixture(scope="module")
def kept_apart(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Pair, tuple, dict]:
    from care_etl.synthetic.generate import generate

    work = tmp_path_factory.mktemp("context")
    sources = work / "sources"
    generate(sources, people=400, seed=SEED, scans=0)
    url = f"sqlite:///{work / 'index.db'}"
    (pair,) = pick_model_links(run(sources, url, work), 1)
    code, _, err = cli(
        "review", "decide", ref(pair[0]), ref(pair[1]), "--no-link", "--reviewer", "B. Reviewer",
        "--reason", REASON, "--database", url,
    )  # fmt: skip
    assert code == 0, err
    run(sources, url, work)
    a = next(r for r in pair if r[0] == GP)
    c = add_second_registration(sources, a[1])
    tables = run(sources, url, work)
    return url, pair, c, tables


def _records(kept_apart) -> tuple[tuple, tuple, tuple]:
    """A (the GP record kept apart), B (the other), C (A's new double)."""
    _, pair, c, _ = kept_apart
    a = next(r for r in pair if r[0] == GP)
    b = next(r for r in pair if r != a)
    return a, b, c


def test_the_new_records_pair_with_the_other_side_is_queued(kept_apart):
    url, _, _, tables = kept_apart
    a, b, c = _records(kept_apart)
    assert person_of(tables, a) != person_of(tables, b)
    assert person_of(tables, c) in {person_of(tables, a), person_of(tables, b)}
    queued = set(store.pair_keys(tables["review_queue"]))
    assert {key((c, a)), key((c, b))} & queued


def test_show_says_who_kept_whom_apart_when_and_why(kept_apart):
    url, _, _, tables = kept_apart
    a, b, c = _records(kept_apart)
    queued = set(store.pair_keys(tables["review_queue"]))
    (pair,) = [p for p in ((c, a), (c, b)) if key(p) in queued]
    decision = tables["review_decision"].iloc[0]
    code, out, err = cli("review", "show", key(pair), "--database", url)
    assert code == 0, err
    said = " ".join(out.split())
    assert (
        f"Kept apart before: decision #{decision['decision_id']}, no link by B. Reviewer on "
        f"{pd.Timestamp(decision['decided_at']):%Y-%m-%d}, between"
    ) in said
    assert f'"{REASON}".' in said
    # Both records of the decision are named, each with how it stands to this pair.
    assert f"{a[0]} {a[1]} (" in said and f"{b[0]} {b[1]} (" in said
    assert "Linking this pair would put those two in one person." in said


def test_list_points_to_the_decision(kept_apart):
    url, _, _, tables = kept_apart
    a, b, c = _records(kept_apart)
    queued = set(store.pair_keys(tables["review_queue"]))
    (pair,) = [p for p in ((c, a), (c, b)) if key(p) in queued]
    decision_id = int(tables["review_decision"]["decision_id"].iloc[0])
    code, out, _ = cli("review", "list", "--database", url, "--limit", "1000")
    assert code == 0
    (row,) = [line for line in out.splitlines() if key(pair) in line]
    assert f"see no link #{decision_id} (B. Reviewer)" in row
    unrelated = [line for line in out.splitlines()[2:] if line and key(pair) not in line]
    assert not [line for line in unrelated if "see no link" in line]
