"""The standard scene family: the demo county and its seeded variants.

``generate_scenario(out_dir, seed=...)`` writes a static STAC catalog of COGs plus the
site, permit, zone and AOI vector files and a ``truth.json`` answer key. The default
seed (``DEMO_SEED``) is the demo; fresh seeds give fresh layouts, landscape mixes and
cloud histories for honest accuracy evaluation. The physics is documented in
``surface`` (surfaces, restoration, climate), ``cast`` (the training cast),
``layout`` (digs) and ``atmosphere`` (clouds and SCL); the encoding in ``writing``.

A ``.complete`` marker (JSON, written last) tells ``ensure_demo_data`` the folder is whole.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Point, mapping
from shapely.ops import unary_union

from pipeline.scenes.atmosphere import render
from pipeline.scenes.grid import EPSG, LANDCOVER_CODES, ORIGIN, PIXEL, iso_date, to_wgs84
from pipeline.scenes.world import build_world
from pipeline.scenes.writing import (
    ScenarioPaths,
    wgs84_mapping,
    write_feature_collection,
    write_item,
    write_tif,
)

log = logging.getLogger(__name__)

DEMO_SEED = 2024
GENERATOR_VERSION = 1
MARKER = ".complete"


def _dates(start: date, end: date, revisit_days: int, rng: np.random.Generator) -> list[date]:
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
) -> ScenarioPaths:
    """Write a synthetic scenario (STAC catalog of COGs, vectors, truth) under ``out_dir``.

    ``climate`` (yearly vegetation vigour spread, 0 = every year alike) and
    ``extra_sites`` (more sites for training the recovery model) are described in the
    module docstring; their defaults leave the scenario as it always was.

    Deterministic: the same arguments give byte-identical files. The ``.complete``
    marker is removed first and written last, so a crash leaves an incomplete folder.
    """
    h, w = shape
    if h % 2 or w % 2 or h < 100 or w < 100:
        raise ValueError(f"shape must be even and at least 100 x 100, got {shape}")
    if end <= start or revisit_days < 1:
        raise ValueError("need start < end and revisit_days >= 1")
    out = Path(out_dir)
    paths = ScenarioPaths.under(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    cat_dir = paths.catalog.parent
    if cat_dir.exists():
        shutil.rmtree(cat_dir)
    world = build_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites)
    dates = _dates(start, end, revisit_days, np.random.default_rng([seed, 3]))
    x0, y1 = ORIGIN
    box = shapely.box(x0, y1 - h * PIXEL, x0 + w * PIXEL, y1)
    fp = to_wgs84(box)
    footprint, bbox = mapping(fp), [round(v, 7) for v in fp.bounds]
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    confounders = world.truth["confounders"]
    for k, when in enumerate(dates):
        scene = render(world, when, np.random.default_rng([seed, 7, when.toordinal()]), cloud_scale)
        item_id, _ = write_item(cat_dir / "items", world, when, k, scene, footprint, bbox)
        links.append({"rel": "item", "href": f"./items/{item_id}/{item_id}.json",
                      "type": "application/json"})  # fmt: skip
        m = scene.missed
        if m["ring"]:
            confounders.append(
                {
                    "kind": "missed_cloud_edge",
                    "geometry": None,
                    "date": iso_date(when),
                    "notes": f"{m['ring']}-pixel ring of partial cloud labelled clear",
                }
            )
        if m["puffs"]:
            puffs = unary_union(
                [
                    Point(x0 + (c + 0.5) * PIXEL, y1 - (r_ + 0.5) * PIXEL).buffer(2 * rad * PIXEL)
                    for r_, c, rad in m["puffs"]
                ]
            )
            confounders.append(
                {
                    "kind": "missed_cloud_edge",
                    "geometry": puffs,
                    "date": iso_date(when),
                    "notes": "small cloud puffs not flagged by SCL",
                }
            )
        if m["haze"]:
            confounders.append({"kind": "haze", "geometry": None, "date": iso_date(when),
                                "notes": f"unflagged haze, +{m['haze']:.3f} blue"})  # fmt: skip
    catalog = {
        "type": "Catalog", "stac_version": "1.0.0", "id": f"minewatch-synthetic-{seed}",
        "description": f"MineWatch synthetic Sentinel-2 L2A scenario (seed {seed})",
        "links": links,
    }  # fmt: skip
    paths.catalog.write_text(json.dumps(catalog, indent=1))
    write_feature_collection(paths.sites, world.sites)
    write_feature_collection(paths.permits, world.permits)
    write_feature_collection(paths.zones, world.zones)
    write_feature_collection(paths.aoi, [{"county": c, "geometry": g} for c, g in world.counties])
    truth = dict(world.truth)
    truth["digs"] = [{**d, "geometry": wgs84_mapping(d["geometry"])} for d in truth["digs"]]
    truth["confounders"] = [{**c, "geometry": wgs84_mapping(c["geometry"])} for c in confounders]
    truth["grid"] = {"epsg": EPSG, "origin": list(ORIGIN), "pixel": PIXEL, "shape": list(shape),
                     "n_items": len(dates), "landcover_codes": LANDCOVER_CODES}  # fmt: skip
    paths.truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    write_tif(out / "landcover.tif", world.landcover, world.transform)
    marker = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "shape": list(shape),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "n_items": len(dates),
        "climate": climate,
        "extra_sites": extra_sites,
    }
    (out / MARKER).write_text(json.dumps(marker))
    log.info("scenario seed %d: %d items written to %s", seed, len(dates), out)
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
