"""The fold on what grey-rock digs never showed: soils, first and last looks, fields."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import excavation
from pipeline.config import DetectionConfig
from pipeline.excavation import (
    change_layers,
    fold_step,
    look_lines,
    new_state,
    persistent_change,
)
from pipeline.excavation_looks import fresh_bare
from tests.unit.fold_series import DAYS, DOYS, YEARS, L, N, flagged, fold

# ndvi, bsi, red
VEG = (0.75, -0.30, 0.04)
RED_SOIL = (0.19, 0.24, 0.18)  # iron-rich red soil: NIR well above red, SWIR-heavy
LOESS = (0.15, 0.20, 0.20)  # yellow loess
FIELD_SOIL = (0.19, 0.22, 0.13)  # a ploughed field after harvest
SPARSE_GREEN = (0.20, 0.08, 0.12)  # weeds on weathered ground, a die-back's remnant
CLOUD_EDGE = (0.05, -0.10, 0.30)  # partial cloud the mask missed: bright and flat


def _forest() -> np.ndarray:
    """(N, 3): deciduous forest, NDVI 0.75 in summer to 0.3 leaf-off, never bare."""
    ndvi = 0.525 + 0.225 * np.cos(2 * np.pi * (DOYS - 200) / 365)
    return np.stack([ndvi, -0.3 + 0.25 * (0.75 - ndvi), 0.04 + 0.05 * (0.75 - ndvi)], axis=1)


def _field(harvest_doy: dict[int, int]) -> np.ndarray:
    """(N, 3): a crop, bare soil for 20 days from each year's harvest day of year."""
    out = np.tile(np.array(VEG), (N, 1))
    for year, doy in harvest_doy.items():
        out[(year == YEARS) & (doy <= DOYS) & (doy + 20 > DOYS)] = FIELD_SOIL
    return out


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@pytest.mark.parametrize(
    ("look", "fresh"),
    [(RED_SOIL, True), (LOESS, True), (FIELD_SOIL, True), (SPARSE_GREEN, False)],
)
def test_fresh_bare__soil_line_takes_red_soil_and_loess_not_sparse_green(look, fresh):
    nd, bs, rd = (np.array([[v]], np.float32) for v in look)
    assert bool(fresh_bare(nd, bs, rd, look_lines(DetectionConfig()))[0, 0]) is fresh


@pytest.mark.parametrize(
    ("look", "slanted", "flat"),
    [
        ((0.245, 0.155, 0.165), False, True),  # loess grass dormant in winter
        ((0.225, 0.165, 0.17), False, True),  # the same, drier
        ((0.225, 0.18, 0.17), True, True),  # soil at that NDVI: SWIR-heavier
        ((0.2, 0.152, 0.2), True, True),  # red soil at the knee: the flat line
    ],
)
def test_fresh_bare__soil_line_slants_above_the_soils_ndvi(look, slanted, flat):
    # BSI at least soil_bsi_min (0.15) plus soil_bsi_slope (1.0) per unit of NDVI over
    # soil_slant_ndvi (0.2): the line is 0.195 at NDVI 0.245 and 0.175 at 0.225.
    nd, bs, rd = (np.array([[v]], np.float32) for v in look)
    for cfg, fresh in ((DetectionConfig(), slanted), (DetectionConfig(soil_bsi_slope=0), flat)):
        assert bool(fresh_bare(nd, bs, rd, look_lines(cfg))[0, 0]) is fresh


def test_fold__red_soil_dig_in_october_and_loess_dig_in_early_summer_are_flagged():
    october = _first((YEARS == 2022) & (DOYS >= 274))
    june = _first((YEARS == 2023) & (DOYS >= 152))
    red = _forest()
    red[october:] = RED_SOIL
    loess = np.tile(np.array(VEG), (N, 1))
    loess[june:] = LOESS
    layers = fold([red, loess])
    assert [int(v) for v in layers[L["onset"]]] == [october, june]
    assert [int(v) for v in layers[L["confirm"]]] == [october + 1, june + 1]
    assert list(flagged(layers)) == [True, True]


def test_fold__dig_in_the_first_weeks_is_judged_against_its_one_look_before():
    dig = np.tile(np.array(VEG), (N, 1))
    dig[2:] = RED_SOIL
    clear = np.ones((N, 1), bool)
    clear[1] = False  # one clear look before the dig, no seasonal history at all
    layers = fold([dig], clear=clear)
    assert int(layers[L["onset"], 0]) == 2
    assert int(layers[L["confirm"], 0]) == 3
    assert layers[L["has_history"], 0] == 0
    assert flagged(layers)[0]


def test_fold__bare_ground_seen_first_through_a_cloud_edge_is_not_a_dig():
    pit = np.tile(np.array(LOESS), (N, 1))
    pit[0] = CLOUD_EDGE  # the only look "before" is partial cloud: not green ground
    layers = fold([pit])
    assert int(layers[L["onset"], 0]) == -1


THIN_HAZE = (0.06, 0.045, 0.275)  # thin haze the SCL missed: brighter and flatter


def test_fold__weathered_ground_seen_once_through_thin_haze_is_not_a_dig():
    # A closed site's weathered ground with sparse weeds (loess 8001 S11): on the soil
    # line, fresh bare on most looks and just short of it (BSI below soil_bsi_min) on the
    # others. In the imagery's first months one look is thin haze the SCL missed: red
    # rises, so it is an abrupt change, and the looks after it are as bare as the looks
    # before it were, which does not confirm a dig.
    weathered, short = (0.16, 0.17, 0.16), (0.14, 0.13, 0.17)
    ground = np.tile(np.array(weathered), (N, 1))
    ground[:12:2] = short  # the first months: bare on every other look
    ground[16::5] = short
    ground[11] = THIN_HAZE
    layers = fold([ground])
    assert int(layers[L["onset"], 0]) == -1
    assert not flagged(layers)[0]
    # A dig into dry grass first seen through the same haze is confirmed by the next look.
    dig = np.tile(np.array((0.35, -0.05, 0.08)), (N, 1))
    dig[11] = THIN_HAZE
    dig[12:] = LOESS
    layers = fold([dig])
    assert (int(layers[L["onset"], 0]), int(layers[L["confirm"], 0])) == (11, 12)
    assert layers[L["doubtful_look"], 0] == 1
    assert flagged(layers)[0]


def test_fold__cloud_the_scl_missed_over_a_dig_is_no_look():
    # A loess dig in June 2022; every third look after it is cloud or haze the SCL
    # called clear (bright and flat, or bluish: BSI below 0). Taken as looks, they would
    # end its bare runs and make it bare on two looks in three, below persistence_min.
    june = _first((YEARS == 2022) & (DOYS >= 152))
    pit = np.tile(np.array(VEG), (N, 1))
    pit[june:] = LOESS
    pit[june + 2 :: 3] = CLOUD_EDGE
    pit[june + 3 :: 9] = (0.02, -0.05, 0.42)  # thicker, on some of the others
    layers = fold([pit])
    assert int(layers[L["onset"], 0]) == june
    assert layers[L["n_since"], 0] == layers[L["n_bare"], 0] > 0
    assert flagged(layers)[0]
    # Dark flat ground (a burn scar, a wet shadow) is a look, and not bare.
    scar = pit.copy()
    scar[june + 2 :: 3] = (0.05, -0.10, 0.05)
    assert not flagged(fold([scar]))[0]


def test_fold__field_bare_again_after_a_long_cloudy_summer_is_watched_again_not_a_dig():
    # A double-cropped field, bare 20 days after the June and the autumn harvests (early
    # October, late November in 2023). In 2023 cloud hides it from the June harvest's
    # last bare look to the autumn one, but for one look of cloud the SCL missed. Seen
    # bare again in November, its bare run is watched again from there (a crop could
    # have grown unseen): not bare for five months into a season it never was bare in.
    field = _field({2021: 155, 2022: 155, 2023: 155})
    for year, doy in ((2021, 280), (2022, 280), (2023, 330)):
        field[(year == YEARS) & (doy <= DOYS) & (doy + 20 > DOYS)] = FIELD_SOIL
    clear = np.ones((N, 1), bool)
    june = _first((YEARS == 2023) & (DOYS >= 155))
    autumn = _first((YEARS == 2023) & (DOYS >= 330))
    clear[june + 1 : autumn, 0] = False
    field[june + 5] = CLOUD_EDGE
    clear[june + 5, 0] = True
    layers = fold([field[: autumn + 2]], clear=clear[: autumn + 2])
    assert not flagged(layers)[0]
    assert layers[L["span_days"], 0] == (DAYS[autumn + 1] - DAYS[autumn]).astype(int)


def test_fold__dig_into_a_field_bare_through_its_green_season_across_cloud_gaps_is_flagged():
    # A double-cropped field (harvests on days 145 and 330) is dug into its green crop in
    # mid-July 2023: a change on ground with a harvest spell ended within two months, so
    # held as a field's (``prone``). Clear looks on the dig's day and 10 days later, then
    # cloud for 50 days (a gap a crop could grow in), then two more: bare on every look,
    # in a season whose history is green. No crop grew and was harvested between them, so
    # the watch spans back to the dig's first look: 70 days, past bare_prone_run_days.
    field = _field({2021: 145, 2022: 145, 2023: 145})
    for year in (2021, 2022):
        field[(year == YEARS) & (DOYS >= 330) & (DOYS < 350)] = FIELD_SOIL
    dig = _first((YEARS == 2023) & (DOYS >= 200))
    field[dig:] = (0.09, 0.15, 0.21)  # soil and rock

    def clouded(field: np.ndarray, cloud: slice, end: int) -> np.ndarray:
        clear = np.ones((N, 1), bool)
        clear[cloud, 0] = False
        return fold([field[:end]], clear=clear[:end])

    layers = clouded(field, slice(dig + 2, dig + 6), dig + 8)
    assert int(layers[L["onset"], 0]) == dig
    assert layers[L["prone"], 0] == 1
    assert layers[L["span_days"], 0] == (DAYS[dig + 7] - DAYS[dig]).astype(int) == 70
    assert flagged(layers)[0]
    # The crop seen green in the gap: a field's bare ground again, its watch restarted.
    crop = field.copy()
    crop[dig + 3] = VEG
    layers = clouded(crop, slice(dig + 4, dig + 6), dig + 8)
    assert not flagged(layers)[0]
    # A gap of 90 days (CROP_CYCLE_DAYS) could hide a crop sown and harvested: bare on
    # both sides of it is two spells of a field's, whatever the season says.
    layers = clouded(field, slice(dig + 2, dig + 10), dig + 12)
    assert layers[L["span_days"], 0] == 10
    assert not flagged(layers)[0]


def test_fold__dig_one_or_two_looks_before_the_end_is_flagged_unconfirmed_or_confirmed():
    two, one = _forest(), _forest()
    two[N - 2 :] = RED_SOIL
    one[N - 1 :] = LOESS
    layers = fold([two, one])
    assert [int(v) for v in layers[L["onset"]]] == [N - 2, N - 1]
    assert [int(v) for v in layers[L["confirm"]]] == [N - 1, -1]
    assert list(flagged(layers)) == [True, True]


WHITE_LIMESTONE = (0.02, 0.046, 0.354)  # fresh limestone: bright and nearly flat


def test_fold__white_limestone_dug_from_woods_on_the_last_look_is_flagged_not_haze():
    # Limestone dug out of woods in late October, seen on one clear look before the
    # imagery ends (loess 8301 D13): flat like cloud (BSI below cloud_flat_bsi_max), but
    # NDVI fell 0.5 from the looks before, which no cloud that stays flat can do.
    end = _first((YEARS == 2023) & (DOYS >= 300)) + 1
    woods = _forest()[:end]
    woods[-1] = WHITE_LIMESTONE
    # The same look on weathered ground with sparse weeds (NDVI 0.20 before) may be haze.
    weathered = np.tile(np.array(SPARSE_GREEN), (end, 1))
    weathered[-1] = WHITE_LIMESTONE
    # Cloud thick enough to take the woods that far reads bluish: no look at all.
    clouded = _forest()[:end]
    clouded[-1] = (0.02, -0.06, 0.36)
    layers = fold([woods, weathered, clouded])
    assert [int(v) for v in layers[L["onset"]]] == [end - 1, end - 1, -1]
    assert [int(v) for v in layers[L["doubtful_look"]]] == [0, 1, 0]
    assert list(flagged(layers)) == [True, False, False]
    # With the rule off (a fall no NDVI can make) the dig waits for a second look.
    cfg = DetectionConfig(cloud_flat_green_fall=2.0)
    off = fold([woods], cfg=cfg)
    assert (int(off[L["onset"], 0]), int(off[L["doubtful_look"], 0])) == (end - 1, 1)
    assert not persistent_change(off[:, np.newaxis, :], cfg)[0, 0]


def test_fold__harvest_moved_by_a_month_at_the_end_of_the_imagery_is_not_flagged():
    # Harvest on day 155 for three YEARS, then on day 125 in the last year, where the
    # imagery ends two looks later: no seasonal history covers it, and a dig seen on
    # two looks would be flagged, but this ground was bare after last year's harvest.
    moved = _first((YEARS == 2024) & (DOYS >= 125))
    field = _field({2021: 155, 2022: 155, 2023: 155, 2024: 125})[: moved + 2]
    layers = fold([field])
    assert int(layers[L["onset"], 0]) == moved
    assert layers[L["prone"], 0] == 1
    assert layers[L["span_days"], 0] == 10
    assert not flagged(layers)[0]


def test_fold__autumn_fallow_seen_through_a_sowing_look_keeps_the_june_harvest_in_memory(
    monkeypatch,
):
    # Double-cropped: harvests on day 155 and day 280 every year. Last autumn's fallow
    # was seen through one look of sowing (day 300: a green flush) and bare again after
    # it: one fallow spell, not two, so the June harvest stays remembered. This year's
    # June harvest comes a month early, the imagery ending two looks later: a field, held.
    field = _field({y: 155 for y in (2021, 2022, 2023)})
    for year in (2021, 2022, 2023):
        field[(year == YEARS) & (DOYS >= 280) & (DOYS < 330)] = FIELD_SOIL
    field[(YEARS == 2023) & (DOYS >= 300) & (DOYS < 310)] = (0.35, -0.05, 0.08)
    early = _first((YEARS == 2024) & (DOYS >= 125))
    field[early:] = FIELD_SOIL
    layers = fold([field[: early + 2]])
    assert int(layers[L["onset"], 0]) == early
    assert layers[L["prone"], 0] == 1
    assert not flagged(layers)[0]
    # Taking the sowing look's two halves for two spells forgot June: a dig, flagged.
    monkeypatch.setattr(excavation, "SPELL_MERGE_DAYS", 0)
    assert flagged(fold([field[: early + 2]]))[0]


def test_fold__dig_into_a_field_at_harvest_is_flagged_once_it_stays_bare_past_the_season():
    field = _field({2021: 155, 2022: 155, 2023: 155})
    harvest = _first((YEARS == 2023) & (DOYS >= 155))
    field[harvest + 1 :] = LOESS  # dug the look after harvest; never cropped again
    layers = fold([field])
    assert int(layers[L["onset"], 0]) == harvest
    assert layers[L["prone"], 0] == 1
    assert layers[L["span_days"], 0] >= DetectionConfig().bare_prone_run_days
    assert flagged(layers)[0]


# A loess pit's edge pixel: its 10 m red and NIR see the loess, its 20 m SWIR cell half the
# green crop beside it, so BSI falls under the soil line's flat part (0.15).
LOESS_EDGE = (0.135, 0.12, 0.23)
RISE_OFF = DetectionConfig(soil_rise_ndvi=0.12)  # the flat line down to the rock line


@pytest.mark.parametrize(
    ("look", "risen", "unrisen"),
    [
        (LOESS_EDGE, True, False),
        ((0.15, 0.12, 0.21), True, False),  # the line is 0.1175 at NDVI 0.15
        ((0.15, 0.10, 0.21), False, False),  # sparse weeds on weathered ground
        ((0.13, 0.0, 0.25), False, False),  # haze over green: flat
        ((0.14, 0.14, 0.16), False, False),  # weathered ground, a fallow field: dull
        ((0.17, 0.14, 0.20), False, False),  # past soil_rise_ndvi: the flat line
        ((0.11, 0.03, 0.24), True, True),  # rock: any BSI from fresh_bsi_min
    ],
)
def test_fresh_bare__soil_line_rises_from_the_rock_line(look, risen, unrisen):
    # On bright looks (red at least 0.2), from BSI fresh_bsi_min (0.02) at fresh_ndvi_max
    # (0.12) to soil_bsi_min (0.15) at soil_rise_ndvi (0.16); soil_rise_ndvi at
    # fresh_ndvi_max is the flat line down to the rock line.
    nd, bs, rd = (np.array([[v]], np.float32) for v in look)
    assert bool(fresh_bare(nd, bs, rd, look_lines(DetectionConfig()))[0, 0]) is risen
    assert bool(fresh_bare(nd, bs, rd, look_lines(RISE_OFF))[0, 0]) is unrisen


def test_fold__loess_pit_edge_under_the_flat_soil_line_is_flagged_on_the_rising_line():
    # Loess dug into a field at its June harvest, never cropped again; at the pit's edge
    # every other look reads under the flat line (LOESS_EDGE), so on it alone its bare
    # runs break each time and the season's harvest explains each new one.
    loess = (0.14, 0.17, 0.23)
    field = _field({2021: 155, 2022: 155, 2023: 155})
    harvest = _first((YEARS == 2023) & (DOYS >= 155))
    field[harvest:] = loess
    field[harvest + 1 :: 2] = LOESS_EDGE
    layers = fold([field])
    assert int(layers[L["onset"], 0]) == harvest
    assert flagged(layers)[0]
    unrisen = fold([field], cfg=RISE_OFF)
    assert not persistent_change(unrisen[:, np.newaxis, :], RISE_OFF)[0, 0]


def test_fold__harvest_across_the_tile_on_the_last_look_is_held_a_lone_dig_is_not():
    # 40 x 40 px: green for two YEARS, no harvest ever seen (cloud hid them); on the
    # last look a whole plain of it turns to bare soil at once, or one 12-px dig does.
    # The crop ripens first, as crops do: NDVI 0.75 -> 0.6 -> 0.5 on the looks before.
    cfg = DetectionConfig()
    n, side = 70, 40
    ripening = {n - 3: (0.60, -0.15, 0.07), n - 2: (0.50, -0.05, 0.09)}

    def fold_tile(plain: np.ndarray, dug: np.ndarray, cfg: DetectionConfig = cfg) -> np.ndarray:
        state = new_state((side, side), cfg.prior_observations)
        clear = np.ones((side, side), bool)
        for t in range(n):
            look = np.tile(np.array(VEG, np.float32), (side, side, 1))
            look[plain] = ripening.get(t, FIELD_SOIL if t == n - 1 else VEG)
            look[dug] = FIELD_SOIL if t == n - 1 else VEG
            day = int(DAYS[t].astype(np.int64))
            state = fold_step(state, t, day, clear, look[..., 0], look[..., 1], look[..., 2], cfg)
        return persistent_change(change_layers(state), cfg)

    none = np.zeros((side, side), bool)
    plain = none.copy()
    plain[:, :20] = True  # 800 px, half the tile
    dig = none.copy()
    dig[10:13, 30:34] = True  # in the woods beside the plain
    assert not fold_tile(plain, none).any()
    assert fold_tile(none, dig).sum() == 12
    # Dug on the day the plain is harvested: woods, full canopy to the end, are no field.
    both = fold_tile(plain, dig)
    assert both.sum() == 12 and both[dig].all()
    # Dug at the plain's edge, the dig is part of the patch changing with it: the canopy
    # rule lets it go; without it (regional_canopy_ndvi_min 2) the harvest holds it.
    edge = none.copy()
    edge[10:13, 20:24] = True
    at_edge = fold_tile(plain, edge)
    assert at_edge.sum() == 12 and at_edge[edge].all()
    assert not fold_tile(plain, edge, DetectionConfig(regional_canopy_ndvi_min=2.0)).any()
    # A patch of its own on ground never bare is let go without it too.
    assert fold_tile(plain, dig, DetectionConfig(regional_canopy_ndvi_min=2.0)).sum() == 12


def test_fold__dig_into_grass_on_the_day_the_plain_is_harvested_is_flagged_the_fields_are_not():
    # 40 x 40 px of grass (NDVI 0.55) with a plain of fields, a crop below full canopy
    # (NDVI 0.6) for two YEARS with no ripening seen (cloud hid it). On the last look the
    # plain is harvested and a 12-px dig is made in the grass. ``ploughed``: the plain's
    # ground seen bare once before (two looks on day 150), a field's.
    cfg = DetectionConfig()
    n, side, grass, crop = 70, 40, (0.55, -0.05, 0.07), (0.60, -0.10, 0.06)

    def fold_tile(plain: np.ndarray, ploughed: np.ndarray, dug: np.ndarray) -> np.ndarray:
        state = new_state((side, side), cfg.prior_observations)
        clear = np.ones((side, side), bool)
        for t in range(n):
            look = np.tile(np.array(grass, np.float32), (side, side, 1))
            look[plain] = FIELD_SOIL if t == n - 1 else crop
            look[ploughed & plain] = FIELD_SOIL if t in (15, 16, n - 1) else crop
            look[dug] = FIELD_SOIL if t == n - 1 else grass
            day = int(DAYS[t].astype(np.int64))
            state = fold_step(state, t, day, clear, look[..., 0], look[..., 1], look[..., 2], cfg)
        return persistent_change(change_layers(state), cfg)

    none = np.zeros((side, side), bool)
    plain, dig = none.copy(), none.copy()
    plain[:, :20] = True  # 800 px, half the tile
    dig[10:13, 30:34] = True
    # Fields seen bare before: held; the dig, ground never bare and a patch of its own, not.
    kept = fold_tile(plain, plain, dig)
    assert kept.sum() == 12 and kept[dig].all()
    # A strip of the plain never seen bare (cloud hid it each time) is a quarter of the
    # patch beginning with it: held with the plain.
    strip = plain.copy()
    strip[:, 15:] = False
    kept = fold_tile(plain, strip, dig)
    assert kept.sum() == 12 and kept[dig].all()
    # The whole plain never seen bare: a patch as large as a change across the plain
    # (regional_change_min_pixels) is no dig.
    kept = fold_tile(plain, none, dig)
    assert kept.sum() == 12 and kept[dig].all()
    # Ground never bare in a patch of its own smaller than that is taken for a dig: 240 px
    # two columns of grass away from a plain of 600 px seen bare before.
    fields, lone = none.copy(), none.copy()
    fields[:, :15], lone[:, 17:23] = True, True
    kept = fold_tile(fields | lone, fields, dig)
    assert kept.sum() == 12 + 240 and kept[dig].all() and kept[lone].all()
    # One look kept before (prior_observations 1): no ripening can be seen, the rest holds.
    cfg = DetectionConfig(prior_observations=1)
    kept = fold_tile(plain, plain, dig)
    assert kept.sum() == 12 and kept[dig].all()


def test_fold__field_whose_summer_harvest_cloud_always_hid_is_held_when_it_comes_early():
    # Harvests in June (day 155) and October (day 280) every year; every June harvest
    # fell under cloud, so only the October spells were seen. In the last year the June
    # harvest comes early (day 140) and the imagery ends two looks later: the ground was
    # bare at one time of year in two different YEARS, so it is a field, held.
    field = np.tile(np.array(VEG), (N, 1))
    clear = np.ones((N, 1), bool)
    for year in (2021, 2022, 2023):
        june = (year == YEARS) & (DOYS >= 155) & (DOYS < 175)
        field[june], clear[june] = FIELD_SOIL, False
        field[(year == YEARS) & (DOYS >= 280) & (DOYS < 300)] = FIELD_SOIL
    early = _first((YEARS == 2024) & (DOYS >= 140))
    field[early:] = FIELD_SOIL
    layers = fold([field[: early + 2]], clear=clear[: early + 2])
    assert int(layers[L["onset"], 0]) == early
    assert int(layers[L["confirm"], 0]) == early + 1
    assert layers[L["prone"], 0] == 1
    assert not flagged(layers)[0]


def test_fold__dig_into_a_field_just_after_its_harvest_is_flagged_from_its_first_look():
    # The 2023 harvest (day 155) leaves two bare looks, one look of stubble follows, and
    # then the ground is dug: the looks before the dig are mostly bare, so its first look
    # is no change. It stays bare into the season the crop was green in: a late change,
    # held like a field's and dated from the dig's first look.
    field = _field({2021: 155, 2022: 155, 2023: 155})
    harvest = _first((YEARS == 2023) & (DOYS >= 155))
    field[harvest + 2] = SPARSE_GREEN
    field[harvest + 3 :] = LOESS
    layers = fold([field])
    assert int(layers[L["onset"], 0]) == harvest + 3
    assert int(layers[L["confirm"], 0]) == harvest + 4
    assert layers[L["prone"], 0] == 1 and layers[L["late"], 0] == 1
    assert flagged(layers)[0]
    # The same looks on weathered ground with sparse weeds, never green, dry at the same
    # times: not a late change (nothing grew there to lose).
    weeds = np.where((field == np.array(VEG)).all(axis=1)[:, None], SPARSE_GREEN, field)
    assert int(fold([weeds])[L["onset"], 0]) == -1


DRY_GRASS = (0.33, 0.12, 0.145)  # dry grass on red-soil hills: soil already shows through


def test_fold__red_soil_dug_from_under_dry_grass_moves_every_band_at_once():
    # Against dry grass the dig moves NDVI -0.14, BSI +0.12 and red +0.035, each short
    # of its own line (0.2, 0.15, 0.04) but all at once: three looks before the imagery
    # ends, too few for a late change. Two of the three moves alone (BSI unchanged), and
    # a season's browning to the same soil colour over eight looks and back, are no change.
    at = N - 3
    dug, two, browning = (np.tile(np.array(DRY_GRASS), (N, 1)) for _ in range(3))
    dug[at:] = RED_SOIL
    two[at:] = (RED_SOIL[0], DRY_GRASS[1], RED_SOIL[2])
    ramp = np.linspace(0.0, 1.0, 9)[1:, np.newaxis]
    down = np.array(DRY_GRASS) + ramp * (np.array(RED_SOIL) - np.array(DRY_GRASS))
    b = _first((YEARS == 2023) & (DOYS >= 200))
    browning[b : b + 8], browning[b + 8 : b + 11] = down, RED_SOIL
    browning[b + 11 : b + 19] = down[::-1]
    layers = fold([dug, two, browning])
    assert [int(v) for v in layers[L["onset"]]] == [at, -1, -1]
    assert int(layers[L["confirm"], 0]) == at + 1
    assert list(flagged(layers)) == [True, False, False]
