"""The index's vectorised steps give what the plain pandas way gives, ties and gaps included.

The index build sorts and groups on integer codes instead of text (issue 5: it was most of a
run); these pin the orders and tie-breaks that a code-based shortcut can silently change.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from care_etl.index.analyst import analyst_tables, pseudonym
from care_etl.index.golden import Trust, choose, sort_rows
from care_etl.index.households import _most_common, _tenancy_relationships

TEXT = ["Zoe", "chloe", "Chloë", "Émile", "Ábel", "zoe", "Zoe", "10", "9", "a b", "ab"]


def test_sorting_on_codes_matches_sort_values_with_ties_gaps_and_accents():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "a": rng.choice(TEXT + [None], 300),
            "b": rng.choice(["x", "y", None], 300),
            "n": rng.integers(0, 3, 300),
            "c": rng.choice(TEXT, 300),  # no gaps: sorted as numpy strings
        },
        index=rng.permutation(1000)[:300],
    )
    for by in (["a", "b"], ["b", "n", "a"], ["c", "n"], ["n", "c", "a"]):
        assert_frame_equal(sort_rows(frame, by), frame.sort_values(by))


def test_a_value_tied_on_every_rule_is_chosen_by_text_order_and_sources_are_listed():
    values = pd.DataFrame(
        {
            "person_id": ["P2", "P1", "P1", "P1", "P1"],
            "field": "given_name",
            "value": ["Ábel", "Zoe", "Chloë", "Chloë", "Zoe"],
            "typed": ["Ábel", "Zoe", "Chloë", "Chloë", "Zoe"],
            "source": ["b", "b", "b", "a", "a"],
            "recorded_on": pd.NaT,
        }
    )
    out = choose(values, Trust(("a", "b")))
    p1 = out[out["person_id"] == "P1"].set_index("value")
    assert out["person_id"].tolist() == ["P1", "P1", "P2"]
    assert p1.loc["Chloë", "is_golden"] and p1.loc["Chloë", "rule"] == "tie_break"
    assert p1.loc["Chloë", "sources"] == "a, b" and p1.loc["Chloë", "source"] == "a"
    assert not p1.loc["Zoe", "is_golden"] and p1.loc["Zoe", "record_count"] == 2
    assert out.loc[out["person_id"] == "P2", "rule"].item() == "only_value"


def test_most_common_breaks_ties_by_sort_order_and_leaves_unknown_missing():
    frame = pd.DataFrame({"k": ["h1", "h1", "h1", "h1", "h2"], "c": ["B", "A", "B", "A", None]})
    out = _most_common(frame, "k", ("c",))
    shown = out.set_index("k")["c"]
    assert shown["h1"] == "A" and pd.isna(shown["h2"])
    assert out["c"].dtype == object


def test_tenancies_relate_members_to_a_single_lead_both_ways_in_record_order():
    linked = pd.DataFrame(
        {
            "person_id": ["L", "S", "D", "X1", "X2", "Y"],
            "source": "housing",
            "address": ["1 A St", "1 A St", "1 A St", "2 B St", "2 B St", "2 B St"],
            "postcode": ["E1 1AA"] * 3 + ["E2 2BB"] * 3,
            "uprn": None,
            "relationship_to_head": [
                "Lead tenant",
                " son ",
                "Lodger",
                "Lead tenant",
                "lead tenant",
                "Partner",
            ],
        }
    )
    out = _tenancy_relationships(linked)
    rows = list(out.itertuples(index=False, name=None))
    assert rows == [
        ("L", "S", "Son", "housing", "declared"),
        ("S", "L", "Parent", "housing", "declared"),
        ("L", "D", "Lodger", "housing", "declared"),
        ("D", "L", "Lead tenant", "housing", "declared"),
    ]  # two leads at 2 B St: how Y relates to them is unknown


def test_analyst_keys_are_one_hmac_per_id_and_missing_stays_missing():
    key = b"k" * 32
    person = pd.DataFrame(
        {
            "person_id": ["P1", "P2"],
            "sex": ["F", None],
            "date_of_birth": [pd.Timestamp("1950-06-01"), pd.NaT],
            "postcode": ["E8 3QP", None],
            "source_count": [1, 1],
            "record_count": [2, 1],
        }
    )
    links = pd.DataFrame(
        {
            "person_id": ["P1", "P1", "P2"],
            "source": ["a", "b", "a"],
            "source_record_id": ["1", "1", "2"],
            "link_type": "probabilistic",
            "match_probability": 0.9,
        }
    )
    household = pd.DataFrame({"household_id": ["H1"], "person_id": ["P1"], "basis": ["uprn"]})
    out = analyst_tables(
        {"person_index": person, "person_source_link": links, "household": household},
        key,
        dt.date(2026, 1, 1),
    )
    people = out["analyst_person"]
    assert people["person_key"].tolist() == [pseudonym(key, "person", p) for p in ("P1", "P2")]
    assert people["household_key"].tolist() == [pseudonym(key, "household", "H1"), None]
    assert people["age_band"].tolist() == ["75-84", None]
    assert people["postcode_district"].tolist() == ["E8", None]
    records = out["analyst_person_source_link"]["record_key"].tolist()
    assert records == [pseudonym(key, "record", r) for r in ("a|1", "b|1", "a|2")]


def test_analyst_person_lives_in_their_household_s_district_and_says_who_died():
    """A GP address from before a move can win the best-known postcode; the district must be
    the household's, or one household would count in two districts. A person a source records
    as dead is flagged, as their household still lists them. The review queue keeps the
    record keys of the link table."""
    key = b"k" * 32
    person = pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3"],
            "sex": ["F", "M", None],
            "date_of_birth": [pd.Timestamp("1950-06-01")] * 3,
            "postcode": ["E9 7BD", "N15 2ZT", "E1 5EX"],  # P1's is a GP's, before the move
            "source_count": [1, 1, 1],
            "record_count": [1, 1, 1],
        }
    )
    household = pd.DataFrame(
        {
            "household_id": ["H1", "H1"],
            "person_id": ["P1", "P2"],
            "postcode": ["N15 2ZT"] * 2,
            "basis": "address",
        }
    )
    died = pd.DataFrame(
        {"person_id": ["P2"], "field": ["date_of_death"], "value": ["2024-01-01"],
         "is_golden": [True]}
    )  # fmt: skip
    links = pd.DataFrame(
        {"person_id": ["P1", "P2", "P3"], "source": "a", "source_record_id": ["1", "2", "3"],
         "link_type": "single", "match_probability": None}
    )  # fmt: skip
    queue = pd.DataFrame(
        {"left_source": ["a"], "left_source_record_id": ["1"], "right_source": ["a"],
         "right_source_record_id": ["3"], "match_probability": [0.9], "evidence": ["{}"],
         "queued_at": [pd.Timestamp("2026-01-01")]}
    )  # fmt: skip
    tables = {"person_index": person, "person_source_link": links, "household": household,
              "person_field_value": died, "review_queue": queue}  # fmt: skip
    out = analyst_tables(tables, key, dt.date(2026, 1, 1))
    people = out["analyst_person"]
    assert people["postcode_district"].tolist() == ["N15", "N15", "E1"]
    assert people["deceased"].tolist() == [False, True, False]
    review = out["analyst_review_queue"]
    assert review[["left_record_key", "right_record_key"]].values.tolist() == [
        [pseudonym(key, "record", "a|1"), pseudonym(key, "record", "a|3")]
    ]
    assert set(review.columns).isdisjoint({"evidence", "left_source_record_id"})


def test_linking_records_in_step_with_their_assignments_gives_the_join():
    from care_etl.index.build import link_records

    records = pd.DataFrame(
        {
            "source": ["s", "s", "t", "t"],
            "source_record_id": ["1", "2", "1", None],
            "given_name": ["Ada", None, "Ben", "Cy"],
            "recorded_on": ["2024-01-02", "02/03/2024", None, "2024-05-06"],
        }
    )
    assignments = records[["source", "source_record_id"]].assign(
        person_id=["P1", "P1", "P2", "P3"], match_probability=[0.9, None, 1.0, 0.5]
    )
    in_step = link_records(records, assignments.set_axis([7, 8, 9, 10]))
    joined = link_records(records, assignments.iloc[::-1])  # out of step: merged
    assert_frame_equal(in_step, joined)
    assert in_step["person_id"].tolist() == ["P1", "P1", "P2", "P3"]
    twice = pd.concat([records, records], ignore_index=True)
    with pytest.raises(pd.errors.MergeError):  # a record twice is still refused
        link_records(twice, pd.concat([assignments, assignments], ignore_index=True))


def test_datetimes_are_written_to_sqlite_as_sqlalchemy_writes_them(tmp_path) -> None:
    """Dates and datetimes formatted at once by numpy read back as SQLAlchemy wrote them one
    by one: microseconds, dates before 1970, midnight and missing values included."""
    import sqlalchemy as sa

    from care_etl.index.publish import _insert

    stamps = pd.to_datetime(
        ["1931-02-28 23:59:59.000001", None, "2026-11-26 00:00:00", "1969-12-31 12:30:00"],
        format="ISO8601",
    )
    frame = pd.DataFrame({"id": range(4), "at": stamps, "on": stamps})
    meta = sa.MetaData()
    fast = sa.Table("fast", meta, sa.Column("id", sa.Integer), sa.Column("at", sa.DateTime),
                    sa.Column("on", sa.Date))  # fmt: skip
    slow = sa.Table("slow", meta, *(c.copy() for c in fast.columns))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dates.db'}")
    meta.create_all(engine)
    with engine.begin() as conn:
        _insert(conn, fast, frame)
        rows = frame.astype({"at": object, "on": object}).to_dict("records")
        conn.execute(slow.insert(), [{k: (None if pd.isna(v) else v) for k, v in r.items()}
                                     for r in rows])  # fmt: skip
        read = {name: conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id").all()
                for name in ("fast", "slow")}  # fmt: skip
        typed = conn.execute(sa.select(fast).order_by(fast.c.id)).all()
    assert read["fast"] == read["slow"]
    assert read["fast"][0][1:] == ("1931-02-28 23:59:59.000001", "1931-02-28")
    assert read["fast"][1][1:] == (None, None)
    assert typed[3][1:] == (dt.datetime(1969, 12, 31, 12, 30), dt.date(1969, 12, 31))
