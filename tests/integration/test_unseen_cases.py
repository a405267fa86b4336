"""Digs the standard generator never made, on a scene of other physics (the loess family).

One small loess scene (red-soil hills, loess fields, cumulus clouds with wide missed
edges, a 5-day revisit) holds every hard case: a dig in the imagery's first months, a
red-soil dig in October, a loess dig in a no-mining zone, a dig into a field after its
harvest; and the distractors: harvests whose dates move from year to year, a burn
scar. Each test asserts the flag (or its absence), its date and its class.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from shapely.geometry import shape

from pipeline import schema
from pipeline.cli import main
from pipeline.scenes import ScenarioPaths, generate_family
from tests.integration.conftest import run_args

SEED = 11
PERIOD = {"shape": (200, 240), "start": date(2021, 3, 1), "end": date(2022, 11, 30)}


@pytest.fixture(scope="module")
def loess_scene(tmp_path_factory: pytest.TempPathFactory) -> ScenarioPaths:
    return generate_family("loess", tmp_path_factory.mktemp("loess"), seed=SEED, **PERIOD)


@pytest.fixture(scope="module")
def loess_run(loess_scene: ScenarioPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loess-run")
    assert main(run_args(loess_scene, out)) == 0
    return out


def _truth(scene: ScenarioPaths) -> dict:
    return json.loads(scene.truth.read_text(encoding="utf-8"))


def _flags(out: Path) -> list[dict]:
    return json.loads((out / schema.FLAGS_FILE).read_text())["features"]


def _dig(scene: ScenarioPaths, case: str) -> dict:
    [dig] = [d for d in _truth(scene)["digs"] if d.get("case") == case]
    return dig


def _flag_on(out: Path, dig: dict) -> dict:
    """The properties of the one flag over ``dig``."""
    area = shape(dig["geometry"])
    hits = [f["properties"] for f in _flags(out) if shape(f["geometry"]).intersects(area)]
    assert len(hits) == 1, (dig["dig_id"], hits)
    return hits[0]


def _days_after_start(flag: dict, dig: dict) -> int:
    return (date.fromisoformat(flag["first_detected"]) - date.fromisoformat(dig["start"])).days


def test_loess__dig_in_the_first_months_is_flagged_without_seasonal_history(loess_scene, loess_run):
    dig = _dig(loess_scene, "first_months")
    assert date.fromisoformat(dig["start"]) < PERIOD["start"] + timedelta(days=120)
    flag = _flag_on(loess_run, dig)
    assert 0 <= _days_after_start(flag, dig) <= 45
    assert flag["seasonal_history"] is False
    assert flag["confirmed"] is not None


def test_loess__red_soil_dig_in_october_is_flagged_that_autumn(loess_scene, loess_run):
    dig = _dig(loess_scene, "red_soil_autumn")
    assert dig["material"] == "red_soil"
    assert date.fromisoformat(dig["start"]).month == 10
    flag = _flag_on(loess_run, dig)
    assert 0 <= _days_after_start(flag, dig) <= 30
    assert flag["violation"] == dig["violation"]
    assert flag["level"] == "high"


def test_loess__loess_dig_in_a_zone_is_a_no_mining_zone_flag(loess_scene, loess_run):
    dig = _dig(loess_scene, "loess_zone")
    assert dig["material"] == "loess"
    assert dig["violation"] == "no_mining_zone"
    flag = _flag_on(loess_run, dig)
    assert 0 <= _days_after_start(flag, dig) <= 45
    assert flag["violation"] == "no_mining_zone"
    assert flag["zone_ids"] == dig["zone_ids"]


def test_loess__dig_into_a_field_after_harvest_is_flagged_from_its_bare_spell(
    loess_scene, loess_run
):
    dig = _dig(loess_scene, "farmland_dig")
    assert dig["landcover_before"] == "farmland"
    flag = _flag_on(loess_run, dig)
    # dated from the field's bare spell, which may begin a few days before the dig
    assert abs(_days_after_start(flag, dig)) <= 30
    assert flag["confirmed"] is not None


def test_loess__no_flag_on_harvests_moved_by_the_year_nor_on_the_burn_scar(loess_scene, loess_run):
    truth = _truth(loess_scene)
    digs = [shape(d["geometry"]) for d in truth["digs"]]
    flags = [shape(f["geometry"]) for f in _flags(loess_run)]
    assert len(flags) >= 6
    assert all(any(f.intersects(d) for d in digs) for f in flags), "a flag on no dig"
    distractors = [
        shape(c["geometry"])
        for c in truth["confounders"]
        if c["kind"] in ("harvest", "burn_scar") and c.get("geometry")
    ]
    assert distractors
    assert not any(f.intersects(d) for f in flags for d in distractors)


def test_loess__dig_seen_once_before_the_end_is_low_then_confirmed_keeping_its_id(
    loess_scene, loess_run, tmp_path
):
    # End the imagery the day before a later look confirmed the permit's new dig (its
    # second year: seasonal history exists): it is flagged at once, low and unconfirmed;
    # the next run, with the later looks, confirms it in the same workspace, same id.
    [dig] = [d for d in _truth(loess_scene)["digs"] if d["violation"] == "within_permit"]
    full = _flag_on(loess_run, dig)
    assert full["confirmed"] > full["first_detected"]
    end = date.fromisoformat(full["confirmed"]) - timedelta(days=1)
    out = tmp_path / "ws"
    assert main(run_args(loess_scene, out, "--end", end.isoformat())) == 0
    early = _flag_on(out, dig)
    assert early["first_detected"] == full["first_detected"]
    assert early["confirmed"] is None
    assert early["level"] == "low"
    assert early["confidence"] < 0.7

    assert main(run_args(loess_scene, out)) == 0
    later = _flag_on(out, dig)
    assert later["flag_id"] == early["flag_id"]
    assert later["first_detected"] == full["first_detected"]
    assert later["confirmed"] == full["confirmed"]
    assert later["level"] == "high"
