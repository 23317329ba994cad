"""Standardised rows kept between runs give exactly what standardising every row gives.

On a generated GP source: a first run keeps its rows; the records then change (some
corrected, some removed, some added, one given a date of birth that only a later day
accepts), and the second run, reusing the kept rows, must equal a run without the cache,
on the day it runs and on a later day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from care_etl.contracts.mapping import to_canonical
from care_etl.contracts.model import Contract, load_contract
from care_etl.incremental.rows import RowCache, row_prints
from care_etl.incremental.state import cache_root, forget
from care_etl.quality.gate import gate_source
from care_etl.sources.read import read_source
from care_etl.standardise import standardise
from care_etl.standardise.frame import undated_texts
from care_etl_tests.conftest import CONTRACTS_DIR

TODAY = dt.date(2026, 3, 1)
LATER = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def gp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Contract, pd.DataFrame, Path]:
    """The GP contract and its generated records, mapped (not yet standardised)."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path_factory.mktemp("rows") / "sources"
    generate(sources, people=300, seed=5, scans=0)
    contract = load_contract(CONTRACTS_DIR / "health_gp_registrations.yaml")
    raw = read_source(contract, sources)
    mapped = to_canonical(raw, contract)
    records = mapped[~mapped["withdrawn"]].drop(columns=["withdrawn", "read_error"])
    return contract, records.reset_index(drop=True), sources


def _changed(records: pd.DataFrame) -> pd.DataFrame:
    """Corrected, removed and added rows, and one birth date between TODAY and LATER."""
    out = records.copy()
    out.loc[0:9, "family_name"] = out.loc[0:9, "family_name"] + "-Smythe"  # corrected
    out.loc[10:14, "address"] = "FLAT 2, 9 St John's Rd, London E8 3QP"
    out.loc[15:19, "postcode"] = None  # the postcode is then taken from the address
    out.loc[20:24, "nhs_number"] = "943 476 5919"
    out = out.drop(index=range(30, 40))  # removed
    added = records.iloc[40:45].copy()
    added["source_record_id"] = [f"NEW{i}" for i in range(len(added))]
    added["given_name"] = ["ZOË", "o'brien", "N/K", "  ", "Mary-jane"]
    added["full_name"] = "Dr Jean-Luc van der Berg Jr"
    out = pd.concat([out, added], ignore_index=True)
    # Only a day after TODAY accepts this birth date; the row is otherwise unchanged.
    out.loc[len(out) - 50, "date_of_birth"] = (TODAY + dt.timedelta(days=10)).strftime("%d/%m/%Y")
    return out


def _new_texts(before: pd.DataFrame, after: pd.DataFrame) -> int:
    """Rows of `after` whose non-date texts no row of `before` has."""
    seen = set(undated_texts(before).itertuples(index=False))
    return sum(row not in seen for row in undated_texts(after).itertuples(index=False))


def _standardise(records: pd.DataFrame, contract: Contract, today: dt.date, **kw) -> pd.DataFrame:
    return standardise(records, contract.date_formats, today=today, **kw)


def test_cached_rerun_equals_an_uncached_one(gp, tmp_path: Path) -> None:
    contract, records, _ = gp
    first = RowCache(tmp_path, contract)
    _standardise(records, contract, TODAY, undated=first.undated)
    assert first.counts == {"rows_reused": 0, "rows_standardised": len(records)}
    first.save()

    changed = _changed(records)
    expected_fresh = _new_texts(records, changed)
    assert expected_fresh >= 25  # the test changes what it means to
    for today in (TODAY, LATER):
        cache = RowCache(tmp_path, contract)
        cached = _standardise(changed, contract, today, undated=cache.undated)
        uncached = _standardise(changed, contract, today)
        pd.testing.assert_frame_equal(cached, uncached, check_exact=True)
        # Corrected and added rows were standardised again, the rest reused.
        assert cache.counts == {
            "rows_reused": len(changed) - expected_fresh,
            "rows_standardised": expected_fresh,
        }
    # The birth date between TODAY and LATER: refused on TODAY, accepted on LATER, although
    # its row's other values came from the cache both times.
    row = len(changed) - 50
    on_today = _standardise(changed, contract, TODAY, undated=RowCache(tmp_path, contract).undated)
    on_later = _standardise(changed, contract, LATER, undated=RowCache(tmp_path, contract).undated)
    assert pd.isna(on_today.loc[row, "date_of_birth"])
    assert "date_of_birth: impossible date (in the future)" in on_today.loc[row, "quality_issues"]
    assert on_later.loc[row, "date_of_birth"] == pd.Timestamp(TODAY + dt.timedelta(days=10))


def test_the_cache_keeps_no_dates_and_only_this_runs_rows(gp, tmp_path: Path) -> None:
    contract, records, _ = gp
    cache = RowCache(tmp_path, contract)
    _standardise(records.iloc[:100], contract, TODAY, undated=cache.undated)
    cache.save()
    with np.load(tmp_path / f"rows_{contract.id}.npz", allow_pickle=False) as stored:
        assert not [n for n in stored.files if "date" in n]
        assert len(stored["prints"]) == 100
    again = RowCache(tmp_path, contract)
    _standardise(records.iloc[50:150], contract, TODAY, undated=again.undated)
    assert again.counts == {"rows_reused": 50, "rows_standardised": 50}


def test_another_contract_version_ignores_the_cache(gp, tmp_path: Path) -> None:
    contract, records, _ = gp
    cache = RowCache(tmp_path, contract)
    _standardise(records, contract, TODAY, undated=cache.undated)
    cache.save()
    changed = dataclasses.replace(contract, version=contract.version + "-next")
    other = RowCache(tmp_path, changed)
    _standardise(records, changed, TODAY, undated=other.undated)
    assert other.counts["rows_reused"] == 0


def test_gate_reuses_rows_and_full_forgets_them(gp, tmp_path: Path) -> None:
    contract, _, sources = gp
    raw = read_source(contract, sources)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    root = cache_root(tmp_path / ".ocr_cache")
    plain = gate_source(raw, contract, database_url=url, run_id="plain")
    first = gate_source(raw, contract, database_url=url, run_id="one", cache_dir=root)
    second = gate_source(raw, contract, database_url=url, run_id="two", cache_dir=root)
    assert (plain.rows_reused, first.rows_reused) == (None, 0)
    assert second.rows_reused >= len(second.records) > 0  # every record went through
    pd.testing.assert_frame_equal(second.records, plain.records, check_exact=True)
    pd.testing.assert_frame_equal(second.quarantine, plain.quarantine, check_exact=True)
    forget(root)  # what `care-etl run --full` does first
    third = gate_source(raw, contract, database_url=url, run_id="three", cache_dir=root)
    assert third.rows_reused == 0


def test_row_prints_are_the_row_hashes_under_each_key() -> None:
    """Factorising each column once for both keys gives what hashing under each key alone
    does (caches written before keep their meaning), on text, numbers and nulls alike."""
    from care_etl.incremental.delta import row_hashes
    from care_etl.incremental.rows import _HASH_KEYS
    from care_etl.standardise.frame import UNDATED_FIELDS

    fields = list(UNDATED_FIELDS)
    texts = pd.DataFrame({name: ["Ada", None, "Ada", "1", 1, 1.0] for name in fields[:3]}).astype(
        object
    )
    prints = row_prints(texts)
    assert prints.shape == (6, 2)
    for column, key in enumerate(_HASH_KEYS):
        assert (prints[:, column] == row_hashes(texts, fields, hash_key=key)).all()
    assert prints[0, 0] == prints[2, 0] and prints[0, 0] != prints[1, 0]
    assert prints[3, 0] != prints[4, 0]  # the text "1" and the number 1 differ
