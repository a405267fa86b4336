"""The local archive every provider fetches into: tiles, COGs, STAC items and a ledger.

Layout under the archive folder::

    catalog.json                 static STAC catalog of the complete items (written last)
    fetch.json                   the fetch ledger: provider, endpoints, period, tiles and,
                                 per item, done / empty / failed with sizes and checksums
    items/<item_id>/<item_id>.json
    items/<item_id>/{blue,green,red,nir}.tif    10 m, uint16 DN, nodata 0
    items/<item_id>/{swir16,swir22,scl}.tif     20 m

One item per tile and acquisition date. Every file is written under a temporary name
and renamed; an item enters the ledger as done only after its COGs and its JSON are
in place, and ``catalog.json`` lists only done items whose files still match their
recorded size and SHA-256. A rerun skips those and fetches the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import mapping

from pipeline import __version__, schema
from pipeline.fetch.tiles import Tile
from pipeline.outputs import write_json

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.json"
LEDGER_FILE = "fetch.json"
ITEMS_DIR = "items"

# Native Sentinel-2 pixel size of each band in metres.
BAND_RESOLUTION = {
    "blue": 10,
    "green": 10,
    "red": 10,
    "nir": 10,
    "swir16": 20,
    "swir22": 20,
    schema.SCL: 20,
}
_BAND_IDS = {
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "nir": "B08",
    "swir16": "B11",
    "swir22": "B12",
    schema.SCL: "SCL",
}
_COG = {"driver": "COG", "compress": "DEFLATE", "predictor": 2, "blocksize": 256}
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BandData:
    """One band of one item, ready to write."""

    array: np.ndarray
    resolution: float
    scale: float = 0.0001
    offset: float = 0.0


@dataclass
class ItemRecord:
    """What the ledger knows about one item (tile x acquisition date)."""

    item_id: str
    tile_id: str
    datetime: str
    status: str
    """``done``, ``empty`` (no valid pixel over this tile) or ``failed``."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """File name -> {"size": bytes, "sha256": hex}."""
    sources: list[str] = field(default_factory=list)
    """Provider ids of the scenes the item was made from."""
    error: str | None = None
    requests: int = 0


class Archive:
    """The archive folder: item files, the ledger, and the catalog written last."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.items_dir = self.root / ITEMS_DIR
        self._lock = threading.Lock()
        self.records: dict[str, ItemRecord] = {}
        self.meta: dict[str, Any] = {}
        ledger = self.root / LEDGER_FILE
        if ledger.exists():
            try:
                data = json.loads(ledger.read_text(encoding="utf-8"))
                for rec in data.get("items", {}).values():
                    self.records[rec["item_id"]] = ItemRecord(**rec)
            except (ValueError, KeyError, TypeError):
                log.warning("archive ledger %s unreadable; every item will be checked anew", ledger)
                self.records = {}

    def open(self, meta: Mapping[str, Any]) -> None:
        """Create the folders, drop leftovers of an interrupted write, note what this fetch is."""
        self.items_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.root.rglob(".*.tmp"):
            log.info("removing a half-written file of an interrupted fetch: %s", tmp)
            tmp.unlink(missing_ok=True)
        self.meta = dict(meta)

    def is_complete(self, item_id: str) -> bool:
        """A done item whose JSON and COGs are all there with the recorded size and checksum."""
        rec = self.records.get(item_id)
        if rec is None:
            return False
        if rec.status == "empty":
            return True
        if rec.status != "done":
            return False
        folder = self.items_dir / item_id
        if not (folder / f"{item_id}.json").exists():
            return False
        for name, info in rec.files.items():
            path = folder / name
            if not path.exists() or path.stat().st_size != info["size"]:
                return False
            if sha256_file(path) != info["sha256"]:
                log.warning("item %s: %s does not match its checksum; fetched again", item_id, name)
                return False
        return True

    def write_item(
        self,
        *,
        item_id: str,
        tile: Tile,
        acquired: datetime,
        bands: Mapping[str, BandData],
        cloud_cover: float | None,
        properties: Mapping[str, Any],
        sources: list[str],
        requests: int,
    ) -> ItemRecord:
        """Write one item's COGs then its JSON, then record it as done."""
        folder = self.items_dir / item_id
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, Any]] = {}
        assets: dict[str, Any] = {}
        for band, data in bands.items():
            name = f"{band}.tif"
            path = folder / name
            transform = tile.transform(data.resolution)
            _replace_atomic(
                path, lambda tmp, d=data, t=transform: _write_cog(tmp, d.array, t, tile)
            )
            files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
            raster: dict[str, Any] = {
                "nodata": 0,
                "data_type": str(data.array.dtype),
                "spatial_resolution": data.resolution,
            }
            if band != schema.SCL:
                raster.update(scale=data.scale, offset=data.offset)
            assets[band] = {
                "href": f"./{name}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": f"{band} ({_BAND_IDS[band]})",
                "roles": ["data"],
                "proj:shape": list(data.array.shape),
                "proj:transform": list(transform)[:6],
                "raster:bands": [raster],
            }
            if band != schema.SCL:
                assets[band]["eo:bands"] = [{"name": _BAND_IDS[band], "common_name": band}]
        footprint = tile.footprint_wgs84()
        props: dict[str, Any] = {
            "datetime": acquired.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "proj:epsg": tile.epsg,
            "minewatch:tile": tile.tile_id,
            "minewatch:sources": sources,
            **properties,
        }
        if cloud_cover is not None:
            props["eo:cloud_cover"] = round(float(cloud_cover), 2)
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": _EXTENSIONS,
            "id": item_id,
            "geometry": mapping(footprint),
            "bbox": [round(v, 7) for v in footprint.bounds],
            "properties": props,
            "links": [
                {"rel": "root", "href": f"../../{CATALOG_FILE}", "type": "application/json"},
                {"rel": "parent", "href": f"../../{CATALOG_FILE}", "type": "application/json"},
            ],
            "assets": assets,
        }
        text = json.dumps(item, ensure_ascii=False, indent=1)
        _replace_atomic(folder / f"{item_id}.json", lambda tmp: tmp.write_text(text, "utf-8"))
        rec = ItemRecord(
            item_id=item_id,
            tile_id=tile.tile_id,
            datetime=props["datetime"],
            status="done",
            files=files,
            sources=sources,
            requests=requests,
        )
        self.record(rec)
        return rec

    def record(self, rec: ItemRecord) -> None:
        """Keep ``rec`` in the ledger and write the ledger (atomically)."""
        with self._lock:
            self.records[rec.item_id] = rec
            self._write_ledger()

    def _write_ledger(self) -> None:
        data = {
            **self.meta,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": __version__,
            "items": {k: vars(v) for k, v in sorted(self.records.items())},
        }
        write_json(self.root / LEDGER_FILE, data)

    def write_catalog(self, description: str) -> Path:
        """Write ``catalog.json`` listing every complete item; the last file a fetch writes."""
        with self._lock:
            done = sorted(
                (r for r in self.records.values() if r.status == "done"),
                key=lambda r: (r.datetime, r.item_id),
            )
            links = [{"rel": "root", "href": f"./{CATALOG_FILE}", "type": "application/json"}]
            for rec in done:
                if (self.items_dir / rec.item_id / f"{rec.item_id}.json").exists():
                    links.append(
                        {
                            "rel": "item",
                            "href": f"./{ITEMS_DIR}/{rec.item_id}/{rec.item_id}.json",
                            "type": "application/json",
                        }
                    )
            catalog = {
                "type": "Catalog",
                "stac_version": "1.0.0",
                "id": "minewatch-archive",
                "description": description,
                "links": links,
            }
            self._write_ledger()
            path = self.root / CATALOG_FILE
            write_json(path, catalog)
            return path


def _replace_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Write through a hidden temporary name in the same folder, then rename into place.

    No fsync per file: an item counts only once the ledger (which is synced) records
    its files' sizes and checksums, and every resume checks them.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_cog(path: Path, array: np.ndarray, transform: Affine, tile: Tile) -> None:
    with rasterio.open(
        path,
        "w",
        height=array.shape[0],
        width=array.shape[1],
        count=1,
        dtype=array.dtype,
        crs=f"EPSG:{tile.epsg}",
        transform=transform,
        nodata=0,
        **_COG,
    ) as dst:
        dst.write(array, 1)
