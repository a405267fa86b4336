"""Per-site statistics gathered from spatial tiles, in one pass over the pixels.

Each site is rasterised once onto the analysis grid (a pixel belongs to a site when
its centre lies inside the polygon, the manifest records this rule). The pixel
lists are split by tile, so each (date, tile) task gathers exactly the pixels of
the sites it touches: overlapping sites each get their own pixels (a pixel in two
sites counts in both) and a site crossing tile edges is assembled from its parts.
Sums, counts and the values needed for medians come back per (site, date).

Surface classes of a clear pixel (thresholds in ``surface:`` of the config):
water when NDWI >= water_ndwi_min; vegetated when NDVI >= vegetated_ndvi_min;
bare when NDVI <= bare_ndvi_max and BSI >= bare_bsi_min and not water.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import dask
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.features import geometry_mask
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from pipeline import schema
from pipeline.config import SurfaceConfig
from pipeline.sources.base import GridSpec

log = logging.getLogger(__name__)

PIXEL_RULE = "centre"  # statistics over clear pixels whose centre lies inside the site


@dataclass(frozen=True)
class SitePixels:
    """Where each site's pixels lie on the grid, split by tile."""

    site_ids: tuple[str, ...]
    n_expected: np.ndarray
    """Pixels the whole polygon covers (inside or outside the imagery)."""
    n_inside: np.ndarray
    """Of those, pixels inside the analysis grid."""
    tiles: dict[tuple[int, int], list[tuple[int, np.ndarray]]]
    """(tile row, tile col) -> [(site index, flat pixel indices within the tile)]."""
    chunk_size: int

    @property
    def coverage(self) -> np.ndarray:
        return np.divide(self.n_inside, np.maximum(self.n_expected, 1)).astype(float)


def site_pixel_index(
    site_ids: Sequence[str], geometries: Sequence[BaseGeometry], grid: GridSpec, *, chunk_size: int
) -> SitePixels:
    """Rasterise every site (in the grid's CRS) and split its pixels by tile."""
    rows, cols = grid.shape
    res = grid.resolution
    left, top = grid.transform.c, grid.transform.f
    tiles: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = defaultdict(list)
    n_expected = np.zeros(len(site_ids), np.int64)
    n_inside = np.zeros(len(site_ids), np.int64)
    for k, geom in enumerate(geometries):
        if geom is None or geom.is_empty:
            continue
        minx, miny, maxx, maxy = geom.bounds
        c0 = int(np.floor((minx - left) / res))
        c1 = int(np.ceil((maxx - left) / res))
        r0 = int(np.floor((top - maxy) / res))
        r1 = int(np.ceil((top - miny) / res))
        window = Window(c0, r0, max(c1 - c0, 1), max(r1 - r0, 1))
        transform = grid.transform * grid.transform.translation(c0, r0)
        inside = ~geometry_mask(
            [geom],
            out_shape=(int(window.height), int(window.width)),
            transform=transform,
            all_touched=False,
        )
        rr, cc = np.nonzero(inside)
        rr = rr + r0
        cc = cc + c0
        n_expected[k] = rr.size
        keep = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        rr, cc = rr[keep], cc[keep]
        n_inside[k] = rr.size
        if rr.size == 0:
            continue
        ti, tj = rr // chunk_size, cc // chunk_size
        for key in set(zip(ti.tolist(), tj.tolist(), strict=True)):
            sel = (ti == key[0]) & (tj == key[1])
            tile_w = min(chunk_size, cols - key[1] * chunk_size)
            flat = (rr[sel] - key[0] * chunk_size) * tile_w + (cc[sel] - key[1] * chunk_size)
            tiles[key].append((k, flat.astype(np.int64)))
    return SitePixels(tuple(site_ids), n_expected, n_inside, dict(tiles), chunk_size)


# Counts gathered per (site, date): clear, ndwi-valid, vegetated, bare, water.
_N_COUNTS = 5


def _tile_stats(
    ndvi: np.ndarray,
    bsi: np.ndarray,
    ndwi: np.ndarray,
    clear: np.ndarray,
    entries: list[tuple[int, np.ndarray]],
    surface: SurfaceConfig,
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Gather one (date, tile) block: per site, counts, sums and the values for medians."""
    nd, bs, nw, ok = (a.reshape(-1) for a in (ndvi, bsi, ndwi, clear))
    ok = ok & np.isfinite(nd)
    out = []
    for k, flat in entries:
        sel = flat[ok[flat]]
        v_nd, v_bs, v_nw = nd[sel], bs[sel], nw[sel]
        nw_ok = np.isfinite(v_nw)
        water = nw_ok & (v_nw >= surface.water_ndwi_min)
        veg = (v_nd >= surface.vegetated_ndvi_min) & ~water
        bare = (v_nd <= surface.bare_ndvi_max) & (v_bs >= surface.bare_bsi_min) & ~water
        counts = np.array([sel.size, nw_ok.sum(), veg.sum(), bare.sum(), water.sum()], np.int64)
        sums = np.array(
            [
                v_nd.sum(dtype=np.float64),
                np.nansum(v_bs, dtype=np.float64),
                np.nansum(v_nw, dtype=np.float64),
                np.isfinite(v_bs).sum(),
            ]
        )
        out.append((k, counts, sums, v_nd, v_bs))
    return out


def site_timeseries_tasks(
    ds: xr.Dataset, pixels: SitePixels, surface: SurfaceConfig
) -> list[dask.delayed]:
    """Lazy per-(date, tile) gathers; ``assemble_timeseries`` turns their results into the table.

    ``ds`` holds ``ndvi``, ``bsi``, ``ndwi`` and ``clear`` chunked (1, tile, tile).
    """
    blocks = {
        name: ds[name].data.to_delayed(optimize_graph=False)
        for name in ("ndvi", "bsi", "ndwi", "clear")
    }
    tasks = []
    gather = dask.delayed(_tile_stats, pure=True)
    for t in range(ds.sizes[schema.TIME]):
        for (i, j), entries in pixels.tiles.items():
            tasks.append(
                (
                    t,
                    gather(
                        blocks["ndvi"][t, i, j],
                        blocks["bsi"][t, i, j],
                        blocks["ndwi"][t, i, j],
                        blocks["clear"][t, i, j],
                        entries,
                        surface,
                    ),
                )
            )
    return tasks


def assemble_timeseries(
    results: Sequence[tuple[int, list]], pixels: SitePixels, times: np.ndarray
) -> pd.DataFrame:
    """The contract's timeseries table from the gathered (date, tile) results."""
    n_sites, n_times = len(pixels.site_ids), len(times)
    counts = np.zeros((n_sites, n_times, _N_COUNTS), np.int64)
    sums = np.zeros((n_sites, n_times, 4), np.float64)
    values: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for t, parts in results:
        for k, c, s, v_nd, v_bs in parts:
            counts[k, t] += c
            sums[k, t] += s
            if v_nd.size:
                values[(k, t)].append((v_nd, v_bs))
    med_nd = np.full((n_sites, n_times), np.nan)
    med_bs = np.full((n_sites, n_times), np.nan)
    for (k, t), parts in values.items():
        med_nd[k, t] = np.median(np.concatenate([p[0] for p in parts]))
        bs = np.concatenate([p[1] for p in parts])
        bs = bs[np.isfinite(bs)]
        if bs.size:
            med_bs[k, t] = np.median(bs)
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
