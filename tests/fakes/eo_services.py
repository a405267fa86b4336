"""A local HTTP server that speaks the endpoints MineWatch fetches imagery from.

It serves a generated scenario (``pipeline.scenes.generate_scenario``) as:

- Sentinel Hub: ``POST /oauth/token`` (client credentials), ``POST
  /api/v1/catalog/1.0.0/search`` (Catalog API, paged with ``context.next``) and
  ``POST /api/v1/process`` (a multi-band GeoTIFF cut from the scenario's COGs,
  harmonized like the service's ``harmonizeValues``: the 2022 baseline offset removed);
- a STAC API under ``/stac`` (landing page, conformance, ``POST /search`` paged with
  ``next`` links carrying a body), whose items point at
- the scenario's COGs under ``/cogs/...``, served with HTTP range requests.

Faults are injected with ``Fault`` rules (status, how many times, headers), a stall
(the n-th Process request hangs until released) and every request is recorded.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds
from shapely.geometry import box, shape

from pipeline.scenes import BASELINE_04, ScenarioPaths

SH_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22", "scl")
STAC_CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    at: float
    body: bytes
    headers: dict[str, str]
    sent_bytes: int = 0


@dataclass
class Fault:
    """Answer ``status`` to requests that ``match``, ``times`` times (None: always)."""

    match: Callable[[str, str, dict[str, Any] | None], bool]
    status: int
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0


def _jwt(payload: dict[str, Any]) -> str:
    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none'})}.{enc(payload)}.sig"


class FakeEOServices:
    """The server; use as a context manager. ``url`` is its base URL."""

    def __init__(self, scenario: ScenarioPaths, *, client_id: str, client_secret: str) -> None:
        self.scenario = scenario
        self.client_id = client_id
        self.client_secret = client_secret
        self.token = _jwt({"azp": client_id, "exp": int(time.time()) + 3600})
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.stall_process_after: int | None = None
        self.process_arrivals = 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._items = self._load_items()
        handler = type("Handler", (_Handler,), {"services": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeEOServices:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- scenario ---------------------------------------------------------------------
    def _load_items(self) -> list[dict[str, Any]]:
        catalog = json.loads(self.scenario.catalog.read_text())
        items = []
        for link in catalog["links"]:
            if link["rel"] != "item":
                continue
            path = (self.scenario.catalog.parent / link["href"]).resolve()
            item = json.loads(path.read_text())
            item["_dir"] = path.parent
            items.append(item)
        return sorted(items, key=lambda it: it["properties"]["datetime"])

    def count(self, path_prefix: str, method: str | None = None) -> int:
        return sum(
            1
            for s in self.seen
            if s.path.startswith(path_prefix) and (method is None or s.method == method)
        )

    def _filter_items(
        self, bbox: list[float] | None, interval: str | None, max_cloud: float | None
    ) -> list[dict[str, Any]]:
        out = []
        start = end = None
        if interval:
            a, b = interval.split("/")
            start = (
                datetime.fromisoformat(a.replace("Z", "+00:00")) if a not in ("", "..") else None
            )
            end = datetime.fromisoformat(b.replace("Z", "+00:00")) if b not in ("", "..") else None
        for item in self._items:
            when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
            if (start and when < start) or (end and when > end):
                continue
            if bbox and not shape(item["geometry"]).intersects(box(*bbox)):
                continue
            cover = item["properties"].get("eo:cloud_cover")
            if max_cloud is not None and cover is not None and cover >= max_cloud:
                continue
            out.append(item)
        return out

    # -- Sentinel Hub -----------------------------------------------------------------
    def sh_catalog(self, body: dict[str, Any]) -> dict[str, Any]:
        max_cloud = None
        text = body.get("filter") or ""
        if "eo:cloud_cover <" in text:
            max_cloud = float(text.split("eo:cloud_cover <")[1].split()[0])
        found = self._filter_items(body.get("bbox"), body.get("datetime"), max_cloud)
        offset = int(body.get("next") or 0)
        limit = int(body.get("limit", 10))
        page = found[offset : offset + limit]
        nxt = offset + limit if offset + limit < len(found) else None
        features = [
            {
                "type": "Feature",
                "id": it["id"],
                "geometry": it["geometry"],
                "properties": {
                    "datetime": it["properties"]["datetime"],
                    "eo:cloud_cover": it["properties"].get("eo:cloud_cover"),
                },
            }
            for it in page
        ]
        context: dict[str, Any] = {"limit": limit, "returned": len(features)}
        if nxt is not None:
            context["next"] = nxt
        return {"type": "FeatureCollection", "features": features, "context": context}

    def sh_process(self, body: dict[str, Any]) -> bytes:
        bounds = body["input"]["bounds"]
        left, bottom, right, top = bounds["bbox"]
        epsg = int(bounds["properties"]["crs"].rsplit("/", 1)[1])
        width, height = body["output"]["width"], body["output"]["height"]
        time_range = body["input"]["data"][0]["dataFilter"]["timeRange"]
        t0 = datetime.fromisoformat(time_range["from"].replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(time_range["to"].replace("Z", "+00:00"))
        harmonize = body["input"]["data"][0].get("processing", {}).get("harmonizeValues", True)
        stack = np.zeros((len(SH_BANDS), height, width), np.uint16)
        for item in self._items:
            when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
            if not t0 <= when <= t1:
                continue
            offset_dn = 1000 if harmonize and when.date() >= BASELINE_04 else 0
            for k, band in enumerate(SH_BANDS):
                with rasterio.open(item["_dir"] / f"{band}.tif") as src:
                    assert src.crs.to_epsg() == epsg
                    win = from_bounds(left, bottom, right, top, transform=src.transform)
                    data = src.read(
                        1,
                        window=win,
                        out_shape=(height, width),
                        boundless=True,
                        fill_value=0,
                        resampling=Resampling.nearest,
                    ).astype(np.int32)
                if band != "scl" and offset_dn:
                    data = np.where(data > 0, np.maximum(data - offset_dn, 1), 0)
                stack[k] = np.where(stack[k] == 0, data, stack[k])
            break
        profile = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            "count": len(SH_BANDS),
            "dtype": "uint16",
            "crs": f"EPSG:{epsg}",
            "transform": rasterio.transform.from_bounds(left, bottom, right, top, width, height),
        }
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(stack)
            return mem.read()

    # -- STAC API ---------------------------------------------------------------------
    def stac_landing(self) -> dict[str, Any]:
        base = f"{self.url}/stac"
        return {
            "type": "Catalog",
            "id": "fake-earth-search",
            "stac_version": "1.0.0",
            "description": "scenario served as a STAC API",
            "conformsTo": STAC_CONFORMANCE,
            "links": [
                {"rel": "self", "href": base, "type": "application/json"},
                {"rel": "root", "href": base, "type": "application/json"},
                {"rel": "conformance", "href": f"{base}/conformance"},
                {"rel": "data", "href": f"{base}/collections"},
                {
                    "rel": "search",
                    "href": f"{base}/search",
                    "type": "application/geo+json",
                    "method": "GET",
                },
                {
                    "rel": "search",
                    "href": f"{base}/search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
            ],
        }

    def stac_item(self, item: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in item.items() if k != "_dir"}
        out["collection"] = "sentinel-2-l2a"
        rel = item["_dir"].relative_to(self.scenario.catalog.parent)
        out["assets"] = {
            key: {**asset, "href": f"{self.url}/cogs/{rel.as_posix()}/{Path(asset['href']).name}"}
            for key, asset in item["assets"].items()
        }
        out["links"] = [
            {
                "rel": "self",
                "href": f"{self.url}/stac/collections/sentinel-2-l2a/items/{item['id']}",
            }
        ]
        return out

    def stac_search(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("collections") and "sentinel-2-l2a" not in body["collections"]:
            found: list[dict[str, Any]] = []
        else:
            max_cloud = None
            query = body.get("query") or {}
            if "eo:cloud_cover" in query and "lt" in query["eo:cloud_cover"]:
                max_cloud = float(query["eo:cloud_cover"]["lt"])
            bbox = body.get("bbox")
            if isinstance(bbox, str):
                bbox = [float(v) for v in bbox.split(",")]
            found = self._filter_items(bbox, body.get("datetime"), max_cloud)
        offset = int(body.get("token") or 0)
        limit = int(body.get("limit", 10))
        page = found[offset : offset + limit]
        links = []
        if offset + limit < len(found):
            links.append(
                {
                    "rel": "next",
                    "href": f"{self.url}/stac/search",
                    "method": "POST",
                    "type": "application/geo+json",
                    "body": {**body, "token": str(offset + limit)},
                    "merge": False,
                }
            )
        return {
            "type": "FeatureCollection",
            "features": [self.stac_item(it) for it in page],
            "links": links,
            "numberMatched": len(found),
            "numberReturned": len(page),
        }

    def cog_path(self, url_path: str) -> Path | None:
        rel = url_path.removeprefix("/cogs/")
        path = (self.scenario.catalog.parent / rel).resolve()
        if self.scenario.catalog.parent.resolve() not in path.parents or not path.is_file():
            return None
        return path


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client killed mid-request (the interruption test) is expected


class _Handler(BaseHTTPRequestHandler):
    services: FakeEOServices
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, as from a real server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet

    # -- plumbing -----------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        return status, len(payload)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None):
        return self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _record(self, body: bytes, status: int, sent: int) -> None:
        svc = self.services
        with svc._lock:
            svc.seen.append(
                Seen(
                    self.command,
                    urlparse(self.path).path,
                    status,
                    time.monotonic(),
                    body,
                    dict(self.headers.items()),
                    sent,
                )
            )

    def _handle(self) -> None:
        svc = self.services
        body = self._body()
        path = urlparse(self.path).path
        parsed: dict[str, Any] | None = None
        ctype = self.headers.get("Content-Type") or ""
        if body and "json" in ctype:
            parsed = json.loads(body)
        with svc._lock:
            fault = next(
                (
                    f
                    for f in svc.faults
                    if (f.times is None or f.hits < f.times) and f.match(self.command, path, parsed)
                ),
                None,
            )
            if fault is not None:
                fault.hits += 1
        if fault is not None:
            status, sent = self._json(fault.status, {"error": "injected"}, fault.headers)
        else:
            status, sent = self._route(path, body, parsed)
        if not getattr(self, "unrecorded", False):
            self._record(body, status, sent)

    def _bearer_ok(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.services.token}"

    def _route(self, path: str, body: bytes, parsed: dict[str, Any] | None) -> tuple[int, int]:
        svc = self.services
        if path == "/oauth/token" and self.command == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("client_id") == svc.client_id and form.get("client_secret") == (
                svc.client_secret
            ):
                return self._json(
                    200,
                    {"access_token": svc.token, "expires_in": 3600, "token_type": "Bearer"},
                )
            return self._json(
                401,
                {"error": "invalid_client", "error_description": "Invalid client credentials"},
            )
        if path.startswith("/api/v1/"):
            if not self._bearer_ok():
                return self._json(401, {"error": {"status": 401, "reason": "Unauthorized"}})
            if path == "/api/v1/catalog/1.0.0/search" and parsed is not None:
                return self._json(200, svc.sh_catalog(parsed))
            if path == "/api/v1/process" and parsed is not None:
                with svc._lock:
                    svc.process_arrivals += 1
                    n_before = svc.process_arrivals - 1
                if svc.stall_process_after is not None and n_before >= svc.stall_process_after:
                    svc.stalled.set()
                    svc.release.wait(30)
                    self.unrecorded = True  # its client was killed while it hung
                    return self._json(503, {"error": "stalled"})
                if 'sampleType: "UINT16"' not in parsed.get("evalscript", ""):
                    return self._json(400, {"error": {"status": 400, "reason": "bad evalscript"}})
                return self._send(200, svc.sh_process(parsed), "image/tiff")
        if path in ("/stac", "/stac/"):
            return self._json(200, svc.stac_landing())
        if path == "/stac/conformance":
            return self._json(200, {"conformsTo": STAC_CONFORMANCE})
        if path == "/stac/search":
            if self.command == "POST" and parsed is not None:
                return self._json(
                    200, svc.stac_search(parsed), {"Content-Type": "application/geo+json"}
                )
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            if "collections" in query:
                query["collections"] = query["collections"].split(",")  # type: ignore[assignment]
            return self._json(200, svc.stac_search(query))
        if path.startswith("/cogs/"):
            return self._serve_cog(path)
        return self._json(404, {"error": "not found"})

    def _serve_cog(self, path: str) -> tuple[int, int]:
        file = self.services.cog_path(path)
        if file is None:
            return self._json(404, {"error": "not found"})
        data = file.read_bytes()
        size = len(data)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a)
            end = min(int(b) if b else size - 1, size - 1)
            if start >= size:
                return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
            return self._send(
                206,
                data[start : end + 1],
                "image/tiff",
                {"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"},
            )
        return self._send(200, data, "image/tiff", {"Accept-Ranges": "bytes"})

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()


def utc_now() -> datetime:
    return datetime.now(UTC)
