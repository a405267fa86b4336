"""The standard scene family: the demo county and its seeded variants.

``generate_scenario(out_dir, seed=...)`` writes a static STAC catalog of COGs plus the
site, permit, zone and AOI vector files and a ``truth.json`` answer key. The default
seed (``DEMO_SEED``) is the demo; fresh seeds give fresh layouts, landscape mixes and
cloud histories for honest accuracy evaluation. The physics is documented in
``surface`` (surfaces, restoration, climate), ``cast`` (the training cast),
``digs`` and ``atmosphere`` (clouds and SCL); the encoding in ``writing``. With
``hard_cases=True`` (the evaluation) the scene also holds the digs and sites of
``hard_cases`` and every dig its ``case``; by default it is as it always was.

A ``.complete`` marker (JSON, written last) tells ``ensure_demo_data`` the folder is whole.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pipeline.scenes.world import build_world
from pipeline.scenes.writing import (
    MARKER,
    ScenarioPaths,
    check_arguments,
    marker_fields,
    prepare_folder,
    write_scenario,
)

log = logging.getLogger(__name__)

DEMO_SEED = 2024
# Bumped when what a seed writes changes, labels included, so ``ensure_demo_data``
# writes the demo again: 2 = dug suspended and closed illegal sites are ``disturbed``;
# a free dig within 100 m of a licensed permit is ``outside_permit``; 3 = so is a dig in
# a permit's polygon after the permit expired.
GENERATOR_VERSION = 3


def revisit_dates(
    start: date, end: date, revisit_days: int, rng: np.random.Generator
) -> list[date]:
    out, d = [], start
    while d <= end:
        j = d + timedelta(days=int(rng.integers(0, 2)))
        if j <= end and (not out or j > out[-1]):
            out.append(j)
        d += timedelta(days=revisit_days)
    return out


def generate_scenario(
    out_dir: Path,
    *,
    seed: int = DEMO_SEED,
    start: date = date(2021, 3, 1),
    end: date = date(2024, 10, 31),
    revisit_days: int = 10,
    cloud_scale: float = 1.0,
    shape: tuple[int, int] = (400, 480),
    climate: float = 0.0,
    extra_sites: int = 0,
    hard_cases: bool = False,
) -> ScenarioPaths:
    """Write a synthetic scenario (STAC catalog of COGs, vectors, truth) under ``out_dir``.

    ``climate`` (yearly vegetation vigour spread, 0 = every year alike),
    ``extra_sites`` (more sites for training the recovery model) and ``hard_cases`` (the
    digs and sites of ``hard_cases``, each dig labelled with its ``case``; for the
    evaluation) are described in the module docstring; their defaults leave the scenario
    as it always was.

    Deterministic: the same arguments give byte-identical files. The ``.complete``
    marker is removed first and written last, so a crash leaves an incomplete folder.
    """
    check_arguments(shape, start, end, revisit_days)
    paths = prepare_folder(Path(out_dir))
    world = build_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites,
                        hard_cases=hard_cases)  # fmt: skip
    dates = revisit_dates(start, end, revisit_days, np.random.default_rng([seed, 3]))
    marker = marker_fields(version=GENERATOR_VERSION, seed=seed, shape=shape, start=start,
                           end=end, n_items=len(dates), climate=climate,
                           extra_sites=extra_sites)  # fmt: skip
    if hard_cases:
        marker["hard_cases"] = True
    write_scenario(paths, world, dates, seed=seed, marker=marker, cloud_scale=cloud_scale)
    log.info("scenario seed %d: %d items written to %s", seed, len(dates), paths.root)
    return paths


def ensure_demo_data(data_dir: Path) -> ScenarioPaths:
    """The demo scenario under ``data_dir``, generated (default seed) unless complete."""
    data_dir = Path(data_dir)
    marker = data_dir / MARKER
    try:
        info = json.loads(marker.read_text())
        if info.get("generator_version") == GENERATOR_VERSION and info.get("seed") == DEMO_SEED:
            return ScenarioPaths.under(data_dir)
    except (OSError, ValueError):
        pass
    log.info("generating the demo scenario in %s", data_dir)
    return generate_scenario(data_dir, seed=DEMO_SEED)
