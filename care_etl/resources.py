"""Where a run reads and writes: one resource, configured per environment."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONTRACTS_DIR = PROJECT_DIR / "data_contracts"


def index_url_for(sources_dir: Path, given: str | None = None) -> str:
    """The index a command over a sources folder opens: `given` (--database), else
    CARE_ETL_DATABASE_URL (as Dagster and `care-etl review` read it), else care_etl.db
    beside the sources folder."""
    return (
        given
        or os.environ.get("CARE_ETL_DATABASE_URL")
        or f"sqlite:///{sources_dir.resolve().parent / 'care_etl.db'}"
    )


class CareEtlSettings(dg.ConfigurableResource):
    """Sources folder, output database, reports folder and the OCR cache.

    In `dagster dev` they come from CARE_ETL_SOURCES_DIR, CARE_ETL_DATABASE_URL and
    CARE_ETL_REPORTS_DIR, and default to what `make demo` writes (demo/sources,
    demo/care_etl.db, demo/reports); `care-etl run` passes its arguments.
    """

    sources_dir: str
    database_url: str
    reports_dir: str
    cache_dir: str

    @classmethod
    def from_environment(cls) -> CareEtlSettings:
        sources = os.environ.get("CARE_ETL_SOURCES_DIR", "demo/sources")
        return cls(
            sources_dir=sources,
            database_url=os.environ.get("CARE_ETL_DATABASE_URL", "sqlite:///demo/care_etl.db"),
            reports_dir=os.environ.get("CARE_ETL_REPORTS_DIR", "demo/reports"),
            cache_dir=os.environ.get(
                "CARE_ETL_CACHE_DIR", str(Path(sources).parent / ".ocr_cache")
            ),
        )
