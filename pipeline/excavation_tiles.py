"""The excavation fold run tile by tile: a chain of one task per date for each tile.

``excavation`` says what one step of the fold does to a tile's per-pixel state; here
the steps are chained into lazy dask tasks over the cube's (1, tile, tile) blocks (the
same blocks the per-site statistics read, so each pixel is read once), states are
encoded for saving (``encode_state``) and a later run continues each tile from its
saved state (``fold_chains``, ``TileStart``). ``assemble_layers`` mosaics the tiles'
change layers.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import dask
import numpy as np
import pyarrow as pa
import xarray as xr
from dask.base import tokenize

from pipeline import schema
from pipeline.config import DetectionConfig
from pipeline.excavation import CHANGE_LAYERS, FoldState, change_layers, fold_step, new_state
from pipeline.scheduler import task_layer

# The cube's variables one fold step reads, in ``fold_step``'s order.
FOLD_BANDS = ("clear", "ndvi", "bsi", "red")
# Saved states' counts and flags: Zstandard (pyarrow's codec) at its fastest level.
_ZSTD = pa.Codec("zstd", compression_level=1)
_ZSTD_SUFFIX = ".zst"


def _start_tile(tile: tuple[int, int], shape: tuple[int, int], k: int) -> FoldState:
    # ``tile`` only makes each tile's first task distinct: states are advanced in place.
    return new_state(shape, k)


def _step_task(
    state: FoldState, t: int, day: int, cfg: DetectionConfig, *blocks: np.ndarray
) -> FoldState:
    # ``blocks``: the date's (1, h, w) blocks of ``FOLD_BANDS``. The state belongs to its
    # tile's chain alone, so it is advanced in place.
    clear, ndvi, bsi, red = (block[0] for block in blocks)
    return fold_step(state, t, day, clear, ndvi, bsi, red, cfg)


def detect_excavation_tasks(
    ds: xr.Dataset, cfg: DetectionConfig
) -> dict[tuple[int, int], dask.delayed]:
    """Lazy per-tile change layers: a chain of one task per date for each tile.

    ``ds`` holds ``clear``, ``ndvi``, ``bsi`` and ``red`` chunked (1, tile, tile); the
    blocks are the same tasks the per-site statistics read, so each pixel is read once.
    """
    blocks = {name: ds[name].data.to_delayed(optimize_graph=False) for name in FOLD_BANDS}
    days = ds[schema.TIME].values.astype("datetime64[D]").astype(np.int64)
    y_chunks, x_chunks = ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]
    out = {}
    for i, h in enumerate(y_chunks):
        for j, w in enumerate(x_chunks):
            state = dask.delayed(_start_tile, pure=True)((i, j), (h, w), cfg.prior_observations)
            for t, day in enumerate(days):
                state = dask.delayed(_step_task, pure=True)(
                    state, t, int(day), cfg, *(blocks[b][t, i, j] for b in FOLD_BANDS)
                )
            out[(i, j)] = dask.delayed(change_layers, pure=True)(state)
    return out


def encode_state(state: FoldState) -> bytes:
    """The state as ``.npz`` bytes; ``decode_state`` gives it back exactly.

    Counts and flags (most of the state: six (36, h, w) season-bin counts) are
    compressed with Zstandard at level 1, where they shrink about a hundredfold; float
    looks are stored as they are, since noisy floats barely compress. Every member is
    stored in the zip uncompressed, so checking a saved state (``StateStore.find_fold``)
    is a CRC pass, not a decompression. A 400 x 400 px state of 53 MB: 8.2 MB and
    0.42 s with the zip's deflate at level 1 before, 7.4 MB and 0.07 s now (its float
    looks are most of the bytes).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in fields(FoldState):
            value = np.asarray(getattr(state, f.name))
            member = io.BytesIO()
            np.lib.format.write_array(member, value, allow_pickle=False)
            name, data = f"{f.name}.npy", member.getbuffer()
            if value.dtype.kind in "biu":
                packed = _ZSTD.compress(data, asbytes=True)
                name, data = f"{name}{_ZSTD_SUFFIX}", len(data).to_bytes(8, "little") + packed
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, bytes(data))
    return buf.getvalue()


def decode_state(data: bytes) -> FoldState:
    """The state ``encode_state`` wrote (every array writable, as the fold needs).

    States written with the zip's own deflate (before Zstandard) read as well.
    """
    values = decode_fields(data)
    return FoldState(**{f.name: values[f.name] for f in fields(FoldState)})


def decode_fields(data: bytes, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (``FoldState`` fields; None: all) of a state ``encode_state``
    wrote, each writable. Only their members are read: the change layers need 13 of
    the 47 fields and none of the float looks that are most of the bytes (a city
    tile's 512 x 512 px state: 85-150 ms for all of it)."""
    wanted = None if names is None else set(names)
    values: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in zf.namelist():
            name = member.removesuffix(_ZSTD_SUFFIX).removesuffix(".npy")
            if wanted is not None and name not in wanted:
                continue
            raw = zf.read(member)
            if member.endswith(_ZSTD_SUFFIX):
                size = int.from_bytes(raw[:8], "little")
                raw = _ZSTD.decompress(raw[8:], decompressed_size=size, asbytes=True)
            value = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            values[name] = np.array(value) if not value.flags.writeable else value
    if wanted is not None and (missing := wanted - values.keys()):
        raise KeyError(f"fold state lacks {sorted(missing)}")
    return values


@dataclass(frozen=True)
class TileStart:
    """Where one tile's fold starts: after ``n_done`` dates, from a saved state."""

    n_done: int
    """Dates already folded into ``state`` (0: a new state)."""
    state: bytes | None = None
    """The encoded state after those dates; None when ``n_done`` is 0."""


def _resume_tile(tile: tuple[int, int], data: bytes) -> FoldState:
    # ``tile`` keeps each tile's chain distinct even when two saved states are equal.
    return decode_state(data)


def _folded(state: FoldState) -> None:
    return None


def _after_snapshot(state: FoldState, snapshot: bytes) -> FoldState:
    # Orders the next in-place step after the snapshot has been encoded.
    return state


def fold_chains(
    ds: xr.Dataset,
    cfg: DetectionConfig,
    starts: Mapping[tuple[int, int], TileStart],
    *,
    every: int,
) -> FoldChains:
    """Lazy encoded fold states per tile, continued from each tile's ``TileStart``, and
    which tasks end once each date is folded.

    Each tile's chain yields ``(n_done, encoded state)`` after every ``every``-th date
    of the catalog's date list (counted from its first date, so a resumed run saves at
    the same points as a fresh one) and after the last date. Date indices in the state
    (``onset``, ``confirm``, ``last``) are positions in ``ds``'s full date list, so a
    state saved after ``n`` dates continues exactly on any date list with the same
    first ``n`` dates. A tile whose start is already at the last date gets no tasks.
    """
    # The chains are one graph layer of plain tasks (``task_layer``).
    arrays = [ds[name].data for name in FOLD_BANDS]
    days = ds[schema.TIME].values.astype("datetime64[D]").astype(np.int64)
    n = len(days)
    y_chunks, x_chunks = ds["ndvi"].chunks[1], ds["ndvi"].chunks[2]
    # A saved state is megabytes: its digest stands for it (tokenize would print it whole).
    resumed = sorted(
        (tile, s.n_done, s.state and hashlib.blake2b(s.state, digest_size=16).hexdigest())
        for tile, s in starts.items()
    )
    token = tokenize(cfg, days, every, [a.name for a in arrays], resumed)
    start_, step_, snap_, after_, done_ = (
        f"fold-{kind}-{token}" for kind in ("start", "step", "snap", "after", "done")
    )
    layer: dict[Any, Any] = {}
    keys: dict[tuple[int, int], list[tuple[int, Any]]] = {}
    folded: dict[int, list[Any]] = {}
    for (i, j), start in starts.items():
        keys[(i, j)] = []
        if start.n_done >= n:
            continue
        state: Any = (start_, i, j)
        if start.state is None:
            shape = (y_chunks[i], x_chunks[j])
            layer[state] = (_start_tile, (i, j), shape, cfg.prior_observations)
        else:
            layer[state] = (_resume_tile, (i, j), start.state)
        for t in range(start.n_done, n):
            bands = [(a.name, t, i, j) for a in arrays]
            layer[(step_, i, j, t)] = (_step_task, state, t, int(days[t]), cfg, *bands)
            state = (step_, i, j, t)
            layer[(done_, i, j, t)] = (_folded, state)
            folded.setdefault(t, []).append((done_, i, j, t))
            if (t + 1) % every == 0 or t + 1 == n:
                layer[(snap_, i, j, t)] = (encode_state, state)
                keys[(i, j)].append((t + 1, (snap_, i, j, t)))
                layer[(after_, i, j, t)] = (_after_snapshot, state, (snap_, i, j, t))
                state = (after_, i, j, t)
    lazy = task_layer(f"fold-{token}", layer, arrays)
    snapshots = {tile: [(m, lazy(key)) for m, key in snaps] for tile, snaps in keys.items()}
    return FoldChains(snapshots, folded)


class FoldChains(NamedTuple):
    """``fold_chains``' result."""

    snapshots: dict[tuple[int, int], list[tuple[int, Any]]]
    """Per tile, ``(n_done, lazy encoded state)`` at each saving point."""
    folded: dict[int, list[Any]]
    """Per date index, the graph keys of tasks (one per tile folding it) that end, with
    None, once the tile's step of that date ran: a task taking them as arguments runs
    after the date is folded, and no state travels to it on a cluster."""


def assemble_layers(
    tiles: Iterable[tuple[tuple[int, int], np.ndarray]],
    chunks: tuple[Sequence[int], Sequence[int]],
) -> np.ndarray:
    """Mosaic per-tile change layers, ``((i, j), layers)`` pairs taken one at a time (a
    generator holds one tile's at once), into a float32 (layer, rows, cols) stack."""
    y_off = np.concatenate([[0], np.cumsum(chunks[0])])
    x_off = np.concatenate([[0], np.cumsum(chunks[1])])
    out = np.empty((len(CHANGE_LAYERS), int(y_off[-1]), int(x_off[-1])), np.float32)
    for (i, j), layers in tiles:
        out[:, y_off[i] : y_off[i + 1], x_off[j] : x_off[j + 1]] = layers
    return out
