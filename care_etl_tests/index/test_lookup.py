"""`care-etl find` and `care-etl person` on the index of a generated population: a worker
finds a person by what they know (an NHS number written with spaces, a former surname) and
sees every record and value the index holds on them, with its source."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.cli import main
from care_etl.index.lookup import MAX_FOUND
from care_etl_tests.index.test_households import _read

pytestmark = pytest.mark.slow


def _marked(capsys) -> dict[str, bool]:
    """Person id -> whether `find` marked it a similar name, of the persons it printed, in
    the order printed."""
    lines = capsys.readouterr().out.splitlines()
    return {
        line.split()[0]: line.endswith("~ similar name")
        for line in lines
        if line.startswith("P") and "  " in line
    }


def _found(capsys) -> list[str]:
    """The person ids `find` printed."""
    return list(_marked(capsys))


def test_find_by_an_nhs_number_written_with_spaces_gives_the_person_holding_it(
    generated_run, capsys
):
    url = generated_run["url"]
    person = _read(url, "SELECT person_id, nhs_number FROM person_index WHERE nhs_number <> ''")
    row = person.iloc[len(person) // 2]
    nhs = f"{row['nhs_number'][:3]} {row['nhs_number'][3:6]} {row['nhs_number'][6:]}"
    assert main(["find", "--nhs", nhs, "--database", url]) == 0
    holders = _read(
        url,
        f"SELECT DISTINCT person_id FROM person_field_value "
        f"WHERE field = 'nhs_number' AND value = '{row['nhs_number']}'",
    )
    assert sorted(_found(capsys)) == sorted(holders["person_id"]) and row["person_id"] in set(
        holders["person_id"]
    )


def test_find_by_a_name_a_source_no_longer_uses_finds_the_person(generated_run, capsys):
    """Former surnames and aliases (other_names), in any order and case."""
    url = generated_run["url"]
    former = _read(
        url,
        "SELECT o.person_id, o.value AS other, g.value AS given, p.date_of_birth "
        "FROM person_field_value o "
        "JOIN person_field_value g ON g.person_id = o.person_id AND g.field = 'given_name' "
        "AND g.is_golden JOIN person_index p ON p.person_id = o.person_id "
        "WHERE o.field = 'other_names' AND o.value NOT LIKE '% %'",
    ).iloc[0]
    name = f"{former['other'].lower()} {former['given'].upper()}"
    assert main(["find", "--name", name, "--database", url]) == 0
    assert former["person_id"] in _found(capsys)
    born = pd.Timestamp(former["date_of_birth"]).strftime("%d/%m/%Y")
    assert main(["find", "--name", name, "--born", born, "--database", url]) == 0
    assert _found(capsys) == [former["person_id"]]


def test_find_lists_at_most_a_page_and_says_how_many_more(generated_run, capsys):
    url = generated_run["url"]
    busiest = _read(
        url,
        "SELECT postcode, COUNT(*) AS n FROM person_index WHERE postcode IS NOT NULL "
        "GROUP BY postcode ORDER BY n DESC LIMIT 1",
    ).iloc[0]
    assert main(["find", "--postcode", busiest["postcode"].replace(" ", "").lower(),
                 "--database", url]) == 0  # fmt: skip
    out = capsys.readouterr().out
    shown = [line for line in out.splitlines() if line.startswith("P")]
    assert len(shown) == min(busiest["n"], MAX_FOUND)
    if busiest["n"] > MAX_FOUND:
        assert f"... and {busiest['n'] - MAX_FOUND} more" in out


def test_find_refuses_what_cannot_be_searched_in_one_line_without_echoing_it(generated_run, capsys):
    url = generated_run["url"]
    for args, said in (
        (["--nhs", "9434765918"], "--nhs: not an NHS number"),  # wrong check digit
        (["--born", "31/02/1950"], "--born: not a date of birth"),
        ([], "give at least one of --nhs, --name, --born, --postcode"),
    ):
        assert main(["find", *args, "--database", url]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1
        assert "9434765918" not in err and "31/02/1950" not in err
    assert main(["find", "--name", "Nobody Atall", "--database", url]) == 1
    assert "no person in the index matches" in capsys.readouterr().out


def test_person_shows_each_best_known_value_with_its_sources_and_rule_and_every_record(
    generated_run, capsys
):
    url = generated_run["url"]
    person_id = _read(
        url, "SELECT person_id FROM person_index ORDER BY source_count DESC, person_id LIMIT 1"
    )["person_id"][0]
    assert main(["person", person_id, "--database", url]) == 0
    out = capsys.readouterr().out
    golden = _read(
        url,
        f"SELECT field, value, rule, sources FROM person_field_value "
        f"WHERE person_id = '{person_id}' AND is_golden",
    )
    for row in golden.to_dict("records"):
        assert any(
            line.split()[:1] == [row["field"]]
            and row["value"] in line
            and f"({row['rule']})" in line
            and row["sources"] in line
            for line in out.splitlines()
        ), row["field"]
    links = _read(
        url,
        f"SELECT source_record_id, lineage FROM person_source_link WHERE person_id = '{person_id}'",
    )
    assert f"Records ({len(links)}):" in out
    for row in links.to_dict("records"):
        assert row["lineage"] in out and row["source_record_id"] in out
    assert f"care-etl household {person_id}" in out
    assert main(["person", "PNOSUCHPERSON", "--database", url]) == 2
    assert "not in the index" in capsys.readouterr().err


def _respelt(surname: str) -> str | None:
    """The surname with its second vowel changed (Wilkinson, Wilkensen): it sounds alike."""
    vowels = [i for i, ch in enumerate(surname) if ch in "aeiou" and i > 0]
    if len(vowels) < 2:
        return None
    i = vowels[1]
    return surname[:i] + ("e" if surname[i] != "e" else "a") + surname[i + 1 :]


def test_find_similar_finds_a_surname_heard_not_read_and_marks_it(generated_run, capsys):
    """A name spelt as it sounds finds nobody exactly (and says --similar would look wider);
    with --similar the person is listed, marked as found by a similar name."""
    from care_etl.standardise import match_key, name_sound

    url = generated_run["url"]
    persons = _read(url, "SELECT person_id, given_name, family_name FROM person_index")
    held = set(_read(url, "SELECT word FROM person_name_word")["word"])
    for row in persons.dropna().to_dict("records"):
        respelt = _respelt(row["family_name"].lower())
        keys = match_key(pd.Series([row["family_name"], respelt]))
        if respelt and keys[1] not in held and len(set(name_sound(keys))) == 1:
            break
    else:
        pytest.fail("no surname to respell")
    name = f"{row['given_name']} {respelt}"
    assert main(["find", "--name", name, "--database", url]) == 1
    out = capsys.readouterr().out
    assert "no person in the index matches" in out and "--similar" in out
    assert main(["find", "--name", name, "--similar", "--database", url]) == 0
    assert _marked(capsys)[row["person_id"]] is True


def test_find_similar_finds_a_forename_by_its_short_form_after_the_exact_matches(
    generated_run, capsys
):
    from care_etl.linkage.nicknames import SHORT_FORMS

    url = generated_run["url"]
    persons = _read(url, "SELECT person_id, given_name, family_name FROM person_index").dropna()
    row = persons[persons["given_name"].isin(SHORT_FORMS)].iloc[0]
    short = SHORT_FORMS[row["given_name"]][0]
    assert main(["find", "--name", f"{short} {row['family_name']}", "--similar",
                 "--database", url]) == 0  # fmt: skip
    marked = _marked(capsys)
    holds_short = _read(
        url,
        "SELECT 1 FROM person_name_word WHERE person_id = :p AND word = :w",
        p=row["person_id"],
        w=short.upper(),
    )
    assert marked[row["person_id"]] is holds_short.empty
    flags = list(marked.values())
    assert flags == sorted(flags)  # exact matches first


def test_person_name_word_holds_every_word_of_every_name_kept(generated_run):
    from care_etl.index.build import NAME_FIELDS
    from care_etl.standardise import match_key

    url = generated_run["url"]
    fields = ", ".join(f"'{f}'" for f in NAME_FIELDS)
    names = _read(url, f"SELECT person_id, value FROM person_field_value WHERE field IN ({fields})")
    words = match_key(names["value"]).str.split().explode().dropna()
    expected = set(zip(names["person_id"].loc[words.index], words, strict=True))
    table = _read(url, "SELECT person_id, word, sound FROM person_name_word")
    assert set(zip(table["person_id"], table["word"], strict=True)) == expected
    assert len(table) == len(expected) and table["sound"].notna().all()


def test_find_by_name_on_an_index_published_before_name_words_reads_the_names(
    generated_run, tmp_path, capsys
):
    """An index an earlier release published has no person_name_word rows until its next
    run: a search by name reads the names instead, and finds the same persons."""
    import shutil

    url = generated_run["url"]
    row = _read(url, "SELECT given_name, family_name, date_of_birth FROM person_index "
                     "WHERE date_of_birth IS NOT NULL LIMIT 1").iloc[0]  # fmt: skip
    name = f"{row['given_name']} {row['family_name']}"
    older = tmp_path / "older.db"
    shutil.copy(url.removeprefix("sqlite:///"), older)
    engine = sa.create_engine(f"sqlite:///{older}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM person_name_word"))
    engine.dispose()
    for also in ([], ["--born", str(row["date_of_birth"])[:10]]):  # narrowed first, or not
        found = []
        for database in (url, f"sqlite:///{older}"):
            assert main(["find", "--name", name, "--similar", *also, "--database", database]) == 0
            found.append(_marked(capsys))
        assert found[0] == found[1] and found[0]


def test_find_similar_without_a_name_is_refused_in_one_line(generated_run, capsys):
    assert main(["find", "--born", "1980-01-01", "--similar",
                 "--database", generated_run["url"]]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--similar: give --name too" in err and len(err.strip().splitlines()) == 1


def _mistyped(word: str) -> str:
    """The word with its last letter changed: one typing error (Wilkinson, Wilkinsom)."""
    return word[:-1] + ("q" if word[-1].lower() != "q" else "x")


def test_find_similar_finds_a_surname_with_one_typing_error_but_not_a_short_word(
    generated_run, capsys
):
    """A long surname mistyped by one letter, which sounds otherwise, is found with
    --similar; a three-letter word is not widened by typos (one error from too many)."""
    from care_etl.standardise import match_key, name_sound

    url = generated_run["url"]
    persons = _read(url, "SELECT person_id, given_name, family_name FROM person_index").dropna()
    held = set(_read(url, "SELECT word FROM person_name_word")["word"])

    def mistypable(row: dict, field: str, long: bool) -> bool:
        """Whether the name, mistyped, is held by nobody and does not sound like itself."""
        keys = match_key(pd.Series([row[field], _mistyped(row[field])]))
        size = len(keys[0]) >= 5 if long else len(keys[0]) == 3
        return (
            " " not in keys[0] and size and keys[1] not in held
            and len(set(name_sound(keys))) == 2
        )  # fmt: skip

    rows = persons.to_dict("records")
    row = next(r for r in rows if mistypable(r, "family_name", long=True))
    name = f"{row['given_name']} {_mistyped(row['family_name'])}"
    assert main(["find", "--name", name, "--database", url]) == 1
    capsys.readouterr()
    assert main(["find", "--name", name, "--similar", "--database", url]) == 0
    assert _marked(capsys)[row["person_id"]] is True
    short = next(r for r in rows if mistypable(r, "given_name", long=False))
    name = f"{_mistyped(short['given_name'])} {short['family_name']}"
    main(["find", "--name", name, "--similar", "--database", url])
    assert short["person_id"] not in _marked(capsys)
