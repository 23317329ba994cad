"""Record linkage: which records, across and within sources, are one person.

The steps follow recordlinkage's vocabulary: index (blocking rules), compare (levels per
field), classify (a Fellegi-Sunter model estimated from the data), rules (hard rules above
the model), cluster (components of the automatic and confirmed links, without chaining),
plus an explanation of every scored pair.

`link(records)` is the interface of interfaces.md; `link_records(records, settings,
decisions)` returns the links, the review pairs and the model as well.

The names are loaded lazily, so that reading the short-form table (`nicknames`) does not
import recordlinkage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["LinkageResult", "LinkageSettings", "link", "link_records"]

if TYPE_CHECKING:
    from care_etl.linkage.linker import LinkageResult, LinkageSettings, link, link_records


def __getattr__(name: str):
    if name in __all__:
        from care_etl.linkage import linker

        return getattr(linker, name)
    raise AttributeError(f"module 'care_etl.linkage' has no attribute {name!r}")
