"""Read and validate the vector inputs: sites, permits, zones and the area of interest.

Each reader returns a GeoDataFrame in EPSG:4326 with exactly the columns of
``contracts.md`` (extra properties are dropped), a 0..n-1 index and Python types:
text columns hold ``str``, date columns hold ``datetime.date`` or ``None``, geometries
are ``Polygon`` or ``MultiPolygon``.

Anything that would make a later stage wrong is an ``InputError`` naming the file,
the record and the field; the record reads ``feature 3 (site_id=S04)``, where 3 is the
0-based position of the feature in the file (``.features[3]`` in GeoJSON, the fourth
row of an OGR layer). Defects we can repair without guessing (an invalid polygon that
``shapely.make_valid`` fixes, whitespace around ids) are repaired and reported: each
``InputWarning`` is logged and kept in ``frame.attrs["warnings"]`` for the manifest.

GeoJSON is parsed with ``json`` so a record can be named; it is WGS84 (RFC 7946)
unless a legacy ``crs`` member names another CRS. Other formats (GeoPackage, ...) are
read with pyogrio and must declare a CRS.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from pipeline.errors import InputError
from pipeline.schema import CATEGORIES, STATUSES, TARGETS

logger = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
GEOJSON_SUFFIXES = (".geojson", ".json")
POLYGON_TYPES = ("Polygon", "MultiPolygon")
# Polygons smaller than this (in square degrees, about 0.01 m2) are degenerate: a ring
# whose points are collinear up to floating-point rounding, not a site anyone drew.
MIN_AREA_DEG2 = 1e-12


@dataclass(frozen=True)
class InputWarning:
    """A defect in an input file that was repaired rather than refused."""

    file: str
    """The file, as the caller named it."""
    record: str | None
    """``feature 3 (site_id=S04)``, or None for the file as a whole."""
    field: str | None
    """The property (or ``geometry``, ``crs``) concerned, if any."""
    message: str
    """What was wrong and what was done about it."""

    def __str__(self) -> str:
        parts = [self.file]
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return f"{': '.join(parts)}: {self.message}"


@dataclass(frozen=True)
class _Layer:
    """What one kind of input file must hold."""

    noun: str
    id_field: str
    text_fields: tuple[str, ...]  # required, non-empty text (the id first)
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_fields: tuple[str, ...] = ()  # optional: absent, null or "" -> None

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.text_fields, *self.vocabularies, *self.date_fields, "geometry")


SITES = _Layer(
    "site",
    "site_id",
    ("site_id", "name", "county"),
    {"category": CATEGORIES, "status": STATUSES, "target": TARGETS},
    ("restoration_start",),
)
PERMITS = _Layer(
    "permit", "permit_id", ("permit_id", "site_id", "holder"), {}, ("valid_from", "valid_to")
)
ZONES = _Layer("zone", "zone_id", ("zone_id", "kind"))
_ID_FIELDS = ("site_id", "permit_id", "zone_id")


@dataclass
class _Feature:
    """One record as read from the file, before validation."""

    index: int
    properties: Mapping[str, Any]
    geometry: Mapping[str, Any] | BaseGeometry | None  # GeoJSON dict, or shapely from OGR


@dataclass
class _Source:
    """One input file being read: its name for messages, its warnings, its CRS."""

    path: Path
    warnings: list[InputWarning] = field(default_factory=list)
    to_wgs84: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def file(self) -> str:
        return str(self.path)

    def error(
        self, message: str, record: str | None = None, field: str | None = None
    ) -> InputError:
        return InputError(message, file=self.file, record=record, field=field)

    def warn(self, message: str, record: str | None = None, field: str | None = None) -> None:
        warning = InputWarning(self.file, record, field, message)
        logger.warning("%s", warning)
        self.warnings.append(warning)


# --- public readers -------------------------------------------------------------------


def read_sites(path: str | Path) -> gpd.GeoDataFrame:
    """Read the mine sites; an empty file is an error (there is nothing to watch)."""
    source = _Source(Path(path))
    features = _load_features(source)
    if not features:
        raise source.error("the file contains no sites; at least one site is required")
    return _build_frame(source, features, SITES)


def read_permits(
    path: str | Path | None, sites: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """Read the extraction permits (optional input: ``None`` gives an empty frame).

    With ``sites``, every permit's ``site_id`` must name one of them.
    """
    if path is None:
        return _empty_frame(PERMITS)
    source = _Source(Path(path))
    frame = _build_frame(source, _load_features(source), PERMITS)
    for i, row in enumerate(frame.itertuples(index=False)):
        record = f"feature {i} (permit_id={row.permit_id})"
        if row.valid_from and row.valid_to and row.valid_from > row.valid_to:
            raise source.error(
                f"valid_from {row.valid_from.isoformat()} is after valid_to "
                f"{row.valid_to.isoformat()}",
                record,
                "valid_from",
            )
    if sites is not None:
        _check_site_ids(source, frame, sites)
    return frame


def read_zones(path: str | Path | None) -> gpd.GeoDataFrame:
    """Read the no-mining zones (optional input: ``None`` gives an empty frame).

    ``kind`` may be any non-empty string; contracts.md lists the usual ones.
    """
    if path is None:
        return _empty_frame(ZONES)
    source = _Source(Path(path))
    return _build_frame(source, _load_features(source), ZONES)


def read_aoi(path: str | Path) -> Polygon | MultiPolygon:
    """Read an area of interest: the union of all its polygons, in EPSG:4326.

    A GeoJSON AOI may also be a single Feature or a bare geometry; properties are ignored.
    """
    source = _Source(Path(path))
    features = _load_features(source, allow_single=True)
    polygons = [
        _read_polygon(source, feature.geometry, f"feature {feature.index}") for feature in features
    ]
    if not polygons:
        raise source.error("the file contains no polygon", field="geometry")
    union = _polygonal(shapely.union_all(polygons))
    if union is None or union.is_empty:  # pragma: no cover - each part has area
        raise source.error("the polygons' union is empty", field="geometry")
    return union


# --- loading features ------------------------------------------------------------------


def _load_features(source: _Source, *, allow_single: bool = False) -> list[_Feature]:
    if not source.path.exists():
        raise source.error("file not found")
    if not source.path.is_file():
        raise source.error("not a file")
    if source.path.suffix.lower() in GEOJSON_SUFFIXES:
        return _load_geojson(source, allow_single=allow_single)
    return _load_ogr(source)


def _load_geojson(source: _Source, *, allow_single: bool) -> list[_Feature]:
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
            raise source.error("expected a GeoJSON Feature object", f"feature {i}")
        props = item.get("properties") or {}
        if not isinstance(props, dict):
            raise source.error("'properties' must be an object", f"feature {i}", "properties")
        features.append(_Feature(i, props, item.get("geometry")))
    return features


def _legacy_crs_transform(
    source: _Source, member: Any
) -> Callable[[np.ndarray], np.ndarray] | None:
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


def _load_ogr(source: _Source) -> list[_Feature]:
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
        _Feature(i, {str(k): v for k, v in record.items()}, geom)
        for i, (record, geom) in enumerate(zip(records, frame.geometry, strict=True))
    ]


# --- validating records ----------------------------------------------------------------


def _build_frame(source: _Source, features: list[_Feature], layer: _Layer) -> gpd.GeoDataFrame:
    rows: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for feature in features:
        row = _read_record(source, feature, layer)
        key = row[layer.id_field]
        if key in first_index:
            raise source.error(
                f"duplicate {layer.id_field} {key!r}: each {layer.noun} needs a unique id",
                f"features {first_index[key]} and {feature.index} ({layer.id_field}={key})",
                layer.id_field,
            )
        first_index[key] = feature.index
        rows.append(row)
    frame = _frame(rows, layer)
    frame.attrs["warnings"] = source.warnings
    frame.attrs["source"] = source.file
    return frame


def _read_record(source: _Source, feature: _Feature, layer: _Layer) -> dict[str, Any]:
    props = feature.properties
    raw_id = props.get(layer.id_field)
    shown = _to_text(raw_id) if not _is_null(raw_id) else None
    record = (
        f"feature {feature.index} ({layer.id_field}={shown})"
        if shown
        else f"feature {feature.index}"
    )
    row: dict[str, Any] = {}
    for name in layer.text_fields:
        row[name] = _required_text(source, props, name, record)
    for name, allowed in layer.vocabularies.items():
        value = _required_text(source, props, name, record)
        if value not in allowed:
            raise source.error(
                f"unknown {name} {value!r}; allowed: {', '.join(allowed)}", record, name
            )
        row[name] = value
    for name in layer.date_fields:
        row[name] = _optional_date(source, props.get(name), record, name)
    row["geometry"] = _read_polygon(source, feature.geometry, record)
    return row


def _required_text(source: _Source, props: Mapping[str, Any], name: str, record: str) -> str:
    if name not in props:
        raise source.error("missing required property", record, name)
    value = props[name]
    if _is_null(value):
        raise source.error("required property is null", record, name)
    text = _to_text(value)
    if text is None:
        raise source.error(f"expected text, found {type(value).__name__} {value!r}", record, name)
    if not text:
        raise source.error("required property is empty", record, name)
    if name in _ID_FIELDS and isinstance(value, str) and text != value:
        source.warn(f"stripped whitespace around {value!r}", record, name)
    return text


def _to_text(value: Any) -> str | None:
    """Text, or an integer id written as a number; None for anything else."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # an integer column with nulls comes back from OGR as float
    return None


def _optional_date(source: _Source, value: Any, record: str, name: str) -> date | None:
    """ISO 8601 date (or date-time, whose date is kept); absent, null or "" is None."""
    if _is_null(value):
        return None
    if isinstance(value, datetime):  # also pandas.Timestamp, as OGR date columns come back
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for parse in (date.fromisoformat, lambda s: datetime.fromisoformat(s).date()):
            try:
                return parse(text)
            except ValueError:
                pass
    raise source.error(f"invalid date {value!r}; expected YYYY-MM-DD", record, name)


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _read_polygon(
    source: _Source, raw: Mapping[str, Any] | BaseGeometry | None, record: str
) -> Polygon | MultiPolygon:
    if raw is None:
        raise source.error("the feature has no geometry", record, "geometry")
    if isinstance(raw, BaseGeometry):
        geom = raw
    else:
        kind = raw.get("type") if isinstance(raw, Mapping) else type(raw).__name__
        if kind not in POLYGON_TYPES:
            raise source.error(
                f"geometry is a {kind}; expected Polygon or MultiPolygon", record, "geometry"
            )
        try:
            geom = shape(raw)
        except Exception as exc:  # shapely raises several types on malformed coordinates
            raise source.error(f"malformed {kind} coordinates: {exc}", record, "geometry") from None
        if source.to_wgs84 is not None:
            geom = shapely.transform(geom, source.to_wgs84)
    if geom.geom_type not in POLYGON_TYPES:
        raise source.error(
            f"geometry is a {geom.geom_type}; expected Polygon or MultiPolygon", record, "geometry"
        )
    geom = shapely.force_2d(geom)
    if geom.is_empty:
        raise source.error("the geometry is empty", record, "geometry")
    if not geom.is_valid:
        reason = explain_validity(geom)
        # "structure" unions overlapping parts and subtracts holes, as the drawer meant;
        # the default "linework" would drop the overlap of two parts from the site.
        repaired = _polygonal(shapely.make_valid(geom, method="structure", keep_collapsed=False))
        if repaired is None or repaired.is_empty or repaired.area < MIN_AREA_DEG2:
            raise source.error(
                f"invalid polygon ({reason}) has no area left after repair", record, "geometry"
            )
        source.warn(
            f"invalid polygon ({reason}) repaired with make_valid, keeping the polygonal "
            f"parts ({repaired.geom_type})",
            record,
            "geometry",
        )
        geom = repaired
    if geom.area < MIN_AREA_DEG2:
        raise source.error("the polygon has no area (its points are collinear)", record, "geometry")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise source.error(
            f"coordinates {geom.bounds} are outside longitude/latitude range; GeoJSON must "
            "be WGS84 (RFC 7946) unless a 'crs' member says otherwise",
            record,
            "geometry",
        )
    return geom


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    """The polygonal parts of a geometry (make_valid may add lines and points)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [
        part
        for part in shapely.get_parts(geom)
        if isinstance(part, Polygon | MultiPolygon) and not part.is_empty
    ]
    if not parts:
        return None
    union = shapely.union_all(parts)
    return union if isinstance(union, Polygon | MultiPolygon) else _polygonal(union)


def _check_site_ids(source: _Source, permits: gpd.GeoDataFrame, sites: gpd.GeoDataFrame) -> None:
    known = set(sites["site_id"])
    where = sites.attrs.get("source", "the sites")
    for i, row in enumerate(permits.itertuples(index=False)):
        if row.site_id not in known:
            raise source.error(
                f"site_id {row.site_id!r} is not among the {len(known)} sites in {where}",
                f"feature {i} (permit_id={row.permit_id})",
                "site_id",
            )


# --- frames ------------------------------------------------------------------------------


def _frame(rows: list[dict[str, Any]], layer: _Layer) -> gpd.GeoDataFrame:
    data: dict[str, pd.Series] = {}
    for name in layer.columns[:-1]:
        values = [row[name] for row in rows]
        dtype = object if name in layer.date_fields else str
        data[name] = pd.Series(values, dtype=dtype, index=pd.RangeIndex(len(rows)))
    geometry = gpd.GeoSeries([row["geometry"] for row in rows], crs=WGS84)
    return gpd.GeoDataFrame(data, geometry=geometry, crs=WGS84)


def _empty_frame(layer: _Layer) -> gpd.GeoDataFrame:
    frame = _frame([], layer)
    frame.attrs["warnings"] = []
    frame.attrs["source"] = None
    return frame
