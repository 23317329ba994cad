"""Chunks compared in worker processes give the levels one process gives, in pair order.

compare() forks one worker per usable core when the candidate pairs fill two chunks or more; the
pair cache (care_etl.incremental.pairs) and the model rely on the levels being a function of
the two records alone, so where a chunk was compared must not show.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

from care_etl.errors import CareEtlError
from care_etl.linkage import compare as compare_module
from care_etl.linkage.compare import compare, compared_fields
from care_etl.linkage.prepare import prepare
from care_etl_tests.linkage.people import crowd, with_records
from care_etl_tests.linkage.test_compare_levels import CASES

STREETS = ("MARE STREET", "AMHURST ROAD", "DALSTON LANE", "MACKIE CRESCENT", "HOWIE COURT")


def _records() -> pd.DataFrame:
    """The crowd with addresses (some typed with words joined or split) and the level cases."""
    rng = np.random.default_rng(3)
    records = crowd(150, seed=4).drop(columns="person")
    streets = rng.choice(np.array(STREETS, dtype=object), len(records))
    numbers = rng.integers(1, 30, len(records)).astype(str)
    address = pd.Series(numbers, dtype=object) + " " + pd.Series(streets, dtype=object)
    slips = rng.random(len(records)) < 0.2
    address[slips] = address[slips].str.replace(" ", "", n=1)
    records["address"] = address.to_numpy()
    cases = [record for left, right, _ in CASES for record in (left, right)]
    extra = [
        {"source": "cases", "source_record_id": f"C{i:03d}", **record}
        for i, record in enumerate(cases)
    ]
    return with_records(records, extra)


def _all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = np.triu_indices(n, k=1)
    return left.astype(np.int64), right.astype(np.int64)


def _chunks_compared_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one per chunk compared in this process (workers append to their
    own copy, so it stays empty when they do the work)."""
    here: list[int] = []
    original = compare_module._compare_chunk
    monkeypatch.setattr(compare_module, "_compare_chunk", lambda *a: here.append(1) or original(*a))
    return here


def test_workers_give_the_levels_of_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = prepare(_records())
    fields = compared_fields(prepared)
    assert {"given_name", "address", "postcode"} <= set(fields)
    pairs = _all_pairs(len(prepared))
    one = compare(prepared, pairs, fields)
    assert (one["address"] == 2).any() and (one["given_name"] == 1).any()  # the data vary
    monkeypatch.setattr(compare_module, "CHUNK_PAIRS", 7_001)
    monkeypatch.setattr(compare_module, "COMPARE_PROCESSES", 2)
    here = _chunks_compared_here(monkeypatch)
    seen: list[int] = []
    many = compare(prepared, pairs, fields, progress=lambda done, total: seen.append(done))
    pd.testing.assert_frame_equal(many, one)
    total = len(pairs[0])
    steps = np.diff([0, *seen])
    assert seen[-1] == total and len(seen) == -(-total // 7_001) > 2
    assert steps.max() <= 7_001 and steps.max() - steps.min() <= 1  # equal chunks
    assert not here


def test_one_chunk_is_compared_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small runs (tests, incremental runs) do not pay for starting workers."""
    prepared = prepare(_records())
    pairs = _all_pairs(200)

    def no_workers(*args, **kwargs):
        raise AssertionError("workers started for one chunk")

    monkeypatch.setattr(compare_module, "COMPARE_PROCESSES", 2)
    monkeypatch.setattr(compare_module, "ProcessPoolExecutor", no_workers)
    found = compare(prepared, pairs, compared_fields(prepared))
    assert len(found) == len(pairs[0])


def test_one_chunk_of_many_pairs_is_split_between_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model's random pairs fit one chunk: two halves keep both cores busy."""
    prepared = prepare(_records())
    fields = compared_fields(prepared)
    pairs = _all_pairs(len(prepared))
    one = compare(prepared, pairs, fields)
    monkeypatch.setattr(compare_module, "COMPARE_PROCESSES", 2)
    monkeypatch.setattr(compare_module, "SPLIT_PAIRS", 1_000)
    here = _chunks_compared_here(monkeypatch)
    seen: list[int] = []
    halves = compare(prepared, pairs, fields, progress=lambda done, total: seen.append(done))
    pd.testing.assert_frame_equal(halves, one)
    total = len(pairs[0])
    assert seen == [total // 2, total] and not here


def test_the_number_of_workers_follows_the_setting_or_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compare_module, "COMPARE_PROCESSES", None)
    monkeypatch.delenv(compare_module.PROCESSES_VARIABLE, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert compare_module.compare_processes() == min(cores, compare_module.MAX_PROCESSES)
    monkeypatch.setenv(compare_module.PROCESSES_VARIABLE, "1")
    assert compare_module.compare_processes() == 1
    monkeypatch.setenv(compare_module.PROCESSES_VARIABLE, "two")
    with pytest.raises(CareEtlError, match="CARE_ETL_COMPARE_PROCESSES='two' is not a number"):
        compare_module.compare_processes()


def test_chunks_are_equal_and_a_multiple_of_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker is left comparing the last chunk while the others wait."""
    monkeypatch.setattr(compare_module, "CHUNK_PAIRS", 4_000_000)
    monkeypatch.setattr(compare_module, "SPLIT_PAIRS", 400_000)
    bounds = compare_module._bounds(35_308_465, 2)
    sizes = [stop - start for start, stop in bounds]
    assert len(bounds) == 10 and max(sizes) <= 4_000_000 and max(sizes) - min(sizes) <= 1
    assert bounds[0][0] == 0 and bounds[-1][1] == 35_308_465
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert len(compare_module._bounds(35_308_465, 1)) == 9
    assert compare_module._bounds(1_000_000, 2) == [(0, 500_000), (500_000, 1_000_000)]
    assert compare_module._bounds(300_000, 2) == [(0, 300_000)]


def _faults_of_a_third_round() -> int:
    """Page faults met by the third of three rounds of twenty 3 MB arrays, each round freed
    before the next (as a chunk frees its arrays before the next chunk)."""
    for _ in range(2):
        [np.ones(3_000_000, dtype=np.int8) for _ in range(20)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    [np.ones(3_000_000, dtype=np.int8) for _ in range(20)]
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_worker_reuses_the_memory_its_last_chunk_freed() -> None:
    # In a fresh process, with the allocator as glibc sets it up, each round's arrays are
    # mapped and zeroed afresh: 15,000 faults. (A process forked from this one inherits
    # what the allocator has learnt here, which varies.)
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
        plain = pool.submit(_faults_of_a_third_round).result()
    with compare_module.worker_pool(1) as pool:
        worker = pool.submit(_faults_of_a_third_round).result()
    assert plain > 10_000
    assert worker < 1_000
