"""One step of the excavation fold, compiled: every pixel of a tile in one pass.

``excavation.fold_step`` calls the two kernels here for each date: ``judge_looks``
reads the date's look against the state (is it clear, fresh bare, expected by the
season, an abrupt change from the looks before) without changing it, and counts what
the tile-wide tests need; ``advance`` then moves each pixel's state on (its candidate,
its run of fresh-bare looks, its stored looks and season bins). Between them, in numpy,
come the two tests over the whole tile: whether the changes beginning on this date are
regional (a harvest across the plain) and which clear pixels lie beside masked cloud.

What each step means is told in ``excavation``'s docstring and in the comments below.
``state`` is ``excavation.FoldState``'s arrays as a named tuple (``StateArrays``),
advanced in place; ``ln`` the thresholds (``excavation.Lines``).
"""

from __future__ import annotations

import numpy as np

from pipeline.excavation_looks import (
    abrupt_change,
    drop_stale_caches,
    fresh_bare,
    jit,
    low_cover,
    median_of_looks,
    missed_cloud,
    mostly_not_bare,
    prone_run,
    slow_change,
)
from pipeline.excavation_shift import SHIFT_LOOKS, from_low_cover, shifted_still, watch_shift

YEAR_DAYS = 366  # "within the year before"
UNCONFIRMED_LOOKS = 3  # clear looks after which an unconfirmed candidate is dropped
NOT_WATCHED = np.iinfo(np.int32).max  # ``watched_day`` while no bare stretch is being watched
OWN_HISTORY_DAYS = 300  # after this long, a candidate's season history is its own bare ground
# A crop sown and harvested between two looks needs this long at least (summer maize and
# soybean on the plain about 100 days, millet 90).
CROP_CYCLE_DAYS = 90
# The latest look before counts for the full-canopy test this close: one revisit, +1 day.
CANOPY_GAP_DAYS = 11

# ``judge_looks``' per-pixel outcome, read by ``advance`` (``STOOD_OUT``: ``stands_out``'s).
CLEAR, FRESH, LOW_COVER, HAS_HISTORY, EXPECTED, ABRUPT, BEGAN, SLOW, STOOD_OUT = range(9)


@jit
def judge_looks(state, ln, day, clear_in, ndvi, bsi, red, bins, unvisited, flags, prior):
    """The date's look at each pixel (``day`` days since 1970), against the state before
    it (which it leaves as it is): ``flags[CLEAR ... SLOW]`` (``HAS_HISTORY``,
    ``EXPECTED`` and ``SLOW`` on fresh pixels; False elsewhere) and ``prior`` (the median
    NDVI of the looks before, on fresh pixels; NaN elsewhere). ``bins`` are the season
    bins around the date, ``unvisited`` whether each is not yet visited this season.
    Returns the clear pixels and the runs beginning as a change (for the regional test),
    and the runs beginning."""
    h, w = ndvi.shape
    k = ln.prior_observations
    # The state's arrays as locals, and no per-pixel helper takes the tuple: a call that
    # passes it counts a reference to each of its 47 arrays (a 400 px date took 120 ms so).
    recent_n, recent_bare, run_start = state.recent_n, state.recent_bare, state.run_start
    recent_ndvi, recent_bsi, recent_red = state.recent_ndvi, state.recent_bsi, state.recent_red
    cur_clear, cur_bare = state.cur_clear, state.cur_bare
    last_clear, last_bare = state.last_clear, state.last_bare
    older_clear, older_bare = state.older_clear, state.older_bare
    last_clear_day = state.last_clear_day
    n_clear = n_began = n_new = 0
    for i in range(h):
        for j in range(w):
            nd, bs, rd = ndvi[i, j], bsi[i, j], red[i, j]
            clear = (
                clear_in[i, j]
                and np.isfinite(nd)
                and np.isfinite(bs)
                and np.isfinite(rd)
                and not missed_cloud(nd, bs, rd, ln)
            )
            fresh = clear and fresh_bare(nd, bs, rd, ln)
            # Low cover (stubble, thin winter cover): the season bins count it too.
            low = clear and low_cover(nd, bs, ln)
            # Seasonal expectation from earlier years, +/- the window around this date:
            # the same time last year decides; where last year had no clear look in the
            # window, the years before it do (a site restored last year must not make
            # bare ground "expected" forever because it was bare three years ago). A bin
            # not visited this season yet holds last year's visit as its current one.
            # Only a fresh look needs it: a look not fresh bare neither begins, supports
            # nor is explained as a candidate's evidence.
            has_hist = expected = False
            if fresh:
                year_clear = year_bare = old_clear = old_bare = 0
                for at in range(len(bins)):
                    b = bins[at]
                    if unvisited[at]:
                        year_clear += cur_clear[b, i, j]
                        year_bare += cur_bare[b, i, j]
                        old_clear += np.int32(last_clear[b, i, j]) + older_clear[b, i, j]
                        old_bare += np.int32(last_bare[b, i, j]) + older_bare[b, i, j]
                    else:
                        year_clear += last_clear[b, i, j]
                        year_bare += last_bare[b, i, j]
                        old_clear += older_clear[b, i, j]
                        old_bare += older_bare[b, i, j]
                season_clear = year_clear if year_clear > 0 else old_clear
                season_bare = year_bare if year_clear > 0 else old_bare
                has_hist = season_clear > 0
                expected = has_hist and season_bare > ln.season_bare_max_fraction * season_clear
            # What came before: the last K clear looks (one is enough, as in the imagery's
            # first weeks; none gives NaN), on the fresh pixels alone.
            prior_ndvi, abrupt, slow = np.float32(np.nan), False, False
            n = recent_n[i, j]
            if fresh and n > 0:
                prior_ndvi = median_of_looks(recent_ndvi, 0, n, i, j)
                bs_b = median_of_looks(recent_bsi, 0, n, i, j)
                rd_b = median_of_looks(recent_red, 0, n, i, j)
                abrupt = abrupt_change(nd, bs, rd, prior_ndvi, bs_b, rd_b, ln)
                gap = day - last_clear_day[i, j]
                slow = not abrupt and slow_change(bs, rd, prior_ndvi, bs_b, rd_b, gap, ln)
                abrupt = abrupt or slow
            # A run begins as a change from an abrupt look on ground mostly not bare
            # before. With fewer than K looks before (the imagery's first weeks), one
            # hazy or cloud-edge look could pass for "before": the ground must then have
            # been green. With no look before, neither holds.
            began = False
            if abrupt:
                judged = n >= k or prior_ndvi >= ln.prior_ndvi_min
                began = judged and mostly_not_bare(recent_bare, k, i, j)
            new_run = fresh and run_start[i, j] < 0
            n_clear += clear
            n_new += new_run
            n_began += new_run and began
            flags[CLEAR, i, j], flags[FRESH, i, j], flags[LOW_COVER, i, j] = clear, fresh, low
            flags[HAS_HISTORY, i, j], flags[EXPECTED, i, j] = has_hist, expected
            flags[ABRUPT, i, j], flags[BEGAN, i, j], flags[SLOW, i, j] = abrupt, began, slow
            prior[i, j] = prior_ndvi
    return n_clear, n_began, n_new


@jit
def advance(state, ln, t, day, b_now, new_year, held, flags, prior, near, ndvi, bsi, red):
    """Advance each pixel's state by the date ``t`` (``day`` days since 1970, in season bin
    ``b_now``, the bin's first look this year if ``new_year``), from ``judge_looks``'
    ``flags`` and ``prior``. ``held``: runs beginning as a change across much of the
    tile (``excavation_plain.held_by_the_plain``); ``near``: clear pixels beside masked cloud."""
    h, w = ndvi.shape
    k = ln.prior_observations
    gap_max = ln.gradual_gap_days
    s = state
    # The state's arrays as locals (see ``judge_looks``).
    onset, confirm, last, onset_day = s.onset, s.confirm, s.last, s.onset_day
    n_since, n_bare, n_looks = s.n_since, s.n_bare, s.n_looks
    last_day, watched_day, last_clear_day = s.last_day, s.watched_day, s.last_clear_day
    unexpected_day, run_late = s.unexpected_day, s.run_late
    shift_t, shift_day, shift_n, shift_bsi = s.shift_t, s.shift_day, s.shift_n, s.shift_bsi
    shift_red, doubtful_look, prior_ndvi = s.shift_red, s.doubtful_look, s.prior_ndvi
    run_start, run_len, run_second, run_ok = s.run_start, s.run_len, s.run_second, s.run_ok
    run_prone, run_start_day, run_prior_ndvi = s.run_prone, s.run_start_day, s.run_prior_ndvi
    run_gap, run_doubt, run_unexpected = s.run_gap, s.run_doubt, s.run_unexpected
    spell_end, green_day, recent_n = s.spell_end, s.green_day, s.recent_n
    recent_ndvi, recent_bsi = s.recent_ndvi, s.recent_bsi
    recent_red, recent_bare = s.recent_red, s.recent_bare
    has_history, gap_days, prone, late_ = s.has_history, s.gap_days, s.prone, s.late
    cur_clear, cur_bare, last_clear, last_bare = s.cur_clear, s.cur_bare, s.last_clear, s.last_bare
    older_clear, older_bare = s.older_clear, s.older_bare
    for i in range(h):
        for j in range(w):
            clear, fresh, low = flags[CLEAR, i, j], flags[FRESH, i, j], flags[LOW_COVER, i, j]
            has_hist, expected = flags[HAS_HISTORY, i, j], flags[EXPECTED, i, j]
            abrupt, began, look_prior = flags[ABRUPT, i, j], flags[BEGAN, i, j], prior[i, j]
            nd, bs, rd = ndvi[i, j], bsi[i, j], red[i, j]

            # A pixel already carrying a candidate takes this look as evidence. A fresh
            # look the season explains (harvest time) is neutral: it neither supports nor
            # contradicts a dig, as long as the season's history predates the candidate
            # (after a year, the history is the candidate's own bare ground). A candidate
            # nothing has confirmed after ``UNCONFIRMED_LOOKS`` clear looks is dropped; if
            # the ground stays bare past the season, it starts again from the run's first
            # look.
            # A shift of bare ground's colour (``excavation_shift``) is supported by looks
            # shifted still: all its looks are bare, and the season expects bare.
            if onset[i, j] >= 0:
                shifted = np.isfinite(shift_bsi[i, j])
                explained = expected and day - onset_day[i, j] < OWN_HISTORY_DAYS and not shifted
                evidence = clear and not (fresh and explained)
                support = evidence and fresh
                if support and shifted:
                    support = shifted_still(
                        i, j, nd, bs, rd, ln, shift_n, prior_ndvi, shift_bsi, shift_red
                    )
                n_looks[i, j] += clear
                n_since[i, j] += evidence
                n_bare[i, j] += support
                # A field's candidate must be seen bare throughout (``span_days``): after
                # a look not bare, or a gap a crop could grow in, watching starts again
                # (until seen long enough).
                settled = last_day[i, j] - watched_day[i, j] >= ln.bare_prone_run_days
                gap = day - last_clear_day[i, j] > gap_max
                if clear and not settled and (gap or not fresh):
                    watched_day[i, j] = NOT_WATCHED
                if support and watched_day[i, j] == NOT_WATCHED:
                    watched_day[i, j] = day
                # Bare where the season's history says green, on looks with no look not
                # bare between them and no gap a crop could grow and be harvested in
                # (``CROP_CYCLE_DAYS``): the watch spans back to the first, through the
                # gaps (a pit bare through the growing season; a harvest moved off its
                # season is bare a few weeks).
                if clear and (not fresh or day - last_clear_day[i, j] >= CROP_CYCLE_DAYS):
                    unexpected_day[i, j] = NOT_WATCHED
                if support and has_hist and not expected:
                    unexpected_day[i, j] = min(unexpected_day[i, j], day)
                    watched_day[i, j] = min(watched_day[i, j], unexpected_day[i, j])
                if clear and fresh:
                    last[i, j] = t
                    last_day[i, j] = day
                # A first look that may have been cloud is confirmed by a look that is a
                # change too: weathered bare ground seen once through haze is as bare
                # after it as before.
                agrees = (
                    not doubtful_look[i, j]
                    or abrupt
                    or prior_ndvi[i, j] - nd >= ln.abrupt_ndvi_drop
                )
                if support and confirm[i, j] < 0 and agrees:
                    confirm[i, j] = t
                seen = n_since[i, j]
                if (seen >= 3 and n_bare[i, j] < ln.persistence_min * seen) or (
                    confirm[i, j] < 0 and n_looks[i, j] > UNCONFIRMED_LOOKS
                ):
                    onset[i, j] = confirm[i, j] = last[i, j] = -1
                    n_since[i, j] = n_bare[i, j] = 0
                    shift_bsi[i, j] = shift_red[i, j] = np.float32(np.nan)

            # A look under cloud changes no run and no kept look: what a candidate may
            # lose (above) and the new year's move of the season bins (below) are all
            # it does.
            if clear:
                # Runs of consecutive fresh-bare clear looks, and whether each began as a
                # change. A field's run seen again after a gap a crop could grow in is watched
                # from this look.
                regap = day - last_clear_day[i, j] > gap_max
                if fresh and run_start[i, j] >= 0 and run_prone[i, j] and regap:
                    run_start_day[i, j] = day
                new_run = fresh and run_start[i, j] < 0
                not_bare = clear and not fresh  # not bare: ends a run
                if not_bare:
                    if run_start[i, j] >= 0:
                        # A bare spell ended (its last look: the clear look before). A spell
                        # ending within ``spell_merge_days`` of the one before is that fallow
                        # spell seen through a look of weeds or sowing: it moves its end and is
                        # no second spell, so a field's other harvest, months off, is
                        # remembered.
                        if last_clear_day[i, j] - spell_end[0, i, j] > ln.spell_merge_days:
                            spell_end[1, i, j] = spell_end[0, i, j]
                        spell_end[0, i, j] = last_clear_day[i, j]
                    run_start[i, j] = -1
                    run_len[i, j] = 0
                    run_ok[i, j] = False
                elif new_run:
                    run_start[i, j] = t
                    run_len[i, j] = 1
                elif fresh:
                    run_len[i, j] += 1
                second = fresh and run_len[i, j] == 2
                if second and run_doubt[i, j]:
                    # A run whose first look may be cloud: its second look must be a change
                    # too, against the looks before the run's first.
                    n = max(recent_n[i, j], 1) - 1
                    second = n > 0 and abrupt_change(
                        nd,
                        bs,
                        rd,
                        median_of_looks(recent_ndvi, 1, n, i, j),
                        median_of_looks(recent_bsi, 1, n, i, j),
                        median_of_looks(recent_red, 1, n, i, j),
                        ln,
                    )
                if run_start[i, j] < 0:
                    run_second[i, j] = -1
                if second:
                    run_second[i, j] = t
                if new_run:
                    run_ok[i, j] = began
                    run_prior_ndvi[i, j] = look_prior
                    run_gap[i, j] = day - last_clear_day[i, j]
                    # A first look that may be cloud the mask missed: beside masked cloud, or
                    # flat in spectrum unless NDVI fell from green (``cloud_flat_green_fall``).
                    from_green = look_prior - nd >= ln.cloud_flat_green_fall
                    run_doubt[i, j] = near[i, j] or (bs < ln.cloud_flat_bsi_max and not from_green)
                    run_start_day[i, j] = day
                    canopy = True  # the last two looks full canopy (``prone_run``)
                    for slot in range(min(2, k)):
                        canopy = canopy and recent_ndvi[slot, i, j] >= ln.regional_canopy_ndvi_min
                    run_prone[i, j] = prone_run(
                        spell_end[0, i, j],
                        spell_end[1, i, j],
                        day,
                        nd > ln.fresh_ndvi_max and not has_hist,
                        held[i, j],
                        canopy and day - last_clear_day[i, j] <= CANOPY_GAP_DAYS,
                        ln,
                    )
                # A run that did not begin as a change (it went on from a harvest's bare
                # ground) on ground green within the year before it is one once it stays bare
                # into the season the ground is green in (``late_change_looks`` looks where
                # the history is not bare): a pit dug into a field just after a harvest.
                # (Weathered ground with sparse weeds, never green, flickers in and out of
                # bare.) It is prone, too.
                unexpected = fresh and has_hist and not expected
                if new_run:
                    run_unexpected[i, j] = unexpected
                else:
                    run_unexpected[i, j] += unexpected
                was_green = run_start_day[i, j] - green_day[i, j] <= YEAR_DAYS
                late = (
                    fresh
                    and not run_ok[i, j]
                    and was_green
                    and run_unexpected[i, j] >= ln.late_change_looks
                )
                if late:
                    run_ok[i, j] = run_prone[i, j] = True
                # Such a change may have been gradual; so may a slow one (``SLOW``, a
                # planting's end) on ground green within the year, as ``late`` tells.
                slow = flags[SLOW, i, j] and was_green
                run_late[i, j] = late or (slow if new_run else run_late[i, j])

                # A candidate starts when a run that began as a change is not expected in this
                # season; it is dated from the run's first look (a dig that began during
                # harvest is found once the season no longer explains the bare ground).
                if fresh and run_ok[i, j] and not expected and onset[i, j] < 0:
                    onset[i, j], confirm[i, j], last[i, j] = run_start[i, j], run_second[i, j], t
                    n_since[i, j] = n_bare[i, j] = n_looks[i, j] = run_len[i, j]
                    has_history[i, j], gap_days[i, j] = has_hist, run_gap[i, j]
                    doubtful_look[i, j], onset_day[i, j] = run_doubt[i, j], run_start_day[i, j]
                    prior_ndvi[i, j], prone[i, j] = run_prior_ndvi[i, j], run_prone[i, j]
                    late_[i, j], last_day[i, j] = run_late[i, j], day
                    watched_day[i, j] = run_start_day[i, j]
                    unexpected_day[i, j] = day if has_hist else NOT_WATCHED
                    shift_t[i, j] = -1
                    shift_bsi[i, j] = shift_red[i, j] = np.float32(np.nan)

                # A change from low cover or to rock where the season's history is that cover,
                # or on ground with no bare spell in memory (not prone), on its first look; and
                # ground whose colour shifted on ``SHIFT_LOOKS`` looks running (bare ground dug
                # again; rock or soil dug from under dormant cover). Both candidates keep the
                # colour before (``excavation_shift``).
                looks, began_expected = 0, new_run and run_ok[i, j] and expected
                if onset[i, j] < 0 and began_expected and not run_prone[i, j]:
                    looks = from_low_cover(
                        i, j, t, day, nd, bs, rd, ln, recent_n, recent_bsi, recent_red, shift_t,
                        shift_day, shift_n, shift_bsi, shift_red, prior_ndvi, run_prior_ndvi,
                        day - spell_end[0, i, j] > ln.bare_memory_days, flags[STOOD_OUT, i, j],
                    )  # fmt: skip
                if onset[i, j] < 0 and looks == 0 and watch_shift(
                    i, j, t, day, fresh, nd, bs, rd, ln, recent_n, recent_bare, recent_ndvi,
                    recent_bsi, recent_red, cur_clear, cur_bare, last_clear, last_bare,
                    older_clear, older_bare, shift_t, shift_day, shift_n, shift_bsi, shift_red,
                    prior_ndvi, run_prone[i, j], day - last_clear_day[i, j],
                ):  # fmt: skip
                    looks = SHIFT_LOOKS
                if shift_t[i, j] == t:  # a watch opened on this look: its candidate's gap
                    gap_days[i, j] = day - last_clear_day[i, j]
                if looks > 0:
                    one = looks == 1  # confirmed by the next look, as a run's candidate is
                    onset[i, j], last[i, j], confirm[i, j] = shift_t[i, j], t, -1 if one else t
                    n_since[i, j] = n_bare[i, j] = n_looks[i, j] = looks
                    has_history[i, j] = True
                    doubtful_look[i, j] = one and run_doubt[i, j]
                    onset_day[i, j], prone[i, j] = shift_day[i, j], False
                    # A shift on ground green within the year may be a planting's gradual end.
                    green = shift_day[i, j] - green_day[i, j] <= YEAR_DAYS
                    late_[i, j] = run_late[i, j] if one else green
                    last_day[i, j] = watched_day[i, j] = day
                    unexpected_day[i, j], shift_t[i, j] = NOT_WATCHED, -1

                # Remember this look: the recent looks (clear pixels only, the newest first)
                # and the season bins (the bin's first look of a year moves the years on).
                for slot in range(k - 1, 0, -1):
                    recent_ndvi[slot, i, j] = recent_ndvi[slot - 1, i, j]
                    recent_bsi[slot, i, j] = recent_bsi[slot - 1, i, j]
                    recent_red[slot, i, j] = recent_red[slot - 1, i, j]
                    recent_bare[slot, i, j] = recent_bare[slot - 1, i, j]
                recent_ndvi[0, i, j], recent_bsi[0, i, j], recent_red[0, i, j] = nd, bs, rd
                recent_bare[0, i, j] = fresh
                recent_n[i, j] = min(recent_n[i, j] + 1, k)
                last_clear_day[i, j] = day
                if nd >= ln.prior_ndvi_min:
                    green_day[i, j] = day
            b = b_now
            if new_year:
                older_clear[b, i, j] = min(
                    np.int32(older_clear[b, i, j]) + last_clear[b, i, j], 255
                )
                older_bare[b, i, j] = min(np.int32(older_bare[b, i, j]) + last_bare[b, i, j], 255)
                last_clear[b, i, j], last_bare[b, i, j] = cur_clear[b, i, j], cur_bare[b, i, j]
                cur_clear[b, i, j] = cur_bare[b, i, j] = 0
            cur_clear[b, i, j] = min(np.int32(cur_clear[b, i, j]) + clear, 255)
            cur_bare[b, i, j] = min(np.int32(cur_bare[b, i, j]) + (fresh or low), 255)


drop_stale_caches(judge_looks, advance)
