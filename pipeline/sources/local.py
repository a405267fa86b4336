"""A local static STAC catalog of GeoTIFF/COG assets -> scenes -> a lazy, dask-backed cube.

``read_catalog`` walks the catalog (path or ``file://`` URL) with pystac and groups
items by acquisition time into ``Scene``s, taking scale/offset/nodata from each
asset's ``raster:bands``. ``analysis_grid`` picks the 10 m grid over the area of
interest. ``load_cube`` builds one dask task per (date, band, spatial tile) that
reads only that window: 20 m assets are resampled onto the 10 m grid by nearest
neighbour (every 10 m pixel takes the value of the 20 m pixel it lies in),
assets in another CRS are warped, integers become float32 reflectance with NaN
for nodata, and SCL stays uint8 (0 = no data).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import dask.array as da
import numpy as np
import pystac
import rasterio
import xarray as xr
from affine import Affine
from dask.base import tokenize
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds

from pipeline import schema
from pipeline.errors import InputError
from pipeline.sources.base import AssetRef, GridSpec, Scene

log = logging.getLogger(__name__)


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
        known = [s.bounds for s in scenes if s.bounds is not None]
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


def _read_window(refs: Sequence[AssetRef], grid: GridSpec, window: Window, band: str) -> np.ndarray:
    """Read one band of one acquisition over one grid window (mosaicking its items)."""
    rows, cols = int(window.height), int(window.width)
    is_scl = band == schema.SCL
    out = np.zeros((rows, cols), np.uint8) if is_scl else np.full((rows, cols), np.nan, np.float32)
    win_transform = rasterio.windows.transform(window, grid.transform)
    left, top = win_transform.c, win_transform.f
    right, bottom = left + cols * grid.resolution, top - rows * grid.resolution
    for ref in refs:
        try:
            with (
                rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
                rasterio.open(ref.href) as src,
            ):
                if src.crs == grid.crs and src.transform.b == 0 and src.transform.d == 0:
                    src_win = from_bounds(left, bottom, right, top, transform=src.transform)
                    inside = (
                        src_win.col_off >= 0
                        and src_win.row_off >= 0
                        and src_win.col_off + src_win.width <= src.width + 1e-6
                        and src_win.row_off + src_win.height <= src.height + 1e-6
                    )
                    # A window inside the asset reads directly; only edges need the
                    # (much slower) boundless read through a VRT.
                    data = src.read(
                        1,
                        window=src_win,
                        out_shape=(rows, cols),
                        boundless=not inside,
                        fill_value=ref.nodata or 0,
                        resampling=Resampling.nearest,
                    )
                else:
                    with WarpedVRT(
                        src,
                        crs=grid.crs,
                        transform=win_transform,
                        width=cols,
                        height=rows,
                        resampling=Resampling.nearest,
                        nodata=ref.nodata or 0,
                    ) as vrt:
                        data = vrt.read(1)
        except RasterioError as exc:
            log.warning("scene asset %s (%s) unreadable, skipped: %s", ref.href, band, exc)
            continue
        valid = data != ref.nodata if ref.nodata is not None else np.ones(data.shape, bool)
        if is_scl:
            fill = valid & (out == 0)
            out[fill] = data[fill]
        else:
            fill = valid & np.isnan(out)
            out[fill] = data[fill].astype(np.float32) * np.float32(ref.scale) + np.float32(
                ref.offset
            )
    return out


def load_cube(
    scenes: Sequence[Scene],
    grid: GridSpec,
    *,
    chunk_size: int = 512,
    bands: Sequence[str] = schema.ALL_ASSETS,
) -> xr.Dataset:
    """A lazy cube (time, y, x) of the requested bands on ``grid``; nothing is read yet.

    Reflectance bands are float32 with scale/offset applied and NaN for no data; a
    band that no scene carries is left out (with a warning). ``scl`` is uint8.
    """
    rows, cols = grid.shape
    y_chunks = tuple(min(chunk_size, rows - i) for i in range(0, rows, chunk_size))
    x_chunks = tuple(min(chunk_size, cols - j) for j in range(0, cols, chunk_size))
    times = np.array([s.date for s in scenes], dtype="datetime64[ns]")
    data_vars = {}
    for band in bands:
        per_scene = [tuple(a[band] for a in s.assets if band in a) for s in scenes]
        if not any(per_scene):
            log.warning("no scene carries band %s; indices that need it will be NaN", band)
            continue
        dtype = np.uint8 if band == schema.SCL else np.float32
        token = tokenize(per_scene, grid.crs.to_wkt(), tuple(grid.transform), grid.shape)
        name = f"read-{band}-{token}-{chunk_size}"
        dsk = {}
        for t, refs in enumerate(per_scene):
            y0 = 0
            for i, h in enumerate(y_chunks):
                x0 = 0
                for j, w in enumerate(x_chunks):
                    dsk[(name, t, i, j)] = (_read_block, refs, grid, (y0, x0, h, w), band)
                    x0 += w
                y0 += h
        arr = da.Array(dsk, name, chunks=((1,) * len(scenes), y_chunks, x_chunks), dtype=dtype)
        data_vars[band] = ((schema.TIME, schema.Y, schema.X), arr)
    coords = {schema.TIME: times, **grid.coords()}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs["crs"] = grid.crs.to_wkt()
    ds.attrs["transform"] = tuple(grid.transform)[:6]
    ds.attrs["item_ids"] = [",".join(s.item_ids) for s in scenes]
    return ds


def _read_block(
    refs: Sequence[AssetRef], grid: GridSpec, box: tuple[int, int, int, int], band: str
) -> np.ndarray:
    y0, x0, h, w = box
    return _read_window(refs, grid, Window(x0, y0, w, h), band)[np.newaxis]
