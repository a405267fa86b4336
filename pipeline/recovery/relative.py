"""Recovery relative to the site's surroundings, and the model's full input table.

``ring_features`` compares each site with its reference ring (``rings.py``) over the
same windows as ``features.py``:

``ring_peak_ndvi``, ``ring_previous_peak_ndvi``
    The ring's season peak NDVI (same quantile, same minimum of looks) in the latest
    and the previous window; their difference, ``ring_peak_change``, is the year's
    weather as the natural vegetation saw it.
``recovery_ratio``, ``previous_recovery_ratio``, ``recovery_ratio_change``
    Site peak over ring peak. A restored site keeps its ratio through a drought (both
    fall); a dying one loses it while its ring stays green. The ring peak is floored
    at ``RING_PEAK_FLOOR`` so a ring of bare or built land cannot blow the ratio up.
``first_season_ratio``, ``best_earlier_ratio``, ``ratio_drop``
    The same ratio per completed calendar-year season: the first one, the best one
    over before the latest window, and how far the latest ratio fell below that best.
``ring_gap_core``, ``recent_gap_change``
    Look by look (dates on which both are clear): the median of site minus ring NDVI
    over the latest core season, and the change of that gap over the last
    ``RECENT_DAYS`` against the same days a year before (the ring-relative form of
    ``recent_ndvi_change``: a die-back this season, not a dry spell).

``model_features`` joins the site's own features, the ring features, the share of
the site newly dug (from the excavation flags), whether restoration has begun, and the
target as one-hot columns into ``MODEL_FEATURES``, the trained model's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from pipeline.config import RecoveryConfig
from pipeline.recovery.features import (
    BOOKKEEPING,
    CORE_SEASON_MONTHS,
    FEATURE_COLUMNS,
    GROWING_SEASON_MONTHS,
    MIN_SEASON_DATES,
    PEAK_QUANTILE,
    RECENT_DAYS,
    Looks,
    clear_looks,
    season_end,
    site_features,
    site_table,
    yearly_peaks,
)
from pipeline.schema import TARGETS

# The ring peak a ratio divides by is at least this: bare or built surroundings
# (NDVI ~0.1-0.2) would otherwise turn any greening into a huge ratio.
RING_PEAK_FLOOR = 0.3

RING_FEATURE_COLUMNS: tuple[str, ...] = (
    "ring_peak_ndvi",
    "ring_previous_peak_ndvi",
    "ring_peak_change",
    "recovery_ratio",
    "previous_recovery_ratio",
    "recovery_ratio_change",
    "first_season_ratio",
    "best_earlier_ratio",
    "ratio_drop",
    "ring_gap_core",
    "recent_gap_change",
)

TARGET_COLUMNS: tuple[str, ...] = tuple(f"target_{t}" for t in TARGETS)

MODEL_FEATURES: tuple[str, ...] = (
    *FEATURE_COLUMNS,
    *RING_FEATURE_COLUMNS,
    "disturbed_fraction",  # share of the site newly dug since its restoration began
    "restoration_started",  # 1 when restoration_start is on or before assessed_until
    *TARGET_COLUMNS,
)


def ring_features(
    timeseries: pd.DataFrame,
    rings: pd.DataFrame,
    site_ids: list[str],
    *,
    assessed_until: date,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """``RING_FEATURE_COLUMNS`` per site (index ``site_id``); NaN where a ring is unknown."""
    end = pd.Timestamp(assessed_until).normalize()
    site_looks = clear_looks(timeseries, end=end, min_clear_fraction=cfg.min_clear_fraction)
    ring_looks = clear_looks(rings, end=end, min_clear_fraction=cfg.min_clear_fraction)
    by_site, empty = Looks.by_site(site_looks)
    by_ring, _ = Looks.by_site(ring_looks)
    rows = [
        _describe_pair(
            by_site.get(str(sid), empty),
            by_ring.get(str(sid), empty),
            end=end,
            days=cfg.assessment_days,
        )
        for sid in site_ids
    ]
    out = pd.DataFrame(rows, index=pd.Index(site_ids, name="site_id"))
    return out.reindex(columns=list(RING_FEATURE_COLUMNS)).astype("float64")


def model_features(
    timeseries: pd.DataFrame,
    rings: pd.DataFrame,
    sites: pd.DataFrame,
    disturbed: Mapping[str, float],
    *,
    assessed_until: date,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """The model's inputs: ``MODEL_FEATURES`` plus ``last_clear_date``, indexed by site_id."""
    frame = site_table(sites)
    own = site_features(timeseries, frame, assessed_until=assessed_until, cfg=cfg)
    ring = ring_features(timeseries, rings, list(own.index), assessed_until=assessed_until, cfg=cfg)
    out = own.join(ring)
    out["disturbed_fraction"] = [float(disturbed.get(s, 0.0) or 0.0) for s in out.index]
    out["restoration_started"] = (out["days_since_restoration_start"] >= 0).astype("float64")
    targets = frame.set_index("site_id")["target"].reindex(out.index).astype(str)
    for target, column in zip(TARGETS, TARGET_COLUMNS, strict=True):
        out[column] = (targets == target).astype("float64").to_numpy()
    return out.reindex(columns=[*MODEL_FEATURES, *BOOKKEEPING])


def _peak(looks: Looks, window: np.ndarray) -> float:
    season = looks.ndvi[window & np.isin(looks.month, list(GROWING_SEASON_MONTHS))]
    return float(np.quantile(season, PEAK_QUANTILE)) if len(season) >= MIN_SEASON_DATES else np.nan


def _ratio(site: float, ring: float) -> float:
    if np.isnan(site) or np.isnan(ring):
        return np.nan
    return site / max(ring, RING_PEAK_FLOOR)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else np.nan


def _describe_pair(site: Looks, ring: Looks, *, end: pd.Timestamp, days: int) -> dict[str, float]:
    latest_start = end - pd.Timedelta(days=days)
    previous_start = latest_start - pd.Timedelta(days=days)

    site_now = _peak(site, site.between(latest_start, end))
    ring_now = _peak(ring, ring.between(latest_start, end))
    site_before = _peak(site, site.between(previous_start, latest_start))
    ring_before = _peak(ring, ring.between(previous_start, latest_start))
    ratio, previous = _ratio(site_now, ring_now), _ratio(site_before, ring_before)

    site_years, ring_years = yearly_peaks(site, end=end), yearly_peaks(ring, end=end)
    years = site_years.index.intersection(ring_years.index)
    yearly = pd.Series(
        [_ratio(float(site_years[y]), float(ring_years[y])) for y in years], index=years
    )
    earlier = yearly[[season_end(y) <= latest_start for y in years]]
    best = float(earlier.max()) if len(earlier) else np.nan

    # Looks on dates when both the site and its ring were clear.
    common, in_site, in_ring = np.intersect1d(site.day, ring.day, return_indices=True)
    gap = site.ndvi[in_site] - ring.ndvi[in_ring]
    months = site.month[in_site]

    def between(after: pd.Timestamp, until: pd.Timestamp) -> np.ndarray:
        return (common > np.datetime64(after.date())) & (common <= np.datetime64(until.date()))

    core = gap[between(latest_start, end) & np.isin(months, list(CORE_SEASON_MONTHS))]
    recent_start = end - pd.Timedelta(days=RECENT_DAYS)
    year = pd.Timedelta(days=365)
    recent = gap[between(recent_start, end)]
    before = gap[between(recent_start - year, end - year)]
    return {
        "ring_peak_ndvi": ring_now,
        "ring_previous_peak_ndvi": ring_before,
        "ring_peak_change": ring_now - ring_before,
        "recovery_ratio": ratio,
        "previous_recovery_ratio": previous,
        "recovery_ratio_change": ratio - previous,
        "first_season_ratio": float(yearly.iloc[0]) if len(yearly) else np.nan,
        "best_earlier_ratio": best,
        "ratio_drop": best - ratio,
        "ring_gap_core": _median(core),
        "recent_gap_change": (
            _median(recent) - _median(before) if len(recent) >= 2 and len(before) >= 2 else np.nan
        ),
    }
