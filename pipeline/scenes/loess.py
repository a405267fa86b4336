"""The loess scene family: a county of loess uplands and red-soil hills, other physics.

The standard family is both the recovery model's training set and the detector's test
set, so its figures flatter us. ``loess`` keeps the layout, the cast and the files of
``standard`` and changes what a detector and a model could have learnt from it:

- **Soils.** Farmland and grassland lie on yellow loess (blue 0.10, green 0.15, red
  0.20, nir 0.27, swir16 0.35, swir22 0.31; NDVI ~0.15); the wooded hills and the
  red-soil patches on red soil (red 0.17-0.19, nir 0.25-0.27; NDVI ~0.18-0.2). White
  limestone outcrops stay as in ``standard``.
- **Canopies.** Evergreen and mixed forest with a weak winter dip (cover 0.45 -> 0.72,
  NDVI ~0.5 in winter, ~0.7 in summer); wheat and maize; a dry-season grassland.
- **Digs.** Each dig is red soil (NDVI 0.16-0.22), yellow loess (NDVI 0.12-0.17), grey
  rock or white limestone, brightness +/- 15 % per dig, 8 % darker while moist (the
  first 20 days). Fresh red soil and loess are the hills' and fields' own soils: no
  standard ``dig`` spectrum (NDVI ~0.09) to recognise.
- **Phenology.** Winter wheat harvested late May-early June, summer maize late
  September; the whole crop calendar runs up to +/- 12 days late or early each calendar
  year, each parcel +/- 10 days more. Farmland lies bare ~3 weeks after each harvest.
- **Clouds.** Fields of small cumulus cells (clusters of discs) instead of smooth blobs;
  the SCL misses a 1-4 px ring around every cell; thin unflagged haze on a quarter of the
  scenes; shadows cast north-east; scene cloud fraction 25-60 % by season (wettest in
  July-August). A pass every 5 days, 8 % of the passes missing.
- **Hard cases**, always: the digs of ``hard_cases`` (each dig carries its ``case``)
  and 1-2 restorations that die back early.

The burn scar, the baseline offset and the encoding are those of ``standard``.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pipeline.scenes.atmosphere import CloudModel
from pipeline.scenes.surface import EM, Physics, World, crop_calendar_shift
from pipeline.scenes.world import build_world
from pipeline.scenes.writing import (
    ScenarioPaths,
    check_arguments,
    marker_fields,
    prepare_folder,
    write_scenario,
)

log = logging.getLogger(__name__)

FAMILY = "loess"
GENERATOR_VERSION = 2  # 2: a dig in an expired permit's polygon is ``outside_permit``

# Endmember reflectances: blue, green, red, nir, swir16, swir22 (names as in ``EM``).
LOESS_EM = {
    **EM,
    "forest_canopy": (0.022, 0.050, 0.028, 0.33, 0.16, 0.070),  # evergreen/mixed
    "forest_floor": (0.060, 0.095, 0.170, 0.25, 0.32, 0.26),  # red soil, NDVI 0.19
    "crop_canopy": (0.028, 0.065, 0.034, 0.40, 0.21, 0.095),
    "farm_soil": (0.100, 0.150, 0.200, 0.27, 0.35, 0.31),  # yellow loess, NDVI 0.15
    "grass_canopy": (0.032, 0.068, 0.040, 0.33, 0.22, 0.11),
    "grass_soil": (0.095, 0.140, 0.185, 0.26, 0.34, 0.30),  # weathered loess
    "red_soil": (0.060, 0.100, 0.180, 0.26, 0.33, 0.28),  # NDVI 0.18
    "pit": (0.150, 0.175, 0.200, 0.25, 0.32, 0.28),
    "weathered": (0.110, 0.140, 0.175, 0.23, 0.31, 0.27),
    "waste": (0.175, 0.200, 0.225, 0.27, 0.33, 0.29),
    "dig_red_soil": (0.060, 0.105, 0.210, 0.305, 0.36, 0.30),  # NDVI 0.18, BSI 0.21
    "dig_loess": (0.105, 0.155, 0.215, 0.285, 0.37, 0.33),  # NDVI 0.14, BSI 0.20
    "dig_rock": (0.160, 0.185, 0.210, 0.25, 0.32, 0.29),  # grey rock: NDVI 0.09, BSI 0.13
}
# Phenology: (day of year knots, fractional green cover).
LOESS_PHEN = {
    1: ((0, 60, 110, 150, 280, 320, 366),
        (0.45, 0.42, 0.60, 0.72, 0.72, 0.50, 0.45)),  # evergreen/mixed forest
    2: ((0, 45, 75, 100, 128, 142, 150, 170, 182, 200, 222, 245, 258, 266, 288, 305, 330, 366),
        (0.25, 0.25, 0.50, 0.82, 0.85, 0.45, 0.02, 0.02, 0.15, 0.70, 0.90, 0.72, 0.35, 0.02,
         0.02, 0.15, 0.25, 0.25)),  # winter wheat (harvest ~1 June), summer maize (~23 Sept)
    3: ((0, 60, 130, 185, 240, 290, 330, 366),
        (0.15, 0.12, 0.16, 0.50, 0.62, 0.40, 0.20, 0.15)),  # grassland, dry spring low
}  # fmt: skip
LOESS = Physics(
    LOESS_EM,
    LOESS_PHEN,
    {"red_soil": ("dig_red_soil", 0.85, 1.15), "loess": ("dig_loess", 0.85, 1.15),
     "grey_rock": ("dig_rock", 0.85, 1.15), "limestone": ("dig_limestone", 0.9, 1.1)},
    dig_draw=(("red_soil", 0.35), ("loess", 0.35), ("grey_rock", 0.2), ("limestone", 0.1)),
    moist=(0.92, 20),
    notes={"harvest": "farmland bare ~3 weeks after the wheat harvest (late May-early June) "
                      "and after the maize harvest (late September); the calendar shifts "
                      "+/- 12 days from year to year",
           "leaf_off": "evergreen/mixed forest: weak winter dip, NDVI ~0.5 in winter"},
)  # fmt: skip
CUMULUS = CloudModel(
    cumulus=True,
    season=(0.25, 0.35, 215.0, 55.0),
    shadow=(1, -1),  # north-east: up and right
    ring=(1, 5),
    haze=(0.25, 0.01, 0.035),
)
CROP_YEAR_SHIFT = 12.0  # days the crop calendar runs late or early, at most, per year
PARCEL_SHIFT = 10.0  # days each parcel's calendar differs from the county's
MISSING_PASS = 0.08  # share of the 5-day passes with no acquisition


def acquisition_dates(start: date, end: date, revisit_days: int,
                      rng: np.random.Generator) -> list[date]:  # fmt: skip
    """A pass every ``revisit_days`` from ``start``, some of them missing."""
    out, d = [], start
    while d <= end:
        if rng.random() >= MISSING_PASS:
            out.append(d)
        d += timedelta(days=revisit_days)
    return out


def build_loess_world(seed: int, shape: tuple[int, int], start: date, end: date, *,
                      climate: float = 0.0, extra_sites: int = 0) -> World:  # fmt: skip
    """The world of a loess scenario (what ``generate_scenario`` renders and writes)."""
    return build_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites,
                       physics=LOESS, hard_cases=True, parcel_shift=PARCEL_SHIFT,
                       crop_shift=crop_calendar_shift(seed, start, end, stream=17,
                                                      most=CROP_YEAR_SHIFT))  # fmt: skip


def generate_scenario(
    out_dir: Path,
    *,
    seed: int = 2024,
    start: date = date(2021, 3, 1),
    end: date = date(2024, 10, 31),
    revisit_days: int = 5,
    cloud_scale: float = 1.0,
    shape: tuple[int, int] = (400, 480),
    climate: float = 0.0,
    extra_sites: int = 0,
) -> ScenarioPaths:
    """Write a loess-county scenario (same files as ``standard``) under ``out_dir``.

    The arguments mean what they mean for ``standard.generate_scenario``; the hard cases
    are always drawn. Deterministic: the same arguments give byte-identical files.
    """
    check_arguments(shape, start, end, revisit_days)
    paths = prepare_folder(Path(out_dir))
    world = build_loess_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites)
    dates = acquisition_dates(start, end, revisit_days, np.random.default_rng([seed, 3]))
    marker = {
        "family": FAMILY,
        **marker_fields(
            version=GENERATOR_VERSION,
            seed=seed,
            shape=shape,
            start=start,
            end=end,
            n_items=len(dates),
            climate=climate,
            extra_sites=extra_sites,
        ),
        "crop_shift": {str(y): v for y, v in world.crop_shift.items()},
    }
    write_scenario(paths, world, dates, seed=seed, marker=marker, cloud_scale=cloud_scale,
                   clouds=CUMULUS)  # fmt: skip
    log.info("loess scenario seed %d: %d items written to %s", seed, len(dates), paths.root)
    return paths
