"""Where a run reads and writes: one resource, configured per environment, and where a
step leaves its output for the next."""

from __future__ import annotations

import os
import pickle
from typing import Any

import dagster as dg
from upath import UPath

from care_etl.locations import cache_dir_for, index_url_for, reports_dir_for, sources_dir_for


class CareEtlSettings(dg.ConfigurableResource):
    """Sources folder, output database, reports folder and the OCR cache.

    In `dagster dev` they come from CARE_ETL_SOURCES_DIR, CARE_ETL_DATABASE_URL,
    CARE_ETL_REPORTS_DIR and CARE_ETL_CACHE_DIR, and default as `care-etl run` does: the
    sources to what `make demo` writes (demo/sources), the index to care_etl.db beside the
    sources folder, the reports to demo/reports; `care-etl run` passes its arguments.
    """

    sources_dir: str
    database_url: str
    reports_dir: str
    cache_dir: str

    @classmethod
    def from_environment(cls, *, url_by_reference: bool = False) -> CareEtlSettings:
        """The settings the environment gives, values resolved (as commands read them).

        `url_by_reference` (the code location's): CARE_ETL_DATABASE_URL as a dg.EnvVar
        Dagster reads when a run starts, not its value: a resource's values are part of the
        code location's snapshot, shown in the UI (the resource's configuration) and stored
        with runs, and this URL may hold a password."""
        sources = sources_dir_for()
        by_reference = url_by_reference and os.environ.get("CARE_ETL_DATABASE_URL")
        return cls(
            sources_dir=str(sources),
            database_url=dg.EnvVar("CARE_ETL_DATABASE_URL")
            if by_reference
            else index_url_for(sources),
            reports_dir=str(reports_dir_for(default="demo/reports")),
            cache_dir=cache_dir_for(sources),
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
