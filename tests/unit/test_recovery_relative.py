"""Ring-relative recovery features on hand-built series with known answers.

The series are those of ``test_recovery`` (monthly, 2021-2023, assessed 2023-12-31;
a season's 90th percentile is ``winter + (peak - winter) * S_P90``). Every ring is
natural forest (winter 0.3, peak 0.85) unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from pipeline.config import RecoveryConfig
from pipeline.recovery.relative import MODEL_FEATURES, RING_PEAK_FLOOR, model_features
from pipeline.recovery.rings import RING_SUFFIX, ring_geometries, split_rings
from tests.unit.test_recovery import ASSESSED, BARE, NETTING, S_P90, YEARS, _green, _series

FOREST = {y: _green() for y in YEARS}
RING_PEAK = 0.3 + 0.55 * S_P90


def _drought(season: dict, peak: float) -> dict:
    return {**season, "peak": peak}


def _features(series: dict, rings: dict, *, targets=None, starts=None, disturbed=None):
    ts = pd.concat([_series(sid, s) for sid, s in series.items()], ignore_index=True)
    rs = pd.concat([_series(sid, s) for sid, s in rings.items()], ignore_index=True)
    ids = list(series)
    sites = pd.DataFrame(
        {
            "site_id": ids,
            "target": [(targets or {}).get(s, "forest") for s in ids],
            "restoration_start": [(starts or {}).get(s, date(2021, 1, 1)) for s in ids],
        }
    )
    return model_features(
        ts, rs, sites, disturbed or {}, assessed_until=ASSESSED, cfg=RecoveryConfig()
    )


def test_model_features__restored_site_matches_its_ring():
    f = _features({"a": FOREST}, {"a": FOREST}).loc["a"]
    assert f["ring_peak_ndvi"] == pytest.approx(RING_PEAK)
    assert f["recovery_ratio"] == pytest.approx(1.0)
    assert f["previous_recovery_ratio"] == pytest.approx(1.0)
    assert f["best_earlier_ratio"] == pytest.approx(1.0)
    assert f["ratio_drop"] == pytest.approx(0.0)
    assert f["ring_gap_core"] == pytest.approx(0.0)


def test_model_features__drought_year_keeps_the_ratio():
    # 2023 is dry: site and ring both peak at 0.65 instead of 0.85.
    dry = {**FOREST, 2023: _drought(FOREST[2023], 0.65)}
    f = _features({"a": dry}, {"a": dry}).loc["a"]
    assert f["peak_change"] == pytest.approx(-0.2 * S_P90)  # alone, it looks like a loss
    assert f["ring_peak_change"] == pytest.approx(-0.2 * S_P90)
    assert f["recovery_ratio"] == pytest.approx(1.0)
    assert f["recovery_ratio_change"] == pytest.approx(0.0)
    assert f["recent_gap_change"] == pytest.approx(0.0)


def test_model_features__regressed_site_loses_ratio_against_green_ring():
    # Green in 2021-2022, dies back in 2023 (peak 0.4) while its ring stays green.
    dying = {**FOREST, 2023: {"winter": 0.3, "peak": 0.4, "veg": 0.1, "bare": 0.3}}
    f = _features({"a": dying}, {"a": FOREST}).loc["a"]
    ratio = (0.3 + 0.1 * S_P90) / RING_PEAK
    assert f["recovery_ratio"] == pytest.approx(ratio)
    assert f["best_earlier_ratio"] == pytest.approx(1.0)
    assert f["ratio_drop"] == pytest.approx(1.0 - ratio)
    # Oct-Dec gap is -0.45 s with s = 0.5, 0.25, 0.067 (median 0.25); a year before, 0.
    assert f["recent_gap_change"] == pytest.approx(-0.45 * 0.25)


def test_model_features__netting_is_flat_and_bright_in_swir():
    f = _features({"n": {y: NETTING for y in YEARS}}, {"n": FOREST}).loc["n"]
    assert f["ndvi_spread"] == pytest.approx(0.0)
    assert f["core_bsi_median"] == pytest.approx(0.15)
    assert f["recovery_ratio"] == pytest.approx(0.3 / RING_PEAK)
    assert f["seasonal_amplitude"] == pytest.approx(0.0)


def test_model_features__bare_ring_is_floored():
    bare_ring = {y: BARE for y in YEARS}
    f = _features({"a": FOREST}, {"a": bare_ring}).loc["a"]
    assert f["ring_peak_ndvi"] == pytest.approx(0.1)
    assert f["recovery_ratio"] == pytest.approx(RING_PEAK / RING_PEAK_FLOOR)


def test_model_features__target_dug_share_and_start():
    f = _features(
        {"a": FOREST, "b": {y: BARE for y in YEARS}},
        {"a": FOREST},  # b has no ring at all
        targets={"b": "landscape"},
        starts={"b": None},
        disturbed={"a": 0.12},
    )
    assert list(f.columns[: len(MODEL_FEATURES)]) == list(MODEL_FEATURES)
    assert f.loc["a", "disturbed_fraction"] == 0.12
    assert f.loc["b", "disturbed_fraction"] == 0.0
    assert f.loc["a", "restoration_started"] == 1.0
    assert f.loc["b", "restoration_started"] == 0.0
    assert f.loc["a", ["target_forest", "target_landscape"]].tolist() == [1.0, 0.0]
    assert f.loc["b", ["target_forest", "target_landscape"]].tolist() == [0.0, 1.0]
    assert np.isnan(f.loc["b", "recovery_ratio"])  # no ring: unknown, not zero


def test_ring_geometries__exclude_every_site():
    a = Point(0, 0).buffer(100)
    b = Point(260, 0).buffer(100)  # 60 m away: inside a's ring reach
    ids, rings = ring_geometries(["a", "b"], [a, b])
    assert ids == ["a" + RING_SUFFIX, "b" + RING_SUFFIX]
    assert not rings[0].intersects(a.buffer(19.9))
    assert not rings[0].intersects(b.buffer(19.9))
    assert rings[0].area < a.buffer(150).area - a.buffer(20).area  # b took its bite
    assert rings[0].within(box(-250, -250, 250, 250))


def test_split_rings__restores_site_ids():
    ts = pd.DataFrame({"site_id": ["a", "a" + RING_SUFFIX, "b"], "v": [1, 2, 3]})
    sites, rings = split_rings(ts)
    assert sites["site_id"].tolist() == ["a", "b"]
    assert rings["site_id"].tolist() == ["a"]
    assert rings["v"].tolist() == [2]


def test_model_features__revegetating_site_gains_on_its_ring():
    # Peaks 0.25 -> 0.4 -> 0.5 under a ring that stays the same forest.
    growing = {
        2021: {"winter": 0.1, "peak": 0.25},
        2022: {"winter": 0.12, "peak": 0.4},
        2023: {"winter": 0.15, "peak": 0.5},
    }
    f = _features({"r": growing}, {"r": FOREST}).loc["r"]
    now, before = 0.15 + 0.35 * S_P90, 0.12 + 0.28 * S_P90
    assert f["recovery_ratio"] == pytest.approx(now / RING_PEAK)
    assert f["recovery_ratio_change"] == pytest.approx((now - before) / RING_PEAK)
    assert f["first_season_ratio"] == pytest.approx((0.1 + 0.15 * S_P90) / RING_PEAK)
    assert f["ratio_drop"] < 0  # above every earlier season: no loss
