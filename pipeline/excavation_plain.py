"""The fold's three tests over a whole tile on one date, between its compiled kernels.

``excavation.fold_step`` runs them between ``judge_looks`` and ``advance``: which runs
beginning on a date of change across the plain are held as a field's
(``held_by_the_plain``), which patches of fresh looks moved toward soil against the
land around them, though no abrupt line caught a look of theirs (``stands_out``), and
which clear pixels lie beside masked cloud (``near_masked``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pipeline.config import DetectionConfig
from pipeline.excavation_kernel import (
    ABRUPT,
    BEGAN,
    CLEAR,
    EXPECTED,
    FRESH,
    HAS_HISTORY,
    SLOW,
    STOOD_OUT,
)
from pipeline.excavation_looks import combined_change, medians_of_looks

if TYPE_CHECKING:
    from pipeline.excavation import FoldState, Lines

# A crop ripens before its harvest: NDVI falls by this from one look to the next (woods and
# grass by a few hundredths); ground no field is this share of a patch let go from the plain.
RIPENING_FALL = np.float32(0.1)
PATCH_SHARE = 0.5
# The land around a patch (``stands_out``): pixels 2 to 4 away (a 20 m SWIR pixel next to a
# dig sees part of it), clear, not fresh bare, at least this many.
RING_INNER, RING_OUTER, RING_MIN_PIXELS = 1, 4, 8
PATCH_MIN_PIXELS = 3  # the smallest flag on a closed site at 10 m (``closed_site_mmu_ha``)
EIGHT = np.ones((3, 3), bool)  # eight-connected


def near_masked(clear: np.ndarray, pixels: int) -> np.ndarray:
    """Clear pixels within ``pixels`` of a masked one (cloud, shadow, no data) this date."""
    masked = ~clear
    if pixels <= 0 or not masked.any():
        return np.zeros_like(clear)
    return clear & ndimage.maximum_filter(masked, size=2 * pixels + 1, mode="nearest")


def held_by_the_plain(
    s: FoldState, flags: np.ndarray, day: int, cfg: DetectionConfig
) -> np.ndarray:
    """The runs beginning on a date of change across the plain that are held as a field's
    (``prone``), from ``judge_looks``' ``flags``: all of them but a patch of ground no
    field. Ground seen at this time of year before, with no bare spell within
    ``bare_memory_days`` and not falling as a ripening crop does over its last two looks
    (``RIPENING_FALL``), is woods or grass: a field is ploughed bare at least once a
    year. Part of a field can still pass for it (cloud hid its spells, its harvests
    read as stubble), so it is let go only where such ground is most of the patch of
    pixels changing together (``BEGAN``; ``PATCH_SHARE``, eight-connected) under
    ``regional_change_min_pixels``: a dig is a patch of its own, the land around it
    unchanged, where a field is harvested whole, with the rest of its ground."""
    began = flags[BEGAN]
    last_two = s.recent_ndvi[:2]  # one look kept (``prior_observations: 1``): no fall seen
    with np.errstate(invalid="ignore"):
        ripening = last_two[-1] - last_two[0] >= RIPENING_FALL
    no_field = began & flags[HAS_HISTORY] & no_bare_spell(s, day, cfg)
    no_field &= ~ripening
    patch, n = ndimage.label(began, structure=np.ones((3, 3), bool))
    size = np.bincount(patch.ravel(), minlength=n + 1)
    share = np.bincount(patch.ravel(), no_field.ravel(), minlength=n + 1) / np.maximum(size, 1)
    alone = (share >= PATCH_SHARE) & (size < cfg.regional_change_min_pixels)
    return began & ~(no_field & alone[patch])


def stands_out(
    s: FoldState,
    flags: np.ndarray,
    day: int,
    ndvi: np.ndarray,
    bsi: np.ndarray,
    red: np.ndarray,
    cfg: DetectionConfig,
    ln: Lines,
) -> None:
    """Marks ``STOOD_OUT`` in ``judge_looks``' ``flags`` (and so ``ABRUPT``, ``BEGAN`` and
    ``SLOW``: no line caught the change, which may have been gradual), by the state
    before the date: fresh looks beginning a run on ground not bare before (as
    ``BEGAN``), not expected bare by the season unless the ground has no bare spell in
    memory, each moved toward soil from its own looks before (NDVI down, BSI and red
    up), the patch by ``stand_out_combined_min`` on the combined line (its median) and
    as far beyond how the land around it moved.
    Soil dug from under dormant grass of nearly its colour moves a whole patch by a
    little in one look while the grass around it stays; grass drying, haze and a
    season's browning move the land around it too, and are taken off. The patch is
    eight-connected fresh looks beginning a run (``PATCH_MIN_PIXELS`` at least); the
    land around it, ``RING_MIN_PIXELS`` clear looks not fresh bare, ``RING_INNER`` to
    ``RING_OUTER`` pixels out, each against its own looks before. ``ln``: the fold's
    thresholds (``excavation.look_lines``)."""
    flags[STOOD_OUT] = False
    k, n = cfg.prior_observations, s.recent_n
    began = flags[FRESH] & (s.run_start < 0)
    # Where the season expects bare, only on ground with no bare spell in memory: its
    # bare history is its own dormant cover (``excavation_shift.from_low_cover``).
    maybe = began & ~flags[ABRUPT] & (~flags[EXPECTED] | no_bare_spell(s, day, cfg)) & (n > 0)
    maybe &= s.recent_bare.sum(axis=0) * 3 <= k
    if cfg.stand_out_combined_min > 3 or np.count_nonzero(maybe) < PATCH_MIN_PIXELS:
        return
    patch, n_patches = ndimage.label(began, structure=EIGHT)
    size = np.bincount(patch.ravel(), minlength=n_patches + 1)
    keep = np.bincount(patch.ravel(), maybe.ravel(), minlength=n_patches + 1) > 0
    keep &= size >= PATCH_MIN_PIXELS
    keep[0] = False
    if not keep.any():
        return
    patch = np.where(keep[patch], patch, 0)
    near = ndimage.binary_dilation(patch > 0, EIGHT, RING_INNER)
    around = ndimage.grey_dilation(patch, size=2 * RING_OUTER + 1)
    ring = (around > 0) & ~near & flags[CLEAR] & ~flags[FRESH] & (n > 0)
    keep &= np.bincount(around[ring], minlength=n_patches + 1) >= RING_MIN_PIXELS
    if not keep.any():
        return
    # The pixels that count, as lists: the patches' looks and the land around them, each
    # with its move from the median of its own looks before (toward soil: positive).
    mine, land = maybe & keep[patch], ring & keep[around]
    at = np.nonzero(mine | land)
    is_mine, label = mine[at], np.where(mine[at], patch[at], around[at])
    kept = (s.recent_ndvi, s.recent_bsi, s.recent_red)
    before = [medians_of_looks(looks, n, *at) for looks in kept]
    moved = np.stack([before[0] - ndvi[at], bsi[at] - before[1], red[at] - before[2]])
    ids = np.flatnonzero(keep)
    around_moved = np.full((3, n_patches + 1), np.nan)
    around_moved[:, ids] = [ndimage.median(b[~is_mine], label[~is_mine], ids) for b in moved]
    rel = moved - around_moved[:, label]
    with np.errstate(invalid="ignore"):
        judged = (n[at] >= k) | (before[0] >= cfg.prior_ndvi_min)  # as ``judge_looks``
        soil_ward = is_mine & judged & (moved > 0).all(axis=0)
        # The patch's medians, of its own move and of its move beyond the land's: one
        # pixel's look is noisy at a fraction of the lines, and the pixels that crossed
        # onto the bare line are those that moved most.
        stood = soil_ward
        for move in (moved, rel):
            combined = combined_change.py_func(*move, ln)  # on arrays, as the kernels add
            patch_moved = np.zeros(n_patches + 1)
            patch_moved[ids] = ndimage.median(combined, np.where(soil_ward, label, 0), ids)
            stood = stood & (np.nan_to_num(patch_moved)[label] >= cfg.stand_out_combined_min)
    out = np.zeros_like(began)
    out[at[0][stood], at[1][stood]] = True
    flags[STOOD_OUT] = out
    flags[[ABRUPT, BEGAN, SLOW]] |= out


def no_bare_spell(s: FoldState, day: int, cfg: DetectionConfig) -> np.ndarray:
    """Ground with no bare spell ended within ``bare_memory_days`` of ``day``: no field (a
    harvest leaves one); its bare history, if any, is its own dormant cover."""
    return day - s.spell_end[0] > cfg.bare_memory_days
