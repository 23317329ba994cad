"""Where a run reads and writes: one resource, configured per environment, and where a
step leaves its output for the next."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import dagster as dg
from upath import UPath

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


class StoredOutputs(dg.ConfigurableIOManagerFactory):
    """Each asset's output pickled under the Dagster instance's storage folder, where and as
    Dagster's default IO manager keeps it (so outputs stored before still load), so that
    one asset can be materialised alone or a failed run re-executed from its failure.

    What it adds: an upstream asset with no stored output (never materialised in this
    Dagster home, or its file deleted) fails the step with one line that says what to
    select, instead of a FileNotFoundError traceback.
    """

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        home = context.instance.storage_directory() if context.instance else "storage"
        return _PickledOutputs(base_path=UPath(home))


class _PickledOutputs(dg.UPathIOManager):
    extension: str = ""  # Dagster's fs_io_manager's layout: <storage>/<asset key path>

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            pickle.dump(obj, file, pickle.HIGHEST_PROTOCOL)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        try:
            with path.open("rb") as file:
                return pickle.load(file)
        except FileNotFoundError:
            raise dg.Failure(description=_not_stored(context)) from None


def _not_stored(context: dg.InputContext) -> str:
    """What to do when an input was never materialised here: materialise it first."""
    upstream = context.asset_key.to_user_string() if context.has_asset_key else context.name
    return (
        f"{upstream} has not been materialised in this Dagster home, so there is nothing to "
        f"read it from: materialise it with what it needs first (select '*{upstream}'), or "
        "run care_etl_job"
    )
