"""Property tests: geometry handling, index maths, zonal statistics, catalog order.

Each property is checked over examples Hypothesis draws (and shrinks on failure):
bounds, NaN handling, and invariance to polygon vertex order, to the tiling of the
grid and to the order of catalog items.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.crs import CRS
from shapely.geometry import Polygon

from pipeline.config import SurfaceConfig
from pipeline.errors import InputError
from pipeline.indices import bsi, ndvi, ndwi
from pipeline.inputs import read_sites
from pipeline.inputs.records import MIN_AREA_DEG2
from pipeline.site_pixels import site_pixel_index
from pipeline.sources.base import GridSpec
from pipeline.sources.local import read_catalog
from pipeline.zonal import assemble_timeseries, site_timeseries_tasks
from tests.conftest import uniform_bands, write_tiny_catalog

FAST = settings(max_examples=25, deadline=None)
ZONAL = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
FILES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

# --- geometry handling ------------------------------------------------------------------

LON, LAT = 112.5, 33.7
# Vertices on a 0.0001 degree (about 10 m) lattice, so rings can touch, cross and repeat.
vertex = st.tuples(st.integers(-20, 20), st.integers(-20, 20)).map(
    lambda ij: (LON + ij[0] * 1e-4, LAT + ij[1] * 1e-4)
)
rings = st.lists(vertex, min_size=3, max_size=9)


def _write_site(path: Path, ring: list[tuple[float, float]]) -> Path:
    feature = {
        "type": "Feature",
        "properties": {
            "site_id": "S01",
            "name": "Quarry",
            "county": "Lushan",
            "category": "illegal",
            "status": "closed",
            "target": "forest",
        },
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def _read(path: Path) -> tuple[Any, list] | InputError:
    try:
        sites = read_sites(path)
    except InputError as exc:
        return exc
    return sites.geometry[0], sites.attrs["warnings"]


@FILES
@given(ring=rings)
def test_read_sites__any_ring_gives_a_valid_polygon_or_a_named_error(
    tmp_path: Path, ring: list[tuple[float, float]]
) -> None:
    result = _read(_write_site(tmp_path / "sites.geojson", ring))
    if isinstance(result, InputError):
        assert (result.field, result.record) == ("geometry", "feature 0 (site_id=S01)")
        assert "no area" in result.reason
        return
    geom, warnings = result
    assert geom.is_valid and not geom.is_empty and geom.area > 0
    assert geom.geom_type in ("Polygon", "MultiPolygon")
    raw = Polygon(ring)
    assert bool(warnings) == (not raw.is_valid)  # repaired exactly when it was invalid
    minx, miny, maxx, maxy = geom.bounds
    assert LON - 2e-3 <= minx <= maxx <= LON + 2e-3
    assert LAT - 2e-3 <= miny <= maxy <= LAT + 2e-3


@FILES
@given(ring=rings, shift=st.integers(0, 8), reverse=st.booleans())
def test_read_sites__vertex_order_does_not_change_the_site(
    tmp_path: Path, ring: list[tuple[float, float]], shift: int, reverse: bool
) -> None:
    assume(Polygon(ring).is_valid and Polygon(ring).area >= MIN_AREA_DEG2)
    other = ring[shift % len(ring) :] + ring[: shift % len(ring)]
    if reverse:
        other = other[::-1]
    a = _read(_write_site(tmp_path / "a.geojson", ring))
    b = _read(_write_site(tmp_path / "b.geojson", other))
    assert not isinstance(a, InputError) and not isinstance(b, InputError)
    assert a[0].equals(b[0])
    assert a[0].area == pytest.approx(b[0].area, rel=1e-12)


# --- indices ------------------------------------------------------------------------------

reflectance = arrays(
    np.float32,
    (3, 4),
    elements=st.one_of(
        st.floats(0, 1.5, width=32), st.just(np.float32(0)), st.just(np.float32(np.nan))
    ),
)


def _bands(**values: np.ndarray) -> xr.Dataset:
    return xr.Dataset({k: (("y", "x"), v) for k, v in values.items()})


@FAST
@given(blue=reflectance, green=reflectance, red=reflectance, nir=reflectance, swir=reflectance)
def test_indices__bounded_nan_where_undefined_and_lazy_equals_eager(
    blue: np.ndarray, green: np.ndarray, red: np.ndarray, nir: np.ndarray, swir: np.ndarray
) -> None:
    ds = _bands(blue=blue, green=green, red=red, nir=nir, swir16=swir)
    lazy = ds.chunk({"y": 2, "x": 3})
    cases = [
        (ndvi, nir, red),
        (ndwi, green, nir),
        (bsi, swir.astype(np.float32) + red, nir.astype(np.float32) + blue),
    ]
    for index, a, b in cases:
        eager = index(ds).values
        assert eager.dtype == np.float32
        with np.errstate(invalid="ignore"):
            undefined = np.isnan(a) | np.isnan(b) | (a + b == 0)
        assert (np.isnan(eager) == undefined).all()
        finite = eager[~undefined]
        assert ((finite >= -1) & (finite <= 1)).all()
        np.testing.assert_array_equal(index(lazy).values, eager)


# --- zonal statistics ---------------------------------------------------------------------

GRID = GridSpec(CRS.from_epsg(32649), Affine(10, 0, 0, 0, -10, 300), (30, 40))
cells = st.tuples(st.integers(-5, 44), st.integers(-5, 34))  # grid cells, some outside


def _cube(seed: int, cloud: float, chunk: int, n_times: int = 2) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (n_times, *GRID.shape)
    clear = rng.random(shape) >= cloud
    ndvi_ = rng.uniform(-0.3, 0.9, shape).astype(np.float32)
    ds = xr.Dataset(
        {
            "ndvi": (("time", "y", "x"), np.where(clear, ndvi_, np.nan).astype(np.float32)),
            "bsi": (("time", "y", "x"), rng.uniform(-0.5, 0.5, shape).astype(np.float32)),
            "ndwi": (("time", "y", "x"), rng.uniform(-0.7, 0.6, shape).astype(np.float32)),
            "clear": (("time", "y", "x"), clear),
        },
        coords={
            "time": np.datetime64("2023-05-01", "ns") + np.arange(n_times) * np.timedelta64(10, "D")
        },
    )
    return ds.chunk({"time": 1, "y": chunk, "x": chunk})


def _timeseries(ds: xr.Dataset, polygons: list[Polygon], chunk: int):
    ids = [f"S{i}" for i in range(len(polygons))]
    pixels = site_pixel_index(ids, polygons, GRID, chunk_size=chunk)
    tasks = site_timeseries_tasks(ds, pixels, SurfaceConfig())
    (results,) = dask.compute([task for _, task in tasks])
    return assemble_timeseries(
        list(zip([t for t, _ in tasks], results, strict=True)), pixels, ds["time"].values
    )


def _polygon(corners: list[tuple[int, int]]) -> Polygon:
    return Polygon([(10.0 * c + 3.0, 300.0 - 10.0 * r - 3.0) for c, r in corners])


@ZONAL
@given(
    corners=st.lists(cells, min_size=3, max_size=6),
    shift=st.integers(0, 5),
    seed=st.integers(0, 10),
    cloud=st.sampled_from([0.0, 0.5, 1.0]),
    chunk=st.sampled_from([8, 64]),
)
def test_site_timeseries__bounded_nan_when_unseen_and_vertex_order_invariant(
    corners: list[tuple[int, int]], shift: int, seed: int, cloud: float, chunk: int
) -> None:
    polygon = _polygon(corners)
    assume(polygon.is_valid and polygon.area > 0)
    k = shift % len(corners)
    turned = _polygon((corners[k:] + corners[:k])[::-1])
    ds = _cube(seed, cloud, chunk)

    table = _timeseries(ds, [polygon, turned], chunk)

    a = table[table.site_id == "S0"].drop(columns="site_id").reset_index(drop=True)
    b = table[table.site_id == "S1"].drop(columns="site_id").reset_index(drop=True)
    assert a.equals(b)  # same pixels, same figures, whatever the vertex order
    assert ((a.valid_fraction >= 0) & (a.valid_fraction <= 1)).all()
    unseen = a.valid_fraction == 0
    stats = ["ndvi_mean", "ndvi_median", "bsi_mean", "vegetated_fraction", "bare_fraction"]
    assert a.loc[unseen, stats].isna().all().all()
    assert a.loc[~unseen, stats].notna().all().all()
    seen = a[~unseen]
    assert ((seen.ndvi_mean >= -0.3 - 1e-6) & (seen.ndvi_mean <= 0.9 + 1e-6)).all()
    covered = seen.vegetated_fraction + seen.bare_fraction + seen.water_fraction
    assert (covered <= 1 + 1e-9).all()
    if cloud == 1.0:
        assert unseen.all()


@ZONAL
@given(corners=st.lists(cells, min_size=3, max_size=6), seed=st.integers(0, 10))
def test_site_timeseries__same_figures_for_any_tile_size(
    corners: list[tuple[int, int]], seed: int
) -> None:
    polygon = _polygon(corners)
    assume(polygon.is_valid and polygon.area > 0)
    tables = [_timeseries(_cube(seed, 0.3, chunk), [polygon], chunk) for chunk in (8, 40)]
    cols = ["n_pixels", "valid_fraction", "ndvi_median", "vegetated_fraction", "bare_fraction"]
    assert tables[0][cols].equals(tables[1][cols])
    for col in ("ndvi_mean", "bsi_mean", "ndwi_mean"):
        np.testing.assert_allclose(tables[0][col], tables[1][col], rtol=1e-6)


# --- catalog item order -------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    days = [date(2022, 5, 1), date(2022, 5, 11), date(2022, 5, 21), date(2022, 6, 1)]
    return write_tiny_catalog(tmp_path_factory.mktemp("order"), uniform_bands(4, 8, 8), days)


@FILES
@given(order=st.permutations(range(4)), name=st.integers(0, 10**6))
def test_read_catalog__item_order_does_not_matter(
    catalog: Path, order: list[int], name: int
) -> None:
    doc = json.loads(catalog.read_text())
    items = [link for link in doc["links"] if link["rel"] == "item"]
    others = [link for link in doc["links"] if link["rel"] != "item"]
    shuffled = catalog.with_name(f"shuffled-{name}.json")
    shuffled.write_text(json.dumps({**doc, "links": others + [items[i] for i in order]}))
    try:
        assert read_catalog(shuffled) == read_catalog(catalog)
    finally:
        shuffled.unlink()
