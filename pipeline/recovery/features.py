"""Per-site recovery features from the site time series.

This module only *describes* each site; it decides nothing. ``relative.py`` adds the
comparison with the site's surroundings and assembles the trained model's inputs
(``MODEL_FEATURES``); the decision lives in ``predict.py`` (the model) or
``classify.py`` (the rule set, ``recovery.model: rules``).

Which observations are used
    A row of ``timeseries`` is a *clear look* when at least
    ``cfg.min_clear_fraction`` of the site was clear that day and its median NDVI is
    known. Looks after ``assessed_until`` are ignored, so a rerun for an earlier date
    sees exactly what was known then.

Windows
    The *latest window* is the ``cfg.assessment_days`` days ending on
    ``assessed_until`` (365 by default: one full growing season, whatever the month
    the run happens in). The *previous window* is the same length just before it.
    Restoration must be stable over a season (domain.md), so the classifier compares
    the two.

Growing season
    April to October (northern hemisphere). A peak is the 90th percentile of
    ``ndvi_median`` over the growing-season looks, not the maximum: one hazy or
    mis-masked look cannot make a site green, yet the peak still tracks the top of
    the season. A peak needs at least ``MIN_SEASON_DATES`` looks ("confirmed by more
    than one clear look"); with fewer it is NaN.

Fractions
    ``vegetated_fraction``, ``bare_fraction`` and ``water_fraction`` of a window are the
    median over the looks in the core of the season (June to September), when a
    restored canopy is full and a bare pit is still bare; a deciduous forest is
    honestly bare-looking in March, and a whole-year mean would call it half
    restored. When a window has no core-season look they fall back to the median of
    all its clear looks.

Netting and bare ground
    ``core_bsi_median`` (the core season's median bare-soil index) and ``ndvi_spread``
    (how much the looks' NDVI varies over the latest window) separate green
    dust-control netting from grass: netting is green in the visible bands but bright
    in SWIR like the ground beneath it (BSI > 0 at NDVI 0.3), and it does not change.

Seasonal amplitude
    Peak NDVI minus the window's winter level (median NDVI of its November-March
    looks; the 10th percentile of all its looks when winter is hidden by snow or
    cloud). Living vegetation swings with the seasons; green dust-control netting
    and painted or sprayed surfaces hold a constant NDVI of 0.25-0.35 all year and
    have an amplitude near zero. The classifier uses this to keep netting from ever
    reading as restored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import RecoveryConfig
from pipeline.errors import InputError

logger = logging.getLogger(__name__)

GROWING_SEASON_MONTHS = frozenset(range(4, 11))  # April-October, northern hemisphere
CORE_SEASON_MONTHS = frozenset(range(6, 10))  # June-September: full canopy
WINTER_MONTHS = frozenset({11, 12, 1, 2, 3})  # dormant season
SEASON_END = (10, 31)  # (month, day) a calendar year's growing season is over

# Candidate config key ``recovery.peak_quantile``: the quantile of growing-season
# NDVI taken as the season's peak. 0.9 ignores the top tenth of looks (haze, a
# mis-masked cloud edge) while still tracking the season's top.
PEAK_QUANTILE = 0.9

# Candidate config key ``recovery.min_season_looks``: clear growing-season looks a
# peak needs. Three: a peak is "confirmed by more than one clear look", and a
# single-look peak would let one bad scene decide a site.
MIN_SEASON_DATES = 3

# Fallback winter level when a window has no winter look (snow or cloud): this low
# quantile of all its looks.
WINTER_FALLBACK_QUANTILE = 0.1

FEATURE_COLUMNS: tuple[str, ...] = (
    "n_clear_dates",  # clear looks used, whole history up to assessed_until
    "n_clear_latest",  # clear looks in the latest window
    "n_season_latest",  # clear growing-season looks in the latest window
    "latest_peak_ndvi",  # season peak NDVI of the latest window
    "previous_peak_ndvi",  # season peak NDVI of the previous window
    "first_season_peak_ndvi",  # peak of the first complete calendar-year season
    "best_earlier_peak_ndvi",  # best peak of seasons over before the latest window
    "n_seasons",  # calendar-year seasons with a peak
    "winter_ndvi",  # winter NDVI level of the latest window
    "seasonal_amplitude",  # latest_peak_ndvi - winter_ndvi
    "previous_seasonal_amplitude",  # the same for the previous window
    "peak_trend_per_year",  # slope of the calendar-year peaks, NDVI per year
    "peak_change",  # latest_peak_ndvi - previous_peak_ndvi
    "vegetated_fraction",  # latest window, core season median
    "bare_fraction",
    "water_fraction",
    "previous_vegetated_fraction",  # previous window, core season median
    "previous_water_fraction",
    "vegetated_fraction_change",  # latest - previous
    "water_fraction_change",
    "bsi_mean",  # mean BSI over the latest window's clear looks
    "days_since_restoration_start",  # NaN when restoration has not started
    "recent_ndvi_change",  # median NDVI of the last RECENT_DAYS minus the same days a year before
    "core_bsi_median",  # latest window, core season median of the site's median BSI
    "ndvi_spread",  # latest window, standard deviation of the looks' median NDVI
)

RECENT_DAYS = 90  # the "now" of recent_ndvi_change: one season's worth of looks

# Bookkeeping columns returned beside the features (not model inputs).
LAST_CLEAR_DATE = "last_clear_date"
RECENT_BARE = "recent_bare_fraction"  # median bare share, growing-season looks of RECENT_DAYS
# The vegetated shares of the two windows month by month, over the calendar months
# both have looks in, of those vegetated_fraction is taken from (the mean of the
# months' medians; NaN where they share none): a window ending in June holds only
# June's core looks, and a grass still greening then is not the full canopy of the
# previous July and August; nor do three looks in June weigh against one.
COVER_NOW = "vegetated_same_months"
COVER_BEFORE = "previous_vegetated_same_months"
BOOKKEEPING = (LAST_CLEAR_DATE, RECENT_BARE, COVER_NOW, COVER_BEFORE)


def site_features(
    timeseries: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    assessed_until: date,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """Describe every site's recovery as of ``assessed_until``.

    Returns a frame indexed by ``site_id`` with one row per site of ``sites`` (in
    their order), the ``FEATURE_COLUMNS`` and ``last_clear_date`` (the latest clear
    look used, ``NaT`` when none). A site without any clear look gets NaN features
    and a logged warning; time-series rows of unknown sites are ignored.
    """
    site_frame = site_table(sites)
    end = pd.Timestamp(assessed_until).normalize()
    clear = clear_looks(timeseries, end=end, min_clear_fraction=cfg.min_clear_fraction)
    by_site, empty = Looks.by_site(clear)

    rows = []
    for site_id, start in zip(site_frame["site_id"], site_frame["restoration_start"], strict=True):
        looks = by_site.get(str(site_id), empty)
        row = _describe_site(looks, end=end, days=cfg.assessment_days)
        row["days_since_restoration_start"] = _days_since(start, end)
        if row["n_clear_dates"] == 0:
            logger.warning(
                "site %s: no clear look (clear share >= %.2f) up to %s; recovery not judged",
                site_id,
                cfg.min_clear_fraction,
                end.date(),
            )
        elif row["n_clear_latest"] == 0:
            logger.warning(
                "site %s: no clear look in the %d days up to %s",
                site_id,
                cfg.assessment_days,
                end.date(),
            )
        rows.append(row)

    out = pd.DataFrame(rows, index=pd.Index(site_frame["site_id"], name="site_id"))
    out = out.reindex(columns=[*FEATURE_COLUMNS, *BOOKKEEPING])
    for column in (*FEATURE_COLUMNS, COVER_NOW, COVER_BEFORE):
        out[column] = out[column].astype("float64")
    out[LAST_CLEAR_DATE] = pd.to_datetime(out[LAST_CLEAR_DATE])
    return out


def site_table(sites: pd.DataFrame) -> pd.DataFrame:
    """The sites as a plain frame with a unique ``site_id`` column (geometry dropped)."""
    frame = pd.DataFrame(sites).copy()
    if "site_id" not in frame.columns and frame.index.name == "site_id":
        frame = frame.reset_index()
    if "site_id" not in frame.columns:
        raise InputError("sites have no site_id", field="site_id")
    duplicated = frame["site_id"][frame["site_id"].duplicated()]
    if not duplicated.empty:
        raise InputError("site_id is not unique", record=str(duplicated.iloc[0]), field="site_id")
    if "restoration_start" not in frame.columns:
        frame["restoration_start"] = None
    return frame.drop(columns=["geometry"], errors="ignore").reset_index(drop=True)


def clear_looks(
    timeseries: pd.DataFrame, *, end: pd.Timestamp, min_clear_fraction: float
) -> pd.DataFrame:
    """Rows clear enough to use, up to and including the day ``end``, with a ``day`` column."""
    ts = timeseries.copy()
    dates = pd.to_datetime(ts["date"])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    ts["day"] = dates.dt.normalize()
    keep = (
        (ts["valid_fraction"] >= min_clear_fraction)
        & (ts["valid_fraction"] > 0)
        & ts["ndvi_median"].notna()
        & (ts["day"] <= end)
    )
    return ts.loc[keep].sort_values(["site_id", "day"], kind="stable")


@dataclass(frozen=True)
class Looks:
    """One site's clear looks as plain arrays (pandas per small window is slow)."""

    day: np.ndarray  # datetime64[D], sorted
    month: np.ndarray
    year: np.ndarray
    ndvi: np.ndarray  # the looks' median NDVI
    vegetated: np.ndarray
    bare: np.ndarray
    water: np.ndarray
    bsi_mean: np.ndarray
    bsi_median: np.ndarray

    @classmethod
    def of(cls, looks: pd.DataFrame) -> Looks:
        day = looks["day"].to_numpy(dtype="datetime64[D]")
        months = day.astype("datetime64[M]").astype(np.int64)

        def col(name: str) -> np.ndarray:
            return looks[name].to_numpy(dtype="float64")

        return cls(
            day=day,
            month=months % 12 + 1,
            year=months // 12 + 1970,
            ndvi=col("ndvi_median"),
            vegetated=col("vegetated_fraction"),
            bare=col("bare_fraction"),
            water=col("water_fraction"),
            bsi_mean=col("bsi_mean"),
            bsi_median=col("bsi_median"),
        )

    @classmethod
    def by_site(cls, looks: pd.DataFrame) -> tuple[dict[str, Looks], Looks]:
        """Each site's looks (``looks``' order) and the empty one, cut from arrays made once."""
        every, groups = cls.of(looks), looks.groupby("site_id", sort=False).indices
        return {
            str(site): cls(**{f.name: getattr(every, f.name)[rows] for f in fields(cls)})
            for site, rows in groups.items()
        }, cls.of(looks.iloc[0:0])

    def between(self, after: pd.Timestamp, until: pd.Timestamp) -> np.ndarray:
        """Mask of the looks in ``(after, until]``."""
        return (self.day > _d(after)) & (self.day <= _d(until))


def _d(stamp: pd.Timestamp) -> np.datetime64:
    return np.datetime64(pd.Timestamp(stamp).date(), "D")


def _describe_site(looks: Looks, *, end: pd.Timestamp, days: int) -> dict[str, Any]:
    latest_start = end - pd.Timedelta(days=days)  # exclusive
    previous_start = latest_start - pd.Timedelta(days=days)
    now = looks.between(latest_start, end)
    before = looks.between(previous_start, latest_start)
    latest = _summarise_window(looks, now)
    previous = _summarise_window(looks, before)
    common = np.intersect1d(latest["months"], looks.month[before])
    peaks = yearly_peaks(looks, end=end)
    earlier = peaks[[season_end(year) <= latest_start for year in peaks.index]]

    if len(peaks) >= 2:
        trend = float(np.polyfit(peaks.index.to_numpy(float), peaks.to_numpy(float), 1)[0])
    else:
        trend = np.nan
    return {
        "n_clear_dates": len(looks.day),
        "n_clear_latest": latest["n_clear"],
        "n_season_latest": latest["n_season"],
        "latest_peak_ndvi": latest["peak"],
        "previous_peak_ndvi": previous["peak"],
        "first_season_peak_ndvi": float(peaks.iloc[0]) if len(peaks) else np.nan,
        "best_earlier_peak_ndvi": float(earlier.max()) if len(earlier) else np.nan,
        "n_seasons": len(peaks),
        "winter_ndvi": latest["winter"],
        "seasonal_amplitude": latest["peak"] - latest["winter"],
        "previous_seasonal_amplitude": previous["peak"] - previous["winter"],
        "peak_trend_per_year": trend,
        "peak_change": latest["peak"] - previous["peak"],
        "vegetated_fraction": latest["vegetated"],
        "bare_fraction": latest["bare"],
        "water_fraction": latest["water"],
        "previous_vegetated_fraction": previous["vegetated"],
        "previous_water_fraction": previous["water"],
        "vegetated_fraction_change": latest["vegetated"] - previous["vegetated"],
        "water_fraction_change": latest["water"] - previous["water"],
        "bsi_mean": float(latest["bsi"]),
        "recent_ndvi_change": _recent_change(looks, end=end),
        "core_bsi_median": latest["core_bsi"],
        "ndvi_spread": latest["spread"],
        LAST_CLEAR_DATE: pd.Timestamp(looks.day.max()) if len(looks.day) else pd.NaT,
        RECENT_BARE: _recent_bare(looks, end=end),
        COVER_NOW: _monthly_share(looks, now, common),
        COVER_BEFORE: _monthly_share(looks, before, common),
    }


def _monthly_share(looks: Looks, window: np.ndarray, months: np.ndarray) -> float:
    """Mean over ``months`` of the median vegetated share of ``window``'s looks in each."""
    shares = [_median(looks.vegetated[window & (looks.month == m)]) for m in months]
    return float(np.nanmean(shares)) if np.isfinite(shares).any() else np.nan


def _recent_bare(looks: Looks, *, end: pd.Timestamp) -> float:
    """Median bare share of the growing-season looks of the last ``RECENT_DAYS`` (NaN
    with fewer than two): whether the cover is gone now, where a season peak reached
    before a die-back still stands."""
    recent = looks.between(end - pd.Timedelta(days=RECENT_DAYS), end)
    recent &= np.isin(looks.month, list(GROWING_SEASON_MONTHS))
    return float(np.median(looks.bare[recent])) if recent.sum() >= 2 else np.nan


def _recent_change(looks: Looks, *, end: pd.Timestamp) -> float:
    """How the last ``RECENT_DAYS`` compare with the same days one year earlier.

    A die-back in the current season hides in a season peak reached before it began;
    the recent level against last year's at the same time of year shows it.
    """
    recent_start = end - pd.Timedelta(days=RECENT_DAYS)
    year = pd.Timedelta(days=365)
    recent = looks.ndvi[looks.between(recent_start, end)]
    before = looks.ndvi[looks.between(recent_start - year, end - year)]
    if len(recent) < 2 or len(before) < 2:
        return np.nan
    return float(np.median(recent) - np.median(before))


def _summarise_window(looks: Looks, window: np.ndarray) -> dict[str, Any]:
    """Peak, winter level, core-season fractions and mean BSI of one window's looks."""
    months = looks.month[window]
    ndvi = looks.ndvi[window]
    season = ndvi[np.isin(months, list(GROWING_SEASON_MONTHS))]
    winter = ndvi[np.isin(months, list(WINTER_MONTHS))]
    core = np.isin(months, list(CORE_SEASON_MONTHS))
    source = core if core.any() else np.ones(len(months), bool)

    def of_source(values: np.ndarray) -> float:
        return _median(values[window][source])

    peak = float(np.quantile(season, PEAK_QUANTILE)) if len(season) >= MIN_SEASON_DATES else np.nan
    if len(winter):
        winter_level = float(np.median(winter))
    elif len(ndvi):
        winter_level = float(np.quantile(ndvi, WINTER_FALLBACK_QUANTILE))
    else:
        winter_level = np.nan
    bsi = looks.bsi_mean[window]
    return {
        "n_clear": int(window.sum()),
        "n_season": len(season),
        "peak": peak,
        "winter": winter_level,
        "vegetated": of_source(looks.vegetated),
        "bare": of_source(looks.bare),
        "water": of_source(looks.water),
        "bsi": float(np.nanmean(bsi)) if np.isfinite(bsi).any() else np.nan,
        "core_bsi": of_source(looks.bsi_median),
        "spread": float(np.std(ndvi, ddof=1)) if len(ndvi) >= MIN_SEASON_DATES else np.nan,
        "months": np.unique(months[source]),  # of the looks the fractions are taken from
    }


def yearly_peaks(looks: Looks, *, end: pd.Timestamp) -> pd.Series:
    """Season peak per calendar year, for seasons over by ``end`` with enough looks."""
    in_season = np.isin(looks.month, list(GROWING_SEASON_MONTHS))
    peaks = []  # (year, peak) ascending: a Series from a dict, sorted, cost twice as much
    for year in np.unique(looks.year[in_season]):
        values = looks.ndvi[in_season & (looks.year == year)]
        if len(values) >= MIN_SEASON_DATES and season_end(year) <= end:
            peaks.append((int(year), float(np.quantile(values, PEAK_QUANTILE))))
    index = pd.Index([y for y, _ in peaks], dtype="int64") if peaks else None
    return pd.Series([p for _, p in peaks], index=index, dtype="float64")


def season_end(year: int) -> pd.Timestamp:
    return pd.Timestamp(year=int(year), month=SEASON_END[0], day=SEASON_END[1])


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else np.nan


def _days_since(start: object, end: pd.Timestamp) -> float:
    if start is None:
        return np.nan
    stamp = pd.to_datetime(start, errors="coerce")
    if pd.isna(stamp):
        return np.nan
    return float((end - pd.Timestamp(stamp).normalize()).days)
