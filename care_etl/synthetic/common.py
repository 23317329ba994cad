"""Small helpers every source writer shares."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date


@dataclass
class SourceOutput:
    """What one writer produced: (source_record_id, true_person_id) per record, and file count."""

    records: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0
    #: Rows written but withdrawn (social care is_deleted): counted, never in the ground truth.
    withdrawn: int = 0


def stream(seed: int, name: str) -> random.Random:
    """An independent random stream per source, so changing one writer leaves the others' bytes."""
    return random.Random(f"care_etl:{seed}:{name}")


def uk_date(value: date | None) -> str:
    """`DD/MM/YYYY`, or '' for no date."""
    return "" if value is None else f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
