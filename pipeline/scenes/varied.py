"""The varied scene family: standard's county with its physics drawn anew for every seed.

The recovery model learns from generated scenes. Trained on ``standard`` alone it
learnt the standard physics' levels: a restored grassland peaks at NDVI ~0.6 there, so a
grassland that peaks at 0.45-0.5 (a drier climate, a soil that shows through, another
grass) looked to it like one dying back, whatever its history said. ``varied`` keeps
standard's layout, cast, clouds and files and draws, per seed, the surfaces a model must
not rely on (domain randomisation):

- **Soils** (forest floor, field and grassland soil, weathered ground): brightness
  x 0.85-1.35 and a tint from grey to yellow or red (red x 1-1.45, blue x 0.7-1).
- **Canopies** (forest, crops, grass): near infrared x 0.85-1.05, red x 0.9-1.3.
- **Phenology**: each class's summer cover x 0.7-1.05, its winter cover raised by up to
  0.4 of the gap to summer (from deciduous towards evergreen, from a brown to a green
  winter; fields are still bare after each harvest), and its calendar shifted by up
  to +/- 25 days; the crop calendar runs up to +/- 10 days late or early each year.

Each draw is in ``truth.json``'s marker (``physics``). The ranges are those of real
surfaces (grey, yellow and red soils; dry and lush grass; deciduous and evergreen
woods), not of any one family: the loess family is evaluated, never trained on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np

from pipeline.scenes.standard import revisit_dates
from pipeline.scenes.surface import CROP, EM, PHEN, STANDARD, Physics, crop_calendar_shift
from pipeline.scenes.world import build_world
from pipeline.scenes.writing import (
    ScenarioPaths,
    check_arguments,
    marker_fields,
    prepare_folder,
    write_scenario,
)

log = logging.getLogger(__name__)

FAMILY = "varied"
GENERATOR_VERSION = 1

SOILS = ("forest_floor", "farm_soil", "grass_soil", "weathered")
CANOPIES = ("forest_canopy", "crop_canopy", "grass_canopy")
CROP_YEAR_SHIFT = 10.0  # days, at most, the crop calendar runs late or early in a year
# Days of the year a varied phenology curve is given at (its knots).
_CURVE_DAYS = np.arange(0.0, 367.0, 5.0)


def _shifted_curve(
    knots: tuple[tuple[float, ...], tuple[float, ...]], shift: float, amp: float, lift: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A cover curve ``shift`` days later, its summer ``amp`` times, its winter lifted."""
    kx, ky = (np.asarray(k, float) for k in knots)
    low, high = ky.min(), ky.max() * amp
    cover = np.interp((_CURVE_DAYS - shift) % 365.0, kx, ky)
    cover = low + (cover - ky.min()) / max(ky.max() - ky.min(), 1e-6) * (high - low)
    cover = np.maximum(cover, low + lift * (high - low))
    return tuple(_CURVE_DAYS.tolist()), tuple(np.round(cover, 4).tolist())


def varied_physics(seed: int) -> tuple[Physics, dict]:
    """The physics of seed ``seed`` and the draw that made it (for the marker)."""
    rng = np.random.default_rng([seed, 41])
    em = dict(EM)
    draw: dict[str, object] = {}
    for name in SOILS:
        bright, red, blue = rng.uniform(0.85, 1.35), rng.uniform(1.0, 1.45), rng.uniform(0.7, 1)
        b, g, r, n, s1, s2 = (v * bright for v in EM[name])
        em[name] = tuple(round(min(v, 0.6), 4) for v in (b * blue, g, r * red, n, s1, s2))
        draw[name] = [round(bright, 3), round(red, 3), round(blue, 3)]
    for name in CANOPIES:
        nir, red = rng.uniform(0.85, 1.05), rng.uniform(0.9, 1.3)
        b, g, r, n, s1, s2 = EM[name]
        em[name] = (b, g, round(r * red, 4), round(n * nir, 4), s1, s2)
        draw[name] = [round(nir, 3), round(red, 3)]
    phen = {}
    for cls, knots in PHEN.items():
        shift, amp, lift = rng.uniform(-25, 25), rng.uniform(0.7, 1.05), rng.uniform(0, 0.4)
        lift *= cls != CROP  # fields stay bare after each harvest
        phen[cls] = _shifted_curve(knots, shift, amp, lift)
        draw[f"phenology_{cls}"] = [round(shift, 1), round(amp, 3), round(lift, 3)]
    notes = {
        "harvest": "farmland bare after each harvest; the calendar is the seed's own",
        "leaf_off": "forest winter cover drawn per seed (deciduous to evergreen)",
    }
    return replace(STANDARD, endmembers=em, phenology=phen, notes=notes), draw


def generate_scenario(
    out_dir: Path,
    *,
    seed: int = 2024,
    start: date = date(2021, 3, 1),
    end: date = date(2024, 10, 31),
    revisit_days: int = 10,
    cloud_scale: float = 1.0,
    shape: tuple[int, int] = (400, 480),
    climate: float = 0.0,
    extra_sites: int = 0,
    hard_cases: bool = False,
) -> ScenarioPaths:
    """Write a varied-physics scenario (same files as ``standard``) under ``out_dir``.

    The arguments mean what they mean for ``standard.generate_scenario``.
    Deterministic: the same arguments give byte-identical files.
    """
    check_arguments(shape, start, end, revisit_days)
    paths = prepare_folder(Path(out_dir))
    physics, draw = varied_physics(seed)
    world = build_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites,
                        physics=physics, hard_cases=hard_cases,
                        crop_shift=crop_calendar_shift(seed, start, end, stream=43,
                                                       most=CROP_YEAR_SHIFT))  # fmt: skip
    dates = revisit_dates(start, end, revisit_days, np.random.default_rng([seed, 3]))
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
        "physics": draw,
    }
    if hard_cases:
        marker["hard_cases"] = True
    write_scenario(paths, world, dates, seed=seed, marker=marker, cloud_scale=cloud_scale)
    log.info("varied scenario seed %d: %d items written to %s", seed, len(dates), paths.root)
    return paths
