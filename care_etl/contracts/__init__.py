"""Data contracts (ODCS v3): load them, check them against the standard, read their mapping."""

from care_etl.contracts.model import Column, Contract, SourceObject, load_contract, load_contracts
from care_etl.contracts.schema import schema_errors

__all__ = [
    "Column",
    "Contract",
    "SourceObject",
    "load_contract",
    "load_contracts",
    "schema_errors",
]
