"""Flags from change layers: mapping unit, dates, ids and violation attribution."""

from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from pipeline.config import DetectionConfig
from pipeline.die_back import RestoringSite, green_lost
from pipeline.excavation import CHANGE_LAYERS
from pipeline.flags import attribute_violations, build_flags
from pipeline.sources.base import GridSpec

L = {n: i for i, n in enumerate(CHANGE_LAYERS)}
GRID = GridSpec(CRS.from_epsg(32649), Affine(10, 0, 0, 0, -10, 1000), (100, 100))
DATES = [date(2022, 1, 1) + timedelta(days=10 * i) for i in range(60)]


def _layers() -> np.ndarray:
    layers = np.zeros((len(CHANGE_LAYERS), *GRID.shape))
    layers[[L["onset"], L["confirm"], L["last"]]] = -1
    layers[L["prior_ndvi"]] = 0.7
    layers[L["has_history"]] = 1
    return layers


def _dig(layers: np.ndarray, rows: slice, cols: slice, onset: int, *, n: int = 8) -> None:
    layers[L["onset"], rows, cols] = onset
    layers[L["confirm"], rows, cols] = onset + 1
    layers[L["last"], rows, cols] = onset + n - 1
    layers[L["n_since"], rows, cols] = n
    layers[L["n_bare"], rows, cols] = n


def _pix_box(r0: int, r1: int, c0: int, c1: int):
    return box(c0 * 10, 1000 - r1 * 10, c1 * 10, 1000 - r0 * 10)


def test_build_flags__mapping_unit_drops_small_blobs():
    layers = _layers()
    _dig(layers, slice(10, 14), slice(10, 14), 20)  # 16 px = 0.16 ha
    _dig(layers, slice(50, 53), slice(50, 53), 20)  # 9 px = 0.09 ha < 0.1 ha
    flags = build_flags(layers, GRID, DATES, DetectionConfig())
    assert len(flags) == 1
    assert flags[0].area_m2 == 1600
    assert flags[0].first_detected == DATES[20]
    assert flags[0].confirmed == DATES[21]
    assert flags[0].last_seen == DATES[27]
    assert flags[0].level == "high"


def _restoring(geometry, start: date, ndvi: np.ndarray) -> RestoringSite:
    days = np.array(DATES, dtype="datetime64[D]")
    return RestoringSite(geometry, start, days, ndvi.astype(float))


def test_build_flags__gradual_change_where_the_site_lost_its_green_is_a_die_back_not_a_dig():
    # Site A (restored from date 10) is green (NDVI 0.7) until date 20 and bare soil
    # (0.15) after: its planting died back. Its late changes (bare ground that went on
    # from a harvest into the green season), 16 px begun on date 20, make no flag. On
    # the same site, a late change begun before its restoration, an abrupt dig, and a
    # dig that grew (half of it seen abruptly, 16 px, a mapping unit alone; half first
    # seen after 100 days without a clear look): each a flag, the last of its whole
    # extent.
    layers = _layers()
    late = [(slice(10, 14), slice(10, 14), 20), (slice(20, 24), slice(10, 14), 5)]
    # Site B (same start) stays green but for its dug 3 %: a 16 px late change and a
    # 16 px one first seen after a 100-day gap are digs into its winter woods.
    late += [(slice(60, 64), slice(10, 14), 22)]
    for rows, cols, onset in late:
        _dig(layers, rows, cols, onset)
        layers[L["late"], rows, cols] = 1
    _dig(layers, slice(30, 34), slice(30, 34), 25)
    _dig(layers, slice(25, 29), slice(16, 24), 35)
    layers[L["gap_days"], 25:29, 20:24] = 100
    _dig(layers, slice(80, 84), slice(20, 24), 30)
    layers[L["gap_days"], 80:84, 20:24] = 100
    # And a late change off any site.
    _dig(layers, slice(60, 64), slice(60, 64), 20)
    layers[L["late"], 60:64, 60:64] = 1
    dying = np.where(np.arange(len(DATES)) < 20, 0.7, 0.15)
    green = np.full(len(DATES), 0.68)
    site_a = _restoring(_pix_box(5, 40, 5, 40), DATES[10], dying)
    site_b = _restoring(_pix_box(55, 90, 5, 40), DATES[10], green)
    flags = build_flags(layers, GRID, DATES, DetectionConfig(), restoring_sites=[site_a, site_b])
    assert sorted((f.first_detected, f.area_m2) for f in flags) == [
        (DATES[5], 1600), (DATES[20], 1600), (DATES[22], 1600), (DATES[25], 1600),
        (DATES[30], 1600), (DATES[35], 3200),
    ]  # fmt: skip
    centres = sorted((round(f.geometry.centroid.x), round(f.geometry.centroid.y)) for f in flags)
    assert centres == [(120, 380), (120, 780), (200, 730), (220, 180), (320, 680), (620, 380)]
    # The die-back is dropped only for what it is: without the sites it is a flag too.
    assert len(build_flags(layers, GRID, DATES, DetectionConfig())) == 7
    # A site with no look after the change cannot tell: a die-back, as ever.
    blind = _restoring(site_b.geometry, DATES[10], np.where(np.arange(60) < 20, 0.68, np.nan))
    blind = RestoringSite(blind.geometry, blind.start, blind.days[:20], blind.ndvi[:20])
    flags = build_flags(layers, GRID, DATES, DetectionConfig(), restoring_sites=[site_a, blind])
    assert sorted(f.first_detected for f in flags) == [DATES[5], DATES[20], DATES[25], DATES[35]]


def test_build_flags__die_back_seen_abruptly_is_no_dig_where_the_site_lost_its_green():
    # Two sites green (0.7) until date 20, each with an abrupt-looking change on date 21
    # first seen after 30 days without a clear look (no late, no gap over 45 days).
    # Site A goes bare after: the change is its die-back, no flag, though it covers 16 %
    # of the site (the rest failed less visibly). Site B keeps its green but for the
    # 16 %: a dig, a flag. An abrupt dig seen without a gap on site A: a flag.
    layers = _layers()
    _dig(layers, slice(5, 9), slice(5, 24), 21)
    _dig(layers, slice(60, 64), slice(10, 24), 21)
    layers[L["gap_days"]] = 30
    _dig(layers, slice(30, 34), slice(30, 34), 25)
    layers[L["gap_days"], 30:34, 30:34] = 10
    dying = np.where(np.arange(len(DATES)) < 20, 0.7, 0.15)
    keeps = np.where(np.arange(len(DATES)) < 20, 0.7, 0.62)
    sites = [
        _restoring(_pix_box(5, 40, 5, 40), DATES[10], dying),
        _restoring(_pix_box(55, 65, 5, 40), DATES[10], keeps),
    ]
    flags = build_flags(layers, GRID, DATES, DetectionConfig(), restoring_sites=sites)
    assert [(f.first_detected, f.area_m2) for f in flags] == [(DATES[21], 5600), (DATES[25], 1600)]
    # Seen at once (no gap) over 60 % of site A, it is the die-back all the same.
    wide = _layers()
    _dig(wide, slice(5, 26), slice(5, 40), 21)
    assert build_flags(wide, GRID, DATES, DetectionConfig(), restoring_sites=sites) == []
    # Seen at once over 16 % of site A, begun while the site was still green (its last
    # looks before, dates 17-19, at 0.7): the site lost its green with it, a die-back.
    # The dig of date 25 began once site A was bare: a flag.
    begun_green = _layers()
    _dig(begun_green, slice(5, 9), slice(5, 24), 20)
    _dig(begun_green, slice(30, 34), slice(30, 34), 25)
    flags = build_flags(begun_green, GRID, DATES, DetectionConfig(), restoring_sites=sites)
    assert [(f.first_detected, f.area_m2) for f in flags] == [(DATES[25], 1600)]
    # A farmland restoration harvested on date 20 and never sown again: its last looks
    # before were the earlier harvest's stubble, the crop and the crop ripe (0.16, 0.6,
    # 0.29; median under prior_ndvi_min). It was green just before the change all the
    # same, and lost its green with it: a die-back. A dig into it three looks after the
    # harvest left it bare (0.16, 0.15, 0.15 before) is a dig.
    field = dying.copy()
    field[17:20] = (0.16, 0.6, 0.29)
    unsown = [_restoring(_pix_box(5, 40, 5, 40), DATES[10], field), sites[1]]
    late_dig = _layers()
    _dig(late_dig, slice(5, 9), slice(5, 24), 20)
    _dig(late_dig, slice(30, 34), slice(30, 34), 23)
    flags = build_flags(late_dig, GRID, DATES, DetectionConfig(), restoring_sites=unsown)
    assert [(f.first_detected, f.area_m2) for f in flags] == [(DATES[23], 1600)]
    # A site that never greened (0.25 before) loses nothing a die-back could: a flag.
    weedy = [_restoring(_pix_box(5, 40, 5, 40), DATES[10], np.where(dying > 0.5, 0.25, 0.15))]
    flags = build_flags(layers, GRID, DATES, DetectionConfig(), restoring_sites=weedy)
    assert sorted(f.area_m2 for f in flags) == [1600, 5600, 7600]


def test_green_lost__share_of_the_green_above_soil():
    days = np.datetime64("2022-01-01") + np.arange(0, 730, 10)
    ndvi = np.where(days < np.datetime64("2023-01-01"), 0.65, 0.15)
    site = RestoringSite(_pix_box(0, 10, 0, 10), date(2021, 6, 1), days, ndvi)
    assert green_lost(site, date(2023, 1, 1), 0.25) == pytest.approx(0.5 / 0.4)
    dug = RestoringSite(site.geometry, site.start, days, np.where(ndvi > 0.5, 0.65, 0.57))
    assert green_lost(dug, date(2023, 1, 1), 0.25) == pytest.approx(0.08 / 0.4)
    assert np.isnan(green_lost(site, date(2025, 1, 1), 0.25))


def test_green_lost__imagery_ending_within_the_year_compares_the_same_season():
    # Grassland green from April to September; the imagery ends in February.
    days = np.datetime64("2021-01-01") + np.arange(0, 790, 10)
    doy = (days - days.astype("datetime64[Y]")).astype(int)
    ndvi = 0.22 + 0.27 * np.clip(np.sin((doy - 90) / 365 * 2 * np.pi), 0, None)
    site = RestoringSite(_pix_box(0, 10, 0, 10), date(2020, 6, 1), days, ndvi)
    # A change in late October is weighed against the October to February before, not
    # against the summer: the grass only went dormant, as it did a year before.
    assert green_lost(site, date(2022, 10, 20), 0.25) < 0.1
    # The same site dead from that day: nearly all its autumn green is gone.
    dead = RestoringSite(
        site.geometry, site.start, days, np.where(days >= np.datetime64("2022-10-20"), 0.15, ndvi)
    )
    assert green_lost(dead, date(2022, 10, 20), 0.25) > 1.0


def test_green_lost__a_summer_under_cloud_is_no_loss():
    # A grassland site seen mostly in winter (NDVI 0.26), its summers under cloud: the
    # year before the change (2023-03-01) has three growing-season looks, the year after
    # six, four of them in spring before the green-up, and four times the winter looks. Over
    # all looks each year's 0.9 quantile is a winter's, barely above soil, and a few
    # hundredths between them read as most of the green gone; over the growing season
    # the site is as green after as before.
    season = {
        "2022-05-05": 0.23, "2022-08-28": 0.48, "2022-10-17": 0.38,
        "2023-04-05": 0.22, "2023-04-20": 0.24, "2023-05-05": 0.22, "2023-05-25": 0.26,
        "2023-09-12": 0.46, "2023-09-27": 0.42,
    }  # fmt: skip
    start, change = np.datetime64("2022-01-01"), np.datetime64("2023-03-01")
    winter = [  # seen every 20 days before the change, every 5 after
        d
        for d in start + np.arange(0, 800)
        if d.astype(object).month in (1, 2, 3, 11, 12)
        and (d - start).astype(int) % (20 if d < change else 5) == 0
    ]
    days = np.array(sorted([*np.array(list(season), "datetime64[D]"), *winter]))
    ndvi = np.array([season.get(str(d), 0.26) for d in days])
    site = RestoringSite(_pix_box(0, 10, 0, 10), date(2021, 6, 1), days, ndvi)
    assert green_lost(site, date(2023, 3, 1), 0.25) < 0.25


def test_build_flags__closed_site_has_its_own_lower_unit():
    layers = _layers()
    _dig(layers, slice(50, 52), slice(50, 52), 30)  # 4 px = 0.04 ha
    closed = [_pix_box(45, 60, 45, 60)]
    assert build_flags(layers, GRID, DATES, DetectionConfig()) == []
    flags = build_flags(layers, GRID, DATES, DetectionConfig(), closed_sites=closed)
    assert len(flags) == 1 and flags[0].area_m2 == 400


def test_build_flags__growing_dig_is_one_flag_dated_by_its_first_pixel():
    layers = _layers()
    _dig(layers, slice(10, 15), slice(10, 15), 20)
    _dig(layers, slice(10, 15), slice(15, 25), 26)  # the dig grew east later
    flags = build_flags(layers, GRID, DATES, DetectionConfig())
    assert len(flags) == 1
    assert flags[0].area_m2 == 75 * 100
    assert flags[0].first_detected == DATES[20]
    again = build_flags(layers, GRID, DATES, DetectionConfig())
    assert again[0].flag_id == flags[0].flag_id


def test_build_flags__not_persistent_is_dropped_and_unconfirmed_is_low():
    layers = _layers()
    _dig(layers, slice(10, 15), slice(10, 15), 20)
    layers[L["n_bare"], 10:15, 10:15] = 3  # 3 of 8 looks bare
    _dig(layers, slice(60, 65), slice(60, 65), 59, n=1)
    layers[L["confirm"], 60:65, 60:65] = -1
    layers[L["has_history"], 60:65, 60:65] = 0
    flags = build_flags(layers, GRID, DATES, DetectionConfig())
    assert len(flags) == 1
    assert flags[0].level == "low" and flags[0].confirmed is None
    assert flags[0].confidence <= 0.6  # one look: below the "high" line


def _frames():
    crs = GRID.crs
    sites = gpd.GeoDataFrame(
        {
            "site_id": ["LIC", "ILL", "SUS", "RES"],
            "county": ["A", "A", "B", "B"],
            "category": ["licensed", "illegal", "licensed", "orphaned"],
            "status": ["producing", "closed", "suspended", "restoring"],
            "restoration_start": [None, None, None, date(2021, 3, 1)],
        },
        geometry=[
            _pix_box(0, 30, 0, 30),
            _pix_box(0, 30, 40, 70),
            _pix_box(40, 70, 0, 30),
            _pix_box(40, 70, 40, 70),
        ],
        crs=crs,
    )
    permits = gpd.GeoDataFrame(
        {
            "permit_id": ["P-LIC", "P-SUS"],
            "site_id": ["LIC", "SUS"],
            "valid_from": [date(2020, 1, 1), date(2020, 1, 1)],
            "valid_to": [date(2030, 1, 1)] * 2,
        },
        geometry=[_pix_box(0, 20, 0, 20), _pix_box(40, 60, 0, 20)],
        crs=crs,
    )
    zones = gpd.GeoDataFrame(
        {"zone_id": ["Z1"], "kind": ["nature_reserve"]},
        geometry=[_pix_box(80, 100, 80, 100)],
        crs=crs,
    )
    counties = None
    return sites, permits, zones, counties


@pytest.mark.parametrize(
    ("rows", "cols", "violation", "site", "permit"),
    [
        ((5, 10), (5, 10), "within_permit", "LIC", "P-LIC"),
        ((5, 10), (22, 28), "outside_permit", "LIC", "P-LIC"),
        # just outside the site but 110 m from its permit: measured from the permit
        ((5, 10), (31, 36), "unregistered", None, None),
        ((5, 10), (50, 55), "illegal_site", "ILL", None),
        ((45, 50), (5, 10), "suspended_site", "SUS", "P-SUS"),
        ((45, 50), (50, 55), "restored_land", "RES", None),
        ((85, 90), (85, 90), "no_mining_zone", None, None),
        ((85, 90), (5, 10), "unregistered", None, None),
    ],
)
def test_attribute_violations__each_kind(rows, cols, violation, site, permit):
    layers = _layers()
    _dig(layers, slice(*rows), slice(*cols), 20)
    flags = build_flags(layers, GRID, DATES, DetectionConfig())
    sites, permits, zones, _ = _frames()
    (flag,) = attribute_violations(flags, sites, permits, zones, DetectionConfig())
    assert flag.violation == violation
    assert flag.site_id == site
    assert flag.permit_id == permit
    assert flag.zone_ids == (["Z1"] if violation == "no_mining_zone" else [])
    assert flag.county is not None


def test_attribute_violations__licensed_site_without_permit_is_measured_from_its_boundary():
    # The same dig 10 m outside the quarry and 110 m from its permit: with the permit on
    # record it is unregistered (above); with none, the site's boundary is the bound.
    layers = _layers()
    _dig(layers, slice(5, 10), slice(31, 36), 20)
    sites, permits, zones, _ = _frames()
    got = []
    for on_record in (permits, permits[permits["site_id"] != "LIC"]):
        flags = build_flags(layers, GRID, DATES, DetectionConfig())
        (flag,) = attribute_violations(flags, sites, on_record, zones, DetectionConfig())
        got.append((flag.violation, flag.site_id, flag.permit_id))
    assert got == [("unregistered", None, None), ("outside_permit", "LIC", None)]


def test_attribute_violations__late_change_into_winter_cover_is_on_restored_land():
    # A dig into a restored grassland in winter: the looks before it show leaf-off
    # cover (prior NDVI 0.25), but the fold's late change says the ground was green
    # within the year before, so it is restored land. An abrupt change from the same
    # winter cover (no late) is not.
    sites, permits, zones, _ = _frames()
    got = []
    for late in (1, 0):
        layers = _layers()
        _dig(layers, slice(45, 50), slice(50, 55), 20)
        layers[L["prior_ndvi"]] = 0.25
        layers[L["late"], 45:50, 50:55] = late
        (flag,) = attribute_violations(
            build_flags(layers, GRID, DATES, DetectionConfig()), sites, permits, zones,
            DetectionConfig(),
        )  # fmt: skip
        got.append((flag.green_before, flag.violation, flag.site_id))
    assert got == [(True, "restored_land", "RES"), (False, "unregistered", "RES")]


def test_attribute_violations__abrupt_dig_into_dormant_cover_of_a_greened_site():
    # A dig into a restored grassland in winter, abrupt from dormant cover (prior NDVI
    # 0.25, no late change): restored land when the site's summer before was green
    # (NDVI 0.5), unregistered when its restoration never greened (NDVI 0.2 all year).
    sites, permits, zones, _ = _frames()
    res = sites.loc[sites["site_id"] == "RES", "geometry"].iloc[0]
    months = np.array([d.month for d in DATES])
    summer = np.where((months >= 5) & (months <= 9), 0.5, 0.25)
    got = []
    for ndvi in (summer, np.full(len(DATES), 0.2)):
        layers = _layers()
        _dig(layers, slice(45, 50), slice(50, 55), 40)  # DATES[40]: 2023-02-05
        layers[L["prior_ndvi"]] = 0.25
        restoring = [_restoring(res, date(2021, 3, 1), ndvi)]
        flags = build_flags(layers, GRID, DATES, DetectionConfig(), restoring_sites=restoring)
        (flag,) = attribute_violations(flags, sites, permits, zones, DetectionConfig())
        got.append((flag.green_before, flag.violation, flag.site_id))
    assert got == [(True, "restored_land", "RES"), (False, "unregistered", "RES")]


def test_attribute_violations__precedence_is_configurable():
    layers = _layers()
    _dig(layers, slice(85, 90), slice(85, 90), 20)
    sites, permits, zones, _ = _frames()
    sites.loc[len(sites)] = {
        "site_id": "ILL2",
        "county": "C",
        "category": "illegal",
        "status": "closed",
        "restoration_start": None,
        "geometry": _pix_box(80, 100, 80, 100),
    }
    default = attribute_violations(
        build_flags(layers, GRID, DATES, DetectionConfig()),
        sites,
        permits,
        zones,
        DetectionConfig(),
    )
    assert default[0].violation == "illegal_site"
    order = (
        "no_mining_zone",
        "illegal_site",
        "suspended_site",
        "restored_land",
        "outside_permit",
        "within_permit",
        "unregistered",
    )
    cfg = DetectionConfig(violation_precedence=order)
    swapped = attribute_violations(
        build_flags(layers, GRID, DATES, cfg), sites, permits, zones, cfg
    )
    assert swapped[0].violation == "no_mining_zone"
    assert swapped[0].zone_ids == ["Z1"]
