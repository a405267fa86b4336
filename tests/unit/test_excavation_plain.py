"""The fold's tests over a whole tile: a patch that moved against the land around it."""

from __future__ import annotations

import numpy as np

from pipeline.config import DetectionConfig
from pipeline.excavation import (
    change_layers,
    fold_step,
    look_lines,
    new_state,
    persistent_change,
)
from pipeline.excavation_looks import fresh_bare
from tests.unit.fold_series import DAYS, DOYS, YEARS, L

# ndvi, bsi, red
GREEN = (0.55, -0.05, 0.07)  # grass, May to September
DORMANT = (0.26, 0.13, 0.16)  # the same grass in winter: low cover, not fresh bare
LOESS = (0.14, 0.21, 0.175)  # loess dug from under it: fresh bare, of nearly its colour
DRIER = (0.20, 0.14, 0.17)  # the grass drier after a dry spell: still not fresh bare
SIDE = 20


def _grass(n: int) -> np.ndarray:
    """(n, 3): grass green from May to September, dormant the rest of the year."""
    out = np.tile(np.array(DORMANT), (n, 1))
    out[(DOYS[:n] >= 130) & (DOYS[:n] < 270)] = GREEN
    return out


def _fold_tile(
    looks: list[tuple[tuple[slice, slice], np.ndarray]],
    n: int,
    cfg: DetectionConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flags and change layers of a SIDE x SIDE tile of grass after ``n`` looks on
    ``DAYS``; ``looks`` gives other (n, 3) series to parts of it, in order. Each pixel reads a
    little noise of its own, as real pixels do."""
    cfg = cfg or DetectionConfig()
    grass = _grass(n)
    rng = np.random.default_rng(7)
    state = new_state((SIDE, SIDE), cfg.prior_observations)
    clear = np.ones((SIDE, SIDE), bool)
    for t in range(n):
        look = np.tile(grass[t].astype(np.float32), (SIDE, SIDE, 1))
        for part, series in looks:
            look[part] = series[t]
        look += rng.normal(0, 0.004, look.shape).astype(np.float32)
        day = int(DAYS[t].astype(np.int64))
        state = fold_step(state, t, day, clear, look[..., 0], look[..., 1], look[..., 2], cfg)
    layers = change_layers(state)
    return persistent_change(layers, cfg), layers


def test_fold__loess_dug_from_dormant_grass_stands_out_from_the_grass_around_it():
    # Grass dormant each winter (low cover: the season's history counts it bare), never
    # ploughed. On a January look a 4 x 4 patch of it reads loess: NDVI -0.12, BSI +0.08,
    # red +0.015, 1.2 of the 2.0 the combined line needs on one look, while the grass
    # around it reads as before. It is flagged from that look, unconfirmed on the last.
    dig_t = int(DAYS.searchsorted(np.datetime64("2024-01-06")))
    assert DOYS[dig_t] < 30
    patch = (slice(8, 12), slice(8, 12))
    dug = _grass(dig_t + 2)
    dug[dig_t:] = LOESS
    assert fresh_bare(*(np.float32(v) for v in LOESS), _lines())
    assert not fresh_bare(*(np.float32(v) for v in DORMANT), _lines())
    assert not fresh_bare(*(np.float32(v) for v in DRIER), _lines())

    for end, confirm in ((dig_t + 1, -1), (dig_t + 2, dig_t + 1)):
        flags, layers = _fold_tile([(patch, dug[:end])], end)
        assert flags[patch].all() and flags.sum() == 16
        assert (layers[L["onset"]][patch] == dig_t).all()
        assert (layers[L["confirm"]][patch] == confirm).all()

    # The same patch moved the same way while all the grass around it dried on that look
    # (NDVI -0.06, BSI +0.01): against the land around it, 0.7 of the line. Not flagged.
    dry_all = _grass(dig_t + 2)
    dry_all[dig_t:] = DRIER
    everywhere = (slice(None), slice(None))
    flags, _ = _fold_tile([(everywhere, dry_all), (patch, dug)], dig_t + 2)
    assert not flags.any()

    # A field in the grass, ploughed once after a June harvest a year and a half before:
    # a bare spell in memory, so its bare history is a field's, which explains it.
    field = dug.copy()
    field[(YEARS[: dig_t + 2] == 2022) & (DOYS[: dig_t + 2] >= 160) & (DOYS[: dig_t + 2] < 180)] = (
        LOESS
    )
    flags, _ = _fold_tile([(patch, field)], dig_t + 2)
    assert not flags.any()

    # Weathered bare ground just off the rock line (NDVI 0.14) whose patch dips onto it
    # (NDVI 0.118) on the look the land around greens after rain: beyond the land, 1.4
    # of the line; but the patch itself moved 0.3. Not flagged.
    weathered = np.tile(np.array((0.14, 0.119, 0.185)), (dig_t + 2, 1))
    greened, dipped = weathered.copy(), weathered.copy()
    greened[dig_t] = (0.18, 0.08, 0.16)
    dipped[dig_t:] = (0.118, 0.122, 0.193)
    assert fresh_bare(*(np.float32(v) for v in dipped[dig_t]), _lines())
    assert not fresh_bare(*(np.float32(v) for v in weathered[0]), _lines())
    flags, layers = _fold_tile([(everywhere, greened), (patch, dipped)], dig_t + 2)
    assert not flags.any()

    # With the test off, no line of one look catches the dig.
    off = DetectionConfig(stand_out_combined_min=4)
    flags, _ = _fold_tile([(patch, dug)], dig_t + 2, off)
    assert not flags.any()


def _lines():
    return look_lines(DetectionConfig())
