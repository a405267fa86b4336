"""STAC items read straight from their JSON, for ``local.read_catalog``.

pystac walks the catalog (its few catalogs and collections); each item it links to is
parsed here once into the few fields the reader takes (``Item``), instead of pystac's
migration, deep copies and href rewriting per item.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import unquote, urlparse

import pystac
from pystac.utils import str_to_datetime


@dataclass(frozen=True)
class Asset:
    """What the reader takes of a STAC asset: its absolute href and its other fields."""

    href: str
    extra_fields: dict[str, Any]

    def get_absolute_href(self) -> str:
        return self.href


@dataclass(frozen=True)
class Item:
    """What the reader takes of a STAC 1.x item, parsed straight from its JSON.

    pystac builds an item by migrating a deep copy of its JSON to the newest STAC
    version, twice, and rewriting every asset href relative to the item and back: for
    a hundred items that was a second, ten times the parse. The fields read here mean
    the same in every 1.x version (the projection extension's ``proj:epsg`` became
    ``proj:code``: ``local._item_epsg`` reads both).
    """

    id: str
    datetime: datetime | None
    properties: dict[str, Any]
    assets: dict[str, Asset]
    collection_id: str | None
    self_href: str

    def get_self_href(self) -> str:
        return self.self_href


def parse_item(d: dict[str, Any], href: str) -> Item | pystac.Item:
    """An item from its JSON at ``href``; pystac's (migrated) for a STAC version before 1.0."""
    if not str(d.get("stac_version", "")).startswith("1."):
        return cast(pystac.Item, pystac.StacIO.default().read_stac_object(href))
    props = d.get("properties") or {}
    when = props.get("datetime")
    folder = os.path.dirname(href)
    assets = {}
    for key, a in (d.get("assets") or {}).items():
        target = a["href"]
        if "://" not in target and not os.path.isabs(target):
            target = os.path.abspath(os.path.join(folder, target))
        assets[key] = Asset(target, {k: v for k, v in a.items() if k != "href"})
    return Item(
        id=d["id"],
        datetime=None if when is None else str_to_datetime(when),
        properties=props,
        assets=assets,
        collection_id=d.get("collection"),
        self_href=href,
    )


def catalog_items(catalog: pystac.Catalog) -> Iterator[Item | pystac.Item]:
    """The items of ``catalog`` and of its children, in pystac's order (items first)."""
    for link in catalog.get_links(pystac.RelType.ITEM):
        if link.is_resolved():
            yield cast(pystac.Item, link.target)
            continue
        href = link.get_absolute_href()
        assert href is not None
        href = unquote(urlparse(href).path) if href.startswith("file://") else href
        with open(href, encoding="utf-8") as f:
            yield parse_item(json.load(f), os.path.abspath(href))
    for child in catalog.get_children():
        yield from catalog_items(child)
