"""Reading one acquisition's pixels over one grid tile: every band, as stored, read once.

``read_tile`` reads every band of one acquisition over one tile of the analysis grid
(this is where pixels are decoded). 10 m assets are read as stored; coarser assets on
the grid's lines are read at their own pixels and repeated (exact nearest neighbour),
SCL stays at its own 20 m pixels (``TileRead.scl_zoom``: masks are worked out there);
assets in another CRS are warped. The items of one date are mosaicked, the first item
with data winning.

An asset whose header opened (``inputs.imagery.check_assets``) may still hold pixel
blocks that fail to decode. Such a window reads as no data, so the pixels are
unobserved, never clear, and the tile read names it in ``failures``
(``read_failures``): the orchestrator then leaves that acquisition out of the run and
saves no unit that saw the failure, so a transient fault is read again next time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from pipeline import schema
from pipeline.sources.base import (
    AssetRef,
    GridSpec,
    TileBand,
    TileRead,
    Zoom,
    upsample,
)
from pipeline.sources.sensors import LANDSAT_QA, qa_to_scl

log = logging.getLogger(__name__)
T = TypeVar("T")


# Open datasets are kept per thread (a dataset handle is not shared between threads):
# a tile task reads several windows of the same few files, and opening costs more
# than decoding a small window. On a grid of many tiles every file is read once per
# tile, so a computation keeps enough handles for a date's files across its tiles
# (``read_env``): on the 64-tile city scene, 256 per thread instead of 24 took the
# compute 149 -> 129 s and the peak 4.02 -> 3.73 GB with the 64 MB cache below. On a
# one-tile grid each file is read once, and more handles only hold memory (+136 MB).
_OPEN_PER_THREAD = 24
_OPEN_MAX = 256
_FILES_PER_DATE = 8  # the bands and SCL a date's tile read opens
_open_limit = _OPEN_PER_THREAD
_handles = threading.local()

GDAL_CACHE_MB = 64
"""GDAL's block cache while a run reads its tiles. GDAL keeps the decoded blocks of
open files up to its cache size, 5 % of the RAM by default (1.2 GB on a 24 GB
machine), and the tile reads keep their files open: 14 open 4096 px files read
whole held 370 MB, 140 MB with a 64 MB cache. Each block is decoded for the one
tile it lies in, except a 20 m block (SCL, SWIR), which the neighbouring 10 m tiles
of the same date share."""


# How an asset file is opened: by the inputs' checks, the grid's CRS and the tile reads alike.
# A GeoTIFF's CRS is built from its GeoKeys alone: GDAL's default also builds the CRS
# of the EPSG code they name from PROJ's database and compares the two, which took
# opening a 400 px asset 1.09 -> 0.64 ms (most of an open). The CRS is the same
# (equal, and the same EPSG code, on every test and real asset and on 13 CRSs written
# for the comparison: UTM, CGCS2000, Gauss-Kruger, Albers, custom PROJ strings).
OPEN_CONFIG = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GTIFF_SRS_SOURCE": "GEOKEYS"}


def open_asset(href: str) -> rasterio.DatasetReader:
    """``href`` opened for reading with ``OPEN_CONFIG`` (raises as ``rasterio.open``)."""
    with rasterio.Env(**OPEN_CONFIG):
        return rasterio.open(href)


@contextmanager
def read_env(tiles: int = 1) -> Iterator[None]:
    """The GDAL settings of a computation's tile reads on a grid of ``tiles`` tiles (the
    block cache's size; GDAL's cache is the process's, so this holds for every thread
    reading meanwhile), and how many files each thread keeps open meanwhile."""
    global _open_limit
    before = _open_limit
    _open_limit = min(_OPEN_MAX, max(_OPEN_PER_THREAD, _FILES_PER_DATE * tiles))
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20):
            yield
    finally:
        _open_limit = before


def _forget(href: str) -> None:
    """Close this thread's handles of ``href``: a failed read reopens the file next time."""
    cache: OrderedDict | None = getattr(_handles, "cache", None)
    if not cache:
        return
    for key in [k for k in cache if k[0] == href]:
        cache.pop(key).close()


def _open(href: str) -> rasterio.DatasetReader:
    cache: OrderedDict = getattr(_handles, "cache", None) or OrderedDict()
    _handles.cache = cache
    try:
        st = os.stat(href)
        key = (href, st.st_mtime_ns, st.st_size)
    except OSError:
        key = (href, 0, 0)
    src = cache.get(key)
    if src is not None:
        cache.move_to_end(key)
        return src
    src = open_asset(href)
    cache[key] = src
    while len(cache) > _open_limit:
        _, old = cache.popitem(last=False)
        old.close()
    return src


def _grid_factor(src: rasterio.DatasetReader, grid: GridSpec) -> tuple[int, int, int] | None:
    """(k, col, row) when the asset's pixels are k x k grid pixels starting at grid (row, col)."""
    t, res = src.transform, grid.resolution
    if src.crs != grid.crs or t.b != 0 or t.d != 0 or t.a <= 0 or t.e != -t.a:
        return None
    k = t.a / res
    ox = (t.c - grid.transform.c) / res
    oy = (grid.transform.f - t.f) / res
    if not all(abs(v - round(v)) < 1e-6 for v in (k, ox, oy)) or round(k) < 1:
        return None
    return round(k), round(ox), round(oy)


@dataclass(frozen=True)
class ReadFailure:
    """One asset window that could not be read (its header opened, its pixels did not)."""

    href: str
    band: str
    error: str
    """The reader's message: GDAL's error and its causes, first line of each."""


@dataclass(frozen=True)
class LocalTileRead(TileRead):
    """A ``TileRead`` that also names the asset windows that failed to read."""

    failures: tuple[ReadFailure, ...] = ()
    """Windows read as no data because they could not be decoded; empty when all read."""


def read_failures(read: TileRead) -> tuple[ReadFailure, ...]:
    """The windows of ``read`` that failed to decode (none for a read from elsewhere)."""
    return getattr(read, "failures", ())


def _read_native(
    ref: AssetRef,
    grid: GridSpec,
    rows: tuple[int, int],
    cols: tuple[int, int],
    resampling: Resampling = Resampling.nearest,
) -> tuple[np.ndarray, Zoom] | str:
    """One asset over grid rows/cols ``[r0, r1) x [c0, c1)``, as stored, at its own pixels.

    An asset whose pixels are whole multiples (``k``) of the grid's, on its lines, is
    read over the covering window at its own resolution: ``(native, (k, dr, dc))`` with
    grid pixel ``(r0 + i, c0 + j)`` in ``native[(i + dr) // k, (j + dc) // k]`` (see
    ``upsample``). Any other asset (another CRS, pixels off the grid's lines) is warped
    onto the grid with ``resampling`` (bilinear for reflectance, nearest for classes),
    zoom ``(1, 0, 0)``. Pixels beyond the asset hold its nodata. An asset that fails to open
    or decode gives the reader's message instead.
    """
    (r0, r1), (c0, c1) = rows, cols
    try:
        src = _open(ref.href)
        fill = ref.nodata if ref.nodata is not None else 0
        fit = _grid_factor(src, grid)
        if fit is None:
            transform = grid.transform * Affine.translation(c0, r0)
            with WarpedVRT(
                src,
                crs=grid.crs,
                transform=transform,
                width=c1 - c0,
                height=r1 - r0,
                resampling=resampling,
                nodata=fill,
                **({} if ref.nodata is None else {"src_nodata": ref.nodata}),
            ) as vrt:
                return _decoded(ref, vrt.read(1)), (1, 0, 0)
        k, ox, oy = fit
        # the asset's pixels covering the request, and the part of them it holds
        n_r0, n_r1 = (r0 - oy) // k, (r1 - 1 - oy) // k + 1
        n_c0, n_c1 = (c0 - ox) // k, (c1 - 1 - ox) // k + 1
        zoom = (k, r0 - oy - n_r0 * k, c0 - ox - n_c0 * k)
        s_r0, s_r1 = max(n_r0, 0), min(n_r1, src.height)
        s_c0, s_c1 = max(n_c0, 0), min(n_c1, src.width)
        if s_r0 >= s_r1 or s_c0 >= s_c1:
            return _decoded(ref, np.full((n_r1 - n_r0, n_c1 - n_c0), fill, src.dtypes[0])), zoom
        data = src.read(1, window=Window(s_c0, s_r0, s_c1 - s_c0, s_r1 - s_r0))
        if (s_r0, s_r1, s_c0, s_c1) == (n_r0, n_r1, n_c0, n_c1):
            return _decoded(ref, data), zoom
        out = np.full((n_r1 - n_r0, n_c1 - n_c0), fill, src.dtypes[0])
        out[s_r0 - n_r0 : s_r1 - n_r0, s_c0 - n_c0 : s_c1 - n_c0] = data
        return _decoded(ref, out), zoom
    except (RasterioError, OSError) as exc:
        _forget(ref.href)
        reason = _reason(exc)
        log.warning(
            "asset %s: grid rows %d-%d, cols %d-%d unreadable: %s", ref.href, r0, r1, c0, c1, reason
        )
        return reason


def _decoded(ref: AssetRef, stored: np.ndarray) -> np.ndarray:
    """Stored values as our band's (Landsat QA bits as SCL classes, 0 for no data)."""
    return qa_to_scl(stored) if ref.decode == LANDSAT_QA else stored


def _read_asset(
    ref: AssetRef, grid: GridSpec, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray | str:
    """One asset over grid rows/cols ``[r0, r1) x [c0, c1)`` as stored, on the grid.

    Coarser assets on the grid's lines repeat their pixels (exact nearest neighbour, no
    resampling pass); the reader's message when the asset cannot be read.
    """
    got = _read_native(ref, grid, rows, cols, Resampling.bilinear)
    if isinstance(got, str):
        return got
    native, zoom = got
    return upsample(native, zoom, (rows[1] - rows[0], cols[1] - cols[0]))


def _reason(exc: BaseException) -> str:
    """What went wrong, in GDAL's words: rasterio puts the block's error in the cause."""
    lines = []
    seen: BaseException | None = exc
    while seen is not None and len(lines) < 3:
        text = str(seen).strip()
        if text and "see previous exception" not in text.lower():
            lines.append(text.splitlines()[0])
        seen = seen.__cause__ or seen.__context__
    return "; ".join(lines) or type(exc).__name__


def _read_items(
    refs: Sequence[AssetRef], read: Callable[[AssetRef], T | str], failures: list[tuple[str, str]]
) -> list[tuple[AssetRef, T]]:
    """``read(ref)`` of each item of one acquisition; the unreadable ones (``read`` gave
    the reader's message) go to ``failures`` as ``(href, reason)``."""
    parts = []
    for ref in refs:
        got = read(ref)
        if isinstance(got, str):
            failures.append((ref.href, got))
        else:
            parts.append((ref, got))
    return parts


def _fill_holes(band: TileBand, more: Sequence[np.ndarray]) -> None:
    """Mosaic in place: the band's pixels without data take those of the next items."""
    for values in more:
        hole = ~band.has_data()
        band.values[hole] = values[hole]


def _read_band(
    refs: Sequence[AssetRef],
    grid: GridSpec,
    rows: tuple[int, int],
    cols: tuple[int, int],
    failures: list[tuple[str, str]],
) -> TileBand | None:
    """One band of one acquisition: its items mosaicked (the first item with data wins).

    An item whose window fails to read adds no data and ``(href, reason)`` to ``failures``.
    """
    parts = _read_items(refs, lambda ref: _read_asset(ref, grid, rows, cols), failures)
    if not parts:
        return None
    ref0, first = parts[0]
    stored_alike = {(r.scale, r.offset, r.nodata) for r, _ in parts}
    if len(stored_alike) == 1:
        band = TileBand(first, ref0.scale, ref0.offset, ref0.nodata)
        _fill_holes(band, [more for _, more in parts[1:]])
        return band
    # items of one date stored with different offsets: mosaic as reflectance
    out = TileBand(first, ref0.scale, ref0.offset, ref0.nodata).reflectance()
    for ref, more in parts[1:]:
        hole = np.isnan(out)
        out[hole] = TileBand(more, ref.scale, ref.offset, ref.nodata).reflectance()[hole]
    return TileBand(out)


def _read_scl(
    refs: Sequence[AssetRef],
    grid: GridSpec,
    rows: tuple[int, int],
    cols: tuple[int, int],
    failures: list[tuple[str, str]],
) -> tuple[np.ndarray, Zoom] | None:
    """One acquisition's scene classes over the window, items mosaicked (the first item
    with data wins): at their own pixels when every item lies on the same lattice of
    coarser pixels, else on the grid. Unreadable items add ``(href, reason)`` to
    ``failures``."""
    got = _read_items(refs, lambda ref: _read_native(ref, grid, rows, cols), failures)
    if not got:
        return None
    parts = [(ref, native, zoom) for ref, (native, zoom) in got]
    if len({(zoom, native.shape) for _, native, zoom in parts}) > 1:
        shape = (rows[1] - rows[0], cols[1] - cols[0])
        parts = [(ref, upsample(native, zoom, shape), (1, 0, 0)) for ref, native, zoom in parts]
    ref0, first, zoom = parts[0]
    nodata = 0 if ref0.decode else ref0.nodata  # decoded classes mark no data with 0
    _fill_holes(TileBand(first, nodata=nodata), [more for _, more, _ in parts[1:]])
    return first.astype(np.uint8, copy=False), zoom


def read_tile(
    refs: dict[str, Sequence[AssetRef]],
    grid: GridSpec,
    box: tuple[int, int, int, int],
    *,
    halo: int = 0,
) -> TileRead:
    """Read every band of one acquisition over one grid tile (this reads pixels).

    ``refs`` maps band names to the acquisition's assets (an empty sequence: the
    acquisition lacks the band; ``scl`` absent: the cube has no SCL). SCL is read
    ``halo`` pixels wider on every side so masks can be grown across tile edges.
    A window that fails to decode reads as no data (unobserved: a missing band or
    SCL 0 leaves no pixel clear) and is named in the result's ``failures``.
    """
    y0, x0, h, w = box
    bands, missing = {}, []
    failed: list[ReadFailure] = []
    for band, band_refs in refs.items():
        if band == schema.SCL:
            continue
        errors: list[tuple[str, str]] = []
        got = _read_band(band_refs, grid, (y0, y0 + h), (x0, x0 + w), errors)
        failed.extend(ReadFailure(href, band, reason) for href, reason in errors)
        if got is not None and not errors:
            bands[band] = got
        else:
            # With one item's window unreadable the band is not whole: no pixel of the
            # tile counts as observed on this date.
            missing.append(band)
    scl, inside, scl_zoom = None, None, (1, 0, 0)
    if schema.SCL in refs:
        rows, cols = (y0 - halo, y0 + h + halo), (x0 - halo, x0 + w + halo)
        errors = []
        scl_read = _read_scl(refs[schema.SCL], grid, rows, cols, errors)
        failed.extend(ReadFailure(href, schema.SCL, reason) for href, reason in errors)
        scl = np.zeros((h + 2 * halo, w + 2 * halo), np.uint8)
        if scl_read is not None and not errors:
            scl, scl_zoom = scl_read
        if halo:
            r = np.arange(*rows)
            c = np.arange(*cols)
            ok_r = (r >= 0) & (r < grid.shape[0])
            ok_c = (c >= 0) & (c < grid.shape[1])
            if not (ok_r.all() and ok_c.all()):
                inside = ok_r[:, np.newaxis] & ok_c[np.newaxis, :]
    return LocalTileRead(
        box=box,
        bands=bands,
        scl=scl,
        halo=halo,
        missing=tuple(missing),
        inside=inside,
        scl_zoom=scl_zoom,
        failures=tuple(failed),
    )
