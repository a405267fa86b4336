"""Reading a flag's evidence: the before/after true-colour looks and the flag's own trajectory.

The looks are chosen and held as ``evidence`` says; this module reads them from the
catalog, and ``evidence_charts`` draws them.

Two readers, one result (``FlagEvidence``):

- ``load_flag_evidence`` (the run's report, every open flag): reads only the SCL band of
  each flag's window on every date to choose the two looks, then red/green/blue on those
  two dates only; all flags in two ``dask.compute`` calls. About 1/7 of the reads of a
  full window, so a city's flags add seconds, not minutes, to a run.
- ``load_flag_window`` (the county package, which also plots each flag's NDVI/BSI
  trajectory): every band of every date over the window, one compute per flag.

Imagery is read on the window's own sub-grid of the run's grid, SCL with a halo of the
cloud-mask buffer so the mask's dilation is exact at the chip's edge.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import dask
import numpy as np
from affine import Affine
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from pipeline import schema
from pipeline.config import MaskingConfig
from pipeline.indices import add_indices
from pipeline.masking import clear_mask, mask_clouds
from pipeline.report.evidence import (
    ChipLook,
    FlagEvidence,
    Window,
    as_date,
    candidate_looks,
    chip_window,
    flag_geometry,
    outline_rings,
    pick_looks,
)
from pipeline.scheduler import THREADS
from pipeline.sources.base import GridSpec, Scene
from pipeline.sources.local import load_cube

log = logging.getLogger(__name__)

# A look enters the flag's trajectory when at least half its pixels are clear: a median
# over the two clear pixels beside a cloud says more about the cloud edge than the dig.
TRAJECTORY_MIN_CLEAR = 0.5
RGB_BANDS = ("red", "green", "blue")


def _subgrid(grid: GridSpec, window: Window) -> GridSpec:
    """The window as a grid of its own (same CRS and pixels as the run's grid)."""
    r0, r1, c0, c1 = window
    return GridSpec(
        crs=grid.crs,
        transform=grid.transform * Affine.translation(c0, r0),
        shape=(r1 - r0, c1 - c0),
    )


def _window_transform(grid: GridSpec, window: Window) -> Affine:
    return grid.transform * Affine.translation(window[2], window[0])


def _has_band(scenes: Sequence[Scene], band: str) -> bool:
    return any(band in assets for s in scenes for assets in s.assets)


def _stack_rgb(bands: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(b, dtype=np.float32) for b in bands], axis=-1)


def load_flag_evidence(
    scenes: Sequence[Scene],
    grid: GridSpec,
    features: Sequence[Mapping[str, Any]],
    masking: MaskingConfig,
) -> dict[str, FlagEvidence]:
    """Before/after looks of each flag in ``features`` (GeoJSON Feature dicts), by flag_id.

    Reads SCL over each flag's window on its candidate dates (``candidate_looks``), then
    red/green/blue on its two chosen dates: two computes for all flags. Flags without
    geometry, without ``first_detected`` or outside the grid are left out.
    """
    targets = []
    for feature in features:
        props = feature.get("properties") or {}
        fid = str(props.get("flag_id"))
        geom = flag_geometry(feature, grid)
        if geom is None or as_date(props.get("first_detected")) is None:
            log.warning("flag %s: no geometry or first_detected; no chips", fid)
            continue
        window = chip_window(geom, grid)
        if window[1] <= window[0] or window[3] <= window[2]:
            log.warning("flag %s: outside the run's grid; no chips", fid)
            continue
        targets.append((fid, props, geom, window))
    if not targets or not scenes:
        return {}

    days = [np.datetime64(s.date, "D").item() for s in scenes]
    candidates = [np.flatnonzero(candidate_looks(days, props)) for _, props, _, _ in targets]
    # dates not read score -1: any date read wins over them
    fractions = [np.full(len(scenes), -1.0) for _ in targets]
    if _has_band(scenes, schema.SCL):
        lazy = []
        for (_, _, _, window), idx in zip(targets, candidates, strict=True):
            if not len(idx):
                lazy.append(None)
                continue
            sub = _subgrid(grid, window)
            cube = load_cube(
                [scenes[i] for i in idx],
                sub,
                chunk_size=max(sub.shape),
                bands=(schema.SCL,),
                halo=masking.buffer_pixels,
            )
            lazy.append(clear_mask(cube, masking).data.mean(axis=(1, 2)))
        computed = dask.compute(*lazy, scheduler=THREADS)
        for frac, idx, got in zip(fractions, candidates, computed, strict=True):
            if got is not None:
                frac[idx] = np.asarray(got, float)
    else:
        for frac, idx in zip(fractions, candidates, strict=True):
            frac[idx] = 1.0

    looks: list[tuple[int, int | None, int | None]] = []
    lazy_rgb = []
    for k, ((fid, props, _, window), frac) in enumerate(zip(targets, fractions, strict=True)):
        i_before, i_after = pick_looks(days, frac, props)
        chosen = [i for i in (i_before, i_after) if i is not None]
        looks.append((k, i_before, i_after))
        if not chosen:
            log.warning("flag %s: no look before or after it", fid)
        sub = _subgrid(grid, window)
        cube = load_cube(
            [scenes[i] for i in chosen], sub, chunk_size=max(sub.shape), bands=RGB_BANDS
        )
        lazy_rgb.append([cube[b].data if b in cube else None for b in RGB_BANDS] if chosen else [])
    computed = dask.compute(lazy_rgb, scheduler=THREADS)[0]

    out: dict[str, FlagEvidence] = {}
    for (k, i_before, i_after), arrays in zip(looks, computed, strict=True):
        fid, _, geom, window = targets[k]
        transform = _window_transform(grid, window)
        shape = (window[1] - window[0], window[3] - window[2])
        evidence = FlagEvidence(
            flag_id=fid, outline=outline_rings(geom, transform), resolution_m=grid.resolution
        )
        position = 0
        for which, i in (("before", i_before), ("after", i_after)):
            if i is None:
                continue
            bands = [
                a[position] if a is not None else np.full(shape, np.nan, np.float32) for a in arrays
            ]
            look = ChipLook(days[i], round(float(fractions[k][i]), 4), _stack_rgb(bands))
            setattr(evidence, which, look)
            position += 1
        out[fid] = evidence
    log.info("evidence: %d flags, %d dates", len(out), len(days))
    return out


# ---------------------------------------------------------------- the package: full window


def load_flag_window(
    scenes: Sequence[Scene],
    grid: GridSpec,
    feature: Mapping[str, Any],
    masking: MaskingConfig,
) -> FlagEvidence | None:
    """Before/after looks and the NDVI/BSI trajectory of one flag (one compute).

    None when the flag has no geometry or first detection, or lies outside the grid.
    """
    props = feature.get("properties") or {}
    fid = str(props.get("flag_id"))
    geom = flag_geometry(feature, grid)
    if geom is None or as_date(props.get("first_detected")) is None:
        log.warning("flag %s: no geometry or first_detected; no chips", fid)
        return None
    window = chip_window(geom, grid)
    if window[1] <= window[0] or window[3] <= window[2]:
        log.warning("flag %s: outside the run's grid; no chips", fid)
        return None
    sub = _subgrid(grid, window)
    cube = load_cube(scenes, sub, chunk_size=max(sub.shape), halo=masking.buffer_pixels)
    ds = add_indices(mask_clouds(cube, masking))
    shape = (cube.sizes[schema.TIME], window[1] - window[0], window[3] - window[2])

    def band(name: str) -> Any:
        return cube[name].data if name in cube else np.full(shape, np.nan, np.float32)

    red, green, blue, clear, ndvi, bsi = dask.compute(
        band("red"),
        band("green"),
        band("blue"),
        ds["clear"].data,
        ds["ndvi"].data,
        ds["bsi"].data,
        scheduler=THREADS,
    )
    days = [t.item() for t in cube[schema.TIME].to_numpy().astype("datetime64[D]")]
    clear = np.asarray(clear, bool)
    frac = clear.reshape(len(days), -1).mean(axis=1)
    transform = _window_transform(grid, window)
    evidence = FlagEvidence(
        flag_id=fid, outline=outline_rings(geom, transform), resolution_m=grid.resolution
    )
    for which, i in zip(("before", "after"), pick_looks(days, frac, props), strict=True):
        if i is None:
            log.warning("flag %s: no look for the %s chip", fid, which)
            continue
        rgb = _stack_rgb([red[i], green[i], blue[i]])
        setattr(evidence, which, ChipLook(days[i], round(float(frac[i]), 4), rgb))
    dates, t_ndvi, t_bsi = _trajectory(days, clear, ndvi, bsi, geom, transform)
    evidence.trajectory_dates, evidence.trajectory_ndvi, evidence.trajectory_bsi = (
        dates,
        t_ndvi,
        t_bsi,
    )
    log.info(
        "flag %s: window %dx%d px, before %s, after %s, %d clear looks",
        fid,
        shape[1],
        shape[2],
        evidence.before.date if evidence.before else None,
        evidence.after.date if evidence.after else None,
        len(dates),
    )
    return evidence


def _trajectory(
    days: list[date],
    clear: np.ndarray,
    ndvi: np.ndarray,
    bsi: np.ndarray,
    geom: BaseGeometry,
    transform: Affine,
) -> tuple[list[date], np.ndarray, np.ndarray]:
    """Median NDVI and BSI over the flag's clear pixels, for looks mostly clear over it."""
    shape = clear.shape[1:]
    inside = geometry_mask([geom], out_shape=shape, transform=transform, invert=True)
    if not inside.any():  # a sliver smaller than a pixel centre: take the pixels it touches
        inside = geometry_mask(
            [geom], out_shape=shape, transform=transform, invert=True, all_touched=True
        )
    if not inside.any():
        return [], np.array([]), np.array([])
    keep = clear[:, inside].mean(axis=1) >= TRAJECTORY_MIN_CLEAR
    if not keep.any():
        return [], np.array([]), np.array([])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_ndvi = np.nanmedian(ndvi[:, inside][keep], axis=1)
        t_bsi = np.nanmedian(bsi[:, inside][keep], axis=1)
    return [d for d, k in zip(days, keep, strict=True) if k], t_ndvi, t_bsi
