"""Labelling help for a sample (``minewatch sample --chips DIR``).

A person labels a sample point by looking at the imagery: was this 10 m pixel dug
during the period, is it a restored site, or neither? Each point gets what a county
team gets for a flag, drawn by the same renderer (``report.package_files``): a
true-colour chip of its surroundings before and after, the point's pixel outlined,
and the NDVI/BSI trajectory of its clear looks. The looks bracket a date: for a point
inside a flag, the flag's ``first_detected`` (the change the map claims); for any
other point, the middle of the run's period, so the chips show the start and the end
and the plot shows what happened between.

``DIR`` gets ``chips/<sample_id>_before.png``, ``chips/<sample_id>_after.png``,
``plots/<sample_id>.png`` and ``index.csv`` (one row per point: the files and the
dates of the looks).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import mapping, shape

from pipeline.errors import InputError
from pipeline.outputs import write_csv
from pipeline.report.package import _read_run, _run_scenes
from pipeline.report.package_files import PackageFlag, draw_imagery
from pipeline.sampling import run_grid

log = logging.getLogger(__name__)


def _pixel_polygons(sample: pd.DataFrame, grid_crs: object, size: float) -> list[dict]:
    """The WGS84 outline of each sample point's pixel (its centre is the point)."""
    points = gpd.GeoSeries(gpd.points_from_xy(sample["lon"], sample["lat"]), crs="EPSG:4326")
    centres = points.to_crs(grid_crs)
    half = size / 2
    boxes = [shapely.box(p.x - half, p.y - half, p.x + half, p.y + half) for p in centres]
    return [mapping(g) for g in gpd.GeoSeries(boxes, crs=grid_crs).to_crs("EPSG:4326")]


def write_sample_chips(
    workspace: Path, sample: pd.DataFrame, dest: Path, *, language: str | None = None
) -> int:
    """Draw every sample point's chips and plot into ``dest``; return how many were drawn.

    ``dest`` must be new or empty. Reads the run's catalog over each point's window.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError("exists and is not an empty folder", file=dest, field="--chips")
    run = _read_run(Path(workspace))
    grid = run_grid(run.manifest, Path(workspace) / "manifest.json")
    lang = language or run.cfg.report.language
    period = run.manifest["period"]
    start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
    middle = start + (end - start) / 2
    flags = [
        (shape(f["geometry"]), f["properties"].get("first_detected"))
        for f in run.features
        if f.get("geometry")
    ]
    points = gpd.points_from_xy(sample["lon"], sample["lat"])
    outlines = _pixel_polygons(sample, grid.crs, grid.resolution)
    items = []
    for sid, point, outline in zip(sample["sample_id"], points, outlines, strict=True):
        first = next((d for g, d in flags if d and g.intersects(point)), middle.isoformat())
        props = {"flag_id": str(sid), "first_detected": first, "confirmed": None, "last_seen": None}
        items.append(PackageFlag(properties=props, geometry=outline))
    dest.mkdir(parents=True, exist_ok=True)
    draw_imagery(_run_scenes(run), grid, run.cfg.masking, items, dest, lang)
    rows = [
        {
            "sample_id": item.properties["flag_id"],
            "looks_around": item.properties["first_detected"],
            "before": item.before.file if item.before else "",
            "before_date": item.before.date if item.before else "",
            "after": item.after.file if item.after else "",
            "after_date": item.after.date if item.after else "",
            "plot": item.plot or "",
        }
        for item in items
    ]
    write_csv(dest / "index.csv", pd.DataFrame(rows))
    drawn = sum(1 for r in rows if r["before"] or r["after"])
    log.info("chips for %d of %d sample points written to %s", drawn, len(rows), dest)
    return drawn
