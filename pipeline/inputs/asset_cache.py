"""What earlier runs learned of each asset file, kept in the workspace by path, size and mtime.

Checking an asset's header (``imagery.check_assets``) and its reflectance offset against
its pixels (``offsets.check_offsets``) costs a file open or three per asset: for a
catalog of a hundred dates that is seconds, every run. An archive's files do not change
once written, so a scheduled run, a rerun and an incremental run look each file up here
first (``OUT/.state/assets.json``) and check only the files that are new or whose size
or modification time changed. Only what passed is kept: an asset that failed is checked
again next time, as a transient fault may be gone.

The cache is read before the workspace is locked (reading changes nothing) and saved
once the run holds the lock.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.outputs import write_json

log = logging.getLogger(__name__)

ASSET_CACHE_FILE = "assets.json"
_VERSION = 1


def _stamp(href: str) -> list[int] | None:
    """(size, mtime in ns) of a local file; ``None`` for a URL or a missing file."""
    try:
        st = os.stat(href)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns]


class AssetChecks:
    """Results of asset checks by file, valid while the file keeps its size and mtime."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._changed = False
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("version") == _VERSION:
                    self._entries = dict(data.get("assets", {}))
            except (OSError, ValueError, AttributeError):
                log.info("asset cache %s unreadable; every asset is checked again", path)

    def get(self, href: str, kind: str) -> Any | None:
        """What ``kind`` of check found for ``href``, if the file is unchanged since."""
        entry = self._entries.get(href)
        if entry is None or kind not in entry:
            return None
        if entry.get("stamp") != _stamp(href) or entry["stamp"] is None:
            return None
        return entry[kind]

    def put(self, href: str, kind: str, value: Any) -> None:
        stamp = _stamp(href)
        if stamp is None:
            return
        entry = self._entries.get(href)
        if entry is None or entry.get("stamp") != stamp:
            entry = self._entries[href] = {"stamp": stamp}
        if entry.get(kind) != value:
            entry[kind] = value
            self._changed = True

    def save(self) -> None:
        """Write the cache (when anything was learned); the caller holds the workspace."""
        if self.path is None or not self._changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"version": _VERSION, "assets": self._entries})
        self._changed = False
