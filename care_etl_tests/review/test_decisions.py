"""Review decisions hold across real pipeline runs, go stale when a record changes, are audited.

One scenario on SQLite, three runs over ~400 generated people:
run 1; a reviewer links a queued pair and splits two pairs the model linked; run 2; one
record of a split pair is edited in its source file; run 3. The tests read the published
tables after each run. A shorter scenario runs on the machine's PostgreSQL.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.pipeline import run_pipeline
from care_etl.review import store
from care_etl_tests.conftest import CONTRACTS_DIR
from care_etl_tests.incremental.changes import read_csv_rows, write_csv_rows

TABLES = (
    "person_index",
    "person_source_link",
    "review_queue",
    "review_decision",
    "review_decision_audit",
)
SEED = 4
Pair = tuple[tuple[str, str], tuple[str, str]]


@dataclass
class Scenario:
    url: str
    linked: Pair  # queued after run 1, decided link
    split: Pair  # linked by the model in run 1, decided no_link
    edited: Pair  # linked by the model in run 1, decided no_link, then a record edited
    runs: list[dict[str, pd.DataFrame]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    sources: Path | None = None
    work: Path | None = None


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def run(sources: Path, url: str, work: Path) -> dict[str, pd.DataFrame]:
    run_pipeline(sources, CONTRACTS_DIR, url, work / "reports")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: pd.read_sql_table(name, conn) for name in TABLES}
    finally:
        engine.dispose()


def person_of(tables: dict[str, pd.DataFrame], record: tuple[str, str]) -> str:
    links = tables["person_source_link"]
    match = links[(links["source"] == record[0]) & (links["source_record_id"] == record[1])]
    assert len(match) == 1, record
    return match["person_id"].iloc[0]


def queued_keys(tables: dict[str, pd.DataFrame]) -> set[str]:
    return set(store.pair_keys(tables["review_queue"]))


def key(pair: Pair) -> str:
    return store.pair_key(*pair)


def ref(record: tuple[str, str]) -> str:
    return f"{record[0]}/{record[1]}"


def pick_queued_pair(tables: dict[str, pd.DataFrame]) -> tuple[int, Pair]:
    """A queued pair linkage may join (no two different NHS numbers), and its `list` row."""
    links = tables["person_source_link"].merge(
        tables["person_index"][["person_id", "nhs_number"]], on="person_id"
    )
    nhs = dict(
        zip(
            zip(links["source"], links["source_record_id"], strict=True),
            links["nhs_number"],
            strict=True,
        )
    )
    code, out, _ = cli("review", "list", "--database", tables["_url"], "--limit", "1000")
    assert code == 0
    queue = tables["review_queue"]
    for line in out.split("\n\n")[0].splitlines()[2:]:
        number, pair = line.split()[:2]
        row = queue[store.pair_keys(queue) == pair].iloc[0]
        a = (row["left_source"], row["left_source_record_id"])
        b = (row["right_source"], row["right_source_record_id"])
        if pd.isna(nhs[a]) or pd.isna(nhs[b]) or nhs[a] == nhs[b]:
            return int(number), (a, b)
    pytest.fail("no queued pair without an NHS number conflict in the generated data")


def pick_model_links(tables: dict[str, pd.DataFrame], count: int) -> list[Pair]:
    """Persons the model made of exactly two records, one of them a GP record (editable CSV)."""
    links = tables["person_source_link"]
    two = links.groupby("person_id").filter(
        lambda g: len(g) == 2 and (g["link_type"] == "probabilistic").all()
    )
    pairs = []
    for _, group in two.groupby("person_id"):
        records = sorted(zip(group["source"], group["source_record_id"], strict=True))
        if any(s == "health_gp_registrations" for s, _ in records):
            pairs.append((records[0], records[1]))
    queued = queued_keys(tables)
    pairs = [p for p in pairs if key(p) not in queued]
    assert len(pairs) >= count, "too few model-made pairs in the generated data"
    return pairs[:count]


def edit_gp_record(sources: Path, record_id: str, column: str, value: str) -> None:
    """Rewrite one cell of a GP record in its CSV file, as a correction at source would."""
    practice, patient = record_id.split(":")
    path = sources / "health" / f"gp_registrations_{practice}.csv"
    rows, encoding = read_csv_rows(path)
    header = rows[0]
    (target,) = [r for r in rows[1:] if r and r[header.index("Patient ID")] == patient]
    target[header.index(column)] = value
    write_csv_rows(path, rows, encoding)


def make_twins(sources: Path, people: int = 4) -> None:
    """Give a few people's GP record another forename, so that the model, whose rule sends
    pairs differing only in forename to review (twins), queues records of one person."""
    truth = pd.read_csv(sources / "ground_truth.csv", dtype=str)
    shape = truth.groupby("true_person_id")["source"].agg(lambda s: tuple(sorted(s)))
    chosen = shape[shape == ("health_gp_registrations", "housing_tenancies")].index[:people]
    gp = truth[
        truth["true_person_id"].isin(chosen) & (truth["source"] == "health_gp_registrations")
    ]
    for record_id in gp["source_record_id"]:
        edit_gp_record(sources, record_id, "Forename", "Quentin")


def edit_middle_names(sources: Path, pair: Pair) -> None:
    """Change the GP record's middle names: a linkage field, so its fingerprint changes."""
    record_id = next(r for s, r in pair if s == "health_gp_registrations")
    edit_gp_record(sources, record_id, "Middle Names", "Quentin Zebedee")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    from care_etl.synthetic.generate import generate

    work = tmp_path_factory.mktemp("review")
    sources = work / "sources"
    generate(sources, people=400, seed=SEED, scans=0)
    make_twins(sources)
    url = f"sqlite:///{work / 'index.db'}"
    first = run(sources, url, work)
    first["_url"] = url
    number, linked = pick_queued_pair(first)
    split, edited = pick_model_links(first, 2)
    s = Scenario(url, linked, split, edited, [first], sources=sources, work=work)
    why = "same person: address history and GP letter agree"
    s.outputs["link"] = cli(
        "review", "decide", str(number), "--link", "--reviewer", "A. Reviewer",
        "--reason", why, "--database", url,
    )[1]  # fmt: skip
    for name, pair in (("split", split), ("edited", edited)):
        s.outputs[name] = cli(
            "review", "decide", ref(pair[0]), ref(pair[1]), "--no-link",
            "--reviewer", "B. Reviewer", "--reason", "twins: different NHS records",
            "--database", url,
        )[1]  # fmt: skip
    s.outputs["show"] = cli("review", "show", key(linked), "--database", url)[1]
    s.runs.append(run(sources, url, work))
    edit_middle_names(sources, edited)
    s.runs.append(run(sources, url, work))
    return s


def test_pair_key_does_not_depend_on_order():
    a, b = ("housing_tenancies", "HM-1"), ("health_gp_registrations", "F1:P1")
    assert store.pair_key(a, b) == store.pair_key(b, a)
    assert store.canonical_pair(a, b) == (b, a)


def test_a_link_decision_joins_the_pair_and_takes_it_out_of_the_queue(scenario: Scenario):
    first, second, third = scenario.runs
    a, b = scenario.linked
    assert person_of(first, a) != person_of(first, b)
    assert key(scenario.linked) in queued_keys(first)
    for tables in (second, third):
        assert person_of(tables, a) == person_of(tables, b)
        assert key(scenario.linked) not in queued_keys(tables)


def test_a_no_link_decision_splits_a_model_link_and_keeps_it_split(scenario: Scenario):
    first, second, third = scenario.runs
    a, b = scenario.split
    assert person_of(first, a) == person_of(first, b)
    for tables in (second, third):
        assert person_of(tables, a) != person_of(tables, b)
        assert key(scenario.split) not in queued_keys(tables)


def test_a_decision_on_a_changed_record_is_queued_again_not_applied(scenario: Scenario):
    _, second, third = scenario.runs
    a, b = scenario.edited
    assert person_of(second, a) != person_of(second, b)  # held while unchanged
    # After the edit the model's view stands and a person is asked again.
    assert person_of(third, a) == person_of(third, b)
    queue = third["review_queue"]
    row = queue[store.pair_keys(queue) == key(scenario.edited)]
    assert len(row) == 1
    evidence = json.loads(row["evidence"].iloc[0])
    assert evidence["requeued"] == "stale_decision"
    assert evidence["stale_decision"] == "no_link"
    decisions = third["review_decision"].set_index("pair_key")
    assert decisions.loc[key(scenario.edited), "status"] == "stale"
    assert decisions.loc[key(scenario.split), "status"] == "active"
    assert decisions.loc[key(scenario.linked), "status"] == "active"


def test_decisions_are_audited_and_never_rewritten(scenario: Scenario):
    third = scenario.runs[-1]
    decisions = third["review_decision"]
    assert len(decisions) == 3
    linked = decisions[decisions["pair_key"] == key(scenario.linked)].iloc[0]
    assert (linked["decision"], linked["reviewer"]) == ("link", "A. Reviewer")
    assert linked["reason"].startswith("same person")
    assert len(linked["left_fingerprint"]) == 64
    audit = third["review_decision_audit"]
    assert sorted(audit["event"]) == ["decided", "decided", "decided", "stale"]
    stale = audit[audit["event"] == "stale"].iloc[0]
    assert stale["pair_key"] == key(scenario.edited)
    assert stale["actor"].startswith("pipeline run ")
    assert stale["detail"] == "left record changed since the decision" or stale["detail"] == (
        "right record changed since the decision"
    )


def test_a_new_decision_supersedes_the_old_one(scenario: Scenario):
    url = scenario.url
    code, out, _ = cli(
        "review", "decide", key(scenario.split), "--link", "--reviewer", "C. Senior",
        "--reason", "one person: confirmed with the GP practice", "--database", url,
    )  # fmt: skip
    assert code == 0 and "supersedes decision" in out and "(it said no link)" in out
    with store.connect(url) as conn:
        rows = store.history(conn, key(scenario.split))
    assert [r["status"] for r in rows] == ["superseded", "active"]
    assert [e["event"] for e in rows[0]["events"]] == ["decided", "superseded"]
    assert rows[0]["reviewer"] == "B. Reviewer" and rows[1]["reviewer"] == "C. Senior"


def _copy_of(scenario: Scenario, tmp_path: Path) -> str:
    """The scenario's index copied, so a test can decide without touching the others'."""
    copy = tmp_path / "index.db"
    copy.write_bytes(Path(scenario.url.removeprefix("sqlite:///")).read_bytes())
    return f"sqlite:///{copy}"


def test_the_same_decision_again_is_a_confirmation_not_a_change(scenario: Scenario, tmp_path):
    """A second reviewer (or the first, again) agreeing adds an audit row to the decision in
    force, and no decision: the audit must not read as if the pair's verdict changed."""
    url = _copy_of(scenario, tmp_path)
    pair = key(scenario.linked)
    with store.connect(url) as conn:
        (before,) = [d for d in store.history(conn, pair) if d["status"] == "active"]
    for reviewer in ("E. Second", "A. Reviewer"):
        code, out, err = cli(
            "review", "decide", pair, "--link", "--reviewer", reviewer,
            "--reason", "checked the tenancy file", "--database", url,
        )  # fmt: skip
        assert code == 0 and err == ""
        assert (
            f"was already decided link (one person) by A. Reviewer on {before['decided_at']:%Y-%m-%d}"
            in out
        )
        assert f"(decision {before['decision_id']}); nothing changes" in out
        assert f"Your confirmation is recorded in its audit, by {reviewer}." in out
        assert "Recorded decision" not in out and "supersedes" not in out
    with store.connect(url) as conn:
        (after,) = store.history(conn, pair)
    assert after["decision_id"] == before["decision_id"] and after["status"] == "active"
    events = [(e["event"], e["actor"], e["detail"]) for e in after["events"]]
    assert events == [
        ("decided", "A. Reviewer", "link"),
        ("confirmed", "E. Second", "checked the tenancy file"),
        ("confirmed", "A. Reviewer", "checked the tenancy file"),
    ]
    shown = cli("review", "show", pair, "--database", url)[1]
    assert "confirmed at" in shown and "by E. Second (checked the tenancy file)" in shown
    # The opposite decision is a change: recorded, and it says what it replaces.
    code, out, _ = cli(
        "review", "decide", pair, "--no-link", "--reviewer", "F. Third", "--reason", "no",
        "--database", url,
    )  # fmt: skip
    assert code == 0 and f"It supersedes decision {before['decision_id']} by A. Reviewer" in out
    assert "(it said link)" in out


def test_a_link_of_two_nhs_numbers_says_it_will_not_be_made(scenario: Scenario, tmp_path):
    """Linkage never joins two valid NHS numbers, whatever a reviewer decides: decide says so
    rather than promise the link takes effect on the next run."""
    url = _copy_of(scenario, tmp_path)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        records = pd.read_sql_table("review_record", conn)
    engine.dispose()
    numbers = records["standardised"].map(lambda s: json.loads(s).get("nhs_number"))
    first = numbers.dropna().iloc[0]
    a = records[numbers == first].iloc[0]
    b = records[numbers.notna() & (numbers != first)].iloc[0]
    code, out, err = cli(
        "review", "decide", f"{a.source}/{a.source_record_id}", f"{b.source}/{b.source_record_id}",
        "--link", "--reviewer", "G. Fourth", "--reason", "same person", "--database", url,
    )  # fmt: skip
    assert code == 0 and err == ""
    assert "carry different valid NHS numbers" in out and "the link will not be made" in out
    code, out, _ = cli(
        "review", "decide", key(scenario.linked), "--no-link", "--reviewer", "G. Fourth",
        "--reason", "not the same", "--database", url,
    )  # fmt: skip
    assert code == 0 and "NHS numbers" not in out


def test_show_says_whether_the_decision_in_force_is_made(tmp_path: Path):
    """Before the next run a decision is pending; after it, a link of two NHS numbers that the
    run did not make is said so, rather than the pair shown as two people unexplained."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=120, seed=5, scans=0)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    tables = run(sources, url, tmp_path)
    links = tables["person_source_link"].merge(tables["person_index"], on="person_id")
    gp = links[(links["source"] == "health_gp_registrations") & links["nhs_number"].notna()]
    a, b = (ref(("health_gp_registrations", r)) for r in gp["source_record_id"].iloc[:2])
    code, _, err = cli(
        "review", "decide", a, b, "--link", "--reviewer", "H. Fifth", "--reason", "same",
        "--database", url,
    )  # fmt: skip
    assert code == 0, err
    pending = cli("review", "show", a, b, "--database", url)[1]
    assert "The decision takes effect on the next run." in pending
    tables = run(sources, url, tmp_path)
    assert person_of(tables, _record(a)) != person_of(tables, _record(b))
    shown = cli("review", "show", a, b, "--database", url)[1]
    assert "The link decision is not made: the two records carry different valid NHS" in shown
    assert "takes effect on the next run" not in shown


def _record(text: str) -> tuple[str, str]:
    source, _, record_id = text.partition("/")
    return source, record_id


def test_decide_and_show_speak_to_a_caseworker(scenario: Scenario):
    assert "link (one person)" in scenario.outputs["link"]
    assert "no link (different people)" in scenario.outputs["split"]
    shown = scenario.outputs["show"]
    a, b = scenario.linked
    assert f"Pair {key(scenario.linked)}" in shown
    assert a[1] in shown and b[1] in shown
    for label in ("lineage", "family name", "date of birth", "prior", "total", "probability"):
        assert label in shown
    assert "A. Reviewer" in shown and "[active]" in shown


def test_list_numbers_the_queue_for_decide(scenario: Scenario):
    code, out, err = cli("review", "list", "--database", scenario.url, "--limit", "3")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "pair", "prob."]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert "--limit for more" in out


def test_a_row_number_is_the_row_the_reviewer_saw_or_refused(scenario: Scenario, tmp_path):
    copy = tmp_path / "index.db"
    copy.write_bytes(Path(scenario.url.removeprefix("sqlite:///")).read_bytes())
    url = f"sqlite:///{copy}"
    code, _, err = cli("review", "show", "1", "--database", url)
    assert code == 2 and "list first, or name the pair by its key" in err
    code, out, _ = cli("review", "list", "--database", url)
    first, second = (line.split()[1] for line in out.splitlines()[2:4])
    # A run takes the first pair out of the queue (its decision applied): the second is
    # now row 1 of the queue, but row 2 of what the reviewer saw.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        queue = pd.read_sql_table("review_queue", conn)
        gone = queue[store.pair_keys(queue) == first].iloc[0]
        conn.execute(
            sa.text(
                "DELETE FROM review_queue WHERE left_source = :s AND left_source_record_id = :r"
                " AND right_source = :t AND right_source_record_id = :q"
            ),
            dict(s=gone["left_source"], r=gone["left_source_record_id"],
                 t=gone["right_source"], q=gone["right_source_record_id"]),
        )  # fmt: skip
    engine.dispose()
    code, out, _ = cli("review", "show", "2", "--database", url)
    assert code == 0 and f"Pair {second}" in out
    code, out, err = cli(
        "review", "decide", "1", "--link", "--reviewer", "A. Reviewer", "--reason", "r",
        "--database", url,
    )  # fmt: skip
    assert code == 2 and out == ""
    assert f"row 1 of your last list was pair {first}, which has left the queue" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "ffffffffffff"], "unknown pair ffffffffffff"),
        (["show", "9999"], "no row 9999: your last `review list` showed"),
        (["show", "nonsense"], "is not a pair key"),
        (["show", "1", "2"], "'1' is not SOURCE/RECORD_ID: two values name a pair by its two"),
        (["show", "housing_tenancies/HM-1"], "is one record: name both records of the pair"),
        (["show", "housing_tenancies/NOPE", "paper_referrals/NOPE"], "is not in the index"),
        (["decide", "1", "--link", "--reviewer", "X"], "--reason TEXT is required"),
        (["decide", "1", "--link", "--reviewer", "X", "--reason", "  "], "--reason"),
        (["decide", "1", "--reason", "r", "--reviewer", "X"], "--link or --no-link"),
        (["decide", "1", "--no-link", "--reason", "r"], "--reviewer NAME is required"),
        (["list", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_mistakes_get_one_line_errors(scenario: Scenario, argv: list[str], message: str):
    code, out, err = cli("review", *argv, "--database", scenario.url)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_missing_database_is_one_line(tmp_path: Path):
    code, _, err = cli("review", "list", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert (
        code == 2 and err.strip() == f"care-etl: error: no index database at {tmp_path / 'none.db'}"
    )
    assert not (tmp_path / "none.db").exists()


@pytest.mark.postgres
def test_decisions_hold_on_postgresql(postgres_url: str, tmp_path: Path):
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=400, seed=SEED, scans=0)
    make_twins(sources)
    first = run(sources, postgres_url, tmp_path)
    first["_url"] = postgres_url
    _, linked = pick_queued_pair(first)
    (split,) = pick_model_links(first, 1)
    assert cli(
        "review", "decide", key(linked), "--link", "--reviewer", "A", "--reason", "same",
        "--database", postgres_url,
    )[0] == 0  # fmt: skip
    assert cli(
        "review", "decide", ref(split[0]), ref(split[1]), "--no-link", "--reviewer", "B",
        "--reason", "different", "--database", postgres_url,
    )[0] == 0  # fmt: skip
    second = run(sources, postgres_url, tmp_path)
    assert person_of(second, linked[0]) == person_of(second, linked[1])
    assert person_of(second, split[0]) != person_of(second, split[1])
    assert key(linked) not in queued_keys(second)
    assert set(second["review_decision"]["status"]) == {"active"}
    assert len(second["review_decision_audit"]) == 2


def test_queued_pairs_keep_the_time_they_were_first_queued(scenario: Scenario):
    first, _, third = scenario.runs
    before = first["review_queue"].set_index("pair_key")["queued_at"]
    after = third["review_queue"].set_index("pair_key")["queued_at"]
    assert after.notna().all()
    assert list(third["review_queue"]["pair_key"]) == list(store.pair_keys(third["review_queue"]))
    kept = before.index.intersection(after.index)
    assert len(kept) > 0
    assert (after[kept] == before[kept]).all()
    assert after[key(scenario.edited)] > before.max()  # queued for the first time in run 3


def test_a_stale_pair_stays_queued_until_someone_decides_again(scenario: Scenario):
    # Run last: a fourth run over the same sources. The stale decision is still the last
    # word on its pair, so the pair is queued again, and says why.
    assert scenario.sources is not None and scenario.work is not None
    fourth = run(scenario.sources, scenario.url, scenario.work)
    queue = fourth["review_queue"]
    row = queue[store.pair_keys(queue) == key(scenario.edited)]
    assert len(row) == 1
    assert json.loads(row["evidence"].iloc[0])["requeued"] == "stale_decision"
    # Once a person decides again, the pair leaves the queue.
    code, _, _ = cli(
        "review", "decide", key(scenario.edited), "--link", "--reviewer", "D. Reviewer",
        "--reason", "checked again after the correction", "--database", scenario.url,
    )  # fmt: skip
    assert code == 0
    fifth = run(scenario.sources, scenario.url, scenario.work)
    assert key(scenario.edited) not in queued_keys(fifth)
