"""Header names as every reader reads them: matched whatever their capitals and spacing, and
a repeated one told by position (a file without its header line has a record there, whose
values must not reach a message)."""

from __future__ import annotations


def header_key(name: object) -> str:
    """A header name as matched: spacing collapsed, case folded ("Date of  Birth" is "date
    of birth")."""
    return " ".join(str(name).split()).casefold()


def repeated_position(names: list[str]) -> tuple[int, int]:
    """The 1-based positions of the first name that comes twice, its first and second; (0, 0)
    when none does."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            return seen[name], position
        seen[name] = position
    return 0, 0
