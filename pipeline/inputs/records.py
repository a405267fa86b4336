"""One record at a time: the layer schemas, the file being read, and field checks.

A record is named ``feature 3 (site_id=S04)``, where 3 is the 0-based position of the
feature in the file (``.features[3]`` in GeoJSON, the fourth row of an OGR layer).
Defects we can repair without guessing (an invalid polygon that ``shapely.make_valid``
fixes, whitespace around ids) are repaired and reported as ``InputWarning``s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from pipeline.errors import InputError
from pipeline.schema import CATEGORIES, STATUSES, TARGETS

logger = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
POLYGON_TYPES = ("Polygon", "MultiPolygon")
# Polygons smaller than this (in square degrees, about 0.01 m2) are degenerate: a ring
# whose points are collinear up to floating-point rounding, not a site anyone drew.
MIN_AREA_DEG2 = 1e-12


@dataclass(frozen=True)
class InputWarning:
    """A defect in an input that was repaired or tolerated rather than refused."""

    file: str | None
    """The file, as the caller named it."""
    record: str | None
    """``feature 3 (site_id=S04)``, ``item S2A_...``, or None for the file as a whole."""
    field: str | None
    """The property (or ``geometry``, ``crs``, an asset key) concerned, if any."""
    message: str
    """What was wrong and what was done about it."""

    def __str__(self) -> str:
        parts = [self.file] if self.file is not None else []
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ": ".join([*parts, self.message])

    def as_dict(self) -> dict[str, str | None]:
        """The manifest's form: ``{file, record, field, message}``."""
        return {
            "file": self.file,
            "record": self.record,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class Layer:
    """What one kind of input file must hold."""

    noun: str
    """``site``, ``permit`` or ``zone``: used in messages."""
    id_field: str
    """The property that must be unique."""
    text_fields: tuple[str, ...]
    """Required, non-empty text (the id first)."""
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Required text from a closed list."""
    date_fields: tuple[str, ...] = ()
    """Optional ISO dates: absent, null or "" read as None."""

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.text_fields, *self.vocabularies, *self.date_fields, "geometry")


SITES = Layer(
    "site",
    "site_id",
    ("site_id", "name", "county"),
    {"category": CATEGORIES, "status": STATUSES, "target": TARGETS},
    ("restoration_start",),
)
PERMITS = Layer(
    "permit", "permit_id", ("permit_id", "site_id", "holder"), {}, ("valid_from", "valid_to")
)
ZONES = Layer("zone", "zone_id", ("zone_id", "kind"))
_ID_FIELDS = ("site_id", "permit_id", "zone_id")


@dataclass
class Feature:
    """One record as read from the file, before validation."""

    index: int
    properties: Mapping[str, Any]
    geometry: Mapping[str, Any] | BaseGeometry | None  # GeoJSON dict, or shapely from OGR


@dataclass
class Source:
    """One input file being read: its name for messages, its warnings, its CRS.

    With ``errors`` set to a list, record-level errors are kept there (and the record
    left out) instead of raised, so a check can report every problem at once.
    """

    path: Path
    warnings: list[InputWarning] = field(default_factory=list)
    errors: list[InputError] | None = None
    to_wgs84: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def file(self) -> str:
        return str(self.path)

    def error(
        self, message: str, record: str | None = None, field: str | None = None
    ) -> InputError:
        return InputError(message, file=self.file, record=record, field=field)

    def reject(self, exc: InputError) -> None:
        """Raise ``exc``, or keep it when collecting errors (the caller skips the record)."""
        if self.errors is None:
            raise exc
        self.errors.append(exc)

    def warn(self, message: str, record: str | None = None, field: str | None = None) -> None:
        warning = InputWarning(self.file, record, field, message)
        logger.warning("%s", warning)
        self.warnings.append(warning)


def record_label(layer: Layer, feature: Feature) -> str:
    raw_id = feature.properties.get(layer.id_field)
    shown = to_text(raw_id) if not is_null(raw_id) else None
    if shown:
        return f"feature {feature.index} ({layer.id_field}={shown})"
    return f"feature {feature.index}"


def read_record(source: Source, feature: Feature, layer: Layer) -> dict[str, Any]:
    """One validated row of ``layer.columns``; raises ``InputError`` at the first defect."""
    props = feature.properties
    record = record_label(layer, feature)
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
    row["geometry"] = read_polygon(source, feature.geometry, record)
    return row


def _required_text(source: Source, props: Mapping[str, Any], name: str, record: str) -> str:
    if name not in props:
        raise source.error("missing required property", record, name)
    value = props[name]
    if is_null(value):
        raise source.error("required property is null", record, name)
    text = to_text(value)
    if text is None:
        raise source.error(f"expected text, found {type(value).__name__} {value!r}", record, name)
    if not text:
        raise source.error("required property is empty", record, name)
    if name in _ID_FIELDS and isinstance(value, str) and text != value:
        source.warn(f"stripped whitespace around {value!r}", record, name)
    return text


def to_text(value: Any) -> str | None:
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


def _optional_date(source: Source, value: Any, record: str, name: str) -> date | None:
    """ISO 8601 date (or date-time, whose date is kept); absent, null or "" is None."""
    if is_null(value):
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


def is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def read_polygon(
    source: Source, raw: Mapping[str, Any] | BaseGeometry | None, record: str
) -> Polygon | MultiPolygon:
    """A valid 2-D (multi)polygon in WGS84; an invalid one is repaired with a warning."""
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
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise source.error("the geometry has non-finite coordinates", record, "geometry")
    if not geom.is_valid:
        reason = explain_validity(geom)
        # "structure" unions overlapping parts and subtracts holes, as the drawer meant;
        # the default "linework" would drop the overlap of two parts from the site.
        repaired = polygonal(shapely.make_valid(geom, method="structure", keep_collapsed=False))
        if repaired is not None and not repaired.is_valid:
            # Parts that share an edge after the repair (rounding): dissolve them.
            repaired = polygonal(shapely.union_all(shapely.get_parts(repaired)))
        if (
            repaired is None
            or repaired.is_empty
            or not repaired.is_valid
            or repaired.area < MIN_AREA_DEG2
        ):
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


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
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
    return union if isinstance(union, Polygon | MultiPolygon) else polygonal(union)


def first_names(names: Sequence[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: the first ``shown`` names of a list a warning names."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")
