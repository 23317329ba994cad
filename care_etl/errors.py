"""Errors a user can fix. The CLI prints their message on one line, with no traceback.

Messages name the file (and row, sheet or column where known) and the problem, and never
carry a personal value (a name, a date of birth, an NHS number).
"""


class CareEtlError(Exception):
    """Base class: a problem with input or configuration that the user can put right."""


class ContractError(CareEtlError):
    """A data contract cannot be read, or does not describe a source we can read."""


class SourceReadError(CareEtlError):
    """A source file or database cannot be read at all (corrupt, wrong encoding, missing column)."""


class DatabaseError(CareEtlError):
    """The output database cannot be reached or written."""
