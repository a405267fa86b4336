"""Cloud masking: which pixels of which dates are clear enough to use.

The Sentinel-2 scene classification (SCL) marks cloud, shadow, cirrus and snow,
but it misses cloud edges: the 1-3 pixels around a cloud are a blend of cloud and
ground that SCL calls clear. We therefore grow the invalid set by
``masking.buffer_pixels`` (a square dilation per date). What the mask still misses
(thin haze, small puffs) is left to the detection stage, which never trusts a
single look.

Tile edges are exact: a cube from ``load_cube`` reads SCL with a halo around each
tile, so each tile's mask is grown from its own read (``clear_tile``); any other
cube is grown through a dask overlap. Pixels beyond the grid count as not invalid.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from pipeline import schema
from pipeline.config import MaskingConfig
from pipeline.sources.base import TileRead, upsample
from pipeline.sources.local import tile_reads


def invalid_classes(cfg: MaskingConfig) -> np.ndarray:
    """Lookup table over the 256 SCL codes: True for the classes treated as invalid."""
    table = np.zeros(256, bool)
    table[list(cfg.invalid_scl)] = True
    return table


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Square (8-connected) dilation of the last two axes by ``pixels``; no wrap at edges."""
    if pixels <= 0:
        return mask
    rows = mask.copy()
    for s in range(1, pixels + 1):  # along rows, then along columns of that result
        rows[..., s:, :] |= mask[..., :-s, :]
        rows[..., :-s, :] |= mask[..., s:, :]
    out = rows.copy()
    for s in range(1, pixels + 1):
        out[..., :, s:] |= rows[..., :, :-s]
        out[..., :, :-s] |= rows[..., :, s:]
    return out


def _on_coarse(ok: np.ndarray, k: int, d: int, n: int) -> np.ndarray:
    """A 1-D mask of grid pixels as ``n`` coarse pixels of ``k``: True where any of its
    grid pixels is (grid pixel ``j`` lies in coarse pixel ``(j + d) // k``)."""
    padded = np.zeros(n * k, bool)
    padded[d : d + ok.size] = ok[: n * k - d]
    return padded.reshape(n, k).any(axis=1)


def _reach(mask: np.ndarray, n: int) -> np.ndarray:
    """True where any pixel of the ``n`` x ``n`` window starting at it is True."""
    rows = mask.copy()
    for s in range(1, n):
        rows[:-s] |= mask[s:]
    out = rows.copy()
    for s in range(1, n):
        out[:, :-s] |= rows[:, s:]
    return out


def _grown_invalid(read: TileRead, cfg: MaskingConfig) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Invalid SCL grown by the buffer, worked out at the classes' own pixels:
    ``(grown, (k, sr, sc))`` with tile pixel ``(r, c)`` in ``grown[(r + sr) // k, (c + sc) // k]``.

    A grid pixel is invalid when any grid pixel within ``b`` of it is; at 20 m those
    pixels span a window of ``b + 1`` coarse pixels starting at ``(r - b + dr) // 2``,
    so the grown mask is a window test at 20 m read through a shifted zoom. Coarse
    pixels wholly beyond the grid count as not invalid; one that the grid's edge cuts
    counts whole, which changes no pixel on the grid: its pixels there are invalid
    themselves and nearer than its pixels beyond. Other zooms go through the grid.
    """
    b = cfg.buffer_pixels
    if read.halo < b:
        raise ValueError(f"SCL halo {read.halo} < masking buffer {cfg.buffer_pixels}")
    assert read.scl is not None
    invalid = invalid_classes(cfg)[read.scl]
    k, dr, dc = read.scl_zoom
    if k > 2:
        invalid, (k, dr, dc) = read.scl_on_grid(invalid), (1, 0, 0)
    if read.inside is not None:
        rows_ok = _on_coarse(read.inside.any(axis=1), k, dr, invalid.shape[0])
        cols_ok = _on_coarse(read.inside.any(axis=0), k, dc, invalid.shape[1])
        invalid &= rows_ok[:, np.newaxis] & cols_ok[np.newaxis, :]
    grown = _reach(invalid, 2 * b + 1 if k == 1 else b + 1)
    # tile pixel (r, c) reads grown[(r + sr) // k, (c + sc) // k]
    return grown, (k, read.halo + dr - b, read.halo + dc - b)


def _invalid_on_tile(read: TileRead, cfg: MaskingConfig) -> np.ndarray:
    """(rows, cols) True where the tile's SCL, grown by the buffer, is invalid.

    The grown mask is put on the tile as a whole: repeating the coarse mask costs less
    than finding each wanted pixel's coarse row and column by integer division.
    """
    grown, (k, sr, sc) = _grown_invalid(read, cfg)
    return upsample(grown[sr // k :, sc // k :], (k, sr % k, sc % k), read.box[2:])


def scl_clear(read: TileRead, cfg: MaskingConfig) -> np.ndarray:
    """(rows, cols) True where one tile read's SCL, grown by the buffer, is not invalid."""
    if read.scl is None:
        return np.ones(read.box[2:], bool)
    return ~_invalid_on_tile(read, cfg)


def scl_invalid_at(read: TileRead, cfg: MaskingConfig, flat: np.ndarray) -> np.ndarray:
    """``~scl_clear(read, cfg)`` at the tile's flat pixel indices ``flat`` (row * width + col)."""
    if read.scl is None:
        return np.zeros(flat.shape, bool)
    return np.take(_invalid_on_tile(read, cfg).reshape(-1), flat)


def clear_tile(read: TileRead, cfg: MaskingConfig) -> np.ndarray:
    """(rows, cols) True where one tile read is clear and every band has data."""
    clear = scl_clear(read, cfg)
    if read.missing:
        return np.zeros_like(clear)
    for band in read.bands.values():
        clear &= band.has_data()
    return clear


def _clear_block(read: TileRead, cfg: MaskingConfig) -> np.ndarray:
    return clear_tile(read, cfg)[np.newaxis]


def _grow_block(block: np.ndarray, pixels: int) -> np.ndarray:
    return grow(block, pixels)


def clear_mask(cube: xr.Dataset, cfg: MaskingConfig) -> xr.DataArray:
    """Lazy boolean (time, y, x): True where the pixel is clear and every band has data."""
    reads = tile_reads(cube)
    template = next(iter(cube.data_vars.values()))
    if reads is not None and reads.halo >= cfg.buffer_pixels:
        chunks = template.data.chunks
        name = "clear-" + tokenize(reads.name, cfg.buffer_pixels, cfg.invalid_scl)
        layer = {
            (name, t, i, j): (_clear_block, (reads.name, t, i, j), cfg)
            for t in range(len(chunks[0]))
            for i in range(len(chunks[1]))
            for j in range(len(chunks[2]))
        }
        graph = HighLevelGraph(
            {**reads.graph.layers, name: layer},
            {**reads.graph.dependencies, name: {reads.name}},
        )
        data = da.Array(graph, name, chunks=chunks, dtype=bool)
        return xr.DataArray(data, coords=template.coords, dims=template.dims, name="clear")
    invalid = (
        xr.zeros_like(template, dtype=bool)
        if schema.SCL not in cube
        else (cube[schema.SCL].isin(list(cfg.invalid_scl)))
    )
    if cfg.buffer_pixels > 0:
        grown = da.map_overlap(
            _grow_block,
            invalid.data,
            depth={0: 0, 1: cfg.buffer_pixels, 2: cfg.buffer_pixels},
            boundary=False,
            dtype=bool,
            pixels=cfg.buffer_pixels,
        )
        invalid = invalid.copy(data=grown)
    has_data = xr.ones_like(invalid, dtype=bool)
    for band in schema.REFLECTANCE_BANDS:
        if band in cube:
            has_data = has_data & cube[band].notnull()
    return (~invalid & has_data).rename("clear")


def mask_clouds(cube: xr.Dataset, cfg: MaskingConfig) -> xr.Dataset:
    """The cube with reflectance set to NaN where not clear, plus a ``clear`` variable."""
    clear = clear_mask(cube, cfg)
    out = cube.copy()
    for band in schema.REFLECTANCE_BANDS:
        if band in out:
            out[band] = out[band].where(clear)
    out["clear"] = clear
    out.attrs[CLEAR_RULE] = {
        "invalid_scl": [int(c) for c in cfg.invalid_scl],
        "buffer_pixels": cfg.buffer_pixels,
    }
    return out


CLEAR_RULE = "minewatch:clear_rule"
"""Attribute naming the masking rule ``mask_clouds`` applied, so that later stages
reading the tile reads directly apply the same one."""


def clear_rule(ds: xr.Dataset) -> MaskingConfig | None:
    """The masking rule ``mask_clouds`` applied to ``ds``, or ``None``."""
    rule = ds.attrs.get(CLEAR_RULE)
    if rule is None:
        return None
    return MaskingConfig(
        invalid_scl=tuple(rule["invalid_scl"]), buffer_pixels=rule["buffer_pixels"]
    )
