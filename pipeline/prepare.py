"""The inputs stage: every input read and checked before the workspace is touched.

``prepare`` reads the sites, permits, zones and area of interest, the catalog (or
fetches what the archive lacks), checks every asset's header, picks the analysis grid
and puts the vector inputs on it. Anything wrong raises ``InputError`` naming the
file, record and field; nothing has been written by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.inputs import read_aoi, read_permits, read_sites, read_zones
from pipeline.inputs.asset_cache import AssetChecks
from pipeline.inputs.asset_files import check_items
from pipeline.inputs.checks import require_sites_on_imagery, sliver_warnings
from pipeline.inputs.imagery import check_assets, reprojection_warnings
from pipeline.inputs.offsets import check_offsets
from pipeline.inputs.records import InputWarning
from pipeline.sources.base import GridSpec, Scene
from pipeline.sources.grid import analysis_grid, grid_crs
from pipeline.sources.local import read_catalog
from pipeline.sources.reads import ReadFailure

logger = logging.getLogger(__name__)


@dataclass
class Inputs:
    """The vector inputs as read, and the warnings their readers gave."""

    sites: gpd.GeoDataFrame
    permits: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    aoi: Any
    warnings: list[dict]


def require(value: str | None, what: str, flag: str) -> str:
    """``value``, or an ``InputError`` naming the option that would give it."""
    if not value:
        raise InputError(f"no {what} given: pass {flag} or set it in the config", field=flag)
    return value


def read_inputs(cfg: RunConfig) -> Inputs:
    """Sites, permits, zones and the area of interest of ``cfg``."""
    sites = read_sites(require(cfg.inputs.sites, "sites file", "--sites"))
    permits = read_permits(cfg.inputs.permits, sites)
    zones = read_zones(cfg.inputs.zones)
    aoi = read_aoi(cfg.aoi) if cfg.aoi else None
    warnings = []
    for frame in (sites, permits, zones):
        for w in frame.attrs.get("warnings", []):
            warnings.append(
                {"file": w.file, "record": w.record, "field": w.field, "message": w.message}
            )
    return Inputs(sites, permits, zones, aoi, warnings)


def to_grid(frame: gpd.GeoDataFrame, grid: GridSpec) -> gpd.GeoDataFrame:
    """``frame`` in the grid's CRS (an empty frame just takes the CRS)."""
    return frame.to_crs(grid.crs) if len(frame) else frame.set_crs(grid.crs, allow_override=True)


@dataclass
class Prepared:
    """Everything checked and read before the workspace is touched."""

    inputs: Inputs
    catalog: str
    scenes: list[Scene]
    grid: GridSpec
    aoi_grid: BaseGeometry | None
    sites_grid: gpd.GeoDataFrame
    permits_grid: gpd.GeoDataFrame
    zones_grid: gpd.GeoDataFrame
    dates: list[date]
    recovery_model: Any = None  # loaded once the pixels are done (run.py); None: the rules
    offset_corrections: list[dict] = field(default_factory=list)
    """Items read with another reflectance offset than declared (``inputs.offsets``)."""


def prepare(cfg: RunConfig, cache: AssetChecks | None = None) -> Prepared:
    """Read and check every input; raise ``InputError`` before anything is written.

    ``cache``: asset checks of earlier runs in the workspace (read here, saved by the
    orchestrator once it holds the workspace).
    """
    inputs = read_inputs(cfg)
    if cfg.provider.kind == "catalog":
        catalog = require(cfg.provider.catalog, "catalog", "--catalog")
    else:  # a provider: fetch what the archive lacks, then read the archive's catalog
        from pipeline.fetch import fetch_for_run

        catalog, fetch_warnings = fetch_for_run(cfg)
        inputs.warnings.extend(w.as_dict() for w in fetch_warnings)
    if cfg.compute.scheduler and "://" not in cfg.compute.scheduler:
        raise InputError(
            f"not a scheduler address: {cfg.compute.scheduler!r} (expected tcp://HOST:PORT)",
            field="--scheduler",
        )
    start = np.datetime64(cfg.period.start) if cfg.period.start else None
    end = np.datetime64(cfg.period.end) if cfg.period.end else None
    scenes = read_catalog(catalog, band_aliases=cfg.provider.band_aliases, start=start, end=end)
    if not scenes:
        raise InputError("no acquisition in the selected period", file=catalog, field="period")
    # One open of each file for both checks below.
    results, verdicts = check_items(scenes, cache=cache)
    scenes, imagery_warnings, probes = check_assets(
        scenes, catalog=catalog, cache=cache, results=results
    )
    if not scenes:
        raise InputError("no readable acquisition: every one has an unreadable asset", file=catalog)
    scenes, offset_warnings, corrections = check_offsets(
        scenes, catalog=catalog, cache=cache, verdicts=verdicts
    )
    imagery_warnings += offset_warnings
    crs = grid_crs(cfg.grid.crs, aoi=inputs.aoi, sites=inputs.sites)
    grid = analysis_grid(scenes, resolution=cfg.grid.resolution, crs=crs)
    require_sites_on_imagery(inputs.sites, grid)
    imagery_warnings += reprojection_warnings(probes, grid, catalog=catalog)
    imagery_warnings += sliver_warnings(inputs.sites, grid.crs, cfg.detection)
    inputs.warnings.extend(w.as_dict() for w in imagery_warnings)
    aoi_grid = None
    if inputs.aoi is not None:
        aoi_grid = gpd.GeoSeries([inputs.aoi], crs="EPSG:4326").to_crs(grid.crs).iloc[0]
        ab, gb = aoi_grid.bounds, grid.bounds
        bounds = (max(ab[0], gb[0]), max(ab[1], gb[1]), min(ab[2], gb[2]), min(ab[3], gb[3]))
        if bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
            raise InputError(
                "the area of interest does not overlap the imagery", file=cfg.aoi, field="geometry"
            )
        grid = analysis_grid(scenes, resolution=cfg.grid.resolution, bounds=bounds, crs=grid.crs)
    sites_grid = to_grid(inputs.sites, grid)
    if not sites_grid.intersects(box(*grid.bounds)).any():
        raise InputError("no site overlaps the imagery", file=cfg.inputs.sites, field="geometry")
    return Prepared(
        inputs=inputs,
        catalog=catalog,
        scenes=scenes,
        grid=grid,
        aoi_grid=aoi_grid,
        sites_grid=sites_grid,
        permits_grid=to_grid(inputs.permits, grid),
        zones_grid=to_grid(inputs.zones, grid),
        dates=[np.datetime64(s.date, "D").item() for s in scenes],
        offset_corrections=[c.as_dict() for c in corrections],
    )


def drop_unreadable_dates(prep: Prepared, failures: dict[int, set[ReadFailure]]) -> None:
    """Leave out the dates whose pixels failed to read, with a warning per asset.

    The asset's header opened (``check_assets``), but some of its pixel blocks did not
    decode: a damaged file, or a disk or network fault. The whole acquisition leaves
    this run, as one with an unreadable header does; nothing made from it was saved,
    so the next run reads it again.
    """
    for t in sorted(failures):
        scene = prep.scenes[t]
        day = pd.Timestamp(scene.date).date()
        seen: set[tuple[str, str]] = set()
        for failure in sorted(failures[t], key=lambda f: (f.href, f.band, f.error)):
            if (failure.href, failure.band) in seen:
                continue
            seen.add((failure.href, failure.band))
            item_id = next(
                (
                    iid
                    for iid, refs in zip(scene.item_ids, scene.assets, strict=True)
                    if any(ref.href == failure.href for ref in refs.values())
                ),
                ",".join(scene.item_ids),
            )
            warning = InputWarning(
                prep.catalog,
                f"item {item_id}",
                f"assets.{failure.band}",
                f"asset {failure.href} has pixel blocks that cannot be read "
                f"({failure.error}); acquisition {day} skipped, read again next run",
            )
            logger.warning("%s", warning)
            prep.inputs.warnings.append(warning.as_dict())
    prep.scenes = [s for t, s in enumerate(prep.scenes) if t not in failures]
    prep.dates = [d for t, d in enumerate(prep.dates) if t not in failures]
    if not prep.scenes:
        raise InputError(
            "no readable acquisition: every one has unreadable pixel blocks", file=prep.catalog
        )
