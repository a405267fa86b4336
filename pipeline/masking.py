"""Cloud masking: which pixels of which dates are clear enough to use.

The Sentinel-2 scene classification (SCL) marks cloud, shadow, cirrus and snow,
but it misses cloud edges: the 1-3 pixels around a cloud are a blend of cloud and
ground that SCL calls clear. We therefore grow the invalid set by
``masking.buffer_pixels`` (a binary dilation per date, computed tile by tile with a
halo so tile edges are exact). What the mask still misses (thin haze, small puffs)
is left to the detection stage, which never trusts a single look.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage

from pipeline import schema
from pipeline.config import MaskingConfig


def _dilate(block: np.ndarray, iterations: int) -> np.ndarray:
    out = np.empty_like(block)
    structure = ndimage.generate_binary_structure(2, 2)  # 8-connected: a square halo
    for t in range(block.shape[0]):
        out[t] = ndimage.binary_dilation(block[t], structure=structure, iterations=iterations)
    return out


def clear_mask(cube: xr.Dataset, cfg: MaskingConfig) -> xr.DataArray:
    """Lazy boolean (time, y, x): True where the pixel is clear and every band has data."""
    invalid = (
        xr.zeros_like(cube[schema.SCL], dtype=bool)
        if schema.SCL not in cube
        else (cube[schema.SCL].isin(list(cfg.invalid_scl)))
    )
    if cfg.buffer_pixels > 0:
        grown = da.map_overlap(
            _dilate,
            invalid.data,
            depth={0: 0, 1: cfg.buffer_pixels, 2: cfg.buffer_pixels},
            boundary=False,
            dtype=bool,
            iterations=cfg.buffer_pixels,
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
    return out
