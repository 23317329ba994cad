"""The last accepted version is stored compressed and loads back exactly, older formats included."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.contracts.model import load_contract
from care_etl.quality import accepted
from care_etl.quality.results import ensure_tables
from care_etl.quality.staging import StagedSource, stage_source
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR


def _round_trip(staged: StagedSource, tmp_path: Path, payload: str | None = None):
    """Save the version (or store `payload` as it), load it back; and the payload stored."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    ensure_tables(engine)
    with engine.begin() as conn:
        accepted.save_accepted(conn, staged, run_id="r1", rows_checked=len(staged.records))
        if payload is not None:
            conn.execute(accepted.accepted_source.update().values(payload=payload))
        stored = conn.execute(sa.select(accepted.accepted_source.c.payload)).scalar_one()
        back = accepted.load_accepted(conn, staged.contract_id)
    engine.dispose()
    return back, stored


def _assert_same(loaded: StagedSource | None, staged: StagedSource) -> None:
    assert loaded is not None
    for name in ("records", "quarantine"):
        frame, expected = getattr(loaded, name), getattr(staged, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
        for column in frame.columns:  # None stays None, not NaN
            assert [type(v) for v in frame[column]] == [type(v) for v in expected[column]]
    assert (loaded.read, loaded.withdrawn, loaded.counts, loaded.files, loaded.accepted_at) == (
        staged.read,
        staged.withdrawn,
        staged.counts,
        staged.files,
        staged.accepted_at,
    )


@pytest.fixture(scope="module")
def staged(generated: Path) -> StagedSource:
    contract = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")
    staged = stage_source(read_source(contract, generated), contract)
    staged.accepted_at = "2026-03-01T09:30:00"
    return staged


def test_accepted_version_round_trips_as_parquet(staged: StagedSource, tmp_path: Path) -> None:
    back, payload = _round_trip(staged, tmp_path)

    assert payload.startswith(accepted._PARQUET)
    assert len(payload) < len(accepted._json(staged)) / 3
    assert (staged.records.dtypes == "datetime64[ns]").any()
    _assert_same(back, staged)


@pytest.mark.parametrize("older", ["plain JSON", "compressed JSON"])
def test_versions_stored_as_json_before_still_load(
    staged: StagedSource, tmp_path: Path, older: str
) -> None:
    text = accepted._json(staged)
    if older == "compressed JSON":
        text = "zlib+base64:" + base64.b64encode(zlib.compress(text.encode())).decode()

    back, _ = _round_trip(staged, tmp_path, payload=text)

    _assert_same(back, staged)


def test_numbers_flags_dates_and_blanks_keep_their_dtypes(tmp_path: Path) -> None:
    records = pd.DataFrame(
        {
            "source_record_id": ["a", "b", "c"],
            "given_name": [None, "Zoë", float("nan")],  # NaN loads as None, as from JSON
            "date_of_birth": pd.to_datetime(
                ["1948-07-03", None, "2001-02-28T13:45:01.5"], format="ISO8601"
            ),
            "score": [0.1, float("nan"), -0.0],
            "visits": np.array([1, 2, 2**40], dtype=np.int64),
            "flag": [True, False, True],
            "empty": [None, None, None],
        },
        index=[5, 7, 9],  # stored as 0..n-1
    )
    quarantine = records.iloc[0:0][["source_record_id"]]
    staged = StagedSource("s", records, quarantine, 3, 1, accepted_at="2026-03-01T09:30:00")

    back, payload = _round_trip(staged, tmp_path)

    assert payload.startswith(accepted._PARQUET)
    expected = records.reset_index(drop=True).astype({"given_name": object})
    expected.loc[2, "given_name"] = None
    pd.testing.assert_frame_equal(back.records, expected, check_exact=True)
    assert back.records["given_name"].tolist() == [None, "Zoë", None]
    assert back.quarantine.columns.tolist() == ["source_record_id"] and not len(back.quarantine)


def test_extension_types_and_separator_like_texts_round_trip(tmp_path: Path) -> None:
    records = pd.DataFrame(
        {
            "source_record_id": ["a", "b"],
            "odd": ["plain", "text with \x1f a unit separator"],
            "count": pd.array([1, None], dtype="Int64"),
        }
    )
    quarantine = pd.DataFrame(columns=["source_record_id"])
    staged = StagedSource("s", records, quarantine, 2, 0, accepted_at="2026-03-01T09:30:00")

    back, payload = _round_trip(staged, tmp_path)

    assert payload.startswith(accepted._PARQUET)
    pd.testing.assert_frame_equal(back.records, records, check_exact=True)


def test_a_column_mixing_texts_and_numbers_is_stored_as_json_as_before(tmp_path: Path) -> None:
    records = pd.DataFrame({"source_record_id": ["a", "b"], "odd": ["text", 3]})
    quarantine = pd.DataFrame(columns=["source_record_id"])
    staged = StagedSource("s", records, quarantine, 2, 0, accepted_at="2026-03-01T09:30:00")

    back, payload = _round_trip(staged, tmp_path)

    assert payload.startswith("zlib+base64:")
    old = accepted._decode(accepted._json(staged))  # as every version was stored before
    pd.testing.assert_frame_equal(back.records, old.records, check_exact=True)
    assert back.records["source_record_id"].tolist() == ["a", "b"]


@pytest.mark.parametrize("odd", [["text", "more"], ["text", 3]], ids=["parquet", "json"])
def test_declared_tables_round_trip_in_either_form(tmp_path: Path, odd: list) -> None:
    """Social care's relationships and involvements stand in with its records, so they must
    come back as they went in, dates and blank statuses too, whichever form the version is
    stored in (JSON when a records column mixes texts and numbers)."""
    records = pd.DataFrame({"source_record_id": ["1", "2"], "odd": odd})
    declared = {
        "relationship": pd.DataFrame(
            {
                "source": ["s"],
                "source_record_id": ["1"],
                "related_source_record_id": ["2"],
                "relationship": ["Mother"],
            }
        ),
        "involvement": pd.DataFrame(
            {
                "source": ["s", "s"],
                "source_record_id": ["1", "2"],
                "service": ["Adult Social Care", "Children's Social Care"],
                "start_date": pd.to_datetime(["2020-01-02", "2023-04-01"]),
                "end_date": pd.to_datetime([None, "2024-05-06"]),
                "status": [None, "Closed"],
            }
        ),
    }
    staged = StagedSource("s", records, pd.DataFrame(columns=["source_record_id"]), 2, 0,
                          accepted_at="2026-03-01T09:30:00", declared=declared)  # fmt: skip

    back, payload = _round_trip(staged, tmp_path)

    assert payload.startswith("zlib+base64:" if 3 in odd else "parquet+json:")
    assert set(back.declared) == {"relationship", "involvement"}
    for role, table in declared.items():
        pd.testing.assert_frame_equal(back.declared[role], table, check_exact=True)
    assert back.declared["involvement"]["status"].tolist()[0] is None
