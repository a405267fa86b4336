"""What the excavation fold reads from its looks: fresh bare ground, medians, cloud edges.

``excavation.fold_step`` advances a tile's state one date at a time; these are the
per-look tests it applies: whether a look shows fresh bare soil or rock (``fresh_bare``,
any soil colour) or cloud the SCL missed (``missed_cloud``), the median of the few looks
kept (``median_of_looks``), which clear pixels lie beside masked cloud (``near_masked``),
whether the changes beginning on one date are regional (``regional``), the season bin of
a date (``season_bin``), what the season's history says of bare ground now
(``season_expectation``), and when a pixel's last two bare spells ended
(``near_a_spell_season``, ``yearly_spells``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pipeline.config import DetectionConfig

if TYPE_CHECKING:
    from pipeline.excavation import FoldState

N_SEASON_BINS = 36  # ten-day bins of the year
NEW_YEAR_GAP_DAYS = 180  # a bin visited again after this long is a new year's visit


def season_bin(day: int) -> int:
    doy = (np.datetime64(day, "D") - np.datetime64(day, "D").astype("datetime64[Y]")).astype(int)
    return min(int(doy * N_SEASON_BINS / 366), N_SEASON_BINS - 1)


def _sorted_looks(values: np.ndarray) -> list[np.ndarray]:
    """The (K, h, w) stack sorted along its first axis, NaN last, as K (h, w) slices.

    A bubble-sort network of compare-exchanges on whole slices: for the few looks the
    fold keeps (``prior_observations``, 3 by default) this is a handful of elementwise
    passes, where ``np.sort`` along a strided first axis is many times slower. ``fmin``
    keeps a number over NaN and ``maximum`` keeps the NaN, so NaN sorts last as in
    ``np.sort``; equal values are interchangeable, so ties give the same values.
    """
    rows = list(values)
    for end in range(len(rows) - 1, 0, -1):
        for i in range(end):
            a, b = rows[i], rows[i + 1]
            rows[i], rows[i + 1] = np.fmin(a, b), np.maximum(a, b)
    return rows


def median_of_looks(values: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median over the stored looks (the first ``n`` of each pixel); NaN where ``n`` is 0.

    Unfilled slots are NaN, which sort last, so the median of a pixel's ``n`` looks
    sits at positions (n-1)//2 and n//2 of the sorted stack.
    """
    ordered = _sorted_looks(values)
    # Position (n-1)//2 is at least r where n >= 2r+1, and n//2 where n >= 2r.
    lo, hi = ordered[0], ordered[0]
    for r in range(1, len(ordered)):
        lo = np.where(n >= 2 * r + 1, ordered[r], lo)
        hi = np.where(n >= 2 * r, ordered[r], hi)
    return np.where(n == 0, np.nan, (lo + hi) / 2).astype(np.float32)


def change_from_looks(
    s: FoldState,
    at: tuple[np.ndarray, ...],
    looks: slice,
    n: np.ndarray,
    look: tuple[np.ndarray, np.ndarray, np.ndarray],
    cfg: DetectionConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """At the pixels ``at`` (``np.nonzero``) only: the median NDVI of the stored ``looks``
    (the first ``n``) and whether ``look`` (NDVI, BSI, red rasters) is an abrupt change
    from their medians (``abrupt_change``), as 1-D arrays."""
    before = [
        median_of_looks(getattr(s, f"recent_{band}")[looks][:, at[0], at[1]], n)
        for band in ("ndvi", "bsi", "red")
    ]
    ndvi, bsi, red = (band[at] for band in look)
    return before[0], abrupt_change(ndvi, bsi, red, before, cfg)


def abrupt_change(
    ndvi: np.ndarray,
    bsi: np.ndarray,
    red: np.ndarray,
    before: list[np.ndarray],
    cfg: DetectionConfig,
) -> np.ndarray:
    """Whether a look is an abrupt change from ``before`` (median NDVI, BSI and red of the
    looks before it; NaN compares False): NDVI falls by ``abrupt_ndvi_drop``, BSI rises
    by ``abrupt_bsi_rise`` or red by ``abrupt_red_rise``, or the three together, each as
    a share of its own threshold, add up to ``abrupt_combined_min``: soil dug out from
    under cover of nearly its colour (red soil under dry grass) moves every band at once,
    none past its line."""
    nd, bs, rd = before
    drop, rise, brighten = nd - ndvi, bsi - bs, red - rd
    lines = (max(v, 1e-6) for v in (cfg.abrupt_ndvi_drop, cfg.abrupt_bsi_rise, cfg.abrupt_red_rise))
    combined = sum(v / line for v, line in zip((drop, rise, brighten), lines, strict=True))
    return (
        (drop >= cfg.abrupt_ndvi_drop)
        | (rise >= cfg.abrupt_bsi_rise)
        | (brighten >= cfg.abrupt_red_rise)
        | (combined >= cfg.abrupt_combined_min)
    )


def missed_cloud(
    ndvi: np.ndarray, bsi: np.ndarray, red: np.ndarray, cfg: DetectionConfig
) -> np.ndarray:
    """Cloud, haze or snow the SCL called clear: bright, unvegetated and flat or bluish.

    Bare ground as bright as cloud (red at least ``missed_cloud_red_min``) reflects
    more in SWIR than in NIR and blue (BSI at least ``fresh_bsi_min``); a cloud's
    spectrum is flat and haze lifts blue most. Such a look is never ``fresh_bare``.
    """
    return (
        (red >= cfg.missed_cloud_red_min) & (ndvi <= cfg.fresh_ndvi_max) & (bsi < cfg.fresh_bsi_min)
    )


def fresh_bare(
    ndvi: np.ndarray, bsi: np.ndarray, red: np.ndarray, cfg: DetectionConfig
) -> np.ndarray:
    """Fresh bare soil or rock: bright, bare and unvegetated (NaN compares False).

    Unvegetated is either NDVI at most ``fresh_ndvi_max`` (grey and white rock) or, on
    the soil line, NDVI at most ``soil_ndvi_max`` with BSI at least
    ``soil_bsi_min``: red soil and loess reflect more in NIR than rock does (NDVI
    0.15-0.22) but keep a soil's SWIR-heavy shape, which sparse green cover and dead
    grass at the same NDVI do not.
    """
    unvegetated = (ndvi <= cfg.fresh_ndvi_max) | (
        (ndvi <= cfg.soil_ndvi_max) & (bsi >= cfg.soil_bsi_min)
    )
    return (red >= cfg.fresh_red_min) & (bsi >= cfg.fresh_bsi_min) & unvegetated


def near_masked(clear: np.ndarray, pixels: int) -> np.ndarray:
    """Clear pixels within ``pixels`` of a masked one (cloud, shadow, no data) this date."""
    masked = ~clear
    if pixels <= 0 or not masked.any():
        return np.zeros_like(clear)
    return clear & ndimage.maximum_filter(masked, size=2 * pixels + 1, mode="nearest")


def doubtful_looks(
    clear: np.ndarray, bsi: np.ndarray, fall: np.ndarray, cfg: DetectionConfig
) -> np.ndarray:
    """Clear looks that may be cloud the mask missed: within ``cloud_edge_pixels`` of a
    masked pixel (the edge of a cloud), or flat in spectrum (BSI below
    ``cloud_flat_bsi_max``: a small unflagged cloud or haze over bare ground, and white
    limestone, look alike once). One such look is no evidence of a dig on its own.

    A flat look is no doubt where NDVI fell by at least ``cloud_flat_green_fall`` from
    the looks before (``fall``; NaN: none before): green ground under cloud thick enough
    to take its NDVI that far reads bluish (``missed_cloud``), not flat, and haze thin
    enough to stay flat leaves it green. That is white rock dug out of green ground.
    """
    with np.errstate(invalid="ignore"):
        from_green = fall >= cfg.cloud_flat_green_fall
    flat = clear & (bsi < cfg.cloud_flat_bsi_max) & ~from_green
    return near_masked(clear, cfg.cloud_edge_pixels) | flat


def regional(starting: np.ndarray, clear: np.ndarray, cfg: DetectionConfig) -> np.ndarray:
    """``starting`` where the changes beginning on this date cover a large share of the
    tile's clear pixels (``regional_change_share``, at least ``regional_change_min_pixels``),
    else all False: a harvest across the plain, not a dig."""
    n = int(starting.sum())
    regional = n >= cfg.regional_change_min_pixels and n > cfg.regional_change_share * clear.sum()
    return starting if regional else np.zeros_like(starting)


# The latest look before counts for ``full_canopy`` this close: one revisit, +1 day.
CANOPY_GAP_DAYS = 11


def full_canopy(
    s: FoldState, at: tuple[np.ndarray, ...], day: int, cfg: DetectionConfig
) -> np.ndarray:
    """At pixels ``at``: the last two clear looks were full canopy (NDVI at least
    ``regional_canopy_ndvi_min``), the latest within ``CANOPY_GAP_DAYS`` of ``day``.

    Crops are harvested ripe: a ripening crop loses 0.1-0.15 NDVI per 10 days in the
    fortnight before, so its look one revisit before the bare one is below full
    canopy. Such ground turning bare on the day the plain is harvested (a change
    ``regional`` holds) is woods dug then, not a field.
    """
    canopy = (s.recent_ndvi[:2, at[0], at[1]] >= cfg.regional_canopy_ndvi_min).all(axis=0)
    return canopy & (day - s.last_clear_day[at] <= CANOPY_GAP_DAYS)


# Bare spells ending this close are one fallow spell (``end_spells``).
SPELL_MERGE_DAYS = 45


def end_spells(s: FoldState, ended: np.ndarray) -> None:
    """Record the bare spells that ``ended`` (their last look: ``last_clear_day``) in
    ``spell_end``, the latest two. A spell ending within ``SPELL_MERGE_DAYS`` of the one
    before is that fallow spell seen through a look of weeds or sowing: it moves its
    end and is no second spell, so a field's other harvest, months off, is remembered."""
    apart = ended & (s.last_clear_day - s.spell_end[0] > SPELL_MERGE_DAYS)
    np.copyto(s.spell_end[1], s.spell_end[0], where=apart, casting="unsafe")
    np.copyto(s.spell_end[0], s.last_clear_day, where=ended, casting="unsafe")


def near_a_spell_season(spell_end: np.ndarray, day: int, days: int) -> np.ndarray:
    """Whether ``day`` falls within ``days`` of the time of year either spell ended."""
    phase = np.mod(day - spell_end, 365.25)
    return (np.minimum(phase, 365.25 - phase) <= days).any(axis=0)


def yearly_spells(spell_end: np.ndarray, days: int) -> np.ndarray:
    """Whether the two spells ended in different years within ``days`` of one time of year."""
    apart = spell_end[0] - spell_end[1]
    phase = np.mod(apart, 365.25)
    return (apart >= 365.25 - days) & (np.minimum(phase, 365.25 - phase) <= days)


def season_expectation(
    s: FoldState, day: int, b_now: int, cfg: DetectionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each pixel has seasonal history around ``day`` (the bins within
    ``season_window_days`` of ``b_now``), and whether that history makes bare ground
    expected now (bare in more than ``season_bare_max_fraction`` of its clear looks).
    """
    half = max(1, round(cfg.season_window_days * N_SEASON_BINS / 365))
    bins = [(b_now + d) % N_SEASON_BINS for d in range(-half, half + 1)]
    # The same time last year decides; where last year had no clear look in the window,
    # the years before it do. (A site restored last year must not make bare ground
    # "expected" forever because it was bare three years ago.)
    # Sums of at most 25 bins of two uint8 counts each fit an int16 (the window is at
    # most 120 days), summed in place.
    year_clear, year_bare, old_clear, old_bare = np.zeros((4, *s.last_clear_day.shape), np.int16)
    for b in bins:
        if day - s.bin_last_day[b] > NEW_YEAR_GAP_DAYS:  # not visited this season yet
            year_clear += s.cur_clear[b]
            year_bare += s.cur_bare[b]
            old_clear += s.last_clear[b]
            old_clear += s.older_clear[b]
            old_bare += s.last_bare[b]
            old_bare += s.older_bare[b]
        else:
            year_clear += s.last_clear[b]
            year_bare += s.last_bare[b]
            old_clear += s.older_clear[b]
            old_bare += s.older_bare[b]
    use_year = year_clear > 0
    s_clear = np.where(use_year, year_clear, old_clear)
    s_bare = np.where(use_year, year_bare, old_bare)
    has_hist = s_clear > 0
    expected = has_hist & (s_bare > cfg.season_bare_max_fraction * s_clear)
    return has_hist, expected
