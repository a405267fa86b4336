"""Every asset file opened once by the inputs stage: its header and offset checks share it.

``imagery.check_assets`` opens each asset's header and ``offsets.check_offsets`` reads
a small window of red, NIR and SCL of the items whose reflectance offset could be
wrong. Opening a GeoTIFF costs more than reading such a window (a 400 px asset: about
2 ms to open, well under 1 ms to read 256 x 256 px), so ``check_items`` does both
checks of an item in one task over the files it opened once, and the two functions
then only sort the results. The tasks run on Dask's threads (GDAL releases the GIL
while it opens and decodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import dask
import rasterio

from pipeline.inputs import imagery, offsets
from pipeline.inputs.asset_cache import AssetChecks
from pipeline.scheduler import THREADS
from pipeline.sources.base import Scene
from pipeline.sources.reads import open_asset


class OpenFiles(AbstractContextManager):
    """Asset files opened on first use and kept open until the block ends."""

    def __init__(self) -> None:
        self._open: dict[str, rasterio.DatasetReader] = {}

    def get(self, href: str) -> rasterio.DatasetReader:
        """The open file at ``href`` (raises as ``rasterio.open`` does; a failure is not kept)."""
        src = self._open.get(href)
        if src is None:
            src = self._open[href] = open_asset(href)
        return src

    def __exit__(self, *exc: object) -> None:
        for src in self._open.values():
            src.close()
        self._open.clear()


def _check_item(
    scenes: Sequence[Scene], cache: AssetChecks | None, t: int, i: int, candidate: bool
) -> tuple[dict[tuple[str, str, str], Any], tuple[str, Any] | None]:
    """Header checks of the assets of scene ``t``'s item ``i`` and, for an offset
    candidate whose assets all opened, its offset verdict: ``(red href, verdict)``."""
    scene = scenes[t]
    item_id, refs = scene.item_ids[i], scene.assets[i]
    with OpenFiles() as files:
        found = {
            (item_id, band, ref.href): imagery.cached_probe(cache, item_id, band, ref.href, files)
            for band, ref in refs.items()
        }
        if not candidate or any(isinstance(r, str) for r in found.values()):
            return found, None
        return found, (refs["red"].href, offsets.judge_item(scene, i, cache, files))


def check_items(
    scenes: Sequence[Scene], *, cache: AssetChecks | None = None, judge_offsets: bool = True
) -> tuple[dict[tuple[str, str, str], Any], dict[str, Any]]:
    """Header checks of every asset and offset verdicts of the candidate items (none
    without ``judge_offsets``).

    Returns ``imagery.check_assets``' ``results`` and ``offsets.check_offsets``'
    ``verdicts``.
    """
    candidates = set(offsets.candidates(scenes)) if judge_offsets else set()
    # The scenes and the cache are bound, not arguments: Dask would walk the dataclasses.
    check = dask.delayed(partial(_check_item, scenes, cache), pure=False)
    tasks = [
        check(t, i, (t, i) in candidates)
        for t, scene in enumerate(scenes)
        for i in range(len(scene.item_ids))
    ]
    results: dict[tuple[str, str, str], Any] = {}
    verdicts: dict[str, Any] = {}
    for found, verdict in dask.compute(*tasks, scheduler=THREADS):
        results.update(found)
        if verdict is not None:
            verdicts[verdict[0]] = verdict[1]
    return results, verdicts
