"""The orchestrator: the only place that computes, writes outputs and talks to the ledger.

``run_pipeline`` reads and checks every input before touching the workspace, builds
the lazy cube and both consumers of it (per-site statistics and the per-pixel
excavation fold), computes the units of them that the workspace does not hold yet in
one computation, so every pixel still needed is read once, saving each unit as it
finishes (``checkpoint.py``), then turns the saved units into flags, site classes,
progress figures and the report. A run killed at any point and started again
continues from the saved units and ends with the same outputs.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import xarray as xr
from rasterio.features import geometry_mask

from pipeline import __version__, checkpoint, schema
from pipeline.config import RunConfig
from pipeline.die_back import restoring_sites
from pipeline.errors import NoValidData
from pipeline.estimate import load_estimate, progress_with_estimate
from pipeline.flags import (
    add_quiet_time,
    attribute_violations,
    build_flags,
    disturbed_fractions,
    flag_feature,
)
from pipeline.indices import INDEX_BANDS, add_indices
from pipeline.inputs.asset_cache import ASSET_CACHE_FILE, AssetChecks
from pipeline.inputs.checks import require_site_values
from pipeline.inputs.imagery import cloudy_scene_warnings
from pipeline.ledger import list_flags, open_ledger, reconcile
from pipeline.logs import Progress, StageTimer
from pipeline.masking import mask_clouds
from pipeline.outputs import write_csv, write_json, write_parquet, write_text
from pipeline.prepare import Prepared, drop_unreadable_dates, prepare
from pipeline.progress import progress_table
from pipeline.recovery.model import check_model_files
from pipeline.recovery.predict import RULES_VERSION, classify_with, model_folder, recovery_model
from pipeline.recovery.relative import model_features
from pipeline.recovery.rings import RING_TIMESERIES_FILE, ring_geometries, split_rings
from pipeline.recovery.status import site_status_table
from pipeline.scheduler import compute_units, connect, local_workers
from pipeline.site_pixels import PIXEL_RULE, SitePixels, site_pixel_index
from pipeline.sources.local import load_cube
from pipeline.sources.reads import read_env
from pipeline.sources.sensors import add_sensor
from pipeline.state import STATE_DIR, StateStore, fingerprint, scene_token
from pipeline.workspace import workspace_lock
from pipeline.zonal import site_timeseries_tasks

log = logging.getLogger(__name__)

# The recovery classifier when ``recovery.model`` is "rules"; otherwise the manifest's
# ``model_version`` is the loaded model's (its card's ``version``).
MODEL_VERSION = RULES_VERSION


@dataclass
class RunResult:
    out: Path
    outputs: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    n_flags: int = 0


def _manifest(
    cfg: RunConfig, prep: Prepared, run_id: str, coverage: dict[str, float], n_flags: int
) -> dict[str, Any]:
    warnings = list(prep.inputs.warnings)
    for sid, cov in coverage.items():
        if 0 < cov < 0.999:  # a site wholly outside is named by require_site_values
            warnings.append(
                {
                    "file": cfg.inputs.sites,
                    "record": f"site_id={sid}",
                    "field": "geometry",
                    "message": f"site only {cov:.0%} inside the imagery; figures cover that part",
                }
            )
    grid = prep.grid
    return {
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "config_hash": cfg.config_hash(),
        "config": cfg.public_dict(),
        "model_version": MODEL_VERSION,
        "inputs": {
            "catalog": str(prep.catalog),
            "sites": cfg.inputs.sites,
            "permits": cfg.inputs.permits,
            "zones": cfg.inputs.zones,
            "aoi": cfg.aoi,
            "items": [iid for s in prep.scenes for iid in s.item_ids],
        },
        "period": {
            "start": prep.dates[0].isoformat(),
            "end": prep.dates[-1].isoformat(),
            "n_dates": len(prep.dates),
        },
        "grid": {
            "crs": grid.crs.to_string(),
            "transform": list(grid.transform)[:6],
            "shape": list(grid.shape),
            "chunk_size": cfg.grid.chunk_size,
        },
        "zonal_statistics": {"pixel_rule": PIXEL_RULE, "coverage": coverage},
        "offset_corrections": prep.offset_corrections,
        "counts": {"sites": len(prep.sites_grid), "flags": n_flags, "dates": len(prep.dates)},
        "warnings": warnings,
    }


def run_pipeline(cfg: RunConfig, out: Path) -> RunResult:
    """Run every stage for ``cfg`` and write the six outputs into ``out``.

    Inputs are read and checked first: bad input raises ``InputError`` with ``out``
    untouched (a model file that passes its card's checks but cannot be loaded: after
    the computation, before any output or the ledger changes). The workspace lock is
    held from the first write to the last. A run with the same inputs as an interrupted
    one continues it, under its run id.
    """
    timer = StageTimer(log)
    with timer.stage("inputs"):
        checks = AssetChecks(out / STATE_DIR / ASSET_CACHE_FILE)
        prep = prepare(cfg, checks)
        # The model's files now (the folder ``recovery_model`` picks); scikit-learn and the
        # estimator once the pixels are done: they raised the computation's peak RSS 40 MB.
        if (folder := model_folder(cfg.recovery)) is not None:
            check_model_files(folder)
    existed = out.exists()
    created = not existed or not any(out.iterdir())
    try:
        with workspace_lock(out):
            store = StateStore(out)
            run_id, resumed = store.begin_run(_fingerprint(cfg, prep))
            checks.save()
            if resumed:
                log.info("workspace %s: continuing interrupted run %s", out, run_id)
            result = _execute(cfg, prep, out, timer, run_id, store)
            store.end_run()
            return result
    except NoValidData:
        # Nothing to show for any site: a workspace this run made goes again (an earlier
        # one keeps its outputs; only the units it computed were added).
        if created:
            for made in list(out.iterdir()) if existed else [out]:
                if made.is_dir():
                    shutil.rmtree(made, ignore_errors=True)
                else:
                    made.unlink(missing_ok=True)
        raise


def _fingerprint(cfg: RunConfig, prep: Prepared) -> str:
    """What a run computes: a rerun with the same fingerprint continues it (same run id).

    Where it computes (``compute``: scheduler, workers) does not change the results.
    """
    files = [cfg.inputs.sites, cfg.inputs.permits, cfg.inputs.zones, cfg.aoi]
    settings = {k: v for k, v in cfg.public_dict().items() if k != "compute"}
    return fingerprint(
        settings,
        [scene_token(s) for s in prep.scenes],
        *(Path(f).read_bytes() for f in files if f and Path(f).is_file()),
    )


@dataclass
class _Cube:
    """The lazy cube of a run's scenes and the per-site statistics' tasks over it."""

    ds: xr.Dataset
    ts_tasks: list[tuple[int, Any]]


def _cube(cfg: RunConfig, prep: Prepared, pixels: SitePixels) -> _Cube:
    """The lazy cube of ``prep.scenes`` (nothing is read)."""
    cube = load_cube(
        prep.scenes,
        prep.grid,
        chunk_size=cfg.grid.chunk_size,
        bands=(*INDEX_BANDS, schema.SCL),
        halo=cfg.masking.buffer_pixels,
    )
    ds = add_indices(mask_clouds(cube, cfg.masking))
    return _Cube(ds, list(site_timeseries_tasks(ds, pixels, cfg.surface)))


def _plan(
    cfg: RunConfig,
    prep: Prepared,
    store: StateStore,
    pixels: SitePixels,
    cube: _Cube,
    *,
    quiet: bool = False,
) -> checkpoint.UnitPlan:
    """The units of the next window of dates that the workspace lacks (saved ones are
    reused; ``checkpoint.WINDOW_DATES``)."""
    return checkpoint.plan_units(
        store,
        cfg,
        prep.scenes,
        prep.grid,
        cube.ds,
        pixels,
        cube.ts_tasks,
        window=checkpoint.WINDOW_DATES,
        quiet=quiet,
    )


def _execute(
    cfg: RunConfig, prep: Prepared, out: Path, timer: StageTimer, run_id: str, store: StateStore
) -> RunResult:
    grid, sites_grid = prep.grid, prep.sites_grid
    with timer.stage("graph") as counts:
        # Each site's reference ring rides along as a pseudo-site (recovery/rings.py);
        # split_rings takes the rings out again before anything is written.
        ring_ids, rings = ring_geometries(list(sites_grid["site_id"]), list(sites_grid.geometry))
        pixels = site_pixel_index(
            [*sites_grid["site_id"], *ring_ids],
            [*sites_grid.geometry, *rings],
            grid,
            chunk_size=cfg.grid.chunk_size,
        )
        cube = _cube(cfg, prep, pixels)
        plan = _plan(cfg, prep, store, pixels, cube)
        counts.update(plan.counts)

    with timer.stage("compute") as counts:
        n_units, skipped = 0, 0
        progress = Progress("compute", plan.counts["units_computed"], log)
        tiles = len(cube.ds["ndvi"].chunks[1]) * len(cube.ds["ndvi"].chunks[2])
        with connect(cfg.compute) as client, read_env(tiles):
            while True:
                compute_units(
                    plan.units,
                    partial(checkpoint.save, store, plan),
                    client=client,
                    workers=local_workers(cfg.compute),
                    progress=progress,
                )
                n_units += len(plan.units)
                if plan.failures:
                    # Dates with unreadable pixels leave the run (nothing of them was
                    # saved); the rest is planned again from the saved units.
                    skipped += len(plan.failures)
                    drop_unreadable_dates(prep, plan.failures)
                    cube = _cube(cfg, prep, pixels)
                    plan = _plan(cfg, prep, store, pixels, cube)
                    progress = Progress("compute", plan.counts["units_computed"], log)
                elif plan.until < plan.n_dates:
                    plan = _plan(cfg, prep, store, pixels, cube, quiet=True)
                else:
                    break
        counts["units"] = n_units
        if skipped:
            counts["dates_skipped_unreadable"] = skipped
        dates = prep.dates
        timeseries = checkpoint.timeseries(plan, pixels.site_ids)
        timeseries, ring_timeseries = split_rings(add_sensor(timeseries, prep.scenes))
        empty = require_site_values(timeseries, prep.inputs.sites, catalog=prep.catalog)
        for warning in empty:
            log.warning("%s", warning)
        prep.inputs.warnings.extend(w.as_dict() for w in empty)
        prep.inputs.warnings.extend(
            w.as_dict()
            for w in cloudy_scene_warnings(timeseries, prep.scenes, catalog=prep.catalog)
        )
        chunks = cube.ds["ndvi"].chunks
        layers = checkpoint.layers(plan, (chunks[1], chunks[2]))

    with timer.stage("flags") as counts:
        prep.recovery_model = recovery_model(cfg.recovery)  # before the ledger changes
        aoi_mask = None
        if prep.aoi_grid is not None:
            aoi_mask = ~geometry_mask(
                [prep.aoi_grid], out_shape=grid.shape, transform=grid.transform
            )
        closed = list(
            sites_grid.geometry[
                (sites_grid["category"] == "illegal") & (sites_grid["status"] == "closed")
            ]
        )
        restoring = restoring_sites(sites_grid, timeseries, cfg.recovery.min_clear_fraction)
        flags = build_flags(
            layers, grid, dates, cfg.detection, aoi_mask=aoi_mask, closed_sites=closed,
            restoring_sites=restoring,
        )  # fmt: skip
        # The report's modules (matplotlib, openpyxl) load once the pixels are done with.
        from pipeline.report.audit import enforcement_record

        attribute_violations(flags, sites_grid, prep.permits_grid, prep.zones_grid, cfg.detection)
        geoms = list(gpd.GeoSeries([f.geometry for f in flags], crs=grid.crs).to_crs("EPSG:4326"))
        with open_ledger(out) as con:
            published = reconcile(con, flags, geoms, run_id)
            enforcement = enforcement_record(list_flags(con))
        status = {p["flag_id"]: p["status"] for p in published}
        features = [
            flag_feature(f, g, status[f.flag_id])
            for f, g in zip(flags, geoms, strict=True)
            if f.flag_id in status
        ]
        open_flags = [f for f in flags if f.flag_id in status]  # false alarms left out
        counts.update(detected=len(flags), published=len(features))

    with timer.stage("recovery"):
        sites_frame = prep.inputs.sites.copy()
        sites_frame["area_m2"] = sites_grid.geometry.area.to_numpy()
        disturbed = disturbed_fractions(
            open_flags, sites_grid, min_fraction=cfg.recovery.disturbed_fraction_min
        )
        features_frame = model_features(
            timeseries,
            ring_timeseries,
            sites_frame,
            disturbed,
            assessed_until=dates[-1],
            cfg=cfg.recovery,
        )
        classes = classify_with(
            prep.recovery_model, features_frame, sites_frame, disturbed, cfg=cfg.recovery
        )
        site_status = site_status_table(classes, sites_frame)
        site_status = add_quiet_time(site_status, sites_frame, open_flags, dates)
        progress = progress_table(site_status, sites_frame)
        # A sample-based estimate made on this workspace (`minewatch estimate`).
        estimate = load_estimate(out)
        progress = progress_with_estimate(progress, estimate)

    coverage = dict(zip(pixels.site_ids, pixels.coverage.round(4).tolist(), strict=True))
    coverage = {sid: coverage[sid] for sid in sites_grid["site_id"]}  # rings left out
    manifest = _manifest(cfg, prep, run_id, coverage, len(features))
    if prep.recovery_model is not None:
        manifest["model_version"] = prep.recovery_model.version
        manifest["model_sha256"] = prep.recovery_model.card.get("model_sha256")

    with timer.stage("report"):
        from pipeline.report.charts import flag_is_open
        from pipeline.report.evidence_reads import load_flag_evidence
        from pipeline.report.html import render_report

        # Before/after chips of the open flags: a small read of each flag's window.
        evidence = load_flag_evidence(
            prep.scenes, grid, [f for f in features if flag_is_open(f["properties"])], cfg.masking
        )
        html = render_report(
            site_status=site_status,
            progress=progress,
            flags=features,
            timeseries=timeseries,
            sites=prep.inputs.sites,
            manifest=manifest,
            language=cfg.report.language,
            title=cfg.report.title,
            evidence=evidence,
            estimate=estimate,
            enforcement=enforcement,
        )

    with timer.stage("write"):
        from pipeline.report.progress_xlsx import PROGRESS_XLSX_FILE, write_progress_xlsx

        outputs = {name: out / name for name in schema.OUTPUT_FILES}
        write_json(outputs[schema.FLAGS_FILE], {"type": "FeatureCollection", "features": features})
        write_csv(outputs[schema.SITE_STATUS_FILE], site_status)
        write_csv(outputs[schema.PROGRESS_FILE], progress)
        outputs[PROGRESS_XLSX_FILE] = out / PROGRESS_XLSX_FILE
        write_progress_xlsx(
            outputs[PROGRESS_XLSX_FILE], progress, estimate, language=cfg.report.language
        )
        write_parquet(
            outputs[schema.TIMESERIES_FILE],
            timeseries,
            {"minewatch:pixel_rule": PIXEL_RULE, "minewatch:run_id": run_id},
        )
        write_text(outputs[schema.REPORT_FILE], html)
        # Not a contract output: the reference rings' series, for `minewatch train`.
        write_parquet(out / RING_TIMESERIES_FILE, ring_timeseries, {"minewatch:run_id": run_id})
    manifest["timings_s"] = timer.timings
    manifest["stages"] = timer.stages()
    write_json(outputs[schema.MANIFEST_FILE], manifest)
    # Outputs are whole: keep only what a later run continues from.
    store.prune(checkpoint.kept_files(plan))
    return RunResult(out=out, outputs=outputs, timings=timer.timings, n_flags=len(features))
