"""Households on a generated population: the view lists a true household as generated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.index.cli import household_members
from care_etl.index.households import address_keys, household_id
from care_etl.pipeline import run_pipeline
from care_etl.standardise.address import clean_address
from care_etl.synthetic.population import build_population
from care_etl_tests.conftest import CONTRACTS_DIR

pytestmark = pytest.mark.slow
HOUSING = "housing_tenancies"


@pytest.fixture(scope="module")
def index_url(generated_run: dict) -> str:
    return generated_run["url"]


def _read(url: str, query: str, **params: object) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(query), conn, params=params)
    engine.dispose()
    return frame


def _true_to_index(url: str, generated: Path) -> dict[str, set[str]]:
    """True person -> the index persons holding their records."""
    truth = pd.read_csv(generated / "ground_truth.csv", dtype=str)
    links = _read(url, "SELECT source, source_record_id, person_id FROM person_source_link")
    joined = truth.merge(links, on=["source", "source_record_id"])
    return joined.groupby("true_person_id")["person_id"].agg(set).to_dict()


def _a_clean_tenant_household(url: str, generated: Path):
    """A household that did not move, in housing, each member one index person of its own
    (linkage can split or merge people; the view is tested where linkage got them right)."""
    population = build_population(400, 11)  # the `generated` fixture's population
    truth = pd.read_csv(generated / "ground_truth.csv", dtype=str)
    in_housing = set(truth.loc[truth["source"] == HOUSING, "true_person_id"])
    in_social = set(truth.loc[truth["source"] == "social_care_case_management", "true_person_id"])
    to_index = _true_to_index(url, generated)
    owners: dict[str, set[str]] = {}
    for true_id, index_ids in to_index.items():
        for index_id in index_ids:
            owners.setdefault(index_id, set()).add(true_id)
    for hh in population.households:
        members = hh.members
        ids = [m.person_id for m in members]
        if (
            len(members) >= 3
            and hh.previous is None
            and all(i in in_housing and i not in in_social for i in ids)
            and all(len(to_index.get(i, ())) == 1 for i in ids)
            and all(len(owners[next(iter(to_index[i]))]) == 1 for i in ids)
        ):
            return hh, {m.person_id: next(iter(to_index[m.person_id])) for m in members}
    pytest.fail("no household of three or more that linkage got wholly right")


def test_the_household_view_lists_a_generated_household_and_how_they_relate(index_url, generated):
    hh, index_id = _a_clean_tenant_household(index_url, generated)
    lead = next(m for m in hh.members if m.role == "Lead Tenant")
    current, members = household_members(index_url, index_id[lead.person_id])
    assert current == index_id[lead.person_id]
    expected = {index_id[m.person_id]: m.role for m in hh.members if m.person_id != lead.person_id}
    listed = dict(zip(members["member_person_id"], members["relationship"], strict=True))
    assert listed == expected
    assert set(members["basis"]) == {"declared"}
    assert members["household_id"].nunique() == 1


def test_the_household_command_prints_the_members(index_url, generated, capsys):
    hh, index_id = _a_clean_tenant_household(index_url, generated)
    lead = next(m for m in hh.members if m.role == "Lead Tenant")
    assert main(["household", index_id[lead.person_id], "--database", index_url]) == 0
    out = capsys.readouterr().out
    for member in hh.members:
        if member is not lead:
            assert f"{index_id[member.person_id]}" in out
            assert member.role in out
    assert main(["household", "PNOSUCHPERSON", "--database", index_url]) == 2
    assert "not in the index" in capsys.readouterr().err


def test_every_person_has_at_most_one_current_household_and_relationships_are_on_indexed_people(
    index_url,
):
    household = _read(index_url, "SELECT * FROM household")
    assert not household["person_id"].duplicated().any()
    assert set(household["basis"]) <= {"uprn", "address"}
    related = _read(index_url, "SELECT * FROM relationship")
    persons = set(_read(index_url, "SELECT person_id FROM person_index")["person_id"])
    assert set(related["person_id"]) <= persons
    assert set(related["related_person_id"]) <= persons
    assert (related["basis"] == "declared").sum() > 0
    assert (related["person_id"] != related["related_person_id"]).all()
    current = _read(index_url, "SELECT * FROM person_address WHERE is_current")
    assert (current.groupby("person_id")["address_key"].nunique() == 1).all()


def test_every_golden_value_has_its_source_and_rule_and_the_others_are_kept(index_url):
    values = _read(index_url, "SELECT * FROM person_field_value")
    golden = values[values["is_golden"].astype(bool)]
    assert not golden.duplicated(["person_id", "field"]).any()
    assert golden["rule"].notna().all() and golden["source"].notna().all()
    assert values.loc[~values["is_golden"].astype(bool), "rule"].isna().all()
    persons = _read(index_url, "SELECT person_id, family_name FROM person_index")
    names = golden[golden["field"] == "family_name"][["person_id", "value"]]
    merged = persons.merge(names, on="person_id", how="left")
    assert (merged["family_name"].fillna("") == merged["value"].fillna("")).all()
    assert (values.groupby(["person_id", "field"]).size() > 1).any()  # alternatives kept


def test_the_analyst_tables_hold_no_direct_identifier(index_url):
    person = _read(index_url, "SELECT * FROM analyst_person")
    persons = _read(index_url, "SELECT person_id, postcode FROM person_index")
    assert len(person) == len(persons)
    assert set(person.columns).isdisjoint({"person_id", "given_name", "date_of_birth", "postcode"})
    assert not set(person["person_key"]) & set(persons["person_id"])
    assert set(person["age_band"].dropna()) <= {
        "0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"
    }  # fmt: skip
    districts = {p.split()[0] for p in persons["postcode"].dropna()}
    assert set(person["postcode_district"].dropna()) <= districts


def test_a_social_care_persons_ended_addresses_are_in_person_address_but_not_their_household(
    index_url, generated
):
    """Social care's ended addresses (previous_addresses) are published with their periods,
    never current; a household is who lives at the property now, so a former resident is not
    in it and not a co-resident of the people there."""
    sc = "social_care_case_management"
    with sqlite3.connect(generated / "social_care" / "case_management.db") as db:
        ended = pd.read_sql(
            "SELECT a.person_id, a.end_date FROM addresses a JOIN persons p USING (person_id) "
            "WHERE a.end_date IS NOT NULL AND p.is_deleted = 0",
            db,
        ).astype(str)
    assert len(ended)  # the generator writes address histories
    rows = _read(index_url, f"SELECT * FROM person_address WHERE source = '{sc}'")
    former = rows[~rows["is_current"].astype(bool)]
    published = set(zip(former["source_record_id"], former["to_date"].astype(str), strict=True))
    expected = set(zip(ended["person_id"], ended["end_date"], strict=True))
    assert expected & published and len(expected & published) >= 0.9 * len(expected)
    household = _read(index_url, "SELECT household_id, person_id FROM household")
    related = _read(index_url, "SELECT * FROM relationship WHERE basis = 'co-resident'")
    co = set(zip(related["person_id"], related["related_person_id"], strict=True))
    members = household.groupby("household_id")["person_id"].agg(set).to_dict()
    current = rows[rows["is_current"].astype(bool)]
    now = set(zip(current["person_id"], current["address_key"], strict=True))
    checked = 0
    for person, key in zip(former["person_id"], former["address_key"], strict=True):
        if (person, key) in now:  # moved back, or a record of theirs still gives it
            continue
        others = members.get(household_id(key), set()) - {person}
        assert person not in members.get(household_id(key), set())
        assert not {(person, o) for o in others} & co
        checked += bool(others)
    assert checked  # some former addresses have people living there now


def test_an_address_a_person_is_known_to_have_left_is_not_their_current_one(index_url):
    """A GP record still naming the flat whose tenancy housing ended (or that social care's
    history closed) does not seat the person in the household living there now, unless a
    record of theirs there is dated after they left (they moved back)."""
    rows = _read(index_url, "SELECT * FROM person_address")
    ended = rows[rows["to_date"].notna()]
    until = pd.to_datetime(ended["to_date"])
    left = until.groupby([ended["person_id"], ended["address_key"]]).max()
    current = rows[rows["is_current"].astype(bool)]
    started = pd.to_datetime(current["from_date"])
    since = started.groupby([current["person_id"], current["address_key"]]).max()
    assert len(left) and len(since)
    stale = [
        key
        for key, start in since.items()
        if key in left.index and (pd.isna(start) or start <= left[key])
    ]
    assert not stale, stale[:5]


def test_the_household_command_tells_no_address_from_living_alone(index_url, capsys):
    """A person with no current address is not said to live alone, and the worker reads
    how each member is related in words, with the direction of a declared relationship."""
    persons = _read(index_url, "SELECT person_id FROM person_index")["person_id"]
    housed = _read(index_url, "SELECT person_id, household_id FROM household")
    (homeless, *_) = sorted(set(persons) - set(housed["person_id"]))
    assert main(["household", homeless, "--database", index_url]) == 0
    out = capsys.readouterr().out
    assert "no current address is known" in out and "live there" not in out
    sizes = housed.groupby("household_id")["person_id"].transform("size")
    alone = housed.loc[sizes == 1, "person_id"].iloc[0]
    assert main(["household", alone, "--database", index_url]) == 0
    assert "no one else is known to live there" in capsys.readouterr().out
    mixed = _read(
        index_url,
        "SELECT person_id FROM household_members GROUP BY person_id "
        "HAVING COUNT(DISTINCT basis) = 2",
    )["person_id"].iloc[0]
    assert main(["household", mixed, "--database", index_url]) == 0
    out = capsys.readouterr().out
    assert "(declared by housing_tenancies" in out or "(declared by social_care" in out
    assert "lives there too; no relationship recorded" in out
    assert "(co-resident)" not in out and "A declared relationship is what that person is to" in out


@pytest.mark.postgres
def test_a_member_a_source_records_as_dead_is_not_listed_as_living_there(
    postgres_url, tmp_path, capsys
):
    """A GP record keeps the address of a patient who died: the view gives the member's date
    of death, and the command lists them apart from the people living there."""
    from care_etl.synthetic.generate import generate

    sources = tmp_path / "sources"
    generate(sources, people=400, seed=4, scans=0)  # two of its people have died
    run_pipeline(sources, CONTRACTS_DIR, postgres_url, tmp_path / "reports")
    truth = pd.read_csv(sources / "ground_truth.csv", dtype=str)
    links = _read(
        postgres_url, "SELECT source, source_record_id, person_id FROM person_source_link"
    )
    true_id = truth.merge(links).groupby("person_id")["true_person_id"].first()
    died = {p.person_id: p.date_of_death for p in build_population(400, 4).persons}
    rows = _read(postgres_url, "SELECT * FROM household_members")
    dead = rows[rows["date_of_death"].notna()]
    assert len(dead)
    for row in dead.itertuples(index=False):
        assert str(died[true_id[row.member_person_id]]) == row.date_of_death
    alive = rows[rows["date_of_death"].isna()]
    assert all(died[true_id[m]] is None for m in alive["member_person_id"] if m in true_id.index)
    row = dead.iloc[0]
    assert main(["household", row["person_id"], "--database", postgres_url]) == 0
    out = capsys.readouterr().out
    living, _, gone = out.partition("a source records their death (not there now):")
    assert row["member_person_id"] not in living
    assert f"{row['member_person_id']}" in gone and f"died {row['date_of_death']}" in gone


def _keys(*addresses: str) -> list[str]:
    """Household keys of addresses as standardisation leaves them, in one postcode, no UPRN."""
    cleaned = clean_address(pd.Series(addresses)).value
    frame = pd.DataFrame({"address": cleaned, "postcode": "E8 3QP", "uprn": None})
    return address_keys(frame).tolist()


@pytest.mark.parametrize(
    "one, other",
    [
        ("Flat 3, 12 High Street, London", "Flat 3 12 High Street"),
        ("Flat 3, 12 High Street", "Apartment 3, 12 High Street, Hackney"),
        ("12, High Street, London", "12 High Street"),
        ("12 High Street, Flat 3", "Flat 3, 12 High Street"),
    ],
)
def test_one_dwelling_written_two_ways_is_one_household(one: str, other: str) -> None:
    first, second = _keys(one, other)
    assert first == second


@pytest.mark.parametrize(
    "one, other",
    [
        ("12, High Street, London", "12, Low Road, London"),
        ("Flat 3, Rose Court, High Street", "Flat 3, Lily House, High Street"),
        ("Flat 3, 12 High Street", "Flat 4, 12 High Street"),
    ],
)
def test_two_dwellings_of_one_postcode_are_two_households(one: str, other: str) -> None:
    """A number or a flat alone was the whole key: neighbours in one postcode were listed
    as living together."""
    first, second = _keys(one, other)
    assert first != second
