"""Validation against the Open Data Contract Standard's own JSON schema.

The schema ships inside the `open-data-contract-standard` package, so nothing is fetched.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from typing import Any

import jsonschema


@cache
def odcs_schema() -> dict[str, Any]:
    text = (importlib.resources.files("open_data_contract_standard") / "schema.json").read_text()
    return json.loads(text)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every way the document breaks the standard, as 'path: message' lines."""
    validator = jsonschema.Draft201909Validator(odcs_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{_path(e.absolute_path)}: {e.message[:200]}" for e in errors]


def _path(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "(top level)"
