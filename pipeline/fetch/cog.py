"""Read one window of a remote Cloud-Optimized GeoTIFF by HTTP range requests.

The TIFF header and first image directory are parsed by ``tifffile`` through a
``RangeFile`` (a few kilobytes); the window is mapped to the COG's internal tiles,
each row of needed tiles is fetched as one range request, decoded, and sampled by
nearest neighbour onto the requested grid. Every request goes through the retrying
session of ``pipeline.fetch.http`` (``Retry-After`` obeyed). GDAL's own HTTP reader
is not used here because it cannot obey ``Retry-After`` and keeps a failed URL as
failed for the rest of the process.

Only what Sentinel-2 COGs are is supported: tiled, one band per file, a north-up
GeoTIFF grid with an EPSG code. A window in another CRS is read over its bounds
in the file's CRS and warped (nearest neighbour).
"""

from __future__ import annotations

import math

import numpy as np
import tifffile
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from pipeline.fetch.http import RangeFile, RemoteBlocks


class UnsupportedCog(ValueError):
    """The file is not a tiled, single-band, north-up GeoTIFF with an EPSG code."""


def read_window(
    remote: RemoteBlocks,
    *,
    bounds: tuple[float, float, float, float],
    resolution: float,
    epsg: int,
) -> np.ndarray:
    """The COG's pixels on the grid ``bounds`` / ``resolution`` in ``epsg``; 0 outside."""
    left, bottom, right, top = bounds
    rows = round((top - bottom) / resolution)
    cols = round((right - left) / resolution)
    with tifffile.TiffFile(RangeFile(remote)) as tif:
        page = tif.pages[0]
        src_epsg, transform = _georeference(tif, page)
        if src_epsg == epsg:
            return _sample(remote, page, transform, bounds, resolution, (rows, cols))
        # Another UTM zone: read the window's footprint in the file's CRS, then warp.
        src_bounds = transform_bounds(
            CRS.from_epsg(epsg), CRS.from_epsg(src_epsg), *bounds, densify_pts=21
        )
        res = abs(transform.a)
        pad = 2 * res
        sl = math.floor((src_bounds[0] - pad) / res) * res
        sb = math.floor((src_bounds[1] - pad) / res) * res
        sr = math.ceil((src_bounds[2] + pad) / res) * res
        st = math.ceil((src_bounds[3] + pad) / res) * res
        shape = (round((st - sb) / res), round((sr - sl) / res))
        region = _sample(remote, page, transform, (sl, sb, sr, st), res, shape)
        out = np.zeros((rows, cols), region.dtype)
        reproject(
            region,
            out,
            src_transform=Affine(res, 0, sl, 0, -res, st),
            src_crs=CRS.from_epsg(src_epsg),
            dst_transform=Affine(resolution, 0, left, 0, -resolution, top),
            dst_crs=CRS.from_epsg(epsg),
            resampling=Resampling.nearest,
            src_nodata=0,
            dst_nodata=0,
        )
        return out


def _georeference(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> tuple[int, Affine]:
    geo = tif.geotiff_metadata or {}
    scale = geo.get("ModelPixelScale")
    tie = geo.get("ModelTiepoint")
    code = geo.get("ProjectedCSTypeGeoKey")
    if not scale or not tie or code is None or "ModelTransformation" in geo:
        raise UnsupportedCog("no north-up GeoTIFF grid with an EPSG code")
    try:
        epsg = int(code)
    except (TypeError, ValueError):
        raise UnsupportedCog(f"CRS {code!r} is not an EPSG code") from None
    sx, sy = float(scale[0]), float(scale[1])
    i, j, x, y = float(tie[0]), float(tie[1]), float(tie[3]), float(tie[4])
    x0, y0 = x - i * sx, y + j * sy
    if int(geo.get("GTRasterTypeGeoKey", 1)) == 2:  # PixelIsPoint: tie point at pixel centres
        x0, y0 = x0 - sx / 2, y0 + sy / 2
    if not page.is_tiled or page.samplesperpixel != 1:
        raise UnsupportedCog("not a tiled single-band COG")
    return epsg, Affine(sx, 0, x0, 0, -sy, y0)


def _sample(
    remote: RemoteBlocks,
    page: tifffile.TiffPage,
    transform: Affine,
    bounds: tuple[float, float, float, float],
    resolution: float,
    shape: tuple[int, int],
) -> np.ndarray:
    """Nearest-neighbour sample of the file onto a north-up grid in the file's CRS."""
    rows, cols = shape
    height, width = page.shape[-2], page.shape[-1]
    left, _, _, top = bounds
    src_cols = np.floor((left + (np.arange(cols) + 0.5) * resolution - transform.c) / transform.a)
    src_rows = np.floor((transform.f - (top - (np.arange(rows) + 0.5) * resolution)) / -transform.e)
    src_cols = src_cols.astype(np.int64)
    src_rows = src_rows.astype(np.int64)
    out = np.zeros((rows, cols), page.dtype)
    col_ok = (src_cols >= 0) & (src_cols < width)
    row_ok = (src_rows >= 0) & (src_rows < height)
    if not col_ok.any() or not row_ok.any():
        return out
    c0, c1 = int(src_cols[col_ok].min()), int(src_cols[col_ok].max())
    r0, r1 = int(src_rows[row_ok].min()), int(src_rows[row_ok].max())
    region = _read_region(remote, page, r0, r1, c0, c1)
    rr = src_rows[row_ok] - r0
    cc = src_cols[col_ok] - c0
    out[np.ix_(row_ok, col_ok)] = region[np.ix_(rr, cc)]
    return out


def _read_region(
    remote: RemoteBlocks, page: tifffile.TiffPage, r0: int, r1: int, c0: int, c1: int
) -> np.ndarray:
    """Pixels rows r0..r1, cols c0..c1 (inclusive), from the internal tiles that hold them."""
    th, tw = page.tilelength, page.tilewidth
    tiles_across = -(-page.shape[-1] // tw)
    ty0, ty1, tx0, tx1 = r0 // th, r1 // th, c0 // tw, c1 // tw
    region = np.zeros(((ty1 - ty0 + 1) * th, (tx1 - tx0 + 1) * tw), page.dtype)
    offsets, counts = page.dataoffsets, page.databytecounts
    fh = RangeFile(remote)
    for ty in range(ty0, ty1 + 1):
        indices = [ty * tiles_across + tx for tx in range(tx0, tx1 + 1)]
        present = [k for k in indices if counts[k] > 0]
        if not present:
            continue
        start = min(offsets[k] for k in present)
        stop = max(offsets[k] + counts[k] for k in present)
        fh.seek(start)
        blob = fh.read(stop - start)  # one range request for the row of tiles
        for tx, k in zip(range(tx0, tx1 + 1), indices, strict=True):
            if counts[k] == 0:
                continue
            data = blob[offsets[k] - start : offsets[k] - start + counts[k]]
            segment, _, _ = page.decode(data, k)
            if segment is None:
                continue
            tile = np.asarray(segment).reshape(th, tw)
            y, x = (ty - ty0) * th, (tx - tx0) * tw
            region[y : y + th, x : x + tw] = tile
    return region[r0 - ty0 * th : r1 - ty0 * th + 1, c0 - tx0 * tw : c1 - tx0 * tw + 1]
