"""Record linkage: which records, across and within sources, are one person.

The steps follow recordlinkage's vocabulary: index (blocking rules), compare (levels per
field), classify (a Fellegi-Sunter model estimated from the data), cluster (connected
components of the automatic links), plus an explanation of every scored pair.

`link(records)` is the interface of interfaces.md; `link_records(records, settings)` returns
the links, the review pairs and the model as well.
"""

from care_etl.linkage.linker import LinkageResult, LinkageSettings, link, link_records

__all__ = ["LinkageResult", "LinkageSettings", "link", "link_records"]
