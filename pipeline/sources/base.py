"""What every imagery source provides: scenes, a target grid, and a lazy cube on it.

A *scene* is one acquisition (one or more STAC items of the same date, e.g. tiles);
its assets are already resolved to absolute paths with their scale and offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS


@dataclass(frozen=True)
class AssetRef:
    """One raster asset of one item."""

    href: str
    """Absolute path or URL GDAL can open."""
    scale: float = 1.0
    """Multiplier from stored integers to physical units (reflectance)."""
    offset: float = 0.0
    """Added after scaling (-0.1 for processing baseline 04.00 and later)."""
    nodata: float | None = 0
    """Stored value that means no data."""


@dataclass(frozen=True)
class Scene:
    """One acquisition date: the items of that date and their assets by band name."""

    date: np.datetime64
    """Acquisition time (UTC, nanosecond precision)."""
    item_ids: tuple[str, ...]
    """STAC ids of the items making up this acquisition."""
    assets: tuple[dict[str, AssetRef], ...]
    """Per item, asset key (our band names) -> reference."""
    epsg: int | None = None
    """The items' native CRS."""
    cloud_cover: float | None = None
    """Scene cloud cover in percent, when the catalog gives one."""
    bounds: tuple[float, float, float, float] | None = None
    """Native-CRS bounds of the union of the items, when known."""


@dataclass(frozen=True)
class GridSpec:
    """The 10 m analysis grid every band is put on."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]
    """(rows, cols)."""

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.shape[1]
        bottom = top + self.transform.e * self.shape[0]
        return (left, bottom, right, top)

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates along y and x."""
        rows, cols = self.shape
        x = self.transform.c + (np.arange(cols) + 0.5) * self.transform.a
        y = self.transform.f + (np.arange(rows) + 0.5) * self.transform.e
        return {"y": y, "x": x}
