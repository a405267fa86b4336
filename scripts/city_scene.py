"""A city-sized synthetic scene for ``bench_run.py --scene city``, written fast.

The scenario generator (``pipeline.scenes``) draws every pixel of every date from a
simulated world (terrain, weather, mining histories); at 4096 x 4096 px it would take
hours. A benchmark only needs files that cost what real ones cost to read and pixels
that exercise every stage, so this writer makes them cheaply:

- land cover: forest, farmland, grassland, bare rock and water in 640 m cells, with
  a seasonal NDVI cycle on the vegetated classes and a fixed per-pixel texture (a
  noise field generated once, shifted per band and date);
- sites: ``n_sites`` mine-like polygons of 1 to 50 ha (irregular octagons, some
  overlapping, as in a real register), bare inside; about one in ten greens up over
  the period (restoration), and a few bare patches appear outside any site half-way
  (new digging the run should flag);
- clouds: blobs on a 320 m lattice covering 0 to 60 % of each date, bright in every
  band and classed 8/9 in SCL, with a shadow class (3) one cell to the south-east;
- files: tiled GeoTIFFs (512 px blocks, DEFLATE, predictor 2, like the COGs the
  archive holds) of the 10 m bands, the 20 m bands and SCL at 20 m, with a STAC item
  per date declaring the baseline-04.00 offset (``DN = 10000 R + 1000``).

    python scripts/city_scene.py data/bench/city  # about 2 GB, a few minutes
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine

from pipeline import schema
from pipeline.scenes import ScenarioPaths

EPSG = 32649
ORIGIN = (600_000.0, 3_760_000.0)  # upper-left corner, UTM 49N
RES = 10.0
CELL = 64  # land-cover cell, px
CLOUD_CELL = 32  # cloud lattice, px
# Reflectance (blue, green, red, nir, swir16, swir22) of each land cover at its greenest.
COVER = np.array(
    [
        [0.03, 0.05, 0.03, 0.35, 0.16, 0.08],  # forest
        [0.05, 0.08, 0.06, 0.30, 0.22, 0.13],  # farmland
        [0.05, 0.08, 0.07, 0.25, 0.24, 0.15],  # grassland
        [0.12, 0.15, 0.19, 0.23, 0.33, 0.28],  # bare rock
        [0.04, 0.05, 0.03, 0.02, 0.01, 0.01],  # water
    ],
    np.float32,
)
BARE, WATER = 3, 4
SCL_OF_COVER = np.array([4, 4, 4, 5, 6], np.uint8)
CLOUD = np.array([0.35, 0.36, 0.37, 0.40, 0.30, 0.25], np.float32)
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
PROFILE = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "deflate",
    "predictor": 2,
    "zlevel": 1,
    "nodata": 0,
}


def _octagon(cx: float, cy: float, r: float, rng: np.random.Generator) -> np.ndarray:
    angles = (np.arange(8) + rng.uniform(-0.3, 0.3, 8)) * (2 * math.pi / 8)
    radii = r * rng.uniform(0.7, 1.2, 8)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _feature_collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}


def _polygon(ring: np.ndarray, to_wgs84: Transformer) -> dict:
    lon, lat = to_wgs84.transform(ring[:, 0], ring[:, 1])
    coords = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
    return {"type": "Polygon", "coordinates": [[*coords, coords[0]]]}


def _write(path: Path, data: np.ndarray, transform: Affine) -> None:
    profile = {**PROFILE, "height": data.shape[0], "width": data.shape[1], "count": 1}
    profile.update(dtype=data.dtype.name, crs=f"EPSG:{EPSG}", transform=transform)
    with rasterio.Env(GDAL_NUM_THREADS="2"), rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def write_city_scene(
    root: Path,
    *,
    shape: tuple[int, int] = (4096, 4096),
    n_dates: int = 36,
    n_sites: int = 2000,
    seed: int = 2026,
    start: date = date(2023, 1, 4),
    revisit_days: int = 10,
) -> ScenarioPaths:
    """Write the scene under ``root`` (skipped when ``root/.complete`` exists)."""
    paths = ScenarioPaths.under(root)
    if (root / ".complete").exists():
        return paths
    rng = np.random.default_rng(seed)
    rows, cols = shape
    to_wgs84 = Transformer.from_crs(EPSG, 4326, always_xy=True)
    x0, y0 = ORIGIN
    t10 = Affine(RES, 0, x0, 0, -RES, y0)
    t20 = Affine(2 * RES, 0, x0, 0, -2 * RES, y0)

    # Land cover, then sites burnt in as bare ground.
    cells = rng.choice(5, size=(rows // CELL + 1, cols // CELL + 1), p=[0.35, 0.3, 0.2, 0.1, 0.05])
    cover = np.repeat(np.repeat(cells, CELL, 0), CELL, 1)[:rows, :cols].astype(np.uint8)
    site_id = np.zeros(shape, np.int32)  # 1-based index of the last site drawn, 0 outside
    yy, xx = np.arange(rows)[:, None], np.arange(cols)[None, :]
    sites, rings = [], []
    counties = ("north-west", "north-east", "south-west", "south-east")
    for k in range(n_sites):
        area_ha = float(np.exp(rng.uniform(math.log(1), math.log(50))))
        r_px = math.sqrt(area_ha * 1e4 / math.pi) / RES
        cy, cx = rng.uniform(r_px + 2, rows - r_px - 2), rng.uniform(r_px + 2, cols - r_px - 2)
        ring_px = _octagon(cx, cy, r_px, rng)
        r0, r1 = max(0, int(cy - 1.3 * r_px)), min(rows, int(cy + 1.3 * r_px) + 1)
        c0, c1 = max(0, int(cx - 1.3 * r_px)), min(cols, int(cx + 1.3 * r_px) + 1)
        inside = (yy[r0:r1] - cy) ** 2 + (xx[:, c0:c1] - cx) ** 2 <= (0.85 * r_px) ** 2
        site_id[r0:r1, c0:c1][inside] = k + 1
        ring = np.stack([x0 + ring_px[:, 0] * RES, y0 - ring_px[:, 1] * RES], axis=1)
        rings.append(ring)
        county = counties[(cy > rows / 2) * 2 + (cx > cols / 2)]
        category = rng.choice(schema.CATEGORIES, p=[0.5, 0.25, 0.15, 0.1])
        status = rng.choice(schema.STATUSES)
        sites.append(
            {
                "type": "Feature",
                "properties": {
                    "site_id": f"C{k + 1:04d}",
                    "name": f"city site {k + 1}",
                    "county": county,
                    "category": str(category),
                    "status": str(status),
                    "target": str(rng.choice(schema.TARGETS)),
                    "restoration_start": "2022-06-01" if status == "restoring" else None,
                },
                "geometry": _polygon(ring, to_wgs84),
            }
        )
    del yy, xx
    restoring = np.zeros(n_sites + 1, bool)
    restoring[1:] = rng.random(n_sites) < 0.1
    # New digging: bare patches outside the sites from the middle of the period.
    digs = np.zeros(shape, bool)
    for _ in range(max(1, n_sites // 100)):
        r, c = rng.integers(20, rows - 40), rng.integers(20, cols - 40)
        digs[r : r + 15, c : c + 15] = site_id[r : r + 15, c : c + 15] == 0
    texture = rng.normal(0, 0.008, size=(rows, cols)).astype(np.float32)

    root.mkdir(parents=True, exist_ok=True)
    items_dir = root / "catalog" / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    lon, lat = to_wgs84.transform(
        [x0, x0 + cols * RES, x0 + cols * RES, x0], [y0, y0, y0 - rows * RES, y0 - rows * RES]
    )
    footprint = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    links = []
    for t in range(n_dates):
        tic = time.perf_counter()
        day = start + timedelta(days=t * revisit_days)
        season = 0.55 + 0.45 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 100) / 365)
        greening = t / max(1, n_dates - 1)
        surface = cover.copy()
        surface[site_id > 0] = BARE
        # Restoring sites green up pixel by pixel (up to two thirds by the last date).
        surface[restoring[site_id] & (np.abs(texture) < 0.008 * greening)] = 1
        if t >= n_dates // 2:
            surface[digs] = BARE
        vegetated = surface < BARE
        cloud_cells = rng.random((rows // CLOUD_CELL + 2, cols // CLOUD_CELL + 2))
        cover_frac = rng.uniform(0, 0.6)
        cloudy_cells = cloud_cells < cover_frac
        shadow_cells = np.roll(cloudy_cells, (1, 1), axis=(0, 1)) & ~cloudy_cells

        def up(cells: np.ndarray, k: int = CLOUD_CELL) -> np.ndarray:
            return np.repeat(np.repeat(cells, k, 0), k, 1)[:rows, :cols]

        cloudy, shadow = up(cloudy_cells), up(shadow_cells)
        item_id = f"S2{'AB'[t % 2]}_49SDT_{day:%Y%m%d}_0_L2A"
        folder = items_dir / item_id
        folder.mkdir(exist_ok=True)
        shift = rng.integers(0, 1000, size=(len(BANDS), 2))
        for b, band in enumerate(BANDS):
            refl = COVER[surface, b]
            if band == "nir":  # the seasonal cycle lives in NIR and red
                refl = np.where(vegetated, refl * (0.6 + 0.4 * season), refl)
            elif band == "red":
                refl = np.where(vegetated, refl * (1.6 - 0.6 * season), refl)
            refl = refl + np.roll(texture, tuple(shift[b]), axis=(0, 1))
            refl = np.where(cloudy, CLOUD[b], np.where(shadow, refl * 0.4, refl))
            dn = np.clip(refl * 10000 + 1000, 1, 65535).astype(np.uint16)
            if band in schema.BANDS_20M:
                _write(folder / f"{band}.tif", dn[::2, ::2], t20)
            else:
                _write(folder / f"{band}.tif", dn, t10)
        scl = np.where(cloudy, 9, np.where(shadow, 3, SCL_OF_COVER[surface])).astype(np.uint8)
        _write(folder / "scl.tif", scl[::2, ::2], t20)
        assets = {}
        for band in (*BANDS, schema.SCL):
            fine = band in schema.BANDS_10M
            transform = t10 if fine else t20
            size = [rows, cols] if fine else [rows // 2, cols // 2]
            raster = {"nodata": 0, "data_type": "uint8" if band == schema.SCL else "uint16"}
            if band != schema.SCL:
                raster.update(scale=0.0001, offset=-0.1)
            assets[band] = {
                "href": f"./{band}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "proj:shape": size,
                "proj:transform": list(transform)[:6],
                "raster:bands": [raster],
            }
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": [
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            ],
            "id": item_id,
            "geometry": {"type": "Polygon", "coordinates": [[*footprint, footprint[0]]]},
            "bbox": bbox,
            "properties": {
                "datetime": f"{day.isoformat()}T03:00:00Z",
                "platform": f"sentinel-2{'ab'[t % 2]}",
                "constellation": "sentinel-2",
                "eo:cloud_cover": round(100 * float(cloudy.mean()), 2),
                "proj:epsg": EPSG,
                "s2:processing_baseline": "04.00",
            },
            "links": [
                {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../../catalog.json", "type": "application/json"},
            ],
            "assets": assets,
        }
        (folder / f"{item_id}.json").write_text(json.dumps(item, indent=1))
        links.append({"rel": "item", "href": f"./items/{item_id}/{item_id}.json"})
        print(f"  date {t + 1}/{n_dates} written in {time.perf_counter() - tic:.1f} s", flush=True)

    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "minewatch-city-benchmark",
        "description": f"synthetic {rows} x {cols} px city scene for scripts/bench_run.py",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}, *links],
    }
    paths.catalog.write_text(json.dumps(catalog, indent=1))
    paths.sites.write_text(json.dumps(_feature_collection(sites), ensure_ascii=False))
    licensed = [s for s in sites if s["properties"]["category"] == "licensed"][: n_sites // 10]
    permits = [
        {
            "type": "Feature",
            "properties": {
                "permit_id": f"P{k + 1:04d}",
                "site_id": s["properties"]["site_id"],
                "holder": f"holder {k + 1}",
                "valid_from": "2015-01-01",
                "valid_to": "2030-12-31",
            },
            "geometry": s["geometry"],
        }
        for k, s in enumerate(licensed)
    ]
    paths.permits.write_text(json.dumps(_feature_collection(permits)))
    w, h = cols * RES, rows * RES
    reserve = np.array(
        [[x0 + 0.1 * w, y0 - 0.6 * h], [x0 + 0.3 * w, y0 - 0.6 * h], [x0 + 0.3 * w, y0 - 0.9 * h]]
    )
    zones = [
        {
            "type": "Feature",
            "properties": {"zone_id": "Z01", "kind": "nature_reserve"},
            "geometry": _polygon(reserve, to_wgs84),
        }
    ]
    paths.zones.write_text(json.dumps(_feature_collection(zones)))
    quarters = []
    for k, county in enumerate(counties):
        qx, qy = x0 + (k % 2) * w / 2, y0 - (k // 2) * h / 2
        ring = np.array([[qx, qy], [qx + w / 2, qy], [qx + w / 2, qy - h / 2], [qx, qy - h / 2]])
        quarters.append(
            {
                "type": "Feature",
                "properties": {"county": county},
                "geometry": _polygon(ring, to_wgs84),
            }
        )
    paths.aoi.write_text(json.dumps(_feature_collection(quarters)))
    paths.truth.write_text(json.dumps({"synthetic": "city benchmark scene; no truth kept"}))
    (root / ".complete").touch()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--size", type=int, default=4096, help="pixels on a side")
    parser.add_argument("--dates", type=int, default=36)
    parser.add_argument("--sites", type=int, default=2000)
    args = parser.parse_args()
    write_city_scene(
        args.root, shape=(args.size, args.size), n_dates=args.dates, n_sites=args.sites
    )


if __name__ == "__main__":
    main()
