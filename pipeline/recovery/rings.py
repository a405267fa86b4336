"""Reference rings: the natural surroundings each site's recovery is measured against.

A drought year lowers every canopy's summer NDVI, a wet year raises it; judged alone,
a restored site would seem to fail in one and a bare one to improve in the other.
So each site also gets a *ring*: the land between ``RING_INNER_M`` and
``RING_OUTER_M`` around it, minus every site (each grown by ``RING_INNER_M``). Its
time series is gathered by the same zonal code in the same pass over the pixels (the
orchestrator adds the rings as pseudo-sites named ``<site_id>RING_SUFFIX``) and split
off again before any output is written, so ``timeseries.parquet`` keeps its contract.
The ring's median NDVI is that of its dominant surface (fields, grass or woods around
the pit): a road, a house or a pond in it moves the median little.

The recovery features then compare the site with its ring look by look (same date,
same atmosphere, same season, same year's weather): ``recovery_ratio`` is the site's
season peak NDVI over its ring's.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from shapely import STRtree
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

# The ring starts 20 m out (two pixels: mixed edge pixels and the site's own banks
# stay out) and ends 150 m out: close enough to share the site's soil and weather,
# wide enough (several hectares) that its median is its dominant land cover.
RING_INNER_M = 20.0
RING_OUTER_M = 150.0
RING_SUFFIX = "~ring"
# Written beside the outputs (not a contract output): the rings' series, same columns
# as ``timeseries.parquet`` with ``site_id`` the site whose ring it is.
RING_TIMESERIES_FILE = "ring_timeseries.parquet"


def ring_id(site_id: str) -> str:
    """The pseudo-site id of a site's ring."""
    return f"{site_id}{RING_SUFFIX}"


def ring_geometries(
    site_ids: Sequence[str], geometries: Sequence[BaseGeometry]
) -> tuple[list[str], list[BaseGeometry]]:
    """One ring per site (in a metric CRS): ids ``<site_id>~ring`` and their polygons.

    A ring that other sites swallow whole is empty; its statistics are then NaN and
    the features that use it are unknown.
    """
    grown = [g.buffer(RING_INNER_M) for g in geometries if g is not None]
    tree = STRtree(grown)  # each ring takes away only the sites near it, not the union
    ids, rings = [], []
    for site_id, geom in zip(site_ids, geometries, strict=True):
        ids.append(ring_id(str(site_id)))
        if geom is None or geom.is_empty:
            rings.append(geom)
            continue
        outer = geom.buffer(RING_OUTER_M)
        near = unary_union([grown[i] for i in sorted(tree.query(outer))])
        rings.append(outer.difference(near))
    return ids, rings


def split_rings(timeseries: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a gathered table into (sites, rings); ring rows get their site's id back."""
    is_ring = timeseries["site_id"].astype(str).str.endswith(RING_SUFFIX)
    sites = timeseries.loc[~is_ring].reset_index(drop=True)
    rings = timeseries.loc[is_ring].reset_index(drop=True)
    rings["site_id"] = rings["site_id"].str.slice(stop=-len(RING_SUFFIX))
    return sites, rings
