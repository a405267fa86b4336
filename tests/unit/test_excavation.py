"""The per-pixel excavation fold on hand-built series with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import DetectionConfig
from pipeline.excavation import (
    CHANGE_LAYERS,
    change_layers,
    fold_step,
    new_state,
    persistent_change,
)
from pipeline.excavation_looks import median_of_looks
from pipeline.excavation_tiles import assemble_layers, detect_excavation_tasks
from tests.unit.fold_series import DAYS, L, N, fold

VEG = (0.75, -0.30, 0.04)  # ndvi, bsi, red of green vegetation
FRESH = (0.08, 0.18, 0.22)  # fresh bare rock/soil
DARK_BURN = (0.10, 0.06, 0.05)


def _series(kind: str) -> np.ndarray:
    """(N, 3) ndvi, bsi, red over time for one pixel kind."""
    doy = ((DAYS - DAYS.astype("datetime64[Y]")).astype(int)).astype(float)
    out = np.tile(np.array(VEG, float), (N, 1))
    if kind == "dig":
        out[60:] = FRESH
    elif kind == "harvest":  # bare 20 days after early June and after early October, every year
        bare = ((doy >= 155) & (doy < 175)) | ((doy >= 280) & (doy < 300))
        out[bare] = FRESH
    elif kind == "ploughed_dig":  # a dig into a freshly ploughed field: NDVI barely moves
        out[40:50] = (0.20, 0.21, 0.12)
        out[50:] = (0.09, 0.15, 0.17)
    elif kind == "burn":
        out[60:] = DARK_BURN
    elif kind == "pit":
        out[:] = FRESH
    elif kind == "cloud_spike":
        out[70] = FRESH  # one bright bare-looking look the mask missed
    elif kind == "leaf_off":  # forest NDVI swings 0.75 -> 0.3 in winter, stays dark
        ndvi = 0.525 + 0.225 * np.cos(2 * np.pi * (doy - 200) / 365)
        out[:, 0] = ndvi
        out[:, 1] = -0.3 + 0.25 * (0.75 - ndvi)
        out[:, 2] = 0.04 + 0.05 * (0.75 - ndvi)
    elif kind == "white_rock_in_grass":  # flat white rock dug out of thin grass: doubtful
        out[:] = (0.40, -0.05, 0.06)
        out[60:] = (0.08, 0.05, 0.30)
    elif kind == "dieback":  # greened restoration slowly dying back over a year
        decline = np.clip((np.arange(N) - 60) / 36, 0, 1)
        out[:, 0] = 0.7 - 0.55 * decline
        out[:, 1] = -0.25 + 0.3 * decline
        out[:, 2] = 0.05 + 0.06 * decline
    return out


def _fold(kinds: list[str], clear: np.ndarray | None = None, cfg: DetectionConfig | None = None):
    return fold([_series(k) for k in kinds], clear, cfg)


def test_fold__dig_found_at_first_clear_look_and_confirmed_by_the_next():
    layers = _fold(["dig"])
    assert layers[L["onset"], 0] == 60
    assert layers[L["confirm"], 0] == 61
    assert layers[L["last"], 0] == N - 1
    assert layers[L["n_bare"], 0] == N - 60


def test_fold__one_look_before_is_enough_with_prior_observations_1():
    # The fold keeps one look per pixel (the least the config allows): a dig is judged
    # against the look before it, and the harvest field is still told apart by season.
    # White rock out of thin grass is flat like haze: its second look is judged against
    # the looks before the first, which one kept look does not hold; the next agreeing
    # look confirms it instead.
    kinds = ["dig", "white_rock_in_grass", "harvest", "leaf_off"]
    layers = _fold(kinds, cfg=DetectionConfig(prior_observations=1))
    assert [int(v) for v in layers[L["onset"]]] == [60, 60, -1, -1]
    assert [int(v) for v in layers[L["confirm"]][:2]] == [61, 61]
    assert [int(v) for v in layers[L["doubtful_look"]][:2]] == [0, 1]
    assert (layers[L["n_bare"], :2] == N - 60).all()


def test_fold__dig_into_a_ploughed_field_is_dated_from_the_bare_run_it_continues():
    # Ploughed soil (NDVI 0.20, BSI 0.21) is bare soil on the soil line; the dig keeps
    # the field bare past the next growing season, so the run that began at ploughing
    # is the change.
    layers = _fold(["ploughed_dig"])
    assert layers[L["onset"], 0] == 40
    assert layers[L["confirm"], 0] == 41
    assert layers[L["n_bare"], 0] == N - 40


def test_fold__dig_under_cloud_is_found_at_the_next_clear_look():
    clear = np.ones((N, 1), bool)
    clear[60:63] = False
    layers = _fold(["dig"], clear=clear)
    assert layers[L["onset"], 0] == 63
    assert layers[L["confirm"], 0] == 64


@pytest.mark.parametrize("kind", ["burn", "pit", "cloud_spike", "leaf_off", "dieback"])
def test_fold__confounder_is_not_a_change(kind):
    layers = _fold([kind])
    assert layers[L["onset"], 0] == -1


def test_fold__harvest_with_seasonal_history_is_not_a_change():
    layers = _fold(["harvest"])
    # first-year harvests may start a candidate, but regrowth drops it and later years
    # are expected from the season's own history
    assert layers[L["onset"], 0] == -1


def test_fold__first_year_harvest_candidate_has_no_history():
    cfg = DetectionConfig()
    series = _series("harvest")
    state = new_state((1, 1), cfg.prior_observations)
    onsets = []
    for t in range(40):
        nd, bs, rd = (np.float32(series[t, i]).reshape(1, 1) for i in range(3))
        state = fold_step(
            state, t, int(DAYS[t].astype(np.int64)), np.ones((1, 1), bool), nd, bs, rd, cfg
        )
        onsets.append((int(state.onset[0, 0]), bool(state.has_history[0, 0])))
    started = [(t, o, h) for t, (o, h) in enumerate(onsets) if o >= 0]
    assert started, "a first-year harvest looks like a change and is reported"
    assert all(not h for _, _, h in started), "without history it is marked so"
    assert onsets[-1][0] == -1, "and dropped once the crop greens again"


def test_fold__dig_on_farmland_after_a_harvest_is_still_found():
    series = _series("harvest")
    series[75:] = FRESH  # 75 is in February: farmland should be winter wheat, not bare
    cfg = DetectionConfig()
    state = new_state((1, 1), cfg.prior_observations)
    for t in range(N):
        nd, bs, rd = (np.float32(series[t, i]).reshape(1, 1) for i in range(3))
        state = fold_step(
            state, t, int(DAYS[t].astype(np.int64)), np.ones((1, 1), bool), nd, bs, rd, cfg
        )
    assert state.onset[0, 0] == 75
    assert state.has_history[0, 0]


def test_detect_excavation_tasks__dask_tiles_match_numpy_fold():
    kinds = ["dig", "burn", "pit", "harvest", "dig", "cloud_spike", "leaf_off", "dig"]
    series = np.stack([_series(k) for k in kinds], axis=1)  # (N, 8, 3)
    cube = np.broadcast_to(
        series.transpose(2, 0, 1)[:, :, np.newaxis, :], (3, N, 2, len(kinds))
    ).astype(np.float32)
    ds = xr.Dataset(
        {name: (("time", "y", "x"), cube[i]) for i, name in enumerate(["ndvi", "bsi", "red"])},
        coords={"time": DAYS.astype("datetime64[ns]")},
    )
    ds["clear"] = xr.ones_like(ds["ndvi"], dtype=bool)
    ds = ds.chunk({"time": 1, "y": 1, "x": 3})
    tasks = detect_excavation_tasks(ds, DetectionConfig())
    import dask

    (results,) = dask.compute(tasks, scheduler="threads")
    layers = assemble_layers(results.items(), (ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]))
    assert layers.shape == (len(CHANGE_LAYERS), 2, len(kinds))
    expected = _fold(kinds)
    np.testing.assert_array_equal(layers[:, 0, :], expected)
    np.testing.assert_array_equal(layers[:, 1, :], expected)
    assert [int(v) for v in layers[L["onset"], 0]] == [60, -1, -1, -1, 60, -1, -1, 60]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["ties", "spread"]),
    st.integers(0, 1),
)
def test_median_of_looks__bit_for_bit_np_median_with_ties_and_even_counts(
    k, seed, values_kind, first
):
    # The fold's median of a pixel's ``n`` stored looks from slot ``first`` (the looks
    # before a run's first look are slots 1 on), against numpy's, to the bit.
    rng = np.random.default_rng(seed)
    shape = (k, 6, 11)
    if values_kind == "ties":  # a few distinct values: many equal looks
        values = (rng.integers(-4, 5, size=shape) / 4).astype(np.float32)
    else:
        values = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, size=shape)).astype(
            np.float32
        )
    n = rng.integers(0, max(k - first, 0) + 1, size=shape[1:]).astype(np.uint8)
    for r, c in np.ndindex(n.shape):
        values[first + n[r, c] :, r, c] = np.nan  # unfilled slots are NaN, as stored
        ours = np.float32(median_of_looks(values, first, n[r, c], r, c))  # a float32's value
        if n[r, c] == 0:
            assert np.isnan(ours)
        else:
            reference = np.median(values[first : first + n[r, c], r, c])
            assert ours.view(np.uint32) == reference.view(np.uint32)


def test_persistent_change__a_share_on_the_line_is_kept_from_the_float32_stack():
    # change_layers is float32 (every layer exact in it); 0.6 * 25 in float32 rounds
    # above 15, so the share must be taken in float64: 15 bare looks of 25 are 0.6.
    state = new_state((1, 2), 3)
    state.onset[:] = 0
    state.n_since[:] = 25
    state.n_bare[:] = [15, 14]
    layers = change_layers(state)
    assert layers.dtype == np.float32
    assert persistent_change(layers, DetectionConfig(persistence_min=0.6)).tolist() == [
        [True, False]
    ]
