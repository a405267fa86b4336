"""Hand-built look series for the excavation fold's tests: one timeline of 10-day looks
and the fold run over each pixel's series, as the fold tests share them."""

from __future__ import annotations

import numpy as np

from pipeline.config import DetectionConfig
from pipeline.excavation import (
    CHANGE_LAYERS,
    change_layers,
    fold_step,
    new_state,
    persistent_change,
)

L = {n: i for i, n in enumerate(CHANGE_LAYERS)}
START = np.datetime64("2021-03-01")
N = 120  # 10-day revisit: 2021-03-01 .. 2024-06-13
DAYS = START + np.arange(N) * 10
DOYS = (DAYS - DAYS.astype("datetime64[Y]")).astype(int)
YEARS = DAYS.astype("datetime64[Y]").astype(int) + 1970


def fold(
    series: list[np.ndarray], clear: np.ndarray | None = None, cfg: DetectionConfig | None = None
) -> np.ndarray:
    """Change layers (layer, pixel) after folding each pixel's (n, 3) series of (NDVI,
    BSI, red) looks on ``DAYS`` (n up to ``N``: the imagery may end early); ``clear``
    (n, pixels), all clear by default."""
    cfg = cfg or DetectionConfig()
    stack = np.stack(series, axis=1)  # (n, P, 3)
    shape = (1, stack.shape[1])
    clear = np.ones(stack.shape[:2], bool) if clear is None else clear
    state = new_state(shape, cfg.prior_observations)
    for t in range(stack.shape[0]):
        nd, bs, rd = (stack[t, :, i].reshape(shape).astype(np.float32) for i in range(3))
        day = int(DAYS[t].astype(np.int64))
        state = fold_step(state, t, day, clear[t].reshape(shape), nd, bs, rd, cfg)
    return change_layers(state)[:, 0, :]


def flagged(layers: np.ndarray) -> np.ndarray:
    """Per pixel, whether ``fold``'s layers make a flag (default config)."""
    return persistent_change(layers[:, np.newaxis, :], DetectionConfig())[0]
