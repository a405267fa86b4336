"""A fold continued from a saved state equals the fold run straight through."""

from __future__ import annotations

import subprocess
import sys

import dask
import numpy as np
import pytest
import xarray as xr

from pipeline.config import DetectionConfig
from pipeline.excavation import change_layers
from pipeline.excavation_tiles import (
    TileStart,
    assemble_layers,
    decode_state,
    detect_excavation_tasks,
    encode_state,
    fold_chains,
)

N = 70
DAYS = np.datetime64("2021-03-01") + np.arange(N) * 10


def _cube(seed: int = 3) -> xr.Dataset:
    """Vegetation with digs starting at random dates, random clouds; 2 x 2 tiles."""
    rng = np.random.default_rng(seed)
    shape = (N, 6, 8)
    ndvi = np.full(shape, 0.75, np.float32) + rng.normal(0, 0.03, shape).astype(np.float32)
    bsi = np.full(shape, -0.3, np.float32)
    red = np.full(shape, 0.04, np.float32)
    onset = rng.integers(10, N + 20, size=shape[1:])
    dug = np.arange(N)[:, None, None] >= onset
    ndvi[dug], bsi[dug], red[dug] = 0.08, 0.18, 0.22
    ds = xr.Dataset(
        {"ndvi": (("time", "y", "x"), ndvi), "bsi": (("time", "y", "x"), bsi)},
        coords={"time": DAYS.astype("datetime64[ns]")},
    )
    ds["red"] = (("time", "y", "x"), red)
    ds["clear"] = (("time", "y", "x"), rng.random(shape) > 0.3)
    return ds.chunk({"time": 1, "y": 3, "x": 4})


def _final_layers(snapshots: dict, ds: xr.Dataset) -> np.ndarray:
    tiles = {tile: change_layers(decode_state(snaps[-1][1])) for tile, snaps in snapshots.items()}
    return assemble_layers(tiles.items(), (ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]))


def test_encode_state__round_trip_is_exact():
    ds = _cube()
    tiles = {(0, 0): TileStart(0)}
    (snaps,) = dask.compute(
        fold_chains(ds, DetectionConfig(), tiles, every=N).snapshots, scheduler="sync"
    )
    data = snaps[(0, 0)][-1][1]
    assert encode_state(decode_state(data)) == data


@pytest.fixture(scope="module")
def straight() -> np.ndarray:
    ds = _cube()
    (tiles,) = dask.compute(detect_excavation_tasks(ds, DetectionConfig()), scheduler="threads")
    return assemble_layers(tiles.items(), (ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]))


@pytest.mark.parametrize("stop", [1, 16, 33])
def test_fold_chains__continued_from_a_saved_state_equals_straight_fold(stop, straight):
    ds, cfg = _cube(), DetectionConfig()

    # An earlier run over the first ``stop`` dates, then a later one over all of them.
    tiles = [(i, j) for i in range(2) for j in range(2)]
    fresh = dict.fromkeys(tiles, TileStart(0))
    (first,) = dask.compute(
        fold_chains(ds.isel(time=slice(0, stop)), cfg, fresh, every=16).snapshots,
        scheduler="threads",
    )
    assert all(snaps[-1][0] == stop for snaps in first.values())
    assert all([n for n, _ in snaps[:-1]] == list(range(16, stop, 16)) for snaps in first.values())
    starts = {tile: TileStart(stop, snaps[-1][1]) for tile, snaps in first.items()}
    (later,) = dask.compute(fold_chains(ds, cfg, starts, every=16).snapshots, scheduler="threads")

    np.testing.assert_array_equal(_final_layers(later, ds), straight)
    assert straight[0].max() >= 0  # some digs were found, so the comparison means something


def test_code_hash__a_named_module_hashes_its_file_without_importing_it():
    # The fold's key covers its compiled kernel's source, named so that building keys
    # (every run's inputs stage) does not load numba; the fold's first step does.
    script = """
import sys
from pipeline import excavation_tiles
from pipeline.state import code_hash
named = code_hash("pipeline.excavation_kernel", excavation_tiles)
print("numba" in sys.modules, "pipeline.excavation_kernel" in sys.modules)
from pipeline import excavation_kernel
print(named == code_hash(excavation_kernel, excavation_tiles), "numba" in sys.modules)
print(named != code_hash("pipeline.excavation_looks", excavation_tiles))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False", "True", "True", "True"]


def test_decode_fields__the_change_fields_alone_give_the_same_layers():
    from pipeline.excavation import CHANGE_FIELDS
    from pipeline.excavation_tiles import decode_fields

    ds = _cube()
    (snaps,) = dask.compute(
        fold_chains(ds, DetectionConfig(), {(0, 0): TileStart(0)}, every=N).snapshots,
        scheduler="sync",
    )
    data = snaps[(0, 0)][-1][1]
    part = decode_fields(data, CHANGE_FIELDS)
    assert sorted(part) == sorted(CHANGE_FIELDS)
    whole = change_layers(decode_state(data))
    np.testing.assert_array_equal(change_layers(part), whole)
    assert (whole[0] >= 0).any()  # some candidates, so the comparison means something
    with pytest.raises(KeyError, match="no_such_field"):
        decode_fields(data, ["onset", "no_such_field"])
