"""The stratified random sample behind an auditable area estimate (``minewatch sample``).

A map's pixel counts carry its omission and commission errors; the accepted practice
(Olofsson et al. 2014, "Good practices for estimating area and assessing accuracy of
land change", Remote Sensing of Environment 148: 42-57) is to draw a stratified random
sample of pixels from the map, have a person label each from the imagery, and estimate
the area of each class from the labels (``pipeline.estimate``). This module rebuilds
the run's map on its 10 m grid from the workspace's outputs and draws that sample.

The strata, each pixel in exactly one (first match wins):

- ``excavation``: inside a published flag (new digging as the map sees it);
- ``buffer``: within 30 m of a flag, outside it. Omitted digging hides at the edges of
  what was found (a dig that grew after the last look, pixels mixed with cloud), and a
  ring of its own keeps those omission errors out of the huge ``rest`` stratum, where
  each sampled pixel weighs thousands of others;
- ``restored``: pixels of sites classed ``restored``;
- ``unconfirmed``: pixels where the detector has seen fresh bare ground that it has not
  (yet) confirmed as a change: a current run of fresh-bare looks, or an onset that
  failed persistence or the mapping unit. A dig that began shortly before the last
  date, or in a season whose history is bare anyway (farmland in winter), lands here
  instead of in ``rest``. Read from the run's saved excavation fold states
  (``.state/fold``); a workspace without them just has this stratum empty. The
  stratification only has to be fixed before the draw, not right, so the estimate
  stays unbiased either way: a good one only narrows the interval;
- ``site``: the other site pixels;
- ``rest``: the rest of the area of interest.

A pixel belongs to a site (and to the AOI) when its centre lies inside it, the rule the
per-site statistics use. The map class of a stratum is ``excavation`` for the flags,
``restored`` for restored sites and ``other`` for the rest.

Allocation follows Olofsson et al. 2014 (section 5.1.3): the rare strata get at least
``MIN_PER_STRATUM`` (50) units so that their user's accuracy has a useful standard
error; the rest is allocated in proportion to area. The draw is simple random sampling
without replacement inside each stratum with ``numpy.random.default_rng(seed)``: the same
workspace, ``n`` and seed give the same sample, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import rasterize
from scipy.ndimage import distance_transform_edt
from shapely.geometry import shape

from pipeline import schema
from pipeline.errors import InputError
from pipeline.outputs import write_csv, write_json
from pipeline.saved_layers import read_fold_layers
from pipeline.sources.base import GridSpec

log = logging.getLogger(__name__)

STRATA = ("excavation", "buffer", "restored", "unconfirmed", "site", "rest")
"""Stratum names, in the order a pixel is assigned (first match wins)."""

STRATUM_MAP_CLASS = {
    "excavation": "excavation",
    "buffer": "other",
    "restored": "restored",
    "unconfirmed": "other",
    "site": "other",
    "rest": "other",
}
"""The map's class in each stratum: one class per stratum, as the estimator needs."""

MAP_CLASSES = ("excavation", "restored", "other")
"""The classes a sample point is labelled with (``reference``) and the map shows."""

BUFFER_M = 30.0  # width of the ring around flags: 3 pixels, where omitted digging sits
MIN_PER_STRATUM = 50  # Olofsson et al. 2014: at least 50 units in each rare stratum
OUTSIDE = -1  # stratum code of pixels outside the AOI
SAMPLE_COLUMNS = ("sample_id", "stratum", "lon", "lat", "map_class", "reference")
COORD_DECIMALS = 7  # 1e-7 degree is about 1 cm: a point maps back to its pixel exactly


@dataclass(frozen=True)
class StrataMap:
    """The run's map on its grid, as strata."""

    grid: GridSpec
    """The run's 10 m analysis grid (from its manifest)."""
    strata: np.ndarray
    """(rows, cols) int8: index into ``STRATA``, ``OUTSIDE`` outside the AOI."""
    run_id: str
    """The run whose outputs the map was rebuilt from."""
    sources: dict[str, str]
    """SHA-256 of the workspace files the map was rebuilt from."""

    @property
    def pixel_area_m2(self) -> float:
        return abs(self.grid.transform.a * self.grid.transform.e)

    def counts(self) -> dict[str, int]:
        """Pixels per stratum (the strata sizes N_h of the estimator)."""
        codes = np.bincount(self.strata[self.strata >= 0].ravel(), minlength=len(STRATA))
        return {name: int(codes[i]) for i, name in enumerate(STRATA)}

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the pixels holding WGS84 points; -1 where off the grid."""
        to_grid = Transformer.from_crs("EPSG:4326", self.grid.crs, always_xy=True)
        x, y = to_grid.transform(np.asarray(lon, float), np.asarray(lat, float))
        col, row = ~self.grid.transform * (np.asarray(x), np.asarray(y))
        row, col = np.floor(row).astype(int), np.floor(col).astype(int)
        rows, cols = self.grid.shape
        off = (row < 0) | (row >= rows) | (col < 0) | (col >= cols)
        return np.where(off, -1, row), np.where(off, -1, col)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError("missing; run `minewatch run` on this workspace first", file=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", file=path) from None


def run_grid(manifest: Mapping, path: Path) -> GridSpec:
    """The analysis grid a run recorded in its manifest."""
    try:
        grid = manifest["grid"]
        transform = Affine(*grid["transform"][:6])
        rows, cols = (int(v) for v in grid["shape"])
        return GridSpec(
            crs=CRS.from_user_input(grid["crs"]), transform=transform, shape=(rows, cols)
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"no usable grid ({exc})", file=path, field="grid") from None


def load_strata(workspace: Path) -> StrataMap:
    """Rebuild the run's map as strata from ``workspace``'s outputs.

    Reads ``manifest.json`` (grid, AOI and sites files), ``flags.geojson`` (the
    published flags: false alarms already left out) and ``site_status.csv`` (recovery
    classes). Reads only; raises ``InputError`` naming the file when one is missing.
    """
    workspace = Path(workspace)
    manifest_path = workspace / schema.MANIFEST_FILE
    flags_path = workspace / schema.FLAGS_FILE
    status_path = workspace / schema.SITE_STATUS_FILE
    manifest = _read_json(manifest_path)
    grid = run_grid(manifest, manifest_path)
    flags = _read_json(flags_path)
    if not status_path.is_file():
        raise InputError("missing; run `minewatch run` on this workspace first", file=status_path)
    status = pd.read_csv(status_path, dtype={"site_id": str})
    inputs = manifest.get("inputs") or {}

    rows, cols = grid.shape
    aoi = np.ones(grid.shape, bool)
    if inputs.get("aoi"):
        from pipeline.inputs.vectors import read_aoi

        aoi_grid = gpd.GeoSeries([read_aoi(inputs["aoi"])], crs="EPSG:4326").to_crs(grid.crs)
        aoi = _burn(list(aoi_grid), grid)

    geoms = [shape(f["geometry"]) for f in flags.get("features", []) if f.get("geometry")]
    flagged = np.zeros(grid.shape, bool)
    if geoms:
        flagged = _burn(list(gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(grid.crs)), grid)
    # Distance in pixels from each pixel centre to the nearest flagged centre.
    near = distance_transform_edt(~flagged) * grid.resolution <= BUFFER_M if geoms else flagged

    restored = np.zeros(grid.shape, bool)
    on_site = np.zeros(grid.shape, bool)
    if inputs.get("sites"):
        from pipeline.inputs.vectors import read_sites

        sites = read_sites(inputs["sites"]).to_crs(grid.crs)
        classes = dict(zip(status["site_id"], status["recovery_class"], strict=True))
        is_restored = [classes.get(str(s)) == "restored" for s in sites["site_id"]]
        on_site = _burn(list(sites.geometry), grid)
        restored = _burn([g for g, r in zip(sites.geometry, is_restored, strict=True) if r], grid)

    strata = np.full((rows, cols), STRATA.index("rest"), np.int8)
    strata[on_site] = STRATA.index("site")
    strata[unconfirmed_change(workspace, grid, manifest)] = STRATA.index("unconfirmed")
    strata[restored] = STRATA.index("restored")
    strata[near] = STRATA.index("buffer")
    strata[flagged] = STRATA.index("excavation")
    strata[~aoi] = OUTSIDE
    sources = {
        name: _sha256(workspace / name)
        for name in (schema.FLAGS_FILE, schema.SITE_STATUS_FILE, schema.MANIFEST_FILE)
    }
    return StrataMap(grid, strata, str(manifest.get("run_id") or ""), sources)


def unconfirmed_change(workspace: Path, grid: GridSpec, manifest: Mapping) -> np.ndarray:
    """Pixels with fresh-bare change the detector has seen but not confirmed.

    From the run's saved fold states (``saved_layers``): a pixel counts when its
    current run of fresh-bare looks has begun (``run_start``) or it has an onset.
    Without saved states the stratum is empty: it is a design choice made before the
    draw, so the estimate stays unbiased without it, only wider.
    """
    layers = read_fold_layers(workspace, grid, manifest, ("run_start", "onset"))
    if layers is None:
        return np.zeros(grid.shape, bool)
    return (layers["run_start"] >= 0) | (layers["onset"] >= 0)


def _burn(geoms: list, grid: GridSpec) -> np.ndarray:
    """Pixels whose centre lies in any of ``geoms`` (grid CRS)."""
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(grid.shape, bool)
    burnt = rasterize(
        [(g, 1) for g in geoms], out_shape=grid.shape, transform=grid.transform, dtype="uint8"
    )
    return burnt.astype(bool)


def allocate(
    counts: Mapping[str, int], n: int, *, minimum: int = MIN_PER_STRATUM
) -> dict[str, int]:
    """Units per stratum: at least ``minimum`` in each (or all its pixels), the rest by area.

    Strata whose proportional share falls under ``minimum`` are fixed at ``minimum``
    (capped by their pixel count) and the remaining units are shared in proportion to
    area among the others, repeated until no share falls short; shares are rounded by
    largest remainder so they sum to ``n``. A stratum with pixels gets at least 2 units
    (a stratum variance needs two). When ``n`` cannot give every stratum its minimum,
    the strata share ``n`` equally.
    """
    sizes = {k: int(v) for k, v in counts.items() if int(v) > 0}
    if n < 2 * len(sizes):
        raise InputError(
            f"n={n} is too small: need at least 2 per stratum ({len(sizes)} strata)", field="n"
        )
    if n > sum(sizes.values()):
        raise InputError(f"n={n} exceeds the {sum(sizes.values())} pixels of the AOI", field="n")
    fixed: dict[str, int] = {}
    floor = min(minimum, n // len(sizes))
    while True:
        free = {k: v for k, v in sizes.items() if k not in fixed}
        left = n - sum(fixed.values())
        total = sum(free.values())
        shares = {k: left * v / total for k, v in free.items()} if total else {}
        short = {k for k, s in shares.items() if s < min(floor, sizes[k])}
        if not short:
            break
        for k in short:
            fixed[k] = min(floor, sizes[k])
    alloc = {k: int(np.floor(s)) for k, s in shares.items()}
    rest = left - sum(alloc.values())
    for k in sorted(shares, key=lambda k: (shares[k] - alloc[k], sizes[k]), reverse=True)[:rest]:
        alloc[k] += 1
    alloc.update(fixed)
    for k in alloc:
        alloc[k] = min(max(alloc[k], 2), sizes[k])
    return {k: alloc.get(k, 0) for k in counts}


def draw_sample(strata: StrataMap, n: int, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """The stratified random sample (``SAMPLE_COLUMNS``) and its allocation.

    Pixels are drawn without replacement inside each stratum, in stratum order, from one
    generator seeded with ``seed``; the points are the pixel centres in WGS84.
    """
    counts = strata.counts()
    alloc = allocate(counts, n)
    rng = np.random.default_rng(seed)
    flat = strata.strata.ravel()
    picked: list[tuple[str, np.ndarray]] = []
    for code, name in enumerate(STRATA):
        if alloc.get(name, 0) == 0:
            continue
        pixels = np.flatnonzero(flat == code)
        picked.append((name, np.sort(rng.choice(pixels, size=alloc[name], replace=False))))
    names = [name for name, idx in picked for _ in idx]
    idx = np.concatenate([idx for _, idx in picked]) if picked else np.array([], int)
    rows, cols = np.divmod(idx, strata.grid.shape[1])
    x, y = strata.grid.transform * (cols + 0.5, rows + 0.5)
    to_wgs84 = Transformer.from_crs(strata.grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(np.asarray(x), np.asarray(y))
    frame = pd.DataFrame(
        {
            "sample_id": [f"S{i + 1:04d}" for i in range(len(idx))],
            "stratum": names,
            "lon": np.round(lon, COORD_DECIMALS),
            "lat": np.round(lat, COORD_DECIMALS),
            "map_class": [STRATUM_MAP_CLASS[s] for s in names],
            "reference": "",
        },
        columns=list(SAMPLE_COLUMNS),
    )
    return frame, alloc


def strata_path(sample_csv: Path) -> Path:
    """The sidecar beside a sample CSV: ``sample.csv`` -> ``sample.strata.json``."""
    return Path(sample_csv).with_suffix(".strata.json")


def write_sample(workspace: Path, out: Path, *, n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Draw the sample from ``workspace``'s map; write ``out`` and its strata sidecar.

    The sidecar holds what the estimator needs besides the labels: each stratum's size
    in pixels, its map class and allocation, the pixel area, and the run and files the
    map was rebuilt from. Nothing is written to the workspace.
    """
    if n < 1:
        raise InputError("must be a positive number of sample points", field="n")
    strata = load_strata(workspace)
    frame, alloc = draw_sample(strata, n, seed)
    counts = strata.counts()
    sidecar = {
        "workspace": str(Path(workspace).resolve()),
        "run_id": strata.run_id,
        "seed": seed,
        "n": len(frame),
        "pixel_area_m2": strata.pixel_area_m2,
        "buffer_m": BUFFER_M,
        "strata": {
            name: {
                "pixels": counts[name],
                "map_class": STRATUM_MAP_CLASS[name],
                "n": int(alloc.get(name, 0)),
            }
            for name in STRATA
        },
        "sources": strata.sources,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, frame)
    write_json(strata_path(out), sidecar)
    log.info(
        "sample of %d points (seed %d) from %s written to %s", len(frame), seed, workspace, out
    )
    return frame, sidecar
