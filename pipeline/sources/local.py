"""A local static STAC catalog of GeoTIFF/COG assets -> scenes -> a lazy, dask-backed cube.

``read_catalog`` walks the catalog (path or ``file://`` URL) with pystac and groups
items by acquisition time into ``Scene``s, taking scale/offset/nodata from each
asset's ``raster:bands``. ``analysis_grid`` picks the 10 m grid over the area of
interest. ``load_cube`` builds one dask task per (date, spatial tile) that reads
every band over only that window (``read_tile``): 20 m assets are put on the 10 m
grid by nearest neighbour (every 10 m pixel takes the value of the 20 m pixel it
lies in), assets in another CRS are warped. The read keeps the stored integers;
the cube's bands turn them into float32 reflectance with NaN for nodata, and SCL
stays uint8 (0 = no data).

An asset whose header opened (``inputs.imagery.check_assets``) may still hold pixel
blocks that fail to decode. Such a window reads as no data, so the pixels are
unobserved, never clear, and the tile read names it in ``failures``
(``read_failures``): the orchestrator then leaves that acquisition out of the run and
saves no unit that saw the failure, so a transient fault is read again next time.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

import dask.array as da
import numpy as np
import pystac
import rasterio
import xarray as xr
from affine import Affine
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from pipeline import schema
from pipeline.errors import InputError
from pipeline.sources.base import (
    AssetRef,
    GridSpec,
    Scene,
    TileBand,
    TileRead,
    Zoom,
    upsample,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _local_path(path_or_url: str | Path) -> Path:
    text = str(path_or_url)
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    path = Path(text)
    if path.is_dir():
        for name in ("catalog.json", "collection.json"):
            if (path / name).exists():
                return path / name
        raise InputError("no catalog.json or collection.json in this folder", file=path)
    return path


def _asset_ref(item: pystac.Item, key: str, asset: pystac.Asset) -> AssetRef:
    bands = asset.extra_fields.get("raster:bands") or [{}]
    band = bands[0] if isinstance(bands, list) and bands else {}
    try:
        scale = float(band.get("scale", 1.0 if key == schema.SCL else 0.0001))
        offset = float(band.get("offset", 0.0))
        nodata = band.get("nodata", 0)
        nodata = None if nodata is None else float(nodata)
    except (TypeError, ValueError):
        raise InputError(
            "raster:bands scale/offset/nodata must be numbers",
            file=item.get_self_href(),
            record=f"item {item.id} asset {key}",
            field="raster:bands",
        ) from None
    if key == schema.SCL:
        scale, offset = 1.0, 0.0
    return AssetRef(
        href=asset.get_absolute_href() or asset.href, scale=scale, offset=offset, nodata=nodata
    )


def _item_epsg(item: pystac.Item) -> int | None:
    props = item.properties
    if props.get("proj:epsg") is not None:
        return int(props["proj:epsg"])
    code = props.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":", 1)[1])
    return None


def _item_bounds(item: pystac.Item, refs: dict[str, AssetRef]) -> tuple[float, ...] | None:
    for key in (*schema.BANDS_10M, *schema.BANDS_20M, schema.SCL):
        asset = item.assets.get(key)
        if asset is None:
            continue
        transform = asset.extra_fields.get("proj:transform") or item.properties.get(
            "proj:transform"
        )
        shape = asset.extra_fields.get("proj:shape") or item.properties.get("proj:shape")
        if transform and shape:
            aff = Affine(*transform[:6])
            rows, cols = shape
            x0, y0 = aff @ (0, 0)
            x1, y1 = aff @ (cols, rows)
            return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    ref = refs.get("red") or next(iter(refs.values()), None)
    if ref is None:
        return None
    try:
        with rasterio.open(ref.href) as src:
            return tuple(src.bounds)
    except RasterioError:
        return None


def read_catalog(
    path_or_url: str | Path,
    *,
    band_aliases: dict[str, str] | None = None,
    start: np.datetime64 | None = None,
    end: np.datetime64 | None = None,
) -> list[Scene]:
    """Read a static STAC catalog into scenes sorted by time (items of one time are merged).

    ``band_aliases`` maps other asset keys (``B04``, ``SCL``...) onto ours. ``start``
    and ``end`` (inclusive, by date) select acquisitions.
    """
    path = _local_path(path_or_url)
    if not path.exists():
        raise InputError("catalog not found", file=path)
    try:
        root = pystac.read_file(str(path))
    except (pystac.STACError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable STAC catalog ({exc})", file=path) from None
    if isinstance(root, pystac.Item):
        items: Iterable[pystac.Item] = [root]
    elif isinstance(root, pystac.ItemCollection):
        items = list(root)
    elif isinstance(root, pystac.Catalog):
        items = root.get_items(recursive=True)
    else:
        raise InputError("expected a STAC catalog, collection or item", file=path)

    aliases = {k: v for k, v in (band_aliases or {}).items()}
    by_time: dict[np.datetime64, list[tuple[pystac.Item, dict[str, AssetRef]]]] = defaultdict(list)
    n_items = 0
    for item in items:
        n_items += 1
        if item.datetime is None:
            raise InputError(
                "item has no datetime",
                file=item.get_self_href() or path,
                record=f"item {item.id}",
                field="datetime",
            )
        when = np.datetime64(item.datetime.replace(tzinfo=None), "ns")
        day = when.astype("datetime64[D]")
        if start is not None and day < start.astype("datetime64[D]"):
            continue
        if end is not None and day > end.astype("datetime64[D]"):
            continue
        refs: dict[str, AssetRef] = {}
        for key, asset in item.assets.items():
            band = aliases.get(key, key)
            if band in schema.ALL_ASSETS:
                refs[band] = _asset_ref(item, band, asset)
        if not refs:
            log.warning("item %s has no asset with a known band name; skipped", item.id)
            continue
        by_time[day].append((item, refs))
    if n_items == 0:
        raise InputError("the catalog holds no items", file=path, field="items")

    scenes = []
    for day in sorted(by_time):
        group = sorted(by_time[day], key=lambda pair: pair[0].id)
        epsgs = {_item_epsg(it) for it, _ in group} - {None}
        bounds = [b for it, refs in group if (b := _item_bounds(it, refs)) is not None]
        union = None
        if bounds:
            union = (
                min(b[0] for b in bounds),
                min(b[1] for b in bounds),
                max(b[2] for b in bounds),
                max(b[3] for b in bounds),
            )
        covers = [it.properties.get("eo:cloud_cover") for it, _ in group]
        covers = [float(c) for c in covers if c is not None]
        first_time = min(np.datetime64(it.datetime.replace(tzinfo=None), "ns") for it, _ in group)
        scenes.append(
            Scene(
                date=first_time,
                item_ids=tuple(it.id for it, _ in group),
                assets=tuple(refs for _, refs in group),
                epsg=epsgs.pop() if len(epsgs) == 1 else None,
                cloud_cover=float(np.mean(covers)) if covers else None,
                bounds=union,
            )
        )
    return scenes


def _bounds_in(scene: Scene, crs: CRS) -> tuple[float, ...]:
    """A scene's bounds in ``crs``: a scene in another CRS (a neighbouring UTM zone) is
    reprojected, so it widens the grid where it lies rather than by its raw numbers."""
    assert scene.bounds is not None
    if scene.epsg is None or CRS.from_epsg(scene.epsg) == crs:
        return scene.bounds
    return transform_bounds(CRS.from_epsg(scene.epsg), crs, *scene.bounds)


def analysis_grid(
    scenes: Sequence[Scene],
    *,
    resolution: float = 10.0,
    bounds: tuple[float, float, float, float] | None = None,
    crs: CRS | None = None,
) -> GridSpec:
    """The analysis grid: the scenes' common CRS, snapped to ``resolution``.

    ``bounds`` (in ``crs``, or in the scenes' CRS) limits it to an area of interest;
    default the union of all scenes' extents.
    """
    if not scenes:
        raise InputError("no acquisitions in the selected period", field="period")
    if crs is None:
        epsgs = [s.epsg for s in scenes if s.epsg is not None]
        if not epsgs:
            with rasterio.open(next(iter(scenes[0].assets[0].values())).href) as src:
                crs = src.crs
        else:
            crs = CRS.from_epsg(max(set(epsgs), key=epsgs.count))
    if bounds is None:
        known = [_bounds_in(s, crs) for s in scenes if s.bounds is not None]
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


# Open datasets are kept per thread (a dataset handle is not shared between threads):
# a tile task reads several windows of the same few files, and opening costs more
# than decoding a small window.
_OPEN_PER_THREAD = 24
_handles = threading.local()


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
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        src = rasterio.open(href)
    cache[key] = src
    while len(cache) > _OPEN_PER_THREAD:
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
    ref: AssetRef, grid: GridSpec, rows: tuple[int, int], cols: tuple[int, int]
) -> tuple[np.ndarray, Zoom] | str:
    """One asset over grid rows/cols ``[r0, r1) x [c0, c1)``, as stored, at its own pixels.

    An asset whose pixels are whole multiples (``k``) of the grid's, on its lines, is
    read over the covering window at its own resolution: ``(native, (k, dr, dc))`` with
    grid pixel ``(r0 + i, c0 + j)`` in ``native[(i + dr) // k, (j + dc) // k]`` (see
    ``upsample``). Any other asset is warped onto the grid (nearest neighbour), zoom
    ``(1, 0, 0)``. Pixels beyond the asset hold its nodata. An asset that fails to open
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
                resampling=Resampling.nearest,
                nodata=fill,
            ) as vrt:
                return vrt.read(1), (1, 0, 0)
        k, ox, oy = fit
        # the asset's pixels covering the request, and the part of them it holds
        n_r0, n_r1 = (r0 - oy) // k, (r1 - 1 - oy) // k + 1
        n_c0, n_c1 = (c0 - ox) // k, (c1 - 1 - ox) // k + 1
        zoom = (k, r0 - oy - n_r0 * k, c0 - ox - n_c0 * k)
        s_r0, s_r1 = max(n_r0, 0), min(n_r1, src.height)
        s_c0, s_c1 = max(n_c0, 0), min(n_c1, src.width)
        if s_r0 >= s_r1 or s_c0 >= s_c1:
            return np.full((n_r1 - n_r0, n_c1 - n_c0), fill, src.dtypes[0]), zoom
        data = src.read(1, window=Window(s_c0, s_r0, s_c1 - s_c0, s_r1 - s_r0))
        if (s_r0, s_r1, s_c0, s_c1) == (n_r0, n_r1, n_c0, n_c1):
            return data, zoom
        out = np.full((n_r1 - n_r0, n_c1 - n_c0), fill, src.dtypes[0])
        out[s_r0 - n_r0 : s_r1 - n_r0, s_c0 - n_c0 : s_c1 - n_c0] = data
        return out, zoom
    except (RasterioError, OSError) as exc:
        _forget(ref.href)
        reason = _reason(exc)
        log.warning(
            "asset %s: grid rows %d-%d, cols %d-%d unreadable: %s", ref.href, r0, r1, c0, c1, reason
        )
        return reason


def _read_asset(
    ref: AssetRef, grid: GridSpec, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray | str:
    """One asset over grid rows/cols ``[r0, r1) x [c0, c1)`` as stored, on the grid.

    Coarser assets on the grid's lines repeat their pixels (exact nearest neighbour, no
    resampling pass); the reader's message when the asset cannot be read.
    """
    got = _read_native(ref, grid, rows, cols)
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
    _fill_holes(TileBand(first, nodata=ref0.nodata), [more for _, more, _ in parts[1:]])
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


def _read_tile_task(
    refs: dict[str, Sequence[AssetRef]], grid: GridSpec, box: tuple[int, int, int, int], halo: int
) -> TileRead:
    return read_tile(refs, grid, box, halo=halo)


def _band_block(read: TileRead, band: str) -> np.ndarray:
    got = read.bands.get(band)
    if got is None:
        return np.full((1, read.box[2], read.box[3]), np.nan, np.float32)
    return got.reflectance()[np.newaxis]


def _scl_block(read: TileRead) -> np.ndarray:
    assert read.scl is not None
    b, (h, w) = read.halo, read.box[2:]
    return read.scl_on_grid()[b : b + h, b : b + w][np.newaxis]


def load_cube(
    scenes: Sequence[Scene],
    grid: GridSpec,
    *,
    chunk_size: int = 512,
    bands: Sequence[str] = schema.ALL_ASSETS,
    halo: int = 1,
) -> xr.Dataset:
    """A lazy cube (time, y, x) of the requested bands on ``grid``; nothing is read yet.

    Reflectance bands are float32 with scale/offset applied and NaN for no data; a
    band that no scene carries is left out (with a warning). ``scl`` is uint8.

    Each (date, tile) is one read task (``read_tile``) returning every band; the
    cube's chunks are views of it, and ``tile_reads(ds)`` hands the read tasks to
    stages that want the stored values (per-site statistics convert only the
    pixels of sites; masks grow across tile edges from the ``halo`` read with SCL).
    Tiles of ``chunk_size`` that are a multiple of the assets' internal tiling (COGs:
    usually 512) decode every stored block once.
    """
    rows, cols = grid.shape
    y_chunks = tuple(min(chunk_size, rows - i) for i in range(0, rows, chunk_size))
    x_chunks = tuple(min(chunk_size, cols - j) for j in range(0, cols, chunk_size))
    times = np.array([s.date for s in scenes], dtype="datetime64[ns]")
    present = []
    for band in bands:
        if any(band in a for s in scenes for a in s.assets):
            present.append(band)
        else:
            log.warning("no scene carries band %s; indices that need it will be NaN", band)
    per_scene = [
        {band: tuple(a[band] for a in s.assets if band in a) for band in present} for s in scenes
    ]
    token = tokenize(per_scene, grid.crs.to_wkt(), tuple(grid.transform), grid.shape, halo)
    read_name = f"read-tile-{token}-{chunk_size}"
    reads: dict = {}
    for t, refs in enumerate(per_scene):
        y0 = 0
        for i, h in enumerate(y_chunks):
            x0 = 0
            for j, w in enumerate(x_chunks):
                reads[(read_name, t, i, j)] = (_read_tile_task, refs, grid, (y0, x0, h, w), halo)
                x0 += w
            y0 += h
    layers: dict = {read_name: reads}
    deps: dict = {read_name: set()}
    chunks = ((1,) * len(scenes), y_chunks, x_chunks)
    data_vars = {}
    for band in present:
        name = f"{band}-{token}-{chunk_size}"
        if band == schema.SCL:
            layer = {(name, *key[1:]): (_scl_block, key) for key in reads}
        else:
            layer = {(name, *key[1:]): (_band_block, key, band) for key in reads}
        graph = HighLevelGraph({**layers, name: layer}, {**deps, name: {read_name}})
        dtype = np.uint8 if band == schema.SCL else np.float32
        arr = da.Array(graph, name, chunks=chunks, dtype=dtype)
        data_vars[band] = ((schema.TIME, schema.Y, schema.X), arr)
    coords = {schema.TIME: times, **grid.coords()}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs["crs"] = grid.crs.to_wkt()
    ds.attrs["transform"] = tuple(grid.transform)[:6]
    ds.attrs["item_ids"] = [",".join(s.item_ids) for s in scenes]
    ds.attrs[_TILE_READS] = read_name
    ds.attrs[_TILE_HALO] = halo
    return ds


_TILE_READS = "minewatch:tile_reads"
_TILE_HALO = "minewatch:tile_halo"


@dataclass(frozen=True)
class TileReads:
    """The read tasks behind a cube from ``load_cube``: one per (date, tile row, tile col)."""

    name: str
    """Key prefix: task ``(name, t, i, j)`` returns that date's ``TileRead`` of tile (i, j)."""
    graph: HighLevelGraph
    halo: int
    """Pixels of SCL read around each tile."""

    def delayed(self, t: int, i: int, j: int) -> Delayed:
        return Delayed((self.name, t, i, j), self.graph, layer=self.name)


def tile_reads(ds: xr.Dataset) -> TileReads | None:
    """The read tasks behind ``ds`` (any dataset derived from ``load_cube``), or ``None``."""
    name = ds.attrs.get(_TILE_READS)
    if name is None:
        return None
    for var in ds.data_vars.values():
        data = var.data
        if isinstance(data, da.Array):
            graph = data.__dask_graph__()
            if isinstance(graph, HighLevelGraph) and name in graph.layers:
                only = HighLevelGraph({name: graph.layers[name]}, {name: set()})
                return TileReads(name, only, int(ds.attrs.get(_TILE_HALO, 0)))
    return None
