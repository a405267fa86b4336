"""Fetching imagery into the local archive: Sentinel Hub or a public STAC API.

``fetch_archive`` plans tiles over the sites (``archive.plan_tiles``), asks the provider
for the acquisitions in the period (one task per tile and date), skips the tasks the
archive already holds complete and valid, fetches the rest (a failed task is named,
recorded and the rest goes on) and writes the catalog last. Everything downstream
reads only that catalog (``pipeline.sources.local.read_catalog``).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.fetch.archive import LEDGER_FILE, Archive, ItemRecord
from pipeline.fetch.base import FetchTask, Provider, TaskFailed, quiet_credential_logs
from pipeline.fetch.tiles import Tile, plan_tiles
from pipeline.inputs.records import InputWarning

log = logging.getLogger(__name__)

PROVIDERS = ("sentinelhub", "stac_api")


@dataclass
class FetchResult:
    """What one fetch did."""

    archive: Path
    catalog: Path
    tiles: int
    fetched: list[str] = field(default_factory=list)
    """Item ids written by this fetch."""
    reused: list[str] = field(default_factory=list)
    """Items already complete and valid in the archive (not fetched again)."""
    empty: list[str] = field(default_factory=list)
    """Tile-dates with no valid pixel."""
    failed: dict[str, str] = field(default_factory=dict)
    """Item id -> why it failed (after the retries)."""
    seconds: float = 0.0


def make_provider(cfg: RunConfig) -> Provider:
    if cfg.provider.kind == "sentinelhub":
        from pipeline.fetch.sentinelhub import SentinelHubProvider

        return SentinelHubProvider(cfg)
    if cfg.provider.kind == "stac_api":
        from pipeline.fetch.stac_api import StacApiProvider

        return StacApiProvider(cfg)
    raise InputError(
        f"provider.kind is {cfg.provider.kind!r}; fetching needs one of {PROVIDERS}",
        field="provider.kind",
    )


def fetch_archive(cfg: RunConfig, *, workers: int | None = None) -> FetchResult:
    """Fetch what the archive lacks for ``cfg``'s sites (and AOI) and period.

    Needs ``provider.kind`` (``sentinelhub`` or ``stac_api``), ``provider.archive``,
    ``inputs.sites`` and both ends of ``period``. Raises ``InputError`` for missing or
    refused settings and credentials; a task that fails is recorded in the archive's
    ``fetch.json`` and listed in the result.
    """
    from pipeline.inputs import read_aoi, read_sites

    started = time.perf_counter()
    if not cfg.provider.archive:
        raise InputError("no archive folder given: pass --out or set provider.archive",
                         field="provider.archive")  # fmt: skip
    if not cfg.inputs.sites:
        raise InputError("no sites file given: pass --sites or set inputs.sites",
                         field="inputs.sites")  # fmt: skip
    start, end = cfg.period.start, cfg.period.end
    if start is None or end is None:
        raise InputError(
            "fetching needs a period: pass --start and --end or set period.start/period.end",
            field="period",
        )
    tiles = plan_tiles(
        read_sites(cfg.inputs.sites),
        buffer_m=cfg.provider.buffer_m,
        max_tile_px=_max_tile_px(cfg),
        aoi=read_aoi(cfg.aoi) if cfg.aoi else None,
    )
    with quiet_credential_logs():
        result = _fetch(cfg, tiles, start, end, workers)
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _fetch(
    cfg: RunConfig, tiles: list[Tile], start: date, end: date, workers: int | None
) -> FetchResult:
    provider = make_provider(cfg)
    log.info("fetch %s: %d tiles, %s to %s", provider.name, len(tiles), start, end)
    tasks = provider.plan(tiles, start, end)

    archive = Archive(Path(cfg.provider.archive))
    archive.open(_ledger_meta(cfg, provider, start, end, tiles))
    result = FetchResult(archive=archive.root, catalog=archive.root, tiles=len(tiles))
    todo: list[FetchTask] = []
    for task in tasks:
        if archive.is_complete(task.item_id):
            rec = archive.records[task.item_id]
            (result.empty if rec.status == "empty" else result.reused).append(task.item_id)
        else:
            todo.append(task)
    log.info(
        "fetch %s: %d items planned, %d already in the archive, %d to fetch",
        provider.name,
        len(tasks),
        len(result.reused) + len(result.empty),
        len(todo),
    )

    def run(task: FetchTask) -> None:
        _fetch_one(provider, archive, task, result)

    n_workers = workers or getattr(provider, "workers", 1)
    if n_workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(run, todo))
    else:
        for task in todo:
            run(task)

    result.catalog = archive.write_catalog(
        f"MineWatch archive of Sentinel-2 L2A tiles over the sites ({provider.name})"
    )
    if result.failed:
        log.warning(
            "fetch %s: %d of %d items failed; the catalog holds the rest, rerun to retry: %s",
            provider.name,
            len(result.failed),
            len(tasks),
            ", ".join(sorted(result.failed)),
        )
    return result


def _fetch_one(provider: Provider, archive: Archive, task: FetchTask, result: FetchResult) -> None:
    tile_date = f"tile {task.tile.tile_id} on {task.acquired:%Y-%m-%d}"

    def record_unstored(status: str, error: str | None = None) -> None:
        archive.record(
            ItemRecord(
                item_id=task.item_id,
                tile_id=task.tile.tile_id,
                datetime=task.acquired.isoformat(),
                status=status,
                sources=list(task.sources),
                error=error,
            )
        )

    try:
        fetched = provider.fetch(task)
    except TaskFailed as exc:
        log.warning("item %s (%s) failed: %s", task.item_id, tile_date, exc)
        record_unstored("failed", str(exc))
        result.failed[task.item_id] = str(exc)
        return
    if fetched is None:
        log.info("item %s (%s): no valid pixel, nothing stored", task.item_id, tile_date)
        record_unstored("empty")
        result.empty.append(task.item_id)
        return
    archive.write_item(
        item_id=task.item_id,
        tile=task.tile,
        acquired=task.acquired,
        bands=fetched.bands,
        cloud_cover=task.cloud_cover,
        properties=fetched.properties,
        sources=list(task.sources),
        requests=fetched.requests,
    )
    log.debug("item %s (%s) written", task.item_id, tile_date)
    result.fetched.append(task.item_id)


def _max_tile_px(cfg: RunConfig) -> int:
    if cfg.provider.kind == "sentinelhub":
        return cfg.provider.sentinelhub.max_tile_px
    return cfg.provider.stac_api.max_tile_px


def _ledger_meta(
    cfg: RunConfig, provider: Provider, start: date, end: date, tiles: list
) -> dict[str, object]:
    return {
        "provider": provider.name,
        "endpoints": provider.endpoints(),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "sites": cfg.inputs.sites,
        "aoi": cfg.aoi,
        "max_cloud_cover": cfg.provider.max_cloud_cover,
        "buffer_m": cfg.provider.buffer_m,
        "tiles": [{"tile_id": t.tile_id, "epsg": t.epsg, "bounds": list(t.bounds)} for t in tiles],
    }


def fetch_for_run(cfg: RunConfig) -> tuple[str, list[InputWarning]]:
    """The ``run`` stage for a provider: fetch what is missing; the archive's catalog.

    Failed items are left out and the run goes on with what the archive holds; each
    one is returned as a warning (for ``manifest.json``) naming the archive's ledger,
    the item, its tile and date, and why it failed. The next run fetches it again.
    """
    result = fetch_archive(cfg)
    return str(result.catalog), fetch_warnings(result)


def fetch_warnings(result: FetchResult) -> list[InputWarning]:
    """One warning per item that failed in this fetch, from the archive's ledger."""
    ledger = result.archive / LEDGER_FILE
    try:
        records = json.loads(ledger.read_text()).get("items", {})
    except (OSError, ValueError):
        records = {}
    out = []
    for item_id in sorted(result.failed):
        rec = records.get(item_id) or {}
        where = ""
        if rec.get("tile_id") and rec.get("datetime"):
            where = f" (tile {rec['tile_id']}, {str(rec['datetime'])[:10]})"
        out.append(
            InputWarning(
                str(ledger),
                f"item {item_id}",
                "status",
                f"fetch failed{where}: {result.failed[item_id]}; left out of the catalog, "
                "the next run fetches it again",
            )
        )
    return out
