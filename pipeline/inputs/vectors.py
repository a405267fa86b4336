"""The vector inputs' readers: sites, permits, zones and the area of interest.

Each reader returns a GeoDataFrame in EPSG:4326 with exactly the columns of
``contracts.md`` (extra properties are dropped), a 0..n-1 index and Python types:
text columns hold ``str``, date columns hold ``datetime.date`` or ``None``, geometries
are ``Polygon`` or ``MultiPolygon``. ``frame.attrs`` carries ``warnings`` (a list of
``InputWarning``), ``source`` (the file) and ``records`` (each row's record name).

GeoJSON is parsed with ``json`` so a record can be named; it is WGS84 (RFC 7946)
unless a legacy ``crs`` member names another CRS. Other formats (GeoPackage, ...) are
read with pyogrio and must declare a CRS.

Anything that would make a later stage wrong is an ``InputError`` naming the file, the
record and the field. Readers raise at the first one; given ``errors=[]`` they keep
record-level errors in that list, leave those records out and read on, so
``minewatch validate`` can list every problem at once. File-level errors (missing,
unreadable, not GeoJSON) always raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon

from pipeline.errors import InputError
from pipeline.inputs.records import (
    PERMITS,
    POLYGON_TYPES,
    SITES,
    WGS84,
    ZONES,
    Feature,
    Layer,
    Source,
    polygonal,
    read_polygon,
    read_record,
)

GEOJSON_SUFFIXES = (".geojson", ".json")


def read_sites(path: str | Path, *, errors: list[InputError] | None = None) -> gpd.GeoDataFrame:
    """Read the mine sites; an empty file is an error (there is nothing to watch)."""
    source = Source(Path(path), errors=errors)
    features = _load_features(source)
    if not features:
        raise source.error("the file contains no sites; at least one site is required")
    return _build_frame(source, features, SITES)


def read_permits(
    path: str | Path | None,
    sites: gpd.GeoDataFrame | None = None,
    *,
    errors: list[InputError] | None = None,
) -> gpd.GeoDataFrame:
    """Read the extraction permits (optional input: ``None`` gives an empty frame).

    With ``sites``, every permit's ``site_id`` must name one of them.
    """
    if path is None:
        return _empty_frame(PERMITS)
    source = Source(Path(path), errors=errors)
    frame = _build_frame(source, _load_features(source), PERMITS)
    for record, row in zip(frame.attrs["records"], frame.itertuples(index=False), strict=True):
        if row.valid_from and row.valid_to and row.valid_from > row.valid_to:
            source.reject(
                source.error(
                    f"valid_from {row.valid_from.isoformat()} is after valid_to "
                    f"{row.valid_to.isoformat()}",
                    record,
                    "valid_from",
                )
            )
    if sites is not None:
        _check_site_ids(source, frame, sites)
    return frame


def read_zones(
    path: str | Path | None, *, errors: list[InputError] | None = None
) -> gpd.GeoDataFrame:
    """Read the no-mining zones (optional input: ``None`` gives an empty frame).

    ``kind`` may be any non-empty string; contracts.md lists the usual ones.
    """
    if path is None:
        return _empty_frame(ZONES)
    source = Source(Path(path), errors=errors)
    return _build_frame(source, _load_features(source), ZONES)


def read_aoi(path: str | Path) -> Polygon | MultiPolygon:
    """Read an area of interest: the union of all its polygons, in EPSG:4326.

    A GeoJSON AOI may also be a single Feature or a bare geometry; properties are ignored.
    """
    source = Source(Path(path))
    features = _load_features(source, allow_single=True)
    polygons = [
        read_polygon(source, feature.geometry, f"feature {feature.index}") for feature in features
    ]
    if not polygons:
        raise source.error("the file contains no polygon", field="geometry")
    union = polygonal(shapely.union_all(polygons))
    if union is None or union.is_empty:  # pragma: no cover - each part has area
        raise source.error("the polygons' union is empty", field="geometry")
    return union


# --- loading features ------------------------------------------------------------------


def _load_features(source: Source, *, allow_single: bool = False) -> list[Feature]:
    if not source.path.exists():
        raise source.error("file not found")
    if not source.path.is_file():
        raise source.error("not a file")
    if source.path.suffix.lower() in GEOJSON_SUFFIXES:
        return _load_geojson(source, allow_single=allow_single)
    return _load_ogr(source)


def _load_geojson(source: Source, *, allow_single: bool) -> list[Feature]:
    try:
        text = source.path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise source.error(f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise source.error(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise source.error(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
    if allow_single and kind in POLYGON_TYPES:
        doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": doc}]}
    elif allow_single and kind == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc], "crs": doc.get("crs")}
    elif kind != "FeatureCollection":
        expected = (
            "FeatureCollection, Feature or (Multi)Polygon" if allow_single else "FeatureCollection"
        )
        raise source.error(f"expected a GeoJSON {expected}, found {kind!r}")
    source.to_wgs84 = _legacy_crs_transform(source, doc.get("crs"))
    raw = doc.get("features")
    if not isinstance(raw, list):
        raise source.error("'features' must be a list", field="features")
    features = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("type") != "Feature":
            source.reject(source.error("expected a GeoJSON Feature object", f"feature {i}"))
            continue
        props = item.get("properties") or {}
        if not isinstance(props, dict):
            source.reject(
                source.error("'properties' must be an object", f"feature {i}", "properties")
            )
            continue
        features.append(Feature(i, props, item.get("geometry")))
    return features


def _legacy_crs_transform(source: Source, member: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """Honour a pre-RFC 7946 ``"crs": {"type": "name", ...}`` member; None means WGS84."""
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str) or member.get("type") != "name":
        raise source.error("only a named CRS ('type': 'name') is supported", field="crs")
    try:
        crs = CRS.from_user_input(name)
    except CRSError:
        raise source.error(f"unknown CRS {name!r}", field="crs") from None
    return _transform_to_wgs84(crs)


def _transform_to_wgs84(crs: CRS) -> Callable[[np.ndarray], np.ndarray] | None:
    if crs.is_geographic and crs.equals(WGS84, ignore_axis_order=True):
        return None
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)

    def to_wgs84(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return to_wgs84


def _load_ogr(source: Source) -> list[Feature]:
    try:
        layers = pyogrio.list_layers(source.path)
        if len(layers) == 0:
            raise source.error("the file has no layer")
        layer = str(layers[0][0])
        if len(layers) > 1:
            source.warn(f"the file has {len(layers)} layers; reading only the first, {layer!r}")
        frame = gpd.read_file(source.path, layer=layer, engine="pyogrio")
    except InputError:
        raise
    except Exception as exc:  # pyogrio/GDAL say why in their message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise source.error(f"cannot read the file: {reason}") from None
    if frame.crs is None:
        raise source.error("the file declares no CRS; set one (e.g. EPSG:4326)", field="crs")
    frame = frame.to_crs(WGS84)
    records = pd.DataFrame(frame.drop(columns=frame.geometry.name)).to_dict("records")
    return [
        Feature(i, {str(k): v for k, v in record.items()}, geom)
        for i, (record, geom) in enumerate(zip(records, frame.geometry, strict=True))
    ]


# --- building the frame -----------------------------------------------------------------


def _build_frame(source: Source, features: list[Feature], layer: Layer) -> gpd.GeoDataFrame:
    rows: list[dict[str, Any]] = []
    records: list[str] = []
    first_index: dict[str, int] = {}
    for feature in features:
        try:
            row = read_record(source, feature, layer)
        except InputError as exc:
            source.reject(exc)
            continue
        key = row[layer.id_field]
        if key in first_index:
            source.reject(
                source.error(
                    f"duplicate {layer.id_field} {key!r}: each {layer.noun} needs a unique id",
                    f"features {first_index[key]} and {feature.index} ({layer.id_field}={key})",
                    layer.id_field,
                )
            )
            continue
        first_index[key] = feature.index
        rows.append(row)
        records.append(f"feature {feature.index} ({layer.id_field}={key})")
    frame = _frame(rows, layer)
    frame.attrs["warnings"] = source.warnings
    frame.attrs["source"] = source.file
    frame.attrs["records"] = records
    return frame


def _check_site_ids(source: Source, permits: gpd.GeoDataFrame, sites: gpd.GeoDataFrame) -> None:
    known = set(sites["site_id"])
    where = sites.attrs.get("source", "the sites")
    for record, row in zip(permits.attrs["records"], permits.itertuples(index=False), strict=True):
        if row.site_id not in known:
            source.reject(
                source.error(
                    f"site_id {row.site_id!r} is not among the {len(known)} sites in {where}",
                    record,
                    "site_id",
                )
            )


def _frame(rows: list[dict[str, Any]], layer: Layer) -> gpd.GeoDataFrame:
    data: dict[str, pd.Series] = {}
    for name in layer.columns[:-1]:
        values = [row[name] for row in rows]
        dtype = object if name in layer.date_fields else str
        data[name] = pd.Series(values, dtype=dtype, index=pd.RangeIndex(len(rows)))
    geometry = gpd.GeoSeries([row["geometry"] for row in rows], crs=WGS84)
    return gpd.GeoDataFrame(data, geometry=geometry, crs=WGS84)


def _empty_frame(layer: Layer) -> gpd.GeoDataFrame:
    frame = _frame([], layer)
    frame.attrs["warnings"] = []
    frame.attrs["source"] = None
    frame.attrs["records"] = []
    return frame
