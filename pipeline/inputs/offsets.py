"""The Sentinel-2 reflectance offset, checked against the pixels of every item it concerns.

Since processing baseline 04.00 (25 January 2022) L2A products store
``DN = 10000 * R + 1000``: reading them needs ``offset = -0.1``. Catalogs disagree on
whether the offset is still in the pixels. Earth Search subtracts it from its COGs and
says so with ``earthsearch:boa_offset_applied: true`` while its ``raster:bands`` still
declare ``offset: -0.1``; and that flag is wrong on some of its items, in both
directions. A reader that trusts the metadata blindly either applies the offset twice
(vegetation red reflectance near -0.07, NDVI meaningless) or never (every reflectance
0.1 too bright, BSI and the bare-rock thresholds off).

``check_offsets`` reads one small window of red and NIR (and SCL, to keep clear land)
of each item whose offset could be wrong, and asks the pixels:

- declared offset negative, yet most clear land pixels' red or NIR reflectance below 0:
  the offset is already out of the pixels, so it is read with offset 0;
- declared offset 0 on a baseline-04.00 date, yet no clear land pixel's red darker than
  0.09 (vegetation, water and shade are 0.01-0.06): the offset is still in the pixels,
  so it is read with offset -0.1.

An item is corrected only on such clear evidence (at least ``MIN_CLEAR_PIXELS`` clear
land pixels); every correction is named in a warning and in the manifest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import dask
import numpy as np
import pandas as pd
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window, from_bounds

from pipeline import schema
from pipeline.inputs.asset_cache import AssetChecks
from pipeline.inputs.records import InputWarning, first_names
from pipeline.scheduler import THREADS
from pipeline.sources.base import AssetRef, Scene

if TYPE_CHECKING:
    from pipeline.inputs.asset_files import OpenFiles

logger = logging.getLogger(__name__)

BASELINE_04 = date(2022, 1, 25)
"""First day of processing baseline 04.00 (reflectance offset of 1000 DN)."""
BASELINE_OFFSET = -0.1
"""The offset of baseline 04.00 in reflectance units (1000 DN x 0.0001)."""
WINDOW = 256
"""Side of the window read from each item's centre, in the asset's pixels: within the
file's block holding the centre, so that one block is decoded (a window across block
edges decodes up to four)."""
MIN_CLEAR_PIXELS = 50
"""Fewer clear land pixels than this in the window: the pixels cannot tell."""
CLEAR_LAND_SCL = (4, 5)
"""SCL classes of clear land (vegetation, bare soil), the pixels the check trusts."""
DARKEST_RED_MAX = 0.09
"""With the offset still in the pixels no reflectance is below 0.1; real clear land
always has some pixels darker than this in red (vegetation 0.01-0.06)."""
REFLECTANCE_BANDS = (*schema.BANDS_10M, *schema.BANDS_20M)


@dataclass(frozen=True)
class OffsetCorrection:
    """One item read with another offset than its metadata declares."""

    item_id: str
    day: date
    declared: float
    used: float
    evidence: str

    def as_dict(self) -> dict[str, object]:
        return {
            "item": self.item_id,
            "date": self.day.isoformat(),
            "declared_offset": self.declared,
            "used_offset": self.used,
            "evidence": self.evidence,
        }


def _read_window(
    ref: AssetRef,
    bounds: tuple[float, ...] | None,
    shape: tuple[int, int] | None,
    files: OpenFiles,
):
    """A window of ``ref``: its centre ``WINDOW`` pixels, or ``bounds`` at ``shape``."""
    src = files.get(ref.href)
    if bounds is None:
        window = _centre_window(src.width, src.height, src.block_shapes[0])
        return src.read(1, window=window), src.window_bounds(window)
    window = from_bounds(*bounds, transform=src.transform)
    # A boundless read goes through a VRT that opens the file again (more than the
    # read itself costs): only a window reaching past the file's edge needs one.
    inside = (
        window.col_off >= 0
        and window.row_off >= 0
        and window.col_off + window.width <= src.width
        and window.row_off + window.height <= src.height
    )
    data = src.read(
        1, window=window, out_shape=shape, resampling=Resampling.nearest, boundless=not inside
    )
    return data, bounds


def _centre_window(width: int, height: int, block: tuple[int, int]) -> Window:
    """Up to ``WINDOW`` x ``WINDOW`` pixels centred in the block that holds the centre
    (centred in the image along a side whose blocks are shorter than ``WINDOW``: strips)."""

    def span(size: int, block_size: int) -> tuple[int, int]:
        if block_size < WINDOW:
            n = min(WINDOW, size)
            return (size - n) // 2, n
        first = (size // 2) // block_size * block_size
        inside = min(block_size, size - first)
        n = min(WINDOW, inside)
        return first + (inside - n) // 2, n

    (row, h), (col, w) = span(height, block[0]), span(width, block[1])
    return Window(col, row, w, h)


def _judge(refs: dict[str, AssetRef], day: date, files: OpenFiles) -> tuple[float, str] | None:
    """The offset the pixels call for, and why; ``None`` when they agree or cannot tell."""
    red_ref, nir_ref = refs["red"], refs["nir"]
    declared = red_ref.offset
    red, bounds = _read_window(red_ref, None, None, files)
    nir, _ = _read_window(nir_ref, bounds, red.shape, files)
    ok = np.ones(red.shape, bool)
    if red_ref.nodata is not None:
        ok &= red != red_ref.nodata
    if nir_ref.nodata is not None:
        ok &= nir != nir_ref.nodata
    if schema.SCL in refs:
        scl, _ = _read_window(refs[schema.SCL], bounds, red.shape, files)
        ok = ok & np.isin(scl, CLEAR_LAND_SCL)
    r = red[ok].astype(np.float64) * red_ref.scale + declared
    n = nir[ok].astype(np.float64) * nir_ref.scale + nir_ref.offset
    if r.size < MIN_CLEAR_PIXELS:
        return None
    if declared < 0:
        neg_red, neg_nir = float((r < 0).mean()), float((n < 0).mean())
        if max(neg_red, neg_nir) > 0.5:
            return 0.0, (
                f"with offset {declared:g}, {neg_red:.0%} of clear land pixels have negative "
                f"red and {neg_nir:.0%} negative NIR reflectance: the offset is already "
                "out of the pixels"
            )
    elif declared == 0 and day >= BASELINE_04:
        darkest = float(np.percentile(r, 1))
        if darkest >= DARKEST_RED_MAX:
            return BASELINE_OFFSET, (
                f"with offset 0, no clear land pixel has red reflectance below "
                f"{darkest:.3f}: the baseline-04.00 offset is still in the pixels"
            )
    return None


def candidates(scenes: Sequence[Scene]) -> list[tuple[int, int]]:
    """(scene, item) positions of Sentinel-2 items whose offset could be wrong: those
    declaring an offset, and those of baseline-04.00 dates declaring none."""
    out = []
    for t, scene in enumerate(scenes):
        day = pd.Timestamp(scene.date).date()
        for i, refs in enumerate(scene.assets):
            if "red" not in refs or "nir" not in refs:
                continue
            # Sentinel-2 L2A stores reflectance x 10000; Landsat (other scale, QA decoded)
            # has no baseline offset to doubt.
            if not math.isclose(refs["red"].scale, 1e-4) or any(r.decode for r in refs.values()):
                continue
            if refs["red"].offset < 0 or day >= BASELINE_04:
                out.append((t, i))
    return out


def judge_item(
    scene: Scene, i: int, cache: AssetChecks | None, files: OpenFiles | None = None
) -> tuple[float, str] | None:
    """The verdict on item ``i`` of ``scene`` (``None``: its declared offset stands),
    from ``cache`` when an earlier run judged the unchanged file; ``files``: where the
    item's assets are open (``asset_files``)."""
    from pipeline.inputs.asset_files import OpenFiles

    red = scene.assets[i]["red"]
    kind = f"offset {red.offset:g}"
    if cache is not None and (hit := cache.get(red.href, kind)) is not None:
        return None if hit == "agrees" else (float(hit[0]), str(hit[1]))
    try:
        with nullcontext(files) if files is not None else OpenFiles() as opened:
            verdict = _judge(scene.assets[i], pd.Timestamp(scene.date).date(), opened)
    except (RasterioError, OSError):  # an unreadable asset is check_assets' to name
        return None
    if cache is not None:
        cache.put(red.href, kind, "agrees" if verdict is None else list(verdict))
    return verdict


def check_offsets(
    scenes: Sequence[Scene],
    *,
    catalog: str,
    cache: AssetChecks | None = None,
    verdicts: Mapping[str, tuple[float, str] | None] | None = None,
) -> tuple[list[Scene], list[InputWarning], list[OffsetCorrection]]:
    """The scenes with each item's offset as its pixels show it, a warning per
    correction kind, and the corrections (for the manifest).

    ``cache``: verdicts of earlier runs on unchanged files (by the red asset, and the
    offset it declares); only new or changed items are read. ``verdicts``: those
    ``asset_files.check_items`` already gave, by the red asset's href.
    """
    jobs = candidates(scenes)
    given = verdicts or {}

    def judge(t: int, i: int) -> tuple[float, str] | None:
        href = scenes[t].assets[i]["red"].href
        return given[href] if href in given else judge_item(scenes[t], i, cache)

    # Each check is a few small reads on Dask's threads (GDAL frees the GIL meanwhile).
    found = dask.compute(
        *[dask.delayed(judge, pure=False)(t, i) for t, i in jobs], scheduler=THREADS
    )
    verdicts = dict(zip(jobs, found, strict=True))
    out = list(scenes)
    corrections: list[OffsetCorrection] = []
    for (t, i), verdict in verdicts.items():
        if verdict is None:
            continue
        used, evidence = verdict
        scene = out[t]
        refs = scene.assets[i]
        declared = refs["red"].offset
        fixed = {
            band: replace(ref, offset=used) if band in REFLECTANCE_BANDS else ref
            for band, ref in refs.items()
        }
        out[t] = replace(scene, assets=(*scene.assets[:i], fixed, *scene.assets[i + 1 :]))
        day = pd.Timestamp(scene.date).date()
        corrections.append(OffsetCorrection(scene.item_ids[i], day, declared, used, evidence))
    warnings = []
    for used in sorted({c.used for c in corrections}):
        these = [c for c in corrections if c.used == used]
        warning = InputWarning(
            catalog,
            f"items {first_names([f'{c.item_id} ({c.day})' for c in these])}",
            "raster:bands.offset",
            f"{len(these)} item(s) read with offset {used:g}, not the declared "
            f"{these[0].declared:g}: {these[0].evidence}",
        )
        logger.warning("%s", warning)
        warnings.append(warning)
    return out, warnings, corrections
