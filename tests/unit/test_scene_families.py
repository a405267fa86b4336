"""The scene families: the loess family's physics, clouds and hard cases, and standard's
hard cases behind their option (standard's default bytes are the golden digests' job)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.geometry import shape as to_shape

from pipeline import scenes
from pipeline.scenes import loess
from pipeline.scenes.atmosphere import SMOOTH_BLOBS, render
from pipeline.scenes.hard_cases import CASES
from pipeline.scenes.surface import CROP, World, surface_reflectance
from pipeline.scenes.world import build_world

SMALL = {"shape": (200, 240), "start": date(2022, 3, 1), "end": date(2022, 12, 31)}
TO_UTM = Transformer.from_crs(4326, scenes.EPSG, always_xy=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> scenes.ScenarioPaths:
    return scenes.generate_family("loess", tmp_path_factory.mktemp("loess"), seed=7, **SMALL)


@pytest.fixture(scope="module")
def world() -> World:
    """The world the ``small`` scenario renders (same seed and arguments)."""
    return loess.build_loess_world(7, **SMALL)


@pytest.fixture(scope="module")
def truth(small) -> dict:
    return json.loads(small.truth.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack(small) -> dict:
    """Decoded reflectance (t, y, x) of blue, red, nir and swir16, and SCL, all at 10 m."""
    cat = pystac.Catalog.from_file(str(small.catalog))
    items = sorted(cat.get_items(recursive=True), key=lambda it: it.datetime)
    out: dict = {"dates": [it.datetime.date() for it in items]}
    for band in ("blue", "red", "nir", "swir16", "scl"):
        arrs = []
        for it in items:
            with rasterio.open(it.assets[band].get_absolute_href()) as src:
                a = src.read(1)
            if band != "scl":
                rb = it.assets[band].extra_fields["raster:bands"][0]
                a = a * rb["scale"] + rb["offset"]
            arrs.append(np.kron(a, np.ones((2, 2), a.dtype)) if band in ("swir16", "scl") else a)
        out[band] = np.stack(arrs)
    out["ndvi"] = (out["nir"] - out["red"]) / (out["nir"] + out["red"])
    s, b = out["swir16"] + out["red"], out["nir"] + out["blue"]
    out["bsi"] = (s - b) / (s + b)
    return out


def _dig_pixels(truth: dict) -> dict[str, np.ndarray]:
    """Each dig's pixels: its truth geometry rasterised on the scene's grid."""
    tr = from_origin(*scenes.ORIGIN, scenes.PIXEL, scenes.PIXEL)
    out = {}
    for d in truth["digs"]:
        g = shapely.transform(to_shape(d["geometry"]), TO_UTM.transform, interleaved=False)
        out[d["dig_id"]] = rasterize([(g, 1)], out_shape=SMALL["shape"], transform=tr) > 0
    return out


def test_scene_family__loess_is_registered() -> None:
    assert scenes.scene_family("loess") is loess.generate_scenario
    assert set(scenes.FAMILIES) == {"standard", "loess", "varied"}


def test_loess__truth_holds_one_dig_of_each_hard_case_in_its_window(truth) -> None:
    start, end = date.fromisoformat(truth["start"]), date.fromisoformat(truth["end"])
    by_case = {c: [d for d in truth["digs"] if d["case"] == c] for c in CASES}
    assert all(len(v) == 1 for v in by_case.values()), {c: len(v) for c, v in by_case.items()}
    assert {d["case"] for d in truth["digs"]} == {*CASES, "standard"}
    when = {c: date.fromisoformat(v[0]["start"]) for c, v in by_case.items()}
    first = by_case["first_months"][0]
    assert (when["first_months"] - start).days <= 100
    assert first["material"] == "red_soil" and first["landcover_before"] == "forest"
    assert 12 <= (end - when["end_of_imagery"]).days <= 35
    zone = by_case["loess_zone"][0]
    assert when["loess_zone"].month in (5, 6) and zone["material"] == "loess"
    assert zone["violation"] == "no_mining_zone" and zone["zone_ids"]
    farm = by_case["farmland_dig"][0]
    assert farm["landcover_before"] == "farmland" and farm["material"] == "loess"
    assert farm["violation"] == "unregistered" and not farm["zone_ids"]
    autumn = by_case["red_soil_autumn"][0]
    assert when["red_soil_autumn"].month == 10 and autumn["material"] == "red_soil"
    assert autumn["landcover_before"] == "forest"
    # The usual one dig per violation kind is still there.
    assert {d["violation"] for d in truth["digs"] if d["case"] == "standard"} >= {
        "outside_permit", "within_permit", "suspended_site", "illegal_site", "restored_land",
        "no_mining_zone", "unregistered",
    }  # fmt: skip
    assert {d["material"] for d in truth["digs"]} <= {"red_soil", "loess", "grey_rock",
                                                       "limestone"}  # fmt: skip
    die_back = [s for s in truth["sites"] if "0.8, 0.8, 0.08" in s["notes"]]
    assert 1 <= len(die_back) <= 2
    assert {s["recovery_class"] for s in die_back} == {"regressed"}


def test_loess__farmland_dig_starts_while_its_parcel_lies_bare(truth, world) -> None:
    farm = next(d for d in truth["digs"] if d["case"] == "farmland_dig")
    dig = next(g for g in world.digs if len(g.idx) == farm["pixels"] and g.act_day.min() == (
        date.fromisoformat(farm["start"]) - SMALL["start"]).days)  # fmt: skip
    day = int(dig.act_day.min()) - 1
    when = SMALL["start"] + timedelta(days=day)
    r = surface_reflectance(world, day, when.timetuple().tm_yday)[:, dig.idx]
    assert np.median((r[3] - r[2]) / (r[3] + r[2])) < 0.2  # bare loess, the day before


def test_loess__dig_pixels_have_their_materials_spectra(small, truth, stack) -> None:
    pixels = _dig_pixels(truth)
    dates = np.array(stack["dates"])
    seen = set()
    ranges = {"red_soil": (0.16, 0.22), "loess": (0.12, 0.17)}
    for d in truth["digs"]:
        if d["material"] not in ranges:
            continue
        m = pixels[d["dig_id"]]
        done = date.fromisoformat(d["start"]) + timedelta(days=d["growth_days"] + 1)
        looks = [
            i
            for i in np.flatnonzero(dates >= done)
            if np.isin(stack["scl"][i][m], (4, 5)).all() and stack["scl"][i].mean() > 4.5
        ]
        if not looks:
            continue
        seen.add(d["material"])
        lo, hi = ranges[d["material"]]
        ndvi = float(np.median(stack["ndvi"][looks][:, m]))
        assert lo <= ndvi <= hi, (d["dig_id"], d["material"], ndvi)
        assert np.median(stack["bsi"][looks][:, m]) > 0.05
        assert np.median(stack["red"][looks][:, m]) >= 0.15
    assert seen == {"red_soil", "loess"}


def test_loess__farmland_is_bare_after_each_harvest(world) -> None:
    farm = world.phen_index[CROP]
    med = {}
    for day in range(0, (SMALL["end"] - SMALL["start"]).days, 3):
        when = SMALL["start"] + timedelta(days=day)
        r = surface_reflectance(world, day, when.timetuple().tm_yday)[:, farm]
        med[when] = float(np.median((r[3] - r[2]) / (r[3] + r[2])))

    def lowest(m0: int, m1: int) -> float:
        return min(v for t, v in med.items() if m0 <= t.month <= m1)

    assert lowest(5, 6) < 0.2  # bare loess after the wheat harvest
    assert lowest(9, 10) < 0.2  # and after the maize harvest
    assert max(v for t, v in med.items() if t.month == 4) > 0.6  # wheat
    assert max(v for t, v in med.items() if t.month == 8) > 0.6  # maize
    assert world.crop_shift and all(abs(v) <= 12 for v in world.crop_shift.values())


def test_loess__five_day_passes_with_some_missing(stack) -> None:
    gaps = np.diff([t.toordinal() for t in stack["dates"]])
    assert set(gaps) <= {5, 10, 15, 20} and 5 in set(gaps) and max(gaps) > 5


def _flat_world(shape: tuple[int, int]) -> World:
    n = shape[0] * shape[1]
    grass = np.array([0.09, 0.14, 0.18, 0.26, 0.34, 0.3], np.float32)[:, None]
    grid = (shape, from_origin(*scenes.ORIGIN, 10, 10), date(2022, 1, 1), date(2022, 12, 31))
    surface = (np.repeat(grass, n, 1), np.repeat(grass, n, 1), np.zeros(n, np.int8))
    w = World(*grid, *surface, np.zeros(n, np.float32), np.ones(n, np.float32),
              np.ones(shape, np.uint8))  # fmt: skip
    w.phen_index = {p: np.zeros(0, int) for p in (1, 2, 3)}
    return w


def test_render__loess_clouds_are_cumulus_cells_with_a_wide_missed_ring() -> None:
    world = _flat_world((200, 240))
    stats = {}
    for name, model in (("standard", SMOOTH_BLOBS), ("loess", loess.CUMULUS)):
        cells = ring = cloud = 0
        rows, cols = [], []
        for k in range(8):
            rng = np.random.default_rng([5, k])
            sc = render(world, date(2022, 7, 20 + k), rng, 1.2, model)
            core = np.isin(sc.scl, (8, 9))
            cells += ndimage.label(core)[1]
            cloud += int(core.sum())
            ring += int(((sc.alpha > 0.05) & (sc.alpha < 0.6) & np.isin(sc.scl, (4, 5))).sum())
            shadow = (sc.scl == 3) & ~core
            if shadow.sum() > 50 and core.sum() > 50:
                rows.append(np.argwhere(shadow)[:, 0].mean() - np.argwhere(core)[:, 0].mean())
                cols.append(np.argwhere(shadow)[:, 1].mean() - np.argwhere(core)[:, 1].mean())
        stats[name] = (cells / max(cloud, 1) * 1e4, ring / max(cloud, 1), np.mean(rows),
                       np.mean(cols))  # fmt: skip
    std, lss = stats["standard"], stats["loess"]
    assert lss[0] > 5 * std[0]  # many more separate clouds per area of cloud
    assert lss[1] > 3 * std[1]  # the missed ring covers far more ground
    assert std[2] < 0 and std[3] < 0  # standard shadows fall north-west
    assert lss[2] < 0 and lss[3] > 0  # loess shadows fall north-east


def test_build_world__standard_hard_cases_only_when_asked() -> None:
    args = (7, (200, 240), date(2021, 9, 1), date(2023, 6, 30))
    plain = build_world(*args)
    hard = build_world(*args, hard_cases=True)
    assert all("case" not in d for d in plain.truth["digs"])
    cases = [d["case"] for d in hard.truth["digs"]]
    assert sorted(c for c in cases if c != "standard") == sorted(CASES)
    assert len(hard.truth["digs"]) == len(plain.truth["digs"]) + len(CASES)
    zone = next(d for d in hard.truth["digs"] if d["case"] == "loess_zone")
    assert zone["violation"] == "no_mining_zone" and zone["zone_ids"]
    assert len(hard.truth["sites"]) - len(plain.truth["sites"]) in (1, 2)


def test_varied_family__draws_its_soils_canopies_and_phenology_per_seed():
    from pipeline.scenes.surface import STANDARD
    from pipeline.scenes.varied import varied_physics

    a, draw_a = varied_physics(5100)
    again, draw_again = varied_physics(5100)
    b, _ = varied_physics(5101)
    assert draw_a == draw_again and a.endmembers == again.endmembers
    assert a.endmembers["grass_soil"] != b.endmembers["grass_soil"]
    assert a.endmembers["grass_soil"] != STANDARD.endmembers["grass_soil"]
    for physics in (a, b):
        for cls, (days, cover) in physics.phenology.items():
            assert days[0] == 0 and days[-1] >= 365 and len(days) == len(cover)
            assert 0 <= min(cover) <= max(cover) <= 1
            if cls == CROP:  # fields are bare after each harvest, whatever the draw
                assert min(cover) == pytest.approx(min(STANDARD.phenology[CROP][1]))
        assert all(0 < v <= 0.6 for name in ("farm_soil", "forest_floor")
                   for v in physics.endmembers[name])  # fmt: skip


def test_standard_family__dig_in_an_expired_permit_is_labelled_outside_permit():
    # Evaluation seed 7303 (its dates): licensed quarry S08 digs in its permit P04 on
    # 2023-01-01, the day after the permit expired: digging without a valid permit, as
    # the detection attributes it. Digs within a valid permit stay ``within_permit``.
    world = build_world(7303, (400, 480), date(2020, 10, 1), date(2024, 4, 15), hard_cases=True)
    permits = {p["permit_id"]: p for p in world.permits}
    own = [d for d in world.truth["digs"] if d["permit_id"] in permits]
    for d in own:
        p = permits[d["permit_id"]]
        if d["violation"] == "within_permit":
            assert p["valid_from"] <= d["start"] <= p["valid_to"], d["dig_id"]
    expired = [
        d for d in own
        if d["violation"] == "outside_permit" and d["start"] > permits[d["permit_id"]]["valid_to"]
        and d["geometry"].within(permits[d["permit_id"]]["geometry"].buffer(1))
    ]  # fmt: skip
    assert [(d["site_id"], d["permit_id"], d["start"]) for d in expired] == [
        ("S08", "P04", "2023-01-01")
    ]


def test_standard_family__dig_beside_a_licensed_site_with_no_permit_is_labelled_outside_permit():
    # Evaluation seed 9602 (its dates): D09, dug into a field 77 m from licensed site S03,
    # which has no permit on record. The detection measures digging beyond such a site
    # from its boundary (``outside_permit_buffer_m``, 100 m), and so does the truth. No
    # dig labelled ``unregistered`` lies that close to a licensed site's permit, or to its
    # boundary where it has none.
    world = build_world(9602, (400, 480), date(2021, 2, 1), date(2024, 5, 25), hard_cases=True)
    permits: dict[str, list] = {}
    for p in world.permits:
        permits.setdefault(p["site_id"], []).append(p["geometry"])
    anchors = [
        shapely.union_all(permits.get(s["site_id"], [s["geometry"]]))
        for s in world.sites
        if s["category"] == "licensed"
    ]
    d09 = next(d for d in world.truth["digs"] if d["dig_id"] == "D09")
    assert (d09["violation"], d09["site_id"], d09["permit_id"]) == ("outside_permit", "S03", None)
    for d in world.truth["digs"]:
        if d["violation"] == "unregistered":
            assert min(a.distance(d["geometry"]) for a in anchors) > 100.0, d["dig_id"]
