"""The synthetic scenario generator: determinism, STAC layout, physics and truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import shape as to_shape

from pipeline import scenes, schema
from pipeline.scenes import standard
from pipeline.scenes.atmosphere import render
from pipeline.scenes.cast import Plan, restoration_trajectory
from pipeline.scenes.world import build_world

SMALL = {"shape": (120, 160), "start": date(2021, 6, 1), "end": date(2022, 11, 30)}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> scenes.ScenarioPaths:
    return scenes.generate_scenario(tmp_path_factory.mktemp("small"), seed=7, **SMALL)


@pytest.fixture(scope="module")
def items(small) -> list[pystac.Item]:
    cat = pystac.Catalog.from_file(str(small.catalog))
    return sorted(cat.get_items(recursive=True), key=lambda it: it.datetime)


@pytest.fixture(scope="module")
def stack(items) -> dict:
    """Decoded reflectance (t, y, x) of the 10 m bands and SCL upsampled to 10 m."""
    out: dict = {"dates": [it.datetime.date() for it in items]}
    for band in ("blue", "green", "red", "nir"):
        arrs = []
        for it in items:
            rb = it.assets[band].extra_fields["raster:bands"][0]
            with rasterio.open(it.assets[band].get_absolute_href()) as src:
                arrs.append(src.read(1) * rb["scale"] + rb["offset"])
        out[band] = np.stack(arrs)
    scl = []
    for it in items:
        with rasterio.open(it.assets["scl"].get_absolute_href()) as src:
            scl.append(np.kron(src.read(1), np.ones((2, 2), np.uint8)))
    out["scl"] = np.stack(scl)
    out["ndvi"] = (out["nir"] - out["red"]) / (out["nir"] + out["red"])
    return out


def _pixels(geom_wgs84: dict, shape: tuple[int, int]) -> np.ndarray:
    to_utm = Transformer.from_crs(4326, scenes.EPSG, always_xy=True)
    g = shapely.transform(to_shape(geom_wgs84), to_utm.transform, interleaved=False)
    tr = rasterio.transform.from_origin(*scenes.ORIGIN, scenes.PIXEL, scenes.PIXEL)
    return rasterize([(g, 1)], out_shape=shape, transform=tr) > 0


def _clear(stack: dict, mask: np.ndarray) -> np.ndarray:
    """Dates on which every pixel of ``mask`` is labelled clear (vegetation/bare)."""
    return np.array([np.isin(s[mask], (4, 5)).all() for s in stack["scl"]])


def test_generate_scenario__same_seed_same_bytes(tmp_path, small) -> None:
    again = scenes.generate_scenario(tmp_path / "again", seed=7, **SMALL)
    assert again.truth.read_bytes() == small.truth.read_bytes()
    assert again.sites.read_bytes() == small.sites.read_bytes()
    a = sorted((small.root / "catalog" / "items").rglob("*.tif"))
    b = sorted((again.root / "catalog" / "items").rglob("*.tif"))
    assert [p.relative_to(small.root) for p in a] == [p.relative_to(again.root) for p in b]
    for pa, pb in zip(a[::7], b[::7], strict=True):
        with rasterio.open(pa) as s1, rasterio.open(pb) as s2:
            np.testing.assert_array_equal(s1.read(), s2.read())


def test_build_world__different_seed_different_layout() -> None:
    w1 = build_world(7, SMALL["shape"], SMALL["start"], SMALL["end"])
    w2 = build_world(8, SMALL["shape"], SMALL["start"], SMALL["end"])
    c1 = [s["geometry"].centroid.coords[0] for s in w1.sites]
    c2 = [s["geometry"].centroid.coords[0] for s in w2.sites]
    assert c1 != c2
    assert not np.array_equal(w1.landcover, w2.landcover)
    assert [s["target"] for s in w1.sites] != [s["target"] for s in w2.sites] or len(c1) != len(c2)


def test_items__stac_properties_and_baseline_offset(items) -> None:
    assert len(items) >= 50
    for it in items:
        raw = json.loads(Path(it.get_self_href()).read_text())
        assert raw["properties"]["proj:epsg"] == 32649
        assert raw["properties"]["datetime"].endswith("T03:00:00Z")
        assert all(a["href"] == f"./{k}.tif" for k, a in raw["assets"].items())
        assert 0 <= it.properties["eo:cloud_cover"] <= 100
        assert set(it.assets) == {*schema.REFLECTANCE_BANDS, schema.SCL}
        red = it.assets["red"].extra_fields["raster:bands"][0]
        scl = it.assets["scl"].extra_fields["raster:bands"][0]
        assert red["scale"] == 0.0001 and red["nodata"] == 0
        assert scl["data_type"] == "uint8" and "offset" not in scl
        after = it.datetime.date() >= date(2022, 1, 25)
        assert red["offset"] == (-0.1 if after else 0.0)
        assert it.properties["s2:processing_baseline"] == ("04.00" if after else "03.01")
    assert any(it.datetime.date() < date(2022, 1, 25) for it in items)
    assert any(it.datetime.date() >= date(2022, 1, 25) for it in items)


def test_items__10m_and_20m_asset_shapes(items) -> None:
    it = items[0]
    for name, want in (("red", (120, 160)), ("swir16", (60, 80)), ("scl", (60, 80))):
        with rasterio.open(it.assets[name].get_absolute_href()) as src:
            assert src.shape == want
            assert list(it.assets[name].extra_fields["proj:shape"]) == list(want)
            assert src.crs.to_epsg() == 32649
            assert src.transform.a == (10 if want == (120, 160) else 20)
            assert src.transform.c == scenes.ORIGIN[0] and src.transform.f == scenes.ORIGIN[1]


def test_surface__forest_summer_ndvi_above_winter(small, stack) -> None:
    with rasterio.open(small.root / "landcover.tif") as src:
        forest = src.read(1) == scenes.LANDCOVER_CODES["forest"]
    months = np.array([d.month for d in stack["dates"]])
    clear = stack["scl"] == 4
    ndvi = np.where(clear | (stack["scl"] == 5), stack["ndvi"], np.nan)[:, forest]
    summer = np.nanmedian(ndvi[np.isin(months, (7, 8))])
    winter = np.nanmedian(ndvi[np.isin(months, (12, 1, 2))])
    assert summer > 0.65
    assert winter < 0.45
    assert summer - winter > 0.3


def test_dig__bare_after_start_not_before(small, stack) -> None:
    truth = json.loads(small.truth.read_text())
    dig = max(truth["digs"], key=lambda d: d["pixels"])
    m = _pixels(dig["geometry"], SMALL["shape"])
    start = date.fromisoformat(dig["start"])
    clear = _clear(stack, m)
    dates = np.array(stack["dates"])
    done = dates >= start + np.timedelta64(dig["growth_days"] + 1, "D")
    red = np.array([np.median(r[m]) for r in stack["red"]])
    ndvi = np.array([np.median(v[m]) for v in stack["ndvi"]])
    before, after = clear & (dates < start), clear & done
    assert before.sum() >= 3 and after.sum() >= 2
    assert (red[after] > 0.15).all() and (ndvi[after] < 0.2).all()
    assert (red[before] < 0.15).mean() > 0.8


def test_netting__low_ndvi_without_seasonal_cycle(small, stack) -> None:
    sites = json.loads(small.sites.read_text())["features"]
    truth = {s["site_id"]: s for s in json.loads(small.truth.read_text())["sites"]}
    net = next(f for f in sites if truth[f["properties"]["site_id"]]["netting"])
    assert truth[net["properties"]["site_id"]]["recovery_class"] == "unrestored"
    m = _pixels(net["geometry"], SMALL["shape"])
    clear = _clear(stack, m)
    series = np.array([np.median(v[m]) for v in stack["ndvi"]])[clear]
    assert 0.2 < np.median(series) < 0.4
    assert np.percentile(series, 90) - np.percentile(series, 10) < 0.1
    assert (stack["green"][clear][:, m] > stack["red"][clear][:, m]).mean() > 0.9


def test_truth__default_scenario_has_every_violation_and_class() -> None:
    w = build_world(scenes.DEMO_SEED, (400, 480), date(2021, 3, 1), date(2024, 10, 31))
    assert {d["violation"] for d in w.truth["digs"]} == set(schema.VIOLATIONS)
    classes = [s["recovery_class"] for s in w.truth["sites"]]
    assert set(classes) == set(schema.RECOVERY_CLASSES)
    assert {s["category"] for s in w.sites} == set(schema.CATEGORIES)
    assert {s["target"] for s in w.sites} == set(schema.TARGETS)
    assert len({s["county"] for s in w.sites}) == 2
    assert 20 <= len(w.sites) <= 26
    assert {d["landcover_before"] for d in w.truth["digs"] if d["violation"] == "unregistered"} >= {
        "forest",
        "farmland",
    }


def test_render__scl_misses_cloud_edges(small) -> None:
    w = build_world(7, SMALL["shape"], SMALL["start"], SMALL["end"])
    rng = np.random.default_rng(0)
    missed = 0
    for k in range(6):
        sc = render(w, date(2022, 7, 10 + k), rng, cloud_scale=1.5)
        ring = (sc.alpha > 0.1) & (sc.alpha < 0.6)
        missed += int((ring & np.isin(sc.scl, (4, 5, 6))).sum())
    assert missed > 0


def test_ensure_demo_data__no_regeneration_when_complete(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(out_dir, **kw):
        calls.append(out_dir)
        (Path(out_dir) / scenes.MARKER).write_text(
            json.dumps({"generator_version": scenes.GENERATOR_VERSION, "seed": scenes.DEMO_SEED})
        )
        return scenes.ScenarioPaths.under(out_dir)

    monkeypatch.setattr(standard, "generate_scenario", fake)
    p1 = scenes.ensure_demo_data(tmp_path)
    p2 = scenes.ensure_demo_data(tmp_path)
    assert len(calls) == 1 and p1 == p2
    assert p1.catalog == tmp_path / "catalog" / "catalog.json"
    (tmp_path / scenes.MARKER).unlink()  # half-written folder: no marker
    scenes.ensure_demo_data(tmp_path)
    assert len(calls) == 2


def test_scene_family__standard_is_the_demo_generator_and_unknown_names_fail() -> None:
    assert scenes.scene_family("standard") is standard.generate_scenario
    assert scenes.FAMILIES["standard"] is standard.generate_scenario
    with pytest.raises(ValueError, match="standard"):
        scenes.scene_family("no_such_family")


def test_truth__sites_dug_where_digging_is_forbidden_are_disturbed() -> None:
    w = build_world(scenes.DEMO_SEED, (400, 480), date(2021, 3, 1), date(2024, 10, 31))
    truth = {s["site_id"]: s["recovery_class"] for s in w.truth["sites"]}
    dug = [
        d["site_id"]
        for d in w.truth["digs"]
        if d["violation"] in ("suspended_site", "illegal_site")
    ]
    assert len(dug) == 2
    assert [truth[s] for s in dug] == ["disturbed", "disturbed"]


def test_restoration_trajectory__early_die_back_is_dead_a_year_before_the_end() -> None:
    rng = np.random.default_rng(3)
    plan = Plan("orphaned", "restoring", "regressed", "forest", "restore", (1, 5),
                early_die_back=True)  # fmt: skip
    for days in (1100, 1300, 1500):
        r0, (knots, cover) = restoration_trajectory(rng, plan, days)
        assert cover == (0, 0.8, 0.8, 0.08)
        assert knots[0] == r0 and knots[2] - knots[1] >= 120  # green for a season
        assert knots[3] <= days - 365  # dead for at least the last year
