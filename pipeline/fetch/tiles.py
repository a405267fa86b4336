"""The archive's tiles: the sites' buffered boxes, merged, snapped to 20 m and cut small.

Tiles are in the UTM zone of the sites' centre and snapped to 20 m, so that the 10 m
and 20 m grids of Sentinel-2 line up with them. A tile id (``<epsg>_<left>_<top>``)
stays the same while the sites and the tiling settings do, so a rerun finds the items
it already has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

SNAP_M = 20.0


@dataclass(frozen=True)
class Tile:
    """One rectangle of the archive grid, small enough for one provider request."""

    tile_id: str
    """``<epsg>_<left>_<top>`` in metres: stable while the sites and tiling stay the same."""
    epsg: int
    """UTM zone the archive is kept in."""
    bounds: tuple[float, float, float, float]
    """(left, bottom, right, top) in ``epsg``, multiples of 20 m."""

    def shape(self, resolution: float) -> tuple[int, int]:
        """(rows, cols) at ``resolution`` metres."""
        left, bottom, right, top = self.bounds
        return round((top - bottom) / resolution), round((right - left) / resolution)

    def transform(self, resolution: float) -> Affine:
        return Affine(resolution, 0, self.bounds[0], 0, -resolution, self.bounds[3])

    def footprint_wgs84(self) -> Polygon:
        to_wgs = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        left, bottom, right, top = self.bounds
        xs = np.linspace(left, right, 5)
        ys = np.linspace(bottom, top, 5)
        ring = (
            [(x, bottom) for x in xs]
            + [(right, y) for y in ys[1:]]
            + [(x, top) for x in xs[::-1][1:]]
            + [(left, y) for y in ys[::-1][1:]]
        )
        lon, lat = to_wgs.transform([p[0] for p in ring], [p[1] for p in ring])
        return Polygon(zip(lon, lat, strict=True))


def utm_epsg(lon: float, lat: float) -> int:
    """The WGS84 / UTM zone EPSG code that contains (lon, lat)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def plan_tiles(
    sites: gpd.GeoDataFrame,
    *,
    buffer_m: float,
    max_tile_px: int,
    aoi: BaseGeometry | None = None,
) -> list[Tile]:
    """Cover the sites' buffered bounding boxes (and the AOI, if given) with tiles.

    Boxes that overlap are merged, so neighbouring sites share one request; each merged
    box is snapped outwards to 20 m and cut into tiles of at most ``max_tile_px`` 10 m
    pixels per side. All tiles are in the UTM zone of the sites' centre.
    """
    wgs = sites.to_crs(4326)
    centre = box(*wgs.total_bounds).centroid
    epsg = utm_epsg(centre.x, centre.y)
    geoms = list(sites.to_crs(epsg).geometry)
    if aoi is not None:
        geoms.append(gpd.GeoSeries([aoi], crs=4326).to_crs(epsg).iloc[0])
    boxes = [box(*g.bounds).buffer(buffer_m, join_style="mitre") for g in geoms if not g.is_empty]
    while True:  # merge until no two boxes overlap
        merged = unary_union(boxes)
        new = [box(*part.bounds) for part in getattr(merged, "geoms", [merged])]
        done = len(new) == len(boxes)
        boxes = new
        if done:
            break
    step = SNAP_M * max(1, (max_tile_px * 10) // int(SNAP_M))  # tile side, multiple of 20 m
    tiles: dict[str, Tile] = {}
    for b in sorted(boxes, key=lambda g: (-g.bounds[3], g.bounds[0])):
        left = math.floor(b.bounds[0] / SNAP_M) * SNAP_M
        bottom = math.floor(b.bounds[1] / SNAP_M) * SNAP_M
        right = math.ceil(b.bounds[2] / SNAP_M) * SNAP_M
        top = math.ceil(b.bounds[3] / SNAP_M) * SNAP_M
        y = top
        while y > bottom:
            x = left
            y_low = max(bottom, y - step)
            while x < right:
                x_high = min(right, x + step)
                tile_id = f"{epsg}_{int(x)}_{int(y)}"
                tiles.setdefault(tile_id, Tile(tile_id, epsg, (x, y_low, x_high, y)))
                x = x_high
            y = y_low
    return list(tiles.values())


def tiles_wgs84_bounds(tiles: Iterable[Tile]) -> tuple[float, float, float, float]:
    """Bounding box (lon/lat) of all tiles together."""
    union = unary_union([t.footprint_wgs84() for t in tiles])
    return tuple(float(v) for v in union.bounds)  # type: ignore[return-value]
