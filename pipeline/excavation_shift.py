"""Bare ground dug again: the excavation fold's watch on a shift of its colour.

Ground bare all year (a waste-rock pile, an old pit's floor, a closed site's weathered
ground) dug again stays bare: no run of fresh-bare looks begins there, so the fold's
test for a change from ground not bare never sees it. What changes is its colour:
soil or rock dug from under a weathered or waste surface differs from it in spectral
shape and brightness at once (``excavation_looks.bare_shift``). So does rock dug
into soil-coloured ground, bare on the soil line or low cover (grass dormant in
winter, soil): there the season's history is bare, which explains a change, and the
ground before may read bare, which is no change.

``watch_shift`` follows a pixel while it has no candidate (``advance`` calls it on
each clear look). A watch opens on a fresh-bare look shifted against the median of
the ``prior_observations`` looks before it, when those looks are of one colour (none
shifted against their median by half the lines: a haze or a damp spell is no
"before") and either
- all bare, on ground mostly bare in at least ``BARE_YEAR_BINS`` season bins and in
  ``BARE_YEAR_SHARE`` of the bins seen in all years (no field or grass: they are
  green every year); or
- soil-coloured (median NDVI over ``fresh_ndvi_max``, up to ``season_low_ndvi_max``,
  and BSI at least ``season_low_bsi_min``: low cover, as the season bins count it),
  bare or not, and the look is rock (NDVI at most ``fresh_ndvi_max``): no field
  ploughed, no grass drying, turns from soil to rock. Thin green cover (BSI near 0, a
  crop on a restoration's waste) harvested down to a bright substrate is not soil.
``SHIFT_LOOKS`` clear looks running, shifted the same way against those medians, make
a candidate dated from the first. A look not bare, or not shifted, closes the watch.
Wet soil darkens with little change of shape, and a haze lasts a look or two. The
candidate keeps the medians: its later looks support it while they are shifted
still, the same way by half the lines at least (``SUPPORT_SHARE``: one pixel's looks
are noisier than the watch's three), not merely bare, whatever the season expects
(``advance``).

Soil dug from under cover of nearly its colour (loess under grass dormant in winter)
is no shift of bare ground and may pass no line on one look. A watch opens on it too
(``soil_from_cover``): on ground not ``prone`` (no field: a field ploughed from its stubble
moves so each year), a fresh-bare look moved from the low cover before it toward soil,
NDVI down and BSI and red up, together ``COVER_SHARE`` of the abrupt combined line
(``toward_soil``); the looks after it move so too. The cover before is of one colour
(no look of it moved from their median by ``SUPPORT_SHARE`` of that either way: no
planting browning off or greening up), at most a third of its looks bare, the latest
within ``gradual_gap_days`` (cover seen months before may have gone its own way since).
Dormant cover drifts a little per look and greens in spring; a pit stays soil. Grey
rock dug from under such cover is no more SWIR-heavy than the cover, nor flat like
haze (``to_rock``): it moved so when NDVI fell and red rose, the two together
``COVER_SHARE`` of the line. Cover does not turn to such rock on its own (a planting
dying back bares its soil, SWIR-heavier), so that watch opens after any gap; the
candidate keeps the gap before its first look (``gap_days``, as a run's candidate
does), which the die-back test and the flag's confidence weigh. Any watch or
candidate whose looks moved BSI up (a shift's own, or from low cover) takes a look
moved so toward soil or rock as shifted still (``shifted_still``).

``from_low_cover`` makes such a candidate on a single look: a change, where the
season's history is bare, from the low cover the history holds (grass dormant in
winter) to ground shifted from it, or to rock, which low cover never is. The history
explains a change to bare ground from green ground (a harvest), not from itself.
``advance`` asks it only on ground with no bare spell at this time of year (not
``prone``: a field ploughed from its stubble).
"""

from __future__ import annotations

import numpy as np

from pipeline.excavation_looks import (
    bare_shift,
    combined_change,
    inline,
    low_cover,
    median_of_looks,
    mostly_not_bare,
)

SHIFT_LOOKS = 3  # clear looks in a row, shifted one way, that make a shift a candidate
BARE_YEAR_BINS = 24  # season bins (of 36) seen mostly bare: two thirds of the year
BARE_YEAR_SHARE = 0.9  # and this share of the bins seen
SUPPORT_SHARE = 0.5  # of the shift's lines, a later look's shift that supports its candidate
COVER_SHARE = 0.5  # of abrupt_combined_min, a look's move from cover toward soil (``toward_soil``)


@inline
def soil_ward(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln):
    """How far a look moved from the one before toward bare soil, as a share of the
    abrupt combined line (``excavation_looks.combined_change``; negative toward
    cover)."""
    drop, rise, brighten = ndvi_before - ndvi, bsi - bsi_before, red - red_before
    return combined_change(drop, rise, brighten, ln) / ln.abrupt_combined_min


@inline
def toward_soil(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln, share):
    """Whether a look moved from the cover before it toward bare soil: NDVI fell and BSI
    and red rose, all three, together ``share`` of the abrupt combined line. Or toward
    rock (``to_rock``): NDVI fell and red rose, the two together ``share`` of the line."""
    if not (ndvi < ndvi_before and red > red_before):
        return False
    if to_rock(ndvi, bsi, bsi_before, ln):
        bsi_before = bsi
    elif not bsi > bsi_before:
        return False
    return soil_ward(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln) >= share


@inline
def to_rock(ndvi, bsi, bsi_before, ln):
    """Whether a look is grey rock dug from under cover on soil: rock (NDVI at most
    ``fresh_ndvi_max``), no more SWIR-heavy than the cover before it, and not flat
    (BSI at least ``cloud_flat_bsi_max``). The soil itself, its cover gone (a sparse
    planting dying back to its loess), reads SWIR-heavier; haze the SCL missed reads
    flat, and bright, as white rock does (which ``bare_shift`` takes)."""
    return ndvi <= ln.fresh_ndvi_max and ln.cloud_flat_bsi_max <= bsi <= bsi_before


@inline
def moved_as_before(i, j, ndvi, bsi, red, ln, shift_n, prior_ndvi, shift_bsi, shift_red, share):
    """Whether pixel ``(i, j)``'s look moved as its watch's or candidate's looks did, from
    the colour before them it keeps: shifted the same way by ``share`` of the shift
    lines, or, where they moved BSI up, toward soil by ``share`` of the watch's line
    (``toward_soil``)."""
    n, bsi_before, red_before = shift_n[i, j], shift_bsi[i, j], shift_red[i, j]
    if bare_shift(bsi, red, bsi_before, red_before, ln, share) * n > 0:
        return True
    line, ndvi_before = share * COVER_SHARE, prior_ndvi[i, j]
    return n > 0 and toward_soil(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln, line)


@inline
def shifted_still(i, j, ndvi, bsi, red, ln, shift_n, prior_ndvi, shift_bsi, shift_red):
    """Whether pixel ``(i, j)``'s later look supports its shift's candidate: moved as its
    looks did by ``SUPPORT_SHARE`` of the lines (``moved_as_before``; a watch goes on
    by the full lines)."""
    return moved_as_before(
        i, j, ndvi, bsi, red, ln, shift_n, prior_ndvi, shift_bsi, shift_red, SUPPORT_SHARE
    )


@inline
def bare_all_year(i, j, cur_clear, cur_bare, last_clear, last_bare, older_clear, older_bare):
    """Whether pixel ``(i, j)`` was mostly bare in ``BARE_YEAR_BINS`` season bins and
    ``BARE_YEAR_SHARE`` of those seen, all years' visits together (cloud hides a
    season of a year or two)."""
    seen = bare = 0
    for b in range(cur_clear.shape[0]):
        clear = np.int32(cur_clear[b, i, j]) + last_clear[b, i, j] + older_clear[b, i, j]
        n_bare = np.int32(cur_bare[b, i, j]) + last_bare[b, i, j] + older_bare[b, i, j]
        seen += clear > 0
        bare += clear > 0 and 2 * n_bare > clear
    return bare >= BARE_YEAR_BINS and bare >= BARE_YEAR_SHARE * seen


@inline
def watch_shift(
    i, j, t, day, fresh, ndvi, bsi, red, ln, recent_n, recent_bare, recent_ndvi, recent_bsi,
    recent_red, cur_clear, cur_bare, last_clear, last_bare, older_clear, older_bare, shift_t,
    shift_day, shift_n, shift_bsi, shift_red, prior_ndvi, prone, gap,
):  # fmt: skip
    """Follow pixel ``(i, j)``'s clear look on date ``t`` (``day``, ``gap`` days after the
    clear look before; ``prone``: its run's, ``excavation_looks.prone_run``); True when it
    makes the watched shift a candidate (the caller starts it). Opening a watch also keeps
    the NDVI before it in ``prior_ndvi`` (unused while the pixel has no candidate)."""
    k = ln.prior_observations
    if shift_t[i, j] >= 0:
        if fresh and moved_as_before(
            i, j, ndvi, bsi, red, ln, shift_n, prior_ndvi, shift_bsi, shift_red, 1.0
        ):
            shift_n[i, j] += 1 if shift_n[i, j] > 0 else -1
            return abs(shift_n[i, j]) >= SHIFT_LOOKS
        shift_t[i, j] = -1
        shift_bsi[i, j] = shift_red[i, j] = np.float32(np.nan)
        return False
    if not fresh or recent_n[i, j] < k:
        return False
    # Most looks are no shift: that test first, on the two medians it needs.
    bsi_before = median_of_looks(recent_bsi, 0, k, i, j)
    red_before = median_of_looks(recent_red, 0, k, i, j)
    moved = bare_shift(bsi, red, bsi_before, red_before, ln, 1.0)
    if moved == 0:
        # Cover seen months before may have gone its own way to soil, not to rock.
        if prone or (gap > ln.gradual_gap_days and not to_rock(ndvi, bsi, bsi_before, ln)):
            return False
        return soil_from_cover(
            i, j, t, day, ndvi, bsi, red, bsi_before, red_before, ln, recent_bare, recent_ndvi,
            recent_bsi, recent_red, shift_t, shift_day, shift_n, shift_bsi, shift_red, prior_ndvi,
        )  # fmt: skip
    ndvi_before = median_of_looks(recent_ndvi, 0, k, i, j)
    # Rock from soil-coloured ground (dormant grass, soil): bare on the soil line or not,
    # low cover as the season bins count it; thin green cover (a crop on a restoration's
    # waste, BSI near 0) harvested down to its substrate is no soil turned to rock.
    rock = ndvi <= ln.fresh_ndvi_max < ndvi_before and low_cover(ndvi_before, bsi_before, ln)
    for slot in range(k):
        # Each look before bare and of one colour with the others (no haze among them).
        if not (recent_bare[slot, i, j] or rock) or bare_shift(
            recent_bsi[slot, i, j], recent_red[slot, i, j], bsi_before, red_before, ln, 0.5
        ):
            return False
    if not (
        rock
        or bare_all_year(i, j, cur_clear, cur_bare, last_clear, last_bare, older_clear, older_bare)
    ):
        return False
    shift_t[i, j], shift_day[i, j], shift_n[i, j] = t, day, moved
    shift_bsi[i, j], shift_red[i, j] = bsi_before, red_before
    prior_ndvi[i, j] = ndvi_before
    return SHIFT_LOOKS <= 1


@inline
def soil_from_cover(
    i, j, t, day, ndvi, bsi, red, bsi_before, red_before, ln, recent_bare, recent_ndvi,
    recent_bsi, recent_red, shift_t, shift_day, shift_n, shift_bsi, shift_red, prior_ndvi,
):  # fmt: skip
    """``watch_shift``'s watch on soil from under cover: opens it on pixel ``(i, j)``'s
    fresh look on date ``t`` (``day``) when its looks before (medians ``bsi_before``,
    ``red_before``) were low cover of one colour, at most a third of them bare, and it
    moved from them toward soil (``toward_soil``). True when that makes a candidate."""
    k = ln.prior_observations
    if not mostly_not_bare(recent_bare, k, i, j):
        return False
    ndvi_before = median_of_looks(recent_ndvi, 0, k, i, j)
    if not low_cover(ndvi_before, bsi_before, ln):
        return False
    if not toward_soil(ndvi, bsi, red, ndvi_before, bsi_before, red_before, ln, COVER_SHARE):
        return False
    # Of one colour: no look moved from their median by ``SUPPORT_SHARE`` of the watch's
    # line either way (no cover browning off or greening up).
    for slot in range(k):
        nd, bs, rd = recent_ndvi[slot, i, j], recent_bsi[slot, i, j], recent_red[slot, i, j]
        away = soil_ward(nd, bs, rd, ndvi_before, bsi_before, red_before, ln)
        if abs(away) >= SUPPORT_SHARE * COVER_SHARE:
            return False
    shift_t[i, j], shift_day[i, j], shift_n[i, j] = t, day, 1
    shift_bsi[i, j], shift_red[i, j] = bsi_before, red_before
    prior_ndvi[i, j] = ndvi_before
    return SHIFT_LOOKS <= 1


@inline
def from_low_cover(
    i, j, t, day, ndvi, bsi, red, ln, recent_n, recent_bsi, recent_red, shift_t, shift_day,
    shift_n, shift_bsi, shift_red, prior_ndvi, run_prior_ndvi, no_spell, stood_out,
):  # fmt: skip
    """1 when a run's first look on date ``t`` (``day``), a change where the season's
    history is bare, moved from low cover or to rock, or from any ground with no bare
    spell in memory (``no_spell``); 0 when not. Low cover is the median of the looks
    before, as the season bins count it (``excavation_looks.low_cover``; its NDVI is
    the run's ``run_prior_ndvi``, taken by ``judge_looks``); moved is shifted from the
    looks before by ``SUPPORT_SHARE`` of the lines (``bare_shift``). On 1 it keeps
    that colour and the look's direction as a shift's candidate does (``shift_*``),
    dated from this look; on 0 it changes nothing. A look that ``stood_out`` from the
    land around it (``excavation_plain.stands_out``) moved so, whatever the lines.

    The season's bare history explains a change to bare ground (a harvest) when the
    ground was green before it. Where the ground before was the low cover the history
    holds (grass dormant in winter), the history is that cover, and a change from it to
    soil or rock is the ground's own. Low cover is never rock either: a change to rock
    (NDVI at most ``fresh_ndvi_max``) from ground that was not rock is taken too, from
    cover a little greener than the history's (grass that stayed green into winter).
    And a harvest leaves a bare spell: ground with none in ``bare_memory_days``
    (``no_spell``) has a bare history of low cover alone (grass dormant each winter),
    which explains no change to fresh soil from the green ground before it either."""
    n = recent_n[i, j]
    bsi_before = median_of_looks(recent_bsi, 0, n, i, j)  # NaN with no look: not low
    # Low cover is never rock: the history does not explain a change to rock from ground
    # that was not rock.
    rock = ndvi <= ln.fresh_ndvi_max < run_prior_ndvi[i, j]
    if not (rock or no_spell or low_cover(run_prior_ndvi[i, j], bsi_before, ln)):
        return 0
    red_before = median_of_looks(recent_red, 0, n, i, j)
    moved = 1 if stood_out else bare_shift(bsi, red, bsi_before, red_before, ln, SUPPORT_SHARE)
    if moved == 0:
        return 0
    shift_t[i, j], shift_day[i, j], shift_n[i, j] = t, day, moved
    shift_bsi[i, j], shift_red[i, j] = bsi_before, red_before
    prior_ndvi[i, j] = run_prior_ndvi[i, j]
    return 1
