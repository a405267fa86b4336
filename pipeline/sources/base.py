"""What every imagery source provides: scenes, a target grid, and a lazy cube on it.

A *scene* is one acquisition (one or more STAC items of the same date, e.g. tiles);
its assets are already resolved to absolute paths with their scale and offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from dask.sizeof import sizeof
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
    decode: str | None = None
    """How stored values become our band's: ``None`` as they are; ``landsat_qa``:
    Landsat ``qa_pixel`` bits turned into SCL classes (``sources.sensors.qa_to_scl``)."""


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
    """Native-CRS bounds of the union of the items, when known (and they share a CRS)."""
    footprints: tuple[tuple[str, tuple[float, float, float, float]], ...] = ()
    """Per item whose extent is known: its CRS (``EPSG:n`` or WKT) and its bounds there.
    Items of one date may lie in different CRSs (tiles of two UTM zones)."""
    sensor: str = "sentinel-2"
    """Which instrument family took it: ``sentinel-2`` or ``landsat``."""


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


@dataclass(frozen=True)
class TileBand:
    """One band of one acquisition over one grid tile, as stored or as reflectance.

    Most tiles keep the stored integers (``scale``/``offset``/``nodata`` say how to
    read them), so that a consumer needing a few pixels converts only those. A
    mosaic of items with different scales is converted on reading (``scale`` 1,
    ``offset`` 0, NaN for no data).
    """

    values: np.ndarray
    """(rows, cols) stored integers, or float32 reflectance."""
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    """Stored value meaning no data (``None``: NaN marks it, or every pixel has data)."""

    def has_data(self, values: np.ndarray | None = None) -> np.ndarray:
        """True where the pixel (of ``values``, default the whole tile) has data."""
        v = self.values if values is None else values
        if v.dtype.kind == "f":
            return np.isfinite(v)
        if self.nodata is None:
            return np.ones(v.shape, bool)
        return v != self.nodata

    def reflectance(
        self, values: np.ndarray | None = None, *, mark_nodata: bool = True
    ) -> np.ndarray:
        """float32 reflectance of ``values`` (default the whole tile), NaN for no data.

        ``mark_nodata=False`` skips the NaN marking, for callers that mask no-data
        pixels themselves (with ``has_data``).
        """
        v = self.values if values is None else values
        if v.dtype.kind == "f" and self.scale == 1.0 and self.offset == 0.0:
            return v.astype(np.float32, copy=values is None)
        out = v.astype(np.float32)
        out *= np.float32(self.scale)
        out += np.float32(self.offset)
        if mark_nodata and v.dtype.kind != "f" and self.nodata is not None:
            out[v == self.nodata] = np.nan
        return out


Zoom = tuple[int, int, int]
"""``(k, dr, dc)``: an array of coarser pixels, each ``k`` x ``k`` grid pixels; grid pixel
``(i, j)`` of the window lies in coarse pixel ``((i + dr) // k, (j + dc) // k)``."""


def upsample(native: np.ndarray, zoom: Zoom, shape: tuple[int, int]) -> np.ndarray:
    """The grid window ``shape`` of a coarser array (nearest neighbour: pixels repeated).

    Written as ``k`` strided copies into the output: ``np.repeat`` along the last axis
    copies one element at a time and is several times slower.
    """
    k, dr, dc = zoom
    if k == 1:
        if native.shape == shape:
            return native
        return np.ascontiguousarray(native[dr : dr + shape[0], dc : dc + shape[1]])
    rows, cols = native.shape
    out = np.empty((rows, k, cols, k), native.dtype)
    for j in range(k):
        out[:, 0, :, j] = native
    out[:, 1:] = out[:, :1]
    out = out.reshape(rows * k, cols * k)
    if out.shape == shape:
        return out
    return np.ascontiguousarray(out[dr : dr + shape[0], dc : dc + shape[1]])


@dataclass(frozen=True)
class TileRead:
    """Every band of one acquisition over one tile of the grid: what one read task returns."""

    box: tuple[int, int, int, int]
    """(row, col, rows, cols) of the tile on the grid."""
    bands: dict[str, TileBand]
    """Reflectance bands by name; a band the acquisition lacks is absent."""
    scl: np.ndarray | None
    """uint8 scene classes over the tile and ``halo`` pixels around it on every side
    (0 = no data), at their own resolution (``scl_zoom``); ``None`` when the cube has no
    SCL at all."""
    halo: int
    missing: tuple[str, ...] = ()
    """Bands the cube carries that this acquisition lacks here: no pixel of it has data."""
    inside: np.ndarray | None = None
    """Bool, the halo'd window's shape: which of its pixels lie on the grid (``None``: all)."""
    scl_zoom: Zoom = (1, 0, 0)
    """How ``scl`` lies on the halo'd window: scene classes are read at their own 20 m
    pixels and put on the 10 m grid by ``scl_on_grid`` (masks are worked out before)."""

    def scl_on_grid(self, native: np.ndarray | None = None) -> np.ndarray:
        """``native`` (default ``scl``; any array of its shape) on the halo'd 10 m window."""
        h, w = self.box[2] + 2 * self.halo, self.box[3] + 2 * self.halo
        return upsample(self.scl if native is None else native, self.scl_zoom, (h, w))

    @property
    def nbytes(self) -> int:
        arrays = [b.values for b in self.bands.values()] + [self.scl, self.inside]
        return sum(a.nbytes for a in arrays if a is not None)


# Dask places tasks near their largest inputs and decides what to keep by size: let it
# see the arrays inside a tile read (otherwise a worker may fetch a whole tile read
# from another to save moving a small pixel list).
sizeof.register(TileRead)(lambda read: read.nbytes)
