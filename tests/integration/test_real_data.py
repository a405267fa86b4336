"""Index maths against independent reference values from real Sentinel-2 data."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from pipeline.config import DetectionConfig, SurfaceConfig
from pipeline.excavation import look_lines
from pipeline.excavation_looks import missed_cloud
from pipeline.indices import add_indices, bsi, ndvi
from pipeline.site_pixels import site_pixel_index
from pipeline.sources.base import GridSpec
from pipeline.zonal import assemble_timeseries, site_timeseries_tasks

REAL = Path(__file__).parents[2].parent / "shared" / "data" / "real"
SLOVENIA = REAL / "eo-learn-slovenia"
BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]

needs_real = pytest.mark.skipif(not SLOVENIA.exists(), reason=f"real data not found at {SLOVENIA}")


def _scenes() -> xr.Dataset:
    arr = np.load(SLOVENIA / "REFERENCE_SCENES.npy")  # (5, 101, 100, 13)
    names = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11"}
    return xr.Dataset({k: (("time", "y", "x"), arr[..., BANDS.index(b)]) for k, b in names.items()})


def _match_reference_dates(ours: np.ndarray, ref: np.ndarray) -> list[int]:
    """For each of our scenes, the reference date whose NDVI it reproduces (atol 1e-5)."""
    matches = []
    for scene in ours:
        agree = [
            j for j in range(ref.shape[0]) if np.allclose(scene, ref[j], atol=1e-5, equal_nan=True)
        ]
        assert len(agree) == 1, f"scene matches reference dates {agree}"
        matches.append(agree[0])
    return matches


@needs_real
def test_ndvi__matches_eo_learn_reference_on_real_sentinel2():
    # The reference scenes are the first five dates, though not stored in date order:
    # each must reproduce exactly one of the first five reference NDVI rasters.
    ours = ndvi(_scenes()).values
    ref = np.load(SLOVENIA / "data" / "NDVI.npy")[:5, ..., 0]
    assert np.isfinite(ours).mean() > 0.99
    assert sorted(_match_reference_dates(ours, ref)) == [0, 1, 2, 3, 4]


@needs_real
def test_ndvi__dask_and_numpy_agree_on_real_data():
    ds = _scenes()
    eager = add_indices(ds)
    lazy = add_indices(ds.chunk({"time": 1, "y": 37, "x": 41}))
    for name in ("ndvi", "bsi", "ndwi"):
        assert lazy[name].chunks is not None
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, equal_nan=True)


@needs_real
def test_bsi__forest_is_negative_and_bounded():
    ours = ndvi(_scenes()).values
    ref = np.load(SLOVENIA / "data" / "NDVI.npy")[:5, ..., 0]
    july = _match_reference_dates(ours, ref).index(0)  # 2015-07-11, clear summer forest
    values = bsi(_scenes()).values[july]
    assert np.nanmax(np.abs(values)) <= 1
    assert np.nanmedian(values) < -0.03  # TOA reflectance: haze lifts blue, BSI nearer 0


@needs_real
def test_site_timeseries__real_patch_matches_eo_learn_reference_ndvi():
    # Per-site NDVI from the real bands, gathered tile by tile (tiles of 32 px cut the
    # sites), against statistics of eo-learn's own NDVI raster over the same pixels.
    ds = add_indices(_scenes()).chunk({"time": 1, "y": 32, "x": 32})
    ds["clear"] = ds["ndvi"].notnull()
    ours = ndvi(_scenes()).values
    ref = np.load(SLOVENIA / "data" / "NDVI.npy")[:5, ..., 0]
    order = _match_reference_dates(ours, ref)
    grid = GridSpec(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 1010), (101, 100))
    boxes = {"A": (10, 60, 20, 50), "B": (40, 101, 30, 90), "C": (0, 15, 0, 100)}  # rows, cols
    geoms = [
        box(c0 * 10, 1010 - r1 * 10, c1 * 10, 1010 - r0 * 10) for r0, r1, c0, c1 in boxes.values()
    ]
    pixels = site_pixel_index(list(boxes), geoms, grid, chunk_size=32)
    tasks = site_timeseries_tasks(ds, pixels, SurfaceConfig())
    (results,) = dask.compute([t for _, t in tasks])
    table = assemble_timeseries(
        list(zip([t for t, _ in tasks], results, strict=True)),
        pixels,
        np.arange(5).astype("datetime64[D]"),
    )
    for k, (sid, (r0, r1, c0, c1)) in enumerate(boxes.items()):
        for t in range(5):
            window = ref[order[t], r0:r1, c0:c1]
            window = window[np.isfinite(window)]
            row = table[table.site_id == sid].iloc[t]
            assert row.n_pixels == (r1 - r0) * (c1 - c0) == pixels.n_inside[k]
            assert row.ndvi_mean == pytest.approx(window.mean(), abs=1e-5)
            assert row.ndvi_median == pytest.approx(np.median(window), abs=1e-5)


@needs_real
def test_missed_cloud__takes_real_cloud_and_no_clear_ground():
    # The fold's missed-cloud test (bright, unvegetated, BSI below fresh bare) on five
    # real scenes, two of them under cloud (CLM): it takes the thick part of one cloud,
    # a few hundred pixels that are forest (NDVI above 0.6) on the clear scenes, and
    # nothing on the clear scenes themselves (forest, fields, roads, roofs).
    ds = _scenes()
    nd, bs = ndvi(ds).values, bsi(ds).values
    picked = missed_cloud(nd, bs, ds["red"].values, look_lines(DetectionConfig()))
    ref = np.load(SLOVENIA / "data" / "NDVI.npy")[:5, ..., 0]
    when = _match_reference_dates(nd, ref)  # the scenes are not stored in date order
    cloud = np.load(SLOVENIA / "mask" / "CLM.npy")[when, ..., 0].astype(bool)
    cloudy = cloud.mean(axis=(1, 2)) > 0.5
    assert cloudy.sum() == 2
    assert picked[~cloudy].sum() == 0
    assert picked[cloudy].sum() >= 100
    assert not (picked & ~cloud).any()
    under = picked[cloudy].any(axis=0)
    assert np.median(nd[~cloudy][:, under]) > 0.6
