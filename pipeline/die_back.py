"""Whether a change on a site under restoration is its planting dying back, not a dig.

A restoration that fails loses its green over most of the site (one substrate, one
planting, one drought); a dig takes a part of it and leaves the rest as green as before.
The excavation fold cannot tell a die-back from a dig when the change may have been
gradual: a ``late`` change (bare ground that went on into the green season, or a
change from low cover that no band's abrupt line caught, both on ground green within
the year before), or one first seen after more than ``gradual_gap_days`` without a
clear look. Such changes on a site are a die-back when the site's own NDVI series lost
at least ``die_back_green_loss`` of its green over the year after they began
(``green_lost``). A die-back seen across a shorter cloudy spell looks abrupt to the
fold; on a site that was green and lost it, a change first seen after more than half
that gap is one too, and so are changes over most of the site, however they were
seen, and changes begun while the site was still green (``recent_level``): the site
lost its green with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

from pipeline.config import DetectionConfig
from pipeline.excavation import CHANGE_LAYERS
from pipeline.recovery.features import GROWING_SEASON_MONTHS, clear_looks
from pipeline.sources.base import GridSpec

_L = {name: i for i, name in enumerate(CHANGE_LAYERS)}
WINDOW_DAYS = 365  # the year before a change and the year after it
GREEN_QUANTILE = 0.9  # a season's green level: robust to a missed cloud or two
MIN_SEASON_LOOKS = 2  # growing-season looks a year's green level needs, else all its looks
MOST_OF_SITE = 0.5  # changed share of a site that lost its green: a die-back however seen


@dataclass(frozen=True)
class RestoringSite:
    """A site under restoration: its polygon (grid CRS), start, and clear NDVI looks."""

    geometry: BaseGeometry
    start: date
    days: np.ndarray  # datetime64[D], sorted
    ndvi: np.ndarray  # the site's median NDVI on those days


def restoring_sites(
    sites: pd.DataFrame, timeseries: pd.DataFrame, min_clear_fraction: float
) -> list[RestoringSite]:
    """Sites with a restoration start (``geometry``, ``restoration_start``) and their
    clear looks in the per-site series (the recovery features' ``clear_looks``)."""
    looks = clear_looks(timeseries, end=pd.Timestamp.max, min_clear_fraction=min_clear_fraction)
    days = looks["day"].to_numpy("datetime64[D]")
    ndvi = looks["ndvi_median"].to_numpy("float64")
    by_site = {
        site: (days[rows], ndvi[rows]) for site, rows in looks.groupby("site_id").indices.items()
    }
    none = (np.array([], "datetime64[D]"), np.array([]))
    begun = sites[sites["restoration_start"].notna()]
    return [
        RestoringSite(geom, pd.Timestamp(start).date(), *by_site.get(site_id, none))
        for site_id, geom, start in zip(
            begun["site_id"], begun.geometry, begun["restoration_start"], strict=True
        )
    ]


def _level(site: RestoringSite, looks: np.ndarray) -> float:
    """The green level of the ``looks`` (a mask): the 0.9 quantile of their NDVI in the
    growing season, of them all where fewer than ``MIN_SEASON_LOOKS`` fall in it (NaN
    without looks). A summer under cloud leaves a year of mostly winter looks, whose
    quantile is a winter's, not the year's green."""
    months = site.days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    season = looks & np.isin(months, list(GROWING_SEASON_MONTHS))
    use = season if season.sum() >= MIN_SEASON_LOOKS else looks
    return float(np.quantile(site.ndvi[use], GREEN_QUANTILE)) if use.any() else float("nan")


def green_level(site: RestoringSite, day: date) -> float:
    """The site's green level over the year before ``day`` (NaN without looks)."""
    d = np.datetime64(day, "D")
    return _level(site, (site.days < d) & (site.days >= d - WINDOW_DAYS))


def recent_level(site: RestoringSite, day: date, looks: int) -> float:
    """The site's greenest NDVI of its last ``looks`` clear looks before ``day`` (NaN
    without any): how green it was just before a change. Its greenest, not its median:
    a field's crop ripens before its harvest, and its harvest before that left stubble
    (a farmland restoration at NDVI 0.16, 0.60, 0.29 before its last harvest)."""
    before = site.ndvi[site.days < np.datetime64(day, "D")][-looks:]
    return float(np.max(before)) if before.size else float("nan")


def green_lost(site: RestoringSite, day: date, soil_ndvi: float) -> float:
    """Share of the site's green lost over the year after ``day``: its green level (the
    growing-season looks' 0.9 quantile, ``_level``) over the year before, less that over
    the year after, over the first's height above bare soil (``soil_ndvi``). NaN without
    looks on either side.

    Where the looks end within the year after (the imagery does), the year before is cut
    to the same season: an autumn change seen until spring is not weighed against a
    summer it has not reached yet."""
    d = np.datetime64(day, "D")
    in_after = (site.days >= d) & (site.days < d + WINDOW_DAYS)
    if not in_after.any():
        return float("nan")
    span = min(WINDOW_DAYS, int((site.days[-1] - d).astype(int)) + 1)
    season = (site.days < d) & (site.days >= d - WINDOW_DAYS) & (site.days < d - WINDOW_DAYS + span)
    level = _level(site, season)
    if np.isnan(level):
        level = green_level(site, day)
    if np.isnan(level):
        return float("nan")
    lost = level - _level(site, in_after)
    return float(lost / max(level - soil_ndvi, 0.05))


def died_back(
    layers: np.ndarray,
    changed: np.ndarray,
    grid: GridSpec,
    dates: Sequence[date],
    sites: Sequence[RestoringSite],
    cfg: DetectionConfig,
) -> np.ndarray:
    """Changed pixels that began inside a site after its restoration began, that may
    have been gradual, on a site whose green was lost (``die_back_green_loss``) over the
    year after their median onset; where the site has no look on one side of it, as
    before this test, every such change. And on a site that was green (level at least
    ``prior_ndvi_min``) and lost it, changes first seen after a gap of more than half
    ``gradual_gap_days`` (a die-back seen across a shorter cloudy spell looks abrupt),
    and changes over ``MOST_OF_SITE`` of it."""
    ordinal = np.array([d.toordinal() for d in dates], np.int64)
    # The earliest start where sites overlap: burnt last.
    order = sorted(range(len(sites)), key=lambda k: sites[k].start, reverse=True)
    site_of = rasterize(
        [(sites[k].geometry, k + 1) for k in order],
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="int32",
    )
    began = np.array([0] + [s.start.toordinal() for s in sites], np.int64)[site_of]
    onset = layers[_L["onset"]].astype(np.int64)
    onset_day = np.where(onset >= 0, ordinal[np.clip(onset, 0, len(dates) - 1)], 0)
    gradual = (layers[_L["late"]] > 0) | (layers[_L["gap_days"]] > cfg.gradual_gap_days)
    after = changed & (site_of > 0) & (onset_day >= began)
    died = np.zeros_like(after)
    for k in np.unique(site_of[after]):
        here = after & (site_of == k)
        slow = here & gradual
        day = date.fromordinal(int(np.median(onset_day[slow if slow.any() else here])))
        lost = green_lost(sites[k - 1], day, cfg.soil_ndvi_max)
        if not lost < cfg.die_back_green_loss:  # NaN: no looks to tell, a die-back
            died |= slow
        # A die-back seen across a shorter cloudy spell looks abrupt: a planting dying
        # over a season loses the abrupt NDVI drop in three to four weeks. On a site that
        # was green and lost it, so is a change first seen after more than half of
        # gradual_gap_days, and changes over most of the site (a dig takes a part).
        was_green = green_level(sites[k - 1], day) >= cfg.prior_ndvi_min
        if lost >= cfg.die_back_green_loss and was_green:
            most = here.sum() >= MOST_OF_SITE * (site_of == k).sum()
            died |= here & ((layers[_L["gap_days"]] > cfg.gradual_gap_days / 2) | most)
        # And changes begun while the site was still green, after which it lost its green:
        # a dig takes a part of a site and leaves its median green, so the site's loss
        # began with them. (A dig into a site already dead is a dig: not green then.)
        died |= here & np.isin(onset_day, _dying_from(sites[k - 1], onset_day[here], cfg))
    return died


def _dying_from(site: RestoringSite, onsets: np.ndarray, cfg: DetectionConfig) -> list[int]:
    """The onset days (ordinals) on which ``site`` was still green (the greenest of its
    last ``prior_observations`` clear looks at least ``prior_ndvi_min``) and from
    which it lost its green (``green_lost`` at least ``die_back_green_loss``)."""
    days = [date.fromordinal(int(d)) for d in np.unique(onsets)]
    return [
        day.toordinal()
        for day in days
        if recent_level(site, day, cfg.prior_observations) >= cfg.prior_ndvi_min
        and green_lost(site, day, cfg.soil_ndvi_max) >= cfg.die_back_green_loss
    ]
