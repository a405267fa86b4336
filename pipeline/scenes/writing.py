"""Writing a generated scenario: COGs, STAC items and catalog, vector files and truth.

``write_scenario`` renders a world on each acquisition date (``atmosphere.render`` with
the family's cloud model) and writes every file of ``ScenarioPaths``; every family writes
through it. The ``.complete`` marker (JSON, written last) says the folder is whole.

Encoding: DN = round(R * 10000) + 1000 from processing baseline 04.00 (2022-01-25) on,
DN = round(R * 10000) before; DN >= 1, 0 is nodata. ``raster:bands`` declares the
matching ``offset`` (-0.1 or 0.0) and ``scale`` 0.0001.

Item ids: ``S2A_49SDT_YYYYMMDD_0_L2A`` (or S2B; the tile code is synthetic).
``landcover.tif`` (uint8, codes in ``LANDCOVER_CODES``) is also written beside the
vectors: the background land cover before any site or dig, for evaluation.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.transform import Affine
from shapely.geometry import Point, mapping
from shapely.ops import unary_union

from pipeline.scenes.atmosphere import SMOOTH_BLOBS, CloudModel, Scene, render
from pipeline.scenes.grid import (
    EPSG,
    LANDCOVER_CODES,
    ORIGIN,
    PIXEL,
    iso_date,
    to_wgs84,
)
from pipeline.scenes.surface import (
    World,
)

BASELINE_04 = date(2022, 1, 25)
MARKER = ".complete"


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


def check_arguments(shape: tuple[int, int], start: date, end: date, revisit_days: int) -> None:
    """``ValueError`` unless a scenario of these arguments can be drawn (any family)."""
    h, w = shape
    if h % 2 or w % 2 or h < 100 or w < 100:
        raise ValueError(f"shape must be even and at least 100 x 100, got {shape}")
    if end <= start or revisit_days < 1:
        raise ValueError("need start < end and revisit_days >= 1")


def marker_fields(*, version: int, seed: int, shape: tuple[int, int], start: date, end: date,
                  n_items: int, climate: float, extra_sites: int) -> dict:  # fmt: skip
    """What every family's ``.complete`` marker says of the scenario, in this order."""
    return {
        "generator_version": version,
        "seed": seed,
        "shape": list(shape),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "n_items": n_items,
        "climate": climate,
        "extra_sites": extra_sites,
    }


def prepare_folder(out_dir: Path) -> ScenarioPaths:
    """The scenario folder, created, with no ``.complete`` marker and no old catalog."""
    out = Path(out_dir)
    paths = ScenarioPaths.under(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    if paths.catalog.parent.exists():
        shutil.rmtree(paths.catalog.parent)
    return paths


def _missed_confounders(when: date, missed: dict) -> list[dict]:
    """``truth.json`` confounders of what one scene's SCL missed: ring, puffs, haze."""
    out: list[dict] = []
    x0, y1 = ORIGIN
    if missed["ring"]:
        notes = f"{missed['ring']}-pixel ring of partial cloud labelled clear"
        out.append({"kind": "missed_cloud_edge", "geometry": None, "date": iso_date(when),
                    "notes": notes})  # fmt: skip
    if missed["puffs"]:
        puffs = unary_union(
            [
                Point(x0 + (c + 0.5) * PIXEL, y1 - (r_ + 0.5) * PIXEL).buffer(2 * rad * PIXEL)
                for r_, c, rad in missed["puffs"]
            ]
        )
        out.append({"kind": "missed_cloud_edge", "geometry": puffs, "date": iso_date(when),
                    "notes": "small cloud puffs not flagged by SCL"})  # fmt: skip
    if missed["haze"]:
        out.append({"kind": "haze", "geometry": None, "date": iso_date(when),
                    "notes": f"unflagged haze, +{missed['haze']:.3f} blue"})  # fmt: skip
    return out


def write_scenario(paths: ScenarioPaths, world: World, dates: list[date], *, seed: int,
                   marker: dict, cloud_scale: float = 1.0,
                   clouds: CloudModel = SMOOTH_BLOBS) -> ScenarioPaths:  # fmt: skip
    """Render ``world`` on each of ``dates`` and write the scenario's files under ``paths``.

    Each date's scene is drawn from its own random stream (``seed``, 7, the date), so a
    scene does not depend on the others. ``marker`` is written last as ``.complete``.
    """
    h, w = world.shape
    out, cat_dir = paths.root, paths.catalog.parent
    x0, y1 = ORIGIN
    box = shapely.box(x0, y1 - h * PIXEL, x0 + w * PIXEL, y1)
    fp = to_wgs84(box)
    footprint, bbox = mapping(fp), [round(v, 7) for v in fp.bounds]
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    confounders = world.truth["confounders"]
    for k, when in enumerate(dates):
        rng = np.random.default_rng([seed, 7, when.toordinal()])
        scene = render(world, when, rng, cloud_scale, clouds)
        item_id, _ = write_item(cat_dir / "items", world, when, k, scene, footprint, bbox)
        links.append({"rel": "item", "href": f"./items/{item_id}/{item_id}.json",
                      "type": "application/json"})  # fmt: skip
        confounders += _missed_confounders(when, scene.missed)
    catalog = {
        "type": "Catalog", "stac_version": "1.0.0", "id": f"minewatch-synthetic-{seed}",
        "description": f"MineWatch synthetic Sentinel-2 L2A scenario (seed {seed})",
        "links": links,
    }  # fmt: skip
    paths.catalog.write_text(json.dumps(catalog, indent=1))
    write_feature_collection(paths.sites, world.sites)
    write_feature_collection(paths.permits, world.permits)
    write_feature_collection(paths.zones, world.zones)
    write_feature_collection(paths.aoi, [{"county": c, "geometry": g} for c, g in world.counties])
    truth = dict(world.truth)
    truth["digs"] = [{**d, "geometry": wgs84_mapping(d["geometry"])} for d in truth["digs"]]
    truth["confounders"] = [{**c, "geometry": wgs84_mapping(c["geometry"])} for c in confounders]
    truth["grid"] = {"epsg": EPSG, "origin": list(ORIGIN), "pixel": PIXEL, "shape": [h, w],
                     "n_items": len(dates), "landcover_codes": LANDCOVER_CODES}  # fmt: skip
    paths.truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    write_tif(out / "landcover.tif", world.landcover, world.transform)
    (out / MARKER).write_text(json.dumps(marker))
    return paths
