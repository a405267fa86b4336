"""A run's units of work: which are already saved, the lazy graph of the rest, and the whole.

Two kinds of unit come out of the one pass over the pixels:

- **rows of one date**: every site's statistics on that date (the per-tile gathers of
  ``zonal`` put together). A date's rows depend on nothing else, so a rerun or a later
  ``--end`` reuses every date already saved and gathers only the others.
- **a tile's fold state** after the first ``n`` dates, saved every
  ``CHECKPOINT_DATES`` dates and after the last. The fold carries all the history the
  excavation test needs (recent looks, season bins, the running candidate), so a
  tile continues from its newest saved state on the same date prefix: a killed run
  redoes at most ``CHECKPOINT_DATES`` dates of it, a later ``--end`` only the new dates.

A unit whose pixel reads failed to decode (``reads.read_failures``) is never saved:
its result holds no-data windows that a later read may fill. ``save`` notes the dates
that failed in ``UnitPlan.failures`` instead; the orchestrator leaves them out and
plans again, reusing everything saved, so a transient fault costs a retry, not a
silently missing observation.

Outputs are then built from the saved units alone, so a resumed or incremental run
ends with the same bytes as one that ran straight through. Nothing here computes:
``run.py`` hands ``UnitPlan.units`` to ``scheduler.compute_units`` and ``save``
as its callback.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from dask.base import tokenize

from pipeline import (
    excavation,
    excavation_tiles,
    indices,
    masking,
    schema,
    site_pixels,
    zonal,
)
from pipeline.config import RunConfig
from pipeline.excavation import CHANGE_FIELDS, change_layers
from pipeline.excavation_tiles import TileStart, assemble_layers, decode_fields, fold_chains
from pipeline.scheduler import task_layer
from pipeline.site_pixels import SitePixels
from pipeline.sources import base, local
from pipeline.sources import reads as reading
from pipeline.sources.base import GridSpec, Scene
from pipeline.state import (
    StateStore,
    code_hash,
    fold_prefixes,
    grid_token,
    row_keys,
    unit_base,
)
from pipeline.zonal import assemble_timeseries

log = logging.getLogger(__name__)

# A tile's fold state is saved after every 16th date: a run killed mid-way redoes at
# most 16 dates of each tile (a few seconds of a 512 px tile) and each save costs a
# compressed copy of the state (about 1 s of fold work per 16 dates).
CHECKPOINT_DATES = 16
# A run computes its units in windows of this many dates, each continuing every tile's
# fold from the state the window before saved (as a resumed run does). Within one
# computation the reads run ahead of a tile's fold (a chain, one date after another)
# and each read waits in memory until the fold takes it: a window bounds how many wait,
# so memory does not grow with the number of dates (400 px scene, peak RSS of the run:
# 743 MB at 110 dates and 1,407 MB at 441 in one computation; 625 and 651 MB in
# windows). A multiple of ``CHECKPOINT_DATES``, so the windows save the same states as
# one computation would.
WINDOW_DATES = 2 * CHECKPOINT_DATES


@dataclass
class UnitPlan:
    """What this run reuses and what it computes."""

    units: dict[tuple[Any, ...], Any]
    """Unit name -> lazy result: ``("rows", t)`` a date's rows, ``("fold", tile, n)``
    a tile's encoded state after ``n`` dates."""
    rows: dict[int, Path]
    """Date index -> saved rows (filled in as units are saved)."""
    folds: dict[tuple[int, int], tuple[int, Path | None]]
    """Tile -> (dates folded, newest saved state)."""
    row_keys: list[str]
    prefixes: list[str]
    n_dates: int
    counts: dict[str, int] = field(default_factory=dict)
    """Units and dates reused and computed by the whole run (every window), for the
    manifest."""
    until: int = 0
    """``units`` cover the dates before this one (``n_dates``: the last window)."""
    failures: dict[int, set[reading.ReadFailure]] = field(default_factory=dict)
    """Date index -> the asset windows that failed to read (filled in by ``save``)."""


@dataclass(frozen=True)
class Checked:
    """A unit's result and the reads behind it that failed: ``(date index, failure)``."""

    value: Any
    failures: tuple[tuple[int, reading.ReadFailure], ...]


def _read_failures(read: base.TileRead, t: int) -> tuple[tuple[int, reading.ReadFailure], ...]:
    return tuple((t, f) for f in reading.read_failures(read))


def _merge_failures(
    *parts: tuple[tuple[int, reading.ReadFailure], ...],
) -> tuple[tuple[int, reading.ReadFailure], ...]:
    return tuple(f for part in parts for f in part)


def _checked(value: Any, *failures: tuple[tuple[int, reading.ReadFailure], ...]) -> Checked:
    return Checked(value, _merge_failures(*failures))


def _rows_unit(rows: pd.DataFrame, failures: list[Any], folded: list[None]) -> Checked:
    # ``folded``: taken only to run once the date is folded (``FoldChains.folded``).
    return _checked(rows, *failures)


def _pixels_token(pixels: SitePixels) -> str:
    h = hashlib.sha256()
    h.update(repr((pixels.site_ids, pixels.chunk_size)).encode())
    for arr in (pixels.n_expected, pixels.n_inside):
        h.update(np.ascontiguousarray(arr).tobytes())
    for key in sorted(pixels.tiles):
        h.update(repr(key).encode())
        for k, flat in pixels.tiles[key]:
            h.update(repr(k).encode())
            h.update(np.ascontiguousarray(flat).tobytes())
    return h.hexdigest()


def _date_rows(parts: list[Any], pixels: SitePixels, time: np.datetime64) -> pd.DataFrame:
    """Every site's statistics on one date from that date's per-tile gathers."""
    return assemble_timeseries([(0, p) for p in parts], pixels, np.array([time]))


def plan_units(
    store: StateStore,
    cfg: RunConfig,
    scenes: Sequence[Scene],
    grid: GridSpec,
    ds: xr.Dataset,
    pixels: SitePixels,
    ts_tasks: Sequence[tuple[int, Any]],
    *,
    window: int | None = None,
    quiet: bool = False,
) -> UnitPlan:
    """Look up saved units and build the lazy graph of the missing ones.

    ``window``: only the units of the next window of dates, from the first date not
    saved yet to the next multiple of ``window`` (``UnitPlan.until``); planning again
    once they are saved gives the next window. ``None``: every missing unit. The
    counts are the whole run's either way (logged unless ``quiet``).
    """
    cube = grid_token(grid, cfg.grid.chunk_size, sorted(ds.data_vars))
    stage_code = code_hash(local, reading, base, masking, indices)
    fold_base = unit_base(
        stage_code,
        code_hash(
            excavation,
            "pipeline.excavation_looks",
            "pipeline.excavation_kernel",
            "pipeline.excavation_plain",
            "pipeline.excavation_shift",
            excavation_tiles,
        ),
        cube,
        cfg.masking.model_dump(mode="json"),
        cfg.detection.model_dump(mode="json"),
    )
    rows_base = unit_base(
        stage_code,
        code_hash(zonal, site_pixels),
        cube,
        cfg.masking.model_dump(mode="json"),
        cfg.surface.model_dump(mode="json"),
        _pixels_token(pixels),
    )
    prefixes = fold_prefixes(fold_base, scenes)
    keys = row_keys(rows_base, scenes)
    n = len(scenes)
    times = ds[schema.TIME].values

    rows: dict[int, Path] = {}
    by_date: dict[int, list[Any]] = defaultdict(list)
    for t, task in ts_tasks:
        by_date[t].append(task)
    missing = []
    for t in range(n):
        if store.rows_path(keys[t]).exists():
            rows[t] = store.rows_path(keys[t])
        else:
            missing.append(t)

    y_chunks, x_chunks = ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]
    found = {
        (i, j): store.find_fold((i, j), prefixes)
        for i in range(len(y_chunks))
        for j in range(len(x_chunks))
    }
    folds = {tile: (f.n_done, f.path) for tile, f in found.items()}
    until = n
    if window is not None:
        first = min([*missing, *(f.n_done for f in found.values())], default=n)
        until = min(n, (first // window + 1) * window)

    # The units are one graph layer of plain tasks over the series' and the fold's
    # (``task_layer``; with a ``dask.delayed`` call each, 2.9 s of the city's planning).
    reads = local.tile_reads(ds)
    series = [task.key for _, task in ts_tasks]  # their keys name the cube's reads
    token = tokenize(
        rows_base, fold_base, until, missing, sorted(folds.items()), series, reads and reads.name
    )
    failed_, rows_, since_, unit_ = (f"unit-{k}-{token}" for k in ("failed", "rows", "since", "of"))
    pixels_key = f"unit-pixels-{token}"
    layer: dict[Any, Any] = {pixels_key: pixels}
    deps: list[Any] = [] if reads is None else [reads.delayed(0, 0, 0)]

    def failures(t: int, tile: tuple[int, int]) -> list[Any]:
        # Each unit carries the failures of the tile reads it was made from.
        if reads is None:
            return []
        key = (failed_, t, *tile)
        layer.setdefault(key, (_read_failures, (reads.name, t, *tile), t))
        return [key]

    starts = {
        tile: TileStart(
            f.n_done, f.path.read_bytes() if f.path is not None and f.n_done < until else None
        )
        for tile, f in found.items()
    }
    # The fold of the window's dates: states are saved at the same dates as in one pass.
    window_ds = ds if until == n else ds.isel({schema.TIME: slice(0, until)})
    chains = fold_chains(window_ds, cfg.detection, starts, every=CHECKPOINT_DATES)

    made: dict[tuple[Any, ...], Any] = {}
    for t in missing:
        if t < until:
            deps.extend(by_date.get(t, []))
            parts = [task.key for task in by_date.get(t, [])]
            layer[(rows_, t)] = (_date_rows, parts, pixels_key, times[t])
            tiles_failed = [f for tile in sorted(pixels.tiles) for f in failures(t, tile)]
            # A date's rows are its unit once its fold steps ran too: Dask's ordering then
            # folds each date as it is read. Without it the threads read a whole window
            # before the fold's first step, holding every date's fold bands meanwhile
            # while one thread then folds alone.
            layer[(unit_, t)] = (_rows_unit, (rows_, t), tiles_failed, chains.folded.get(t, []))
            made[("rows", t)] = (unit_, t)

    for tile, snapshots in chains.snapshots.items():
        # A state holds every date folded since the tile's start: a failed read among
        # them taints it and every later state (a running merge keeps the graph small).
        since: Any = (_merge_failures,)
        done = starts[tile].n_done
        for n_done, snapshot in snapshots:
            deps.append(snapshot)
            new = [f for t in range(done, n_done) for f in failures(t, tile)]
            layer[(since_, *tile, n_done)] = (_merge_failures, since, *new)
            since = (since_, *tile, n_done)
            layer[(unit_, *tile, n_done)] = (_checked, snapshot.key, since)
            made[("fold", tile, n_done)] = (unit_, *tile, n_done)
            done = n_done
    lazy = task_layer(f"units-{token}", layer, deps)
    units = {unit: lazy(key) for unit, key in made.items()}

    fold_dates = sum(n - done for done, _ in folds.values())
    snapshots_left = sum(_snapshot_count(done, n) for done, _ in folds.values())
    counts = {
        "dates": n,
        "tiles": len(folds),
        "rows_dates_reused": len(rows),
        "rows_dates_computed": n - len(rows),
        "fold_tile_dates_reused": sum(done for done, _ in folds.values()),
        "fold_tile_dates_computed": fold_dates,
        "units_computed": len(missing) + snapshots_left,
    }
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "units: %d of %d dates' statistics saved before; %d of %d tile-dates of the fold",
        len(rows),
        n,
        counts["fold_tile_dates_reused"],
        n * len(folds),
        extra={"stage": "graph", "counts": counts},
    )
    return UnitPlan(units, rows, folds, keys, prefixes, n, counts, until=until)


def _snapshot_count(done: int, n: int) -> int:
    """States a tile's fold saves after ``done`` dates of ``n`` (``fold_chains``' rule)."""
    if done >= n:
        return 0
    return n // CHECKPOINT_DATES - done // CHECKPOINT_DATES + (n % CHECKPOINT_DATES != 0)


def save(store: StateStore, plan: UnitPlan, name: tuple[Any, ...], result: Checked) -> None:
    """Save one finished unit atomically; a tile's older state is then dropped.

    A unit made from a read that failed is not saved: its dates go to ``plan.failures``.
    """
    if result.failures:
        for t, failure in result.failures:
            plan.failures.setdefault(t, set()).add(failure)
        log.warning("unit %s: made from unreadable pixels; not saved", name)
        return
    if name[0] == "rows":
        t = name[1]
        plan.rows[t] = store.save_rows(plan.row_keys[t], result.value)
        return
    _, tile, n_done = name
    path = store.save_fold(tile, plan.prefixes[n_done - 1], result.value)
    done, older = plan.folds[tile]
    if n_done > done:
        plan.folds[tile] = (n_done, path)
        if older is not None and older != path:
            older.unlink(missing_ok=True)


def timeseries(plan: UnitPlan, site_order: Sequence[str]) -> pd.DataFrame:
    """The whole table from the saved rows: site by site, dates in order."""
    # One Arrow table made into one frame: a frame per date, concatenated, took twice as
    # long (110 dates: 0.19-0.45 s against 0.12-0.28 s), for the same frame.
    tables = [pq.read_table(plan.rows[t]) for t in range(plan.n_dates)]
    frame = pa.concat_tables(tables).to_pandas()
    rank = {sid: k for k, sid in enumerate(site_order)}
    order = np.argsort(frame["site_id"].map(rank).to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def layers(plan: UnitPlan, chunks: tuple[Sequence[int], Sequence[int]]) -> np.ndarray:
    """The change layers mosaic from each tile's saved state after the last date."""

    def tiles() -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        for tile, (n_done, path) in plan.folds.items():
            if n_done != plan.n_dates or path is None:
                raise RuntimeError(f"tile {tile}: fold stopped after {n_done} of {plan.n_dates}")
            yield tile, change_layers(decode_fields(path.read_bytes(), CHANGE_FIELDS))

    return assemble_layers(tiles(), chunks)


def kept_files(plan: UnitPlan) -> list[Path]:
    """The units a later run can continue from: every date's rows, each tile's last state."""
    return [*plan.rows.values(), *(p for _, p in plan.folds.values() if p is not None)]
