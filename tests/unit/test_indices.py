"""Index kernels: numpy and lazy dask give the same values; edge cases are NaN, not errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.indices import add_indices, bsi_values, ndvi, ndvi_values, ndwi_values


def _cube(seed: int, shape=(3, 20, 30)) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    bands = {
        b: rng.uniform(0.0, 0.5, shape).astype(np.float32)
        for b in ("blue", "green", "red", "nir", "swir16")
    }
    bands["red"][0, :2, :2] = np.nan  # no data
    bands["red"][1, 3, 3] = 0.0
    bands["nir"][1, 3, 3] = 0.0  # zero denominator
    return xr.Dataset({b: (("time", "y", "x"), v) for b, v in bands.items()})


def test_add_indices__numpy_and_dask_agree():
    ds = _cube(1)
    eager = add_indices(ds)
    lazy = add_indices(ds.chunk({"time": 1, "y": 7, "x": 11}))
    for name in ("ndvi", "bsi", "ndwi"):
        assert lazy[name].chunks is not None  # still lazy
        assert lazy[name].dtype == np.float32
        np.testing.assert_array_equal(lazy[name].values, eager[name].values)


def test_add_indices__kernels_match_the_formulas():
    ds = _cube(2)
    out = add_indices(ds)
    b, g, r, n, s = (
        ds[k].values.astype(np.float64) for k in ("blue", "green", "red", "nir", "swir16")
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(out["ndvi"].values, (n - r) / (n + r), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            out["bsi"].values, ((s + r) - (n + b)) / ((s + r) + (n + b)), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(out["ndwi"].values, (g - n) / (g + n), rtol=1e-5, atol=1e-6)


def test_ndvi__zero_sum_and_missing_value_are_nan():
    out = ndvi(_cube(3)).values
    assert np.isnan(out[1, 3, 3])
    assert np.isnan(out[0, :2, :2]).all()
    assert np.isfinite(out[2]).all()


def test_ndvi__missing_band_is_nan_with_a_warning(caplog):
    ds = _cube(4).drop_vars("nir")
    with caplog.at_level(logging.WARNING):
        out = add_indices(ds)
    assert np.isnan(out["ndvi"].values).all() and np.isnan(out["ndwi"].values).all()
    assert "nir" in caplog.text


finite = st.floats(0, 1.5, width=32, allow_subnormal=False)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (4, 5), elements=finite), arrays(np.float32, (4, 5), elements=finite))
def test_normalized_difference__bounded_and_antisymmetric(a, b):
    out = ndvi_values(a, b)
    assert out.dtype == np.float32
    ok = (a + b) != 0
    assert np.isnan(out[~ok]).all()
    assert (np.abs(out[ok]) <= 1).all()
    np.testing.assert_array_equal(ndwi_values(b, a)[ok], -out[ok])


def test_bsi_values__bare_positive_vegetation_negative():
    bare = bsi_values(np.float32(0.32), np.float32(0.18), np.float32(0.26), np.float32(0.10))
    veg = bsi_values(np.float32(0.18), np.float32(0.04), np.float32(0.42), np.float32(0.03))
    assert bare > 0 > veg


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndvi_values__float32_out_for_any_float_in(dtype):
    assert ndvi_values(np.array([0.4], dtype), np.array([0.1], dtype)).dtype == np.float32
