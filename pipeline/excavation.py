"""Per-pixel detection of new excavation, as a fold over time, tile by tile.

What a new dig looks like from orbit: a surface that was vegetated or stable ground
becomes *fresh bare soil or rock* (bright in red and SWIR, NDVI near 0, BSI > 0),
abruptly (from one clear look to the next), and stays so. What must not look like
one, and why it does not:

- **Harvest on double-cropped farmland** is bare twice a year at the same season.
  Each pixel keeps a seasonal history (36 ten-day bins of how often it was fresh
  bare at that time of year in *earlier* years); bare when last year's same season
  (+/- ``season_window_days``) was mostly bare is expected, not a change. Where a
  pixel has no history yet (the catalog's first year) a change is still reported,
  with capped confidence, rather than hidden; a harvest then fails persistence as
  the next crop greens up and the candidate is dropped.
- **Burn scars** are dark (red 0.03-0.07): they fail ``fresh_red_min``.
- **Cloud edges and haze SCL missed** are single looks and have negative BSI
  (flat, bright spectra): they fail ``fresh_bsi_min`` and are never confirmed.
- **Leaf-off forest and gradual die-back** are slow: the change must be abrupt
  (NDVI falls by ``abrupt_ndvi_drop`` or BSI rises by ``abrupt_bsi_rise`` against
  the median of the previous ``prior_observations`` clear looks).
- **Existing pits, limestone and red soil** are bare in every look: a change needs
  the previous looks to be mostly not fresh-bare.
- **A harvest whose date moved** beyond the season window is on ground that had
  other bare spells lately at that time of year (two within ``bare_memory_days``,
  one ending within ``bare_prone_season_days`` of the date), or at one time of year
  in two different years (a field whose other harvest cloud hid): such a ``prone``
  candidate makes a flag only once it has stayed bare longer than a fallow spell
  (``bare_prone_run_days``). A pit dug into a field stays bare past it. So is a
  change that begins together on much of the tile's clear ground (a harvest across
  the plain where cloud hid last year's; ``excavation_looks.regional``), unlike a dig.

Fresh bare is any soil colour: grey and white rock and pale soil by NDVI alone, red
soil and loess (NDVI 0.15-0.22) on the soil line (high BSI), where sparse green cover
at the same NDVI is not. A dig in the imagery's first weeks is judged against the
one or two clear looks it has, provided they show green ground (so a hazy or
cloud-edge first look cannot pass for "before"); it has no seasonal history, which
caps its confidence. A dig seen on one clear look before the imagery ends is a flag
at once (``low`` until a second look agrees, confirmed or dropped by later runs).

A pixel's onset is its first clear look showing the change; the next clear look that
agrees confirms it (a change too, if the first may be cloud); it is kept while at least
``persistence_min`` of its clear looks since are fresh bare, and dropped (and may start
again) below that. The fold's small per-pixel state does not grow with the dates; a
later run continues from a saved one (``excavation_tiles``, tile by tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import DetectionConfig
from pipeline.excavation_looks import (
    N_SEASON_BINS,
    NEW_YEAR_GAP_DAYS,
    change_from_looks,
    doubtful_looks,
    end_spells,
    fresh_bare,
    full_canopy,
    missed_cloud,
    near_a_spell_season,
    regional,
    season_bin,
    season_expectation,
    yearly_spells,
)

_YEAR_DAYS = 366  # "within the year before"
UNCONFIRMED_LOOKS = 3  # clear looks after which an unconfirmed candidate is dropped
_NOT_WATCHED = np.iinfo(np.int32).max  # ``watched_day`` while no bare stretch is being watched
_OWN_HISTORY_DAYS = 300  # after this long, a candidate's season history is its own bare ground

# Names of the per-pixel rasters the fold hands to flag building.
CHANGE_LAYERS = (
    "onset",
    "confirm",
    "last",
    "n_since",
    "n_bare",
    "has_history",
    "prior_ndvi",
    "gap_days",
    "prone",
    "span_days",
    "doubtful_look",
    "late",
)


@dataclass
class FoldState:
    """The per-pixel state of one tile after some dates."""

    recent_ndvi: np.ndarray  # (K, h, w) NDVI of the last K clear looks, newest first
    recent_bsi: np.ndarray  # (K, h, w)
    recent_red: np.ndarray  # (K, h, w)
    recent_bare: np.ndarray  # (K, h, w) bool: those looks were fresh bare
    recent_n: np.ndarray  # (h, w) clear looks seen so far, capped at K
    last_clear: np.ndarray  # (B, h, w) clear looks per season bin, the previous year's visit
    last_bare: np.ndarray  # (B, h, w) bare looks per season bin, the previous year's visit
    older_clear: np.ndarray  # (B, h, w) the same, all years before that
    older_bare: np.ndarray
    cur_clear: np.ndarray  # (B, h, w) this year's visit of each bin
    cur_bare: np.ndarray
    bin_last_day: np.ndarray  # (B,) day number of the latest date put in each bin
    run_start: np.ndarray  # (h, w) int32 first look of the current run of fresh-bare looks, -1 none
    run_len: np.ndarray  # (h, w) clear looks in that run
    run_second: np.ndarray  # (h, w) int32 the run's second look (its confirmation), -1 none
    run_ok: np.ndarray  # bool: the run began as a change (prior not bare, abrupt)
    run_prior_ndvi: np.ndarray  # float32 median NDVI of the looks before the run
    onset: np.ndarray  # (h, w) int32 date index, -1 none
    confirm: np.ndarray
    last: np.ndarray
    n_since: np.ndarray  # clear looks since onset (onset included)
    n_bare: np.ndarray  # fresh-bare looks since onset that support it
    n_looks: np.ndarray  # all clear looks since onset
    has_history: np.ndarray  # bool: seasonal history existed at onset
    last_clear_day: np.ndarray  # int32 day number of the latest clear look
    run_gap: np.ndarray  # int32 days between the run's first look and the clear look before it
    run_doubt: np.ndarray  # bool: the run's first look may be cloud (``doubtful_looks``)
    doubtful_look: np.ndarray  # bool: the candidate's first look was (``run_doubt``)
    gap_days: np.ndarray  # int32 that gap for the candidate: long gaps hide gradual changes
    run_start_day: np.ndarray  # int32 run's first look (a field's: first after a long gap)
    run_prone: np.ndarray  # bool: the run began on ground bare in other runs lately (fields)
    run_unexpected: np.ndarray  # uint16 its looks where the season's history is not bare
    green_day: np.ndarray  # int32 day number of the latest look at least prior_ndvi_min
    run_late: np.ndarray  # bool: the run became a change late (``late_change_looks``)
    late: np.ndarray  # bool: the candidate's run did (``run_late``)
    spell_end: np.ndarray  # (2, h, w) int32 days of the last looks of the latest two bare spells
    onset_day: np.ndarray  # int32 the candidate's run_start_day at its start
    prior_ndvi: np.ndarray  # float32 median NDVI of the looks before onset
    prone: np.ndarray  # bool: the candidate's run began on ground bare lately (``run_prone``)
    last_day: np.ndarray  # int32 day number of the candidate's latest supporting look
    watched_day: np.ndarray  # int32 start of its latest stretch with no gap over gradual_gap_days


def new_state(shape: tuple[int, int], prior_observations: int) -> FoldState:
    k, b = prior_observations, N_SEASON_BINS
    h, w = shape
    minus1 = np.full(shape, -1, np.int32)
    return FoldState(
        recent_ndvi=np.full((k, h, w), np.nan, np.float32),
        recent_bsi=np.full((k, h, w), np.nan, np.float32),
        recent_red=np.full((k, h, w), np.nan, np.float32),
        recent_bare=np.zeros((k, h, w), bool),
        recent_n=np.zeros(shape, np.uint8),
        last_clear=np.zeros((b, h, w), np.uint8),
        last_bare=np.zeros((b, h, w), np.uint8),
        older_clear=np.zeros((b, h, w), np.uint8),
        older_bare=np.zeros((b, h, w), np.uint8),
        cur_clear=np.zeros((b, h, w), np.uint8),
        cur_bare=np.zeros((b, h, w), np.uint8),
        bin_last_day=np.full(b, -10_000, np.int64),
        run_start=minus1.copy(),
        run_len=np.zeros(shape, np.uint16),
        run_second=minus1.copy(),
        run_ok=np.zeros(shape, bool),
        run_prior_ndvi=np.full(shape, np.nan, np.float32),
        onset=minus1.copy(),
        confirm=minus1.copy(),
        last=minus1.copy(),
        n_since=np.zeros(shape, np.uint16),
        n_bare=np.zeros(shape, np.uint16),
        n_looks=np.zeros(shape, np.uint16),
        has_history=np.zeros(shape, bool),
        last_clear_day=np.full(shape, -100_000, np.int32),
        run_gap=np.zeros(shape, np.int32),
        run_doubt=np.zeros(shape, bool),
        doubtful_look=np.zeros(shape, bool),
        gap_days=np.zeros(shape, np.int32),
        run_start_day=np.zeros(shape, np.int32),
        run_prone=np.zeros(shape, bool),
        run_unexpected=np.zeros(shape, np.uint16),
        green_day=np.full(shape, -100_000, np.int32),
        run_late=np.zeros(shape, bool),
        late=np.zeros(shape, bool),
        spell_end=np.full((2, h, w), -100_000, np.int32),
        onset_day=np.zeros(shape, np.int32),
        prior_ndvi=np.full(shape, np.nan, np.float32),
        prone=np.zeros(shape, bool),
        last_day=np.zeros(shape, np.int32),
        watched_day=np.zeros(shape, np.int32),
    )


def fold_step(
    state: FoldState,
    t: int,
    day: int,
    clear: np.ndarray,
    ndvi: np.ndarray,
    bsi: np.ndarray,
    red: np.ndarray,
    cfg: DetectionConfig,
) -> FoldState:
    """Advance one tile's state by one date (``t`` its index, ``day`` days since 1970)."""
    s = state
    clear = clear & np.isfinite(ndvi) & np.isfinite(bsi) & np.isfinite(red)
    clear &= ~missed_cloud(ndvi, bsi, red, cfg)
    fresh = clear & fresh_bare(ndvi, bsi, red, cfg)
    # Low cover (stubble, thin winter cover): the season bins count it too, for harvests.
    low_cover = clear & (ndvi <= cfg.season_low_ndvi_max) & (bsi >= cfg.season_low_bsi_min)
    k = s.recent_n.dtype.type(cfg.prior_observations)

    # Seasonal expectation from earlier years, +/- the window around this date.
    b_now = season_bin(day)
    has_hist, expected = season_expectation(s, day, b_now, cfg)

    # What came before: the last K clear looks (one is enough, as in the imagery's first
    # weeks; none gives NaN), on the fresh pixels alone (only they begin or confirm one).
    on = np.nonzero(fresh)
    prior_ndvi, abrupt = np.full(fresh.shape, np.nan, np.float32), np.zeros_like(fresh)
    prior_ndvi[on], abrupt[on] = change_from_looks(
        s, on, slice(None), s.recent_n[on], (ndvi, bsi, red), cfg
    )
    prior_not_bare = s.recent_bare.sum(axis=0) * 3 <= k

    # Pixels already carrying a candidate take this look as evidence. A fresh look the
    # season explains (harvest time) is neutral: it neither supports nor contradicts a
    # dig, as long as the season's history predates the candidate (after a year, the
    # history is the candidate's own bare ground). A candidate nothing has confirmed
    # after ``UNCONFIRMED_LOOKS`` clear looks is dropped; if the ground stays bare past
    # the season, it starts again from the run's first look.
    active = (s.onset >= 0) & clear
    explained = expected & (day - s.onset_day < _OWN_HISTORY_DAYS)
    evidence = active & ~(fresh & explained)
    support = evidence & fresh
    s.n_looks = s.n_looks + active
    s.n_since = s.n_since + evidence
    s.n_bare = s.n_bare + support
    np.copyto(s.last, t, where=active & fresh, casting="unsafe")
    # A field's candidate must be seen bare throughout (``span_days``): after a look not
    # bare, or a gap a crop could grow in, watching starts again (until seen long enough).
    settled = s.last_day - s.watched_day >= cfg.bare_prone_run_days
    gap_max = cfg.gradual_gap_days
    broken = active & ~settled & ((day - s.last_clear_day > gap_max) | ~fresh)
    watched = np.where(broken, _NOT_WATCHED, s.watched_day)
    s.watched_day = np.where(support & (watched == _NOT_WATCHED), day, watched).astype(np.int32)
    np.copyto(s.last_day, day, where=active & fresh, casting="unsafe")
    # A first look that may have been cloud is confirmed by a look that is a change too:
    # weathered bare ground seen once through haze is as bare after it as before.
    agrees = ~s.doubtful_look | abrupt | (s.prior_ndvi - ndvi >= cfg.abrupt_ndvi_drop)
    np.copyto(s.confirm, t, where=support & (s.confirm < 0) & agrees, casting="unsafe")
    failing = (s.onset >= 0) & (
        ((s.n_since >= 3) & (s.n_bare < cfg.persistence_min * s.n_since))
        | ((s.confirm < 0) & (s.n_looks > UNCONFIRMED_LOOKS))
    )
    if failing.any():
        for name in ("onset", "confirm", "last", "n_since", "n_bare"):  # -1: none; counts 0
            np.copyto(getattr(s, name), 0 if name.startswith("n_") else -1, where=failing)

    # Runs of consecutive fresh-bare clear looks, and whether each began as a change.
    # A field's run seen again after a gap a crop could grow in is watched from this look.
    regap = fresh & (s.run_start >= 0) & s.run_prone & (day - s.last_clear_day > gap_max)
    np.copyto(s.run_start_day, day, where=regap, casting="unsafe")
    new_run, not_bare = fresh & (s.run_start < 0), clear & ~fresh  # not bare: ends a run
    end_spells(s, not_bare & (s.run_start >= 0))  # its last look: the clear look before
    np.copyto(s.run_start, -1, where=not_bare)
    np.copyto(s.run_start, t, where=new_run)
    np.add(s.run_len, 1, out=s.run_len, where=fresh & ~new_run)
    np.copyto(s.run_len, 1, where=new_run)
    np.copyto(s.run_len, 0, where=not_bare)
    second = fresh & (s.run_len == 2)
    if (second & s.run_doubt).any():  # and so is a run's second look, against the looks before it
        at = np.nonzero(second & s.run_doubt)
        n = np.maximum(s.recent_n[at], 1) - 1  # the looks before the run's first
        second[at] = change_from_looks(s, at, slice(1, None), n, (ndvi, bsi, red), cfg)[1]
    np.copyto(s.run_second, -1, where=s.run_start < 0)
    np.copyto(s.run_second, t, where=second)
    # With fewer than K looks before (the imagery's first weeks), one hazy or cloud-edge
    # look could pass for "before": the ground must then have been green. With no look
    # before, neither holds.
    judged = (s.recent_n >= k) | (prior_ndvi >= cfg.prior_ndvi_min)
    began = judged & prior_not_bare & abrupt
    s.run_ok = np.where(new_run, began, s.run_ok & ~not_bare)
    np.copyto(s.run_prior_ndvi, prior_ndvi, where=new_run, casting="unsafe")
    np.copyto(s.run_gap, day - s.last_clear_day, where=new_run, casting="unsafe")
    if new_run.any():
        doubt = doubtful_looks(clear, bsi, prior_ndvi - ndvi, cfg)
        np.copyto(s.run_doubt, doubt, where=new_run, casting="unsafe")
    np.copyto(s.run_start_day, day, where=new_run, casting="unsafe")
    # Ground with two bare spells ended within ``bare_memory_days`` before this run (a
    # field, bare after each harvest; a restoration's substrate is one spell), at about
    # the time of year one of them ended (``bare_prone_season_days``), is ``prone``:
    # its candidate makes a flag only once it has stayed bare for
    # ``bare_prone_run_days`` (``span_days``), longer than any fallow spell between a
    # harvest and the next crop, so a harvest whose date moved from last year's is not
    # taken for a dig. A pit in a field stays bare past it. So is ground that begins a
    # change together with much of its tile (``excavation_looks.regional``).
    # And so is soil-coloured bare ground (red soil, loess: fresh only on the soil line)
    # where no seasonal history tells a field from a dig yet (the imagery's first year).
    # Ground whose two spells ended at the same time of year in different years is
    # cultivated whatever this season is: a field whose other harvest cloud hid.
    starts = np.nonzero(new_run)
    spells = s.spell_end[:, starts[0], starts[1]]
    recurrent = day - spells[1] <= cfg.bare_memory_days
    field_soil = (ndvi[starts] > cfg.fresh_ndvi_max) & ~has_hist[starts]
    seasonal = near_a_spell_season(spells, day, cfg.bare_prone_season_days)
    s.run_prone[starts] = (
        (recurrent & (seasonal | yearly_spells(spells, cfg.bare_prone_season_days)))
        | field_soil
        | (regional(new_run & began, clear, cfg)[starts] & ~full_canopy(s, starts, day, cfg))
    )
    # A run that did not begin as a change (it went on from a harvest's bare ground) on
    # ground green within the year before it is one once it stays bare into the season
    # the ground is green in (``late_change_looks`` looks where the history is not
    # bare): a pit dug into a field just after a harvest. (Weathered ground with sparse
    # weeds, never green, flickers in and out of bare.) It is prone, too.
    unexpected = fresh & has_hist & ~expected
    s.run_unexpected = np.where(new_run, unexpected, s.run_unexpected + unexpected)
    s.run_unexpected = s.run_unexpected.astype(np.uint16)
    was_green = s.run_start_day - s.green_day <= _YEAR_DAYS
    late = fresh & ~s.run_ok & was_green & (s.run_unexpected >= cfg.late_change_looks)
    s.run_ok, s.run_prone = s.run_ok | late, s.run_prone | late
    s.run_late = np.where(new_run, late, s.run_late | late)

    # A candidate starts when a run that began as a change is not expected in this
    # season; it is dated from the run's first look (a dig that began during harvest
    # is found once the season no longer explains the bare ground).
    start = fresh & s.run_ok & ~expected & (s.onset < 0)
    np.copyto(s.onset, s.run_start, where=start, casting="unsafe")
    np.copyto(s.confirm, s.run_second, where=start, casting="unsafe")
    np.copyto(s.last, t, where=start, casting="unsafe")
    np.copyto(s.n_since, s.run_len, where=start, casting="unsafe")
    np.copyto(s.n_bare, s.run_len, where=start, casting="unsafe")
    np.copyto(s.n_looks, s.run_len, where=start, casting="unsafe")
    np.copyto(s.has_history, has_hist, where=start, casting="unsafe")
    np.copyto(s.gap_days, s.run_gap, where=start, casting="unsafe")
    np.copyto(s.doubtful_look, s.run_doubt, where=start, casting="unsafe")
    np.copyto(s.onset_day, s.run_start_day, where=start, casting="unsafe")
    np.copyto(s.prior_ndvi, s.run_prior_ndvi, where=start, casting="unsafe")
    np.copyto(s.prone, s.run_prone, where=start, casting="unsafe")
    np.copyto(s.late, s.run_late, where=start, casting="unsafe")
    np.copyto(s.last_day, day, where=start, casting="unsafe")
    np.copyto(s.watched_day, s.run_start_day, where=start, casting="unsafe")

    # Remember this look: recent buffer (clear pixels only) and the season bins.
    looks = {"recent_ndvi": ndvi, "recent_bsi": bsi, "recent_red": red, "recent_bare": fresh}
    for name, new in looks.items():  # shifted in place where clear, the newest first
        old = getattr(s, name)
        for i in range(len(old) - 1, 0, -1):
            np.copyto(old[i], old[i - 1], where=clear)
        np.copyto(old[0], new, where=clear)
    s.recent_n = np.minimum(s.recent_n + clear, k).astype(np.uint8)
    if day - s.bin_last_day[b_now] > NEW_YEAR_GAP_DAYS:
        for tier in ("clear", "bare"):
            older, last, cur = (getattr(s, f"{n}_{tier}") for n in ("older", "last", "cur"))
            older[b_now] = np.minimum(older[b_now].astype(np.int32) + last[b_now], 255)
            last[b_now] = cur[b_now]
        s.cur_clear[b_now] = 0
        s.cur_bare[b_now] = 0
    s.cur_clear[b_now] = np.minimum(s.cur_clear[b_now] + clear, 255)
    s.cur_bare[b_now] = np.minimum(s.cur_bare[b_now] + (fresh | low_cover), 255)
    np.copyto(s.last_clear_day, day, where=clear, casting="unsafe")
    np.copyto(s.green_day, day, where=clear & (ndvi >= cfg.prior_ndvi_min), casting="unsafe")
    s.bin_last_day[b_now] = day
    return s


def persistent_change(layers: np.ndarray, cfg: DetectionConfig) -> np.ndarray:
    """Pixels whose candidate makes a flag, from ``change_layers``' (layer, ...) stack.

    A candidate counts while at least ``persistence_min`` of its clear looks since the
    onset are fresh bare; a ``prone`` one (a field, soil with no history yet, a change
    across much of its tile) counts once it has been seen bare for
    ``bare_prone_run_days``; one first seen within
    ``cloud_edge_pixels`` of masked cloud, or bright and flat like cloud (unless green
    before), counts once a second look confirms it (``doubtful_looks``).
    """
    at = {name: layers[i] for i, name in enumerate(CHANGE_LAYERS)}
    kept = (at["onset"] >= 0) & (at["n_bare"] >= cfg.persistence_min * np.maximum(at["n_since"], 1))
    kept &= (at["prone"] == 0) | (at["span_days"] >= cfg.bare_prone_run_days)
    # One look that may be cloud the mask missed is no dig until a second agrees.
    return kept & ((at["doubtful_look"] == 0) | (at["confirm"] >= 0))


def change_layers(state: FoldState) -> np.ndarray:
    """The state's outcome as a float64 stack (layer, h, w) in ``CHANGE_LAYERS`` order."""
    return np.stack(
        [
            state.onset,
            state.confirm,
            state.last,
            state.n_since,
            state.n_bare,
            state.has_history,
            state.prior_ndvi,
            state.gap_days,
            state.prone,
            np.where(state.onset >= 0, state.last_day - state.watched_day, 0),
            state.doubtful_look,
            state.late,
        ]
    ).astype(np.float64)
