"""Checks of the sites against the imagery and the mapping unit, before a run computes.

- A site entirely outside the imagery can get no figure at all: that is an error
  (usually a wrong CRS or a typo in a coordinate), named by its record.
- A site partly outside is kept; its figures cover the part inside and the coverage
  is reported (the run measures it per pixel, ``validate`` by area).
- A site smaller than the minimum mapping unit is kept with a warning: no flag can be
  smaller than the unit, and its statistics rest on a handful of pixels.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

from pipeline import schema
from pipeline.config import DetectionConfig
from pipeline.errors import InputError, NoValidData
from pipeline.inputs.records import InputWarning, first_names
from pipeline.sources.base import GridSpec


def _records(sites: gpd.GeoDataFrame) -> list[str]:
    records = sites.attrs.get("records")
    if records is not None and len(records) == len(sites):
        return list(records)
    return [f"feature {i} (site_id={sid})" for i, sid in enumerate(sites["site_id"])]


def site_coverage(sites: gpd.GeoDataFrame, grid: GridSpec) -> np.ndarray:
    """Share of each site's area inside the grid's extent (0..1), in site order."""
    projected = sites.geometry.to_crs(grid.crs)
    area = projected.area.to_numpy()
    inside = projected.intersection(box(*grid.bounds)).area.to_numpy()
    # A site far outside the grid's CRS zone may project to non-finite coordinates.
    ok = np.isfinite(area) & np.isfinite(inside) & (area > 0)
    return np.divide(inside, area, out=np.zeros_like(area), where=ok).clip(0, 1)


def sites_outside_imagery(sites: gpd.GeoDataFrame, grid: GridSpec) -> list[InputError]:
    """One error per site that does not overlap the imagery at all."""
    coverage = site_coverage(sites, grid)
    file = sites.attrs.get("source")
    return [
        InputError(
            f"the site lies entirely outside the imagery (grid {grid.crs.to_string()} bounds "
            f"{tuple(round(b) for b in grid.bounds)}); check its coordinates and CRS",
            file=file,
            record=record,
            field="geometry",
        )
        for record, cov in zip(_records(sites), coverage, strict=True)
        if cov <= 0
    ]


def require_sites_on_imagery(sites: gpd.GeoDataFrame, grid: GridSpec) -> None:
    """Raise ``InputError`` when no site overlaps the imagery. Sites entirely outside
    it are kept: the run names them once it has seen their pixels
    (``require_site_values``), and ``validate`` names them beforehand."""
    outside = sites_outside_imagery(sites, grid)
    if outside and len(outside) == len(sites):
        raise InputError(
            f"no site overlaps the imagery ({outside[0].reason.split('(', 1)[1]}",
            file=sites.attrs.get("source"),
            field="geometry",
        )


def partial_coverage_warnings(sites: gpd.GeoDataFrame, grid: GridSpec) -> list[InputWarning]:
    """One warning per site partly outside the imagery (by area; the run counts pixels)."""
    coverage = site_coverage(sites, grid)
    file = sites.attrs.get("source")
    return [
        InputWarning(
            file,
            record,
            "geometry",
            f"site only {cov:.0%} inside the imagery; figures cover that part",
        )
        for record, cov in zip(_records(sites), coverage, strict=True)
        if 0 < cov < 0.999
    ]


def sliver_warnings(
    sites: gpd.GeoDataFrame, crs: object, detection: DetectionConfig
) -> list[InputWarning]:
    """One warning per site smaller than the minimum mapping unit that applies to it.

    Closed illegal sites use ``closed_site_mmu_ha`` (any digging there matters), the
    others ``min_mapping_unit_ha``. ``crs`` must be projected in metres (the grid's).
    """
    area_m2 = sites.geometry.to_crs(crs).area.to_numpy()
    closed = ((sites["category"] == "illegal") & (sites["status"] == "closed")).to_numpy()
    unit_ha = np.where(closed, detection.closed_site_mmu_ha, detection.min_mapping_unit_ha)
    file = sites.attrs.get("source")
    out = []
    for record, area, unit in zip(_records(sites), area_m2, unit_ha, strict=True):
        if area < unit * schema.M2_PER_HA:
            out.append(
                InputWarning(
                    file,
                    record,
                    "geometry",
                    f"site area {area:.0f} m2 is below the minimum mapping unit "
                    f"({unit:g} ha): kept, but no flag can be that small and its figures "
                    "rest on a few pixels",
                )
            )
    return out


def require_site_values(
    timeseries: pd.DataFrame, sites: gpd.GeoDataFrame, *, catalog: str
) -> list[InputWarning]:
    """Warnings naming the sites the imagery gave nothing; ``NoValidData`` if none got
    a single valid value (every output would be empty).

    A site with no pixel on the grid lies outside the imagery's grid or is thinner than
    a pixel; a site with pixels but no valid one on any date lies where every item has
    no data (outside the scenes' footprints), or under cloud on every date.
    """
    file = sites.attrs.get("source")
    ids = [str(s) for s in sites["site_id"]]
    per_site = timeseries.groupby("site_id")
    n_pixels = per_site["n_pixels"].max().reindex(ids, fill_value=0)
    clear = (timeseries["valid_fraction"].fillna(0) * timeseries["n_pixels"]).groupby(
        timeseries["site_id"]
    )
    n_clear = clear.sum().reindex(ids, fill_value=0)
    no_pixel = [sid for sid in ids if n_pixels[sid] <= 0]
    no_value = [sid for sid in ids if n_pixels[sid] > 0 and n_clear[sid] <= 0]
    if len(no_pixel) + len(no_value) == len(ids):
        if no_value:
            why = (
                "every site pixel is no data or masked (cloud, shadow) on every date: the "
                "imagery does not cover the sites, or their CRS puts them elsewhere"
            )
        else:
            why = (
                "no site has a pixel on the analysis grid: the imagery does not overlap the "
                "sites, or their CRS puts them elsewhere"
            )
        raise NoValidData(f"no site has a single valid value; {why}", file=catalog)
    out = []
    if no_pixel:
        out.append(
            InputWarning(
                file,
                f"sites {first_names(no_pixel, 10)}",
                "geometry",
                f"{len(no_pixel)} site(s) have no pixel on the analysis grid (outside the "
                "imagery, or thinner than a pixel): no figures; check their coordinates and CRS",
            )
        )
    if no_value:
        out.append(
            InputWarning(
                file,
                f"sites {first_names(no_value, 10)}",
                "geometry",
                f"{len(no_value)} site(s) have no valid pixel on any date (no data, cloud or "
                "shadow): no figures",
            )
        )
    return out
