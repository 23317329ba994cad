"""`care-etl contracts diff OLD NEW`: every change between two versions of a contract, classified.

Each change is breaking or not (a reader or a consumer of the index would see different data),
and needs information governance (IG) review or not. The classes:

| change | breaking | IG review |
| --- | --- | --- |
| column-removed, object-removed, source-removed | yes | no |
| column-retyped (logicalType, physicalType, date format) | yes | no |
| column-required (made required), primary-key, mapping (canonical field), id | yes | no |
| server (removed, narrower path, format, delimiter) | yes | no |
| server-location-changed (a new server, wider or other path, host, database, type...) | yes | yes |
| column-added-special-category, column-added-personal | no | yes |
| column-added-unclassified (no classification, or not one of the four) | no | yes |
| column-added (public or internal), object-added with no personal or unclassified column | no | no |
| classification-raised, classification-lowered | no | yes |
| classification-removed (a column left unclassified), classification-added | no | yes |
| purpose-changed, usage-changed | no | yes |
| lawful-basis-changed, special-category-condition-changed | no | yes |
| sharing-agreement-changed (the `dataSharingAgreement` custom property) | no | yes |
| retention-longer | no | yes |
| retention-shorter | no | no |
| roles-changed (who may see the data) | no | yes |
| history-changed (a lookup's `historyAs`: rows set aside read as a person's history) | no | yes |
| rows-read-changed (a table's `role`, `withdrawnWhen` or `rowFilter`: which rows are read) | no | yes |
| confidentiality-basis-changed (the `confidentialityBasis` custom property) | no | yes |
| controller-changed (the `controller` custom property: who decides why and how) | no | yes |
| approver-changed (the IG approver in `team.members` named, removed, demoted or edited) | no | yes |
| source-added (a new contract) | no | yes |
| governed-block-unreadable (`description`, `customProperties`, `slaProperties` or `team` with an item named twice, or not a list of named items) | no | yes |
| other (descriptions, a server's description or environment, quality rules, other team members, tags, version...) | no | no |

A block removed or added whole (`description`, `customProperties`, `slaProperties`, `team`) is
compared item by item, so deleting `customProperties` is seen as deleting the lawful basis.

Exit codes (so CI can require a sign-off): 0 = no change needs IG review; 1 = at least one
change needs IG review; 2 = the contracts could not be compared (a one-line error).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from care_etl.contracts.lint import APPROVER_ROLE
from care_etl.contracts.model import read_document
from care_etl.errors import ContractError

EXIT_NO_REVIEW = 0
EXIT_REVIEW = 1
RANK = {"public": 0, "internal": 1, "personal": 2, "special-category": 3}
PERSONAL = ("personal", "special-category")
_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "w": 7,
    "week": 7,
    "weeks": 7,
    "m": 30,
    "month": 30,
    "months": 30,
    "y": 365,
    "yr": 365,
    "year": 365,
    "years": 365,
}
#: The units a retention may be written in: what `care-etl retention` can count.
RETENTION_UNITS = tuple(_DAYS)
_KEYS = ("name", "property", "role", "username", "server")  # what identifies a list item
_GOVERNED_BLOCKS = ("description", "customProperties", "slaProperties", "team")
_SERVER_NOT_WHERE = ("description", "environment", "format", "delimiter")  # say nothing of where
#: A server's words for people: changing them changes neither what is read nor how.
_SERVER_WORDS = ("description", "environment")
#: A table's custom properties that decide which of its rows reach the index.
_WHICH_ROWS = {
    "role": "whether and how the table is read (a role no reader reads, read as a lookup...)",
    "withdrawnWhen": "which rows are withdrawn (counted, never indexed)",
    "rowFilter": "which rows are read as current",
}
_BREAKING_COLUMN_KEYS = {
    "logicalType": "column-retyped",
    "physicalType": "column-retyped",
    "logicalTypeOptions/format": "column-retyped",
    "primaryKey": "primary-key",
    "primaryKeyPosition": "primary-key",
    "customProperties/canonical/value": "mapping",
    "customProperties/canonical": "mapping",
}


@dataclass(frozen=True)
class Change:
    contract: str
    path: str
    kind: str
    breaking: bool
    review: bool
    message: str

    def line(self) -> str:
        tags = ", ".join(
            t for t, on in (("BREAKING", self.breaking), ("IG REVIEW", self.review)) if on
        )
        return f"{self.contract}: {self.path}: {self.kind}: {self.message}" + (
            f" [{tags}]" if tags else ""
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_paths(old: Path, new: Path) -> list[Change]:
    """Changes between two contract files, or two folders of contracts paired by id."""
    if old.is_dir() != new.is_dir():
        raise ContractError(f"compare two files or two folders, not {old} and {new}")
    if old.is_dir():
        return _diff_folders(old, new)
    return diff_documents(read_document(old), read_document(new))


def review_needed(changes: list[Change]) -> bool:
    return any(c.review for c in changes)


def _diff_folders(old: Path, new: Path) -> list[Change]:
    before = {str(d.get("id")): d for d in map(read_document, sorted(old.glob("*.yaml")))}
    after = {str(d.get("id")): d for d in map(read_document, sorted(new.glob("*.yaml")))}
    changes = []
    for cid in sorted(before.keys() | after.keys()):
        if cid not in after:
            changes.append(
                Change(
                    cid, "(contract)", "source-removed", True, False, "the source is no longer read"
                )
            )
        elif cid not in before:
            changes.append(
                Change(
                    cid,
                    "(contract)",
                    "source-added",
                    False,
                    True,
                    "a new source of data: sign off its purpose and lawful basis",
                )
            )
        else:
            changes += diff_documents(before[cid], after[cid])
    return changes


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two contract documents, each classified."""
    name = str(new.get("id") or old.get("id") or "(contract)")
    before, after = _opened(_keyed(old)), _opened(_keyed(new))
    unkeyed = _unkeyed(name, before, after)
    for change in unkeyed:  # compared whole, once: not as one 'other' change
        before.pop(change.path, None)
        after.pop(change.path, None)
    changes = unkeyed + [
        _team_change(name, path, a, b, before, after)
        if path.split("/")[0] == "team"
        else _classify(name, path, a, b)
        for path, a, b in _walk(before, after, "")
    ]
    return _merge_retention(name, changes, old, new)


def _unkeyed(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """A governed block that is not a mapping of named items (a property given twice, such as a
    second lawfulBasis; or not a list at all) cannot be compared item by item: it changed, and
    what it now says may be a new lawful basis or retention, so it needs review whole."""
    return [
        Change(
            name,
            block,
            "governed-block-unreadable",
            False,
            True,
            "an item named twice, or not a list of named items: compared whole, read both versions",
        )
        for block in _GOVERNED_BLOCKS
        if before.get(block) != after.get(block)
        and not (isinstance(before.get(block), dict) and isinstance(after.get(block), dict))
    ]


def _opened(document: dict[str, Any]) -> dict[str, Any]:
    """A governed block removed or added whole is compared item by item: deleting
    `customProperties` deletes the lawful basis (review), it is not one 'other' change."""
    empty = {k: {} for k in _GOVERNED_BLOCKS if not document.get(k)}
    return {**document, **empty}


def _keyed(value: Any) -> Any:
    """Lists of named items become mappings by name, so a reorder is no change."""
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        for key in _KEYS:
            names = [i.get(key) for i in value]
            if all(n is not None for n in names) and len(set(map(str, names))) == len(names):
                return {str(i[key]): _keyed(i) for i in value}
    if isinstance(value, list):
        return [_keyed(v) for v in value]
    return value


_MISSING = object()


def _walk(a: Any, b: Any, path: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a.keys(), *(k for k in b if k not in a)]:
            sub = f"{path}/{key}" if path else str(key)
            yield from _walk(a.get(key, _MISSING), b.get(key, _MISSING), sub)
    elif a != b:
        yield path, a, b


def _classify(name: str, path: str, old: Any, new: Any) -> Change:
    parts = path.split("/")
    added, removed = old is _MISSING, new is _MISSING
    if parts[0] == "schema":
        return _schema_change(name, path, parts, old, new, added, removed)
    top = "/".join(parts[:2])
    if top == "description/purpose":
        return Change(
            name, path, "purpose-changed", False, True, "the purpose of processing changed"
        )
    if top == "description/usage":
        return Change(name, path, "usage-changed", False, True, "how the data are used changed")
    if path.startswith("customProperties/lawfulBasis"):
        return Change(
            name,
            path,
            "lawful-basis-changed",
            False,
            True,
            f"lawful basis {_text(_value(old))} -> {_text(_value(new))}",
        )
    if path.startswith("customProperties/specialCategoryCondition"):
        return Change(
            name,
            path,
            "special-category-condition-changed",
            False,
            True,
            f"Article 9 / Schedule 1 condition {_text(_value(old))} -> {_text(_value(new))}",
        )
    if top == "customProperties/controller":
        return Change(
            name,
            path,
            "controller-changed",
            False,
            True,
            f"data controller {_text(_value(old))} -> {_text(_value(new))}",
        )
    if top == "customProperties/confidentialityBasis":
        return Change(
            name,
            path,
            "confidentiality-basis-changed",
            False,
            True,
            f"common law duty of confidentiality {_text(_value(old))} -> {_text(_value(new))}",
        )
    if top == "customProperties/dataSharingAgreement":
        return Change(
            name,
            path,
            "sharing-agreement-changed",
            False,
            True,
            f"data sharing agreement {_text(_value(old))} -> {_text(_value(new))}: "
            "who the data is shared with, on what terms",
        )
    if path.startswith("slaProperties/retention"):
        return Change(name, path, "retention", False, False, "retention changed")
    if parts[0] == "roles":
        return Change(name, path, "roles-changed", False, True, "who may see the data changed")
    if parts[0] == "servers" and not _reads_no_more(parts, old, new):
        return Change(
            name,
            path,
            "server-location-changed",
            True,
            True,
            f"{_was(old) if not isinstance(old, dict) else '(server)'} -> "
            f"{_was(new) if not isinstance(new, dict) else '(server)'}: "
            "may read files or tables not read before (new data)",
        )
    if parts[0] == "servers" and "/".join(parts[2:]) in _SERVER_WORDS:
        return Change(name, path, "other", False, False, _summary(old, new))
    if parts[0] == "servers" or parts[0] in ("id", "kind"):
        return Change(
            name,
            path,
            "server" if parts[0] == "servers" else "id",
            True,
            False,
            f"{_was(old)} -> {_was(new)}" if not isinstance(old, dict) else "changed",
        )
    return Change(name, path, "other", False, False, _summary(old, new))


def _reads_no_more(parts: list[str], old: Any, new: Any) -> bool:
    """Whether a server change surely brings in no data not read before: a server or setting
    removed, a description or format, or a path matching only files the old one matched.
    Anything else (a host, database, type, a wider or other path, a new server) may."""
    key = "/".join(parts[2:])
    if new is _MISSING or key in _SERVER_NOT_WHERE:
        return True
    return key == "path" and _glob_within(new, old)


def _glob_within(new: Any, old: Any) -> bool:
    """Whether every file the pattern `new` finds (as Path.glob reads it), `old` finds too.

    Sure only for patterns of plain text and `*`, compared segment by segment (`*` stops at
    `/`): then each `*` of `new` lies in a `*` of `old`. `?`, `[...]` and `**` count as wider.
    """
    if not (isinstance(new, str) and isinstance(old, str)):
        return False
    news, olds = new.split("/"), old.split("/")
    plain = all(not set("?[]") & set(s) and "**" not in s for s in [*news, *olds])
    return plain and len(news) == len(olds) and all(map(fnmatchcase, news, olds))


def _team_change(name: str, path: str, old: Any, new: Any, before: Any, after: Any) -> Change:
    """The IG approver signs off the processing: naming another, or none, or editing their
    entry needs review. Other team changes do not."""
    parts = path.split("/")
    if len(parts) > 3:  # inside one member's entry: whose, before or after?
        touched = any(_approvers(_at(d, parts[:3])) for d in (before, after))
    else:
        touched = _approvers(old) != _approvers(new)
    if touched:
        return Change(
            name,
            path,
            "approver-changed",
            False,
            True,
            f"information governance approver changed: {_summary(old, new)}",
        )
    return Change(name, path, "other", False, False, _summary(old, new))


def _approvers(value: Any) -> list[str]:
    """The team members in `value` with the IG approver role, as text to compare."""
    if isinstance(value, list):
        return sorted(a for v in value for a in _approvers(v))
    if not isinstance(value, dict):
        return []
    mine = [repr(sorted(value.items(), key=str))] if _role(value) == APPROVER_ROLE else []
    return sorted(mine + [a for v in value.values() for a in _approvers(v)])


def _role(member: dict[str, Any]) -> str:
    return str(member.get("role", "")).strip().lower()


def _at(document: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


def _schema_change(
    name: str, path: str, parts: list[str], old: Any, new: Any, added: bool, removed: bool
) -> Change:
    if len(parts) == 2:  # a whole object
        if removed:
            return Change(
                name, path, "object-removed", True, False, "a table or sheet is no longer read"
            )
        return _object_added(name, path, new)
    if len(parts) == 4 and parts[2] == "properties":  # a whole column
        if removed:
            return Change(name, path, "column-removed", True, False, "column removed")
        level = (new or {}).get("classification")
        if not _classified(level):
            return Change(
                name,
                path,
                "column-added-unclassified",
                False,
                True,
                f"new column with no valid classification ({'(none)' if level is None else level})"
                ": it may be personal data until classified",
            )
        if level == "special-category":
            return Change(
                name,
                path,
                "column-added-special-category",
                False,
                True,
                "new special-category column: needs an Article 9 condition",
            )
        if level in PERSONAL:
            return Change(
                name,
                path,
                "column-added-personal",
                False,
                True,
                "new personal column: check it is needed (data minimisation)",
            )
        return Change(name, path, "column-added", False, False, f"new {level} column")
    if parts[2:4] == ["customProperties", "historyAs"]:
        return Change(
            name,
            path,
            "history-changed",
            False,
            True,
            f"history read {_was(_value(old))} -> {_was(_value(new))}: more or less of a "
            "person's past in "
            "processing (data minimisation)",
        )
    if len(parts) >= 4 and parts[2] == "customProperties" and parts[3] in _WHICH_ROWS:
        return Change(
            name,
            path,
            "rows-read-changed",
            False,
            True,
            f"{parts[3]} {_was(_value(old))} -> {_was(_value(new))}: {_WHICH_ROWS[parts[3]]}",
        )
    if len(parts) > 4 and parts[2] == "properties":
        key = "/".join(parts[4:])
        if key == "classification":
            return _classification_change(name, path, old, new)
        if key in _BREAKING_COLUMN_KEYS:
            return Change(
                name, path, _BREAKING_COLUMN_KEYS[key], True, False, f"{_was(old)} -> {_was(new)}"
            )
        if key == "required" and new is True:
            return Change(
                name,
                path,
                "column-required",
                True,
                False,
                "column made required: feeds without it will be blocked",
            )
    return Change(name, path, "other", False, False, _summary(old, new))


def _classification_change(name: str, path: str, old: Any, new: Any) -> Change:
    """Any change of level needs review; a column left with none may now be personal data
    that nothing says is, so that is its own kind, not a 'raise'."""
    if _unset(new):
        kind = "classification-removed"
    elif _unset(old):
        kind = "classification-added"
    elif RANK.get(str(new), 4) > RANK.get(str(old), -1):
        kind = "classification-raised"
    else:
        kind = "classification-lowered"
    shown = [_was(_MISSING if _unset(v) else v) for v in (old, new)]
    return Change(name, path, kind, False, True, f"classification {shown[0]} -> {shown[1]}")


def _unset(value: Any) -> bool:
    return value is _MISSING or value is None or str(value).strip() == ""


def _object_added(name: str, path: str, new: Any) -> Change:
    """A new table needs review when any column is personal or unclassified (it may be personal)."""
    levels = [p.get("classification") for p in _items((new or {}).get("properties"))]
    personal = sum(level in PERSONAL for level in levels)
    unclassified = sum(not _classified(level) for level in levels)
    return Change(
        name,
        path,
        "object-added",
        False,
        bool(personal or unclassified),
        f"new table or sheet with {personal} personal column(s)"
        + (f" and {unclassified} unclassified" if unclassified else ""),
    )


def _classified(level: Any) -> bool:
    """Every column must be one of the four levels; anything else may be personal data."""
    return isinstance(level, str) and level in RANK


def _items(value: Any) -> list[dict[str, Any]]:
    """The items of a keyed list (a mapping by name) or of a list left as it was."""
    items = value.values() if isinstance(value, dict) else value or []
    return [i for i in items if isinstance(i, dict)]


def _merge_retention(
    name: str, changes: list[Change], old: dict[str, Any], new: dict[str, Any]
) -> list[Change]:
    """Retention changes become one change: longer (review) or shorter."""
    kept = [c for c in changes if c.kind != "retention"]
    if len(kept) == len(changes):
        return changes
    before, after = retention_days(old), retention_days(new)
    if after is None or before is None or after > before:
        change = Change(
            name,
            "slaProperties/retention",
            "retention-longer",
            False,
            True,
            f"retention {retention_period(old)} -> {retention_period(new)}",
        )
    else:
        change = Change(
            name,
            "slaProperties/retention",
            "retention-shorter",
            False,
            False,
            f"retention {retention_period(old)} -> {retention_period(new)}",
        )
    return [*kept, change]


def _retention(document: dict[str, Any]) -> dict[str, Any] | None:
    for sla in document.get("slaProperties") or []:
        if isinstance(sla, dict) and sla.get("property") == "retention":
            return sla
    return None


def retention_days(document: dict[str, Any]) -> float | None:
    """The contract's retention in days (None: none declared, or unreadable); retention
    (care_etl.index.retention) reads periods as diff compares them."""
    sla = _retention(document)
    try:
        return float(sla["value"]) * _DAYS[str(sla.get("unit", "d")).lower()] if sla else None
    except (KeyError, TypeError, ValueError):
        return None


def retention_period(document: dict[str, Any]) -> str:
    """The retention as the contract writes it ("6 y"), for messages."""
    sla = _retention(document)
    return f"{sla.get('value')} {sla.get('unit', '')}".strip() if sla else "(none)"


def _value(item: Any) -> Any:
    """A custom property's value ({'property': ..., 'value': v} -> v)."""
    return item.get("value", item) if isinstance(item, dict) else item


def _was(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any) -> str:
    """A governance value in full (IG signs the words, and an agreement's reference is at its
    end), on one line."""
    return "(none)" if value is _MISSING else " ".join(str(value).split())


def _summary(old: Any, new: Any) -> str:
    if old is _MISSING:
        return "added"
    if new is _MISSING:
        return "removed"
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return "changed"
    return f"{_was(old)} -> {_was(new)}"
