"""Which digging makes a site ``disturbed``: a fresh dig where digging is not allowed.

``disturbed`` is a recovery class: the site was dug where nobody may dig. Digging is
not allowed (``digging_forbidden``)

* on a closed illegal site or any ``illegal`` one (domain.md: closed and banned, any
  new digging is a violation), and on a ``suspended`` or ``closed`` site (no
  production during a suspension, 停产整治), over the whole imagery, whether or not
  restoration has begun there;
* on restored or restoring land: from ``restoration_start`` on (a ``restoring`` site
  without a start date: over the whole imagery).

A producing mine digs by right until its restoration begins; digging outside its
permit is reported by the flag's violation, not as a lost restoration, and a
``within_permit`` flag never counts.

Only confirmed flags are digs here (a second clear look agreed): one look can be a
cloud edge or the first look at a die-back. A dig counts for a site when it lies
mostly on it (at least ``DIG_ON_SITE_MIN`` of the flag's area), or when the part of
it on the site covers at least ``cfg.disturbed_fraction_min`` of the site (a large
dig at the site's edge). So any confirmed flag on the site counts, however small (it
already passed the mapping unit and the persistence test), while a flag that only
clips a site's edge does not.
``dug_shares`` gives each such site the share of its area dug by the digs that
count, the ``disturbed_fraction`` of ``site_status.csv`` and of the model's inputs.
A site with a share above 0 is ``disturbed`` (rules and model alike).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import geopandas as gpd
import pandas as pd
from shapely import STRtree
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

logger = logging.getLogger(__name__)

# A dig lies on a site when at least half its area does (the site is where it is).
DIG_ON_SITE_MIN = 0.5

# Sites where digging is forbidden over the whole imagery.
CLOSED_STATUSES = frozenset({"suspended", "closed"})
BANNED_CATEGORIES = frozenset({"illegal"})


def digging_forbidden(site: pd.Series, day: date) -> bool:
    """Whether a dig first seen on ``day`` is forbidden on ``site`` (see the module docstring)."""
    if site.get("category") in BANNED_CATEGORIES or site.get("status") in CLOSED_STATUSES:
        return True
    start = site.get("restoration_start")
    if start is None or pd.isna(start):
        return site.get("status") == "restoring"
    return pd.Timestamp(start).date() <= day


def dug_shares(
    digs: Iterable[tuple[BaseGeometry, date, str]],
    sites_grid: gpd.GeoDataFrame,
    *,
    min_fraction: float,
) -> dict[str, float]:
    """Share of each site dug by the digs that count (module docstring); only sites above 0.

    ``digs`` are (geometry in ``sites_grid``'s metric CRS, first_detected, violation);
    ``min_fraction`` is ``cfg.recovery.disturbed_fraction_min``.
    """
    counted = [(g, d) for g, d, v in digs if v != "within_permit" and g.area > 0]
    out: dict[str, float] = {}
    if not counted:
        return out
    # Each site looks at the digs near it only, and only sites with a dig near are looked
    # at (a row of a city's 2,000 sites costs more than the test).
    tree = STRtree([g for g, _ in counted])
    near: dict[int, list[int]] = {}
    for k, i in zip(*tree.query(sites_grid.geometry.to_numpy()).tolist(), strict=True):
        near.setdefault(k, []).append(i)
    for k in sorted(near):
        site = sites_grid.iloc[k]
        area = site.geometry.area
        if not area:
            continue
        kept = []
        for i in sorted(near[k]):
            geom, day = counted[i]
            if not geom.intersects(site.geometry) or not digging_forbidden(site, day):
                continue
            inside = geom.intersection(site.geometry).area
            if inside >= DIG_ON_SITE_MIN * geom.area or inside >= min_fraction * area:
                kept.append(geom)
        if kept:
            share = float(site.geometry.intersection(unary_union(kept)).area / area)
            if share > 0:
                out[str(site["site_id"])] = share
                logger.debug("site %s: %.3f of its area dug where digging is not allowed",
                             site["site_id"], share)  # fmt: skip
    return out
