"""Per-site statistics gathered from spatial tiles, in one pass over the pixels.

Each site's pixels come from ``site_pixels`` (a pixel belongs to a site when its
centre lies inside the polygon), split by tile and packed site after site, so each
(date, tile) task gathers exactly the pixels of the sites it touches: overlapping
sites each get their own pixels (a pixel in two sites counts in both) and a site
crossing tile edges is assembled from its parts. A task returns counts and sums per site, the
median of each site lying wholly in its tile, and the sorted clear values of the
others; one task per date merges the tiles of that date into the date's figures,
so memory holds a date's shared-site values at most, never the whole series.

On a cube from ``load_cube`` (after ``mask_clouds`` and ``add_indices``) the tasks
read the tile reads themselves: they gather the stored integers of the site pixels
and compute mask, reflectance and indices for those pixels only. Any other cube
is gathered from its ``ndvi``, ``bsi``, ``ndwi`` and ``clear`` blocks; both give
the same figures.

Surface classes of a clear pixel (thresholds in ``surface:`` of the config):
water when NDWI >= water_ndwi_min; vegetated when NDVI >= vegetated_ndvi_min;
bare when NDVI <= bare_ndvi_max and BSI >= bare_bsi_min and not water.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from pipeline import schema
from pipeline.config import MaskingConfig, SurfaceConfig
from pipeline.indices import bsi_values, ndvi_values, ndwi_values
from pipeline.masking import clear_rule, scl_invalid_at
from pipeline.scheduler import task_layer
from pipeline.site_pixels import SitePixels, TileSites
from pipeline.sources.base import TileRead
from pipeline.sources.local import tile_reads

log = logging.getLogger(__name__)

# Counts gathered per (site, date): clear, ndwi-valid, vegetated, bare, water.
_N_COUNTS = 5
# Sums gathered per (site, date): ndvi, bsi, ndwi over their valid pixels, bsi-valid count.
_N_SUMS = 4


@dataclass(frozen=True)
class TileStats:
    """What one (date, tile) task returns: per segment of its ``TileSites``."""

    sites: np.ndarray
    counts: np.ndarray
    """(segments, _N_COUNTS) int64."""
    sums: np.ndarray
    """(segments, _N_SUMS) float64."""
    medians: np.ndarray
    """(segments, 2) NDVI and BSI medians; NaN for shared segments (merged per date)."""
    shared_values: list[tuple[int, np.ndarray, np.ndarray]]
    """(site, clear NDVI, valid BSI) of each shared segment."""


@dataclass(frozen=True)
class DateStats:
    """The figures of every site on one date."""

    counts: np.ndarray
    """(sites, _N_COUNTS) int64."""
    sums: np.ndarray
    """(sites, _N_SUMS) float64."""
    medians: np.ndarray
    """(sites, 2) NDVI and BSI medians, NaN where no pixel counted."""


def _median(values: np.ndarray) -> float:
    """The median (mean of the two middle values when even), by partial sorting."""
    n = values.size
    if n == 0:
        return np.nan
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(values, (lo, hi))
    return (float(part[lo]) + float(part[hi])) / 2


def _by_segment(
    values: np.ndarray, counts: np.ndarray, shared: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Medians of the segments not shared, and the values of those shared.

    ``values`` holds the segments one after the other, ``counts`` values each; it is
    reordered within each segment. One partial sort in place per segment beats one
    sort of everything (segments are small).
    """
    stops = np.cumsum(counts)
    starts = stops - counts
    hi = starts + counts // 2
    parts = [
        values[a:b].copy()
        for a, b in zip(starts[shared].tolist(), stops[shared].tolist(), strict=True)
    ]
    todo = np.flatnonzero(~shared & (counts > 2))
    # one selection per segment: the upper middle value; for an even count the lower one
    # is the largest of those left of it (a reduction, cheaper than a second selection)
    lower = np.empty(todo.size, values.dtype)
    for m, (a, b, hi_k) in enumerate(
        zip(starts[todo].tolist(), stops[todo].tolist(), hi[todo].tolist(), strict=True)
    ):
        segment = values[a:b]
        segment.partition(hi_k - a)
        lower[m] = segment[: hi_k - a].max() if (b - a) % 2 == 0 else segment[hi_k - a]
    medians = np.full(counts.size, np.nan)
    medians[todo] = (lower.astype(np.float64) + values[hi[todo]]) / 2
    few = np.flatnonzero(~shared & (counts > 0) & (counts <= 2))  # mean of first and last
    medians[few] = (values[starts[few]].astype(np.float64) + values[stops[few] - 1]) / 2
    return medians, parts


def _reduce_tile(
    nd: np.ndarray,
    bs: np.ndarray,
    nw: np.ndarray,
    ok: np.ndarray,
    where: TileSites,
    surface: SurfaceConfig,
) -> TileStats:
    """Counts, sums and medians per segment from the gathered pixel values."""
    n_seg = where.sites.size
    starts = where.starts[:-1]  # segments are runs of pixels: sums over runs (``reduceat``)
    ok = ok & np.isfinite(nd)
    bs_ok = ok & np.isfinite(bs)
    nw_ok = ok & np.isfinite(nw)
    water = nw_ok & (nw >= surface.water_ndwi_min)
    veg = ok & (nd >= surface.vegetated_ndvi_min) & ~water
    bare = ok & (nd <= surface.bare_ndvi_max) & (bs >= surface.bare_bsi_min) & ~water

    def per_segment(values: np.ndarray, dtype: type) -> np.ndarray:
        if values.size == 0:
            return np.zeros(n_seg, dtype)
        return np.add.reduceat(values, starts, dtype=dtype)

    counts = np.stack([per_segment(m, np.int64) for m in (ok, nw_ok, veg, bare, water)], axis=1)
    sums = np.stack(
        [
            per_segment(np.where(ok, nd, 0), np.float64),
            per_segment(np.where(bs_ok, bs, 0), np.float64),
            per_segment(np.where(nw_ok, nw, 0), np.float64),
            per_segment(bs_ok, np.int64).astype(np.float64),
        ],
        axis=1,
    )
    med_nd, parts_nd = _by_segment(nd[ok], counts[:, 0], where.shared)
    med_bs, parts_bs = _by_segment(bs[bs_ok], sums[:, 3].astype(np.int64), where.shared)
    medians = np.stack([med_nd, med_bs], axis=1)
    shared_sites = where.sites[where.shared].tolist()
    shared_values = list(zip(shared_sites, parts_nd, parts_bs, strict=True))
    return TileStats(where.sites, counts, sums, medians, shared_values)


def _gather_blocks(
    ndvi: np.ndarray,
    bsi: np.ndarray,
    ndwi: np.ndarray,
    clear: np.ndarray,
    where: TileSites,
    surface: SurfaceConfig,
) -> TileStats:
    """One (date, tile) from index and mask blocks."""
    flat = where.flat.astype(np.intp)
    return _reduce_tile(
        np.take(ndvi.reshape(-1), flat),
        np.take(bsi.reshape(-1), flat),
        np.take(ndwi.reshape(-1), flat),
        np.take(clear.reshape(-1), flat),
        where,
        surface,
    )


def _gather_read(
    read: TileRead, where: TileSites, masking: MaskingConfig, surface: SurfaceConfig
) -> TileStats:
    """One (date, tile) from its tile read: mask, reflectance and indices of site pixels only."""
    flat = where.flat.astype(np.intp)  # converted once for every gather below
    ok = ~scl_invalid_at(read, masking, flat)
    if read.missing:
        ok[:] = False
    refl = {}
    for name, band in read.bands.items():
        stored = np.take(band.values.reshape(-1), flat)
        ok &= band.has_data(stored)
        refl[name] = band.reflectance(stored, mark_nodata=False)  # ``ok`` masks no data
    nan = np.full(flat.shape, np.nan, np.float32)

    def get(*names: str) -> list[np.ndarray] | None:
        return [refl[n] for n in names] if all(n in refl for n in names) else None

    nd = ndvi_values(*b) if (b := get("nir", "red")) else nan
    bs = bsi_values(*b) if (b := get("swir16", "red", "nir", "blue")) else nan
    nw = ndwi_values(*b) if (b := get("green", "nir")) else nan
    return _reduce_tile(nd, bs, nw, ok, where, surface)


def _merge_date(parts: Sequence[TileStats], n_sites: int) -> DateStats:
    """One date's figures from its tiles; medians of shared sites from their merged values."""
    counts = np.zeros((n_sites, _N_COUNTS), np.int64)
    sums = np.zeros((n_sites, _N_SUMS), np.float64)
    medians = np.full((n_sites, 2), np.nan)
    shared: dict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for part in parts:
        counts[part.sites] += part.counts  # a site has one segment per tile
        sums[part.sites] += part.sums
        whole = ~np.isnan(part.medians)
        rows, cols = np.nonzero(whole)
        medians[part.sites[rows], cols] = part.medians[rows, cols]
        for site, v_nd, v_bs in part.shared_values:
            shared[site].append((v_nd, v_bs))
    for site, values in shared.items():
        for col in (0, 1):
            medians[site, col] = _median(np.concatenate([v[col] for v in values]))
    return DateStats(counts, sums, medians)


def site_timeseries_tasks(
    ds: xr.Dataset, pixels: SitePixels, surface: SurfaceConfig
) -> list[tuple[int, dask.delayed]]:
    """Lazy per-date figures of every site; ``assemble_timeseries`` turns them into the table.

    ``ds`` is chunked (1, tile, tile) with ``pixels.chunk_size`` tiles. From a cube of
    ``load_cube`` masked by ``mask_clouds`` the tasks gather from the tile reads (the
    same tasks the cube's other consumers read, so each pixel is read once);
    otherwise ``ds`` must hold ``ndvi``, ``bsi``, ``ndwi`` and ``clear``.
    """
    template = ds["ndvi"] if "ndvi" in ds else next(iter(ds.data_vars.values()))
    chunks = template.chunks
    if chunks is None:
        raise ValueError("site_timeseries_tasks needs a dask-backed dataset")
    size = pixels.chunk_size
    if any(c != size for c in (*chunks[1][:-1], *chunks[2][:-1])):
        raise ValueError(f"dataset tiles {chunks[1:]} do not match the pixel index's {size}")
    reads, rule = tile_reads(ds), clear_rule(ds)
    n_sites = len(pixels.site_ids)
    if reads is not None and rule is not None and reads.halo >= rule.buffer_pixels:
        deps: list[Any] = [reads.delayed(0, 0, 0)]

        def gather(t: int, i: int, j: int, where: Any) -> tuple[Any, ...]:
            return (_gather_read, (reads.name, t, i, j), where, rule, surface)

        source: Any = reads.name
    else:
        deps = [ds[name].data for name in ("ndvi", "bsi", "ndwi", "clear")]

        def gather(t: int, i: int, j: int, where: Any) -> tuple[Any, ...]:
            return (_gather_blocks, *((a.name, t, i, j) for a in deps), where, surface)

        source = [a.name for a in deps]
    # One graph layer of plain tasks: a ``dask.delayed`` call per (date, tile) hashed
    # its arguments and merged the reads' graph each time (4.1 s of graph building on
    # the city scene's 36 dates x 64 tiles).
    token = tokenize(source, rule, surface, n_sites, sorted(pixels.tiles.items()))
    where_, gather_, merge_ = (f"site-{kind}-{token}" for kind in ("where", "gather", "date"))
    layer: dict[Any, Any] = {(where_, i, j): sites for (i, j), sites in pixels.tiles.items()}
    for t in range(len(chunks[0])):
        for i, j in pixels.tiles:
            layer[(gather_, t, i, j)] = gather(t, i, j, (where_, i, j))
        layer[(merge_, t)] = (_merge_date, [(gather_, t, i, j) for i, j in pixels.tiles], n_sites)
    lazy = task_layer(f"site-series-{token}", layer, deps)
    return [(t, lazy((merge_, t))) for t in range(len(chunks[0]))]


def assemble_timeseries(
    results: Sequence[tuple[int, DateStats]], pixels: SitePixels, times: np.ndarray
) -> pd.DataFrame:
    """The contract's timeseries table from the per-date figures."""
    n_sites, n_times = len(pixels.site_ids), len(times)
    counts = np.zeros((n_sites, n_times, _N_COUNTS), np.int64)
    sums = np.zeros((n_sites, n_times, _N_SUMS), np.float64)
    medians = np.full((n_sites, n_times, 2), np.nan)
    for t, stats in results:
        counts[:, t] += stats.counts
        sums[:, t] += stats.sums
        known = np.isfinite(stats.medians)
        medians[:, t][known] = stats.medians[known]
    med_nd, med_bs = medians[..., 0], medians[..., 1]
    n_clear = counts[..., 0].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        clear_div = np.where(n_clear > 0, n_clear, np.nan)
        n_pixels = pixels.n_inside[:, None].astype(float)
        frame = pd.DataFrame(
            {
                "site_id": np.repeat(np.array(pixels.site_ids, dtype=object), n_times),
                "date": np.tile(times.astype("datetime64[D]").astype("datetime64[ms]"), n_sites),
                "n_pixels": np.repeat(pixels.n_inside, n_times),
                "valid_fraction": (n_clear / np.where(n_pixels > 0, n_pixels, np.nan)).reshape(-1),
                "ndvi_mean": (sums[..., 0] / clear_div).reshape(-1),
                "ndvi_median": med_nd.reshape(-1),
                "bsi_mean": (
                    sums[..., 1] / np.where(sums[..., 3] > 0, sums[..., 3], np.nan)
                ).reshape(-1),
                "bsi_median": med_bs.reshape(-1),
                "ndwi_mean": (
                    sums[..., 2] / np.where(counts[..., 1] > 0, counts[..., 1], np.nan)
                ).reshape(-1),
                "vegetated_fraction": (counts[..., 2] / clear_div).reshape(-1),
                "bare_fraction": (counts[..., 3] / clear_div).reshape(-1),
                "water_fraction": (counts[..., 4] / clear_div).reshape(-1),
            }
        )
    frame["valid_fraction"] = frame["valid_fraction"].fillna(0.0)
    return frame[list(schema.TIMESERIES_COLUMNS)]
