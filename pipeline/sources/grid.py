"""The analysis grid: a projected CRS in metres, snapped to the resolution, over the area.

Every statistic, area and mapping unit of a run is measured on this grid, so its CRS is
always projected, never the degrees of EPSG:4326 in which many catalogs arrive (a
10 m pixel there would be 10 degrees wide). The CRS is ``grid.crs`` when the config
sets one, else the UTM zone of the area of interest's centroid (or the sites', when no
area is given). Items in any other CRS (EPSG:4326, a neighbouring UTM zone, a national
CRS such as CGCS2000 Gauss-Kruger) are warped onto it when read (``sources.reads``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from shapely.geometry.base import BaseGeometry

from pipeline.errors import InputError
from pipeline.sources.base import GridSpec, Scene
from pipeline.sources.reads import open_asset


def grid_crs(
    configured: str | None,
    *,
    aoi: BaseGeometry | None = None,
    sites: gpd.GeoDataFrame | None = None,
) -> CRS:
    """The grid's CRS: ``configured`` (a projected CRS), else the UTM zone of the area
    of interest's centroid (EPSG:4326 geometry), else of the sites' centroid.
    """
    if configured:
        crs = CRS.from_user_input(configured)
        if not crs.is_projected:
            raise InputError(
                f"{configured} is not a projected CRS: areas and the 10 m grid need metres",
                field="grid.crs",
            )
        return crs
    if aoi is not None:
        where = gpd.GeoSeries([aoi], crs="EPSG:4326")
    elif sites is not None and len(sites):
        where = sites.geometry.to_crs("EPSG:4326")
    else:
        raise InputError("no area of interest nor sites to place the grid", field="grid.crs")
    utm = where.estimate_utm_crs()
    epsg = utm.to_epsg()
    return CRS.from_epsg(epsg) if epsg else CRS.from_wkt(utm.to_wkt())


def _footprints_in(scene: Scene, crs: CRS) -> list[tuple[float, ...]]:
    """Each item's bounds in ``crs``: an item in another CRS (a neighbouring UTM zone,
    degrees) is reprojected, so it widens the grid where it lies, not by its raw numbers."""
    if scene.footprints:
        out = []
        for item_crs, bounds in scene.footprints:
            src = CRS.from_user_input(item_crs)
            out.append(bounds if src == crs else transform_bounds(src, crs, *bounds))
        return out
    if scene.bounds is None:
        return []
    if scene.epsg is None or CRS.from_epsg(scene.epsg) == crs:
        return [scene.bounds]
    return [transform_bounds(CRS.from_epsg(scene.epsg), crs, *scene.bounds)]


def _scene_crs(scenes: Sequence[Scene]) -> CRS:
    """The scenes' most common CRS (their files' when the items do not say)."""
    epsgs = [s.epsg for s in scenes if s.epsg is not None]
    if epsgs:
        return CRS.from_epsg(max(set(epsgs), key=epsgs.count))
    with open_asset(next(iter(scenes[0].assets[0].values())).href) as src:
        return src.crs


def analysis_grid(
    scenes: Sequence[Scene],
    *,
    resolution: float = 10.0,
    bounds: tuple[float, float, float, float] | None = None,
    crs: CRS | None = None,
) -> GridSpec:
    """The analysis grid in ``crs`` (default: the scenes' common CRS), snapped to
    ``resolution``.

    ``bounds`` (in ``crs``) limits it to an area of interest; default the union of all
    items' extents. A geographic ``crs`` is refused: the run passes ``grid_crs``.
    """
    if not scenes:
        raise InputError("no acquisitions in the selected period", field="period")
    if crs is None:
        crs = _scene_crs(scenes)
    if not crs.is_projected:
        raise InputError(
            f"the analysis grid needs a projected CRS, not {crs.to_string()}: set grid.crs",
            field="grid.crs",
        )
    if bounds is None:
        known = [b for s in scenes for b in _footprints_in(s, crs)]
        if not known:
            raise InputError("cannot tell the catalog's extent", field="proj:transform")
        bounds = (
            min(b[0] for b in known),
            min(b[1] for b in known),
            max(b[2] for b in known),
            max(b[3] for b in known),
        )
    left = math.floor(bounds[0] / resolution) * resolution
    bottom = math.floor(bounds[1] / resolution) * resolution
    right = math.ceil(bounds[2] / resolution) * resolution
    top = math.ceil(bounds[3] / resolution) * resolution
    shape = (round((top - bottom) / resolution), round((right - left) / resolution))
    return GridSpec(
        crs=crs, transform=Affine(resolution, 0, left, 0, -resolution, top), shape=shape
    )
