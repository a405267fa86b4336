"""Shared fixtures: tiny real STAC catalogs of COGs written with rasterio."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

ORIGIN = (640_000.0, 3_735_000.0)
EPSG = 32649


def write_tiny_catalog(
    root: Path,
    values: dict[str, np.ndarray],
    dates: list[date],
    *,
    offset_from: date = date(2022, 1, 25),
    epsg: int = EPSG,
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    """A static STAC catalog with one item per date.

    ``values`` maps band -> reflectance array (T, rows, cols) at 10 m for blue/green/red/nir,
    (T, rows/2, cols/2) at 20 m for swir16/swir22, and SCL codes for ``scl`` at 20 m.
    Reflectance is encoded as DN = R*10000 (+1000 from ``offset_from``), as Sentinel-2 does.
    """
    root.mkdir(parents=True, exist_ok=True)
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for t, day in enumerate(dates):
        item_id = f"S2_TEST_{day:%Y%m%d}"
        folder = root / "items" / item_id
        folder.mkdir(parents=True, exist_ok=True)
        offset = -0.1 if day >= offset_from else 0.0
        assets = {}
        for band, arr in values.items():
            data = arr[t]
            res = 10.0 if data.shape[0] * 2 > next(iter(values.values())).shape[1] else 20.0
            transform = Affine(res, 0, origin[0], 0, -res, origin[1])
            if band == "scl":
                dn, dtype, bands = (
                    data.astype(np.uint8),
                    "uint8",
                    [{"nodata": 0, "data_type": "uint8"}],
                )
            else:
                dn = np.where(
                    np.isnan(data), 0, np.clip(np.round((data - offset) * 10000), 1, 65535)
                )
                dn, dtype = dn.astype(np.uint16), "uint16"
                bands = [
                    {
                        "nodata": 0,
                        "data_type": "uint16",
                        "scale": 0.0001,
                        "offset": offset,
                        "spatial_resolution": res,
                    }
                ]
            path = folder / f"{band}.tif"
            with rasterio.open(
                path,
                "w",
                driver="COG",
                width=dn.shape[1],
                height=dn.shape[0],
                count=1,
                dtype=dtype,
                crs=f"EPSG:{epsg}",
                transform=transform,
                nodata=0,
                compress="deflate",
            ) as dst:
                dst.write(dn, 1)
            assets[band] = {
                "href": f"./{band}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "proj:shape": list(dn.shape),
                "proj:transform": list(transform)[:6],
                "raster:bands": bands,
            }
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "stac_extensions": [
                "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            ],
            "geometry": None,
            "bbox": None,
            "properties": {
                "datetime": f"{day.isoformat()}T03:00:00Z",
                "proj:epsg": epsg,
                "eo:cloud_cover": 10.0,
            },
            "links": [
                {"rel": "root", "href": "../../catalog.json"},
                {"rel": "parent", "href": "../../catalog.json"},
            ],
            "assets": assets,
        }
        (folder / f"{item_id}.json").write_text(json.dumps(item))
        links.append(
            {"rel": "item", "href": f"./items/{item_id}/{item_id}.json", "type": "application/json"}
        )
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "tiny",
        "description": "test",
        "links": links,
    }
    (root / "catalog.json").write_text(json.dumps(catalog))
    return root / "catalog.json"


def uniform_bands(t: int, rows: int, cols: int, *, veg: bool = True) -> dict[str, np.ndarray]:
    """Band arrays for a uniformly vegetated (or bare) scene, all clear."""
    r10 = (t, rows, cols)
    r20 = (t, rows // 2, cols // 2)
    spectra = (
        dict(blue=0.03, green=0.06, red=0.04, nir=0.40, swir16=0.18, swir22=0.09)
        if veg
        else dict(blue=0.12, green=0.16, red=0.20, nir=0.26, swir16=0.34, swir22=0.28)
    )
    out = {
        b: np.full(r10 if b in ("blue", "green", "red", "nir") else r20, v, np.float64)
        for b, v in spectra.items()
    }
    out["scl"] = np.full(r20, 4 if veg else 5, np.uint8)
    return out


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], list[date]]:
    dates = [date(2021, 12, 20), date(2022, 3, 1)]
    values = uniform_bands(2, 40, 60)
    values["red"][:, 10:20, 10:30] = 0.2  # a bright patch
    values["swir16"][:, :, 20:] = 0.30  # right half brighter in SWIR (20 m pixels)
    values["scl"][1, 0:5, 0:5] = 9  # a cloud in the second scene's top-left corner
    return write_tiny_catalog(tmp_path / "cat", values, dates), values, dates
