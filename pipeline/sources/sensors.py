"""Which instrument took an item, and how its assets become Sentinel-2-like reflectance.

Sentinel-2 L2A items are read as they come. Landsat 8/9 Collection 2 Level-2 items
(STAC ``landsat-c2-l2``: assets ``blue``, ``green``, ``red``, ``nir08``, ``swir16``,
``swir22``, ``qa_pixel``) join them as a second sensor, so a site's history reaches back
before 2017, when many of the pits were dug or closed:

- reflectance is ``DN x 2.75e-05 - 0.2`` (the Level-2 scaling; ``raster:bands`` says so
  on most catalogs and is the default when it does not);
- OLI reflectance is put on Sentinel-2A MSI's scale band by band with the inverse of
  HLS's published bandpass adjustment (HLS User Guide v1.4: ``OLI = slope x MSI +
  intercept``; NIR from MSI's narrow B8A, the closest band to OLI's B5). The adjustment
  is linear, so it folds into the asset's scale and offset and costs nothing per pixel.
  TM and ETM+ (Landsat 4/5/7) are read with the Level-2 scaling only: HLS publishes no
  adjustment for them;
- ``qa_pixel`` takes the place of SCL: its bits are turned into SCL classes on read
  (``qa_to_scl``), so masking, its cloud-edge buffer and the evidence chips treat both
  sensors alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pystac

from pipeline import schema
from pipeline.sources.base import AssetRef, Scene

SENTINEL2 = "sentinel-2"
LANDSAT = "landsat"
LANDSAT_QA = "landsat_qa"
"""``AssetRef.decode`` of a ``qa_pixel`` asset read as scene classes."""

LANDSAT_ASSETS = {
    "blue": "blue",
    "green": "green",
    "red": "red",
    "nir08": "nir",
    "swir16": "swir16",
    "swir22": "swir22",
    "qa_pixel": schema.SCL,
}
"""STAC ``landsat-c2-l2`` asset keys -> our band names."""
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-05, -0.2
"""Collection 2 Level-2 surface reflectance scaling."""
OLI_PLATFORMS = ("landsat-8", "landsat-9")
HLS_OLI_FROM_MSI = {
    "blue": (0.9778, -0.004),
    "green": (1.0053, -0.0009),
    "red": (0.9765, 0.0009),
    "nir": (0.9983, -0.0001),
    "swir16": (0.9987, -0.0011),
    "swir22": (1.003, -0.0012),
}
"""HLS v1.4 bandpass adjustment, Sentinel-2A MSI -> OLI: ``(slope, intercept)``."""

# qa_pixel bits (Landsat Collection 2): 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud,
# 4 cloud shadow, 5 snow, 6 clear, 7 water. Their SCL counterparts, the first set bit
# in this order winning: no data, cloud high, cloud medium (the dilation ring), cirrus,
# shadow, snow, water, vegetation (clear land); a pixel with none of them set is
# "unclassified" (7), which the default mask keeps.
_QA_TO_SCL = ((0, 0), (3, 9), (1, 8), (2, 10), (4, 3), (5, 11), (7, 6), (6, 4))


def qa_to_scl(qa: np.ndarray) -> np.ndarray:
    """uint8 SCL classes of Landsat ``qa_pixel`` values."""
    qa = qa.astype(np.uint16, copy=False)
    out = np.full(qa.shape, 7, np.uint8)
    done = np.zeros(qa.shape, bool)
    for bit, scl in _QA_TO_SCL:
        hit = ((qa >> bit) & 1).astype(bool) & ~done
        out[hit] = scl
        done |= hit
    return out


def item_sensor(item: pystac.Item) -> str:
    """``landsat`` for a Landsat item (platform, collection or a ``qa_pixel`` asset)."""
    platform = str(item.properties.get("platform") or "").lower()
    collection = str(item.collection_id or "").lower()
    if platform.startswith("landsat") or collection.startswith("landsat"):
        return LANDSAT
    if "qa_pixel" in item.assets:
        return LANDSAT
    return SENTINEL2


def landsat_band(key: str) -> str | None:
    """Our band name of a Landsat asset key (``nir08`` -> ``nir``; a key that already is
    one of ours stays), or ``None`` for assets we do not read."""
    return LANDSAT_ASSETS.get(key, key if key in schema.ALL_ASSETS else None)


def landsat_ref(item: pystac.Item, band: str, ref: AssetRef, declared: bool) -> AssetRef:
    """A Landsat asset as Sentinel-2-like reflectance (or, for QA, as scene classes).

    ``declared``: the asset's ``raster:bands`` gave scale and offset (else Level-2's).
    """
    if band == schema.SCL:
        nodata = 1 if ref.nodata in (None, 0) else ref.nodata  # qa_pixel fill is bit 0
        return replace(ref, scale=1.0, offset=0.0, nodata=nodata, decode=LANDSAT_QA)
    scale, offset = (ref.scale, ref.offset) if declared else (LANDSAT_SCALE, LANDSAT_OFFSET)
    platform = str(item.properties.get("platform") or "").lower()
    if platform in OLI_PLATFORMS and band in HLS_OLI_FROM_MSI:
        slope, intercept = HLS_OLI_FROM_MSI[band]
        scale, offset = scale / slope, (offset - intercept) / slope
    return replace(ref, scale=scale, offset=offset)


def add_sensor(timeseries: pd.DataFrame, scenes: list[Scene]) -> pd.DataFrame:
    """The per-site series with a ``sensor`` column: which instrument each date is from."""
    by_day = {pd.Timestamp(s.date).normalize(): s.sensor for s in scenes}
    out = timeseries.copy()
    out["sensor"] = out["date"].dt.normalize().map(by_day).fillna(SENTINEL2).astype(str)
    return out
