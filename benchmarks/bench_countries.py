"""Linkage accuracy on people of other countries: names, addresses and postcodes from Faker.

    .venv/bin/python benchmarks/bench_countries.py                  # every locale below
    .venv/bin/python benchmarks/bench_countries.py de_DE vi_VN --people 5000
    .venv/bin/python benchmarks/bench_countries.py --without postcode address  # names, dates

interfaces.md promises that `link()` works on any country's data, and care_etl's own
generator and FEBRL are British and Australian. Here each locale's people live in households
(one to four people at an address, most sharing a surname, a few twins), and each person has
one to three records in three sources with the errors sources make: typos in names and
addresses, day and month swapped, a move, a missing postcode. Records carry no NHS number, so
everything rests on the names, date of birth, sex and address. Faker (a dev dependency,
pinned so that the figures repeat) writes the names and addresses in each locale's own
script: Cyrillic, Greek, Arabic, Devanagari, Chinese characters, Japanese kana and kanji, Korean hangul.

Prints per locale: records, pairwise precision, recall and F1, the review queue (pairs and
the true ones among them) and the twin pairs merged.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_linkage import _accuracy, _pairs_in_clusters  # noqa: E402

from care_etl.linkage import link_records  # noqa: E402

LOCALES = (
    "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "pl_PL", "tr_TR", "vi_VN",
    "ru_RU", "el_GR", "ar_SA", "hi_IN", "zh_CN", "ja_JP", "ko_KR",
)  # fmt: skip
#: Chance of each error on a person's second and third records.
ERRORS = {"given": 0.10, "family": 0.10, "swap": 0.03, "move": 0.10, "no_postcode": 0.10}
TWIN_SHARE = 0.02


def _typo(text: str, rng: np.random.Generator) -> str:
    """One letter dropped, doubled or swapped with the next."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text) - 1))
    dropped, doubled = text[:i] + text[i + 1 :], text[:i] + text[i] + text[i:]
    swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return (dropped, doubled, swapped)[int(rng.integers(3))]


def people(locale: str, n: int, seed: int) -> pd.DataFrame:
    """n people in households: an address each, a shared surname for most, a few twins."""
    fake, rng = Faker(locale), np.random.default_rng(seed)
    fake.seed_instance(seed)
    rows: list[dict] = []
    while len(rows) < n:
        family, address, postcode = fake.last_name(), fake.street_address(), fake.postcode()
        previous = None
        for _ in range(int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))):
            sex = str(rng.choice(["M", "F"]))
            given = fake.first_name_male() if sex == "M" else fake.first_name_female()
            born = fake.date_of_birth(minimum_age=0, maximum_age=95)
            twin = previous is not None and rng.random() < TWIN_SHARE
            person = dict(
                person=len(rows), given_name=given,
                family_name=family if rng.random() < 0.85 else fake.last_name(),
                date_of_birth=previous["date_of_birth"] if twin else born, sex=sex,
                address=address, postcode=postcode, twin_of=previous["person"] if twin else -1,
            )  # fmt: skip
            rows.append(person)
            previous = person
    return pd.DataFrame(rows[:n])


def records(base: pd.DataFrame, locale: str, seed: int) -> pd.DataFrame:
    """One to three records a person, in sources a, b and c, the later ones with errors."""
    fake, rng = Faker(locale), np.random.default_rng(seed + 1)
    fake.seed_instance(seed + 1)
    out = []
    for person in base.to_dict("records"):
        for copy in range(int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))):
            record = dict(person, source="abc"[copy])
            if copy:
                _with_errors(record, rng, fake)
            out.append(record)
    frame = pd.DataFrame(out)
    frame["source_record_id"] = [str(i) for i in range(len(frame))]
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    return frame


def _with_errors(record: dict, rng: np.random.Generator, fake: Faker) -> None:
    if rng.random() < ERRORS["given"]:
        record["given_name"] = _typo(record["given_name"], rng)
    if rng.random() < ERRORS["family"]:
        record["family_name"] = _typo(record["family_name"], rng)
    born = record["date_of_birth"]
    if rng.random() < ERRORS["swap"] and born.day <= 12:
        record["date_of_birth"] = born.replace(day=born.month, month=born.day)
    if rng.random() < ERRORS["move"]:
        record["address"], record["postcode"] = fake.street_address(), fake.postcode()
    if rng.random() < ERRORS["no_postcode"]:
        record["postcode"] = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locales", nargs="*", default=LOCALES)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--without", nargs="+", default=[], metavar="FIELD",
        help="fields dropped before linking (sources that do not record them)",
    )  # fmt: skip
    args = parser.parse_args()
    print(
        f"{'locale':7} {'records':>7} {'P':>6} {'R':>6} {'F1':>6} {'review':>9} {'twins merged':>13}  seconds"
    )
    for locale in args.locales:
        base = people(locale, args.people, args.seed)
        frame = records(base, locale, args.seed)
        keys = (frame["source"] + "|" + frame["source_record_id"]).to_numpy()
        started = time.perf_counter()
        result = link_records(frame.drop(columns=["person", "twin_of", *args.without]))
        seconds = time.perf_counter() - started
        found = _accuracy(result, keys, _pairs_in_clusters(keys, frame["person"].to_numpy()))
        person_id = pd.Series(result.assignments["person_id"].to_numpy(), index=frame["person"])
        twins = base[base["twin_of"] >= 0]
        merged = sum(
            bool(set(person_id.loc[[a]]) & set(person_id.loc[[b]]))
            for a, b in zip(twins["person"], twins["twin_of"], strict=True)
        )
        print(
            f"{locale:7} {len(frame):7,} {found['precision']:.4f} {found['recall']:.4f} "
            f"{found['f1']:.4f} {found['review']:4} ({found['review_true']:3}) "
            f"{merged:3} of {len(twins):3}  {seconds:5.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
