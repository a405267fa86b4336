"""What every provider offers the fetch loop: a plan of items and a way to fetch one.

A provider turns the tiles and the period into ``FetchTask``s (one per tile and
acquisition date) and fetches one task into arrays. A task that fails after the
retries raises ``TaskFailed``: the loop names it and goes on with the rest. A refused
credential raises ``InputError``: nothing else would succeed either.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np

from pipeline.errors import MineWatchError
from pipeline.fetch.archive import BandData
from pipeline.fetch.tiles import Tile


@dataclass(frozen=True)
class FetchTask:
    """One archive item to make: one tile on one acquisition date."""

    item_id: str
    tile: Tile
    acquired: datetime
    """Acquisition time (UTC) of the first scene of that date over the tile."""
    cloud_cover: float | None
    """Mean scene cloud cover (percent) of the scenes used."""
    sources: tuple[str, ...]
    """Provider ids of the scenes of that date that touch the tile."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific: e.g. the asset hrefs and scale/offset of the source scenes."""


@dataclass(frozen=True)
class FetchedItem:
    """The bands of one task, and the provider's own properties to keep on the item."""

    bands: Mapping[str, BandData]
    properties: Mapping[str, Any] = field(default_factory=dict)
    requests: int = 0


class TaskFailed(MineWatchError):
    """One task could not be fetched (after the retries); the others go on."""


class Provider(Protocol):
    name: str

    def plan(self, tiles: list[Tile], start: date, end: date) -> list[FetchTask]:
        """Find the acquisitions over ``tiles`` in the period: one task per tile and date."""
        ...

    def fetch(self, task: FetchTask) -> FetchedItem | None:
        """Fetch one task's bands; ``None`` when the tile has no valid pixel that date."""
        ...

    def endpoints(self) -> dict[str, str]:
        """The service URLs used, for the ledger (never credentials)."""
        ...


# The OAuth libraries log the token request body (with the client secret) and the
# token itself at DEBUG; they are held at INFO for the whole of a fetch (token refreshes
# happen in worker threads, so per-call toggling would race).
_NOISY_LOGGERS = ("requests_oauthlib", "oauthlib")


@contextmanager
def quiet_credential_logs() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() < logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def item_id(tile: Tile, acquired: datetime) -> str:
    return f"S2_{tile.tile_id}_{acquired:%Y%m%d}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def tasks_from_scenes(
    tiles: list[Tile],
    scenes: list[tuple[str, datetime, float | None, object | None]],
) -> list[FetchTask]:
    """One task per tile and date that has at least one scene touching the tile."""
    by_day: dict[date, list[tuple[str, datetime, float | None, object | None]]] = defaultdict(list)
    for scene in scenes:
        by_day[scene[1].date()].append(scene)
    tasks = []
    for tile in tiles:
        fp = tile.footprint_wgs84()
        for day in sorted(by_day):
            touching = [s for s in by_day[day] if s[3] is None or fp.intersects(s[3])]
            if not touching:
                continue
            covers = [float(s[2]) for s in touching if s[2] is not None]
            acquired = min(s[1] for s in touching)
            tasks.append(
                FetchTask(
                    item_id=item_id(tile, acquired),
                    tile=tile,
                    acquired=acquired,
                    cloud_cover=float(np.mean(covers)) if covers else None,
                    sources=tuple(sorted({s[0] for s in touching})),
                )
            )
    return sorted(tasks, key=lambda t: (t.acquired, t.tile.tile_id))
