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
from shapely.geometry import box

from pipeline import schema
from pipeline.config import DetectionConfig
from pipeline.errors import InputError
from pipeline.inputs.records import InputWarning
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
    """Raise ``InputError`` naming the first site outside the imagery (or saying all are)."""
    outside = sites_outside_imagery(sites, grid)
    if outside and len(outside) == len(sites):
        raise InputError(
            f"no site overlaps the imagery ({outside[0].reason.split('(', 1)[1]}",
            file=sites.attrs.get("source"),
            field="geometry",
        )
    if outside:
        raise outside[0]


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
