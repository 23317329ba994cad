"""`care-etl contracts lint`: the ODCS JSON schema, then the rules information governance signs.

Each finding names the contract, the path in it, the rule and the fix. The rules:

- `schema`: the document is valid against the ODCS JSON schema (shipped in the package).
- `reading`: the contract describes a source we can read (server, record id, mapping).
- `classification`: every column has a classification: public, internal, personal or
  special-category.
- `personal-classified`: a column mapped to the person model is personal or special-category.
- `critical-data-element`: columns that identify a person for linkage (date of birth, names)
  are marked `criticalDataElement: true`, so their checks block a bad feed.
- `purpose`: `description.purpose`, `usage` and `limitations` are written.
- `controller`: a `controller` custom property names the data controller.
- `lawful-basis`: a `lawfulBasis` custom property names a UK GDPR Article 6(1) basis.
- `given-twice`: no top-level custom property is given twice (readers take the last).
- `special-category-condition`: a contract with special-category columns names an Article 9(2)
  condition and its DPA 2018 Schedule 1 condition; a contract naming a condition classifies
  the columns it covers `special-category` (else the register shows none held).
- `confidentiality`: a contract with special-category data (health or social care records)
  says, in a `confidentialityBasis` custom property, what sets aside the common law duty of
  confidentiality (implied consent for individual care, a legal duty, the public interest...).
- `retention`: `slaProperties` has one `retention` with a positive number of days, weeks,
  months or years (a period `care-etl retention` can count; one it cannot read is never
  applied, and the records would be kept for ever).
- `roles`: `roles` names who may see the data: each one of the database roles the product
  creates (`care-etl roles create`), with its access and who approves it; the analyst role
  reads only (it sees the pseudonymised tables).
- `owner`, `approver`: `team.members` has a member with role `owner` and one with role
  `information governance approver`.
- `references-offline`: every relationship points inside the contract (nothing is fetched).
- `quality-rules`: every `quality` rule is one the pipeline can check.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from care_etl.contracts.schema import schema_errors
from care_etl.errors import ContractError

CLASSIFICATIONS = ("public", "internal", "personal", "special-category")
PERSONAL = ("personal", "special-category")
CRITICAL_FIELDS = ("date_of_birth", "given_name", "family_name", "full_name")
OWNER_ROLE = "owner"
APPROVER_ROLE = "information governance approver"
_ARTICLE_6 = re.compile(r"Art(icle)?\.?\s*6\s*\(1\)\s*\([a-f]\)", re.IGNORECASE)
_ARTICLE_9 = re.compile(r"Art(icle)?\.?\s*9\s*\(2\)\s*\([a-j]\)", re.IGNORECASE)
_SCHEDULE_1 = re.compile(r"Schedule\s+1\b", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One problem: which contract, where in it, which rule, what is wrong, how to fix it."""

    contract: str
    path: str
    rule: str
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.contract}: {self.path}: [{self.rule}] {self.message}. Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def contract_files(targets: list[Path]) -> list[Path]:
    """The contract files named, or every `*.yaml` in the folders named."""
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            found = sorted(target.glob("*.yaml"))
            if not found:
                raise ContractError(f"{target}: no *.yaml data contracts found")
            files += found
        elif target.is_file():
            files.append(target)
        else:
            raise ContractError(f"{target}: no such contract file or folder")
    return files


def lint_paths(targets: list[Path]) -> list[Finding]:
    """Every finding in every contract named (files or folders), and ids used twice in one
    folder (a run over it refuses them: one source, two contracts; two files named apart may
    well be two versions of one contract)."""
    files = contract_files(targets)
    folders = [contract_files([t]) for t in targets if t.is_dir()]
    return [f for path in files for f in lint_file(path)] + [
        f for folder in folders for f in _same_ids(folder)
    ]


def _same_ids(files: list[Path]) -> list[Finding]:
    first: dict[str, Path] = {}
    findings = []
    for path in files:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue  # lint_file reports it
        cid = document.get("id") if isinstance(document, dict) else None
        if not isinstance(cid, str):
            continue
        if cid in first:
            findings.append(
                Finding(
                    str(path),
                    "id",
                    "reading",
                    f"id '{cid}' is also the id of {first[cid]}",
                    "give each contract its own id, or remove the copy from the folder",
                )  # fmt: skip
            )
        first.setdefault(cid, path)
    return findings


def lint_file(path: Path) -> list[Finding]:
    """Every finding in one contract file."""
    name = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return [
            Finding(
                name,
                "(file)",
                "schema",
                "not UTF-8 text",
                "save the contract as UTF-8 YAML",
            )
        ]
    except (OSError, yaml.YAMLError) as exc:
        return [
            Finding(
                name,
                "(file)",
                "schema",
                f"cannot read as YAML ({type(exc).__name__})",
                "write the contract as a YAML mapping",
            )
        ]
    if not isinstance(document, dict):
        return [
            Finding(
                name,
                "(file)",
                "schema",
                "not a YAML mapping",
                "write the contract as a YAML mapping",
            )
        ]
    return lint_document(document, name, path)


def lint_document(document: dict[str, Any], name: str, path: Path | None = None) -> list[Finding]:
    """The schema's findings, then ours (our rules run even when the schema fails)."""
    findings = [
        Finding(
            name,
            where or "(top level)",
            "schema",
            message,
            "change it to match the ODCS v3 JSON schema",
        )
        for where, message in (_split(e) for e in schema_errors(document))
    ]
    findings += _reading(document, name, path) if not findings and path else []
    return findings + governance_findings(document, name)


def governance_findings(document: dict[str, Any], name: str) -> list[Finding]:
    """Our rules beyond the schema and reading; they read any document, valid or not."""
    findings: list[Finding] = []
    for rule in (
        _classification,
        _critical,
        _purpose,
        _given_twice,
        _controller,
        _lawful_basis,
        _special_category,
        _confidentiality,
        _retention,
        _team,
        _roles,
        _references,
    ):
        findings += rule(document, name)
    return findings


def _split(error: str) -> tuple[str, str]:
    where, _, message = error.partition(": ")
    return where, message


def columns(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, property) for every column of every schema object."""
    found = []
    for i, obj in enumerate(_list(document.get("schema"))):
        obj_name = obj.get("name", i) if isinstance(obj, dict) else i
        for j, prop in enumerate(_list(obj.get("properties") if isinstance(obj, dict) else [])):
            if isinstance(prop, dict):
                found.append((f"schema/{obj_name}/properties/{prop.get('name', j)}", prop))
    return found


def custom(items: Any) -> dict[str, Any]:
    return {
        str(i["property"]): i.get("value")
        for i in _list(items)
        if isinstance(i, dict) and "property" in i
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _reading(document: dict[str, Any], name: str, path: Path) -> list[Finding]:
    """What the loader and the check planner refuse, as one finding each."""
    from care_etl.contracts.model import load_contract
    from care_etl.quality.checks import plan_checks

    try:
        plan_checks(load_contract(path, check_schema=False, check_governance=False))
    except ContractError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        where, _, what = message.partition(": ")
        rule = "quality-rules" if "/quality/" in where else "reading"
        if not what:
            where, what = "(top level)", message
        return [Finding(name, where, rule, "the pipeline cannot read or check it as written", what)]
    return []


def _classification(document: dict[str, Any], name: str) -> list[Finding]:
    findings = []
    for path, prop in columns(document):
        value = prop.get("classification")
        canonical = custom(prop.get("customProperties")).get("canonical")
        if value is None:
            findings.append(
                Finding(
                    name,
                    path,
                    "classification",
                    "column has no classification",
                    f"add classification: one of {', '.join(CLASSIFICATIONS)}",
                )
            )
        elif value not in CLASSIFICATIONS:
            findings.append(
                Finding(
                    name,
                    f"{path}/classification",
                    "classification",
                    f"unknown classification '{value}'",
                    f"use one of {', '.join(CLASSIFICATIONS)}",
                )
            )
        if canonical and value not in PERSONAL:
            findings.append(
                Finding(
                    name,
                    f"{path}/classification",
                    "personal-classified",
                    f"column maps to the person field '{canonical}' but "
                    + (
                        f"is classified '{value}'" if value is not None else "has no classification"
                    ),
                    "classify it personal (or special-category)",
                )
            )
    return findings


def _critical(document: dict[str, Any], name: str) -> list[Finding]:
    findings = []
    for path, prop in columns(document):
        canonical = custom(prop.get("customProperties")).get("canonical")
        if canonical in CRITICAL_FIELDS and prop.get("criticalDataElement") is not True:
            findings.append(
                Finding(
                    name,
                    path,
                    "critical-data-element",
                    f"column identifies a person ({canonical}) but is not a critical data element",
                    "add criticalDataElement: true",
                )
            )
    return findings


def _purpose(document: dict[str, Any], name: str) -> list[Finding]:
    description = document.get("description")
    description = description if isinstance(description, dict) else {}
    return [
        Finding(
            name,
            f"description/{key}",
            "purpose",
            f"description.{key} is missing",
            f"write description.{key}: {hint}",
        )
        for key, hint in (
            ("purpose", "why the council processes this data"),
            ("usage", "how the pipeline uses it"),
            ("limitations", "what it cannot be relied on for"),
        )
        if not str(description.get(key) or "").strip()
    ]


def _given_twice(document: dict[str, Any], name: str) -> list[Finding]:
    """A top-level custom property named twice: every reader takes the last, a reviewer may
    read the first (two lawful bases, two agreements)."""
    names = [
        str(i["property"])
        for i in _list(document.get("customProperties"))
        if isinstance(i, dict) and "property" in i
    ]
    return [
        Finding(
            name,
            f"customProperties/{key}",
            "given-twice",
            f"{key} is given {names.count(key)} times; only the last is read",
            f"keep one {key}",
        )
        for key in dict.fromkeys(names)
        if names.count(key) > 1
    ]


CONTROLLER = "controller"


def _controller(document: dict[str, Any], name: str) -> list[Finding]:
    """Who decides why and how the data is processed (UK GDPR Art 4(7)): the council, and
    for shared data who else is controller of the source records."""
    if str(custom(document.get("customProperties")).get(CONTROLLER) or "").strip():
        return []
    return [
        Finding(
            name,
            f"customProperties/{CONTROLLER}",
            "controller",
            "no data controller named",
            f"add customProperties: [{{property: {CONTROLLER}, value: <the organisation that "
            "decides why and how the data is processed>}]",
        )
    ]


def _lawful_basis(document: dict[str, Any], name: str) -> list[Finding]:
    value = custom(document.get("customProperties")).get("lawfulBasis")
    if value is not None and not isinstance(value, str):
        return [
            Finding(
                name,
                "customProperties/lawfulBasis",
                "lawful-basis",
                f"lawful basis is a {type(value).__name__}, not text",
                "write it as one line of text, e.g. 'Art 6(1)(e) public task'",
            )
        ]
    basis = value or ""
    if not basis.strip():
        return [
            Finding(
                name,
                "customProperties/lawfulBasis",
                "lawful-basis",
                "no lawful basis",
                "add customProperties: [{property: lawfulBasis, value: 'Art 6(1)(e) public task'}]",
            )
        ]
    if not _ARTICLE_6.search(basis):
        return [
            Finding(
                name,
                "customProperties/lawfulBasis",
                "lawful-basis",
                "lawful basis does not name a UK GDPR Article 6(1) basis",
                "name it as 'Art 6(1)(<a-f>) <basis>', e.g. 'Art 6(1)(e) public task'",
            )
        ]
    return []


def _special_category(document: dict[str, Any], name: str) -> list[Finding]:
    special = [
        p for p, prop in columns(document) if prop.get("classification") == "special-category"
    ]
    condition = str(custom(document.get("customProperties")).get("specialCategoryCondition") or "")
    where = "customProperties/specialCategoryCondition"
    if not special and condition.strip():
        return [
            Finding(
                name,
                where,
                "special-category-condition",
                "an Article 9 condition is named but no column is classified special-category",
                "classify the columns the condition covers special-category (or, if none is, "
                "remove the condition)",
            )
        ]
    if not special:
        return []
    if not condition.strip():
        return [
            Finding(
                name,
                where,
                "special-category-condition",
                f"{len(special)} special-category column(s) but no Article 9 condition",
                "add specialCategoryCondition: the Art 9(2) condition with its DPA 2018 "
                "Schedule 1 condition",
            )
        ]
    findings = []
    if not _ARTICLE_9.search(condition):
        findings.append(
            Finding(
                name,
                where,
                "special-category-condition",
                "condition does not name a UK GDPR Article 9(2) condition",
                "name it as 'Art 9(2)(<a-j>) ...'",
            )
        )
    if not _SCHEDULE_1.search(condition):
        findings.append(
            Finding(
                name,
                where,
                "special-category-condition",
                "condition does not name its DPA 2018 Schedule 1 condition",
                "add 'DPA 2018 Schedule 1 Part <n> paragraph <n> (...)'",
            )
        )
    return findings


def _retention(document: dict[str, Any], name: str) -> list[Finding]:
    """One retention, a period `care-etl retention` can count: a retention it cannot read
    (a unit it does not know, a word for a number) is never applied, so the records it
    covers would be kept for ever."""
    from care_etl.contracts.diff import RETENTION_UNITS

    found = [
        (i, sla)
        for i, sla in enumerate(_list(document.get("slaProperties")))
        if isinstance(sla, dict) and str(sla.get("property", "")).strip().lower() == "retention"
    ]
    if not found:
        return [
            Finding(
                name,
                "slaProperties",
                "retention",
                "no retention period",
                "add slaProperties: [{property: retention, value: <n>, unit: y}]",
            )
        ]
    units = ", ".join(RETENTION_UNITS)
    findings = []
    for i, _sla in found[1:]:
        findings.append(
            Finding(
                name,
                f"slaProperties/{i}",
                "retention",
                f"a second retention (the first, slaProperties/{found[0][0]}, is the one applied)",
                "keep one retention: the period after which the records are deleted",
            )
        )
    i, sla = found[0]
    value, unit = sla.get("value"), sla.get("unit")
    if sla.get("property") != "retention":
        findings.append(
            Finding(
                name,
                f"slaProperties/{i}/property",
                "retention",
                f"'{sla.get('property')}' is not read as the retention",
                "write property: retention (lower case)",
            )
        )
    if value in (None, "") or not unit:
        findings.append(
            Finding(
                name,
                f"slaProperties/{i}",
                "retention",
                "retention has no value or no unit",
                "give value (a number) and unit (d, m or y)",
            )
        )
        return findings
    if isinstance(value, bool) or not _positive_number(value):
        findings.append(
            Finding(
                name,
                f"slaProperties/{i}/value",
                "retention",
                f"retention value '{value}' is not a positive number",
                "give the period as a number, e.g. value: 8 with unit: y",
            )
        )
    if str(unit).lower() not in RETENTION_UNITS:
        findings.append(
            Finding(
                name,
                f"slaProperties/{i}/unit",
                "retention",
                f"retention unit '{unit}' is not one care-etl retention can count",
                f"use one of {units}",
            )
        )
    return findings


def _positive_number(value: Any) -> bool:
    try:
        number = float(str(value))
    except ValueError:
        return False
    return number > 0 and number != float("inf")


CONFIDENTIALITY = "confidentialityBasis"


def _confidentiality(document: dict[str, Any], name: str) -> list[Finding]:
    """Health and social care records are held in confidence: beside the UK GDPR basis, a
    contract with special-category data says what sets aside the common law duty of
    confidentiality."""
    props = custom(document.get("customProperties"))
    special = any(p.get("classification") == "special-category" for _, p in columns(document))
    if not (special or str(props.get("specialCategoryCondition") or "").strip()):
        return []
    if str(props.get(CONFIDENTIALITY) or "").strip():
        return []
    return [
        Finding(
            name,
            f"customProperties/{CONFIDENTIALITY}",
            "confidentiality",
            "special-category data but no common law duty of confidentiality basis",
            f"add customProperties: [{{property: {CONFIDENTIALITY}, value: <what sets the duty "
            "aside: implied consent for individual care, a legal duty, the public interest>}]",
        )
    ]


def _roles(document: dict[str, Any], name: str) -> list[Finding]:
    """Who may see the data: roles the product enforces, each approved; analysts read only."""
    from care_etl.index.cli import ANALYST_ROLE, ENGINEER_ROLE

    known = (ANALYST_ROLE, ENGINEER_ROLE)
    roles = [r for r in _list(document.get("roles")) if isinstance(r, dict)]
    if not roles:
        return [
            Finding(
                name,
                "roles",
                "roles",
                "no roles: nothing says who may see the data",
                f"add roles: {ENGINEER_ROLE} and {ANALYST_ROLE}, each with access, description "
                "and firstLevelApprovers",
            )
        ]
    findings = []
    for i, role in enumerate(roles):
        where = f"roles/{role.get('role', i)}"
        if role.get("role") not in known:
            findings.append(
                Finding(
                    name,
                    where,
                    "roles",
                    f"role '{role.get('role')}' is not one the index's database grants",
                    f"use {ENGINEER_ROLE} (everything) or {ANALYST_ROLE} (pseudonymised tables "
                    "only), the roles care-etl roles create makes",
                )
            )
        if not str(role.get("firstLevelApprovers") or "").strip():
            findings.append(
                Finding(
                    name,
                    where,
                    "roles",
                    "nobody approves who is given this role",
                    "add firstLevelApprovers: the person who grants it",
                )
            )
        if role.get("role") == ANALYST_ROLE and str(role.get("access", "")).lower() != "read":
            findings.append(
                Finding(
                    name,
                    f"{where}/access",
                    "roles",
                    f"analysts are given '{role.get('access')}' access",
                    "access: read (the analyst role reads the pseudonymised tables only)",
                )
            )
    return findings


def _team(document: dict[str, Any], name: str) -> list[Finding]:
    team = document.get("team")
    members = _list(team.get("members")) if isinstance(team, dict) else _list(team)
    roles = {str(m.get("role", "")).strip().lower() for m in members if isinstance(m, dict)}
    findings = []
    if OWNER_ROLE not in roles:
        findings.append(
            Finding(
                name,
                "team/members",
                "owner",
                "no member with role 'owner'",
                "add a member {username: <email>, name: <name>, role: owner}",
            )
        )
    if APPROVER_ROLE not in roles:
        findings.append(
            Finding(
                name,
                "team/members",
                "approver",
                f"no member with role '{APPROVER_ROLE}'",
                f"add a member {{username: <email>, name: <name>, role: {APPROVER_ROLE}}}",
            )
        )
    return findings


def _references(document: dict[str, Any], name: str) -> list[Finding]:
    """Relationships must resolve inside the contract: nothing is fetched to check them."""
    known = {
        (obj_key, prop_key)
        for obj in _list(document.get("schema"))
        if isinstance(obj, dict)
        for obj_key in (obj.get("name"), obj.get("id"))
        for prop in _list(obj.get("properties"))
        if isinstance(prop, dict)
        for prop_key in (prop.get("name"), prop.get("id"))
    }
    findings = []
    for path, prop in columns(document):
        for i, rel in enumerate(_list(prop.get("relationships"))):
            target = str(rel.get("to", "")) if isinstance(rel, dict) else ""
            parts = target.strip("/").split("/")
            local = len(parts) == 4 and parts[0] == "schema" and parts[2] == "properties"
            if "://" in target or not local or (parts[1], parts[3]) not in known:
                findings.append(
                    Finding(
                        name,
                        f"{path}/relationships/{i}/to",
                        "references-offline",
                        "relationship does not point at a column of this contract",
                        "write it as schema/<object>/properties/<column id>",
                    )
                )
    return findings
