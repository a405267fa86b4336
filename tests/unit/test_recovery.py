"""Recovery features and rule-based classes on hand-built series with known answers.

Every series is monthly (the 15th), 2021-01 to 2023-12, assessed on 2023-12-31, so
the latest window is 2023 and the previous window 2022. A season's NDVI follows

    ndvi(m) = winter + (peak - winter) * s(m),  s(m) = (1 + cos(2 pi (m - 7) / 12)) / 2

s is 0 in January and 1 in July; over April-October s = 0.5, 0.75, 0.933, 1, 0.933,
0.75, 0.5, whose 90th percentile (linear, position 0.9 * 6 = 5.4 in the sorted list)
is 0.933 + 0.4 * 0.067 = 0.9598; the June-September median of s is 0.933.
"""

from __future__ import annotations

import logging
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipeline.config import RecoveryConfig, TargetThresholds
from pipeline.recovery import FEATURE_COLUMNS, assess_sites, classify_sites, site_features
from pipeline.schema import M2_PER_MU, SITE_STATUS_COLUMNS, TIMESERIES_COLUMNS

ASSESSED = date(2023, 12, 31)
YEARS = (2021, 2022, 2023)
S_P90 = 0.933013 + 0.4 * (1 - 0.933013)  # 90th percentile of s over April-October


def _shape(month: int) -> float:
    return (1 + math.cos(2 * math.pi * (month - 7) / 12)) / 2


def _series(
    site_id: str, seasons: dict[int, dict[str, float]], *, valid: float = 1.0
) -> pd.DataFrame:
    """Monthly looks; per year: winter/peak NDVI, vegetated at peak, bare, water, bsi.

    ``flat`` (0/1) turns the seasonal shape off (netting, bare rock, water).
    """
    rows = []
    for year, p in seasons.items():
        for month in range(1, 13):
            s = 1.0 if p.get("flat", 0) else _shape(month)
            ndvi = p["winter"] + (p["peak"] - p["winter"]) * s
            rows.append(
                {
                    "site_id": site_id,
                    "date": pd.Timestamp(year, month, 15),
                    "n_pixels": 400,
                    "valid_fraction": valid,
                    "ndvi_mean": ndvi,
                    "ndvi_median": ndvi,
                    "bsi_mean": p.get("bsi", 0.1 - ndvi / 4),
                    "bsi_median": p.get("bsi", 0.1 - ndvi / 4),
                    "ndwi_mean": -ndvi,
                    "vegetated_fraction": p.get("veg", 0.0) * s,
                    "bare_fraction": p.get("bare", 0.0),
                    "water_fraction": p.get("water", 0.0),
                }
            )
    return pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))


def _green(veg: float = 0.95) -> dict[str, float]:
    return {"winter": 0.3, "peak": 0.85, "veg": veg, "bare": 0.02}


BARE = {"winter": 0.1, "peak": 0.1, "flat": 1, "bare": 0.9, "bsi": 0.25}
NETTING = {"winter": 0.3, "peak": 0.3, "flat": 1, "veg": 0.0, "bare": 0.6, "bsi": 0.15}

SERIES = {
    "restored": {y: _green() for y in YEARS},
    "revegetating": {
        2021: {"winter": 0.1, "peak": 0.25, "veg": 0.05, "bare": 0.7},
        2022: {"winter": 0.12, "peak": 0.4, "veg": 0.15, "bare": 0.5},
        2023: {"winter": 0.15, "peak": 0.5, "veg": 0.3, "bare": 0.4},
    },
    "bare": dict.fromkeys(YEARS, BARE),
    "regressed": {
        2021: {"winter": 0.15, "peak": 0.7, "veg": 0.8, "bare": 0.1},
        2022: {"winter": 0.15, "peak": 0.7, "veg": 0.8, "bare": 0.1},
        2023: {"winter": 0.12, "peak": 0.3, "veg": 0.1, "bare": 0.6},
    },
    "dug": {y: _green() for y in YEARS},
    "lake": {
        2021: {"winter": 0.05, "peak": 0.2, "veg": 0.1, "bare": 0.7, "water": 0.1},
        2022: {"winter": -0.3, "peak": -0.1, "veg": 0.15, "bare": 0.2, "water": 0.55},
        2023: {"winter": -0.35, "peak": -0.15, "veg": 0.15, "bare": 0.1, "water": 0.7},
    },
    "netting": {2021: BARE, 2022: NETTING, 2023: NETTING},
}
TARGETS = {
    "restored": "forest",
    "revegetating": "forest",
    "bare": "forest",
    "regressed": "grassland",
    "dug": "forest",
    "lake": "landscape",
    "netting": "forest",
}


def _sites(targets: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": list(targets),
            "category": "orphaned",
            "county": "Xian",
            "target": list(targets.values()),
            "status": "restoring",
            "restoration_start": [date(2020, 10, 1)] * len(targets),
            "area_m2": 20_000.0,
        }
    )


def _status(series: dict, targets: dict[str, str], disturbed=None, cfg=None) -> pd.DataFrame:
    timeseries = pd.concat([_series(k, v) for k, v in series.items()], ignore_index=True)
    return assess_sites(
        timeseries,
        _sites(targets),
        disturbed or {},
        assessed_until=ASSESSED,
        cfg=cfg or RecoveryConfig(),
    ).set_index("site_id")


@pytest.fixture(scope="module")
def status() -> pd.DataFrame:
    return _status(SERIES, TARGETS, disturbed={"dug": 0.2})


@pytest.mark.parametrize(
    ("site_id", "expected"),
    [
        ("restored", "restored"),
        ("revegetating", "revegetating"),
        ("bare", "unrestored"),
        ("regressed", "regressed"),
        ("dug", "disturbed"),
        ("lake", "restored"),
        ("netting", "unrestored"),
    ],
)
def test_classify_sites__one_site_per_class(status, site_id, expected):
    assert status.loc[site_id, "recovery_class"] == expected


def test_classify_sites__restored_forest_figures(status):
    row = status.loc["restored"]
    assert bool(row["meets_target"]) is True
    assert row["vegetated_fraction"] == pytest.approx(0.95 * 0.933013, abs=1e-4)
    assert row["restored_area_m2"] == 20_000.0
    assert row["restored_area_mu"] == round(20_000.0 / M2_PER_MU, 2) == 30.0
    assert row["assessed_until"] == "2023-12-15"
    # 12 clear looks, 7 in season (data 0.7); the weakest test, the 0.6 peak
    # threshold vs a peak of 0.3 + 0.55 * 0.9598 = 0.828, is more than a scale away.
    assert row["probability"] == pytest.approx(0.7)


def test_classify_sites__netting_is_not_restored(status):
    row = status.loc["netting"]
    assert row["recovery_class"] == "unrestored"
    assert bool(row["meets_target"]) is False
    assert row["restored_area_m2"] == 0.0


def test_classify_sites__netting_fails_on_amplitude_even_with_lax_thresholds():
    # Thresholds netting would pass on NDVI and cover alone: only the seasonal
    # amplitude keeps it out.
    lax = RecoveryConfig(
        targets={
            **RecoveryConfig().targets,
            "grassland": TargetThresholds(season_peak_ndvi_min=0.25, vegetated_fraction_min=0.0),
        }
    )
    netting_only = {2021: NETTING, 2022: NETTING, 2023: NETTING}
    status = _status({"net": netting_only}, {"net": "grassland"}, cfg=lax)
    assert status.loc["net", "recovery_class"] == "unrestored"
    assert bool(status.loc["net", "meets_target"]) is False


def test_classify_sites__green_once_is_revegetating_not_restored():
    # Green in 2023 only: meets the target now, but not over a full previous season.
    series = {"young": {2021: BARE, 2022: BARE, 2023: _green()}}
    status = _status(series, {"young": "forest"})
    assert status.loc["young", "recovery_class"] == "revegetating"
    assert bool(status.loc["young", "meets_target"]) is True
    assert status.loc["young", "restored_area_m2"] == 0.0


def test_classify_sites__sparse_plants_greening_are_revegetating():
    # Weeds taking hold on bare ground: the peak gained 0.12 over the first season, but
    # the winter rose too, so the season swings by 0.08 only (less than the 0.1 gain
    # line, more than half the gain). Netting gains without a swing (above: unrestored).
    sparse = {
        2021: {"winter": 0.10, "peak": 0.13, "bare": 0.9},
        2022: {"winter": 0.13, "peak": 0.19, "bare": 0.7},
        2023: {"winter": 0.16, "peak": 0.25, "bare": 0.5},
    }
    status = _status({"weeds": sparse}, {"weeds": "grassland"})
    assert status.loc["weeds", "recovery_class"] == "revegetating"


def test_classify_sites__filling_lake_is_revegetating():
    series = {
        "pit": {
            2021: {"winter": 0.1, "peak": 0.1, "flat": 1, "bare": 0.9, "water": 0.0},
            2022: {"winter": 0.1, "peak": 0.1, "flat": 1, "bare": 0.85, "water": 0.05},
            2023: {"winter": 0.05, "peak": 0.05, "flat": 1, "bare": 0.7, "water": 0.25},
        }
    }
    status = _status(series, {"pit": "landscape"})
    assert status.loc["pit", "recovery_class"] == "revegetating"
    assert status.loc["pit", "water_fraction"] == pytest.approx(0.25)


def test_classify_sites__probability_falls_with_fewer_clear_looks():
    full = _series("a", {y: _green() for y in YEARS})
    sparse = full[~full["date"].dt.month.isin([4, 5, 8, 10])].assign(site_id="b")
    cfg = RecoveryConfig()
    sites = _sites({"a": "forest", "b": "forest"})
    features = site_features(pd.concat([full, sparse]), sites, assessed_until=ASSESSED, cfg=cfg)
    classes = classify_sites(features, sites, {}, cfg=cfg)
    assert list(classes["recovery_class"]) == ["restored", "restored"]
    assert 0 < classes.loc["b", "probability"] < classes.loc["a", "probability"] <= 1


def test_site_features__sine_series_by_hand():
    cfg = RecoveryConfig()
    sine = {"winter": 0.2, "peak": 0.8, "veg": 1.0}
    series = _series("s", {2022: sine, 2023: sine})
    feat = site_features(series, _sites({"s": "forest"}), assessed_until=ASSESSED, cfg=cfg).loc["s"]
    # In-season NDVI: 0.5, 0.5, 0.65, 0.65, 0.7598, 0.7598, 0.8 -> p90 = 0.7598 + 0.4 * 0.0402.
    assert feat["latest_peak_ndvi"] == pytest.approx(0.77588, abs=1e-4)
    assert feat["previous_peak_ndvi"] == pytest.approx(0.77588, abs=1e-4)
    # Winter (Jan, Feb, Mar, Nov, Dec 2023): 0.2, 0.2402, 0.35, 0.35, 0.2402 -> median 0.2402.
    assert feat["winter_ndvi"] == pytest.approx(0.24019, abs=1e-4)
    assert feat["seasonal_amplitude"] == pytest.approx(0.77588 - 0.24019, abs=1e-4)
    assert feat["first_season_peak_ndvi"] == pytest.approx(0.77588, abs=1e-4)
    assert feat["best_earlier_peak_ndvi"] == pytest.approx(0.77588, abs=1e-4)  # 2022 season
    assert feat["n_seasons"] == 2
    assert feat["peak_trend_per_year"] == pytest.approx(0.0, abs=1e-9)
    assert feat["peak_change"] == pytest.approx(0.0, abs=1e-9)
    # June-September vegetated share: s = 0.933, 1, 0.933, 0.75 -> median 0.933.
    assert feat["vegetated_fraction"] == pytest.approx(0.933013, abs=1e-4)
    assert feat["n_clear_dates"] == 24
    assert feat["n_clear_latest"] == 12
    assert feat["n_season_latest"] == 7
    # Restoration began 2020-10-01; assessed 2023-12-31.
    assert feat["days_since_restoration_start"] == (ASSESSED - date(2020, 10, 1)).days
    assert feat["bsi_mean"] == pytest.approx(0.1 - series["ndvi_median"].iloc[12:].mean() / 4)


def test_site_features__trend_and_first_season():
    series = _series("r", SERIES["revegetating"])
    feat = site_features(
        series, _sites({"r": "forest"}), assessed_until=ASSESSED, cfg=RecoveryConfig()
    ).loc["r"]
    peaks = [0.1 + 0.15 * S_P90, 0.12 + 0.28 * S_P90, 0.15 + 0.35 * S_P90]
    assert feat["first_season_peak_ndvi"] == pytest.approx(peaks[0], abs=1e-4)
    assert feat["best_earlier_peak_ndvi"] == pytest.approx(peaks[1], abs=1e-4)
    assert feat["latest_peak_ndvi"] == pytest.approx(peaks[2], abs=1e-4)
    assert feat["peak_trend_per_year"] == pytest.approx((peaks[2] - peaks[0]) / 2, abs=1e-4)
    assert feat["vegetated_fraction_change"] == pytest.approx((0.3 - 0.15) * 0.933013, abs=1e-4)


def test_site_features__cloudy_looks_are_ignored():
    clean = _series("c", {y: _green() for y in YEARS})
    cloudy = clean.copy()
    cloudy["valid_fraction"] = 0.1  # below min_clear_fraction 0.3
    cloudy["ndvi_median"] = 0.0
    cloudy["date"] = cloudy["date"] + pd.Timedelta(days=5)
    cfg = RecoveryConfig()
    sites = _sites({"c": "forest"})
    with_clouds = site_features(pd.concat([clean, cloudy]), sites, assessed_until=ASSESSED, cfg=cfg)
    without = site_features(clean, sites, assessed_until=ASSESSED, cfg=cfg)
    pd.testing.assert_frame_equal(with_clouds, without)


def test_site_features__looks_after_assessed_until_are_ignored():
    series = _series("x", {2022: _green(), 2023: BARE})
    feat = site_features(
        series, _sites({"x": "forest"}), assessed_until=date(2022, 12, 31), cfg=RecoveryConfig()
    ).loc["x"]
    assert feat["latest_peak_ndvi"] == pytest.approx(0.3 + 0.55 * S_P90, abs=1e-4)
    assert feat["last_clear_date"] == pd.Timestamp(2022, 12, 15)


def test_site_features__no_data_site(caplog):
    series = _series("empty", {y: _green() for y in YEARS}, valid=0.0)
    series.loc[:, ["ndvi_mean", "ndvi_median", "vegetated_fraction"]] = np.nan
    sites = _sites({"empty": "forest", "absent": "forest"})
    with caplog.at_level(logging.WARNING, logger="pipeline.recovery.features"):
        status = assess_sites(
            series, sites, {}, assessed_until=ASSESSED, cfg=RecoveryConfig()
        ).set_index("site_id")
    for site_id in ("empty", "absent"):
        row = status.loc[site_id]
        assert row["recovery_class"] == "unrestored"
        assert row["probability"] == 0.0
        assert np.isnan(row["vegetated_fraction"])
        assert np.isnan(row["bare_fraction"])
        assert np.isnan(row["water_fraction"])
        assert bool(row["meets_target"]) is False
        assert row["assessed_until"] is None
        assert any(site_id in rec.getMessage() for rec in caplog.records)


def test_site_features__one_row_per_site_with_feature_columns():
    sites = _sites(TARGETS)
    timeseries = pd.concat([_series(k, v) for k, v in SERIES.items()], ignore_index=True)
    features = site_features(timeseries, sites, assessed_until=ASSESSED, cfg=RecoveryConfig())
    assert list(features.index) == list(TARGETS)
    assert tuple(features.columns[: len(FEATURE_COLUMNS)]) == FEATURE_COLUMNS
    assert all(features[c].dtype == "float64" for c in FEATURE_COLUMNS)


def test_site_status_table__columns_and_order_follow_the_contract():
    table = _status(SERIES, TARGETS)
    assert tuple(table.reset_index().columns) == SITE_STATUS_COLUMNS
    assert list(table.index) == sorted(TARGETS)
    assert table["probability"].between(0, 1).all()
    assert set(table["recovery_class"]) <= {
        "unrestored",
        "revegetating",
        "restored",
        "regressed",
        "disturbed",
    }
    restored = table["recovery_class"] == "restored"
    assert (table.loc[~restored, "restored_area_m2"] == 0).all()
    assert (table.loc[restored, "restored_area_m2"] == 20_000.0).all()


def test_classify_sites__no_restoration_begun_is_unrestored_not_regressed():
    # a working pit eating its green margins looks like greening lost, but nothing was
    # restored there: it is unrestored
    timeseries = _series("pit", SERIES["regressed"])
    sites = _sites({"pit": "grassland"})
    sites["restoration_start"] = [None]
    sites["category"], sites["status"] = "licensed", "producing"
    out = assess_sites(
        timeseries, sites, {}, assessed_until=ASSESSED, cfg=RecoveryConfig()
    ).set_index("site_id")
    assert out.loc["pit", "recovery_class"] == "unrestored"
    restoring = _status({"pit": SERIES["regressed"]}, {"pit": "grassland"})
    assert restoring.loc["pit", "recovery_class"] == "regressed"


def test_classify_sites__die_back_late_in_the_season_is_regressed():
    # green for three seasons, then from August of the last year the cover dies back:
    # the season peak (June/July) still meets the target, the recent looks do not
    ts = _series("dieback", {y: _green() for y in YEARS})
    late = pd.to_datetime(ts["date"]) >= pd.Timestamp(2023, 8, 1)
    ts.loc[late, ["ndvi_mean", "ndvi_median"]] = 0.15
    ts.loc[late, "vegetated_fraction"] = 0.05
    out = _status_from(ts, {"dieback": "forest"})
    feat = site_features(
        ts, _sites({"dieback": "forest"}), assessed_until=ASSESSED, cfg=RecoveryConfig()
    ).loc["dieback"]
    # Oct-Dec 2023 at 0.15 against Oct-Dec 2022 of the healthy seasonal curve
    expected = 0.15 - float(np.median([0.3 + 0.55 * _shape(m) for m in (10, 11, 12)]))
    assert feat["recent_ndvi_change"] == pytest.approx(expected, abs=1e-6)
    assert out.loc["dieback", "recovery_class"] == "regressed"
    healthy = _status_from(_series("ok", {y: _green() for y in YEARS}), {"ok": "forest"})
    assert healthy.loc["ok", "recovery_class"] == "restored"


def _status_from(ts: pd.DataFrame, targets: dict[str, str]) -> pd.DataFrame:
    return assess_sites(
        ts, _sites(targets), {}, assessed_until=ASSESSED, cfg=RecoveryConfig()
    ).set_index("site_id")
