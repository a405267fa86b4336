"""Spectral indices over named bands: lazy on xarray cubes, plain on numpy arrays.

- NDVI = (NIR - Red) / (NIR + Red): green canopy 0.6-0.9, crops in season 0.5-0.85,
  bare soil and rock 0.0-0.2, water below 0.
- BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)): bare soil
  and broken rock are positive, vegetation negative (Rikimaru et al. 2002).
- NDWI (McFeeters 1996) = (Green - NIR) / (Green + NIR): open water is positive.

Each index is one elementwise kernel (``*_values``) over float32 arrays; the
xarray functions apply it block by block, and the per-site statistics apply it to
the gathered pixels of sites only. A zero denominator or a missing value gives
NaN. A missing band gives an all-NaN index and a warning. Results are float32.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)

# The reflectance bands the indices read (a cube needs no others).
INDEX_BANDS = ("blue", "green", "red", "nir", "swir16")


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b) in float32; NaN where the sum is 0 or an input is NaN."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    total = a + b
    out = np.full(total.shape, np.nan, np.float32)
    np.divide(a - b, total, out=out, where=total != 0)
    return out


def ndvi_values(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    return normalized_difference(nir, red)


def bsi_values(
    swir16: np.ndarray, red: np.ndarray, nir: np.ndarray, blue: np.ndarray
) -> np.ndarray:
    a = np.asarray(swir16, np.float32) + np.asarray(red, np.float32)
    b = np.asarray(nir, np.float32) + np.asarray(blue, np.float32)
    return normalized_difference(a, b)


def ndwi_values(green: np.ndarray, nir: np.ndarray) -> np.ndarray:
    return normalized_difference(green, nir)


def _apply(kernel, ds: xr.Dataset, bands: tuple[str, ...], name: str) -> xr.DataArray:  # type: ignore[no-untyped-def]
    absent = [b for b in bands if b not in ds]
    if absent:
        log.warning("index %s is NaN: the catalog lacks band(s) %s", name, ", ".join(absent))
        template = next((ds[b] for b in ("red", "nir", "green", "blue") if b in ds), None)
        if template is None:
            raise KeyError(f"no reflectance band at all to compute {name}")
        return xr.full_like(template, np.nan, dtype=np.float32).rename(name)
    out = xr.apply_ufunc(
        kernel, *(ds[b] for b in bands), dask="parallelized", output_dtypes=[np.float32]
    )
    return out.rename(name)


def ndvi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised difference vegetation index from ``nir`` and ``red``."""
    return _apply(ndvi_values, ds, ("nir", "red"), "ndvi")


def bsi(ds: xr.Dataset) -> xr.DataArray:
    """Bare soil index from ``swir16``, ``red``, ``nir`` and ``blue``."""
    return _apply(bsi_values, ds, ("swir16", "red", "nir", "blue"), "bsi")


def ndwi(ds: xr.Dataset) -> xr.DataArray:
    """McFeeters water index from ``green`` and ``nir``."""
    return _apply(ndwi_values, ds, ("green", "nir"), "ndwi")


def add_indices(ds: xr.Dataset) -> xr.Dataset:
    """The dataset with ``ndvi``, ``bsi`` and ``ndwi`` added (lazy)."""
    return ds.assign(ndvi=ndvi(ds), bsi=bsi(ds), ndwi=ndwi(ds))
