"""Per-pixel layers of a finished run, read back from its saved excavation fold states.

A run keeps each tile's last fold state under ``.state/fold/{i}-{j}/`` (tiles of the
grid's ``chunk_size`` from its upper-left corner) so that a later run can continue
the fold. After the run they also say, per pixel, what the detector saw: the onset of
a change, the looks that support it, the NDVI before it, a run of fresh-bare looks
not yet confirmed. Area sampling (``sampling``) and learning from the ledger
(``recovery.ledger_training``) read them here; nothing writes them but the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pipeline.sources.base import GridSpec

log = logging.getLogger(__name__)

FOLD_FOLDER = Path(".state") / "fold"


def read_fold_layers(
    workspace: Path, grid: GridSpec, manifest: Mapping, names: Sequence[str]
) -> dict[str, np.ndarray] | None:
    """``names`` (``FoldState`` fields) mosaicked on ``grid``; None without saved states.

    Pixels of a tile whose state is missing or unreadable are NaN, with a warning.
    When a tile holds several states (a run killed before pruning), the one that
    reaches the latest date is read.
    """
    from pipeline.excavation_tiles import decode_fields

    folder = Path(workspace) / FOLD_FOLDER
    chunk = int((manifest.get("grid") or {}).get("chunk_size") or 0)
    if not folder.is_dir() or chunk <= 0:
        log.warning("workspace %s: no saved fold states", workspace)
        return None
    out = {name: np.full(grid.shape, np.nan) for name in names}
    for tile_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            i, j = (int(v) for v in tile_dir.name.split("-"))
            states = [
                decode_fields(p.read_bytes(), [*names, "bin_last_day"])
                for p in sorted(tile_dir.glob("*.npz"))
            ]
        except (ValueError, OSError, KeyError) as exc:
            log.warning("fold state %s unreadable (%s); its tile left out", tile_dir, exc)
            continue
        if not states:
            continue
        state = max(states, key=lambda st: int(np.max(st["bin_last_day"], initial=-1)))
        y0, x0 = i * chunk, j * chunk
        for name in names:
            layer = np.asarray(state[name], dtype=float)
            h = min(layer.shape[0], grid.shape[0] - y0)
            w = min(layer.shape[1], grid.shape[1] - x0)
            if h > 0 and w > 0:
                out[name][y0 : y0 + h, x0 : x0 + w] = layer[:h, :w]
    return out
