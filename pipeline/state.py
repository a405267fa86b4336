"""What a workspace keeps between runs: finished units of work, keyed by what made them.

``OUT/.state/`` holds

- ``fold/{i}-{j}/{prefix}.npz``: the excavation fold state of tile (i, j) after the
  first dates of the run's date list, ``prefix`` being a running hash over them;
- ``rows/{key}.parquet``: one date's per-site statistics (rows of ``timeseries.parquet``);
- ``run.json``: the run in progress (its id and fingerprint), removed when it ends.

A key hashes everything its unit depends on: the source of the modules that make it,
the config sections they read, the grid and tile, the bands the catalog carries,
and each date's STAC items and asset references (items are immutable in STAC; a
replaced scene needs a new item id). A unit is reused only where recomputing it
would give the same bytes; a changed threshold, site or scene gets new keys and is
computed again. Files are written to a temporary name and renamed, so a killed run
leaves whole units or none, and a rerun picks up from the last whole one.

Because a fold state is keyed by its date prefix, a later ``--end`` or a grown
catalog continues each tile from the state after the last date it has in common
with the earlier run; a catalog that gained an older scene shares no prefix and is
folded again from its first date.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from pipeline.outputs import write_atomic, write_json, write_parquet
from pipeline.sources.base import GridSpec, Scene

log = logging.getLogger(__name__)

STATE_DIR = ".state"
RUN_FILE = "run.json"


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, default=str).encode()
        h.update(data)
        h.update(b"\0")
    return h.hexdigest()[:32]


def fingerprint(*parts: Any) -> str:
    """A hash of ``parts`` (bytes as they are, anything else as JSON)."""
    return _digest(*parts)


def code_hash(*modules: ModuleType | str) -> str:
    """A hash of the modules' source files: state made by other code is not reused.

    A module may be named (``"pipeline.excavation_kernel"``): its file is found without
    importing it, so a key does not load what only the computation needs (numba).
    """
    files = (
        importlib.util.find_spec(m).origin if isinstance(m, str) else m.__file__ for m in modules
    )
    return _digest(*(Path(f or "").read_bytes() for f in files))


def scene_token(scene: Scene) -> list[Any]:
    """What identifies one acquisition's data: its date, items and asset references."""
    assets = [
        sorted((band, ref.href, ref.scale, ref.offset, ref.nodata) for band, ref in refs.items())
        for refs in scene.assets
    ]
    return [str(scene.date), list(scene.item_ids), assets]


def grid_token(grid: GridSpec, chunk_size: int, bands: Sequence[str]) -> list[Any]:
    """The analysis grid, its tiling and the bands the cube carries."""
    return [
        grid.crs.to_wkt(),
        list(grid.transform)[:6],
        list(grid.shape),
        chunk_size,
        sorted(bands),
    ]


def fold_prefixes(base: str, scenes: Sequence[Scene]) -> list[str]:
    """``[n - 1]`` is the key of a fold state after the first ``n`` scenes."""
    out, key = [], base
    for scene in scenes:
        key = _digest(key, scene_token(scene))
        out.append(key)
    return out


def row_keys(base: str, scenes: Sequence[Scene]) -> list[str]:
    """One key per scene for its per-site statistics."""
    return [_digest(base, scene_token(scene)) for scene in scenes]


def unit_base(code: str, *parts: Any) -> str:
    """The part of a key shared by every unit of one kind in this run."""
    return _digest(code, *parts)


@dataclass(frozen=True)
class FoldStart:
    """A tile's newest saved state whose dates are a prefix of this run's."""

    n_done: int
    path: Path | None


class StateStore:
    """Saved units under ``OUT/.state``."""

    def __init__(self, workspace: Path) -> None:
        self.root = workspace / STATE_DIR

    # Fold states ------------------------------------------------------------------

    def _tile_dir(self, tile: tuple[int, int]) -> Path:
        return self.root / "fold" / f"{tile[0]}-{tile[1]}"

    def fold_path(self, tile: tuple[int, int], prefix: str) -> Path:
        return self._tile_dir(tile) / f"{prefix}.npz"

    def find_fold(self, tile: tuple[int, int], prefixes: Sequence[str]) -> FoldStart:
        """The longest prefix of ``prefixes`` with a whole saved state for ``tile``."""
        folder = self._tile_dir(tile)
        saved = {p.stem for p in folder.glob("*.npz")} if folder.is_dir() else set()
        for n in range(len(prefixes), 0, -1):
            if prefixes[n - 1] in saved:
                path = self.fold_path(tile, prefixes[n - 1])
                if _whole_zip(path):
                    return FoldStart(n, path)
                log.warning("tile %s: saved state %s is damaged; ignored", tile, path.name)
        return FoldStart(0, None)

    def save_fold(self, tile: tuple[int, int], prefix: str, data: bytes) -> Path:
        path = self.fold_path(tile, prefix)
        write_atomic(path, lambda tmp: tmp.write_bytes(data))
        return path

    # Per-date statistics -------------------------------------------------------------

    def rows_path(self, key: str) -> Path:
        return self.root / "rows" / f"{key}.parquet"

    def read_rows(self, key: str) -> pd.DataFrame | None:
        path = self.rows_path(key)
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            log.warning("saved statistics %s unreadable (%s); computed again", path.name, exc)
            return None

    def save_rows(self, key: str, frame: pd.DataFrame) -> Path:
        path = self.rows_path(key)
        write_parquet(path, frame)
        return path

    # Housekeeping --------------------------------------------------------------------

    def prune(self, keep: Iterable[Path]) -> int:
        """Delete saved units other than ``keep`` and any temporary leftover; count them."""
        wanted = {Path(p).resolve() for p in keep}
        removed = 0
        for pattern in ("fold/*/*", "rows/*"):
            for path in self.root.glob(pattern):
                if path.resolve() not in wanted:
                    path.unlink(missing_ok=True)
                    removed += 1
        # A killed run's half-written temporary files, here and beside the outputs.
        for path in [*self.root.glob("**/.*.tmp"), *self.root.parent.glob(".*.tmp")]:
            path.unlink(missing_ok=True)
            removed += 1
        for folder in self.root.glob("fold/*"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return removed

    def begin_run(self, fingerprint: str) -> tuple[str, bool]:
        """The run id: the interrupted run's when it computed the same thing, else a new one.

        Returns ``(run_id, resumed)``.
        """
        path = self.root / RUN_FILE
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("fingerprint") == fingerprint and previous.get("run_id"):
            return str(previous["run_id"]), True
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        write_json(
            path,
            {
                "run_id": run_id,
                "fingerprint": fingerprint,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "pid": os.getpid(),
            },
        )
        return run_id, False

    def end_run(self) -> None:
        (self.root / RUN_FILE).unlink(missing_ok=True)


def _whole_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
            return zf.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False
