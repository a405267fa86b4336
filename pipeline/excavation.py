"""Per-pixel detection of new excavation, as a fold over time, tile by tile.

What a new dig looks like from orbit: a surface that was vegetated or stable ground
becomes *fresh bare soil or rock* (bright in red and SWIR, NDVI near 0, BSI > 0),
abruptly (from one clear look to the next), and stays so. What must not look like
one, and why it does not:

- **Harvest on double-cropped farmland** is bare twice a year at the same season.
  Each pixel keeps a seasonal history (36 ten-day bins of how often it was fresh
  bare at that time of year in *earlier* years); bare when last year's same season
  (+/- ``season_window_days``) was mostly bare is expected, not a change: the
  history explains a change from green ground to bare, not one from the low cover it
  counts as bare itself (dormant grass dug in winter, ``excavation_shift``), nor one
  on ground with no bare spell in memory: a harvest leaves one, so the bare history
  of such ground is its dormant cover. Where a
  pixel has no history yet (the catalog's first year) a change is still reported,
  with capped confidence, rather than hidden; a harvest then fails persistence as
  the next crop greens up and the candidate is dropped.
- **Burn scars** are dark (red 0.03-0.07): they fail ``fresh_red_min``.
- **Cloud edges and haze SCL missed** are single looks and have negative BSI
  (flat, bright spectra): they fail ``fresh_bsi_min`` and are never confirmed.
- **Leaf-off forest and gradual die-back** are slow: the change must be abrupt
  (NDVI falls by ``abrupt_ndvi_drop`` or BSI rises by ``abrupt_bsi_rise`` against
  the median of the previous ``prior_observations`` clear looks). Soil dug from under
  dormant cover of nearly its colour passes no band's line: from looks of low cover,
  a look moved by the full shift lines (SWIR-heavier and brighter) within
  ``gradual_gap_days`` is abrupt too, as is a patch that moved toward soil together
  while the land around it stayed (``excavation_plain.stands_out``); on ground green
  within the year before either is marked as a change that may have been gradual
  (``late``), which on a site under restoration the die-back test weighs.
- **Existing pits, limestone and red soil** are bare in every look: a change needs
  the previous looks to be mostly not fresh-bare. Such ground dug again (a waste pile,
  a pit's floor) or rock dug into soil-coloured ground (dormant grass) shows as a
  shift of its colour held over three looks (``excavation_shift``), which damp soil
  and haze are not; so does soil, or grey rock, dug from under dormant cover of
  nearly its colour, each look moved from the cover toward soil or rock, as dormant
  cover does not move in a few revisits and does not stay so into spring.
- **A harvest whose date moved** beyond the season window is on ground that had
  other bare spells lately at that time of year (two within ``bare_memory_days``,
  one ending within ``bare_prone_season_days`` of the date), or at one time of year
  in two different years (a field whose other harvest cloud hid): such a ``prone``
  candidate makes a flag only once it has stayed bare longer than a fallow spell
  (``bare_prone_run_days``). A pit dug into a field stays bare past it. So is a
  change that begins together on much of the tile's clear ground (a harvest across
  the plain where cloud hid last year's), unlike a dig, save a patch of its own on
  ground never bare, woods or grass (``excavation_plain.held_by_the_plain``).

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

Each date's step is compiled (numba, ``excavation_kernel``): one pass over the tile's
pixels reads the look, one advances the state, where the fold's numpy form made about
80 passes over the tile per date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from pipeline.config import DetectionConfig

N_SEASON_BINS = 36  # ten-day bins of the year
NEW_YEAR_GAP_DAYS = 180  # a bin visited again after this long is a new year's visit
# Bare spells ending this close are one fallow spell (``Lines.spell_merge_days``).
SPELL_MERGE_DAYS = 45

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

CHANGE_FIELDS = (*(n for n in CHANGE_LAYERS if n != "span_days"), "last_day", "watched_day")
"""The ``FoldState`` fields ``change_layers`` reads (``span_days`` is made of the last two)."""


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
    gap_days: np.ndarray  # int32 that gap for a candidate or watch: long gaps hide gradual change
    run_start_day: np.ndarray  # int32 run's first look (a field's: first after a long gap)
    run_prone: np.ndarray  # bool: the run began on ground bare in other runs lately (fields)
    run_unexpected: np.ndarray  # uint16 its looks where the season's history is not bare
    green_day: np.ndarray  # int32 day number of the latest look at least prior_ndvi_min
    run_late: np.ndarray  # bool: the run became a change late (``late_change_looks``), or
    # began as one from low cover no abrupt line caught, on ground green within the year
    late: np.ndarray  # bool: the candidate's run did (``run_late``)
    spell_end: np.ndarray  # (2, h, w) int32 days of the last looks of the latest two bare spells
    onset_day: np.ndarray  # int32 the candidate's run_start_day at its start
    prior_ndvi: np.ndarray  # float32 median NDVI of the looks before onset
    prone: np.ndarray  # bool: the candidate's run began on ground bare lately (``run_prone``)
    last_day: np.ndarray  # int32 day number of the candidate's latest supporting look
    watched_day: np.ndarray  # int32 start of its latest stretch with no gap over gradual_gap_days
    unexpected_day: np.ndarray  # int32 first look bare in a green season since one not bare
    shift_t: np.ndarray  # int32 first look of a pending shift of bare ground's colour, -1 none
    shift_day: np.ndarray  # int32 its day number
    shift_n: np.ndarray  # int8 looks shifted so far, signed as their BSI moved
    shift_bsi: np.ndarray  # float32 BSI of the looks before it (NaN: no shift pending or held)
    shift_red: np.ndarray  # float32 red of those looks


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
        unexpected_day=np.zeros(shape, np.int32),
        shift_t=minus1.copy(),
        shift_day=np.zeros(shape, np.int32),
        shift_n=np.zeros(shape, np.int8),
        shift_bsi=np.full(shape, np.nan, np.float32),
        shift_red=np.full(shape, np.nan, np.float32),
    )


# ``FoldState``'s arrays as the compiled kernels take them (a named tuple of arrays).
# Numba's cache index names the kernels' argument types, this class and ``Lines``, by
# module and name: renamed or moved, they make a machine's cached kernels fail to load
# (delete ``pipeline/__pycache__/*.nbi`` there).
StateArrays = NamedTuple("StateArrays", [(f.name, np.ndarray) for f in fields(FoldState)])


def state_arrays(state: FoldState) -> tuple[np.ndarray, ...]:
    return StateArrays(*(getattr(state, f.name) for f in fields(FoldState)))


class Lines(NamedTuple):
    """``DetectionConfig``'s thresholds as the compiled fold reads them (``look_lines``).

    Those the looks' float32 values are compared with are float32 themselves, as numpy
    compares a float32 array with a Python number: a value on a line falls on the side
    it fell on in the fold's numpy form.
    """

    fresh_ndvi_max: np.float32
    soil_ndvi_max: np.float32
    soil_bsi_min: np.float32
    soil_slant_ndvi: np.float32
    soil_bsi_slope: np.float32
    soil_rise_unit: np.float32  # soil_rise_ndvi above fresh_ndvi_max, at least 1e-6
    soil_rise_red_min: np.float32
    fresh_red_min: np.float32
    fresh_bsi_min: np.float32
    missed_cloud_red_min: np.float32
    season_low_ndvi_max: np.float32
    season_low_bsi_min: np.float32
    abrupt_ndvi_drop: np.float32
    abrupt_bsi_rise: np.float32
    abrupt_red_rise: np.float32
    abrupt_combined_min: np.float32
    ndvi_drop_unit: np.float32  # the three abrupt lines, at least 1e-6 (the combined test's units)
    bsi_rise_unit: np.float32
    red_rise_unit: np.float32
    prior_ndvi_min: np.float32
    cloud_flat_green_fall: np.float32
    cloud_flat_bsi_max: np.float32
    regional_canopy_ndvi_min: np.float32
    bare_shift_bsi: np.float32
    bare_shift_red: np.float32
    season_bare_max_fraction: float
    persistence_min: float
    prior_observations: int
    bare_prone_run_days: int
    gradual_gap_days: int
    bare_memory_days: int
    bare_prone_season_days: int
    late_change_looks: int
    spell_merge_days: int


def look_lines(cfg: DetectionConfig) -> Lines:
    f32 = np.float32
    return Lines(
        fresh_ndvi_max=f32(cfg.fresh_ndvi_max),
        soil_ndvi_max=f32(cfg.soil_ndvi_max),
        soil_bsi_min=f32(cfg.soil_bsi_min),
        soil_slant_ndvi=f32(cfg.soil_slant_ndvi),
        soil_bsi_slope=f32(cfg.soil_bsi_slope),
        soil_rise_unit=f32(max(cfg.soil_rise_ndvi - cfg.fresh_ndvi_max, 1e-6)),
        soil_rise_red_min=f32(cfg.soil_rise_red_min),
        fresh_red_min=f32(cfg.fresh_red_min),
        fresh_bsi_min=f32(cfg.fresh_bsi_min),
        missed_cloud_red_min=f32(cfg.missed_cloud_red_min),
        season_low_ndvi_max=f32(cfg.season_low_ndvi_max),
        season_low_bsi_min=f32(cfg.season_low_bsi_min),
        abrupt_ndvi_drop=f32(cfg.abrupt_ndvi_drop),
        abrupt_bsi_rise=f32(cfg.abrupt_bsi_rise),
        abrupt_red_rise=f32(cfg.abrupt_red_rise),
        abrupt_combined_min=f32(cfg.abrupt_combined_min),
        ndvi_drop_unit=f32(max(cfg.abrupt_ndvi_drop, 1e-6)),
        bsi_rise_unit=f32(max(cfg.abrupt_bsi_rise, 1e-6)),
        red_rise_unit=f32(max(cfg.abrupt_red_rise, 1e-6)),
        prior_ndvi_min=f32(cfg.prior_ndvi_min),
        cloud_flat_green_fall=f32(cfg.cloud_flat_green_fall),
        cloud_flat_bsi_max=f32(cfg.cloud_flat_bsi_max),
        regional_canopy_ndvi_min=f32(cfg.regional_canopy_ndvi_min),
        bare_shift_bsi=f32(cfg.bare_shift_bsi),
        bare_shift_red=f32(cfg.bare_shift_red),
        season_bare_max_fraction=float(cfg.season_bare_max_fraction),
        persistence_min=float(cfg.persistence_min),
        prior_observations=int(cfg.prior_observations),
        bare_prone_run_days=int(cfg.bare_prone_run_days),
        gradual_gap_days=int(cfg.gradual_gap_days),
        bare_memory_days=int(cfg.bare_memory_days),
        bare_prone_season_days=int(cfg.bare_prone_season_days),
        late_change_looks=int(cfg.late_change_looks),
        spell_merge_days=SPELL_MERGE_DAYS,
    )


def season_bin(day: int) -> int:
    doy = (np.datetime64(day, "D") - np.datetime64(day, "D").astype("datetime64[Y]")).astype(int)
    return min(int(doy * N_SEASON_BINS / 366), N_SEASON_BINS - 1)


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
    """Advance one tile's state by one date (``t`` its index, ``day`` days since 1970), in
    place: the compiled per-pixel kernels of ``excavation_kernel``, and between them the
    three tests over the whole tile (``excavation_plain``)."""
    from pipeline.excavation_kernel import CLEAR, STOOD_OUT, advance, judge_looks
    from pipeline.excavation_plain import held_by_the_plain, near_masked, stands_out

    s, lines = state, look_lines(cfg)
    arrays = state_arrays(s)
    look = [np.ascontiguousarray(band, np.float32) for band in (ndvi, bsi, red)]
    clear = np.ascontiguousarray(clear, bool)
    # The season bins within ``season_window_days`` of the date, and whether each is not
    # yet visited this season (its latest look is last year's).
    b_now = season_bin(day)
    half = max(1, round(cfg.season_window_days * N_SEASON_BINS / 365))
    bins = np.array([(b_now + d) % N_SEASON_BINS for d in range(-half, half + 1)])
    unvisited = day - s.bin_last_day[bins] > NEW_YEAR_GAP_DAYS
    flags = np.empty((STOOD_OUT + 1, *clear.shape), bool)
    prior = np.empty(clear.shape, np.float32)
    n_clear, n_began, n_new = judge_looks(
        arrays, lines, day, clear, *look, bins, unvisited, flags, prior
    )
    # Changes beginning on this date over a large share of the tile's clear pixels
    # (``regional_change_share``, at least ``regional_change_min_pixels``): a harvest
    # across the plain, not a dig.
    regional = n_began >= cfg.regional_change_min_pixels and n_began > (
        cfg.regional_change_share * n_clear
    )
    held = held_by_the_plain(s, flags, day, cfg) if regional else np.zeros_like(clear)
    # Patches moved toward soil against the land around them: changes too.
    stands_out(s, flags, day, *look, cfg, lines)
    near = near_masked(flags[CLEAR], cfg.cloud_edge_pixels if n_new else 0)
    new_year = bool(day - s.bin_last_day[b_now] > NEW_YEAR_GAP_DAYS)
    advance(arrays, lines, t, day, b_now, new_year, held, flags, prior, near, *look)
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
    # The share in float64, as it always was, whatever the stack's dtype.
    since = np.maximum(at["n_since"], 1).astype(np.float64)
    kept = (at["onset"] >= 0) & (at["n_bare"] >= cfg.persistence_min * since)
    kept &= (at["prone"] == 0) | (at["span_days"] >= cfg.bare_prone_run_days)
    # One look that may be cloud the mask missed is no dig until a second agrees.
    return kept & ((at["doubtful_look"] == 0) | (at["confirm"] >= 0))


def change_layers(state: FoldState | Mapping[str, np.ndarray]) -> np.ndarray:
    """The state's outcome as a float32 stack (layer, h, w) in ``CHANGE_LAYERS`` order,
    from the state or from its ``CHANGE_FIELDS`` alone.

    Every layer is exact in float32: date indices, counts and day spans (small
    integers), flags, and ``prior_ndvi``, a float32 itself. Arithmetic on them that may
    round (shares, medians, sums over a flag's pixels) is done in float64."""
    at = state if isinstance(state, Mapping) else {n: getattr(state, n) for n in CHANGE_FIELDS}
    return np.stack(
        [
            at["onset"],
            at["confirm"],
            at["last"],
            at["n_since"],
            at["n_bare"],
            at["has_history"],
            at["prior_ndvi"],
            at["gap_days"],
            at["prone"],
            np.where(at["onset"] >= 0, at["last_day"] - at["watched_day"], 0),
            at["doubtful_look"],
            at["late"],
        ]
    ).astype(np.float32)
