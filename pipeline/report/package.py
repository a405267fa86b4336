"""The county enforcement package: ``minewatch flags export``.

What a county enforcement unit receives, as one folder:

- ``flags.geojson`` / ``flags.csv``: the county's open flags (the run's ``flags.geojson``
  joined with the ledger's status; open = enforceable and not ``false_alarm``/``resolved``),
  every contract property plus ``status``. The CSV has ``lon``/``lat`` and no geometry and
  starts with a UTF-8 byte-order mark so Excel reads Chinese text correctly.
- ``chips/<flag>_before.png`` / ``chips/<flag>_after.png``: true-colour chips of the
  flag's surroundings from the clearest look before ``first_detected`` and the clearest
  look between ``confirmed`` (or ``first_detected``) and ``last_seen``, the flag outlined.
- ``plots/<flag>.png``: the NDVI and BSI trajectory of the flag's pixels (clear looks).
- ``index.html``: one page listing the flags with their chips and plots (relative links).
- ``manifest.json``: provenance and, per flag, the dates of the chips.

Imagery is read lazily and only over each flag's window: a cube is built on the
window's own sub-grid of the run's grid (so every read task reads just that window,
not the run's 512-pixel chunks), masked, cropped with ``isel`` and computed once per flag.

The package is written to a staging folder next to ``dest`` and renamed into place at
the end, so a failed export never leaves a half-written package.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import shapely.geometry
from affine import Affine
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from pipeline import __version__, schema
from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.indices import add_indices
from pipeline.inputs import read_sites
from pipeline.ledger import LEDGER_FILE, list_flags, open_ledger
from pipeline.masking import mask_clouds
from pipeline.report import i18n
from pipeline.report.charts import flag_is_open
from pipeline.report.package_render import (
    chip_png,
    index_html,
    trajectory_png,
)
from pipeline.sources.base import GridSpec, Scene
from pipeline.sources.local import load_cube, read_catalog

log = logging.getLogger(__name__)

PACKAGE_KIND = "minewatch-county-package"
CHIP_BUFFER_M = 150.0  # context around a flag: ~15 pixels, enough to see the pit's edges
CHIP_MIN_PX = 60  # a chip is at least 600 m x 600 m at 10 m so a small dig has surroundings
# A look enters the flag's trajectory when at least half its pixels are clear: a median
# over the two clear pixels beside a cloud says more about the cloud edge than the dig.
TRAJECTORY_MIN_CLEAR = 0.5


@dataclass(frozen=True)
class ChipLook:
    """The look a chip shows."""

    date: str
    """Acquisition date (ISO)."""
    clear_fraction: float
    """Share of the chip window's pixels that are clear on that date."""
    file: str
    """Path of the PNG inside the package."""


@dataclass
class PackageFlag:
    """One open flag of the package and what was drawn for it."""

    properties: dict[str, Any]
    """Contract properties plus ``status`` (and any extra properties of the run)."""
    geometry: dict[str, Any] | None
    """GeoJSON geometry (WGS84)."""
    before: ChipLook | None = None
    after: ChipLook | None = None
    plot: str | None = None
    """Path of the trajectory PNG inside the package."""
    n_looks: int = 0
    """Clear looks in the trajectory."""


@dataclass(frozen=True)
class PackageResult:
    dest: Path
    county: str
    n_flags: int
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    workspace: Path
    manifest: dict[str, Any]
    features: list[dict[str, Any]]
    cfg: RunConfig


# ---------------------------------------------------------------- entry point


def export_county_package(
    workspace: Path,
    dest: Path,
    *,
    county: str,
    language: str | None = None,
    ledger: sqlite3.Connection | None = None,
) -> PackageResult:
    """Write ``county``'s enforcement package for the run in ``workspace`` into ``dest``.

    ``language`` defaults to the run's ``report.language``; ``ledger`` is an open
    connection to the workspace's ledger (opened here when not given). Raises
    ``InputError`` when the workspace holds no run, when ``county`` is neither a site's
    nor a flag's county, or when ``dest`` exists and is not an earlier package. A county
    with no open flags gets an empty package.
    """
    run = _read_run(workspace)
    lang = i18n.check_language(language or run.cfg.report.language)
    _check_dest(dest)
    with _ledger(workspace, ledger) as con:
        ledger_rows = list_flags(con)
    flags = _open_county_flags(run, ledger_rows, county)
    log.info("county %s: %d open flags", county, len(flags))

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        _draw_imagery(run, flags, staging, lang)
        files = _write_package(run, flags, staging, county, lang)
        _replace_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PackageResult(dest=dest, county=county, n_flags=len(flags), files=files)


@contextmanager
def _ledger(workspace: Path, con: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
    if con is not None:
        yield con
        return
    if not (workspace / LEDGER_FILE).exists():
        raise InputError("no flag ledger here; run `minewatch run` first", file=workspace)
    with open_ledger(workspace) as own:
        yield own


# ---------------------------------------------------------------- inputs


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError("no run in this workspace; run `minewatch run` first", file=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable ({exc})", file=path) from None


def _read_run(workspace: Path) -> _Run:
    manifest_path = workspace / schema.MANIFEST_FILE
    manifest = _read_json(manifest_path)
    collection = _read_json(workspace / schema.FLAGS_FILE)
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list):
        raise InputError("not a FeatureCollection", file=workspace / schema.FLAGS_FILE)
    for key in ("config", "grid", "period", "inputs"):
        if not isinstance(manifest, dict) or not isinstance(manifest.get(key), dict):
            raise InputError("missing from the run manifest", file=manifest_path, field=key)
    try:
        cfg = RunConfig.model_validate(manifest["config"])
    except ValidationError as exc:
        raise InputError(
            f"the run's config is not valid here ({exc.errors()[0]['msg']})",
            file=manifest_path,
            field="config",
        ) from None
    return _Run(workspace=workspace, manifest=manifest, features=features, cfg=cfg)


def _site_counties(run: _Run) -> set[str]:
    path = run.manifest["inputs"].get("sites")
    if not path:
        return set()
    try:
        sites = read_sites(path)
    except InputError as exc:
        log.warning("county list without the sites file (%s)", exc)
        return set()
    return {str(c) for c in sites["county"].dropna()}


def _open_county_flags(
    run: _Run, ledger_rows: list[dict[str, Any]], county: str
) -> list[PackageFlag]:
    """The county's open flags, with the ledger's status; InputError for an unknown county."""
    by_id = {r["flag_id"]: r for r in ledger_rows}
    flags: list[PackageFlag] = []
    flag_counties: set[str] = set()
    for feature in run.features:
        props = dict(feature.get("properties") or {})
        row = by_id.get(props.get("flag_id"))
        if row is not None:
            props["status"] = row["status"]
        if props.get("county") is not None:
            flag_counties.add(str(props["county"]))
        if str(props.get("county")) == county and flag_is_open(props):
            flags.append(PackageFlag(properties=_ordered(props), geometry=feature.get("geometry")))
    flag_counties |= {str(r["county"]) for r in ledger_rows if r.get("county") is not None}
    if not flags:
        known = _site_counties(run) | flag_counties
        if county not in known:
            raise InputError(
                f"unknown county {county!r}; known counties: {', '.join(sorted(known)) or 'none'}",
                field="county",
            )
    flags.sort(key=lambda f: (str(f.properties.get("first_detected")), f.properties["flag_id"]))
    return flags


def _ordered(props: Mapping[str, Any]) -> dict[str, Any]:
    """Contract properties first, then ``status``, then any others of the run."""
    head = [*schema.FLAG_PROPERTIES, "status"]
    out = {k: props.get(k) for k in head}
    out.update({k: v for k, v in props.items() if k not in out})
    return out


def _check_dest(dest: Path) -> None:
    """``dest`` must be new, empty, or an earlier package (it is then replaced)."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise InputError("exists and is not a folder", file=dest, field="--out")
    if not any(dest.iterdir()):
        return
    try:
        kind = json.loads((dest / schema.MANIFEST_FILE).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != PACKAGE_KIND:
        raise InputError(
            "folder exists and is not a MineWatch county package; give a new or empty folder",
            file=dest,
            field="--out",
        )


def _replace_dir(staging: Path, dest: Path) -> None:
    """Move the finished package into place; an earlier package there is replaced."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- imagery


def _run_grid(run: _Run) -> GridSpec:
    g = run.manifest["grid"]
    try:
        return GridSpec(
            crs=CRS.from_user_input(g["crs"]),
            transform=Affine(*g["transform"][:6]),
            shape=(int(g["shape"][0]), int(g["shape"][1])),
        )
    except (KeyError, TypeError, ValueError, CRSError) as exc:
        raise InputError(
            f"bad grid ({exc})", file=run.workspace / schema.MANIFEST_FILE, field="grid"
        ) from None


def _run_scenes(run: _Run) -> list[Scene]:
    period = run.manifest["period"]
    scenes = read_catalog(
        run.manifest["inputs"]["catalog"],
        band_aliases=run.cfg.provider.band_aliases,
        start=np.datetime64(period["start"]) if period.get("start") else None,
        end=np.datetime64(period["end"]) if period.get("end") else None,
    )
    if not scenes:
        raise InputError(
            "the catalog has no acquisition in the run's period",
            file=run.manifest["inputs"]["catalog"],
            field="period",
        )
    return scenes


def chip_window(geom: BaseGeometry, grid: GridSpec) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the chip around ``geom`` (grid CRS), inside the grid.

    The flag's bounds plus ``CHIP_BUFFER_M``, grown about its centre to at least
    ``CHIP_MIN_PX`` pixels a side (less only where the grid itself is smaller).
    """
    res = grid.resolution
    left, top = grid.transform.c, grid.transform.f
    x0, y0, x1, y1 = geom.buffer(CHIP_BUFFER_M).bounds
    rows, cols = grid.shape

    def span(lo: float, hi: float, size: int) -> tuple[int, int]:
        a, b = math.floor(lo), math.ceil(hi)
        if b - a < CHIP_MIN_PX:
            grow = CHIP_MIN_PX - (b - a)
            a, b = a - grow // 2, b + grow - grow // 2
        if b - a >= size:
            return 0, size
        shift = max(0, -a) - max(0, b - size)
        return a + shift, b + shift

    c0, c1 = span((x0 - left) / res, (x1 - left) / res, cols)
    r0, r1 = span((top - y1) / res, (top - y0) / res, rows)
    return r0, r1, c0, c1


@dataclass(frozen=True)
class _Window:
    """A flag's window, computed: reflectance, clear mask and indices over (time, y, x)."""

    dates: list[date]
    rgb: np.ndarray
    """(time, y, x, 3) red, green, blue reflectance (not cloud-masked)."""
    clear: np.ndarray
    ndvi: np.ndarray
    bsi: np.ndarray
    transform: Affine
    crs: CRS


def read_flag_window(
    scenes: list[Scene], grid: GridSpec, window: tuple[int, int, int, int], run_cfg: RunConfig
) -> _Window:
    """Read one flag's window of every look (one compute; only that window is read).

    The window is padded by the cloud-mask buffer so the mask's dilation is exact at
    the chip's edge, then cropped with ``isel`` before computing.
    """
    r0, r1, c0, c1 = window
    halo = run_cfg.masking.buffer_pixels
    pr0, pc0 = max(0, r0 - halo), max(0, c0 - halo)
    pr1, pc1 = min(grid.shape[0], r1 + halo), min(grid.shape[1], c1 + halo)
    sub = GridSpec(
        crs=grid.crs,
        transform=grid.transform * Affine.translation(pc0, pr0),
        shape=(pr1 - pr0, pc1 - pc0),
    )
    cube = load_cube(scenes, sub, chunk_size=max(sub.shape))
    ds = add_indices(mask_clouds(cube, run_cfg.masking))
    crop = {schema.Y: slice(r0 - pr0, r1 - pr0), schema.X: slice(c0 - pc0, c1 - pc0)}
    cube, ds = cube.isel(crop), ds.isel(crop)

    def band(name: str) -> Any:
        if name in cube:
            return cube[name].data
        return np.full((cube.sizes[schema.TIME], r1 - r0, c1 - c0), np.nan, np.float32)

    red, green, blue, clear, ndvi, bsi = dask.compute(
        band("red"),
        band("green"),
        band("blue"),
        ds["clear"].data,
        ds["ndvi"].data,
        ds["bsi"].data,
        scheduler="threads",
    )
    times = cube[schema.TIME].to_numpy().astype("datetime64[D]")
    return _Window(
        dates=[t.item() for t in times],
        rgb=np.stack([red, green, blue], axis=-1),
        clear=np.asarray(clear, bool),
        ndvi=ndvi,
        bsi=bsi,
        transform=grid.transform * Affine.translation(c0, r0),
        crs=grid.crs,
    )


def pick_look(clear_fraction: np.ndarray, candidates: np.ndarray) -> int | None:
    """Index of the clearest candidate look; ties go to the later look (nearest the change)."""
    idx = np.flatnonzero(candidates)
    if not len(idx):
        return None
    best = np.round(clear_fraction[idx], 3)
    return int(idx[np.flatnonzero(best == best.max())[-1]])


def _as_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _draw_imagery(run: _Run, flags: list[PackageFlag], staging: Path, lang: str) -> None:
    if not flags:
        return
    grid = _run_grid(run)
    scenes = _run_scenes(run)
    (staging / "chips").mkdir()
    (staging / "plots").mkdir()
    names: set[str] = set()
    for flag in flags:
        props = flag.properties
        fid = str(props["flag_id"])
        first = _as_date(props.get("first_detected"))
        if flag.geometry is None or first is None:
            log.warning("flag %s: no geometry or first_detected; no chips", fid)
            continue
        geom = (
            gpd.GeoSeries([shapely.geometry.shape(flag.geometry)], crs="EPSG:4326")
            .to_crs(grid.crs)
            .iloc[0]
        )
        window = chip_window(geom, grid)
        if window[1] <= window[0] or window[3] <= window[2]:
            log.warning("flag %s: outside the run's grid; no chips", fid)
            continue
        win = read_flag_window(scenes, grid, window, run.cfg)
        stem = _file_stem(fid, names)
        days = np.array(win.dates, dtype="datetime64[D]")
        frac = win.clear.reshape(len(days), -1).mean(axis=1)
        after_from = _as_date(props.get("confirmed")) or first
        last = _as_date(props.get("last_seen")) or days[-1].item()
        i_before = pick_look(frac, days < np.datetime64(first))
        in_dig = (days >= np.datetime64(after_from)) & (days <= np.datetime64(last))
        i_after = pick_look(frac, in_dig)
        if i_after is None:
            i_after = pick_look(frac, days >= np.datetime64(first))
        for which, i in (("before", i_before), ("after", i_after)):
            if i is None:
                log.warning("flag %s: no look for the %s chip", fid, which)
                continue
            rel = f"chips/{stem}_{which}.png"
            png = chip_png(
                win.rgb[i], win.transform, geom, fid, which, win.dates[i], float(frac[i]), lang
            )
            (staging / rel).write_bytes(png)
            setattr(flag, which, ChipLook(win.dates[i].isoformat(), round(float(frac[i]), 4), rel))
        dates, ndvi, bsi = _trajectory(win, geom)
        flag.plot, flag.n_looks = f"plots/{stem}.png", len(dates)
        marks = {
            "before": _as_date(flag.before.date) if flag.before else None,
            "after": _as_date(flag.after.date) if flag.after else None,
            "confirmed": _as_date(props.get("confirmed")),
        }
        png = trajectory_png(dates, ndvi, bsi, fid, first, marks, lang)
        (staging / flag.plot).write_bytes(png)
        log.info(
            "flag %s: window %dx%d px, before %s, after %s, %d clear looks",
            fid,
            window[1] - window[0],
            window[3] - window[2],
            flag.before.date if flag.before else None,
            flag.after.date if flag.after else None,
            flag.n_looks,
        )


def _trajectory(win: _Window, geom: BaseGeometry) -> tuple[list[date], np.ndarray, np.ndarray]:
    """Median NDVI and BSI over the flag's clear pixels, for looks mostly clear over it."""
    shape = win.clear.shape[1:]
    inside = geometry_mask([geom], out_shape=shape, transform=win.transform, invert=True)
    if not inside.any():  # a sliver smaller than a pixel centre: take the pixels it touches
        inside = geometry_mask(
            [geom], out_shape=shape, transform=win.transform, invert=True, all_touched=True
        )
    clear = win.clear[:, inside]
    keep = clear.mean(axis=1) >= TRAJECTORY_MIN_CLEAR if inside.any() else np.zeros(0, bool)
    if not keep.any():
        return [], np.array([]), np.array([])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ndvi = np.nanmedian(win.ndvi[:, inside][keep], axis=1)
        bsi = np.nanmedian(win.bsi[:, inside][keep], axis=1)
    return [d for d, k in zip(win.dates, keep, strict=True) if k], ndvi, bsi


def _file_stem(flag_id: str, taken: set[str]) -> str:
    """A safe, unique file name for a flag id (ids come from an input file)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", flag_id)[:80] or "flag"
    out, n = stem, 1
    while out in taken:
        n += 1
        out = f"{stem}-{n}"
    taken.add(out)
    return out


# ---------------------------------------------------------------- tables and page


CSV_LIST_SEPARATOR = ";"


# Text a spreadsheet would run as a formula; such cells get a leading apostrophe (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        value = CSV_LIST_SEPARATOR.join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_package(
    run: _Run, flags: list[PackageFlag], staging: Path, county: str, lang: str
) -> list[str]:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f.properties["flag_id"],
                "geometry": f.geometry,
                "properties": f.properties,
            }
            for f in flags
        ],
    }
    (staging / schema.FLAGS_FILE).write_text(
        json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    columns: list[str] = [*schema.FLAG_PROPERTIES, "status"]
    for f in flags:
        columns += [k for k in f.properties if k not in columns]
    with open(staging / "flags.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for f in flags:
            writer.writerow([_csv_value(f.properties.get(c)) for c in columns])

    m = run.manifest
    manifest = {
        "kind": PACKAGE_KIND,
        "county": county,
        "language": lang,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "run": {
            "run_id": m.get("run_id"),
            "config_hash": m.get("config_hash"),
            "version": m.get("version"),
            "period": m.get("period"),
            "n_items": len(m["inputs"].get("items") or []),
        },
        "n_flags": len(flags),
        "chip_stretch_reflectance": [0.0, 0.3],
        "flags": [
            {
                "flag_id": f.properties["flag_id"],
                "first_detected": f.properties.get("first_detected"),
                "confirmed": f.properties.get("confirmed"),
                "last_seen": f.properties.get("last_seen"),
                "before": asdict(f.before) if f.before else None,
                "after": asdict(f.after) if f.after else None,
                "plot": f.plot,
                "trajectory_looks": f.n_looks,
            }
            for f in flags
        ],
    }
    (staging / schema.MANIFEST_FILE).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    page = index_html(
        county=county,
        flags=[(f.properties, f.before, f.after, f.plot) for f in flags],
        run_manifest=m,
        language=lang,
    )
    (staging / "index.html").write_text(page, encoding="utf-8")
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
