"""Writing a generated scenario: COGs, STAC items and catalog, vector files and truth.

Encoding: DN = round(R * 10000) + 1000 from processing baseline 04.00 (2022-01-25) on,
DN = round(R * 10000) before; DN >= 1, 0 is nodata. ``raster:bands`` declares the
matching ``offset`` (-0.1 or 0.0) and ``scale`` 0.0001.

Item ids: ``S2A_49SDT_YYYYMMDD_0_L2A`` (or S2B; the tile code is synthetic).
``landcover.tif`` (uint8, codes in ``LANDCOVER_CODES``) is also written beside the
vectors: the background land cover before any site or dig, for evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from shapely.geometry import mapping

from pipeline.scenes.atmosphere import Scene
from pipeline.scenes.grid import (
    EPSG,
    to_wgs84,
)
from pipeline.scenes.surface import (
    World,
)

BASELINE_04 = date(2022, 1, 25)


@dataclass(frozen=True)
class ScenarioPaths:
    """Where a generated scenario lives."""

    root: Path
    """The scenario folder."""
    catalog: Path
    """``catalog/catalog.json`` of the static STAC catalog."""
    sites: Path
    """``sites.geojson`` (WGS84)."""
    permits: Path
    """``permits.geojson`` (WGS84)."""
    zones: Path
    """``zones.geojson`` (WGS84)."""
    aoi: Path
    """``aoi.geojson``: the county boundaries (WGS84)."""
    truth: Path
    """``truth.json``: the answer key."""

    @classmethod
    def under(cls, root: Path) -> ScenarioPaths:
        root = Path(root)
        return cls(
            root=root,
            catalog=root / "catalog" / "catalog.json",
            sites=root / "sites.geojson",
            permits=root / "permits.geojson",
            zones=root / "zones.geojson",
            aoi=root / "aoi.geojson",
            truth=root / "truth.json",
        )

    def run_overrides(self) -> dict[str, object]:
        """Config overrides that point a run at this scenario (absolute paths).

        The scenario's grid is small, so the tiles are 256 px (the default 512 would
        leave a 2-core machine one tile per date to work on).
        """
        return {
            "provider.catalog": str(self.catalog.resolve()),
            "inputs.sites": str(self.sites.resolve()),
            "inputs.permits": str(self.permits.resolve()),
            "inputs.zones": str(self.zones.resolve()),
            "aoi": str(self.aoi.resolve()),
            "grid.chunk_size": 256,
        }


_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
_COG = {"driver": "COG", "compress": "DEFLATE", "predictor": 2, "blocksize": 256,
        "overviews": "NONE"}  # fmt: skip
_BAND_IDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
             "swir22": "B12"}  # fmt: skip


def write_tif(path: Path, arr: np.ndarray, transform: Affine) -> None:
    with rasterio.open(path, "w", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype=arr.dtype, crs=f"EPSG:{EPSG}", transform=transform, nodata=0,
                       **_COG) as dst:  # fmt: skip
        dst.write(arr, 1)


def _encode(r: np.ndarray, offset_dn: int) -> np.ndarray:
    return np.clip(np.rint(r * 10000) + offset_dn, 1, 65535).astype(np.uint16)


def write_item(items_dir: Path, world: World, when: date, k: int, scene: Scene,
                footprint: dict, bbox: list[float]) -> tuple[str, float]:  # fmt: skip
    """Write one acquisition's COGs and item JSON; returns (item id, cloud cover %)."""
    platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
    item_id = f"S2{platform[-1].upper()}_49SDT_{when:%Y%m%d}_0_L2A"
    d = items_dir / item_id
    d.mkdir(parents=True, exist_ok=True)
    new_baseline = when >= BASELINE_04
    off_dn = 1000 if new_baseline else 0
    h, w = world.shape
    t10, t20 = world.transform, world.transform * Affine.scale(2)
    r = scene.reflectance
    for b, name in enumerate(("blue", "green", "red", "nir")):
        write_tif(d / f"{name}.tif", _encode(r[b], off_dn), t10)
    for b, name in ((4, "swir16"), (5, "swir22")):
        agg = r[b].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        write_tif(d / f"{name}.tif", _encode(agg, off_dn), t20)
    scl20 = np.ascontiguousarray(scene.scl[::2, ::2])
    write_tif(d / "scl.tif", scl20, t20)
    cover = round(float(np.isin(scl20, (3, 8, 9, 10)).mean() * 100), 2)
    assets = {}
    for name in (*_BAND_IDS, "scl"):
        res = 10 if name in ("blue", "green", "red", "nir") else 20
        tr = t10 if res == 10 else t20
        band: dict = {"nodata": 0, "data_type": "uint8" if name == "scl" else "uint16",
                      "spatial_resolution": res}  # fmt: skip
        if name != "scl":
            band.update(scale=0.0001, offset=-0.1 if new_baseline else 0.0)
        assets[name] = {
            "href": f"./{name}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": name if name == "scl" else f"{name} ({_BAND_IDS[name]})",
            "roles": ["data"],
            "proj:shape": [h * 10 // res, w * 10 // res],
            "proj:transform": list(tr)[:6],
            "raster:bands": [band],
        }
        if name != "scl":
            assets[name]["eo:bands"] = [{"name": _BAND_IDS[name], "common_name": name}]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": _EXTENSIONS,
        "id": item_id, "geometry": footprint, "bbox": bbox,
        "properties": {
            "datetime": f"{when.isoformat()}T03:00:00Z", "platform": platform,
            "constellation": "sentinel-2", "instruments": ["msi"], "eo:cloud_cover": cover,
            "proj:epsg": EPSG, "s2:processing_baseline": "04.00" if new_baseline else "03.01",
            "minewatch:synthetic": True,
        },
        "links": [{"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                  {"rel": "parent", "href": "../../catalog.json", "type": "application/json"}],
        "assets": assets,
    }  # fmt: skip
    (d / f"{item_id}.json").write_text(json.dumps(item, indent=1))
    return item_id, cover


def write_feature_collection(path: Path, feats: list[dict]) -> None:
    out = []
    for f in feats:
        props = {k: v for k, v in f.items() if k != "geometry"}
        out.append({"type": "Feature", "properties": props,
                    "geometry": mapping(to_wgs84(f["geometry"]))})  # fmt: skip
    doc = {"type": "FeatureCollection", "features": out}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def wgs84_mapping(g) -> dict | None:
    return None if g is None else mapping(to_wgs84(g))
