"""Checks of the imagery's assets before a run reads them, and of what the run saw.

``check_assets`` opens every asset's header once (no pixel is read): an asset that
cannot be opened, declares no CRS, or is shorter than its own block index says
(a truncated download) makes its whole acquisition unusable, so that scene is left
out and named in a warning. ``reprojection_warnings`` names, once per kind, the items whose
assets are in another CRS or at another resolution than their band's: they are warped
or resampled onto the analysis grid, as ``sources.reads`` does.
``cloudy_scene_warnings`` names acquisitions that gave no clear pixel over any site.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import rasterio
from rasterio.errors import RasterioError

from pipeline import schema
from pipeline.inputs.asset_cache import AssetChecks
from pipeline.inputs.records import InputWarning, first_names
from pipeline.sources.base import GridSpec, Scene

if TYPE_CHECKING:
    from pipeline.inputs.asset_files import OpenFiles

logger = logging.getLogger(__name__)

# Beyond this many blocks only the last one is checked against the file size: it is
# the block GDAL writes last, so a truncated file loses it first.
MAX_BLOCKS_CHECKED = 4096
# Native resolution (m) of each band's asset in Sentinel-2 L2A.
NATIVE_RESOLUTION = {
    **dict.fromkeys(schema.BANDS_10M, 10.0),
    **dict.fromkeys(schema.BANDS_20M, 20.0),
    schema.SCL: 20.0,
}


@dataclass(frozen=True)
class AssetProbe:
    """What an asset's header says."""

    item_id: str
    band: str
    href: str
    crs: rasterio.crs.CRS
    resolution: float
    """Pixel width in the asset's CRS units."""


def _truncation(src: rasterio.io.DatasetReader, href: str) -> str | None:
    """Why a local GeoTIFF is shorter than its block index, or None."""
    if src.driver != "GTiff" or not os.path.isfile(href):
        return None
    size = os.path.getsize(href)
    bh, bw = src.block_shapes[0]
    rows, cols = math.ceil(src.height / bh), math.ceil(src.width / bw)
    blocks = [(c, r) for r in range(rows) for c in range(cols)]
    if len(blocks) > MAX_BLOCKS_CHECKED:
        blocks = blocks[-1:]
    for c, r in blocks:
        offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)
        length = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)
        if offset and length and int(offset) + int(length) > size:
            return (
                f"truncated: block ({r}, {c}) ends at byte {int(offset) + int(length)} "
                f"but the file has {size} bytes"
            )
    return None


def _probe(item_id: str, band: str, href: str, files: OpenFiles | None = None) -> AssetProbe | str:
    """What the header of ``href`` says, or why it is unusable (``files``: opened there)."""
    from pipeline.inputs.asset_files import OpenFiles

    try:
        with nullcontext(files) if files is not None else OpenFiles() as opened:
            src = opened.get(href)
            if src.crs is None:
                return "declares no CRS"
            problem = _truncation(src, href)
            if problem:
                return problem
            return AssetProbe(item_id, band, href, src.crs, abs(float(src.transform.a)))
    except RasterioError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot be opened: {reason}"


def cached_probe(
    cache: AssetChecks | None, item_id: str, band: str, href: str, files: OpenFiles | None = None
) -> AssetProbe | str:
    """``_probe``, or what an earlier run found of the unchanged file (successes only)."""
    hit = cache.get(href, "header") if cache is not None else None
    if hit is not None:
        return AssetProbe(item_id, band, href, rasterio.crs.CRS.from_string(hit[0]), hit[1])
    probe = _probe(item_id, band, href, files)
    if cache is not None and isinstance(probe, AssetProbe):
        cache.put(href, "header", [probe.crs.to_string(), probe.resolution])
    return probe


def check_assets(
    scenes: Sequence[Scene],
    *,
    catalog: str,
    cache: AssetChecks | None = None,
    results: Mapping[tuple[str, str, str], AssetProbe | str] | None = None,
) -> tuple[list[Scene], list[InputWarning], list[AssetProbe]]:
    """The scenes whose every asset opens, warnings naming the others, and the probes.

    ``cache``: headers earlier runs checked; only new or changed files are opened.
    ``results``: the checks already made by ``asset_files.check_items``.
    """
    kept: list[Scene] = []
    warnings: list[InputWarning] = []
    probes: list[AssetProbe] = []
    if results is None:
        from pipeline.inputs.asset_files import check_items

        results, _ = check_items(scenes, cache=cache, judge_offsets=False)
    for scene in scenes:
        bad: list[tuple[str, str, str]] = []
        found: list[AssetProbe] = []
        for item_id, refs in zip(scene.item_ids, scene.assets, strict=True):
            for band, ref in refs.items():
                result = results[(item_id, band, ref.href)]
                if isinstance(result, str):
                    bad.append((item_id, band, f"{ref.href} {result}"))
                else:
                    found.append(result)
        if not bad:
            kept.append(scene)
            probes.extend(found)
            continue
        day = pd.Timestamp(scene.date).date()
        for item_id, band, reason in bad:
            warning = InputWarning(
                catalog,
                f"item {item_id}",
                f"assets.{band}",
                f"asset {reason}; acquisition {day} skipped",
            )
            logger.warning("%s", warning)
            warnings.append(warning)
    return kept, warnings, probes


def reprojection_warnings(
    probes: Sequence[AssetProbe], grid: GridSpec, *, catalog: str
) -> list[InputWarning]:
    """One warning per kind of asset off the grid, naming the first three items.

    Kinds: assets in another CRS (warped onto the grid: bilinear for reflectance,
    nearest for classes), and assets in the grid's CRS at another resolution than their
    band's (read at their own pixels, or warped when off the grid's lines).
    """
    other_crs: dict[str, list[str]] = {}
    odd: dict[str, list[str]] = {}
    for probe in probes:
        if probe.crs != grid.crs:
            items = other_crs.setdefault(probe.crs.to_string(), [])
        elif not math.isclose(
            probe.resolution, NATIVE_RESOLUTION.get(probe.band, probe.resolution)
        ):
            items = odd.setdefault(f"{probe.band} {probe.resolution:g} m", [])
        else:
            continue
        if probe.item_id not in items:
            items.append(probe.item_id)
    out = [
        InputWarning(
            catalog,
            f"items {first_names(items)}",
            "proj:epsg",
            f"{len(items)} item(s) in {crs}, the grid in {grid.crs.to_string()}: warped onto "
            "the grid (bilinear for reflectance, nearest for SCL and QA)",
        )
        for crs, items in other_crs.items()
    ]
    if odd:
        items = list(dict.fromkeys(i for ids in odd.values() for i in ids))
        out.append(
            InputWarning(
                catalog,
                f"items {first_names(items)}",
                "proj:transform",
                f"{len(items)} item(s) with assets at an unusual resolution "
                f"({', '.join(sorted(odd))}): resampled onto the {grid.resolution:g} m grid",
            )
        )
    for warning in out:
        logger.warning("%s", warning)
    return out


def cloudy_scene_warnings(
    timeseries: pd.DataFrame, scenes: Sequence[Scene], *, catalog: str
) -> list[InputWarning]:
    """One warning per acquisition with no clear pixel over any site that it covers."""
    if timeseries.empty:
        return []
    seen = timeseries[timeseries["n_pixels"] > 0]
    clear = seen.groupby(seen["date"].dt.date)["valid_fraction"].max()
    out = []
    for scene in scenes:
        day = pd.Timestamp(scene.date).date()
        if day in clear.index and clear[day] <= 0:
            out.append(
                InputWarning(
                    catalog,
                    f"item {', '.join(scene.item_ids)}",
                    "scl",
                    f"acquisition {day} has no clear pixel over any site (cloud, shadow or "
                    "no data): kept with valid_fraction 0 and no statistics",
                )
            )
    return out
