"""What a contract says about reading its source, in plain dataclasses.

The conventions (interfaces.md): a column maps to the canonical person model with the custom
property `canonical`; the record id is the `primaryKey` columns in `primaryKeyPosition` order;
a date column declares its strptime format in `logicalTypeOptions.format`. Our own additions,
all custom properties: a schema object's `role` (`person` holds the records; `lookup` is joined
onto them through an ODCS relationship; `relationship` and `involvement` tables are read for
the index by care_etl.sources.declared), `withdrawnWhen` (a boolean column marking
soft-deleted rows), and a lookup's `rowFilter` (`<column> is null`), `latestBy` (which row
wins when several match) and `historyAs` (the extended field that carries the rows the
filter sets aside, such as ended addresses as `previous_addresses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from care_etl.canonical import CANONICAL_FIELDS, EXTENDED_FIELDS, PREVIOUS_ADDRESSES
from care_etl.contracts.schema import schema_errors
from care_etl.errors import ContractError

SUPPORTED_FORMATS = ("csv", "xlsx", "sqlite", "paper")
_FILTER = re.compile(r"^\s*(?P<column>.+?)\s+is\s+(?P<negate>not\s+)?null\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    name: str
    id: str | None
    canonical: str | None
    logical_type: str | None
    date_format: str | None
    primary_key_position: int | None
    required: bool
    unique: bool
    classification: str | None
    references: str | None  # "object_id.column_id" this column points at, if any
    critical: bool = False  # criticalDataElement: its checks block the feed when they fail
    pattern: str | None = None  # logicalTypeOptions.pattern, a regular expression
    quality: tuple[dict[str, Any], ...] = ()  # the column's own ODCS quality rules
    trust: int | None = None  # custom property `trust`: this source's rank for the field


@dataclass(frozen=True)
class SourceObject:
    name: str
    id: str
    physical_name: str
    role: str
    columns: tuple[Column, ...]
    custom: dict[str, Any] = field(default_factory=dict)
    quality: tuple[dict[str, Any], ...] = ()  # the object's own ODCS quality rules

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column_by_id(self, column_id: str) -> Column | None:
        return next((c for c in self.columns if c.id == column_id), None)

    def column_by_name(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Contract:
    id: str
    name: str
    version: str
    file: Path
    format: str
    location: str
    objects: tuple[SourceObject, ...]
    custom: dict[str, Any]
    server: dict[str, Any]
    document: dict[str, Any]

    @property
    def person_object(self) -> SourceObject:
        return next(o for o in self.objects if o.role == "person")

    @property
    def lookups(self) -> list[SourceObject]:
        return [o for o in self.objects if o.role == "lookup"]

    def object_by_id(self, object_id: str) -> SourceObject | None:
        return next((o for o in self.objects if o.id == object_id), None)

    @property
    def record_id_columns(self) -> list[str]:
        keyed = [c for c in self.person_object.columns if c.primary_key_position is not None]
        return [c.name for c in sorted(keyed, key=lambda c: c.primary_key_position or 0)]

    @property
    def date_formats(self) -> dict[str, list[str]]:
        """Canonical date field -> the formats its columns declare."""
        formats: dict[str, list[str]] = {}
        for obj in (self.person_object, *self.lookups):
            for col in obj.columns:
                if col.canonical and col.date_format:
                    formats.setdefault(col.canonical, []).append(col.date_format)
        return formats


def load_contracts(directory: Path, *, check_governance: bool = True) -> list[Contract]:
    """Every `*.yaml` contract in the folder, sorted by id; ids must be unique.

    `check_governance=False` is for a command that deletes rather than reads (retention): a
    contract missing its lawful basis must stop a run, not the deletion of what is past
    retention.
    """
    if not directory.is_dir():
        raise ContractError(f"{directory}: contracts folder not found")
    contracts = [
        load_contract(p, check_governance=check_governance)
        for p in sorted(directory.glob("*.yaml"))
    ]
    if not contracts:
        raise ContractError(f"{directory}: no *.yaml data contracts found")
    seen: dict[str, Path] = {}
    for c in contracts:
        if c.id in seen:
            raise ContractError(f"{c.file}: id '{c.id}' is already used by {seen[c.id].name}")
        seen[c.id] = c.file
    return sorted(contracts, key=lambda c: c.id)


def load_contract(
    path: Path, *, check_schema: bool = True, check_governance: bool = True
) -> Contract:
    """Parse and check one contract; any problem is a one-line ContractError naming the file.

    `check_schema=False` skips the ODCS schema, and `check_governance=False` what information
    governance must find in it, for callers that check those themselves (lint).
    """
    document = read_document(path)
    problems = schema_errors(document) if check_schema else []
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ContractError(f"{path}: not a valid ODCS contract: {problems[0]}{more}")
    server = _server(path, document)
    objects = tuple(_object(path, o) for o in document.get("schema") or [])
    contract = Contract(
        id=str(document["id"]),
        name=str(document.get("name") or document["id"]),
        version=str(document.get("version")),
        file=path,
        format=str(server.get("format", "")).lower(),
        location=str(server.get("path", "")),
        objects=objects,
        custom=_custom(document.get("customProperties")),
        server=_custom(server.get("customProperties")),
        document=document,
    )
    _check_reading(contract)
    if check_governance:
        _check_governance(path, document)
    return contract


#: What a source is not read without: approving the contract approves the processing, so a
#: contract that does not say why, on what lawful basis (and, for special-category data,
#: under which Article 9 condition and setting aside the duty of confidence how), how
#: sensitive each column is, or for how long in a period `care-etl retention` can count, is
#: refused: what interfaces.md says every contract holds. The rest of lint's rules (owner,
#: roles, the confidentiality basis, critical data elements...) are findings for review, not
#: reasons to stop a run: a contract written to that promise must still be read.
REQUIRED_TO_RUN = (
    "purpose",
    "lawful-basis",
    "special-category-condition",
    "classification",
    "personal-classified",
    "retention",
)


def _check_governance(path: Path, document: dict[str, Any]) -> None:
    from care_etl.contracts.lint import governance_findings

    findings = [
        f
        for f in governance_findings(document, str(path))
        if f.rule in REQUIRED_TO_RUN and not (f.rule == "retention" and f.path == "slaProperties")
    ]
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise ContractError(
            f"{path}: {first.path}: {first.message}{more}; the source is not read without it "
            f"(fix: {first.fix}; care-etl contracts lint {path} lists every finding)"
        )


def read_document(path: Path) -> dict[str, Any]:
    """A contract file as YAML, or a one-line error naming the file and what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ContractError(f"{path}: not UTF-8 text (save the contract as UTF-8)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ContractError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise ContractError(f"{path}: a contract must be a YAML mapping")
    return document


def _server(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    """The server we read from: the first `local` one (a file or folder under the sources)."""
    for server in document.get("servers") or []:
        if server.get("type") == "local":
            return server
    raise ContractError(f"{path}: servers: needs one server with type 'local' and a path")


def _object(path: Path, raw: dict[str, Any]) -> SourceObject:
    custom = _custom(raw.get("customProperties"))
    name = str(raw["name"])
    return SourceObject(
        name=name,
        id=str(raw.get("id") or name),
        physical_name=str(raw.get("physicalName") or name),
        role=str(custom.get("role", "person")),
        columns=tuple(_column(path, name, p) for p in raw.get("properties") or []),
        custom=custom,
        quality=tuple(raw.get("quality") or ()),
    )


def _column(path: Path, object_name: str, raw: dict[str, Any]) -> Column:
    custom = _custom(raw.get("customProperties"))
    canonical = custom.get("canonical")
    if canonical is not None and canonical not in (*CANONICAL_FIELDS, *EXTENDED_FIELDS):
        raise ContractError(
            f"{path}: schema/{object_name}/{raw['name']}: unknown canonical field '{canonical}'"
        )
    options = raw.get("logicalTypeOptions") or {}
    if options.get("format") is not None:
        _check_date_format(str(options["format"]), f"{path}: schema/{object_name}/{raw['name']}")
    references = None
    for rel in raw.get("relationships") or []:
        references = _reference(str(rel.get("to", "")))
    return Column(
        name=str(raw["name"]),
        id=raw.get("id"),
        canonical=canonical,
        logical_type=raw.get("logicalType"),
        date_format=options.get("format"),
        primary_key_position=raw.get("primaryKeyPosition", 1) if raw.get("primaryKey") else None,
        required=bool(raw.get("required", False)),
        unique=bool(raw.get("unique", False)),
        classification=raw.get("classification"),
        references=references,
        critical=bool(raw.get("criticalDataElement", False)),
        pattern=options.get("pattern"),
        quality=tuple(raw.get("quality") or ()),
        trust=_rank(custom.get("trust"), f"{path}: schema/{object_name}/{raw['name']}"),
    )


#: strptime's directives for dates (and times, which a date column may carry).
_DATE_DIRECTIVES = frozenset("aAwdbBmyYHIpMSfzZjUWGuV%")
_DIRECTIVE = re.compile(r"%(.?)")


def _check_date_format(fmt: str, where: str) -> None:
    """A format strptime would refuse, or that reads no day, month or year, fails here, in
    one line, not on every row as an unreadable date."""
    found = _DIRECTIVE.findall(fmt)
    unknown = sorted({d for d in found if d not in _DATE_DIRECTIVES})
    if unknown:
        directives = ", ".join(f"%{d}" if d else "a lone %" for d in unknown)
        raise ContractError(
            f"{where}: logicalTypeOptions.format '{fmt}': {directives} is not a strptime "
            "directive (dates use %d, %m, %b, %Y, %y)"
        )
    if not set(found) & set("dmbBYyj"):
        raise ContractError(
            f"{where}: logicalTypeOptions.format '{fmt}' reads no day, month or year"
        )


def _rank(value: Any, where: str) -> int | None:
    """A `trust` rank for index/golden.py: a whole number, 1 the most trusted."""
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise ContractError(f"{where}: trust must be a whole number (1 = most trusted)") from None


def _reference(target: str) -> str | None:
    """'schema/tenancies/properties/tenancy_ref' or 'tenancies.tenancy_ref' -> 'tenancies.tenancy_ref'."""
    parts = target.split("#")[-1].strip("/").split("/")
    if len(parts) == 4 and parts[0] == "schema" and parts[2] == "properties":
        return f"{parts[1]}.{parts[3]}"
    if "." in target:
        return target
    return None


def _custom(items: Any) -> dict[str, Any]:
    return {str(i["property"]): i.get("value") for i in items or [] if "property" in i}


def _check_reading(contract: Contract) -> None:
    """What our readers need beyond the standard, each a one-line error naming the fix."""
    where = contract.file
    register = contract.custom.get("currentRegister", False)
    if not isinstance(register, bool):
        raise ContractError(
            f"{where}: customProperties/currentRegister: {register!r} is not true or false "
            "(true: the extract lists the people the system holds now)"
        )
    if contract.format not in SUPPORTED_FORMATS:
        raise ContractError(
            f"{where}: servers: format '{contract.format}' is not one we read "
            f"(use one of {', '.join(SUPPORTED_FORMATS)})"
        )
    if not contract.location:
        raise ContractError(f"{where}: servers: the local server needs a path")
    people = [o for o in contract.objects if o.role == "person"]
    if len(people) != 1:
        raise ContractError(
            f"{where}: schema: exactly one object must hold the records "
            f"(customProperties role: person, or a single object); found {len(people)}"
        )
    if not contract.record_id_columns:
        raise ContractError(
            f"{where}: schema/{people[0].name}: mark the record id column with primaryKey: true"
        )
    if not any(c.canonical for o in contract.objects for c in o.columns):
        raise ContractError(
            f"{where}: no column maps to the person model "
            "(add customProperties: [{property: canonical, value: <field>}])"
        )
    for lookup in contract.lookups:
        row_filter = lookup.custom.get("rowFilter")
        if row_filter and not _FILTER.match(str(row_filter)):
            raise ContractError(
                f"{where}: schema/{lookup.name}: rowFilter must read '<column> is null' "
                "or '<column> is not null'"
            )
        history = lookup.custom.get("historyAs")
        if history and (history != PREVIOUS_ADDRESSES or not row_filter):
            raise ContractError(
                f"{where}: schema/{lookup.name}: historyAs must be '{PREVIOUS_ADDRESSES}', "
                "on a lookup with a rowFilter (the rows it sets aside are the history)"
            )


def parse_row_filter(text: str) -> tuple[str, bool]:
    """'end_date is null' -> ('end_date', True); 'x is not null' -> ('x', False)."""
    match = _FILTER.match(text)
    if not match:
        raise ContractError(f"rowFilter '{text}' must read '<column> is null'")
    return match["column"], match["negate"] is None
