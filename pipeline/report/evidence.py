"""Image evidence of a flag: what the pages show of it, and which looks they show.

Both pages that list flags (the run's ``report.html`` and a county's package) show, per
flag, the clearest look of its surroundings before ``first_detected`` and the clearest
look between ``confirmed`` (or ``first_detected``) and ``last_seen``. This module holds
that evidence (``FlagEvidence``, ``ChipLook``), the chip window around a flag and the
choice of looks, all without reading a pixel; ``evidence_reads`` reads the looks and
``evidence_charts`` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import shapely.geometry
from affine import Affine
from shapely.geometry.base import BaseGeometry

from pipeline.sources.base import GridSpec

CHIP_BUFFER_M = 150.0  # context around a flag: ~15 pixels, enough to see the pit's edges
CHIP_MIN_PX = 60  # a chip is at least 600 m x 600 m at 10 m so a small dig has surroundings


Window = tuple[int, int, int, int]
"""(row0, row1, col0, col1) on the run's grid."""


@dataclass(frozen=True)
class ChipLook:
    """One true-colour look of a flag's surroundings."""

    date: date
    """Acquisition date."""
    clear_fraction: float
    """Share of the chip window's pixels that are clear on that date."""
    rgb: np.ndarray
    """(y, x, 3) red, green, blue reflectance (not cloud-masked); NaN where no data."""


@dataclass
class FlagEvidence:
    """What the pages show of one flag besides its properties."""

    flag_id: str
    outline: list[np.ndarray]
    """Rings of the flag's polygon in chip pixel coordinates (column, row), float."""
    resolution_m: float
    """Ground size of one chip pixel (m)."""
    before: ChipLook | None = None
    after: ChipLook | None = None
    trajectory_dates: list[date] | None = None
    """Dates of the mostly-clear looks over the flag (the package only)."""
    trajectory_ndvi: np.ndarray | None = None
    trajectory_bsi: np.ndarray | None = None


def chip_window(geom: BaseGeometry, grid: GridSpec) -> Window:
    """(row0, row1, col0, col1) of the chip around ``geom`` (grid CRS), inside the grid.

    The flag's bounds plus ``CHIP_BUFFER_M``, grown about its centre to at least
    ``CHIP_MIN_PX`` pixels a side (less only where the grid itself is smaller).
    """
    res = grid.resolution
    left, top = grid.transform.c, grid.transform.f
    x0, y0, x1, y1 = geom.buffer(CHIP_BUFFER_M).bounds
    rows, cols = grid.shape

    def span(lo: float, hi: float, size: int) -> tuple[int, int]:
        a, b = math.floor(lo), math.ceil(hi)
        if b - a < CHIP_MIN_PX:
            grow = CHIP_MIN_PX - (b - a)
            a, b = a - grow // 2, b + grow - grow // 2
        if b - a >= size:
            return 0, size
        shift = max(0, -a) - max(0, b - size)
        return a + shift, b + shift

    c0, c1 = span((x0 - left) / res, (x1 - left) / res, cols)
    r0, r1 = span((top - y1) / res, (top - y0) / res, rows)
    return r0, r1, c0, c1


def pick_look(clear_fraction: np.ndarray, candidates: np.ndarray) -> int | None:
    """Index of the clearest candidate look; ties go to the later look (nearest the change)."""
    idx = np.flatnonzero(candidates)
    if not len(idx):
        return None
    best = np.round(clear_fraction[idx], 3)
    return int(idx[np.flatnonzero(best == best.max())[-1]])


def _look_spans(
    days: Sequence[date], props: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Masks over ``days`` for a flag with contract ``props``: before ``first_detected``;
    from ``confirmed`` (or ``first_detected``) to ``last_seen``; from ``first_detected``
    on. None when the flag has no ``first_detected`` or there are no days."""
    first = as_date(props.get("first_detected"))
    if first is None or not len(days):
        return None
    d = np.array(days, dtype="datetime64[D]")
    after_from = as_date(props.get("confirmed")) or first
    last = as_date(props.get("last_seen")) or d[-1].item()
    in_dig = (d >= np.datetime64(after_from)) & (d <= np.datetime64(last))
    return d < np.datetime64(first), in_dig, d >= np.datetime64(first)


def pick_looks(
    days: Sequence[date], clear_fraction: np.ndarray, props: Mapping[str, Any]
) -> tuple[int | None, int | None]:
    """(before, after) look indices for a flag with contract ``props``."""
    spans = _look_spans(days, props)
    if spans is None:
        return None, None
    before, in_dig, from_first = spans
    i_before = pick_look(clear_fraction, before)
    i_after = pick_look(clear_fraction, in_dig)
    if i_after is None:
        i_after = pick_look(clear_fraction, from_first)
    return i_before, i_after


def as_date(value: Any) -> date | None:
    """An ISO date (or datetime) string as a date; None when missing or unreadable."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def flag_geometry(feature: Mapping[str, Any], grid: GridSpec) -> BaseGeometry | None:
    """The flag's polygon (GeoJSON, WGS84) in the grid's CRS; None without geometry."""
    geometry = feature.get("geometry")
    if not geometry:
        return None
    try:
        geom = shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(grid.crs).iloc[0]


def outline_rings(geom: BaseGeometry, transform: Affine) -> list[np.ndarray]:
    """Rings of ``geom`` (grid CRS) in the pixel coordinates (column, row) of ``transform``."""
    inverse = ~transform
    rings = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords, dtype=float)[:, :2]
            cols, rows = inverse * (xy[:, 0], xy[:, 1])
            rings.append(np.column_stack([cols, rows]))
    return rings


# Looks read per side of a flag's change: the clearest of the nearest few is shown (at a
# 5 to 10 day revisit, about two months either side), so a city's flags read a few
# dates each, not the whole catalog.
LOOK_CANDIDATES = 8


def candidate_looks(days: Sequence[date], props: Mapping[str, Any]) -> np.ndarray:
    """Which dates may give a flag's looks (``pick_looks``): the ``LOOK_CANDIDATES``
    nearest the change in each of its spans, the last ones before ``first_detected``
    and the first ones of the others."""
    chosen = np.zeros(len(days), bool)
    spans = _look_spans(days, props)
    if spans is None:
        return chosen
    before, in_dig, from_first = spans
    chosen[np.flatnonzero(before)[-LOOK_CANDIDATES:]] = True
    chosen[np.flatnonzero(in_dig)[:LOOK_CANDIDATES]] = True
    chosen[np.flatnonzero(from_first)[:LOOK_CANDIDATES]] = True
    return chosen
