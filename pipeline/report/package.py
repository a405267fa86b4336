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
- ``index.html``: the report's flag list for these flags, chips and plots linked.
- ``manifest.json``: provenance and, per flag, the dates of the chips.

This module decides what goes in (the run, the ledger, the county, the destination);
``evidence`` reads each flag's window (only that window), ``package_files`` draws and
writes. The package is written to a staging folder next to ``dest`` and renamed into
place at the end, so a failed export never leaves a half-written package.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.errors import CRSError

from pipeline import schema
from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.inputs import read_sites
from pipeline.ledger import LEDGER_FILE, list_flags, open_ledger
from pipeline.report import i18n
from pipeline.report.charts import flag_is_open
from pipeline.report.package_files import PackageFlag, draw_imagery, write_package
from pipeline.sources.base import GridSpec, Scene
from pipeline.sources.local import read_catalog

log = logging.getLogger(__name__)

PACKAGE_KIND = "minewatch-county-package"


@dataclass(frozen=True)
class PackageResult:
    """What ``export_county_package`` wrote."""

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
        if flags:
            draw_imagery(_run_scenes(run), _run_grid(run), run.cfg.masking, flags, staging, lang)
        site_names = {
            str(s["site_id"]): {"name": s.get("name")}
            for s in (_read_run_sites(run) if flags else [])
        }
        files = write_package(
            run.manifest, flags, staging, county, lang, kind=PACKAGE_KIND, site_info=site_names
        )
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


def _read_run_sites(run: _Run) -> list[dict[str, Any]]:
    """The run's sites (attributes only); empty when the sites file is gone or unreadable."""
    path = run.manifest["inputs"].get("sites")
    if not path:
        return []
    try:
        sites = read_sites(path)
    except InputError as exc:
        log.warning("sites file unreadable; no site names or county list (%s)", exc)
        return []
    return sites.drop(columns="geometry").to_dict("records")


def _site_counties(run: _Run) -> set[str]:
    return {str(s["county"]) for s in _read_run_sites(run) if s.get("county") is not None}


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
