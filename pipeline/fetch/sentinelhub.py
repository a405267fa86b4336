"""Sentinel Hub: the Catalog API finds acquisitions, the Process API cuts the tiles.

Credentials are OAuth client credentials, from ``SH_CLIENT_ID`` / ``SH_CLIENT_SECRET``
or the config. The Catalog search covers the tiles' bounding box in the period, keeps
scenes under the cloud limit, and pages through the results. Each tile and date is one
Process API request whose evalscript returns seven UINT16 bands: B02 B03 B04 B08 B11
B12 as DN (reflectance x 10000, *harmonized*, so the 2022 baseline offset is already
removed and every item has scale 0.0001 and offset 0) and SCL; pixels without data
are 0. The service upsamples B11, B12 and SCL to the 10 m request grid by nearest
neighbour; tiles are snapped to 20 m, so taking every second pixel gives back the
native 20 m pixels, which is how they are stored.

Retries are the ``sentinelhub`` package's own: HTTP 429 waits as long as the
service's ``Retry-After`` header says (Sentinel Hub gives it in milliseconds), up to
``retry.attempts`` tries; 5xx and dropped connections are retried ``retry.attempts``
times, waiting ``retry.backoff_s`` then three times longer each time.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, date, datetime, time

import numpy as np
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from shapely.geometry import shape

from pipeline import schema
from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.fetch.archive import BAND_RESOLUTION, BandData
from pipeline.fetch.base import FetchedItem, FetchTask, TaskFailed, redact, tasks_from_scenes
from pipeline.fetch.tiles import Tile, tiles_wgs84_bounds

log = logging.getLogger(__name__)

ENV_CLIENT_ID = "SH_CLIENT_ID"
ENV_CLIENT_SECRET = "SH_CLIENT_SECRET"

# Band order of the evalscript's output, by our asset names.
OUTPUT_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22", schema.SCL)

EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"], units: "DN"}],
    output: {bands: 7, sampleType: "UINT16"}
  };
}
function evaluatePixel(s) {
  if (s.dataMask == 0) { return [0, 0, 0, 0, 0, 0, 0]; }
  return [s.B02, s.B03, s.B04, s.B08, s.B11, s.B12, s.SCL];
}
"""


def _credentials(cfg: RunConfig) -> tuple[str, str]:
    sh = cfg.provider.sentinelhub
    client_id = os.environ.get(ENV_CLIENT_ID) or (
        sh.client_id.get_secret_value() if sh.client_id else ""
    )
    client_secret = os.environ.get(ENV_CLIENT_SECRET) or (
        sh.client_secret.get_secret_value() if sh.client_secret else ""
    )
    if not client_id or not client_secret:
        raise InputError(
            f"Sentinel Hub needs OAuth client credentials: set {ENV_CLIENT_ID} and "
            f"{ENV_CLIENT_SECRET} (or provider.sentinelhub.client_id / client_secret)",
            field="provider.sentinelhub.client_secret",
        )
    return client_id, client_secret


class SentinelHubProvider:
    """Catalog API search and Process API tiles through the ``sentinelhub`` package."""

    name = "sentinelhub"
    workers = 4
    """Process API requests in flight at once (the service rate-limits per account)."""

    def __init__(self, cfg: RunConfig) -> None:
        from sentinelhub import DataCollection, SHConfig

        sh = cfg.provider.sentinelhub
        retry = cfg.provider.retry
        self._client_id, self._client_secret = _credentials(cfg)
        self.max_cloud_cover = cfg.provider.max_cloud_cover
        self.page_size = sh.page_size
        self.base_url = sh.base_url.rstrip("/")
        self.token_url = sh.token_url
        # use_defaults: never read or write a sentinelhub config file in the home folder.
        self.config = SHConfig(
            use_defaults=True,
            sh_client_id=self._client_id,
            sh_client_secret=self._client_secret,
            sh_base_url=self.base_url,
            sh_token_url=self.token_url,
            max_download_attempts=retry.attempts,
            download_sleep_time=retry.backoff_s,
            download_timeout_seconds=retry.timeout_s,
            max_retries=retry.attempts,
        )
        # The packaged collection is bound to the public deployment; this one to ours.
        suffix = hashlib.sha256(self.base_url.encode()).hexdigest()[:10].upper()
        self.collection = DataCollection.SENTINEL2_L2A.define_from(
            f"MINEWATCH_S2L2A_{suffix}", service_url=self.base_url
        )
        self._session_checked = False

    def endpoints(self) -> dict[str, str]:
        return {"base_url": self.base_url, "token_url": self.token_url}

    def _secrets(self) -> tuple[str, str]:
        return (self._client_secret, self._client_id)

    def _check_session(self) -> None:
        """Get the OAuth token once, up front: a refused credential is one clear error."""
        if self._session_checked:
            return
        from oauthlib.oauth2 import OAuth2Error
        from sentinelhub import SentinelHubDownloadClient
        from sentinelhub.exceptions import DownloadFailedException

        try:
            SentinelHubDownloadClient(config=self.config).get_session()
        except OAuth2Error as exc:
            if exc.error == "insecure_transport":
                raise InputError(
                    "the token URL must use https (credentials are never sent in clear)",
                    field="provider.sentinelhub.token_url",
                ) from None
            raise InputError(
                f"Sentinel Hub refused the client credentials ({exc.error}) at {self.token_url}; "
                f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}",
                field="provider.sentinelhub.client_secret",
            ) from None
        except DownloadFailedException as exc:
            status = _status(exc)
            if status in (400, 401, 403):
                raise InputError(
                    f"Sentinel Hub refused the client credentials (HTTP {status}) at "
                    f"{self.token_url}; check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}",
                    field="provider.sentinelhub.client_secret",
                ) from None
            raise TaskFailed(
                f"cannot reach the Sentinel Hub token service at {self.token_url}: "
                + redact(_first_line(exc), self._secrets())
            ) from None
        self._session_checked = True

    def plan(self, tiles: list[Tile], start: date, end: date) -> list[FetchTask]:
        from sentinelhub import CRS as SHCRS
        from sentinelhub import BBox, SentinelHubCatalog
        from sentinelhub.exceptions import DownloadFailedException

        self._check_session()
        bbox = BBox(tiles_wgs84_bounds(tiles), crs=SHCRS.WGS84)
        catalog = SentinelHubCatalog(config=self.config)
        search = catalog.search(
            self.collection,
            bbox=bbox,
            time=(
                datetime.combine(start, time.min, tzinfo=UTC),
                datetime.combine(end, time.max, tzinfo=UTC).replace(microsecond=0),
            ),
            filter=f"eo:cloud_cover < {self.max_cloud_cover:g}",
            fields={
                "include": ["id", "geometry", "properties.datetime", "properties.eo:cloud_cover"],
                "exclude": [],
            },
            limit=self.page_size,
        )
        try:
            features = list(search)
        except DownloadFailedException as exc:
            self._raise_refused(exc)
            raise TaskFailed(
                "Sentinel Hub Catalog search failed: " + redact(_first_line(exc), self._secrets())
            ) from None
        log.info(
            "Sentinel Hub catalog: %d scenes under %g%% cloud", len(features), self.max_cloud_cover
        )
        return tasks_from_scenes(
            tiles,
            [
                (
                    f["id"],
                    _parse_time(f["properties"]["datetime"]),
                    f["properties"].get("eo:cloud_cover"),
                    shape(f["geometry"]) if f.get("geometry") else None,
                )
                for f in features
            ],
        )

    def _raise_refused(self, exc: Exception) -> None:
        status = _status(exc)
        if status in (401, 403):
            raise InputError(
                f"Sentinel Hub refused the request (HTTP {status}): the credentials are not "
                f"valid for this service; check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}",
                field="provider.sentinelhub.client_secret",
            ) from None

    def fetch(self, task: FetchTask) -> FetchedItem | None:
        from sentinelhub import CRS as SHCRS
        from sentinelhub import BBox, MimeType, SentinelHubRequest
        from sentinelhub.exceptions import DownloadFailedException

        tile = task.tile
        rows, cols = tile.shape(10.0)
        day = task.acquired.date()
        request = SentinelHubRequest(
            evalscript=EVALSCRIPT,
            input_data=[
                SentinelHubRequest.input_data(
                    data_collection=self.collection,
                    time_interval=(
                        datetime.combine(day, time.min, tzinfo=UTC),
                        datetime.combine(day, time.max, tzinfo=UTC).replace(microsecond=0),
                    ),
                    mosaicking_order="leastCC",
                    other_args={"processing": {"harmonizeValues": True}},
                )
            ],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=BBox(tile.bounds, crs=SHCRS(tile.epsg)),
            size=(cols, rows),
            config=self.config,
        )
        try:
            (response,) = request.get_data(decode_data=False, max_threads=1)
        except DownloadFailedException as exc:
            self._raise_refused(exc)
            raise TaskFailed(redact(_first_line(exc), self._secrets())) from None
        try:
            with MemoryFile(response.content) as mem, mem.open() as src:
                stack = src.read()
        except RasterioError as exc:
            raise TaskFailed(f"the Process API returned no readable TIFF ({exc})") from None
        if stack.shape != (len(OUTPUT_BANDS), rows, cols):
            raise TaskFailed(
                f"the Process API returned {stack.shape}, expected "
                f"{(len(OUTPUT_BANDS), rows, cols)}"
            )
        if not stack.any():
            return None
        bands = {}
        for k, band in enumerate(OUTPUT_BANDS):
            res = BAND_RESOLUTION[band]
            step = int(res // 10)
            arr = np.ascontiguousarray(stack[k, ::step, ::step])
            dtype = np.uint8 if band == schema.SCL else np.uint16
            bands[band] = BandData(arr.astype(dtype), float(res), scale=0.0001, offset=0.0)
        return FetchedItem(
            bands=bands,
            properties={
                "s2:harmonized": True,
                "minewatch:provider": "sentinelhub",
            },
            requests=1,
        )


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _status(exc: BaseException) -> int | None:
    inner = getattr(exc, "request_exception", None)
    response = getattr(inner, "response", None)
    return getattr(response, "status_code", None)


def _first_line(exc: BaseException) -> str:
    """The gist of a ``sentinelhub`` download error: status and server message, one line."""
    from sentinelhub.exceptions import OutOfRequestsException

    if isinstance(exc, OutOfRequestsException):
        return "HTTP 429 (rate limit) on every try"
    status = _status(exc)
    text = " ".join(str(exc).split())
    if status is not None:
        return f"HTTP {status}: {text}"
    return text
