"""Which pixels belong to each site, found once for all sites and split by spatial tile.

Each site is rasterised once onto the analysis grid: a pixel belongs to a site when
its centre lies inside the polygon (``PIXEL_RULE``, GDAL's rule; the manifest records
it). The pixel lists are split by tile and packed site after site (``TileSites``), so
each (date, tile) task of ``zonal`` gathers exactly the pixels of the sites it touches:
overlapping sites each get their own pixels and a site crossing tile edges is
assembled from its parts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import shapely
from dask.sizeof import sizeof
from shapely.geometry.base import BaseGeometry

from pipeline.sources.base import GridSpec

PIXEL_RULE = "centre"  # statistics over clear pixels whose centre lies inside the site


@dataclass(frozen=True)
class TileSites:
    """The pixels of every site touching one tile, packed site after site.

    Kept small (4 bytes a pixel): it travels with the task graph to every worker.
    """

    flat: np.ndarray
    """int32 flat pixel indices within the tile (row * tile width + col), site after site."""
    starts: np.ndarray
    """int64, one more than ``sites``: segment ``s`` is ``flat[starts[s]:starts[s + 1]]``
    (never empty)."""
    sites: np.ndarray
    """int32 site index (into ``SitePixels.site_ids``) of each segment."""
    shared: np.ndarray
    """bool per segment: the site also has pixels in other tiles."""

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """(site index, its flat pixel indices in this tile), segment by segment."""
        for s, site in enumerate(self.sites.tolist()):
            yield site, self.flat[self.starts[s] : self.starts[s + 1]]


sizeof.register(TileSites)(
    lambda sites: sum(a.nbytes for a in (sites.flat, sites.starts, sites.sites, sites.shared))
)


@dataclass(frozen=True)
class SitePixels:
    """Where each site's pixels lie on the grid, split by tile."""

    site_ids: tuple[str, ...]
    n_expected: np.ndarray
    """Pixels the whole polygon covers (inside or outside the imagery)."""
    n_inside: np.ndarray
    """Of those, pixels inside the analysis grid."""
    tiles: dict[tuple[int, int], TileSites]
    """(tile row, tile col) -> the sites' pixels in that tile."""
    chunk_size: int

    @property
    def coverage(self) -> np.ndarray:
        return np.divide(self.n_inside, np.maximum(self.n_expected, 1)).astype(float)


def _rank_in_group(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ... within each of consecutive groups of ``sizes`` elements, concatenated."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _scanline_pixels(
    geoms: np.ndarray, grid: GridSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(site, row, col) of every pixel whose centre lies inside its site, site after
    site and row-major within a site; rows and columns may lie beyond the grid.

    GDAL's scanline rule, for all sites at once: each row's centre line crosses a
    ring's edge when the edge's row span ``[top, bottom)`` holds it (a horizontal edge
    never crosses); along the line, the crossings of a site pair up into runs
    ``(x0, x1]`` that take the pixels whose centres they hold. The spans are half-open,
    so a centre on an edge two sites share counts in exactly one of them.
    """
    parts, part_site = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    res, left, top = grid.resolution, grid.transform.c, grid.transform.f
    px, py = (xy[:, 0] - left) / res, (top - xy[:, 1]) / res  # pixel units, rows downwards
    # edges: consecutive vertices of one ring (rings are closed), upper end first
    same = vertex_ring[1:] == vertex_ring[:-1]
    x1, y1, x2, y2 = px[:-1][same], py[:-1][same], px[1:][same], py[1:][same]
    edge_site = part_site[ring_part[vertex_ring[:-1][same]]]
    flip = y1 > y2
    x1, x2 = np.where(flip, x2, x1), np.where(flip, x1, x2)
    y1, y2 = np.where(flip, y2, y1), np.where(flip, y1, y2)
    # rows r whose centre r + 0.5 lies in [y1, y2)
    first = np.ceil(y1 - 0.5).astype(np.int64)
    n_rows = np.maximum(np.ceil(y2 - 0.5).astype(np.int64) - first, 0)
    edge = np.repeat(np.arange(x1.size), n_rows)
    row = first[edge] + _rank_in_group(n_rows)
    dy = row + 0.5
    x = (dy - y1[edge]) * (x2[edge] - x1[edge]) / (y2[edge] - y1[edge]) + x1[edge]
    site = edge_site[edge]
    order = np.lexsort((x, row, site))
    site, row, x = site[order], row[order], x[order]
    # a site's crossings on one row pair up, in order, into runs
    start, stop = np.floor(x[0::2] + 0.5), np.floor(x[1::2] + 0.5)
    run_site, run_row = site[0::2], row[0::2]
    length = np.maximum(stop - start, 0).astype(np.int64)
    # pixel k of a run: its first column + k (int32: a grid is far below 2**31 pixels wide)
    col = (np.repeat(start.astype(np.int64), length) + _rank_in_group(length)).astype(np.int32)
    return (
        np.repeat(run_site.astype(np.int32), length),
        np.repeat(run_row.astype(np.int32), length),
        col,
    )


def site_pixel_index(
    site_ids: Sequence[str], geometries: Sequence[BaseGeometry], grid: GridSpec, *, chunk_size: int
) -> SitePixels:
    """Find every site's pixels (geometries in the grid's CRS) and split them by tile.

    A pixel belongs to a site when its centre lies inside the polygon (``PIXEL_RULE``).
    """
    rows, cols = grid.shape
    n_sites = len(site_ids)
    geoms = np.empty(n_sites, object)
    geoms[:] = list(geometries)
    present = np.flatnonzero([g is not None and not g.is_empty for g in geoms.tolist()])
    site, rr, cc = _scanline_pixels(geoms[present], grid)
    site = present[site]
    n_expected = np.bincount(site, minlength=n_sites).astype(np.int64)
    keep = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    site, rr, cc = site[keep], rr[keep], cc[keep]
    n_inside = np.bincount(site, minlength=n_sites).astype(np.int64)

    # group by tile, keeping site order and each site's row-major order (a stable sort)
    n_tj = -(-cols // chunk_size)
    tile = (rr // chunk_size) * n_tj + cc // chunk_size
    if n_tj * -(-rows // chunk_size) <= np.iinfo(np.uint16).max:
        tile = tile.astype(np.uint16)  # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(tile, kind="stable")
    site, rr, cc, tile = site[order], rr[order], cc[order], tile[order]
    # a new tile, and a new segment wherever the tile or the site changes
    new_tile = np.ones(site.size, bool)
    new_tile[1:] = tile[1:] != tile[:-1]
    new = new_tile.copy()
    new[1:] |= site[1:] != site[:-1]
    n_tiles = np.bincount(site[new], minlength=n_sites)
    tiles = {}
    edges = [*np.flatnonzero(new_tile).tolist(), tile.size]
    for start, stop in pairwise(edges):
        i, j = divmod(int(tile[start]), n_tj)
        tile_w = min(chunk_size, cols - j * chunk_size)
        flat = (rr[start:stop] - i * chunk_size) * tile_w + (cc[start:stop] - j * chunk_size)
        first = np.flatnonzero(new[start:stop])
        sites = site[start:stop][first].astype(np.int32)
        tiles[(i, j)] = TileSites(
            flat=flat.astype(np.int32),
            starts=np.append(first, stop - start).astype(np.int64),
            sites=sites,
            shared=n_tiles[sites] > 1,
        )
    return SitePixels(tuple(site_ids), n_expected, n_inside, tiles, chunk_size)
