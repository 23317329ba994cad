"""Address history as linkage evidence: former addresses and address periods.

A person who moved and has no NHS number looks like a namesake: same name and date of birth,
another address. When one record's source keeps the addresses the person left
(`previous_addresses`), the other record at one of them is evidence of one person who moved
(`former_address`); so is one record's address ending before the other's began
(`address_periods`): namesakes live at the same time, a mover one home after the other.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from care_etl.linkage import LinkageResult, LinkageSettings, link_records
from care_etl.linkage.compare import LEVELS, MISSING, compare
from care_etl.linkage.linker import census
from care_etl.linkage.prepare import prepare
from care_etl_tests.linkage.people import crowd, nhs_numbers, with_records

NHS_X, NHS_Y = nhs_numbers(np.random.default_rng(7), 2)
FORMER_LEVELS = LEVELS["former_address"]


def _history(*entries: dict) -> str:
    return json.dumps(list(entries))


OLD_HOME = {"address": "4 ORCHARD MEWS, LONDON", "postcode": "E5 9QD", "uprn": "100021000444"}

#: The records the tests look at, added to the crowd.
CASES = [
    # A mover: social care knows the old home; the GP record still shows it; no NHS numbers.
    dict(source="social_care", source_record_id="T-mover-sc", given_name="Marigold",
         family_name="Oyelaran", date_of_birth="1983-02-17", sex="F",
         address="19 BRAMBLE ROAD, LONDON", postcode="N16 7HX", uprn="100021000191",
         previous_addresses=_history(OLD_HOME)),
    dict(source="health", source_record_id="T-mover-gp", given_name="Marigold",
         family_name="Oyelaran", date_of_birth="1983-02-17", sex="F",
         address="4 ORCHARD MEWS, LONDON", postcode="E5 9QD"),
    # Namesakes: same name and date of birth, two homes, neither the other's former home.
    dict(source="social_care", source_record_id="T-namesake-1", given_name="Tamsin",
         family_name="Whitlow", date_of_birth="1971-08-30", sex="F",
         address="7 HEATH STREET, LONDON", postcode="N4 2PL", uprn="100021000702",
         previous_addresses=_history({"address": "30 QUAY LANE, LONDON", "postcode": "E2 8RS"})),
    dict(source="housing", source_record_id="T-namesake-2", given_name="Tamsin",
         family_name="Whitlow", date_of_birth="1971-08-30", sex="F",
         address="52 FENWICK ROAD, LONDON", postcode="E9 4LT", uprn="100021000520"),
    # Someone at a person's former address with the same name and birth date but another
    # valid NHS number: two people, whatever the address says.
    dict(source="social_care", source_record_id="T-left", given_name="Ottoline",
         family_name="Brackenbury", date_of_birth="1964-11-03", sex="F", nhs_number=NHS_X,
         address="11 KILN LANE, LONDON", postcode="E1 7AX",
         previous_addresses=_history({"address": "6 WHARF ROAD, LONDON", "postcode": "N1 6WR"})),
    dict(source="health", source_record_id="T-there", given_name="Ottoline",
         family_name="Brackenbury", date_of_birth="1964-11-03", sex="F", nhs_number=NHS_Y,
         address="6 WHARF ROAD, LONDON", postcode="N1 6WR"),
    # A mover known to no source with an address history: the tenancy at the old home
    # ended in May 2021, the GP registration at the new one is from September.
    dict(source="housing", source_record_id="T-left-tenancy", given_name="Fenella",
         family_name="Ravenscroft", date_of_birth="1991-12-08", sex="F",
         address="15 CANAL WALK, LONDON", postcode="N1 5RW", address_from="2016-04-01",
         address_to="2021-05-31"),
    dict(source="health", source_record_id="T-new-gp", given_name="Fenella",
         family_name="Ravenscroft", date_of_birth="1991-12-08", sex="F",
         address="3 LEA BRIDGE ROAD, LONDON", postcode="E5 9QB", recorded_on="01/09/2021"),
]  # fmt: skip


def _movers(people: pd.DataFrame) -> pd.DataFrame:
    """The crowd with an address history: every record dated; of each person seen at two
    postcodes, the first record knows the other postcode as a former one (as social care
    does), and the other record's address ended before the first's began (an ended
    tenancy)."""
    rng = np.random.default_rng(3)
    records = people.copy()
    days = pd.Timestamp("1995-01-01") + pd.to_timedelta(rng.integers(0, 10500, len(records)), "D")
    records["recorded_on"] = days.strftime("%d/%m/%Y")
    records["previous_addresses"] = records["address_from"] = records["address_to"] = None
    for _, rows in records.groupby("person"):
        if rows["postcode"].nunique() > 1:
            first, other = rows.index[0], rows.index[rows["postcode"] != rows["postcode"].iloc[0]]
            left = days[other[0]]
            entry = {"postcode": records.at[other[0], "postcode"], "address_to": str(left.date())}
            records.at[first, "previous_addresses"] = _history(entry)
            records.at[other[0], "address_to"] = str(left.date())
            arrived = left + pd.Timedelta(days=int(rng.integers(10, 400)))
            records.at[first, "address_from"] = str(arrived.date())
    return records.drop(columns="person")


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return with_records(_movers(crowd(n_people=300, seed=5)), CASES)


@pytest.fixture(scope="module")
def result(records: pd.DataFrame) -> LinkageResult:
    return link_records(records)


def _person(result: LinkageResult, record_id: str) -> str:
    return result.assignments.set_index("source_record_id").loc[record_id, "person_id"]


def _pair(result: LinkageResult, a: str, b: str) -> dict | None:
    """The evidence of a shown pair (link or review), None when the pair is not shown."""
    frame = pd.concat([result.links, result.review])
    ids = frame[["left_source_record_id", "right_source_record_id"]]
    rows = frame[ids.isin([a, b]).all(axis=1)]
    return json.loads(rows["evidence"].iloc[0]) if len(rows) else None


def test_a_mover_without_nhs_number_links_through_the_former_address(result) -> None:
    assert _person(result, "T-mover-sc") == _person(result, "T-mover-gp")
    evidence = _pair(result, "T-mover-sc", "T-mover-gp")
    field = evidence["fields"]["former_address"]
    assert field["level"] == "lived_there_before"
    assert field["weight"] > 5
    assert "moved away from" in field["says"]  # words a caseworker reads in review
    assert evidence["fields"]["address"]["level"] == "different"


def test_namesakes_at_unrelated_addresses_score_lower_than_the_mover(result) -> None:
    """This crowd's model links exact namesakes anyway (the generated data's does not): what
    the former address adds is what separates them."""
    namesakes = _pair(result, "T-namesake-1", "T-namesake-2")["fields"]["former_address"]
    mover = _pair(result, "T-mover-sc", "T-mover-gp")["fields"]["former_address"]
    assert namesakes["level"] == "different" and namesakes["weight"] < 0
    assert mover["weight"] - namesakes["weight"] > 10


def test_another_valid_nhs_number_at_a_former_address_is_another_person(records) -> None:
    # Even when the model alone would link anything.
    eager = link_records(records, LinkageSettings(auto_link_threshold=1e-9, review_threshold=1e-9))
    assert _person(eager, "T-left") != _person(eager, "T-there")
    assert _pair(eager, "T-left", "T-there") is None  # two NHS numbers settle it


def test_a_former_home_in_common_is_no_household_for_the_twin_rule(result) -> None:
    """The household census (which decides whether the twin and father and son rules hold)
    counts pairs at one dwelling now: twins, one of whose records shows the home the other's
    family left, are not such a pair, whatever the former address says."""
    pair = {"family_name": 0, "given_name": 4, "date_of_birth": 5, "former_address": 0}
    levels = pd.DataFrame([{**pair, "address": 4}, {**pair, "address": 0}], dtype=np.int8)
    model = result.model.model
    assert census(levels.iloc[:1], model, np.ones(1, bool), 1000).observed == 0
    assert census(levels.iloc[1:], model, np.ones(1, bool), 1000).observed == 1


def test_the_former_address_is_a_field_of_the_model(result) -> None:
    params = result.parameters.set_index(["field", "level"])
    weights = params.loc["former_address", "weight"]
    assert list(weights.index) == [*FORMER_LEVELS, "missing"]
    # The crowd's movers are known by postcode only: its levels' order is the data's.
    assert weights["lived_there_before"] > 5 and weights["former_postcode"] > 5
    assert weights["different"] < 0


def _levels(rows: list[dict], pairs: list[tuple[int, int]]) -> list[int]:
    records = pd.DataFrame(rows)
    records["source"] = "s"
    records["source_record_id"] = [str(i) for i in range(len(records))]
    prepared = prepare(records)
    index = pd.MultiIndex.from_tuples(pairs)
    return compare(prepared, index, ["address", "former_address"])["former_address"].tolist()


def test_levels_of_the_former_address() -> None:
    home = {"address": "4 ORCHARD MEWS, LONDON", "postcode": "E5 9QD", "uprn": "444"}
    rows = [
        # 0: moved from `home`; 1..: records elsewhere, in either order of the pair.
        dict(address="1 NEW ROAD, LONDON", postcode="N1 1AA", previous_addresses=_history(home)),
        dict(address="4 ORCHARD MEWS, LONDON", postcode="E5 9QD"),  # text
        dict(address="FLAT B, THE OLD HOUSE", postcode="E5 9QD", uprn="444"),  # UPRN
        dict(address="4 ORCHARD MEWS, LONDON", postcode="E5 9QD", uprn="555"),  # UPRN differs
        dict(address="9 ORCHARD MEWS, LONDON", postcode="E5 9QD"),  # a neighbour
        dict(address="2 ELSEWHERE, LONDON", postcode="N4 4NN"),
        dict(address="1 NEW ROAD, LONDON", postcode="N1 1AA"),  # the current home
        dict(address="5 OTHER PLACE, LONDON", postcode="E9 9EE"),  # no history either side
        dict(postcode=None),  # no address at all
    ]
    lived, postcode, different = range(3)
    found = _levels(rows, [(0, 1), (2, 0), (0, 3), (4, 0), (0, 5), (0, 6), (5, 7), (0, 8)])
    assert found == [lived, lived, postcode, postcode, different, MISSING, MISSING, MISSING]


def test_a_tenancy_ended_before_the_new_address_began_shows_a_move(result) -> None:
    evidence = _pair(result, "T-left-tenancy", "T-new-gp")
    field = evidence["fields"]["address_periods"]
    assert field["level"] == "one_after_the_other"
    assert field["weight"] > 0
    assert "as when someone moves" in field["says"]
    params = result.parameters.set_index(["field", "level"])["weight"]
    assert params["address_periods", "overlapping"] < 0
    # What the move adds is what sets this pair above the same pair seen at the same time.
    assert _person(result, "T-left-tenancy") == _person(result, "T-new-gp")


def _periods(rows: list[dict], pairs: list[tuple[int, int]]) -> list[int]:
    records = pd.DataFrame(rows)
    records["source"] = "s"
    records["source_record_id"] = [str(i) for i in range(len(records))]
    index = pd.MultiIndex.from_tuples(pairs)
    return compare(prepare(records), index, ["address", "address_periods"])[
        "address_periods"
    ].tolist()


def test_levels_of_the_address_periods() -> None:
    rows = [
        # 0: an ended tenancy; the others elsewhere (or there), dated or not.
        dict(address="15 CANAL WALK", address_from="2016-04-01", address_to="2021-05-31"),
        dict(address="3 LEA BRIDGE ROAD", address_from="2021-05-31"),  # arrived that day
        dict(address="3 LEA BRIDGE ROAD", recorded_on="01/09/2021"),  # seen after: a move
        dict(address="9 HIGH STREET", recorded_on="01/09/2020"),  # seen there before
        dict(address="9 HIGH STREET"),  # no date
        dict(address="15 CANAL WALK", recorded_on="01/09/2022"),  # the same address
        dict(address="1 NEW ROAD", recorded_on="01/09/2010", address_to="2012-01-01"),
    ]
    after, overlapping = range(2)
    found = _periods(rows, [(0, 1), (2, 0), (0, 3), (0, 4), (0, 5), (1, 2), (6, 1)])
    assert found == [after, after, overlapping, MISSING, MISSING, MISSING, after]


def test_history_print_changes_with_what_the_review_fingerprint_leaves_out() -> None:
    """The review fingerprint covers prepare.INPUT_FIELDS only; a cache of levels keyed by it
    must also key by history_print, which moves when an address history or period does."""
    base = dict(source="s", given_name="Ann", family_name="Lee", date_of_birth="1980-01-01")
    records = pd.DataFrame(
        [
            dict(base, source_record_id="1"),
            dict(base, source_record_id="2", address_from="2016-04-01"),
            dict(base, source_record_id="3", address_from="2016-04-01", address_to="2021-05-31"),
            dict(base, source_record_id="4", previous_addresses=_history(OLD_HOME)),
        ]
    )
    prints = prepare(records)["history_print"].tolist()
    assert prints[0] == 0  # nothing beyond the fingerprinted fields: keys unchanged
    assert len(set(prints)) == 4
    again = prepare(records.iloc[::-1].reset_index(drop=True))["history_print"].tolist()
    assert again == prints[::-1]  # a function of the record alone, the same on every run
