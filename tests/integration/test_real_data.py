"""Index maths against independent reference values from real Sentinel-2 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.indices import add_indices, bsi, ndvi

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
