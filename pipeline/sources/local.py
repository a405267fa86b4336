"""A local static STAC catalog of GeoTIFF/COG assets -> scenes -> a lazy, dask-backed cube.

``read_catalog`` walks the catalog (path or ``file://`` URL) with pystac, parses each
STAC 1.x item's JSON once (``stac_items``) and groups items by acquisition time into
``Scene``s, taking scale/offset/nodata from each asset's ``raster:bands``.
``analysis_grid`` picks the 10 m grid over the area of interest. ``load_cube`` builds
one dask task per (date, spatial tile) that reads every band over only that window
(``reads.read_tile``). The read keeps the stored integers; the cube's bands turn them
into float32 reflectance with NaN for nodata, and SCL stays uint8 (0 = no data).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import dask.array as da
import numpy as np
import pystac
import xarray as xr
from affine import Affine
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from rasterio.errors import RasterioError

from pipeline import schema
from pipeline.errors import InputError
from pipeline.sources.base import (
    AssetRef,
    GridSpec,
    Scene,
    TileRead,
)
from pipeline.sources.reads import open_asset, read_tile
from pipeline.sources.sensors import LANDSAT, SENTINEL2, item_sensor, landsat_band, landsat_ref
from pipeline.sources.stac_items import catalog_items

log = logging.getLogger(__name__)

BOA_OFFSET_APPLIED = "earthsearch:boa_offset_applied"


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
    elif item.properties.get(BOA_OFFSET_APPLIED) is True:
        # Earth Search took the baseline offset off its COGs but still declares it
        # (inputs.offsets checks this flag against the pixels: it is sometimes wrong).
        offset = 0.0
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


def _item_footprint(
    item: pystac.Item, refs: dict[str, AssetRef]
) -> tuple[str, tuple[float, float, float, float]] | None:
    """The item's CRS and bounds there: from ``proj:*`` when given, else a file's header."""
    epsg = _item_epsg(item)
    for key in (*schema.BANDS_10M, *schema.BANDS_20M, schema.SCL):
        asset = item.assets.get(key)
        if asset is None or epsg is None:
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
            return f"EPSG:{epsg}", (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    ref = refs.get("red") or next(iter(refs.values()), None)
    if ref is None:
        return None
    try:
        with open_asset(ref.href) as src:
            if src.crs is None:
                return None
            return src.crs.to_string(), tuple(src.bounds)
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
        items = catalog_items(root)
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
        sensor = item_sensor(item)
        for key, asset in item.assets.items():
            band = aliases.get(key) or (landsat_band(key) if sensor == LANDSAT else key)
            if band in schema.ALL_ASSETS:
                ref = _asset_ref(item, band, asset)
                if sensor == LANDSAT:
                    declared = "scale" in ((asset.extra_fields.get("raster:bands") or [{}])[0])
                    ref = landsat_ref(item, band, ref, declared)
                refs[band] = ref
        if not refs:
            log.warning("item %s has no asset with a known band name; skipped", item.id)
            continue
        by_time[day].append((item, refs))
    if n_items == 0:
        raise InputError("the catalog holds no items", file=path, field="items")

    scenes = []
    for day in sorted(by_time):
        # Sentinel-2 items first: where both sensors saw a date, Landsat fills the gaps.
        group = sorted(by_time[day], key=lambda p: (item_sensor(p[0]) == LANDSAT, p[0].id))
        sensors = sorted({item_sensor(it) for it, _ in group}, key=[SENTINEL2, LANDSAT].index)
        epsgs = {_item_epsg(it) for it, _ in group} - {None}
        footprints = tuple(fp for it, refs in group if (fp := _item_footprint(it, refs)))
        bounds = [b for _, b in footprints]
        union = None
        if bounds and len({c for c, _ in footprints}) == 1:
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
                footprints=footprints,
                sensor="+".join(sensors),
            )
        )
    return scenes


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
