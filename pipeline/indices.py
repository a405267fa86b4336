"""Spectral indices, as plain lazy xarray arithmetic over named bands.

- NDVI = (NIR - Red) / (NIR + Red): green canopy 0.6-0.9, crops in season 0.5-0.85,
  bare soil and rock 0.0-0.2, water below 0.
- BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)): bare soil
  and broken rock are positive, vegetation negative (Rikimaru et al. 2002).
- NDWI (McFeeters 1996) = (Green - NIR) / (Green + NIR): open water is positive.

A missing band gives an all-NaN index and a warning. Results are float32.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)


def _normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    total = a + b
    return ((a - b) / total.where(total != 0)).astype(np.float32)


def _missing(ds: xr.Dataset, bands: tuple[str, ...], index: str) -> xr.DataArray | None:
    absent = [b for b in bands if b not in ds]
    if not absent:
        return None
    log.warning("index %s is NaN: the catalog lacks band(s) %s", index, ", ".join(absent))
    template = next((ds[b] for b in ("red", "nir", "green", "blue") if b in ds), None)
    if template is None:
        raise KeyError(f"no reflectance band at all to compute {index}")
    return xr.full_like(template, np.nan, dtype=np.float32)


def ndvi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised difference vegetation index from ``nir`` and ``red``."""
    missing = _missing(ds, ("nir", "red"), "ndvi")
    out = missing if missing is not None else _normalized_difference(ds["nir"], ds["red"])
    return out.rename("ndvi")


def bsi(ds: xr.Dataset) -> xr.DataArray:
    """Bare soil index from ``swir16``, ``red``, ``nir`` and ``blue``."""
    missing = _missing(ds, ("swir16", "red", "nir", "blue"), "bsi")
    if missing is not None:
        return missing.rename("bsi")
    return _normalized_difference(ds["swir16"] + ds["red"], ds["nir"] + ds["blue"]).rename("bsi")


def ndwi(ds: xr.Dataset) -> xr.DataArray:
    """McFeeters water index from ``green`` and ``nir``."""
    missing = _missing(ds, ("green", "nir"), "ndwi")
    out = missing if missing is not None else _normalized_difference(ds["green"], ds["nir"])
    return out.rename("ndwi")


def add_indices(ds: xr.Dataset) -> xr.Dataset:
    """The dataset with ``ndvi``, ``bsi`` and ``ndwi`` added (lazy)."""
    return ds.assign(ndvi=ndvi(ds), bsi=bsi(ds), ndwi=ndwi(ds))
