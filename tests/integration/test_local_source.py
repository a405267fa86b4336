"""Reading a real static STAC catalog of COGs into the lazy cube."""

from __future__ import annotations

import json
from datetime import date

import dask
import numpy as np
import pystac
import pytest
from dask.callbacks import Callback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from shapely.geometry import box

from pipeline.config import MaskingConfig, SurfaceConfig
from pipeline.errors import InputError
from pipeline.indices import add_indices
from pipeline.masking import mask_clouds
from pipeline.site_pixels import site_pixel_index
from pipeline.sources import local, stac_items
from pipeline.sources.base import Scene
from pipeline.sources.grid import analysis_grid
from pipeline.sources.local import load_cube, read_catalog
from pipeline.zonal import assemble_timeseries, site_timeseries_tasks
from tests.conftest import ORIGIN as ORIGIN_TEST
from tests.conftest import write_tiny_catalog


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


def test_read_catalog__items_parsed_once_read_as_pystac_reads_them(tiny_catalog, tmp_path):
    # The tiny catalog moved under a child catalog, one asset behind a "../" href and
    # one item without proj:epsg (its CRS then comes from the file's header).
    path, _, _ = tiny_catalog
    root = path.parent
    catalog = json.loads(path.read_text())
    item_links = [link for link in catalog["links"] if link["rel"] == "item"]
    child = {**catalog, "id": "child", "links": [
        {"rel": "root", "href": "../catalog.json"}, *(
            {**link, "href": "." + link["href"]} for link in item_links)]}  # fmt: skip
    (root / "sub").mkdir()
    (root / "sub" / "catalog.json").write_text(json.dumps(child))
    catalog["links"] = [
        *(link for link in catalog["links"] if link["rel"] != "item"),
        {"rel": "child", "href": "./sub/catalog.json"},
    ]
    path.write_text(json.dumps(catalog))
    first = root / item_links[0]["href"]
    item = json.loads(first.read_text())
    item["assets"]["red"]["href"] = f"../{first.parent.name}/red.tif"
    del item["properties"]["proj:epsg"]
    first.write_text(json.dumps(item))

    items = list(pystac.read_file(str(path)).get_items(recursive=True))
    parsed = list(stac_items.catalog_items(pystac.read_file(str(path))))
    assert [i.id for i in parsed] == [i.id for i in items]
    for ours, theirs in zip(parsed, items, strict=True):
        assert ours.datetime == theirs.datetime
        assert ours.get_self_href() == theirs.get_self_href()
        assert ours.collection_id == theirs.collection_id
        assert local._item_epsg(ours) == local._item_epsg(theirs)
        for key, asset in theirs.assets.items():
            assert ours.assets[key].get_absolute_href() == asset.get_absolute_href()
            assert (
                ours.assets[key].extra_fields["raster:bands"] == asset.extra_fields["raster:bands"]
            )
    scenes = read_catalog(path)
    assert len(scenes) == 2 and scenes[0].epsg is None and scenes[1].epsg == 32649
    assert scenes[0].bounds == scenes[1].bounds  # from proj:transform, and from the header


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


# --- tile reads: one read per (date, tile) feeds the cube, the mask and per-site figures ---

SHAPE = (36, 50)  # 10 m rows, cols; 20 m assets are half that
DATES = [date(2021, 12, 1), date(2022, 1, 30), date(2022, 3, 1)]  # across the offset change
INVALID = np.array([0, 1, 3, 8, 9, 10, 11])


@pytest.fixture(scope="module")
def random_catalog(tmp_path_factory):
    """Random reflectance with no-data holes and blocky SCL clouds crossing tile edges."""
    rng = np.random.default_rng(11)
    t = len(DATES)
    values = {b: rng.uniform(0.02, 0.5, (t, *SHAPE)) for b in ("red", "blue", "green", "nir")}
    values["red"][1, 5:9, 30:41] = np.nan
    values["swir16"] = rng.uniform(0.05, 0.5, (t, SHAPE[0] // 2, SHAPE[1] // 2))
    values["scl"] = rng.choice(
        [4, 5, 6, 9, 3, 8], (t, SHAPE[0] // 2, SHAPE[1] // 2), p=[0.5, 0.25, 0.13, 0.04, 0.04, 0.04]
    )
    root = tmp_path_factory.mktemp("random-catalog")
    write_tiny_catalog(root, values, DATES)
    return root / "catalog.json", values


def _reflectance(v: np.ndarray, day: date) -> np.ndarray:
    """What the catalog stores, read back: DN * 1e-4 + offset, NaN for no data."""
    offset = -0.1 if day >= date(2022, 1, 25) else 0.0
    dn = np.where(np.isnan(v), 0, np.clip(np.round((v - offset) * 10000), 1, 65535))
    out = dn.astype(np.float32) * np.float32(1e-4) + np.float32(offset)
    return np.where(dn == 0, np.nan, out).astype(np.float64)


def _reference(values: dict, buffer: int) -> dict[str, np.ndarray]:
    """Clear mask and indices for the whole scene, straight from the written arrays."""
    up = lambda a: np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)  # noqa: E731
    refl = {
        b: np.stack(
            [
                _reflectance(v, d)
                for v, d in zip(up(values[b]) if b == "swir16" else values[b], DATES, strict=True)
            ]
        )
        for b in ("red", "blue", "green", "nir", "swir16")
    }
    invalid = np.isin(up(values["scl"]), INVALID)
    if buffer:
        invalid = np.stack(
            [ndimage.binary_dilation(m, np.ones((3, 3), bool), iterations=buffer) for m in invalid]
        )
    clear = ~invalid & np.logical_and.reduce([np.isfinite(v) for v in refl.values()])
    r, b, g, n, s = (refl[k] for k in ("red", "blue", "green", "nir", "swir16"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "clear": clear,
            "ndvi": (n - r) / (n + r),
            "bsi": ((s + r) - (n + b)) / ((s + r) + (n + b)),
            "ndwi": (g - n) / (g + n),
        }


def _site_figures(ref: dict, rows: slice, cols: slice, t: int) -> dict[str, float]:
    ok = ref["clear"][t, rows, cols].ravel()
    nd = ref["ndvi"][t, rows, cols].ravel()[ok]
    bs = ref["bsi"][t, rows, cols].ravel()[ok]
    nw = ref["ndwi"][t, rows, cols].ravel()[ok]
    water = nw >= 0.1
    return {
        "n_clear": ok.sum(),
        "ndvi_mean": nd.mean() if nd.size else np.nan,
        "ndvi_median": np.median(nd) if nd.size else np.nan,
        "bsi_mean": bs.mean() if bs.size else np.nan,
        "bsi_median": np.median(bs) if bs.size else np.nan,
        "ndwi_mean": nw.mean() if nw.size else np.nan,
        "vegetated_fraction": ((nd >= 0.4) & ~water).mean() if nd.size else np.nan,
        "bare_fraction": ((nd <= 0.2) & (bs >= 0.0) & ~water).mean() if nd.size else np.nan,
    }


def _timeseries(catalog, boxes, chunk: int, buffer: int, halo: int):
    scenes = read_catalog(catalog)
    grid = analysis_grid(scenes)
    cube = load_cube(scenes, grid, chunk_size=chunk, halo=halo)
    ds = add_indices(mask_clouds(cube, MaskingConfig(buffer_pixels=buffer)))
    left, top = grid.transform.c, grid.transform.f
    geoms = [
        box(left + c0 * 10, top - r1 * 10, left + c1 * 10, top - r0 * 10)
        for r0, r1, c0, c1 in boxes
    ]
    pixels = site_pixel_index([f"S{k}" for k in range(len(boxes))], geoms, grid, chunk_size=chunk)
    tasks = site_timeseries_tasks(ds, pixels, SurfaceConfig())
    (results,) = dask.compute([task for _, task in tasks])
    table = assemble_timeseries(
        list(zip([t for t, _ in tasks], results, strict=True)), pixels, ds["time"].values
    )
    return ds, pixels, table


boxes_st = st.lists(
    st.tuples(st.integers(-5, 34), st.integers(1, 20), st.integers(-5, 48), st.integers(1, 25)).map(
        lambda b: (b[0], b[0] + b[1], b[2], b[2] + b[3])
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(boxes=boxes_st, chunk=st.sampled_from([7, 16, 25, 64]), buffer=st.sampled_from([0, 1, 2]))
def test_site_timeseries__tile_reads_match_a_numpy_reference(random_catalog, boxes, chunk, buffer):
    # Boxes overlap each other, cross tile edges and stick out of the imagery.
    catalog, values = random_catalog
    ds, pixels, table = _timeseries(catalog, boxes, chunk, buffer, halo=2)
    assert "minewatch:tile_reads" in ds.attrs  # the tile-read path, not the block path
    ref = _reference(values, buffer)
    for k, (r0, r1, c0, c1) in enumerate(boxes):
        rows = slice(max(r0, 0), max(min(r1, SHAPE[0]), r0, 0))
        cols = slice(max(c0, 0), max(min(c1, SHAPE[1]), c0, 0))
        n_in = max(rows.stop - rows.start, 0) * max(cols.stop - cols.start, 0)
        assert pixels.n_expected[k] == (r1 - r0) * (c1 - c0)
        assert pixels.n_inside[k] == n_in
        for t in range(len(DATES)):
            row = table[table.site_id == f"S{k}"].iloc[t]
            want = _site_figures(ref, rows, cols, t)
            assert row.n_pixels == n_in
            assert row.valid_fraction == pytest.approx(want.pop("n_clear") / max(n_in, 1))
            for col, expected in want.items():
                assert row[col] == pytest.approx(expected, abs=2e-6, nan_ok=True), col


@pytest.mark.parametrize(("chunk", "buffer"), [(7, 1), (16, 2), (64, 0)])
def test_mask_clouds__tile_reads_and_overlap_path_agree(random_catalog, chunk, buffer):
    catalog, values = random_catalog
    scenes = read_catalog(catalog)
    cube = load_cube(scenes, analysis_grid(scenes), chunk_size=chunk, halo=2)
    fast = mask_clouds(cube, MaskingConfig(buffer_pixels=buffer))["clear"].values
    plain = cube.copy()
    plain.attrs = {}  # no tile reads: the dask overlap path
    slow = mask_clouds(plain, MaskingConfig(buffer_pixels=buffer))["clear"].values
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, _reference(values, buffer)["clear"])


def test_mask_clouds__halo_smaller_than_buffer_falls_back_exactly(random_catalog):
    catalog, values = random_catalog
    scenes = read_catalog(catalog)
    cube = load_cube(scenes, analysis_grid(scenes), chunk_size=16, halo=0)
    _, _, table = _timeseries(catalog, [(10, 30, 10, 40)], chunk=16, buffer=2, halo=0)
    clear = mask_clouds(cube, MaskingConfig(buffer_pixels=2))["clear"].values
    np.testing.assert_array_equal(clear, _reference(values, 2)["clear"])
    ref = _reference(values, 2)
    for t in range(len(DATES)):
        want = _site_figures(ref, slice(10, 30), slice(10, 40), t)
        assert want["n_clear"] > 0
        assert table.iloc[t].valid_fraction == pytest.approx(want["n_clear"] / 600)
        assert table.iloc[t].ndvi_median == pytest.approx(
            want["ndvi_median"], abs=2e-6, nan_ok=True
        )


def test_site_timeseries__each_tile_is_read_once_for_statistics_and_detection(random_catalog):
    catalog, _ = random_catalog
    scenes = read_catalog(catalog)
    grid = analysis_grid(scenes)
    cube = load_cube(scenes, grid, chunk_size=16)
    ds = add_indices(mask_clouds(cube, MaskingConfig()))
    pixels = site_pixel_index(["A"], [box(*grid.bounds)], grid, chunk_size=16)
    tasks = site_timeseries_tasks(ds, pixels, SurfaceConfig())
    reads = []

    class CountReads(Callback):
        def _pretask(self, key, dsk, state):
            if isinstance(key, tuple) and str(key[0]).startswith("read-tile"):
                reads.append(key)

    with CountReads():
        dask.compute(
            [t for _, t in tasks],
            ds["ndvi"],
            ds["bsi"],
            ds["red"],
            ds["clear"],
            scheduler="threads",
            optimize_graph=False,
        )
    n_tiles = 3 * 4  # 36 x 50 px in 16 px tiles
    assert len(reads) == len(set(reads)) == len(scenes) * n_tiles


def test_load_cube__grid_beyond_the_assets_is_no_data(random_catalog):
    catalog, values = random_catalog
    scenes = read_catalog(catalog)
    inner = analysis_grid(scenes)
    left, bottom, right, top = inner.bounds
    grid = analysis_grid(scenes, bounds=(left - 30, bottom, right + 50, top + 20))
    cube = load_cube(scenes, grid, chunk_size=16)
    red = cube["red"].values
    assert red.shape == (3, SHAPE[0] + 2, SHAPE[1] + 8)
    assert np.isnan(red[:, :2]).all() and np.isnan(red[:, :, :3]).all()
    assert np.isnan(red[:, :, -5:]).all()
    np.testing.assert_allclose(
        red[0, 2:, 3:-5], _reflectance(values["red"][0], DATES[0]), atol=1e-6
    )
    clear = mask_clouds(cube, MaskingConfig())["clear"].values
    assert not clear[:, :2].any() and not clear[:, :, -5:].any()


@pytest.mark.parametrize("east_scl_m", [20, 10])
def test_load_cube__two_items_of_a_date_mosaic_first_with_data_wins(tmp_path, east_scl_m):
    # Two overlapping items of one date (neighbouring tiles of the grid of tiles): the
    # west item wins where both have data, the east one fills the west's holes and the
    # rest. SCL of both at 20 m is mosaicked at 20 m; an east SCL at 10 m puts both on
    # the 10 m grid first. The cloud mask is grown across the seam either way.
    rng = np.random.default_rng(5)
    day = [date(2023, 6, 1)]
    shape = (20, 24)  # 10 m rows, cols of each item; the east item starts 20 columns on
    west = {b: rng.uniform(0.02, 0.5, (1, *shape)) for b in ("red", "nir")}
    west["red"][0, 3:7, 18:24] = np.nan  # a hole in the overlap: the east item fills it
    west["scl"] = rng.choice([4, 5, 9], (1, 10, 12), p=[0.6, 0.3, 0.1])
    east = {b: rng.uniform(0.02, 0.5, (1, *shape)) for b in ("red", "nir")}
    east["scl"] = (
        rng.choice([4, 5, 9], (1, 10, 12), p=[0.6, 0.3, 0.1])
        if east_scl_m == 20
        else np.repeat(np.repeat(rng.choice([4, 5, 9], (1, 10, 12)), 2, axis=1), 2, axis=2)
    )
    a = read_catalog(write_tiny_catalog(tmp_path / "w", west, day))[0]
    shifted = (ORIGIN_TEST[0] + 200.0, ORIGIN_TEST[1])
    b = read_catalog(write_tiny_catalog(tmp_path / "e", east, day, origin=shifted))[0]
    both = Scene(
        a.date,
        ("w", "e"),
        (*a.assets, *b.assets),
        a.epsg,
        None,
        (a.bounds[0], a.bounds[1], b.bounds[2], b.bounds[3]),
    )
    grid = analysis_grid([both])
    assert grid.shape == (20, 44)
    cube = load_cube([both], grid, chunk_size=16, halo=1)
    up = lambda v: np.repeat(np.repeat(v, 2, axis=0), 2, axis=1)  # noqa: E731
    for band in ("red", "nir"):
        want = np.full(grid.shape, np.nan)
        want[:, 20:] = _reflectance(east[band][0], day[0])
        w = _reflectance(west[band][0], day[0])
        want[:, :24] = np.where(np.isnan(w), want[:, :24], w)
        np.testing.assert_allclose(cube[band].values[0], want, atol=1e-6)
    scl = np.zeros(grid.shape, np.uint8)
    scl[:, 20:] = up(east["scl"][0]) if east_scl_m == 20 else east["scl"][0]
    scl[:, :24] = up(west["scl"][0])
    np.testing.assert_array_equal(cube["scl"].values[0], scl)
    clear = mask_clouds(cube, MaskingConfig(invalid_scl=(9,), buffer_pixels=1))["clear"]
    invalid = ndimage.binary_dilation(scl == 9, structure=np.ones((3, 3), bool))
    want_clear = ~invalid & np.isfinite(cube["red"].values[0]) & np.isfinite(cube["nir"].values[0])
    np.testing.assert_array_equal(clear.values[0], want_clear)


@pytest.mark.parametrize(
    "crs",
    [
        "EPSG:4326",
        "EPSG:32650",
        "EPSG:4490",
        "EPSG:4547",
        "EPSG:2383",
        "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=krass +units=m",
    ],
)
def test_open_asset__the_crs_read_from_the_geokeys_is_the_crs_written(tmp_path, crs):
    # Assets open with GTIFF_SRS_SOURCE=GEOKEYS (reads.OPEN_CONFIG): the CRS comes from
    # the GeoTIFF's keys without GDAL's second build from the EPSG database.
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from pipeline.sources.reads import open_asset

    written = CRS.from_user_input(crs)
    path = tmp_path / "a.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint16"}
    with rasterio.open(path, "w", crs=written, transform=from_origin(0, 0, 10, 10), **profile) as d:
        d.write(np.zeros((1, 4, 4), "uint16"))
    with open_asset(str(path)) as src:
        assert src.crs == written
        assert src.crs.to_epsg() == written.to_epsg()


@pytest.mark.parametrize("shift", [0, 30])
def test_read_window__inside_the_file_reads_as_the_boundless_read(tmp_path, shift):
    # The offset check reads NIR and SCL over the red window's bounds: a window inside
    # the file is read directly (a boundless read goes through a VRT), one reaching
    # past the edge (shift) boundless, and both give what the boundless read gives.
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.windows import from_bounds

    from pipeline.inputs.asset_files import OpenFiles
    from pipeline.inputs.offsets import _read_window
    from pipeline.sources.base import AssetRef

    rng = np.random.default_rng(4)
    scl = rng.integers(0, 12, size=(50, 50)).astype("uint8")  # 20 m pixels
    path = tmp_path / "scl.tif"
    profile = {"driver": "GTiff", "width": 50, "height": 50, "count": 1, "dtype": "uint8"}
    with rasterio.open(
        path, "w", crs="EPSG:32650", transform=from_origin(500000, 4000000, 20, 20), **profile
    ) as d:
        d.write(scl[None])
    x0 = 500000 + 200 + shift * 20
    bounds = (x0, 4000000 - 600, x0 + 400, 4000000 - 200)  # 40 x 40 px at 10 m
    with OpenFiles() as files:
        data, _ = _read_window(AssetRef(href=str(path)), bounds, (40, 40), files)
        src = files.get(str(path))
        expected = src.read(
            1,
            window=from_bounds(*bounds, transform=src.transform),
            out_shape=(40, 40),
            resampling=Resampling.nearest,
            boundless=True,
        )
    np.testing.assert_array_equal(data, expected)
    assert data.shape == (40, 40) and len(np.unique(data)) > 5
    if shift == 0:
        np.testing.assert_array_equal(data, np.repeat(np.repeat(scl[10:30, 10:30], 2, 0), 2, 1))
