"""Stable person ids: a person keeps their id across runs while most of their records persist.

Linkage names each cluster by a hash of its smallest record key, which changes as soon as that
record goes or a smaller one joins. Analysts and caseworkers keep ids in their own work, so
here each new cluster inherits the previous id held by most of its records; merges, splits
and retirements are written to `person_id_history` so a retired id leads to its successor.
A pure function of (this run's clusters, the previous links, every id ever issued): the same
sources rerun give the same ids, and an incremental run can call it on a partial frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEYS = ["source", "source_record_id"]
HISTORY_COLUMNS = ["old_person_id", "new_person_id", "change", "run_id", "changed_at"]


@dataclass
class StableIds:
    #: The assignments with `person_id` replaced by the stable id (`cluster_id` keeps linkage's).
    assignments: pd.DataFrame
    #: This run's rows of person_id_history (merged, split, retired).
    history: pd.DataFrame


def stable_ids(
    assignments: pd.DataFrame,
    previous: pd.DataFrame,
    issued: Iterable[str] = (),
    *,
    run_id: str = "",
    changed_at: pd.Timestamp | None = None,
    departed: pd.DataFrame | None = None,
) -> StableIds:
    """Carry previous ids onto this run's clusters; mint ids for new people.

    `assignments`: source, source_record_id, person_id (linkage's cluster id), ...
    `previous`: the last published person_source_link (source, source_record_id, person_id).
    `issued`: every id ever handed out (previous history included), never minted again.
    `departed`: records that left the index in an earlier run, with the id they held then
    (source, source_record_id, person_id: retention's record_departure).
    """
    out = assignments.rename(columns={"person_id": "cluster_id"})
    old = previous[[*KEYS, "person_id"]].rename(columns={"person_id": "old_id"})
    joined = out[[*KEYS, "cluster_id"]].merge(old, on=KEYS, how="left")
    settled = _settled(joined)
    kept = dict(zip(joined["cluster_id"][settled], joined["old_id"][settled], strict=True))
    joined = joined[~settled]
    kept.update(_inherit(joined.dropna(subset=["old_id"])))
    taken = set(kept.values())
    old_ids = set(old["old_id"])
    issued, held = set(issued), old_ids | taken
    forbidden = issued | held
    chosen = dict(kept)
    reinstated = []
    new = sorted(set(out["cluster_id"].unique()).difference(kept))
    returning = _returning(out, departed, new, issued - held)
    # minted in cluster order: each new id is forbidden to the next
    for cluster in new:
        # A new cluster whose records left the index holding an id held by no one since is
        # that person back (a file missing for one run), and gets the id again. So is one
        # named as such an id: linkage names a cluster by a hash of its smallest record key,
        # so it holds the very record that id was minted for (a record split back out of a
        # wrong merge).
        back = returning.get(cluster)
        if back is not None and back not in held:
            chosen[cluster] = back
        elif cluster in issued and cluster not in held:
            chosen[cluster] = cluster
        else:
            chosen[cluster] = _mint(cluster, forbidden)
        if chosen[cluster] in issued:
            reinstated.append(chosen[cluster])
        held.add(chosen[cluster])
        forbidden.add(chosen[cluster])
    out["person_id"] = _mapped(out["cluster_id"], chosen)
    history = _history(joined, chosen, old_ids, run_id, changed_at, reinstated)
    return StableIds(out, history)


def _returning(
    out: pd.DataFrame, departed: pd.DataFrame | None, clusters: list[str], free: set[str]
) -> dict[str, str]:
    """New cluster -> a free id (issued, held by no one) its records held when they left the
    index, shared out as previous ids are (_inherit: most records, ties to the smaller)."""
    if departed is None or departed.empty or not clusters or not free:
        return {}
    left = departed[departed["person_id"].isin(free)][[*KEYS, "person_id"]]
    rows = out[out["cluster_id"].isin(clusters)][[*KEYS, "cluster_id"]].merge(left, on=KEYS)
    return _inherit(rows.rename(columns={"person_id": "old_id"}))


def _settled(joined: pd.DataFrame) -> np.ndarray:
    """The rows of clusters that hold exactly this run's records of one old id: _inherit
    would give them that id whatever the other clusters hold, and they make no history, so
    only the other rows go through both (most clusters, on a rerun).
    """
    cluster, _ = pd.factorize(joined["cluster_id"])
    old, _ = pd.factorize(joined["old_id"])  # -1: a record new to the index
    if not len(cluster) or (cluster < 0).any():
        return np.zeros(len(cluster), dtype=bool)
    width = int(cluster.max()) + 1
    low = np.full(width, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(width, -1, dtype=np.int64)
    np.minimum.at(low, cluster, old)
    np.maximum.at(high, cluster, old)
    size = np.bincount(cluster, minlength=width)
    per_old = np.bincount(old[old >= 0], minlength=int(old.max()) + 1)
    one = (low == high) & (low >= 0)  # every record of the cluster held one old id
    settled = np.zeros(width, dtype=bool)
    settled[one] = per_old[low[one]] == size[one]  # and no other cluster holds any of its
    return settled[cluster]


def _mapped(values: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """values.map(mapping) for a mapping of every value, one look-up per distinct value."""
    codes, distinct = pd.factorize(values)
    try:
        looked_up = np.array([mapping[d] for d in distinct], dtype=object)
    except KeyError:
        return values.map(mapping)
    if (codes < 0).any():
        return values.map(mapping)
    return pd.Series(looked_up[codes], index=values.index, dtype=object)


def _inherit(overlap: pd.DataFrame) -> dict[str, str]:
    """cluster -> old id: each old id goes to the cluster holding most of its records, and a
    cluster takes, of the old ids that chose it, the one most of its records held.

    Ties: the larger share of the old id's records, then the smaller id, so reruns agree.
    """
    if overlap.empty:
        return {}
    # on integer codes in text order (grouping and sorting the ids as text took seconds)
    old, old_names = pd.factorize(overlap["old_id"], sort=True)
    cluster, cluster_names = pd.factorize(overlap["cluster_id"], sort=True)
    width = len(cluster_names)
    pairs, n = np.unique(old.astype("int64") * width + cluster, return_counts=True)
    old, cluster = pairs // width, pairs % width
    home = np.lexsort((cluster, -n, old))  # per old id: most records, then smallest cluster
    home = home[np.r_[True, old[home][1:] != old[home][:-1]]]
    best = home[np.lexsort((old[home], -n[home], cluster[home]))]
    best = best[np.r_[True, cluster[best][1:] != cluster[best][:-1]]]
    return dict(
        zip(
            np.asarray(cluster_names, dtype=object)[cluster[best]],
            np.asarray(old_names, dtype=object)[old[best]],
            strict=True,
        )
    )


def _mint(cluster_id: str, forbidden: set[str]) -> str:
    """Linkage's own id when it is fresh, else a salted hash of it that is."""
    candidate, salt = cluster_id, 0
    while candidate in forbidden:
        salt += 1
        digest = hashlib.sha256(f"{cluster_id}#{salt}".encode()).hexdigest()[:12].upper()
        candidate = f"P{digest}"
    return candidate


def _history(
    joined: pd.DataFrame,
    chosen: dict[str, str],
    old_ids: set[str],
    run_id: str,
    changed_at: pd.Timestamp | None,
    reinstated: Iterable[str] = (),
) -> pd.DataFrame:
    """merged: a retired id's records now sit under an existing id that absorbed them;
    split: some of an old id's records now form a person under a newly minted id;
    retired: none of an old id's records are indexed any more;
    reinstated: an id retired (or merged away) in an earlier run is a person's again.

    A record that moves between two ids that both persist is a correction, not a change of id.
    """
    have = joined.dropna(subset=["old_id"]).copy()
    have["new_id"] = _mapped(have["cluster_id"], chosen)
    moves = have[have["old_id"] != have["new_id"]][["old_id", "new_id"]].drop_duplicates()
    surviving = set(chosen.values())
    rows = []
    for old_id, new_id in moves.itertuples(index=False):
        if new_id not in old_ids:
            rows.append((old_id, new_id, "split"))
        elif old_id not in surviving:
            rows.append((old_id, new_id, "merged"))
    for old_id in sorted(old_ids - set(have["old_id"]) - surviving):
        rows.append((old_id, None, "retired"))
    rows.extend((person_id, person_id, "reinstated") for person_id in sorted(reinstated))
    history = pd.DataFrame(rows, columns=["old_person_id", "new_person_id", "change"])
    history = history.sort_values(["old_person_id", "change", "new_person_id"], na_position="last")
    history["run_id"] = run_id
    history["changed_at"] = changed_at if changed_at is not None else pd.Timestamp.now("UTC")
    return history[HISTORY_COLUMNS].reset_index(drop=True)


def successor(history: pd.DataFrame, person_id: str) -> str | None:
    """Follow merges from a retired id to the id that holds it now; an id reinstated since
    its last merge is its own successor."""
    seen = {person_id}
    current = person_id
    while True:
        rows = history[
            (history["old_person_id"] == current) & history["change"].isin(["merged", "reinstated"])
        ]
        if rows.empty:
            return current
        last = rows.sort_values("changed_at", kind="stable").iloc[-1]
        if last["change"] == "reinstated":
            return current
        nxt = last["new_person_id"]
        if nxt is None or nxt in seen:
            return current
        seen.add(nxt)
        current = nxt
