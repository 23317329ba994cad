"""Validation against the Open Data Contract Standard's own JSON schema.

The schema ships inside the `open-data-contract-standard` package, so nothing is fetched.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import re
from functools import cache
from typing import Any

import jsonschema


@cache
def odcs_schema() -> dict[str, Any]:
    text = (importlib.resources.files("open_data_contract_standard") / "schema.json").read_text()
    return json.loads(text)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every way the document breaks the standard, as 'path: message' lines, each once (the
    schema reaches some keys through two branches, which report the same error twice)."""
    validator = jsonschema.Draft201909Validator(odcs_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    lines = [f"{_path(e.absolute_path)}: {e.message[:200]}{_did_you_mean(e)}" for e in errors]
    return list(dict.fromkeys(lines))


_UNEXPECTED = re.compile(r"'([^']+)' was unexpected")


def _did_you_mean(error: jsonschema.ValidationError) -> str:
    """For a key the standard does not know: the key it knows that is spelt most alike."""
    if error.validator not in ("unevaluatedProperties", "additionalProperties"):
        return ""
    found = _UNEXPECTED.search(error.message)
    key = found.group(1) if found else None
    close = difflib.get_close_matches(key, _known_keys(), n=1, cutoff=0.75) if key else []
    return f" (did you mean '{close[0]}'?)" if close else ""


@cache
def _known_keys() -> list[str]:
    """Every property name the standard's schema declares anywhere."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(k for k in node.get("properties", {}) if isinstance(k, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(odcs_schema())
    return sorted(keys)


def _path(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "(top level)"
