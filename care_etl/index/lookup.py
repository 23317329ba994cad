"""`care-etl find` and `care-etl person`: look a person up, and see all the index holds on them.

A worker knows a name, a date of birth, an NHS number or a postcode, never a person_id. `find`
matches every value the index keeps for a person (person_field_value: former surnames and
aliases, other dates of birth, previous postcodes too), so someone recorded under a maiden
name is found under either. `person` shows one person's best-known values with the source and
rule behind each, the other values sources hold, every record with how it was linked and
where it was read, their addresses with periods, the services involved and the ids merged
into theirs: what every service already knows, in one place.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd
import sqlalchemy as sa

from care_etl.errors import CareEtlError
from care_etl.index.access import log_access
from care_etl.index.build import NAME_FIELDS, name_words
from care_etl.index.cli import (
    asked_for,
    current_person,
    database_option,
    day_text,
    full_name,
    index_tables,
    index_url,
    is_known,
    person_services,
    reading,
)

#: Persons `find` lists at most; more means the search should be narrowed.
MAX_FOUND = 20


def add_commands(commands: Any) -> None:
    find = commands.add_parser(
        "find", help="persons by NHS number, name, date of birth or postcode (any values held)"
    )
    find.add_argument("--nhs", help="NHS number (spaces allowed)")
    find.add_argument("--name", help="names in any order, any case; former names match too")
    find.add_argument(
        "--similar",
        action="store_true",
        help="with --name: also names that sound alike (Smyth, Smith), are a short form of "
        "the same forename (Bill, William) or are one typing error away (Wilkinsom), listed "
        "after the exact matches and marked ~",
    )
    find.add_argument("--born", help="date of birth, YYYY-MM-DD or DD/MM/YYYY")
    find.add_argument("--postcode", help="postcode, any case, with or without the space")
    database_option(find)
    find.set_defaults(handler=_find)

    person = commands.add_parser("person", help="all the index holds on a person, with sources")
    person.add_argument("person_id", help="a person_id of person_index (a retired one is followed)")
    database_option(person)
    person.set_defaults(handler=_person)


# --- find -----------------------------------------------------------------------------------


def search_terms(
    nhs: str | None, name: str | None, born: str | None, postcode: str | None
) -> dict[str, Any]:
    """The search's values as the index stores them; a value that cannot be one is refused in
    one line (never echoed back: it is someone's personal data)."""
    from care_etl.standardise import clean_dates, clean_nhs_number, clean_postcode, match_key

    terms: dict[str, Any] = {}
    if nhs is not None:
        terms["nhs_number"] = clean_nhs_number(pd.Series([nhs])).value.iloc[0]
        if pd.isna(terms["nhs_number"]):
            raise CareEtlError("--nhs: not an NHS number (10 digits with a valid check digit)")
    if born is not None:
        day = clean_dates(pd.Series([born])).value.iloc[0]
        if pd.isna(day):
            raise CareEtlError("--born: not a date of birth (give YYYY-MM-DD or DD/MM/YYYY)")
        terms["date_of_birth"] = day.date().isoformat()
    if postcode is not None:
        cleaned = clean_postcode(pd.Series([postcode])).value.iloc[0]
        terms["postcode"] = (
            cleaned if isinstance(cleaned, str) else " ".join(postcode.upper().split())
        )
    if name is not None:
        key = match_key(pd.Series([name])).iloc[0]
        if not isinstance(key, str):
            raise CareEtlError("--name: no letters in it")
        terms["name"] = set(key.split())
    if not terms:
        raise CareEtlError("give at least one of --nhs, --name, --born, --postcode")
    return terms


def find_persons(url: str, terms: dict[str, Any], similar: bool = False) -> pd.DataFrame:
    """Persons any of whose kept values match every term, with their best-known values;
    column `similar` marks those found only by a similar name (`similar` True: `_named`),
    listed after the others."""
    with reading(url) as conn:
        tables = index_tables(conn, url)
        found: set[str] | None = None
        for field in ("nhs_number", "date_of_birth", "postcode"):
            if field in terms:
                ids = _holding(conn, field, terms[field])
                found = ids if found is None else found & ids
        alike: set[str] = set()
        if "name" in terms:
            found, alike = _named(conn, tables, terms["name"], found, similar)
        persons = _persons(conn, sorted((found or set()) | alike))
    persons["similar"] = persons["person_id"].isin(alike)
    return persons.sort_values("similar", kind="stable")


def _holding(conn: sa.Connection, field: str, value: str) -> set[str]:
    query = sa.text(
        "SELECT DISTINCT person_id FROM person_field_value WHERE field = :f AND value = :v"
    )
    return {r[0] for r in conn.execute(query, {"f": field, "v": value})}


#: `--similar` takes a word of the index one typing error from a searched word of at least
#: this many letters that starts with the same two letters: a shorter word is one error from
#: too many others (Ann, Ian, Jan, Dan).
TYPO_MIN_LETTERS = 4


def _named(
    conn: sa.Connection, tables: set[str], wanted: set[str], among: set[str] | None, similar: bool
) -> tuple[set[str], set[str]]:
    """Persons whose names, all values taken together, hold every wanted word; and, when
    `similar`, the other persons holding for every wanted word one that sounds like it, is
    a short form of the same forename or is one typing error from it (Smyth for Smith, Bill
    for William, Wilkinsom for Wilkinson)."""
    from care_etl.linkage.nicknames import same_forename
    from care_etl.standardise import name_sound

    if among is not None and not among:
        return set(), set()
    index = _NameWords(conn, tables, among)
    forms = {w: index.near(w) | same_forename(w) if similar else {w} for w in wanted}
    words = sorted(wanted)
    sounds = dict(zip(words, name_sound(pd.Series(words)), strict=True)) if similar else {}
    rows = index.rows(set().union(*forms.values()), set(sounds.values()) - {None})
    if among is not None:
        rows = rows[rows["person_id"].isin(among)]
    by_word = rows.groupby("word")["person_id"].agg(set).to_dict()
    by_sound = rows.groupby("sound")["person_id"].agg(set).to_dict()
    exact = _every([by_word.get(w, set()) for w in wanted])
    if not similar:
        return exact, set()
    alike = _every(
        [set().union(by_sound.get(sounds[w], set()), *(by_word.get(f, set()) for f in forms[w]))
         for w in wanted]
    )  # fmt: skip
    return exact, alike - exact


def _every(holders: list[set[str]]) -> set[str]:
    return set.intersection(*holders) if holders else set()


class _NameWords:
    """person_name_word, read by index. An index published by an earlier release has no
    such rows: its names (of `among`'s persons only, when another term has narrowed the
    search) are read and split here instead, once."""

    TABLE = "person_name_word"

    def __init__(self, conn: sa.Connection, tables: set[str], among: set[str] | None) -> None:
        self.conn = conn
        self.frame: pd.DataFrame | None = None
        query = sa.text(f"SELECT 1 FROM {self.TABLE} LIMIT 1")
        if self.TABLE not in tables or not conn.execute(query).first():
            self.frame = name_words(_names(conn, among))

    def rows(self, words: set[str], sounds: set[str]) -> pd.DataFrame:
        """word, person_id, sound of the rows holding one of these words or sounds."""
        if self.frame is not None:
            return self.frame[self.frame["word"].isin(words) | self.frame["sound"].isin(sounds)]
        query = sa.text(
            f"SELECT word, person_id, sound FROM {self.TABLE} WHERE word IN :w OR sound IN :s"
        ).bindparams(  # typed: PostgreSQL reads an empty list as integers otherwise
            sa.bindparam("w", expanding=True, type_=sa.Text),
            sa.bindparam("s", expanding=True, type_=sa.Text),
        )
        return pd.read_sql(query, self.conn, params={"w": sorted(words), "s": sorted(sounds)})

    def near(self, word: str) -> set[str]:
        """The words held one typing error (OSA) from `word` that start with its first two
        letters, read as a range of the word index; none for a short word."""
        from rapidfuzz.distance import OSA

        if len(word) < TYPO_MIN_LETTERS:
            return set()
        low, high = word[:2], word[:1] + chr(ord(word[1]) + 1)
        if self.frame is not None:
            held = self.frame["word"]
            found = set(held[(held >= low) & (held < high)])
        else:
            query = f"SELECT DISTINCT word FROM {self.TABLE} WHERE word >= :lo AND word < :hi"
            found = set(self.conn.execute(sa.text(query), {"lo": low, "hi": high}).scalars())
        return {w for w in found if OSA.distance(w, word, score_cutoff=1) <= 1}


def _names(conn: sa.Connection, among: set[str] | None) -> pd.DataFrame:
    """person_id, field, value of every name person_field_value keeps (of `among` only)."""
    fields = ", ".join(f"'{f}'" for f in NAME_FIELDS)
    sql = f"SELECT person_id, field, value FROM person_field_value WHERE field IN ({fields})"
    if among is None:
        return pd.read_sql(sa.text(sql), conn)
    columns = ["person_id", "field", "value"]
    return _for_ids(conn, f"{sql} AND person_id IN :ids", sorted(among), columns)


def _for_ids(conn: sa.Connection, sql: str, ids: list[str], columns: list[str]) -> pd.DataFrame:
    """The rows of `sql` (its `:ids` bound to a list) for these ids, read 500 at a time:
    SQLite caps the parameters of one statement."""
    query = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    frames = [pd.DataFrame(columns=columns)]
    for start in range(0, len(ids), 500):
        frames.append(pd.read_sql(query, conn, params={"ids": ids[start : start + 500]}))
    return pd.concat(frames, ignore_index=True)


def _persons(conn: sa.Connection, ids: list[str]) -> pd.DataFrame:
    """The persons' best-known values, in name order."""
    columns = "person_id, given_name, family_name, date_of_birth, postcode, source_count"
    sql = f"SELECT {columns} FROM person_index WHERE person_id IN :ids"
    persons = _for_ids(conn, sql, ids, columns.split(", "))
    by = ["family_name", "given_name", "date_of_birth", "person_id"]
    return persons.sort_values(by, na_position="last", key=lambda c: c.astype(str))


def _find(args: argparse.Namespace) -> int:
    url = index_url(args)
    terms = search_terms(args.nhs, args.name, args.born, args.postcode)
    if args.similar and "name" not in terms:
        raise CareEtlError("--similar: give --name too (it widens a search by name)")
    persons = find_persons(url, terms, similar=args.similar)
    searched = (
        f"by {', '.join(terms)}{' (similar names)' if args.similar else ''}: "
        f"{len(persons)} found"
    )  # the fields, never the values
    log_access(url, "find", persons["person_id"].head(MAX_FOUND), detail=searched)
    if persons.empty:
        print("no person in the index matches")
        if "name" in terms and not args.similar:
            print("--similar also finds names spelt another way (Smyth, Kathryn, Bill, a typo)")
        return 1
    for row in persons.head(MAX_FOUND).to_dict("records"):
        name = full_name(row["given_name"], row["family_name"])
        print(
            f"{row['person_id']}  {name:<30} {day_text(row['date_of_birth']):<10}  "
            f"{row['postcode'] or '':<8}  {row['source_count']} source(s)"
            f"{'  ~ similar name' if row['similar'] else ''}"
        )
    if len(persons) > MAX_FOUND:
        print(
            f"... and {len(persons) - MAX_FOUND} more: narrow the search with more of "
            "--nhs, --name, --born, --postcode"
        )
    print("care-etl person <person_id> shows all the index holds on one of them")
    return 0


# --- person ---------------------------------------------------------------------------------


def _person(args: argparse.Namespace) -> int:
    wanted, url = asked_for(args)
    with reading(url) as conn:
        current, names = current_person(conn, url, wanted)
        held = {
            table: pd.read_sql(sa.text(query), conn, params={"p": current})
            for table, query in _QUERIES.items()
            if table in names
        }
    services = person_services(url, [current]).get(current)
    log_access(url, "person", [current])
    if current.upper() != wanted.upper():
        print(f"{wanted} was merged into {current}; showing {current}")
    _print_person(current, held, services)
    return 0


_QUERIES = {
    "person_field_value": "SELECT field, value, is_golden, rule, sources, record_count "
    "FROM person_field_value WHERE person_id = :p ORDER BY field, is_golden DESC, value",
    "person_source_link": "SELECT source, source_record_id, link_type, match_probability, "
    "lineage FROM person_source_link WHERE person_id = :p ORDER BY source, source_record_id",
    "person_address": "SELECT source, address, postcode, from_date, to_date, is_current "
    "FROM person_address WHERE person_id = :p ORDER BY is_current DESC, from_date DESC",
    "person_id_history": "SELECT old_person_id, change, changed_at FROM person_id_history "
    "WHERE new_person_id = :p AND old_person_id <> :p ORDER BY changed_at",
}


def _print_person(person_id: str, held: dict[str, pd.DataFrame], services: str | None) -> None:
    values = held.get("person_field_value", pd.DataFrame())
    golden = values[values["is_golden"].astype(bool)] if len(values) else values
    first = dict(zip(golden.get("field", []), golden.get("value", []), strict=True))
    born = f" (born {first['date_of_birth']})" if first.get("date_of_birth") else ""
    print(f"{person_id} {full_name(first.get('given_name'), first.get('family_name'))}{born}")
    print("Best-known values (the sources that hold each, and the rule that chose it):")
    for row in golden.to_dict("records"):
        print(f"  {row['field']:<14} {row['value']:<40} {row['sources']} ({row['rule']})")
    others = values[~values["is_golden"].astype(bool)] if len(values) else values
    if len(others):
        print("Other values the sources hold:")
        for row in others.to_dict("records"):
            print(f"  {row['field']:<14} {row['value']:<40} {row['sources']}")
    _print_records(held.get("person_source_link", pd.DataFrame()))
    _print_addresses(held.get("person_address", pd.DataFrame()))
    if services:
        print(f"Services involved: {services}")
    merged = held.get("person_id_history", pd.DataFrame())
    if len(merged):
        print("Ids merged into this one: " + ", ".join(dict.fromkeys(merged["old_person_id"])))
    print(f"care-etl household {person_id} shows who lives with them")


def _print_records(links: pd.DataFrame) -> None:
    print(f"Records ({len(links)}):")
    for row in links.to_dict("records"):
        probability = row["match_probability"]
        how = row["link_type"] + ("" if pd.isna(probability) else f" {probability:.3f}")
        print(f"  {row['source']:<30} {row['source_record_id']:<14} {how:<14} {row['lineage']}")


def _print_addresses(addresses: pd.DataFrame) -> None:
    if addresses.empty:
        return
    print("Addresses:")
    for row in addresses.to_dict("records"):
        when = " to ".join(v for v in (day_text(row["from_date"]), day_text(row["to_date"])) if v)
        kind = "current" if row["is_current"] else "former "
        where = ", ".join(str(v) for v in (row["address"], row["postcode"]) if is_known(v))
        print(f"  {kind}  {where:<60} {when:<24} {row['source']}")
