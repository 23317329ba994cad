"""The last accepted version is stored compressed and loads back exactly, old JSON included."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from care_etl.contracts.model import load_contract
from care_etl.quality import accepted
from care_etl.quality.results import ensure_tables
from care_etl.quality.staging import stage_source
from care_etl.sources.read import read_source
from care_etl_tests.conftest import CONTRACTS_DIR


def test_accepted_version_round_trips_and_plain_json_still_loads(
    generated: Path, tmp_path: Path
) -> None:
    contract = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")
    staged = stage_source(read_source(contract, generated), contract)
    staged.accepted_at = "2026-03-01T09:30:00"
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    ensure_tables(engine)
    with engine.begin() as conn:
        accepted.save_accepted(conn, staged, run_id="r1", rows_checked=len(staged.records))
        payload = conn.execute(sa.select(accepted.accepted_source.c.payload)).scalar_one()
        back = accepted.load_accepted(conn, contract.id)
        # A version stored before compression (plain JSON) still loads, alike.
        conn.execute(accepted.accepted_source.update().values(payload=accepted._json(staged)))
        old = accepted.load_accepted(conn, contract.id)
    engine.dispose()
    assert not payload.startswith("{") and len(payload) < len(accepted._json(staged)) / 3
    for loaded in (back, old):
        assert loaded is not None
        pd.testing.assert_frame_equal(loaded.records, staged.records, check_exact=True)
        pd.testing.assert_frame_equal(loaded.quarantine, staged.quarantine, check_exact=True)
        assert (loaded.read, loaded.withdrawn, loaded.counts) == (
            staged.read,
            staged.withdrawn,
            staged.counts,
        )
