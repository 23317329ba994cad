"""Where a deployment's folders and index are, from the options given or the environment.

`care-etl run`, the other commands and Dagster's resource read the same variables the same
way. Kept apart from resources.py, which imports Dagster: a command such as `care-etl
household` needs the index's location, not Dagster's half second of importing.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONTRACTS_DIR = PROJECT_DIR / "data_contracts"
#: Where `make demo` writes its sources, the default of CARE_ETL_SOURCES_DIR.
DEMO_SOURCES = "demo/sources"


def sources_dir_for() -> Path:
    """The sources folder the environment names (CARE_ETL_SOURCES_DIR), else the demo's."""
    return Path(os.environ.get("CARE_ETL_SOURCES_DIR", DEMO_SOURCES))


def check_sources_folder(sources_dir: Path) -> None:
    """The sources folder must be a folder that is there: a one-line error otherwise."""
    from care_etl.errors import CareEtlError

    if not sources_dir.is_dir():
        what = "is a file, not a folder" if sources_dir.exists() else "sources folder not found"
        raise CareEtlError(f"{sources_dir}: {what}")


def contracts_dir_for(given: Path | None = None) -> Path:
    """The contracts a run reads: `given` (--contracts), else CARE_ETL_CONTRACTS_DIR (as
    Dagster reads it), else the project's data_contracts/."""
    return given or Path(os.environ.get("CARE_ETL_CONTRACTS_DIR") or DEFAULT_CONTRACTS_DIR)


def reports_dir_for(given: Path | None = None, default: str = "reports") -> Path:
    """Where a run writes the coverage report: `given` (--reports), else CARE_ETL_REPORTS_DIR
    (as Dagster reads it), else `default`."""
    return given or Path(os.environ.get("CARE_ETL_REPORTS_DIR") or default)


def index_url_for(sources_dir: Path, given: str | None = None) -> str:
    """The index a command over a sources folder opens: `given` (--database), else
    CARE_ETL_DATABASE_URL (as Dagster and `care-etl review` read it), else care_etl.db
    beside the sources folder."""
    return (
        given
        or os.environ.get("CARE_ETL_DATABASE_URL")
        or f"sqlite:///{sources_dir.resolve().parent / 'care_etl.db'}"
    )


def cache_dir_for(sources_dir: Path) -> str:
    """The OCR cache (and, beside it, the incremental cache) of a sources folder:
    CARE_ETL_CACHE_DIR, else `.ocr_cache` beside the folder. `care-etl run` and Dagster read
    it the same way, so a run of either reuses what the other computed."""
    return os.environ.get("CARE_ETL_CACHE_DIR") or str(sources_dir.resolve().parent / ".ocr_cache")
