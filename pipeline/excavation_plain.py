"""The fold's two tests over a whole tile on one date, between its compiled kernels.

``excavation.fold_step`` runs them between ``judge_looks`` and ``advance``: which runs
beginning on a date of change across the plain are held as a field's
(``held_by_the_plain``), and which clear pixels lie beside masked cloud
(``near_masked``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from pipeline.config import DetectionConfig
from pipeline.excavation_kernel import BEGAN, HAS_HISTORY

if TYPE_CHECKING:
    from pipeline.excavation import FoldState

# A crop ripens before its harvest: NDVI falls by this from one look to the next (woods and
# grass by a few hundredths); ground no field is this share of a patch let go from the plain.
RIPENING_FALL = np.float32(0.1)
PATCH_SHARE = 0.5


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
    no_field = began & flags[HAS_HISTORY] & (day - s.spell_end[0] > cfg.bare_memory_days)
    no_field &= ~ripening
    patch, n = ndimage.label(began, structure=np.ones((3, 3), bool))
    size = np.bincount(patch.ravel(), minlength=n + 1)
    share = np.bincount(patch.ravel(), no_field.ravel(), minlength=n + 1) / np.maximum(size, 1)
    alone = (share >= PATCH_SHARE) & (size < cfg.regional_change_min_pixels)
    return began & ~(no_field & alone[patch])
