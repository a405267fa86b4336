"""What the excavation fold reads from its looks: fresh bare ground, medians, changes.

The per-look tests the compiled fold (``excavation_kernel``) applies, compiled with
numba too; each works on one pixel's values (the first two elementwise on arrays as
well): whether a look shows fresh bare soil or rock (``fresh_bare``, any soil colour)
or cloud the SCL missed (``missed_cloud``), the median of the few looks kept
(``median_of_looks``) and whether they were mostly not bare (``mostly_not_bare``),
whether a look is an abrupt change from them (``abrupt_change``), whether two bare
spells ended at one time of year (``near_a_spell_season``, ``yearly_spells``) and so
whether a run is a field's (``prone_run``), how bare ground's colour shifted
(``bare_shift``) and whether a look moved so from low cover (``slow_change``).
Thresholds come as ``excavation.Lines``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np

# Compiled once per machine and cached beside the module (``cache``); ``nogil`` lets a
# tile's fold run beside the reads on the other threads. Helpers reading the fold's
# arrays are inlined into the kernels (``inline``), so that no reference is counted for
# each pixel.
jit = numba.njit(cache=True, nogil=True)
inline = numba.njit(cache=True, nogil=True, inline="always")


@jit
def missed_cloud(ndvi, bsi, red, ln):
    """Cloud, haze or snow the SCL called clear: bright, unvegetated and flat or bluish.

    Bare ground as bright as cloud (red at least ``missed_cloud_red_min``) reflects
    more in SWIR than in NIR and blue (BSI at least ``fresh_bsi_min``); a cloud's
    spectrum is flat and haze lifts blue most. Such a look is never ``fresh_bare``.
    """
    return (red >= ln.missed_cloud_red_min) & (ndvi <= ln.fresh_ndvi_max) & (bsi < ln.fresh_bsi_min)


@inline
def low_cover(ndvi, bsi, ln):
    """Soil-dominated low cover (NaN compares False): NDVI at most ``season_low_ndvi_max``
    with BSI at least ``season_low_bsi_min`` (stubble, a harvest's ragged edges, grass
    dormant in winter). The season bins count it as bare, as they count fresh bare."""
    return ndvi <= ln.season_low_ndvi_max and bsi >= ln.season_low_bsi_min


@jit
def fresh_bare(ndvi, bsi, red, ln):
    """Fresh bare soil or rock: bright, bare and unvegetated (NaN compares False).

    Unvegetated is either NDVI at most ``fresh_ndvi_max`` (grey and white rock) or, on
    the soil line, NDVI at most ``soil_ndvi_max`` with BSI at least ``soil_bsi_min``
    (plus ``soil_bsi_slope`` per unit of NDVI above ``soil_slant_ndvi``): red soil and
    loess reflect more in NIR than rock does (NDVI 0.15-0.22) but keep a soil's
    SWIR-heavy shape, which sparse green cover and dead grass at the same NDVI do not.
    Above the soil's own NDVI, the more NIR a look keeps, the more of it is cover:
    dormant grass on loess is nearly as SWIR-heavy as the soil, at a higher NDVI.
    Below it, on bright looks (red at least ``soil_rise_red_min``), the line falls to
    ``fresh_bsi_min`` at ``fresh_ndvi_max`` from ``soil_bsi_min`` at ``soil_rise_ndvi``:
    a pit's edge pixel sees the soil in its 10 m red and NIR and the green ground beside
    it in its 20 m SWIR, which pulls BSI down; weathered ground and fallow fields at that
    NDVI are duller.
    """
    # Dull looks (a rise of 1 or more) keep the flat line.
    rise = np.maximum((ndvi - ln.fresh_ndvi_max) / ln.soil_rise_unit, red < ln.soil_rise_red_min)
    risen = ln.fresh_bsi_min + (ln.soil_bsi_min - ln.fresh_bsi_min) * rise
    floor = np.minimum(risen, ln.soil_bsi_min)
    line = floor + ln.soil_bsi_slope * np.maximum(ndvi - ln.soil_slant_ndvi, 0)
    unvegetated = (ndvi <= ln.fresh_ndvi_max) | ((ndvi <= ln.soil_ndvi_max) & (bsi >= line))
    return (red >= ln.fresh_red_min) & (bsi >= ln.fresh_bsi_min) & unvegetated


@inline
def median_of_looks(looks, first, n, i, j):
    """Median of ``n`` stored looks of pixel ``(i, j)`` from slot ``first`` of the (K, h, w)
    ``looks`` (float32, none NaN); NaN when ``n`` is 0.

    The few looks kept (``prior_observations``, 3 by default) are ranked in place: the
    median averages the looks at ranks (n-1)//2 and n//2 (among equal values, any).
    """
    if n == 0:
        return np.float32(np.nan)
    lo = hi = np.float32(np.nan)
    for a in range(first, first + n):
        v = looks[a, i, j]
        below = equal = 0
        for b in range(first, first + n):
            below += looks[b, i, j] < v
            equal += looks[b, i, j] == v
        if below <= (n - 1) // 2 < below + equal:
            lo = v
        if below <= n // 2 < below + equal:
            hi = v
    return np.float32((lo + hi) / np.float32(2))


@jit
def medians_of_looks(looks, n, rows, cols):
    """``median_of_looks`` of the listed pixels (``rows``, ``cols``), each of its first
    ``n[row, col]`` stored looks (float32; NaN where ``n`` is 0)."""
    out = np.empty(len(rows), np.float32)
    for p in range(len(rows)):
        i, j = rows[p], cols[p]
        out[p] = median_of_looks(looks, 0, n[i, j], i, j)
    return out


@inline
def mostly_not_bare(recent_bare, k, i, j):
    """Whether at most a third of pixel ``(i, j)``'s ``k`` stored looks (``recent_bare``,
    (K, h, w); slots not yet filled are False) were fresh bare: ground not bare before."""
    n_bare = 0
    for slot in range(k):
        n_bare += recent_bare[slot, i, j]
    return n_bare * 3 <= k


@inline
def abrupt_change(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln):
    """Whether a look is an abrupt change from the median NDVI, BSI and red of the looks
    before it (NaN compares False): NDVI falls by ``abrupt_ndvi_drop``, BSI rises by
    ``abrupt_bsi_rise`` or red by ``abrupt_red_rise``, or the three together, each as a
    share of its own threshold, add up to ``abrupt_combined_min``: soil dug out from
    under cover of nearly its colour (red soil under dry grass) moves every band at once,
    none past its line."""
    drop, rise, brighten = ndvi_before - ndvi, bsi - bsi_before, red - red_before
    return (
        (drop >= ln.abrupt_ndvi_drop)
        or (rise >= ln.abrupt_bsi_rise)
        or (brighten >= ln.abrupt_red_rise)
        or (combined_change(drop, rise, brighten, ln) >= ln.abrupt_combined_min)
    )


@inline
def combined_change(drop, rise, brighten, ln):
    """A look's NDVI fall, BSI rise and red rise from the looks before, each as a share
    of its own abrupt line, added (``abrupt_change``'s combined line; negative toward
    cover)."""
    return drop / ln.ndvi_drop_unit + rise / ln.bsi_rise_unit + brighten / ln.red_rise_unit


@inline
def near_a_spell_season(latest, before, day, days):
    """Whether ``day`` falls within ``days`` of the time of year either spell ended."""
    for end in (latest, before):
        phase = (day - end) % 365.25
        if min(phase, 365.25 - phase) <= days:
            return True
    return False


@inline
def yearly_spells(latest, before, days):
    """Whether the two spells ended in different years within ``days`` of one time of year."""
    apart = latest - before
    phase = apart % 365.25
    return apart >= 365.25 - days and min(phase, 365.25 - phase) <= days


@inline
def bare_shift(bsi, red, bsi_before, red_before, ln, share):
    """How a look of bare ground moved from the bare ground before it: +1 (BSI rose) or
    -1 (fell) when its BSI moved by ``share`` of ``bare_shift_bsi`` and its red by
    ``share`` of ``bare_shift_red`` of its level, both; 0 when not (NaN compares False).
    Fresh soil or rock dug from under a weathered or waste surface differs from it in
    shape and brightness at once; wet soil is darker with little change of shape."""
    moved, lines = bsi - bsi_before, np.float32(share)
    brighter = abs(red - red_before) >= lines * ln.bare_shift_red * red_before
    if brighter and abs(moved) >= lines * ln.bare_shift_bsi:
        return 1 if moved > 0 else -1
    return 0


@jit
def slow_change(bsi, red, ndvi_before, bsi_before, red_before, gap, ln):
    """Whether a look is a change from low cover (``low_cover``: the median looks
    before) though no band passed its abrupt line: ``gap`` days after the clear look
    before, at most ``gradual_gap_days``, it moved by the full shift lines
    (``bare_shift``), SWIR-heavier and brighter. Soil dug from under dormant cover; no
    dormant cover moves so far in a few revisits, a planting dying back does at its end
    (so such a change may have been gradual)."""
    if gap > ln.gradual_gap_days or not low_cover(ndvi_before, bsi_before, ln):
        return False
    return red > red_before and bare_shift(bsi, red, bsi_before, red_before, ln, 1.0) > 0


@jit
def prone_run(latest, before, day, field_soil, regional_change, full_canopy, ln):
    """Whether a run beginning now is ``prone``: its candidate makes a flag only once it
    has stayed bare for ``bare_prone_run_days`` (``span_days``), longer than any fallow
    spell between a harvest and the next crop, so a harvest whose date moved from last
    year's is not taken for a dig. A pit in a field stays bare past it.

    Prone is ground with two bare spells (that ended on days ``latest`` and ``before``)
    ended within ``bare_memory_days`` before this run (a field, bare after each harvest;
    a restoration's substrate is one spell), at about the time of year one of them ended
    (``bare_prone_season_days``), or whose two spells ended at one time of year in
    different years (a field whose other harvest cloud hid); soil-coloured bare ground
    (red soil, loess: fresh only on the soil line) where no seasonal history tells a
    field from a dig yet (``field_soil``: the imagery's first year); and ground that
    begins a change together with much of its tile, held with it (``regional_change``,
    ``excavation_plain.held_by_the_plain``), unless its last two looks were full canopy, the
    latest one revisit before (``full_canopy``): crops are harvested ripe, below full
    canopy, so that is woods dug on the day the plain is harvested.
    """
    days = ln.bare_prone_season_days
    if day - before <= ln.bare_memory_days and (
        near_a_spell_season(latest, before, day, days) or yearly_spells(latest, before, days)
    ):
        return True
    return field_soil or (regional_change and not full_canopy)


# The modules whose compiled helpers the kernels of ``excavation_kernel`` take in.
HELPER_MODULES = ("excavation_looks.py", "excavation_shift.py")


def drop_stale_caches(*kernels: object) -> None:
    """Numba keys a kernel's cached machine code on its own source file alone, and the
    code takes in the helpers it calls: a helper changed in another module
    (``HELPER_MODULES``) would go unseen and the old one run. A hash of those modules
    is kept beside each kernel's cache; when it differs, the cache is dropped and the
    kernel compiled again (about 7 s). Where the cache cannot be written, nothing is."""
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / m).read_bytes() for m in HELPER_MODULES)).hexdigest()
    for kernel in kernels:
        cache = getattr(kernel, "_cache", None)
        folder = getattr(cache, "cache_path", None)
        if cache is None or folder is None:
            continue
        stamp = Path(folder) / f"{kernel.__module__}.{kernel.__name__}.helpers"
        try:
            if stamp.read_text() == digest:
                continue
        except OSError:
            pass
        try:
            cache.flush()
            stamp.write_text(digest)
        except OSError:
            continue
