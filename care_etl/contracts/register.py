"""`care-etl contracts register`: the register of processing, generated from the contracts.

Information governance keeps it (UK GDPR Article 30 record of processing): per source, its
purpose, usage and limits, lawful basis and special-category condition, retention, who owns and
approves it, the roles that may see it, and every field with its classification and what the
pipeline uses it for (data minimisation: a personal field read and used for nothing is
counted in the summary; a table no reader reads says so). Written as
Markdown (to review in a pull request) and HTML (to publish). The same input gives the same
bytes, so a change to the register shows only what changed in the contracts.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from care_etl.contracts.lint import (
    APPROVER_ROLE,
    CONFIDENTIALITY,
    OWNER_ROLE,
    PERSONAL,
    columns,
    contract_files,
    custom,
)
from care_etl.contracts.model import read_document
from care_etl.contracts.schema import schema_errors
from care_etl.errors import ContractError

GOVERNANCE_PROPERTIES = ("lawfulBasis", "specialCategoryCondition")
LABELS = {
    "dataSharingAgreement": "Data sharing agreement",
    "confidentialityBasis": "Common law duty of confidentiality",
    "controller": "Data controller",
}
#: A column read that nothing uses, and one in a table the pipeline does not read.
UNUSED = "nothing (read, not used)"
NOT_READ = "not read"
#: What the register shows where a contract is silent on what IG signs.
NOT_SET = "NOT SET"


@dataclass(frozen=True)
class Field:
    table: str
    column: str
    classification: str
    critical: bool
    person_field: str
    required: bool
    description: str
    used_for: str = ""


@dataclass(frozen=True)
class Entry:
    """One source as the register shows it."""

    id: str
    name: str
    version: str
    status: str
    purpose: str
    usage: str
    limitations: str
    lawful_basis: str
    special_condition: str
    other: dict[str, str]
    retention: str
    owner: str
    approver: str
    roles: list[dict[str, str]]
    fields: list[Field]

    @property
    def personal_fields(self) -> list[Field]:
        return [f for f in self.fields if f.classification in PERSONAL]

    @property
    def personal_unused(self) -> list[Field]:
        """Personal fields the pipeline reads and uses for nothing (data minimisation)."""
        return [f for f in self.personal_fields if f.used_for == UNUSED]


def load_entries(targets: list[Path]) -> list[Entry]:
    """One entry per contract file, sorted by id."""
    entries = []
    for path in contract_files(targets):
        document = read_document(path)
        problems = schema_errors(document)
        if problems:  # the register reads the standard's shapes (description a mapping...)
            raise ContractError(
                f"{path}: not a valid ODCS contract: {problems[0]} (care-etl contracts lint "
                f"{path} lists every finding)"
            )
        entries.append(entry(document))
    return sorted(entries, key=lambda e: e.id)


def entry(document: dict[str, Any]) -> Entry:
    description = document.get("description") or {}
    props = custom(document.get("customProperties"))
    members = (document.get("team") or {}).get("members") or []
    special = any(p.get("classification") == "special-category" for _, p in columns(document))
    return Entry(
        id=str(document.get("id")),
        name=str(document.get("name") or document.get("id")),
        version=str(document.get("version", "")),
        status=str(document.get("status", "")),
        purpose=_text(description.get("purpose")) or NOT_SET,
        usage=_text(description.get("usage")) or NOT_SET,
        limitations=_text(description.get("limitations")) or NOT_SET,
        lawful_basis=_text(props.get("lawfulBasis")) or NOT_SET,
        special_condition=_text(props.get("specialCategoryCondition"))
        or (f"{NOT_SET} (special-category fields held)" if special else "none held"),
        other={k: _text(v) for k, v in props.items() if k not in GOVERNANCE_PROPERTIES}
        | (
            {CONFIDENTIALITY: f"{NOT_SET} (special-category fields held)"}
            if special and not _text(props.get(CONFIDENTIALITY))
            else {}
        ),
        retention=_retention(document),
        owner=_member(members, OWNER_ROLE),
        approver=_member(members, APPROVER_ROLE),
        roles=[
            {
                "role": _text(r.get("role")),
                "access": _text(r.get("access")),
                "description": _text(r.get("description")),
                "approvers": ", ".join(
                    _text(r.get(k))
                    for k in ("firstLevelApprovers", "secondLevelApprovers")
                    if r.get(k)
                ),
            }
            for r in document.get("roles") or []
            if isinstance(r, dict)
        ],
        fields=_fields(document),
    )


def _fields(document: dict[str, Any]) -> list[Field]:
    uses = field_uses(document)
    fields = []
    for obj in document.get("schema") or []:
        for prop in obj.get("properties") or []:
            fields.append(
                Field(
                    table=_text(obj.get("name")),
                    column=_text(prop.get("name")),
                    classification=_text(prop.get("classification")) or "UNCLASSIFIED",
                    critical=bool(prop.get("criticalDataElement")),
                    person_field=_text(custom(prop.get("customProperties")).get("canonical")),
                    required=bool(prop.get("required")),
                    description=_text(prop.get("description")),
                    used_for=uses.get((_text(obj.get("name")), _text(prop.get("name"))), ""),
                )
            )
    return fields


def field_uses(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(table, column) -> what the pipeline uses the column for, as the readers read the
    contract (care_etl.sources, care_etl.sources.declared): a person field, the record id, a
    join, the withdrawn flag, a row filter, a declared relationship, a quality check; or
    nothing; or not read at all (a table of a role no reader reads)."""
    objects = [o for o in document.get("schema") or [] if isinstance(o, dict)]
    targets = set()  # (object id or name, column id or name) a relationship points at
    for obj in objects:
        for prop in obj.get("properties") or []:
            for rel in prop.get("relationships") or [] if isinstance(prop, dict) else []:
                parts = str(rel.get("to", "")).split("#")[-1].strip("/").split("/")
                if len(parts) == 4 and parts[0] == "schema":
                    targets.add((parts[1], parts[3]))
    uses: dict[tuple[str, str], str] = {}
    for obj in objects:
        props = [p for p in obj.get("properties") or [] if isinstance(p, dict)]
        extra = custom(obj.get("customProperties"))
        role = str(extra.get("role", "person"))
        checked = _checked_columns(obj)
        relation = [p for p in props if p.get("relationships")][:2]
        kind = next((p for p in props if not p.get("relationships")), None)
        for prop in props:
            name, found = _text(prop.get("name")), []
            canonical = custom(prop.get("customProperties")).get("canonical")
            if role == "relationship":
                if prop in relation:
                    found.append("relationship: the two persons")
                elif prop is kind:
                    found.append("relationship: what one is to the other (households)")
                uses[(_text(obj.get("name")), name)] = "; ".join(found) or NOT_READ
                continue
            if role == "involvement":
                uses[(_text(obj.get("name")), name)] = _involvement_use(prop, props)
                continue
            if role not in ("person", "lookup"):
                uses[(_text(obj.get("name")), name)] = NOT_READ
                continue
            if canonical:
                found.append(f"person field {canonical}")
            if prop.get("primaryKey") and role == "person":
                found.append("record id")
            keys = {
                (o, c) for o in (obj.get("id"), obj.get("name")) for c in (prop.get("id"), name)
            }
            if prop.get("relationships") or keys & targets:
                found.append("join")
            if name == extra.get("withdrawnWhen"):
                found.append("withdrawn flag (rows not indexed)")
            if name and name in str(extra.get("rowFilter", "")).split():
                found.append("row filter")
            if name and name == extra.get("latestBy"):
                found.append("picks the latest row")
            if name in checked or prop.get("quality"):
                found.append("quality check")
            uses[(_text(obj.get("name")), name)] = "; ".join(found) or UNUSED
    return uses


#: What each of an involvement object's other columns is, in order (sources.declared).
INVOLVEMENT_USES = ("the service", "when it started", "when it ended", "its status")


def _involvement_use(prop: dict[str, Any], props: list[dict[str, Any]]) -> str:
    """What the index uses an involvement object's column for (sources.declared's order)."""
    if prop is next((p for p in props if p.get("relationships")), None):
        return "involvement: the person"
    rest = [p for p in props if not p.get("relationships") and not p.get("primaryKey")]
    if any(prop is p for p in rest[: len(INVOLVEMENT_USES)]):
        what = INVOLVEMENT_USES[next(i for i, p in enumerate(rest) if p is prop)]
        return f"involvement: {what} (service_involvement, household)"
    return NOT_READ


def _checked_columns(obj: dict[str, Any]) -> set[str]:
    """Columns an object-level quality rule names."""
    named: set[str] = set()
    for rule in obj.get("quality") or []:
        arguments = rule.get("arguments") if isinstance(rule, dict) else None
        value = arguments.get("properties") if isinstance(arguments, dict) else None
        named.update(map(str, value if isinstance(value, list) else [value] if value else []))
    return named


def _member(members: list[Any], role: str) -> str:
    found = [
        f"{m.get('name') or m.get('username')} ({m.get('username')})"
        for m in members
        if isinstance(m, dict) and str(m.get("role", "")).lower() == role
    ]
    return "; ".join(found) or "NOT NAMED"


def _retention(document: dict[str, Any]) -> str:
    for sla in document.get("slaProperties") or []:
        if isinstance(sla, dict) and sla.get("property") == "retention":
            unit = {"y": "years", "m": "months", "d": "days"}.get(
                str(sla.get("unit")), sla.get("unit")
            )
            text = f"{sla.get('value')} {unit}"
            return f"{text}: {_text(sla['description'])}" if sla.get("description") else text
    return "NOT SET"


def label(key: str) -> str:
    """A custom property as a reader names it: IG reads the register, not the YAML
    ('dataSharingAgreement' -> 'Data sharing agreement'; an unknown camelCase key is split)."""
    if key in LABELS:
        return LABELS[key]
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", key)
    text = " ".join(w if w.isupper() else w.lower() for w in spaced.replace("_", " ").split())
    return text[:1].upper() + text[1:] if text else key


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def write_register(entries: list[Entry], out: Path) -> tuple[Path, Path]:
    """register.md and register.html in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "register.md", out / "register.html"
    md.write_text(markdown(entries), encoding="utf-8")
    page.write_text(html_page(entries), encoding="utf-8")
    return md, page


# --- Markdown ---------------------------------------------------------------------------------


def markdown(entries: list[Entry]) -> str:
    lines = [
        "# Register of processing",
        "",
        "Generated from the data contracts (`care-etl contracts register`); edit the contracts, "
        "not this file.",
        "",
        "| source | personal fields (all) | of which special-category | lawful basis | retention | owner | personal fields read, used for nothing |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        special = sum(f.classification == "special-category" for f in e.fields)
        lines.append(
            _row(
                e.name,
                len(e.personal_fields),
                special,
                e.lawful_basis,
                e.retention.split(":")[0],
                e.owner,
                ", ".join(f"{f.table}.{f.column}" for f in e.personal_unused) or "none",
            )
        )
    for e in entries:
        lines += _md_entry(e)
    return "\n".join(lines) + "\n"


def _md_entry(e: Entry) -> list[str]:
    lines = [
        "",
        f"## {_md(e.name)} (`{e.id}`)",
        "",
        f"Contract version {_md(e.version)}, {_md(e.status)}.",
        "",
        f"- **Purpose**: {_md(e.purpose)}",
        f"- **Usage**: {_md(e.usage)}",
        f"- **Limitations**: {_md(e.limitations)}",
        f"- **Lawful basis (UK GDPR Art 6)**: {_md(e.lawful_basis)}",
        f"- **Special-category condition (Art 9, DPA 2018 Sch 1)**: {_md(e.special_condition)}",
        f"- **Retention**: {_md(e.retention)}",
        f"- **Owner**: {_md(e.owner)}",
        f"- **Information governance approver**: {_md(e.approver)}",
    ]
    lines += [f"- **{_md(label(k))}**: {_md(v)}" for k, v in e.other.items()]
    lines += [
        "",
        "### Roles",
        "",
        "| role | access | who | approved by |",
        "| --- | --- | --- | --- |",
    ]
    lines += [_row(r["role"], r["access"], r["description"], r["approvers"]) for r in e.roles]
    lines += [] if e.roles else [_row(NOT_SET, "", "nothing says who may see the data", "")]
    lines += [
        "",
        "### Fields",
        "",
        "| table | field | classification | critical | person field | required | description | used for |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        _row(
            f.table,
            f.column,
            f.classification,
            "yes" if f.critical else "",
            f.person_field,
            "yes" if f.required else "",
            f.description,
            f.used_for,
        )
        for f in e.fields
    ]
    return lines


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_md(str(c)) for c in cells) + " |"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# --- HTML -------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:75rem;color:#1b1b1b}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #b1b4b6;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#f3f2f1}.special-category{background:#fde8e8}.personal{background:#fff7e0}"
    "dt{font-weight:600;margin-top:.4rem}dd{margin-left:1rem}"
)


def html_page(entries: list[Entry]) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Register of processing</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Register of processing</h1>",
        "<p>Generated from the data contracts (<code>care-etl contracts register</code>); "
        "edit the contracts, not this page.</p>",
        _table(
            [
                "source",
                "personal fields",
                "special-category fields",
                "lawful basis",
                "retention",
                "owner",
                "personal fields read, used for nothing",
            ],
            [
                [
                    f"<a href='#{_h(e.id)}'>{_h(e.name)}</a>",
                    str(len(e.personal_fields)),
                    str(sum(f.classification == "special-category" for f in e.fields)),
                    _h(e.lawful_basis),
                    _h(e.retention.split(":")[0]),
                    _h(e.owner),
                    _h(", ".join(f"{f.table}.{f.column}" for f in e.personal_unused) or "none"),
                ]
                for e in entries
            ],
        ),
    ]
    parts += [_html_entry(e) for e in entries]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_entry(e: Entry) -> str:
    facts = [
        ("Purpose", e.purpose),
        ("Usage", e.usage),
        ("Limitations", e.limitations),
        ("Lawful basis (UK GDPR Art 6)", e.lawful_basis),
        ("Special-category condition (Art 9, DPA 2018 Sch 1)", e.special_condition),
        ("Retention", e.retention),
        ("Owner", e.owner),
        ("Information governance approver", e.approver),
        *((label(k), v) for k, v in e.other.items()),
    ]
    roles = _table(
        ["role", "access", "who", "approved by"],
        [
            [_h(r["role"]), _h(r["access"]), _h(r["description"]), _h(r["approvers"])]
            for r in e.roles
        ]
        or [[NOT_SET, "", "nothing says who may see the data", ""]],
    )
    fields = _table(
        [
            "table",
            "field",
            "classification",
            "critical",
            "person field",
            "required",
            "description",
            "used for",
        ],
        [
            [
                _h(f.table),
                _h(f.column),
                _h(f.classification),
                "yes" if f.critical else "",
                _h(f.person_field),
                "yes" if f.required else "",
                _h(f.description),
                _h(f.used_for),
            ]
            for f in e.fields
        ],
        [f.classification for f in e.fields],
    )
    return (
        f"<section id='{_h(e.id)}'><h2>{_h(e.name)} (<code>{_h(e.id)}</code>)</h2>"
        f"<p>Contract version {_h(e.version)}, {_h(e.status)}.</p><dl>"
        + "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in facts)
        + f"</dl><h3>Roles</h3>{roles}<h3>Fields</h3>{fields}</section>"
    )


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """Cells are already escaped."""
    body = "".join(
        f"<tr class='{_h(classes[i]) if classes else ''}'>"
        + "".join(f"<td>{c}</td>" for c in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{_h(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _h(text: str) -> str:
    return html.escape(str(text), quote=True)
