"""``minewatch validate``: check every input of a run without running it.

Where ``minewatch run`` stops at the first bad input, this reads on and lists every
problem at once: each config key pydantic refuses, each bad record of the sites,
permits and zones (a bad record is left out and the rest still checked), the AOI,
the catalog and each of its assets' headers, and the sites against the imagery.
With a provider instead of a catalog (``provider.kind`` ``sentinelhub`` or
``stac_api``) the imagery is fetched when the run starts: the provider's settings are
checked (archive, period, credentials present, URLs well formed) without contacting
it, and ``inputs["imagery"]`` says where the imagery will come from.
Nothing is computed and nothing is written. Errors are what would make ``run`` exit
with status 2; warnings are what ``run`` would repair or tolerate and record in
``manifest.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from pipeline.config import RunConfig, check_config
from pipeline.errors import InputError
from pipeline.inputs import InputWarning, read_aoi, read_permits, read_sites, read_zones
from pipeline.inputs.checks import (
    partial_coverage_warnings,
    sites_outside_imagery,
    sliver_warnings,
)
from pipeline.inputs.imagery import check_assets, reprojection_warnings
from pipeline.sources.grid import analysis_grid, grid_crs
from pipeline.sources.local import read_catalog

log = logging.getLogger(__name__)

T = TypeVar("T")
# Overrides that name input files: kept when the config file itself is refused, so the
# files given on the command line are still checked.
PATH_KEYS = ("provider.catalog", "inputs.sites", "inputs.permits", "inputs.zones", "aoi")


@dataclass(frozen=True)
class Problem(InputWarning):
    """One error or warning, named like ``InputError``: file, record, field."""

    level: Literal["error", "warning"] = "warning"

    @classmethod
    def from_error(cls, exc: InputError) -> Problem:
        record = None if exc.record is None else str(exc.record)
        return cls(exc.file, record, exc.field, exc.reason, level="error")

    @classmethod
    def from_warning(cls, warning: InputWarning) -> Problem:
        return cls(warning.file, warning.record, warning.field, warning.message)

    def __str__(self) -> str:
        return f"{self.level}: {super().__str__()}"


@dataclass
class Validation:
    """What ``validate_inputs`` found."""

    inputs: dict[str, str | None] = field(default_factory=dict)
    """Each input, as resolved (absolute paths), or None when not given."""
    problems: list[Problem] = field(default_factory=list)
    """Every error and warning, in the order the inputs were checked."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, exc: InputError) -> None:
        self.problems.append(Problem.from_error(exc))

    def warn(self, warnings: list[InputWarning]) -> None:
        self.problems.extend(Problem.from_warning(w) for w in warnings)

    def attempt(self, check: Callable[[], T]) -> T | None:
        """``check()``, or None with its ``InputError`` recorded."""
        try:
            return check()
        except InputError as exc:
            self.error(exc)
            return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "inputs": self.inputs,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }


def validate_inputs(
    config: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Validation:
    """Check the config and every input it names (``overrides`` as for ``load_config``)."""
    result = Validation()
    cfg = _config(result, config, overrides or {})
    result.inputs = {
        "config": str(Path(config).resolve()) if config is not None else None,
        "catalog": cfg.provider.catalog,
        "sites": cfg.inputs.sites,
        "permits": cfg.inputs.permits,
        "zones": cfg.inputs.zones,
        "aoi": cfg.aoi,
    }
    sites = _vectors(result, cfg)
    aoi_path = cfg.aoi
    aoi = result.attempt(lambda: read_aoi(aoi_path)) if aoi_path else None
    _imagery(result, cfg, sites, aoi)
    return result


def _config(result: Validation, path: str | Path | None, overrides: dict[str, Any]) -> RunConfig:
    cfg, errors = check_config(path, overrides)
    if cfg is not None:
        return cfg
    for exc in errors:
        result.error(exc)
    # Go on with the defaults and the files named on the command line.
    paths = {k: v for k, v in overrides.items() if k in PATH_KEYS}
    cfg, _ = check_config(None, paths)
    return cfg if cfg is not None else RunConfig()


def _vectors(result: Validation, cfg: RunConfig) -> gpd.GeoDataFrame | None:
    """Sites, permits and zones, each file's problems together; the sites read, if any."""

    def read(reader: Callable[[list[InputError]], gpd.GeoDataFrame]) -> gpd.GeoDataFrame | None:
        records: list[InputError] = []
        frame = result.attempt(lambda: reader(records))
        for exc in records:
            result.error(exc)
        if frame is not None:
            result.warn(frame.attrs.get("warnings", []))
        return frame

    sites = None
    sites_path = cfg.inputs.sites
    if not sites_path:
        result.error(InputError("no sites file given: pass --sites or set inputs.sites"))
    else:
        sites = read(lambda errors: read_sites(sites_path, errors=errors))
    read(lambda errors: read_permits(cfg.inputs.permits, sites, errors=errors))
    read(lambda errors: read_zones(cfg.inputs.zones, errors=errors))
    return sites if sites is not None and len(sites) else None


def _url(result: Validation, url: str, key: str, *, secure: bool = False) -> None:
    """An error unless ``url`` is an http(s) URL with a host (``secure``: https only)."""
    config = result.inputs.get("config")
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        result.error(InputError(f"not an http(s) URL: {url!r}", file=config, field=key))
    elif secure and parts.scheme != "https" and not os.environ.get("OAUTHLIB_INSECURE_TRANSPORT"):
        reason = "the token URL must use https (credentials are never sent in clear)"
        result.error(InputError(reason, file=config, field=key))


def _provider(result: Validation, cfg: RunConfig) -> None:
    """The settings a fetch needs, checked without contacting the provider."""
    from pipeline.fetch.sentinelhub import ENV_CLIENT_ID, ENV_CLIENT_SECRET

    provider, config = cfg.provider, result.inputs.get("config")
    if provider.catalog:
        result.problems.append(
            Problem(
                config,
                None,
                "provider.catalog",
                f"provider.kind is {provider.kind}: the catalog is not read, imagery is "
                "fetched into provider.archive",
            )
        )
    if not provider.archive:
        reason = "no archive folder given: set provider.archive"
        result.error(InputError(reason, file=config, field="provider.archive"))
    if cfg.period.start is None or cfg.period.end is None:
        result.error(
            InputError(
                "fetching needs a period: pass --start and --end or set period.start/period.end",
                file=config,
                field="period",
            )
        )
    if provider.kind == "sentinelhub":
        sh = provider.sentinelhub
        has_id = os.environ.get(ENV_CLIENT_ID) or sh.client_id
        has_secret = os.environ.get(ENV_CLIENT_SECRET) or sh.client_secret
        if not has_id or not has_secret:
            result.error(
                InputError(
                    f"Sentinel Hub needs OAuth client credentials: set {ENV_CLIENT_ID} and "
                    f"{ENV_CLIENT_SECRET} (or provider.sentinelhub.client_id / client_secret)",
                    file=config,
                    field="provider.sentinelhub.client_secret",
                )
            )
        _url(result, sh.base_url, "provider.sentinelhub.base_url")
        _url(result, sh.token_url, "provider.sentinelhub.token_url", secure=True)
        source = f"Sentinel Hub at {sh.base_url}"
    else:
        api = provider.stac_api
        _url(result, api.url, "provider.stac_api.url")
        if not api.collection.strip():
            reason = "no collection given"
            result.error(InputError(reason, file=config, field="provider.stac_api.collection"))
        source = f"the STAC API {api.url} (collection {api.collection})"
    result.inputs["archive"] = provider.archive
    result.inputs["imagery"] = (
        f"fetched from {source} into the archive when the run starts (the service is "
        "not contacted here, so whether it accepts the credentials is not known yet)"
    )


def _imagery(result: Validation, cfg: RunConfig, sites: gpd.GeoDataFrame | None, aoi: Any) -> None:
    if cfg.provider.kind != "catalog":
        _provider(result, cfg)
        return
    catalog = cfg.provider.catalog
    if not catalog:
        result.error(InputError("no catalog given: pass --catalog or set provider.catalog"))
        return
    start = np.datetime64(cfg.period.start) if cfg.period.start else None
    end = np.datetime64(cfg.period.end) if cfg.period.end else None
    scenes = result.attempt(
        lambda: read_catalog(catalog, band_aliases=cfg.provider.band_aliases, start=start, end=end)
    )
    if scenes is None:
        return
    if not scenes:
        result.error(
            InputError("no acquisition in the selected period", file=catalog, field="period")
        )
        return
    scenes, warnings, probes = check_assets(scenes, catalog=catalog)
    result.warn(warnings)
    if not scenes:
        result.error(
            InputError("no readable acquisition: every one has an unreadable asset", file=catalog)
        )
        return
    grid = result.attempt(
        lambda: analysis_grid(
            scenes,
            resolution=cfg.grid.resolution,
            crs=grid_crs(cfg.grid.crs, aoi=aoi, sites=sites),
        )
    )
    if grid is None:
        return
    result.warn(reprojection_warnings(probes, grid, catalog=catalog))
    if aoi is not None:
        aoi_grid = gpd.GeoSeries([aoi], crs="EPSG:4326").to_crs(grid.crs).iloc[0]
        if not aoi_grid.intersects(box(*grid.bounds)):
            result.error(
                InputError(
                    "the area of interest does not overlap the imagery",
                    file=cfg.aoi,
                    field="geometry",
                )
            )
    if sites is not None:
        outside = sites_outside_imagery(sites, grid)
        if len(outside) == len(sites):  # nothing to watch: the run refuses it too
            for exc in outside:
                result.error(exc)
        else:  # the run goes on without them, naming them
            result.warn([InputWarning(e.file, str(e.record), e.field, e.reason) for e in outside])
        result.warn(partial_coverage_warnings(sites, grid))
        result.warn(sliver_warnings(sites, grid.crs, cfg.detection))
