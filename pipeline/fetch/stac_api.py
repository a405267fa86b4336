"""A public STAC API (Earth Search's ``sentinel-2-l2a`` by default) through pystac-client.

The search covers the tiles' bounding box in the period, keeps scenes under the cloud
limit (the ``query`` extension) and follows the ``next`` links page by page. For each
tile and date, every band asset of the scenes touching the tile is opened remotely
and only the window covering the tile is read (``pipeline.fetch.cog``): the COG's
header and the internal tiles the window needs, as HTTP range requests through one
retrying session (``pipeline.fetch.http``). Windows of scenes of the same date are
mosaicked (first valid pixel wins). Assets keep their native resolution (10 m or 20 m); an asset in
another UTM zone than the archive is warped by nearest neighbour. ``scale`` and
``offset`` come from the source asset's ``raster:bands`` (Earth Search declares the
-0.1 offset of processing baseline 04.00 there); when absent, the offset follows
``s2:processing_baseline``.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import requests
import tifffile
from shapely.geometry import shape

from pipeline import schema
from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.fetch.archive import BAND_RESOLUTION, BandData
from pipeline.fetch.base import FetchedItem, FetchTask, TaskFailed, tasks_from_scenes
from pipeline.fetch.cog import UnsupportedCog, read_window
from pipeline.fetch.http import RemoteBlocks, Traffic, retrying_session
from pipeline.fetch.tiles import Tile, tiles_wgs84_bounds

log = logging.getLogger(__name__)


class StacApiProvider:
    """Search a STAC API and cut the tiles out of its remote COGs."""

    name = "stac_api"
    workers = 4
    """Tasks in flight at once (each reads its windows one asset after another)."""

    def __init__(self, cfg: RunConfig) -> None:
        api = cfg.provider.stac_api
        retry = cfg.provider.retry
        self.url = api.url.rstrip("/")
        self.collection = api.collection
        self.page_size = api.page_size
        self.max_cloud_cover = cfg.provider.max_cloud_cover
        self.timeout = retry.timeout_s
        self.session = retrying_session(attempts=retry.attempts, backoff_s=retry.backoff_s)
        self.traffic = Traffic()
        aliases = {k: v for k, v in cfg.provider.band_aliases.items()}
        self._keys = {
            band: [band, *(k for k, v in aliases.items() if v == band)] for band in BAND_RESOLUTION
        }
        self._items: dict[str, dict[str, Any]] = {}
        self._remote: dict[str, RemoteBlocks] = {}
        self._lock = threading.Lock()

    def endpoints(self) -> dict[str, str]:
        return {"url": self.url, "collection": self.collection}

    def plan(self, tiles: list[Tile], start: date, end: date) -> list[FetchTask]:
        from pystac_client import Client
        from pystac_client.exceptions import APIError
        from pystac_client.stac_api_io import StacApiIO
        from urllib3.util.retry import Retry

        retry = self.session.get_adapter(self.url).max_retries
        assert isinstance(retry, Retry)
        stac_io = StacApiIO(max_retries=retry, timeout=self.timeout)
        try:
            client = Client.open(self.url, stac_io=stac_io)
            search = client.search(
                collections=[self.collection],
                bbox=list(tiles_wgs84_bounds(tiles)),
                datetime=[
                    datetime.combine(start, time.min, tzinfo=UTC),
                    datetime.combine(end, time.max, tzinfo=UTC).replace(microsecond=0),
                ],
                query={"eo:cloud_cover": {"lt": self.max_cloud_cover}},
                limit=self.page_size,
            )
            items = [it.to_dict() for it in search.items()]
        except (APIError, requests.RequestException) as exc:
            raise TaskFailed(f"STAC search at {self.url} failed: {_one_line(exc)}") from None
        except ValueError as exc:  # not a STAC API at all
            raise InputError(
                f"not a STAC API ({_one_line(exc)})", file=self.url, field="provider.stac_api.url"
            ) from None
        log.info("STAC API: %d scenes under %g%% cloud", len(items), self.max_cloud_cover)
        scenes = []
        for it in items:
            self._items[it["id"]] = it
            when = datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00"))
            scenes.append(
                (
                    it["id"],
                    when if when.tzinfo else when.replace(tzinfo=UTC),
                    it["properties"].get("eo:cloud_cover"),
                    shape(it["geometry"]) if it.get("geometry") else None,
                )
            )
        return tasks_from_scenes(tiles, scenes)

    def _asset(self, item: dict[str, Any], band: str) -> tuple[str, float, float] | None:
        for key in self._keys[band]:
            asset = item["assets"].get(key)
            if asset is None:
                continue
            raster = (asset.get("raster:bands") or [{}])[0]
            baseline = str(item["properties"].get("s2:processing_baseline", "00.00"))
            default_offset = -0.1 if baseline >= "04.00" else 0.0
            scale = float(raster.get("scale", 0.0001))
            offset = float(raster.get("offset", default_offset))
            return asset["href"], scale, offset
        return None

    def fetch(self, task: FetchTask) -> FetchedItem | None:
        tile = task.tile
        bands: dict[str, BandData] = {}
        before = self.traffic.requests
        for band, res in BAND_RESOLUTION.items():
            rows, cols = tile.shape(float(res))
            mosaic = np.zeros((rows, cols), np.uint8 if band == schema.SCL else np.uint16)
            scale_offset: tuple[float, float] | None = None
            for source in task.sources:
                found = self._asset(self._items[source], band)
                if found is None:
                    continue
                href, scale, offset = found
                if scale_offset is not None and scale_offset != (scale, offset):
                    log.warning(
                        "tile %s %s: scenes of one date disagree on %s scale/offset; "
                        "keeping the first",
                        tile.tile_id,
                        task.acquired.date(),
                        band,
                    )
                    continue
                try:
                    data = self._read_window(href, tile, float(res))
                except (UnsupportedCog, requests.RequestException, tifffile.TiffFileError) as exc:
                    raise TaskFailed(f"{band} of {source}: {_one_line(exc)}") from None
                scale_offset = scale_offset or (scale, offset)
                fill = (mosaic == 0) & (data != 0)
                mosaic[fill] = data[fill]
            if scale_offset is not None:
                bands[band] = BandData(mosaic, float(res), *scale_offset)
        if not bands or not any(b.array.any() for b in bands.values()):
            return None
        return FetchedItem(
            bands=bands,
            properties={"minewatch:provider": "stac_api"},
            requests=self.traffic.requests - before,
        )

    def _read_window(self, href: str, tile: Tile, res: float) -> np.ndarray:
        with self._lock:  # keep recent files' blocks: tiles of one date share them
            remote = self._remote.get(href)
            if remote is None:
                remote = RemoteBlocks(
                    href, self.session, timeout=self.timeout, traffic=self.traffic
                )
                self._remote[href] = remote
                while len(self._remote) > 8 * len(BAND_RESOLUTION):
                    self._remote.pop(next(iter(self._remote)))
        return read_window(remote, bounds=tile.bounds, resolution=res, epsg=tile.epsg)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
