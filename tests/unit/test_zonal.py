"""Per-site statistics from tiles: exact on overlaps, tile edges and partial coverage."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from shapely import make_valid
from shapely.geometry import Polygon, box

from pipeline.config import SurfaceConfig
from pipeline.site_pixels import site_pixel_index
from pipeline.sources.base import GridSpec, upsample
from pipeline.zonal import assemble_timeseries, site_timeseries_tasks

GRID = GridSpec(CRS.from_epsg(32649), Affine(10, 0, 0, 0, -10, 500), (50, 70))


def _dataset(seed: int, chunk: int, n_times: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (n_times, *GRID.shape)
    ds = xr.Dataset(
        {
            "ndvi": (("time", "y", "x"), rng.uniform(-0.2, 0.9, shape).astype(np.float32)),
            "bsi": (("time", "y", "x"), rng.uniform(-0.4, 0.4, shape).astype(np.float32)),
            "ndwi": (("time", "y", "x"), rng.uniform(-0.6, 0.5, shape).astype(np.float32)),
            "clear": (("time", "y", "x"), rng.random(shape) > 0.3),
        },
        coords={
            "time": np.datetime64("2023-05-01", "ns") + np.arange(n_times) * np.timedelta64(10, "D")
        },
    )
    ds["ndvi"] = ds["ndvi"].where(ds["clear"])
    return ds.chunk({"time": 1, "y": chunk, "x": chunk})


def _run(ds: xr.Dataset, geoms, chunk: int):
    ids = [f"S{i}" for i in range(len(geoms))]
    pixels = site_pixel_index(ids, geoms, GRID, chunk_size=chunk)
    tasks = site_timeseries_tasks(ds, pixels, SurfaceConfig())
    (results,) = dask.compute([t for _, t in tasks])
    table = assemble_timeseries(
        list(zip([t for t, _ in tasks], results, strict=True)), pixels, ds["time"].values
    )
    return pixels, table


def _brute(ds: xr.Dataset, rows: slice, cols: slice, t: int) -> dict[str, float]:
    nd = ds["ndvi"].values[t, rows, cols].ravel()
    ok = ds["clear"].values[t, rows, cols].ravel() & np.isfinite(nd)
    return {
        "n": ok.sum(),
        "mean": nd[ok].mean(),
        "median": np.median(nd[ok]),
        "bsi": ds["bsi"].values[t, rows, cols].ravel()[ok].mean(),
    }


def test_site_timeseries__overlapping_sites_each_get_their_pixels():
    ds = _dataset(1, chunk=16)
    # pixel-aligned boxes: rows 10..29 cols 5..24 and rows 20..39 cols 15..44 (overlap)
    a = box(50, 500 - 300, 250, 500 - 100)
    b = box(150, 500 - 400, 450, 500 - 200)
    pixels, table = _run(ds, [a, b], chunk=16)
    assert list(pixels.n_inside) == [400, 600]
    for sid, rows, cols in (
        ("S0", slice(10, 30), slice(5, 25)),
        ("S1", slice(20, 40), slice(15, 45)),
    ):
        for t in range(3):
            row = table[(table.site_id == sid)].iloc[t]
            ref = _brute(ds, rows, cols, t)
            assert row.n_pixels == rows.stop * 0 + (rows.stop - rows.start) * (
                cols.stop - cols.start
            )
            assert row.valid_fraction == pytest.approx(ref["n"] / row.n_pixels)
            assert row.ndvi_mean == pytest.approx(ref["mean"], rel=1e-5)
            assert row.ndvi_median == pytest.approx(ref["median"], rel=1e-5)
            assert row.bsi_mean == pytest.approx(ref["bsi"], rel=1e-4)


def test_site_timeseries__site_partly_outside_reports_coverage():
    ds = _dataset(2, chunk=32)
    half_out = box(600, 300, 800, 400)  # cols 60..79, grid has 70 cols -> half outside
    pixels, table = _run(ds, [half_out], chunk=32)
    assert pixels.n_expected[0] == 200
    assert pixels.n_inside[0] == 100
    assert pixels.coverage[0] == pytest.approx(0.5)
    assert (table.n_pixels == 100).all()


def test_site_timeseries__no_clear_pixel_keeps_the_row_with_nan():
    ds = _dataset(3, chunk=32)
    ds["clear"][1] = False
    _, table = _run(ds, [box(100, 200, 200, 300)], chunk=32)
    assert len(table) == 3
    cloudy = table.iloc[1]
    assert cloudy.valid_fraction == 0
    assert np.isnan(cloudy.ndvi_mean) and np.isnan(cloudy.ndvi_median)
    assert np.isnan(cloudy.vegetated_fraction)


def test_site_timeseries__fractions_follow_surface_thresholds():
    ds = _dataset(4, chunk=25)
    _, table = _run(ds, [box(0, 0, 700, 500)], chunk=25)
    t = 0
    nd = ds["ndvi"].values[t]
    nw = ds["ndwi"].values[t]
    ok = ds["clear"].values[t] & np.isfinite(nd)
    water = ok & (nw >= 0.1)
    veg = ok & (nd >= 0.4) & ~water
    row = table.iloc[t]
    assert row.water_fraction == pytest.approx(water.sum() / ok.sum())
    assert row.vegetated_fraction == pytest.approx(veg.sum() / ok.sum())


@settings(max_examples=25, deadline=None)
@given(
    x0=st.integers(0, 60),
    y0=st.integers(0, 40),
    w=st.integers(1, 30),
    h=st.integers(1, 30),
    chunk=st.sampled_from([7, 16, 64]),
)
def test_site_timeseries__tile_size_never_changes_results(x0, y0, w, h, chunk):
    ds_small = _dataset(5, chunk=chunk, n_times=1)
    ds_big = _dataset(5, chunk=128, n_times=1)
    geom = box(x0 * 10, 500 - (y0 + h) * 10, (x0 + w) * 10, 500 - y0 * 10)
    p1, t1 = _run(ds_small, [geom], chunk=chunk)
    p2, t2 = _run(ds_big, [geom], chunk=128)
    assert p1.n_inside[0] == p2.n_inside[0] == min(w, 70 - x0) * min(h, 50 - y0)
    np.testing.assert_allclose(
        t1.drop(columns=["site_id", "date"]).to_numpy(float),
        t2.drop(columns=["site_id", "date"]).to_numpy(float),
        rtol=1e-6,
    )


@settings(max_examples=20, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([-0.5, -0.25, -0.0, 0.0, 0.1, 0.1, 0.7]), min_size=50, max_size=50
    ),
    chunk=st.sampled_from([3, 4, 64]),
)
def test_site_timeseries__medians_exact_with_ties_signs_and_tile_splits(values, chunk):
    # A 5 x 10 site: in one tile (chunk 64) or split over several (3, 4) whose values
    # are merged per date; ties, signed zeros and even counts all give np.median.
    ds = _dataset(6, chunk=chunk, n_times=1)
    ndvi = ds["ndvi"].values.copy()
    ndvi[0, 10:15, 20:30] = np.array(values, np.float32).reshape(5, 10)
    clear = ds["clear"].values.copy()
    clear[0, 10:15, 20:30] = True
    clear[0, 10, 20] = False  # 49 clear pixels, then 48 below
    ds = ds.assign(ndvi=(ds["ndvi"].dims, ndvi), clear=(ds["clear"].dims, clear))
    ds = ds.chunk({"time": 1, "y": chunk, "x": chunk})
    site = box(200, 500 - 150, 300, 500 - 100)  # rows 10..14, cols 20..29
    for extra_cloud in (False, True):
        if extra_cloud:
            c = ds["clear"].values.copy()
            c[0, 14, 29] = False
            ds = ds.assign(clear=(ds["clear"].dims, c)).chunk({"time": 1, "y": chunk, "x": chunk})
        _, table = _run(ds, [site], chunk=chunk)
        ok = ds["clear"].values[0, 10:15, 20:30]
        expected = np.median(np.array(values, np.float32).reshape(5, 10)[ok])
        assert table.iloc[0].ndvi_median == pytest.approx(expected, abs=1e-7)
        assert table.iloc[0].valid_fraction == pytest.approx(ok.sum() / 50)


def _blob(cx: float, cy: float, radius: float, seed: int):
    """An irregular polygon around (cx, cy): random radii on sorted random angles."""
    rng = np.random.default_rng(seed)
    theta = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 14))))
    r = radius * rng.uniform(0.4, 1.0, theta.size)
    return make_valid(Polygon(np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)])))


@settings(max_examples=40, deadline=None)
@given(
    centres=st.lists(
        st.tuples(st.floats(-80, 780), st.floats(-80, 580), st.floats(15, 260)),
        min_size=1,
        max_size=5,
    ),
    seed=st.integers(0, 10**6),
    chunk=st.sampled_from([7, 32, 128]),
)
def test_site_pixel_index__same_pixels_as_gdal_rasterize(centres, seed, chunk):
    # Irregular sites (some with a hole, some in two parts, some past the grid's edge)
    # take exactly the pixels GDAL burns with its centre rule, in every tile split.
    geoms = []
    for k, (cx, cy, radius) in enumerate(centres):
        geom = _blob(cx, cy, radius, seed + k)
        if k % 3 == 1:
            geom = geom.difference(_blob(cx, cy, radius / 3, seed + 99))
        elif k % 3 == 2:
            geom = geom.union(_blob(cx + 2.5 * radius, cy - radius, radius / 2, seed + 7))
        geoms.append(geom)
    pixels = site_pixel_index([f"S{k}" for k in range(len(geoms))], geoms, GRID, chunk_size=chunk)
    wide = GridSpec(GRID.crs, GRID.transform * Affine.translation(-100, -100), (250, 270))
    for k, geom in enumerate(geoms):
        burnt = ~geometry_mask([geom], out_shape=GRID.shape, transform=GRID.transform)
        beyond = ~geometry_mask([geom], out_shape=wide.shape, transform=wide.transform)
        got = np.zeros(GRID.shape, bool)
        for (i, j), sites in pixels.tiles.items():
            for site, flat in sites:
                if site == k:
                    tile_w = min(chunk, GRID.shape[1] - j * chunk)
                    got[i * chunk + flat // tile_w, j * chunk + flat % tile_w] = True
        np.testing.assert_array_equal(got, burnt)
        assert pixels.n_inside[k] == burnt.sum()
        assert pixels.n_expected[k] == beyond.sum()


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 4),
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    dr=st.integers(0, 3),
    dc=st.integers(0, 3),
    dtype=st.sampled_from([np.uint8, np.uint16, np.bool_, np.float32]),
)
def test_upsample__repeats_coarse_pixels_like_np_repeat(k, rows, cols, dr, dc, dtype):
    dr, dc = dr % k, dc % k
    native = (np.arange(rows * cols).reshape(rows, cols) % 7).astype(dtype)
    shape = (rows * k - dr - int(rows > 1), cols * k - dc)
    assume(shape[0] > 0 and shape[1] > 0)
    want = np.repeat(np.repeat(native, k, axis=0), k, axis=1)[
        dr : dr + shape[0], dc : dc + shape[1]
    ]
    got = upsample(native, (k, dr, dc), shape)
    assert got.dtype == native.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
