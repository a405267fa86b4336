"""The generator's training options: drought / wet years and the extra training cast."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from pipeline.scenes import LANDCOVER_CODES
from pipeline.scenes.cast import Plan, restoration_trajectory
from pipeline.scenes.surface import surface_reflectance
from pipeline.scenes.world import build_world

SHAPE = (300, 360)
START, END = date(2020, 6, 1), date(2023, 9, 30)


@pytest.fixture(scope="module")
def worlds():
    plain = build_world(5000, SHAPE, START, END)
    climate = build_world(5000, SHAPE, START, END, climate=0.2)
    return plain, climate


def _forest_ndvi(world, when: date) -> float:
    r = surface_reflectance(world, (when - world.start).days, when.timetuple().tm_yday)
    forest = (world.landcover.ravel() == LANDCOVER_CODES["forest"]) & (world.phen == 1)
    nir, red = r[3, forest], r[2, forest]
    return float(np.median((nir - red) / (nir + red)))


def test_climate__off_by_default_and_same_layout(worlds):
    plain, climate = worlds
    assert plain.vigour == {}
    assert plain.truth["climate"] == {}
    assert [s["site_id"] for s in plain.sites] == [s["site_id"] for s in climate.sites]
    assert set(climate.vigour) == {2020, 2021, 2022, 2023}
    assert all(0.55 <= v <= 1.3 for v in climate.vigour.values())


def test_climate__a_dry_summer_is_browner_and_a_wet_one_greener(worlds):
    plain, climate = worlds
    checked = 0
    for year, vigour in climate.vigour.items():
        when = date(year, 7, 20)
        if not START <= when <= END or abs(vigour - 1) < 0.05:
            continue
        change = _forest_ndvi(climate, when) - _forest_ndvi(plain, when)
        assert np.sign(change) == np.sign(vigour - 1), (year, vigour, change)
        checked += 1
    assert checked >= 2


def test_extra_sites__training_cast_covers_every_class():
    base = build_world(5001, SHAPE, START, END)
    more = build_world(5001, SHAPE, START, END, extra_sites=16)
    assert len(more.truth["sites"]) == len(base.truth["sites"]) + 16
    classes = {s["recovery_class"] for s in more.truth["sites"]}
    assert classes == {"unrestored", "revegetating", "restored", "regressed", "disturbed"}
    assert any(s["netting"] for s in more.truth["sites"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trajectory__landscape_lake_per_class(seed):
    days_total = 1200

    def cover(klass: str, day: float) -> float:
        plan = Plan("orphaned", "restoring", klass, "landscape", "lake", (1, 5))
        _, (days, values) = restoration_trajectory(np.random.default_rng(seed), plan, days_total)
        return float(np.interp(day, days, values))

    # Restored and later dug: full of water well before the end.
    assert cover("restored", 0.6 * days_total) == 1.0
    assert cover("disturbed", 0.5 * days_total) == 1.0
    # Still filling: dry for the first 60 % of the record, wetter to the very end.
    assert cover("revegetating", 0.55 * days_total) == 0.0
    assert 0.0 < cover("revegetating", days_total - 30) < 1.0
    # Regressed: was full, drained to a tenth by the end.
    assert cover("regressed", 0.5 * days_total) == 1.0
    assert cover("regressed", days_total) == pytest.approx(0.1)
