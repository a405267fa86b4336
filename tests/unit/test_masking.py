"""Cloud-edge masks worked out at SCL's own 20 m pixels equal the mask grown on the 10 m grid."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import MaskingConfig
from pipeline.masking import grow, scl_clear, scl_invalid_at
from pipeline.sources.base import TileRead, upsample


@st.composite
def tile_reads(draw: st.DrawFn) -> tuple[TileRead, MaskingConfig]:
    """A tile read with SCL at zoom k (offsets dr, dc), a halo, and grid edges in the halo."""
    k = draw(st.integers(1, 3))
    dr, dc = draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))
    b = draw(st.integers(0, 3))
    halo = draw(st.integers(b, b + 2))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    full = (h + 2 * halo, w + 2 * halo)
    native_shape = (-(-(full[0] + dr) // k), -(-(full[1] + dc) // k))
    seed = draw(st.integers(0, 2**31))
    scl = np.random.default_rng(seed).choice(
        [4, 5, 9, 3, 0], native_shape, p=[0.5, 0.3, 0.1, 0.05, 0.05]
    )
    # the grid ends somewhere in the halo (or beyond it): pixels past it are off the grid
    top, left = draw(st.integers(0, halo)), draw(st.integers(0, halo))
    bottom, right = draw(st.integers(0, halo)), draw(st.integers(0, halo))
    inside = None
    if top or left or bottom or right:
        rows = np.zeros(full[0], bool)
        rows[top : full[0] - bottom] = True
        cols = np.zeros(full[1], bool)
        cols[left : full[1] - right] = True
        inside = rows[:, None] & cols[None, :]
    read = TileRead(
        box=(0, 0, h, w),
        bands={},
        scl=scl.astype(np.uint8),
        halo=halo,
        inside=inside,
        scl_zoom=(k, dr, dc),
    )
    return read, MaskingConfig(invalid_scl=(0, 3, 9), buffer_pixels=b)


@settings(max_examples=300, deadline=None)
@given(case=tile_reads())
def test_scl_masks__coarse_work_equals_growing_on_the_grid(case):
    read, cfg = case
    h, w, halo = read.box[2], read.box[3], read.halo
    on_grid = upsample(read.scl, read.scl_zoom, (h + 2 * halo, w + 2 * halo))
    invalid = np.isin(on_grid, cfg.invalid_scl)
    if read.inside is not None:
        invalid &= read.inside
    want = ~grow(invalid, cfg.buffer_pixels)[halo : halo + h, halo : halo + w]
    np.testing.assert_array_equal(scl_clear(read, cfg), want)
    flat = np.random.default_rng(h * w).permutation(h * w)[: max(1, h * w // 2)]
    np.testing.assert_array_equal(scl_invalid_at(read, cfg, flat), ~want.reshape(-1)[flat])
