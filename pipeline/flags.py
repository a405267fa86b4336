"""From per-pixel change layers to flags: components, dates, area, confidence, violation.

A flag's ``confidence`` and ``level`` both come from ``flag_confidence.flag_confidence``.

Connected changed pixels (8-connectivity) form one flag; components smaller than the
minimum mapping unit are dropped, except on closed illegal sites, which must stay
closed and have their own, lower unit. A flag's dates come from its pixels: the
first onset (``first_detected``), the first confirmation and the latest look that
still showed bare ground. Its provisional id comes from its seed pixel (the pixel
with the earliest onset) so the same disturbance gets the same id on every run;
the ledger keeps ids of flags already issued.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.features import rasterize, shapes
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from pipeline import schema
from pipeline.config import DetectionConfig
from pipeline.die_back import RestoringSite, died_back, green_level
from pipeline.excavation import CHANGE_LAYERS, persistent_change
from pipeline.flag_confidence import FlagEvidence, flag_confidence
from pipeline.recovery.disturbance import dug_shares
from pipeline.sources.base import GridSpec

log = logging.getLogger(__name__)
_L = {name: i for i, name in enumerate(CHANGE_LAYERS)}


@dataclass
class Flag:
    """One suspected new excavation (geometry in the analysis grid's CRS)."""

    flag_id: str
    geometry: BaseGeometry
    first_detected: date
    confirmed: date | None
    last_seen: date
    area_m2: float
    confidence: float
    level: str
    has_history: bool
    prior_ndvi: float
    violation: str = "unregistered"
    # The ground was green before: prior NDVI at least prior_ndvi_min, a late change
    # (bare ground that went on into the green season of ground green the year before),
    # or a site under restoration whose green level over the year before reached it
    # (``greened_site``: a dig into dormant cover, in winter or a dry spell).
    green_before: bool = False
    site_id: str | None = None
    permit_id: str | None = None
    zone_ids: list[str] = field(default_factory=list)
    county: str | None = None


def flag_seed_id(day: date, x: float, y: float, epsg: int | None) -> str:
    """A provisional id from the first day and the seed pixel's centre."""
    digest = hashlib.sha1(f"{epsg}:{x:.1f}:{y:.1f}".encode()).hexdigest()[:6]
    return f"F{day:%Y%m%d}-{digest}"


def build_flags(
    layers: np.ndarray,
    grid: GridSpec,
    dates: Sequence[date],
    cfg: DetectionConfig,
    *,
    aoi_mask: np.ndarray | None = None,
    closed_sites: Sequence[BaseGeometry] = (),
    restoring_sites: Sequence[RestoringSite] = (),
) -> list[Flag]:
    """Components of persistent change as flags (no violation yet).

    ``restoring_sites``: sites under restoration with their NDVI looks (also whether
    a flag's ground was green before, ``greened_site``). A change there that began
    after the restoration did and may have been gradual (a late one: bare ground that
    went on from a harvest into the green season, or a change from low cover that no
    band's abrupt line caught, on ground green within the year before: ``excavation``'s
    ``late``; or one first seen after more than ``gradual_gap_days`` without a clear
    look), on a site that lost its green over the year after (``die_back.died_back``),
    is a planting that died back, which the recovery classes report, not a dig: it
    makes no flag unless its abrupt pixels alone make the mapping unit (then the whole
    component is a dig that grew: ``restored_land``).
    """
    onset = layers[_L["onset"]]
    n_since, n_bare = layers[_L["n_since"]], layers[_L["n_bare"]]
    late = layers[_L["late"]].ravel() > 0
    changed = persistent_change(layers, cfg)
    if aoi_mask is not None:
        changed &= aoi_mask
    died = np.zeros(grid.shape, bool)
    if restoring_sites and changed.any():
        died = died_back(layers, changed, grid, dates, restoring_sites, cfg)
    labels, _ = ndimage.label(changed, structure=np.ones((3, 3), bool))  # 8-connected
    if labels.max() == 0:
        return []
    pixel_area = grid.resolution**2
    closed = np.zeros(grid.shape, bool)
    if closed_sites:
        closed = rasterize(
            [(g, 1) for g in closed_sites],
            out_shape=grid.shape,
            transform=grid.transform,
            all_touched=True,
        ).astype(bool)
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, labels.max() + 2))
    keep = np.zeros(labels.max() + 1, bool)
    members: dict[int, np.ndarray] = {}
    for lab in range(1, labels.max() + 1):
        idx = order[bounds[lab - 1] : bounds[lab]]
        area = idx.size * pixel_area
        mmu = cfg.min_mapping_unit_ha * schema.M2_PER_HA
        if closed.ravel()[idx].any():
            mmu = cfg.closed_site_mmu_ha * schema.M2_PER_HA
        if area >= mmu and (idx.size - died.ravel()[idx].sum()) * pixel_area >= mmu:
            keep[lab] = True
            members[lab] = idx
    polygons: dict[int, list] = {lab: [] for lab in members}
    kept_labels = np.where(keep[labels], labels, 0).astype(np.int32)
    for geom, value in shapes(kept_labels, mask=kept_labels > 0, transform=grid.transform):
        polygons[int(value)].append(shape(geom))
    epsg = grid.crs.to_epsg()
    flags = []
    cols = grid.shape[1]
    for lab, idx in members.items():
        on = onset.ravel()[idx]
        first = int(on.min())
        seed = int(idx[on == first].min())
        row, col = divmod(seed, cols)
        x, y = grid.transform @ (col + 0.5, row + 0.5)
        conf = layers[_L["confirm"]].ravel()[idx]
        conf = conf[conf >= 0]
        # Sums, shares and medians in float64 (the layers are float32, ``change_layers``).
        since = n_since.ravel()[idx].astype(np.float64)
        bare = n_bare.ravel()[idx].astype(np.float64)
        persistence = float(bare.sum() / max(since.sum(), 1))
        history = bool(np.mean(layers[_L["has_history"]].ravel()[idx], dtype=np.float64) >= 0.5)
        confirmed = dates[int(conf.min())] if conf.size else None
        prior = float(np.nanmedian(layers[_L["prior_ndvi"]].ravel()[idx].astype(np.float64)))
        geometry = unary_union(polygons[lab])
        gaps = layers[_L["gap_days"]].ravel()[idx].astype(np.float64)
        abrupt_known = bool(np.median(gaps) <= cfg.gradual_gap_days)
        confidence, level = flag_confidence(
            FlagEvidence(
                confirmed=confirmed is not None,
                n_bare=float(np.median(bare)),
                persistence=persistence,
                history=history,
                abrupt_known=abrupt_known,
            )
        )
        flags.append(
            Flag(
                flag_id=flag_seed_id(dates[first], x, y, epsg),
                geometry=geometry,
                first_detected=dates[first],
                confirmed=confirmed,
                last_seen=dates[int(layers[_L["last"]].ravel()[idx].max())],
                area_m2=float(idx.size * pixel_area),
                confidence=confidence,
                level=level,
                has_history=history,
                prior_ndvi=prior,
                green_before=bool(
                    prior >= cfg.prior_ndvi_min
                    or np.mean(late[idx]) >= 0.5
                    or greened_site(geometry, dates[first], restoring_sites, cfg.prior_ndvi_min)
                ),
            )
        )
    flags.sort(key=lambda f: (f.first_detected, f.flag_id))
    return flags


def greened_site(
    geometry: BaseGeometry, day: date, restoring: Sequence[RestoringSite], line: float
) -> bool:
    """Whether the site under restoration ``geometry`` overlaps most had begun by ``day``
    and reached ``line`` in its green level over the year before (``die_back.green_level``:
    its growing season's NDVI). The looks just before a dig into a restored grassland in
    winter, or into loess grass in a dry spell, show dormant cover below the line; the
    site's summer did not."""
    overlap = [
        (site.geometry.intersection(geometry).area, site)
        for site in restoring
        if site.geometry.intersects(geometry)
    ]
    area, site = max(overlap, key=lambda pair: pair[0], default=(0.0, None))
    return bool(
        site is not None and area > 0 and site.start <= day and green_level(site, day) >= line
    )


def _valid_on(row: pd.Series, day: date) -> bool:
    start, end = row.get("valid_from"), row.get("valid_to")
    return (start is None or pd.isna(start) or start <= day) and (
        end is None or pd.isna(end) or day <= end
    )


def attribute_violations(
    flags: list[Flag],
    sites: gpd.GeoDataFrame,
    permits: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    cfg: DetectionConfig,
    *,
    counties: gpd.GeoDataFrame | None = None,
) -> list[Flag]:
    """Set violation, site, permit, zones and county on each flag (all frames in the grid CRS).

    Applicable kinds: ``illegal_site`` (inside an illegal site), ``suspended_site``
    (inside a suspended site), ``restored_land`` (inside a site whose restoration had
    begun and whose ground was green before: prior NDVI >= ``prior_ndvi_min``, or a
    late change, ``Flag.green_before``),
    ``within_permit`` (mostly inside a valid permit of a producing licensed site),
    ``outside_permit`` (licensed site, or within ``outside_permit_buffer_m`` of one of
    its permits, of its boundary when it has none, but mostly outside them),
    ``no_mining_zone`` (touches a zone); ``unregistered`` when none applies.
    ``violation_precedence`` picks one.
    """
    rank = {v: i for i, v in enumerate(cfg.violation_precedence)}
    for flag in flags:
        geom = flag.geometry
        applicable: set[str] = set()
        hits = sites[sites.intersects(geom)]
        site = None
        if len(hits):
            overlap = hits.geometry.intersection(geom).area
            site = hits.loc[overlap.idxmax()]
        zone_hits = zones[zones.intersects(geom)] if len(zones) else zones
        flag.zone_ids = sorted(str(z) for z in zone_hits.get("zone_id", []))
        if flag.zone_ids:
            applicable.add("no_mining_zone")
        licensed = site if site is not None and site["category"] == "licensed" else None
        if site is not None:
            if site["category"] == "illegal":
                applicable.add("illegal_site")
            if site["status"] == "suspended":
                applicable.add("suspended_site")
            start = site.get("restoration_start")
            if (
                start is not None
                and not pd.isna(start)
                and start <= flag.first_detected
                and (flag.green_before or flag.prior_ndvi >= cfg.prior_ndvi_min)
            ):
                applicable.add("restored_land")
        if licensed is None and site is None:
            licensed = _nearby_licensed(geom, sites, permits, cfg.outside_permit_buffer_m)
        if licensed is not None:
            own = permits[(permits["site_id"] == licensed["site_id"])] if len(permits) else permits
            own = own[[_valid_on(r, flag.first_detected) for _, r in own.iterrows()]]
            inside = 0.0
            if len(own):
                inside = geom.intersection(unary_union(list(own.geometry))).area / geom.area
                flag.permit_id = str(own.loc[own.distance(geom).idxmin(), "permit_id"])
            if inside >= 0.5 and licensed["status"] == "producing":
                applicable.add("within_permit")
            elif inside < 0.5:
                applicable.add("outside_permit")
            if site is None:
                site = licensed
        flag.site_id = str(site["site_id"]) if site is not None else None
        flag.violation = min(applicable, key=rank.__getitem__) if applicable else "unregistered"
        flag.county = _county(flag, site, sites, counties)
    return flags


def _nearby_licensed(
    geom: BaseGeometry, sites: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, buffer_m: float
) -> pd.Series | None:
    """The licensed site whose permit lies within ``buffer_m`` of a dig, if any.

    Digging beyond a permit is measured from the permit: a site's boundary counts only
    for a licensed site with no permit on record.
    """
    licensed = sites[sites["category"] == "licensed"]
    if not len(licensed):
        return None
    distance = licensed.distance(geom)
    if len(permits):
        by_permit = permits.set_index("site_id").distance(geom).groupby(level=0).min()
        distance = licensed["site_id"].map(by_permit).fillna(distance)
    if distance.min() > buffer_m:
        return None
    return licensed.loc[distance.idxmin()]


def _county(
    flag: Flag, site: pd.Series | None, sites: gpd.GeoDataFrame, counties: gpd.GeoDataFrame | None
) -> str | None:
    if site is not None:
        return str(site["county"])
    point = flag.geometry.representative_point()
    if counties is not None and len(counties) and "county" in counties:
        hit = counties[counties.contains(point)]
        if len(hit):
            return str(hit.iloc[0]["county"])
    if len(sites):
        return str(sites.loc[sites.distance(point).idxmin(), "county"])
    return None


def flag_feature(flag: Flag, geom_wgs84: Any, status: str) -> dict[str, Any]:
    point = geom_wgs84.representative_point()
    geom = geom_wgs84
    if geom.geom_type == "Polygon":
        geom = orient(geom, sign=1.0)
    elif geom.geom_type == "MultiPolygon":
        geom = type(geom)([orient(p, sign=1.0) for p in geom.geoms])
    props = {
        "flag_id": flag.flag_id,
        "first_detected": flag.first_detected.isoformat(),
        "confirmed": flag.confirmed.isoformat() if flag.confirmed else None,
        "last_seen": flag.last_seen.isoformat(),
        "area_m2": round(flag.area_m2, 1),
        "area_mu": round(flag.area_m2 / schema.M2_PER_MU, 2),
        "confidence": flag.confidence,
        "level": flag.level,
        "violation": flag.violation,
        "site_id": flag.site_id,
        "permit_id": flag.permit_id,
        "zone_ids": flag.zone_ids,
        "county": flag.county,
        "lon": round(point.x, 6),
        "lat": round(point.y, 6),
        "status": status,
        "enforcement": flag.violation != "within_permit",
        "seasonal_history": flag.has_history,
    }
    return {"type": "Feature", "id": flag.flag_id, "geometry": mapping(geom), "properties": props}


def disturbed_fractions(
    flags: list[Flag], sites_grid: gpd.GeoDataFrame, *, min_fraction: float
) -> dict[str, float]:
    """Share of each site dug where digging is not allowed (``recovery.disturbance``).

    Only confirmed flags count: a single look can be a cloud edge or the first look at
    a die-back, and a site's class should not rest on it.
    """
    digs = [(f.geometry, f.first_detected, f.violation) for f in flags if f.confirmed]
    return dug_shares(digs, sites_grid, min_fraction=min_fraction)


def add_quiet_time(
    site_status: pd.DataFrame, sites: pd.DataFrame, flags: list[Flag], dates: list[date]
) -> pd.DataFrame:
    """Append ``quiet_since`` and ``quiet_days`` for closed illegal sites.

    A closed illegal site must stay closed; a county may write it off its list once it
    has stayed quiet long enough. Quiet since the last look that still showed a flag
    on it, or, with none, since the start of the imagery (the closure itself is not in
    the inputs). Other sites leave both columns empty.
    """
    closed = sites[(sites["category"] == "illegal") & (sites["status"] == "closed")]
    last_dug: dict[str, date] = {}
    for flag in flags:
        if flag.site_id is not None:
            last_dug[flag.site_id] = max(last_dug.get(flag.site_id, flag.last_seen), flag.last_seen)
    since = {str(sid): last_dug.get(str(sid), dates[0]) for sid in closed["site_id"]}
    out = site_status.copy()
    out["quiet_since"] = out["site_id"].map(lambda s: since[s].isoformat() if s in since else None)
    out["quiet_days"] = (
        out["site_id"]
        .map(lambda s: (dates[-1] - since[s]).days if s in since else None)
        .astype("Int64")
    )
    return out
