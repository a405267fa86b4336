"""Recovery classes on cases the demo generator never made (issue 17, items 4 and 6).

Monthly looks (the 15th) from 2020 to 2024, assessed on 2024-12-31, restoration begun
on 2020-03-01 unless said otherwise; the ring around each site is natural forest.
Each behaviour is checked by the rule set and by the shipped model (``classify_with``
with the default config), which must agree.
"""

from __future__ import annotations

import logging
import math
from datetime import date

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from pipeline.config import RecoveryConfig
from pipeline.recovery.classify import classify_sites
from pipeline.recovery.disturbance import digging_forbidden, dug_shares
from pipeline.recovery.features import site_features
from pipeline.recovery.predict import classify_with, recovery_model
from pipeline.recovery.relative import model_features
from pipeline.recovery.status import cover_lost
from pipeline.schema import TIMESERIES_COLUMNS

ASSESSED = date(2024, 12, 31)
YEARS = range(2020, 2025)
GREEN = {"winter": 0.3, "peak": 0.82, "veg": 0.9, "bare": 0.03}
DEAD = {"winter": 0.1, "peak": 0.2, "veg": 0.05, "bare": 0.7}
WEEDS = {"winter": 0.1, "peak": 0.17, "veg": 0.02, "bare": 0.8}


def _looks(site_id: str, seasons: dict[int, dict[str, float]]) -> pd.DataFrame:
    rows = []
    for year, p in seasons.items():
        for month in range(1, 13):
            s = (1 + math.cos(2 * math.pi * (month - 7) / 12)) / 2
            ndvi = p["winter"] + (p["peak"] - p["winter"]) * s
            rows.append(
                {
                    "site_id": site_id,
                    "date": pd.Timestamp(year, month, 15),
                    "n_pixels": 400,
                    "valid_fraction": 1.0,
                    "ndvi_mean": ndvi,
                    "ndvi_median": ndvi,
                    "bsi_mean": 0.1 - ndvi / 4,
                    "bsi_median": 0.1 - ndvi / 4,
                    "ndwi_mean": -ndvi,
                    "vegetated_fraction": p["veg"] * s,
                    "bare_fraction": p["bare"],
                    "water_fraction": 0.0,
                }
            )
    return pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))


SERIES = {
    # Greened to its forest target in 2020, died back in 2021, dead since: years later.
    "died_back": {
        2020: GREEN,
        2021: {**DEAD, "peak": 0.4},
        **dict.fromkeys(range(2022, 2025), DEAD),
    },
    # Restoration began in 2020 and nothing ever took.
    "never_green": dict.fromkeys(YEARS, WEEDS),
    # A suspended quarry: bare pit, no restoration; dug again in 2024.
    "quarry": dict.fromkeys(YEARS, WEEDS),
}


def _sites(**overrides: dict) -> pd.DataFrame:
    rows = []
    for site_id in SERIES:
        row = {
            "site_id": site_id,
            "category": "orphaned",
            "county": "Xian",
            "target": "forest",
            "status": "restoring",
            "restoration_start": date(2020, 3, 1),
            "area_m2": 40_000.0,
        }
        row.update(overrides.get(site_id, {}))
        rows.append(row)
    return pd.DataFrame(rows)


QUARRY = {"category": "licensed", "status": "suspended", "restoration_start": None}


def _classes(sites: pd.DataFrame, disturbed: dict[str, float], model: str | None) -> pd.DataFrame:
    timeseries = pd.concat([_looks(k, v) for k, v in SERIES.items()], ignore_index=True)
    rings = pd.concat([_looks(k, dict.fromkeys(YEARS, GREEN)) for k in SERIES], ignore_index=True)
    cfg = RecoveryConfig(model=model)
    features = model_features(timeseries, rings, sites, disturbed, assessed_until=ASSESSED, cfg=cfg)
    return classify_with(recovery_model(cfg), features, sites, disturbed, cfg=cfg)


@pytest.fixture(scope="module", params=["rules", None], ids=["rules", "model"])
def classes(request) -> pd.DataFrame:
    return _classes(_sites(quarry=QUARRY), {"quarry": 0.02}, request.param)


def test_recovery__greened_then_died_back_is_regressed_years_later(classes):
    assert classes.loc["died_back", "recovery_class"] == "regressed"
    assert classes.loc["died_back", "assessed_until"] == "2024-12-15"


def test_recovery__never_greened_after_restoration_is_unrestored(classes):
    assert classes.loc["never_green", "recovery_class"] == "unrestored"


def test_recovery__suspended_quarry_dug_is_disturbed_before_restoration(classes):
    assert classes.loc["quarry", "recovery_class"] == "disturbed"
    assert classes.loc["quarry", "rule"] in ("new_excavation", "model")
    assert classes.loc["quarry", "disturbed_fraction"] == pytest.approx(0.02)


@pytest.mark.parametrize("model", ["rules", None], ids=["rules", "model"])
def test_recovery__cover_gone_in_the_last_months_is_regressed(model):
    # Green from 2020; bare from May 2024, assessed at the end of July 2024. The latest
    # window's peak is last August's, still green, and last year's May to July hid
    # under cloud: only the cover of the last looks tells.
    died = _looks("died_late", {**dict.fromkeys(range(2020, 2024), GREEN), 2024: GREEN})
    late = died["date"] >= pd.Timestamp(2024, 5, 1)
    cols = ["ndvi_median", "ndvi_mean", "vegetated_fraction", "bare_fraction"]
    dead = _looks("died_late", {2024: DEAD}).set_index("date")
    died.loc[late, cols] = dead.loc[died.loc[late, "date"], cols].to_numpy()
    cloudy = (died["date"] >= pd.Timestamp(2023, 5, 1)) & (died["date"] < pd.Timestamp(2023, 8, 1))
    died = died[~cloudy & (died["date"] <= pd.Timestamp(2024, 7, 31))]
    kept = _looks("kept", dict.fromkeys(range(2020, 2025), GREEN))
    kept = kept[kept["date"] <= pd.Timestamp(2024, 7, 31)]
    sites = _sites().iloc[:2].assign(site_id=["died_late", "kept"])
    rings = pd.concat([_looks(k, dict.fromkeys(YEARS, GREEN)) for k in sites["site_id"]])
    cfg = RecoveryConfig(model=model)
    features = model_features(
        pd.concat([died, kept], ignore_index=True), rings, sites, {},
        assessed_until=date(2024, 7, 31), cfg=cfg,
    )  # fmt: skip
    classes = classify_with(recovery_model(cfg), features, sites, {}, cfg=cfg)
    assert classes.loc["died_late", "recovery_class"] == "regressed"
    assert classes.loc["kept", "recovery_class"] == "restored"


def test_recovery__grass_greening_late_in_a_window_ending_in_june_is_restored():
    # Green every summer; the imagery ends in June 2024, when a late spring has the
    # grass below the vegetated line (0.4), on two looks. Last year's June, July and
    # September hid under cloud, so the latest window's core season is last August and
    # this June, and the previous window's has no June: no month of the two windows
    # shows the cover gone. (The shipped model; the rules judge the level by the latest
    # window's core season and read such a site as not yet restored.)
    late = _looks("late_spring", {**dict.fromkeys(range(2020, 2024), GREEN), 2024: GREEN})
    june = late["date"].dt.year.eq(2024) & late["date"].dt.month.eq(6)
    late.loc[june, ["ndvi_median", "ndvi_mean", "vegetated_fraction", "bare_fraction"]] = [
        0.4, 0.4, 0.0, 0.0,
    ]  # fmt: skip
    second = late[june].assign(date=pd.Timestamp(2024, 6, 25))
    hidden = late["date"].isin([pd.Timestamp(2023, m, 15) for m in (6, 7, 9)])
    late = pd.concat([late[~hidden], second], ignore_index=True)
    late = late[late["date"] <= pd.Timestamp(2024, 6, 30)].sort_values("date")
    sites = _sites().iloc[:1].assign(site_id=["late_spring"], target="grassland")
    rings = _looks("late_spring", dict.fromkeys(YEARS, GREEN))
    cfg = RecoveryConfig()
    features = model_features(late, rings, sites, {}, assessed_until=date(2024, 6, 30), cfg=cfg)
    assert features.loc["late_spring", "vegetated_fraction"] == 0.0  # June's two looks
    assert features.loc["late_spring", "vegetated_same_months"] > 0.8  # August's
    classes = classify_with(recovery_model(cfg), features, sites, {}, cfg=cfg)
    assert classes.loc["late_spring", "recovery_class"] == "restored"


def test_site_features__cover_compared_month_by_month():
    # A grass restored two summers running, its early-June looks below the vegetated
    # line every year. The latest window has three June looks, the previous one one:
    # pooled over the months both windows have (June, July, September), the latest's
    # median is June's and the cover "fell" by half. Month by month it held.
    looks = {
        "2022-09-27": 0.97, "2023-06-04": 0.0, "2023-07-19": 1.0,  # previous window
        "2023-08-08": 0.85, "2023-09-02": 0.91, "2023-09-22": 0.89,
        "2024-06-03": 0.0, "2024-06-08": 0.0, "2024-06-23": 0.01, "2024-07-28": 0.86,
    }  # fmt: skip
    series = _looks("grass", {2023: GREEN}).iloc[: len(looks)].copy()
    series["date"] = pd.to_datetime(list(looks))
    series["vegetated_fraction"] = list(looks.values())
    sites = _sites().iloc[:1].assign(site_id=["grass"], target="grassland")
    cfg = RecoveryConfig()
    features = site_features(series, sites, assessed_until=date(2024, 7, 31), cfg=cfg)
    grass = features.loc["grass"]
    assert grass["vegetated_same_months"] == pytest.approx((0.0 + 0.86 + 0.90) / 3)
    assert grass["previous_vegetated_same_months"] == pytest.approx((0.0 + 1.0 + 0.97) / 3)
    assert not cover_lost(grass, "grassland", cfg)


def test_dug_shares__a_dig_on_forbidden_ground_counts_however_small():
    crs = "EPSG:32649"
    sites = gpd.GeoDataFrame(
        {
            "site_id": ["SUS", "PROD", "RES", "ILL"],
            "category": ["licensed", "licensed", "orphaned", "illegal"],
            "status": ["suspended", "producing", "restoring", "closed"],
            "restoration_start": [None, None, date(2022, 4, 1), None],
        },
        geometry=[box(x, 0, x + 200, 200) for x in (0, 400, 800, 1200)],
        crs=crs,
    )
    dig = box(50, 50, 70, 70)  # 400 m2: 1 % of the suspended quarry
    digs = [
        (dig, date(2023, 5, 2), "suspended_site"),
        (box(450, 50, 480, 80), date(2023, 5, 2), "outside_permit"),  # producing: its business
        (box(780, 90, 810, 100), date(2023, 5, 2), "restored_land"),  # clips RES's edge
        (box(850, 50, 880, 80), date(2021, 5, 2), "unregistered"),  # before RES's restoration
        (box(1250, 50, 1270, 70), date(2023, 7, 9), "illegal_site"),
        (box(1300, 50, 1330, 80), date(2023, 7, 9), "within_permit"),
    ]
    shares = dug_shares(digs, sites, min_fraction=0.05)
    assert shares == pytest.approx({"SUS": 0.01, "ILL": 0.01})
    assert digging_forbidden(sites.iloc[2], date(2022, 4, 1))
    assert not digging_forbidden(sites.iloc[2], date(2022, 3, 31))
    assert not digging_forbidden(sites.iloc[1], date(2023, 1, 1))


def test_recovery__outside_the_training_range_the_rules_decide(caplog):
    # Restoration begun in 2005: twenty years, where training saw at most a few.
    sites = _sites(died_back={"restoration_start": date(2005, 3, 1)}, quarry=QUARRY)
    with caplog.at_level(logging.WARNING, logger="pipeline.recovery.predict"):
        classes = _classes(sites, {"quarry": 0.02}, None)
    assert not classes.loc["died_back", "model_used"]
    assert classes.loc["died_back", "recovery_class"] == "regressed"
    assert classes.loc["died_back", "rule"] == "peak_drop"
    warned = [r.getMessage() for r in caplog.records if "training range" in r.getMessage()]
    assert len(warned) == 1
    assert "died_back (days_since_restoration_start)" in warned[0]
    assert classes.loc["never_green", "model_used"]


def test_classify_sites__rules_say_so_in_model_used():
    timeseries = _looks("died_back", SERIES["died_back"])
    from pipeline.recovery.features import site_features

    sites = _sites().iloc[:1]
    features = site_features(timeseries, sites, assessed_until=ASSESSED, cfg=RecoveryConfig())
    out = classify_sites(features, sites, {}, cfg=RecoveryConfig())
    assert out.loc["died_back", "recovery_class"] == "regressed"
    assert not out["model_used"].any()


def test_disturbed_fractions__a_single_look_does_not_make_a_site_disturbed():
    from pipeline.flags import Flag, disturbed_fractions

    sites = gpd.GeoDataFrame(
        {"site_id": ["ILL"], "category": ["illegal"], "status": ["closed"]},
        geometry=[box(0, 0, 200, 200)],
        crs="EPSG:32649",
    )

    def flag(confirmed: date | None) -> Flag:
        return Flag("F20241031-abcdef", box(50, 50, 90, 90), date(2024, 10, 31), confirmed,
                    date(2024, 11, 10), 1600.0, 0.5, "low", True, 0.6, "illegal_site")  # fmt: skip

    assert disturbed_fractions([flag(None)], sites, min_fraction=0.05) == {}
    shares = disturbed_fractions([flag(date(2024, 11, 10))], sites, min_fraction=0.05)
    assert shares == pytest.approx({"ILL": 0.04})
