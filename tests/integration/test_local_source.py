"""Reading a real static STAC catalog of COGs into the lazy cube."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import MaskingConfig
from pipeline.errors import InputError
from pipeline.indices import add_indices
from pipeline.masking import mask_clouds
from pipeline.sources.local import analysis_grid, load_cube, read_catalog


def test_read_catalog__scenes_sorted_with_baseline_offsets(tiny_catalog):
    path, _, dates = tiny_catalog
    scenes = read_catalog(path)
    assert [str(s.date.astype("datetime64[D]")) for s in scenes] == [d.isoformat() for d in dates]
    assert scenes[0].assets[0]["red"].offset == 0.0
    assert scenes[1].assets[0]["red"].offset == pytest.approx(-0.1)
    assert scenes[0].epsg == 32649


def test_read_catalog__period_filter_and_file_url(tiny_catalog):
    path, _, _ = tiny_catalog
    scenes = read_catalog(path.as_uri(), start=np.datetime64("2022-01-01"))
    assert len(scenes) == 1


def test_read_catalog__missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="catalog not found"):
        read_catalog(tmp_path / "nope" / "catalog.json")


def test_load_cube__is_lazy_and_undoes_scale_and_offset(tiny_catalog):
    path, values, _ = tiny_catalog
    scenes = read_catalog(path)
    grid = analysis_grid(scenes)
    assert grid.shape == (40, 60)
    cube = load_cube(scenes, grid, chunk_size=64)
    assert cube["red"].chunks == ((1, 1), (40,), (60,))  # dask-backed, nothing read yet
    red = cube["red"].values
    np.testing.assert_allclose(red, values["red"], atol=1e-4)  # both baselines decode alike


def test_load_cube__20m_bands_on_the_10m_grid_by_nearest(tiny_catalog):
    path, values, _ = tiny_catalog
    scenes = read_catalog(path)
    cube = load_cube(scenes, analysis_grid(scenes), chunk_size=16)
    swir = cube["swir16"].values
    assert swir.shape == (2, 40, 60)
    expected = np.repeat(np.repeat(values["swir16"], 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(swir, expected, atol=1e-4)
    # tile edges at 16-pixel chunks do not shift anything
    assert swir[0, 0, 39] == pytest.approx(0.18, abs=1e-4)
    assert swir[0, 0, 40] == pytest.approx(0.30, abs=1e-4)


def test_mask_clouds__scl_cloud_and_its_buffer_are_masked(tiny_catalog):
    path, _, _ = tiny_catalog
    scenes = read_catalog(path)
    cube = load_cube(scenes, analysis_grid(scenes), chunk_size=8)
    masked = mask_clouds(cube, MaskingConfig(buffer_pixels=1))
    clear = masked["clear"].values
    assert clear[0].all()
    # SCL cloud covers 20 m pixels 0..4 -> 10 m pixels 0..9, grown by one pixel
    assert not clear[1, :11, :11].any()
    assert clear[1, 11:, :].all() and clear[1, :, 11:].all()
    assert np.isnan(masked["red"].values[1, 5, 5])


def test_add_indices__ndvi_of_vegetation_and_bright_patch(tiny_catalog):
    path, _, _ = tiny_catalog
    scenes = read_catalog(path)
    ds = add_indices(load_cube(scenes, analysis_grid(scenes), chunk_size=32))
    ndvi = ds["ndvi"].values
    assert ndvi[0, 0, 0] == pytest.approx((0.40 - 0.04) / 0.44, abs=1e-3)
    assert ndvi[0, 15, 15] == pytest.approx((0.40 - 0.20) / 0.60, abs=1e-3)
    bsi = ds["bsi"].values
    assert bsi[0, 0, 0] == pytest.approx(
        (0.18 + 0.04 - 0.40 - 0.03) / (0.18 + 0.04 + 0.40 + 0.03), abs=1e-3
    )
