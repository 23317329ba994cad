"""Incremental runs: reuse what the last run computed for records that have not changed.

The state is a cache folder, `.care_etl_cache` beside the OCR cache (next to the sources
folder), and it is content-addressed: every entry is keyed by a fingerprint of exactly the
values it was computed from, so it can never disagree with the index in a way that matters.
A failed run may leave entries for records the index does not hold yet; the next run uses
them only for records with those very values, for which they are still right. A change of
contract, of linkage settings or of the code empties it (a full run); so does `--full`.

What is reused: the standardised values of unchanged raw rows, dates excepted (rows.py);
the comparison levels of record pairs compared before (pairs.py); the linkage model the
last training run estimated, until the records drift (kept.py); in the
index stage, every person's published rows except those of the persons a change can reach
(their records, households, tenancies, declared relationships, age band: index.py), which
alone are built and written again; the previous links and issued ids for stable ids.
"""
