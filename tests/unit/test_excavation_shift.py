"""The fold on bare ground dug again (a waste pile or an old pit floor whose colour
shifts), and the compiled kernels' cache kept in step with the helpers they take in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import DetectionConfig
from pipeline.excavation import look_lines
from pipeline.excavation_kernel import advance, judge_looks
from pipeline.excavation_looks import drop_stale_caches
from pipeline.excavation_shift import to_rock
from tests.unit.fold_series import DAYS, DOYS, YEARS, L, N, flagged, fold

# ndvi, bsi, red
WASTE = (0.057, 0.10, 0.25)  # a waste-rock pile on a closed site: bright, flat, bare all year
DUG = (0.087, 0.165, 0.17)  # soil dug out of it: darker, SWIR-heavier
HAZE = (0.04, 0.03, 0.30)  # thin haze the SCL missed over the pile: brighter, flatter
VEG = (0.75, -0.30, 0.04)
FIELD_SOIL = (0.19, 0.22, 0.13)  # a field ploughed after its harvest
DAMP_SOIL = (0.20, 0.30, 0.10)  # the same field's soil damp, harrowed: darker, SWIR-heavier
DIG = 70  # 2023-01-26


def _series(look: tuple[float, float, float]) -> np.ndarray:
    return np.tile(np.array(look), (N, 1))


def test_fold__waste_pile_dug_again_is_flagged_from_the_first_look_of_its_new_colour():
    dug = _series(WASTE)
    dug[DIG:] = DUG
    # Dug in the imagery's first months: no year of bare ground behind it yet.
    early = _series(WASTE)
    early[20:] = DUG
    layers = fold([dug, _series(WASTE), early])
    assert [int(v) for v in layers[L["onset"]]] == [DIG, -1, -1]
    assert int(layers[L["confirm"], 0]) == DIG + 2  # three looks running
    assert layers[L["prone"], 0] == 0 and layers[L["has_history"], 0] == 1
    assert abs(float(layers[L["prior_ndvi"], 0]) - WASTE[0]) < 1e-6
    assert list(flagged(layers)) == [True, False, False]
    # With prior_observations 1 the colour before is the one look before.
    assert int(fold([dug], cfg=DetectionConfig(prior_observations=1))[L["onset"], 0]) == DIG


def test_fold__waste_pile_under_haze_for_two_looks_or_damp_for_a_month_is_not_a_dig():
    hazy = _series(WASTE)
    hazy[DIG : DIG + 2] = HAZE  # two looks running, then the pile as it was
    damp = _series(WASTE)
    damp[DIG : DIG + 3] = DUG  # three looks of a new colour, then back for good
    layers = fold([hazy, damp])
    assert int(layers[L["onset"], 0]) == -1
    # Three looks make a candidate; looks back at the old colour do not support it.
    assert int(layers[L["onset"], 1]) == -1
    assert list(flagged(layers)) == [False, False]


def test_fold__field_soil_changing_colour_in_its_bare_spell_is_no_shift():
    # A field, green each summer, ploughed bare each autumn; in 2022 its soil darkens
    # for three looks mid-spell: ground green every year is no bare ground dug again.
    field = _series(VEG)
    autumn = (np.datetime64("2021-10-01") <= DAYS) & (np.datetime64("2021-12-01") > DAYS)
    for year in (2022, 2023):
        autumn |= (np.datetime64(f"{year}-10-01") <= DAYS) & (np.datetime64(f"{year}-12-01") > DAYS)
    field[autumn] = FIELD_SOIL
    spell = np.flatnonzero(autumn & (np.datetime64("2022-10-01") <= DAYS))[:6]
    field[spell[3:]] = DAMP_SOIL
    layers = fold([field])
    assert int(layers[L["onset"], 0]) == -1
    assert list(flagged(layers)) == [False]


DORMANT = (0.245, 0.155, 0.165)  # loess grass in winter: on a flat soil line, fresh bare
DORMANT_DRY = (0.235, 0.14, 0.168)  # the same just off it (BSI under soil_bsi_min)
FLAT = DetectionConfig(soil_bsi_slope=0.0)  # a soil line that takes the dormant grass
LIMESTONE = (0.028, 0.055, 0.31)  # white rock dug out of it: flat, bright
THIN_HAZE = (0.06, 0.045, 0.275)  # haze the SCL missed: brighter and flatter


def _grass() -> np.ndarray:
    """(N, 3): grass green from May to September, dormant on and off the soil line."""
    out = np.tile(np.array(DORMANT), (N, 1))
    out[1::2] = DORMANT_DRY
    out[(DOYS >= 130) & (DOYS < 270)] = (0.55, -0.05, 0.07)
    return out


def test_fold__rock_dug_into_dormant_grass_that_reads_bare_in_winter_is_flagged():
    # On a flat soil line the dormant grass is fresh bare: the season's history says
    # bare in winter, so the look is what the season expects and the ground was bare
    # before: no change for the fold's first test. Its colour is: white rock, where
    # grass or soil was.
    february = int(DAYS.searchsorted(np.datetime64("2024-02-01")))
    dug = _grass()
    dug[february:] = LIMESTONE
    hazy = _grass()
    hazy[february : february + 2] = THIN_HAZE  # two looks running, then grass again
    layers = fold([dug, hazy, _grass()], cfg=FLAT)
    assert [int(v) for v in layers[L["onset"]]] == [february, -1, -1]
    assert int(layers[L["confirm"], 0]) == february + 2
    assert list(flagged(layers)) == [True, False, False]
    # A restoration's thin crop on bright waste (BSI near 0, no soil), harvested in May
    # each year and bare for six weeks: its substrate is no rock dug out of soil.
    crop = np.tile(np.array((0.26, 0.03, 0.17)), (N, 1))
    crop[(DOYS >= 130) & (DOYS < 172)] = (0.06, 0.09, 0.22)
    assert list(flagged(fold([crop], cfg=FLAT))) == [False]
    assert list(flagged(fold([crop]))) == [False]
    # With the rule off (no shift is large enough), the dig is missed as before.
    off = DetectionConfig(bare_shift_bsi=2.0, soil_bsi_slope=0.0)
    assert int(fold([dug], cfg=off)[L["onset"], 0]) == -1


def test_fold__a_change_from_dormant_grass_the_season_calls_bare_is_the_grounds_own():
    # On the slanted soil line the dormant grass is low cover, not fresh bare: the
    # season's history (bare in winter, as the bins count low cover) would explain the
    # rock, but the ground before was that cover, so the change is the ground's own:
    # flagged from its first look, confirmed by the next, before the grass would green.
    february = int(DAYS.searchsorted(np.datetime64("2024-02-01")))
    dug, hazy, soil = _grass(), _grass(), _grass()
    dug[february:] = LIMESTONE
    hazy[february : february + 2] = THIN_HAZE
    soil[february:] = (0.19, 0.21, 0.21)  # red soil: NDVI -0.05, BSI +0.06, red +0.045
    layers = fold([dug, hazy, soil, _grass()])
    assert [int(v) for v in layers[L["onset"]]] == [february, -1, february, -1]
    assert [int(v) for v in layers[L["confirm"]]] == [february + 1, -1, february + 1, -1]
    assert list(flagged(layers)) == [True, False, True, False]
    # With the flat soil line the grass is fresh bare itself: the red soil, a change of
    # colour within bare ground and no rock, is missed.
    assert list(flagged(fold([soil], cfg=FLAT))) == [False]
    # A field ploughed from its stubble each winter, bright soil for a month, has bare
    # spells at this time of year: prone, its change is still the season's. Seen on its
    # third look ploughed, as the imagery ends, it is no flag; it is one with the
    # spells' season off (bare_prone_season_days 0).
    field = _grass()
    winter = (DOYS >= 15) & (DOYS < 45)
    field[winter] = (0.17, 0.24, 0.21)
    end = int(np.flatnonzero(winter & (YEARS == 2024))[2]) + 1
    assert list(flagged(fold([field[:end]]))) == [False]
    unheld = fold([field[:end]], cfg=DetectionConfig(bare_prone_season_days=0))
    assert (int(unheld[L["onset"], 0]), int(unheld[L["confirm"], 0])) == (end - 3, end - 2)
    assert list(flagged(unheld)) == [True]


def test_fold__rock_dug_into_grass_greener_than_its_winter_history_is_flagged():
    # The grass of past winters was low cover, which the season bins count as bare; this
    # winter it stayed a little greener (NDVI 0.32, over season_low_ndvi_max) until
    # limestone was dug into it in December. The history explains a change to the cover
    # it holds, and low cover is never rock: flagged from the first look of rock,
    # confirmed by the next, though the imagery ends in February, before the grass
    # would green and the season stop explaining bare ground. Haze over the same grass
    # is not flagged.
    december = int(DAYS.searchsorted(np.datetime64("2023-12-01")))
    end = int(DAYS.searchsorted(np.datetime64("2024-02-15")))
    greener = _grass()
    this_winter = (np.datetime64("2023-10-01") <= DAYS) & (np.arange(N) < december)
    greener[this_winter] = (0.32, 0.11, 0.15)
    dug, hazy = greener.copy(), greener.copy()
    dug[december:] = LIMESTONE
    hazy[december : december + 2] = THIN_HAZE
    layers = fold([dug[:end], hazy[:end], greener[:end]])
    assert [int(v) for v in layers[L["onset"]]] == [december, -1, -1]
    assert int(layers[L["confirm"], 0]) == december + 1
    assert list(flagged(layers)) == [True, False, False]


def test_fold__red_soil_dug_into_dormant_grass_seen_twice_as_the_imagery_ends_is_flagged():
    # Red soil dug in February into grass dormant in winter (low cover, NDVI 0.24, BSI
    # 0.14-0.155, red 0.165), seen on two looks before the imagery ends: NDVI -0.045,
    # BSI +0.06-0.075, red +0.03. No band passes its abrupt line and together they make
    # 1.3-1.5 of the 2.0 the combined line needs; but from low cover the look moved by the
    # full shift lines, SWIR-heavier and brighter, as no dormant cover does in a revisit.
    february = int(DAYS.searchsorted(np.datetime64("2024-02-01")))
    end = february + 2
    dug, hazy, damp, dry = _grass(), _grass(), _grass(), _grass()
    dug[february:] = (0.195, 0.215, 0.195)
    hazy[february:] = (0.17, 0.07, 0.22)  # haze the SCL missed: brighter, flatter
    damp[february:] = (0.235, 0.2, 0.15)  # damp: SWIR-heavier but darker
    # Drying grass: SWIR-heavier and brighter, by half the lines a look.
    dry[february - 2 : february] = (0.225, 0.175, 0.178)
    dry[february:] = (0.215, 0.2, 0.19)
    # The same change first seen after six looks under cloud (70 days) may have come slowly.
    clear = np.ones((end, 6), bool)
    clear[february - 6 : february, 5] = False
    series = [dug[:end], hazy[:end], damp[:end], dry[:end], _grass()[:end], dug[:end]]
    layers = fold(series, clear=clear)
    assert [int(v) for v in layers[L["onset"]]] == [february, -1, -1, -1, -1, -1]
    assert int(layers[L["confirm"], 0]) == february + 1
    assert list(flagged(layers)) == [True, False, False, False, False, False]
    # No band passed its own line: the change is marked as one that may have been
    # gradual, which on a site under restoration the die-back test weighs.
    assert int(layers[L["late"], 0]) == 1
    # With the shift lines off, the change is the season's, as before.
    off = DetectionConfig(bare_shift_bsi=2.0)
    assert int(fold([dug[:end]], cfg=off)[L["onset"], 0]) == -1


def test_fold__soil_dug_into_cover_never_green_is_flagged_but_not_as_a_planting_that_died():
    # The same red-soil dig into ground never green within the year before: sparse weeds
    # on weathered ground, low cover all year (NDVI 0.24) or up to 0.28 in summer, under
    # prior_ndvi_min (0.3). It is flagged as on the dormant grass; but a planting that
    # died back, or land green before (``late``), it cannot be.
    february = int(DAYS.searchsorted(np.datetime64("2024-02-01")))
    end = february + 2
    weeds = np.tile(np.array(DORMANT), (N, 1))
    weeds[1::2] = DORMANT_DRY
    sparse = weeds.copy()
    sparse[(DOYS >= 130) & (DOYS < 270)] = (0.28, 0.12, 0.12)
    series = [_grass(), weeds, sparse]
    for ground in series:
        ground[february:] = (0.195, 0.215, 0.195)
    series += [weeds.copy(), sparse.copy()]  # the same ground undug
    series[3][february:], series[4][february:] = DORMANT, DORMANT
    layers = fold([s[:end] for s in series])
    assert [int(v) for v in layers[L["onset"]]] == [february] * 3 + [-1, -1]
    assert [int(v) for v in layers[L["confirm"]]] == [february + 1] * 3 + [-1, -1]
    assert list(flagged(layers)) == [True, True, True, False, False]
    # Only the grass, green last summer, may have been a planting's gradual end.
    assert [int(v) for v in layers[L["late"]]] == [1, 0, 0, 0, 0]


def test_fold__loess_dug_into_dormant_grass_of_nearly_its_colour_is_flagged_on_its_third_look():
    # Loess dug in February into grass dormant in winter (low cover, not fresh bare):
    # NDVI -0.09, BSI +0.04, red +0.03 against the looks before. No band passes its
    # abrupt line, together they make 1.5 of the 2.0 the combined line needs, and BSI
    # moved less than the shift line: no test of one look sees it. Seen on three looks
    # and more, each moved so from the grass, it is flagged from its first look.
    february = int(DAYS.searchsorted(np.datetime64("2024-02-01")))
    end = february + 4
    loess = (0.15, 0.19, 0.195)
    dug = _grass()
    dug[february:] = loess
    weeds = np.tile(np.array(DORMANT), (N, 1))  # low cover all year, never green
    weeds[1::2] = DORMANT_DRY
    weeds[february:] = loess
    # Grass drying to the soil's colour over six looks: half the watch's line a look.
    drying = _grass()
    for n, look in enumerate(np.linspace((0.235, 0.16, 0.17), (0.17, 0.2, 0.2), 6)):
        drying[february + n - 2 :] = look
    # A dry spell of three looks, then the grass as before.
    spell = _grass()
    spell[february : february + 3] = loess
    # A field ploughed from its stubble to the same soil each winter for a month.
    field = _grass()
    winter = (DOYS >= 20) & (DOYS < 60)
    field[winter] = loess
    plough = int(np.flatnonzero(winter & (YEARS == 2024))[0])
    # A sparse planting browning off to its loess substrate over three looks.
    browning = np.tile(np.array((0.29, 0.1, 0.15)), (N, 1))
    browning[february - 2] = (0.25, 0.125, 0.16)
    browning[february - 1] = (0.23, 0.135, 0.165)
    browning[february:] = (0.15, 0.17, 0.18)
    # The dig first seen after 50 days without a clear look: the cover may have gone
    # its own way in between.
    clear = np.ones((end, 6), bool)
    clear[february - 5 : february, 5] = False
    series = [dug, weeds, drying, _grass(), browning, dug]
    layers = fold([s[:end] for s in series], clear=clear)
    assert [int(v) for v in layers[L["onset"]]] == [february, february, -1, -1, -1, -1]
    assert [int(v) for v in layers[L["confirm"]]] == [february + 2] * 2 + [-1] * 4
    assert list(flagged(layers)) == [True, True, False, False, False, False]
    # Only the grass, green last summer, may have been a planting's gradual end.
    assert [int(v) for v in layers[L["late"]]] == [1, 0, 0, 0, 0, 0]
    # Later looks keep the dig; the grass back on two looks drops the spell's candidate.
    layers = fold([dug[: february + 5], spell[: february + 5]])
    assert [int(v) for v in layers[L["onset"]]] == [february, -1]
    # Seen on two looks as the imagery ends, the dig is not flagged yet.
    assert list(flagged(fold([dug[: february + 2]]))) == [False]
    # The field is held by its bare spells at this time of year (``prone``); with the
    # spells' season off (bare_prone_season_days 0) its ploughing is taken for a dig.
    assert list(flagged(fold([field[: plough + 4]]))) == [False]
    unheld = fold([field[: plough + 4]], cfg=DetectionConfig(bare_prone_season_days=0))
    assert list(flagged(unheld)) == [True]


GREY_ROCK = (0.08, 0.12, 0.19)  # grey rock: NDVI -0.165, BSI -0.035, red +0.025 on the grass


def test_fold__grey_rock_dug_into_dormant_cover_is_flagged_on_its_third_look():
    # Grey rock dug in November into grass dormant since October (low cover, which the
    # season bins count as bare, so the season explains bare ground): NDVI falls 0.165,
    # red rises 0.025, and the rock is a little less SWIR-heavy than the loess under the
    # grass. No band passes its abrupt line, the three together make 1.2 of the 2.0
    # the combined line needs, and BSI moved against the shift line's direction: no test
    # of one look sees it. Rock on three looks running, each moved so from the cover, is
    # flagged from its first look.
    november = int(DAYS.searchsorted(np.datetime64("2023-11-01")))
    end = november + 5
    dug = _grass()
    dug[november:] = GREY_ROCK
    # Cover never green (a restoration's sparse weeds), dug after 100 days of cloud:
    # flagged too, with the gap kept (the die-back test and the confidence weigh it).
    weeds = np.tile(np.array(DORMANT), (N, 1))
    weeds[1::2] = DORMANT_DRY
    weeds[november:] = GREY_ROCK
    # Grass burnt in November: dark (red 0.06), no fresh bare ground.
    burnt = _grass()
    burnt[november:] = (0.08, 0.10, 0.06)
    # Grass browning to dead grass (NDVI 0.17), no rock: not moved far enough as soil.
    dead = _grass()
    dead[november:] = (0.17, 0.16, 0.175)
    # Grey rock for two looks (haze, a cloud's shadow edge), then the grass again.
    spell = _grass()
    spell[november : november + 2] = GREY_ROCK
    series = (dug, weeds, burnt, dead, spell)
    clear = np.ones((end, len(series)), bool)
    clear[november - 10 : november, 1] = False
    layers = fold([s[:end] for s in series], clear=clear)
    assert [int(v) for v in layers[L["onset"]]] == [november, november, -1, -1, -1]
    assert [int(v) for v in layers[L["confirm"]]] == [november + 2] * 2 + [-1] * 3
    assert list(flagged(layers)) == [True, True, False, False, False]
    assert [int(v) for v in layers[L["gap_days"]][:2]] == [10, 110]
    # Only the grass, green last summer, may have been a planting's gradual end.
    assert [int(v) for v in layers[L["late"]][:2]] == [1, 0]
    # Seen on two looks as the imagery ends, the dig is not flagged yet.
    assert list(flagged(fold([dug[: november + 2]]))) == [False]
    # Rock no more SWIR-heavy than the cover, and not flat: haze the SCL missed (bright
    # and flat) is no rock, nor is the loess under a sparse planting that died back.
    lines = look_lines(DetectionConfig())
    before = np.float32(DORMANT[1])
    looks = [GREY_ROCK, THIN_HAZE, (0.067, 0.04, 0.287), (0.115, 0.17, 0.184)]
    rock = [to_rock(np.float32(nd), np.float32(bs), before, lines) for nd, bs, _ in looks]
    assert rock == [True, False, False, False]
    # Ground whose weeds die back to rock each winter has bare spells at this time of
    # year (``prone``): not flagged.
    flicker = np.tile(np.array(DORMANT), (N, 1))
    flicker[(DOYS >= 305) | (DOYS < 60)] = GREY_ROCK
    assert list(flagged(fold([flicker[:end]]))) == [False]


def test_fold__soil_dug_into_grass_whose_bare_history_is_its_dormant_cover_is_flagged():
    # Grass still green into November (NDVI 0.37) each year, dormant from mid-November;
    # the season window around November 20 held that low cover in past years, which
    # the bins count as bare. Red soil dug on November 20: an abrupt change (BSI +0.13)
    # the history would explain as a harvest. But a harvest leaves a bare spell, and
    # this ground has none in memory: the bare history is its dormant cover, and the
    # change is the ground's own. Flagged from the first look, confirmed by the next.
    def grass() -> np.ndarray:
        out = np.tile(np.array(DORMANT_DRY), (N, 1))
        out[(DOYS >= 130) & (DOYS < 270)] = (0.55, -0.05, 0.07)
        out[(DOYS >= 270) & (DOYS < 325)] = (0.37, 0.09, 0.13)
        return out

    dig = int(DAYS.searchsorted(np.datetime64("2023-11-21")))
    end = dig + 4
    dug = grass()
    dug[dig:] = (0.19, 0.22, 0.18)
    # A field ploughed once after a June harvest, a year and a half before, its October
    # harvests left as stubble (low cover), ploughed this November: one bare spell in
    # memory, at another time of year (no field ``prone`` here), tells it from grass.
    field = grass()
    field[(YEARS == 2022) & (DOYS >= 160) & (DOYS < 180)] = (0.19, 0.22, 0.18)
    field[dig:] = (0.19, 0.22, 0.18)
    layers = fold([dug[:end], field[:end], grass()[:end]])
    assert [int(v) for v in layers[L["onset"]]] == [dig, -1, -1]
    assert [int(v) for v in layers[L["confirm"]]] == [dig + 1, -1, -1]
    assert list(flagged(layers)) == [True, False, False]
    # With a memory of a year the spell is forgotten, and the field taken for grass.
    short = fold([field[:end]], cfg=DetectionConfig(bare_memory_days=365))
    assert list(flagged(short)) == [True]


class _Cache:
    def __init__(self, folder) -> None:
        self.cache_path, self.flushed = str(folder), 0

    def flush(self) -> None:
        self.flushed += 1


class _Kernel:
    __module__, __name__ = "pipeline.fake_kernel", "advance"

    def __init__(self, folder) -> None:
        self._cache = _Cache(folder)


def test_kernel_cache__dropped_when_a_helper_module_it_takes_in_changes(tmp_path):
    # Numba keys a kernel's cache on its own file alone; the helpers are in others.
    kernel = _Kernel(tmp_path)
    stamp = tmp_path / "pipeline.fake_kernel.advance.helpers"
    drop_stale_caches(kernel)
    assert kernel._cache.flushed == 1
    digest = stamp.read_text()
    assert len(digest) == 64
    drop_stale_caches(kernel)  # helpers unchanged: the cache is kept
    assert kernel._cache.flushed == 1
    stamp.write_text("a helper as it was before")
    drop_stale_caches(kernel)
    assert (kernel._cache.flushed, stamp.read_text()) == (2, digest)
    # The fold's own kernels carry the stamp of the helpers they were compiled with.
    for real in (judge_looks, advance):
        folder = Path(real._cache.cache_path)
        assert (folder / f"{real.__module__}.{real.__name__}.helpers").read_text() == digest
