"""Local STAC catalogs built from the real imagery in ``../shared/data/real/``.

The Croatian Sentinel-2 L2A crops (``s2-l2a-zagorje/``) come with their original Earth
Search item JSON. ``zagorje_catalog`` writes a static catalog of them as a user would
have it: the original item properties and ``raster:bands`` (``offset: -0.1`` beside
``earthsearch:boa_offset_applied: true``), the local assets only (the others point to
S3), and ``proj:*`` describing the files. ``crs`` other than the native EPSG:32633
reprojects every file with rasterio first (nearest neighbour: values stay as stored),
as a Google Earth Engine export or a Sentinel Hub request in WGS84 delivers them;
``split`` puts the eastern part of every date in another CRS as a second item of the
same date, as two Sentinel-2 tiles of neighbouring UTM zones cover one area.

``independent_site_ndvi`` is the reference the tests hold the pipeline to: per-site
mean NDVI and BSI computed here with plain rasterio and numpy, on the native files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.warp import calculate_default_transform, reproject, transform_geom
from rasterio.windows import Window
from shapely.geometry import box, mapping

REAL = Path(__file__).parents[2].parent / "shared" / "data" / "real"
ZAGORJE = REAL / "s2-l2a-zagorje"
LANDSAT = REAL / "landsat-c2l2-colombia"
ZAGORJE_FILES = {"blue": "B02.tif", "green": "B03.tif", "red": "B04.tif", "nir": "B08.tif",
                 "scl": "SCL.tif"}  # fmt: skip
NATIVE_EPSG = 32633
# Sites on the Zagorje crop (UTM 33N metres): fields, woods and villages, 1.2-2.4 km wide,
# large beside the crop's 120 m pixels. S4 lies across the crop's middle column, where
# ``split`` cuts the scene between two CRSs.
ZAGORJE_SITES_UTM = {
    "S1": (576000, 5096000, 578400, 5098000),
    "S2": (583000, 5110000, 584800, 5111800),
    "S3": (595000, 5100000, 597400, 5101500),
    "S4": (585800, 5102000, 588400, 5104000),
    "S5": (590500, 5114000, 592000, 5116000),
}
ZAGORJE_SPLIT_X = 587340.0  # a 120 m pixel edge near the crop's middle


def zagorje_dates() -> list[Path]:
    return sorted(p for p in ZAGORJE.iterdir() if p.is_dir())


def _write_reprojected(
    src_path: Path, dst_path: Path, crs: CRS, window: Window | None, add_dn: int = 0
) -> dict:
    with rasterio.open(src_path) as src:
        data = src.read(1, window=window)
        if add_dn:
            data = np.where(data > 0, data + add_dn, 0).astype(data.dtype)
        transform = src.window_transform(window) if window is not None else src.transform
        height, width = data.shape
        profile = src.profile.copy()
        if crs == src.crs:
            dst_t, w, h = transform, width, height
            out = data
        else:
            left, top = transform * (0, 0)
            right, bottom = transform * (width, height)
            dst_t, w, h = calculate_default_transform(
                src.crs, crs, width, height, left=left, bottom=bottom, right=right, top=top
            )
            out = np.zeros((h, w), data.dtype)
            reproject(
                data,
                out,
                src_transform=transform,
                src_crs=src.crs,
                dst_transform=dst_t,
                dst_crs=crs,
                src_nodata=0,
                dst_nodata=0,
                resampling=Resampling.nearest,
            )
    profile.update(crs=crs, transform=dst_t, width=w, height=h, tiled=True, blockxsize=256,
                   blockysize=256, compress="deflate")  # fmt: skip
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(out, 1)
    return {"proj:shape": [h, w], "proj:transform": list(dst_t)[:6]}


def _item_json(
    src_dir: Path, dst_dir: Path, crs: CRS, window: Window | None, suffix: str = "", add_dn=0
) -> dict:
    original = json.loads((src_dir / f"{src_dir.name}.json").read_text())
    dst_dir.mkdir(parents=True, exist_ok=True)
    assets = {}
    for key, name in ZAGORJE_FILES.items():
        asset = dict(original["assets"][key])
        shift = add_dn if key != "scl" else 0
        asset.update(_write_reprojected(src_dir / name, dst_dir / name, crs, window, shift))
        asset["href"] = f"./{name}"
        assets[key] = asset
    props = dict(original["properties"])
    props.pop("proj:code", None)
    props["proj:epsg"] = crs.to_epsg()
    item = dict(original)
    item.update(id=original["id"] + suffix, properties=props, assets=assets, links=[])
    return item


def _write_catalog(root: Path, items: list[tuple[Path, dict]], name: str) -> Path:
    links = []
    for folder, item in items:
        item["links"] = [{"rel": "root", "href": "../catalog.json", "type": "application/json"}]
        (folder / f"{item['id']}.json").write_text(json.dumps(item, indent=1))
        links.append({"rel": "item", "href": f"./{folder.name}/{item['id']}.json"})
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": name,
               "description": f"{name}: real imagery for tests", "links": links}  # fmt: skip
    (root / "catalog.json").write_text(json.dumps(catalog, indent=1))
    return root / "catalog.json"


def zagorje_catalog(
    root: Path,
    *,
    crs: str = f"EPSG:{NATIVE_EPSG}",
    split: str | None = None,
    columns: tuple[tuple[int, int], ...] | None = None,
    boa_flag: dict[str, bool] | None = None,
    offset_in_pixels: tuple[str, ...] = (),
) -> Path:
    """A static catalog of the five Zagorje dates in ``crs``. Returns catalog.json.

    ``split``: the part east of ``ZAGORJE_SPLIT_X`` of every date in that CRS, as a
    second item of the date. ``columns``: only these column ranges of the crop, one
    item each. ``boa_flag``: item id -> the ``earthsearch:boa_offset_applied`` value to
    write (a wrong flag, as on some Earth Search items). ``offset_in_pixels``: items
    whose reflectance DN keep the baseline offset (+1000), their flag left saying it is
    applied.
    """
    root.mkdir(parents=True, exist_ok=True)
    target = CRS.from_user_input(crs)
    items = []
    for src_dir in zagorje_dates():
        with rasterio.open(src_dir / "B04.tif") as src:
            width, height = src.width, src.height
            mid = round((ZAGORJE_SPLIT_X - src.transform.c) / src.transform.a)
        if columns is not None:
            parts = [(Window(c0, 0, c1 - c0, height), target, f"_{k}")
                     for k, (c0, c1) in enumerate(columns)]  # fmt: skip
        elif split is not None:
            parts = [
                (Window(0, 0, mid, height), target, ""),
                (Window(mid, 0, width - mid, height), CRS.from_user_input(split), "_E"),
            ]
        else:
            parts = [(None, target, "")]
        for window, part_crs, suffix in parts:
            folder = root / f"{src_dir.name}{suffix}"
            shift = 1000 if src_dir.name in offset_in_pixels else 0
            item = _item_json(src_dir, folder, part_crs, window, suffix, shift)
            if boa_flag and item["id"] in boa_flag:
                item["properties"]["earthsearch:boa_offset_applied"] = boa_flag[item["id"]]
            items.append((folder, item))
    return _write_catalog(root, items, "zagorje")


def zagorje_sites(path: Path, sites: dict[str, tuple] = ZAGORJE_SITES_UTM) -> Path:
    """The sites as RFC 7946 GeoJSON (WGS84), with the contract's properties."""
    features = []
    for i, (sid, bounds) in enumerate(sites.items()):
        geom = transform_geom(f"EPSG:{NATIVE_EPSG}", "EPSG:4326", mapping(box(*bounds)))
        features.append({
            "type": "Feature",
            "geometry": geom,
            "properties": {
                "site_id": sid, "name": f"site {sid}", "county": "Zagorje",
                "category": ("licensed", "orphaned", "illegal", "waste_pile")[i % 4],
                "status": "restoring", "target": "forest",
                "restoration_start": "2019-04-01",
            },
        })  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def aoi_file(path: Path, bounds_utm: tuple[float, float, float, float]) -> Path:
    geom = transform_geom(f"EPSG:{NATIVE_EPSG}", "EPSG:4326", mapping(box(*bounds_utm)))
    path.write_text(json.dumps({"type": "Feature", "geometry": geom, "properties": {}}))
    return path


def independent_site_ndvi(
    invalid_scl: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11), resolution: float = 10.0
) -> dict[tuple[str, str], tuple[float, float]]:
    """(site_id, date) -> (mean NDVI, clear pixel count on a ``resolution`` grid) from
    the native files.

    Written apart from the pipeline: each 120 m pixel is repeated to ``resolution`` with
    ``np.kron``, a site's pixels are those whose centre lies inside it
    (``geometry_mask``), reflectance is DN x 0.0001 (Earth Search already took the
    baseline offset off), and a pixel counts when its SCL class is not invalid.
    """
    out = {}
    for d in zagorje_dates():
        day = d.name.split("_")[2]
        with rasterio.open(d / "B04.tif") as src:
            red = src.read(1).astype(np.float64) * 1e-4
            t = src.transform
        with rasterio.open(d / "B08.tif") as src:
            nir = src.read(1).astype(np.float64) * 1e-4
        with rasterio.open(d / "SCL.tif") as src:
            scl = src.read(1)
        k = round(t.a / resolution)
        red10, nir10 = np.kron(red, np.ones((k, k))), np.kron(nir, np.ones((k, k)))
        ok10 = np.kron(~np.isin(scl, invalid_scl), np.ones((k, k), bool))
        t10 = t * Affine.scale(1 / k)
        ndvi = (nir10 - red10) / (nir10 + red10)
        for sid, bounds in ZAGORJE_SITES_UTM.items():
            inside = ~geometry_mask([box(*bounds)], out_shape=red10.shape, transform=t10)
            sel = inside & ok10
            mean = float(ndvi[sel].mean()) if sel.any() else float("nan")
            out[(sid, f"{day[:4]}-{day[4:6]}-{day[6:]}")] = (mean, int(sel.sum()))
    return out


LANDSAT_ID = "LC08_L2SP_008059_20191201_20200825_02_T1"
LANDSAT_FILES = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir08": "SR_B5",
                 "swir16": "SR_B6", "swir22": "SR_B7", "qa_pixel": "QA_PIXEL"}  # fmt: skip
# Landsat sites in the scene's pixel rows and columns (444 x 454 m pixels): three in
# clear country, one across a cloud, one at a cloud's ragged edge.
LANDSAT_SITES_PX = {"L1": (226, 236, 180, 200), "L2": (200, 212, 210, 226),
                    "L3": (200, 215, 248, 266), "L4": (210, 222, 280, 300),
                    "L5": (238, 250, 290, 310)}  # fmt: skip
LANDSAT_AOI_PX = (190, 262, 170, 330)
HLS = {"blue": (0.9778, -0.004), "red": (0.9765, 0.0009), "nir08": (0.9983, -0.0001),
       "swir16": (0.9987, -0.0011)}  # fmt: skip


def _landsat_transform() -> Affine:
    with rasterio.open(LANDSAT / f"{LANDSAT_ID}_QA_PIXEL.TIF") as src:
        return src.transform


def landsat_box(rows_cols: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """UTM 18N bounds of a (row0, row1, col0, col1) block of the Landsat scene."""
    r0, r1, c0, c1 = rows_cols
    t = _landsat_transform()
    (x0, y0), (x1, y1) = t * (c0, r0), t * (c1, r1)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def landsat_catalog(root: Path, *, crs: str | None = None) -> Path:
    """A ``landsat-c2-l2`` STAC item of the Colombian scene (optionally reprojected)."""
    folder = root / LANDSAT_ID
    folder.mkdir(parents=True, exist_ok=True)
    assets = {}
    for key, name in LANDSAT_FILES.items():
        src = LANDSAT / f"{LANDSAT_ID}_{name}.TIF"
        with rasterio.open(src) as f:
            native = f.crs
        target = CRS.from_user_input(crs) if crs else native
        proj = _write_reprojected(src, folder / f"{name}.TIF", target, None)
        band: dict = {"nodata": 1, "data_type": "uint16"}
        if key != "qa_pixel":
            band.update(nodata=0, scale=2.75e-05, offset=-0.2)
        assets[key] = {"href": f"./{name}.TIF", "type": "image/tiff; application=geotiff",
                       "roles": ["data"], "raster:bands": [band], **proj}  # fmt: skip
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": LANDSAT_ID,
        "collection": "landsat-c2-l2",
        "geometry": None, "bbox": None,
        "properties": {"datetime": "2019-12-01T15:13:51Z", "platform": "landsat-8",
                       "instruments": ["oli", "tirs"], "eo:cloud_cover": 81.02,
                       "proj:epsg": target.to_epsg()},
        "assets": assets,
    }  # fmt: skip
    return _write_catalog(root, [(folder, item)], "landsat")


def independent_landsat(resolution: float = 30.0) -> dict[str, tuple[float, float]]:
    """site_id -> (mean NDVI, mean BSI) over clear pixels, in plain rasterio and numpy.

    The bands are resampled (bilinear; QA nearest) onto a ``resolution`` grid over the
    AOI in the scene's own UTM zone; reflectance is DN x 2.75e-05 - 0.2, put on
    Sentinel-2's scale with HLS's coefficients; a pixel counts when its QA says clear
    (bit 6) and not water; a site's pixels have their centre inside it.
    """
    left, bottom, right, top = landsat_box(LANDSAT_AOI_PX)
    left, top = np.floor(left / resolution) * resolution, np.ceil(top / resolution) * resolution
    right = np.ceil(right / resolution) * resolution
    bottom = np.floor(bottom / resolution) * resolution
    shape = (round((top - bottom) / resolution), round((right - left) / resolution))
    dst_t = Affine(resolution, 0, left, 0, -resolution, top)
    bands = {}
    for key in ("blue", "red", "nir08", "swir16", "qa_pixel"):
        with rasterio.open(LANDSAT / f"{LANDSAT_ID}_{LANDSAT_FILES[key]}.TIF") as src:
            out = np.zeros(shape, np.float64 if key != "qa_pixel" else np.uint16)
            reproject(
                src.read(1), out, src_transform=src.transform, src_crs=src.crs,
                dst_transform=dst_t, dst_crs=src.crs, src_nodata=0 if key != "qa_pixel" else 1,
                dst_nodata=0 if key != "qa_pixel" else 1,
                resampling=Resampling.nearest if key == "qa_pixel" else Resampling.bilinear,
            )  # fmt: skip
        if key != "qa_pixel":
            slope, intercept = HLS[key]
            out = np.where(out > 0, ((out * 2.75e-05 - 0.2) - intercept) / slope, np.nan)
        bands[key] = out
    qa = bands["qa_pixel"].astype(np.uint16)
    clear = (((qa >> 6) & 1) == 1) & (((qa >> 7) & 1) == 0) & ((qa & 0b111111) == 0)
    red, nir, blue, swir = bands["red"], bands["nir08"], bands["blue"], bands["swir16"]
    ndvi = (nir - red) / (nir + red)
    bsi = ((swir + red) - (nir + blue)) / ((swir + red) + (nir + blue))
    out_stats = {}
    for sid, px in LANDSAT_SITES_PX.items():
        inside = ~geometry_mask([box(*landsat_box(px))], out_shape=shape, transform=dst_t)
        sel = inside & clear & np.isfinite(ndvi) & np.isfinite(bsi)
        out_stats[sid] = (
            (float(ndvi[sel].mean()), float(bsi[sel].mean())) if sel.any() else (np.nan, np.nan)
        )
    return out_stats


def landsat_sites(path: Path) -> Path:
    """The Landsat sites as RFC 7946 GeoJSON with the contract's properties."""
    crs = "EPSG:32618"
    features = []
    for sid, px in LANDSAT_SITES_PX.items():
        geom = transform_geom(crs, "EPSG:4326", mapping(box(*landsat_box(px))))
        props = {"site_id": sid, "name": f"site {sid}", "county": "Huila",
                 "category": "orphaned", "status": "restoring", "target": "forest",
                 "restoration_start": "2015-01-01"}  # fmt: skip
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    aoi = transform_geom(crs, "EPSG:4326", mapping(box(*landsat_box(LANDSAT_AOI_PX))))
    (path.parent / "landsat_aoi.geojson").write_text(
        json.dumps({"type": "Feature", "geometry": aoi, "properties": {}})
    )
    return path


SLOVENIA = REAL / "eo-learn-slovenia"
SLOVENIA_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                  "B10", "B11", "B12"]  # fmt: skip
SLOVENIA_ASSETS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08",
                   "swir16": "B11", "swir22": "B12"}  # fmt: skip
# Sites on the Slovenian patch (UTM 33N), 250-400 m wide, in its forest and clearings.
SLOVENIA_SITES_UTM = {
    "F1": (465250, 5079300, 465600, 5079650),
    "F2": (465700, 5079800, 466100, 5080150),
    "F3": (465300, 5079800, 465600, 5080200),
    "F4": (465750, 5079300, 466120, 5079600),
}


def _slovenia_grid() -> tuple[Affine, tuple[int, int]]:
    """The patch's transform (its pixels are 9.995 x 9.997 m) and shape."""
    ring = json.loads((SLOVENIA / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    arr = np.load(SLOVENIA / "REFERENCE_SCENES.npy", mmap_mode="r")
    rows, cols = arr.shape[1:3]
    return rasterio.transform.from_bounds(min(xs), min(ys), max(xs), max(ys), cols, rows), (
        rows,
        cols,
    )


def slovenia_scenes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(date, TOA bands (rows, cols, 13), clear mask) of the five reference scenes.

    The scenes are the first five timestamps but not stored in date order: each is
    matched to the date whose eo-learn NDVI it reproduces. Clear: s2cloudless says no
    cloud (``CLM``) and the pixel has data (``IS_DATA``).
    """
    scenes = np.load(SLOVENIA / "REFERENCE_SCENES.npy")
    ref = np.load(SLOVENIA / "data" / "NDVI.npy")[:5, ..., 0]
    clm = np.load(SLOVENIA / "mask" / "CLM.npy")[..., 0]
    is_data = np.load(SLOVENIA / "mask" / "IS_DATA.npy")[..., 0]
    stamps = json.loads((SLOVENIA / "timestamps.json").read_text())
    out = []
    for scene in scenes:
        nir, red = scene[..., SLOVENIA_BANDS.index("B08")], scene[..., SLOVENIA_BANDS.index("B04")]
        ndvi = (nir - red) / (nir + red)
        [j] = [j for j in range(5) if np.allclose(ndvi, ref[j], atol=1e-5, equal_nan=True)]
        out.append((stamps[j][:10], scene, (clm[j] == 0) & (is_data[j] == 1)))
    return sorted(out, key=lambda s: s[0])


def slovenia_catalog(root: Path, *, crs: str | None = None) -> Path:
    """The five scenes as a catalog of uint16 GeoTIFFs (DN = 10000 x R) with an SCL made
    from the cloud mask (9 cloud, 4 clear, 0 no data), optionally reprojected."""
    transform, (rows, cols) = _slovenia_grid()
    native = CRS.from_epsg(NATIVE_EPSG)
    target = CRS.from_user_input(crs) if crs else native
    items = []
    for day, scene, clear in slovenia_scenes():
        item_id = f"S2_33TVM_{day.replace('-', '')}_L1C"
        folder = root / item_id
        folder.mkdir(parents=True, exist_ok=True)
        assets = {}
        arrays = {k: np.clip(np.rint(scene[..., SLOVENIA_BANDS.index(b)] * 10000), 1, 65535)
                  .astype(np.uint16) for k, b in SLOVENIA_ASSETS.items()}  # fmt: skip
        arrays["scl"] = np.where(clear, 4, 9).astype(np.uint8)
        for key, data in arrays.items():
            tmp = folder / f"_{key}.tif"
            profile = {"driver": "GTiff", "height": rows, "width": cols, "count": 1,
                       "dtype": data.dtype, "crs": native, "transform": transform,
                       "nodata": 0}  # fmt: skip
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data, 1)
            proj = _write_reprojected(tmp, folder / f"{key}.tif", target, None)
            tmp.unlink()
            band: dict = {"nodata": 0}
            if key != "scl":
                band.update(scale=0.0001, offset=0.0)
            assets[key] = {"href": f"./{key}.tif", "type": "image/tiff; application=geotiff",
                           "roles": ["data"], "raster:bands": [band], **proj}  # fmt: skip
        item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None,
                "bbox": None, "assets": assets,
                "properties": {"datetime": f"{day}T10:00:00Z", "platform": "sentinel-2a",
                               "proj:epsg": target.to_epsg()}}  # fmt: skip
        items.append((folder, item))
    return _write_catalog(root, items, "slovenia")


def slovenia_sites(path: Path) -> Path:
    features = []
    for sid, bounds in SLOVENIA_SITES_UTM.items():
        geom = transform_geom(f"EPSG:{NATIVE_EPSG}", "EPSG:4326", mapping(box(*bounds)))
        props = {"site_id": sid, "name": f"forest {sid}", "county": "Grosuplje",
                 "category": "orphaned", "status": "restoring", "target": "forest",
                 "restoration_start": "2014-04-01"}  # fmt: skip
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def independent_slovenia() -> dict[tuple[str, str], tuple[float, float, int]]:
    """(site_id, date) -> (mean NDVI, mean BSI, clear pixels) on the patch's own pixels
    (centre inside the site, clear by s2cloudless), in numpy from the reference arrays."""
    transform, shape = _slovenia_grid()
    out = {}
    for day, scene, clear in slovenia_scenes():
        b = {k: scene[..., SLOVENIA_BANDS.index(v)].astype(np.float64)
             for k, v in SLOVENIA_ASSETS.items()}  # fmt: skip
        ndvi = (b["nir"] - b["red"]) / (b["nir"] + b["red"])
        bsi = ((b["swir16"] + b["red"]) - (b["nir"] + b["blue"])) / (
            (b["swir16"] + b["red"]) + (b["nir"] + b["blue"])
        )
        for sid, bounds in SLOVENIA_SITES_UTM.items():
            sel = ~geometry_mask([box(*bounds)], out_shape=shape, transform=transform) & clear
            n = int(sel.sum())
            out[(sid, day)] = (
                float(ndvi[sel].mean()) if n else np.nan,
                float(bsi[sel].mean()) if n else np.nan,
                n,
            )
    return out


BC06 = REAL / "spectral-recovery-bc06"
BC06_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


def bc06_catalog(root: Path) -> Path:
    """The yearly Landsat composites 2002..2023 as a catalog, one item a year (1 August),
    each band its own float32 GeoTIFF (reflectance as stored: scale 1, no nodata)."""
    items = []
    for path in sorted((BC06 / "bc06_wildfire_landsat_BAP").glob("*.tif")):
        year = path.stem
        item_id = f"bc06_landsat_bap_{year}"
        folder = root / item_id
        folder.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path) as src:
            data, profile = src.read().astype(np.float32), src.profile.copy()
        profile.update(count=1, dtype="float32", nodata=None, interleave="band")
        assets = {}
        for i, key in enumerate(BC06_BANDS):
            with rasterio.open(folder / f"{key}.tif", "w", **profile) as dst:
                dst.write(data[i], 1)
            band = {"scale": 1.0, "offset": 0.0, "nodata": None}
            assets[key] = {"href": f"./{key}.tif", "type": "image/tiff; application=geotiff",
                           "roles": ["data"], "raster:bands": [band]}  # fmt: skip
        item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None,
                "bbox": None, "assets": assets,
                "properties": {"datetime": f"{year}-08-01T19:00:00Z", "platform": "landsat",
                               "proj:epsg": 26910}}  # fmt: skip
        items.append((folder, item))
    return _write_catalog(root, items, "bc06")


def bc06_site(path: Path) -> Path:
    """The burned and recovering site's outline as a MineWatch site (WGS84 GeoJSON)."""
    import geopandas as gpd

    outline = gpd.read_file(BC06 / "bc06_wildfire_restoration_site.gpkg").to_crs("EPSG:4326")
    props = {"site_id": "BC06", "name": "burn BC06", "county": "Cariboo",
             "category": "orphaned", "status": "restoring", "target": "forest",
             "restoration_start": "2007-05-01"}  # fmt: skip
    feature = {
        "type": "Feature",
        "geometry": mapping(outline.geometry.iloc[0]),
        "properties": props,
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def independent_bc06() -> dict[int, float]:
    """Year -> mean NDVI of the composite's pixels whose centre lies inside the site."""
    import geopandas as gpd

    outline = gpd.read_file(BC06 / "bc06_wildfire_restoration_site.gpkg").geometry.iloc[0]
    out = {}
    for path in sorted((BC06 / "bc06_wildfire_landsat_BAP").glob("*.tif")):
        with rasterio.open(path) as src:
            red, nir = src.read(3), src.read(4)
            inside = ~geometry_mask([outline], out_shape=red.shape, transform=src.transform)
        with np.errstate(invalid="ignore"):
            ndvi = (nir - red) / (nir + red)
        ok = inside & np.isfinite(ndvi)
        out[int(path.stem)] = float(ndvi[ok].mean())
    return out
