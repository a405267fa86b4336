"""Reading and validating sites, permits, zones and the AOI (pipeline.inputs)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from pipeline.errors import InputError
from pipeline.inputs import (
    InputWarning,
    read_aoi,
    read_permits,
    read_sites,
    read_zones,
)

# A 0.01 degree square near Xinyu (Jiangxi), and a point on UTM 49N's central meridian.
SQUARE = [[[114.90, 27.80], [114.91, 27.80], [114.91, 27.81], [114.90, 27.81], [114.90, 27.80]]]
# (500000, 3318785.35) in EPSG:32649 is (111 E, 30 N): k0 * meridian arc of 30 degrees.
UTM_X, UTM_Y = 500_000.0, 3_318_785.35


def polygon(coords: list[Any] = SQUARE, kind: str = "Polygon") -> dict[str, Any]:
    return {"type": kind, "coordinates": coords}


def site(site_id: str = "S01", geometry: Any = None, **props: Any) -> dict[str, Any]:
    properties = {
        "site_id": site_id,
        "name": f"Quarry {site_id}",
        "county": "Yushui",
        "category": "licensed",
        "status": "producing",
        "target": "forest",
        "restoration_start": None,
        **props,
    }
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": polygon() if geometry is None else geometry,
    }


def permit(permit_id: str = "P01", site_id: str = "S01", **props: Any) -> dict[str, Any]:
    properties = {
        "permit_id": permit_id,
        "site_id": site_id,
        "holder": "Xinyu Mining Co.",
        "valid_from": "2019-01-01",
        "valid_to": "2029-12-31",
        **props,
    }
    return {"type": "Feature", "properties": properties, "geometry": polygon()}


def write_geojson(path: Path, features: list[dict[str, Any]], **members: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", **members, "features": features}))
    return path


def message(excinfo: pytest.ExceptionInfo[InputError]) -> str:
    return str(excinfo.value)


@pytest.fixture
def sites_file(tmp_path: Path) -> Path:
    return write_geojson(tmp_path / "sites.geojson", [site("S01"), site("S02")])


# --- sites: the happy path -------------------------------------------------------------


def test_read_sites__valid_file_has_contract_columns_types_and_crs(tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "sites.geojson",
        [
            site("S01", restoration_start="2021-03-15", extra="dropped"),
            site("S02", category="illegal", status="restoring", target="grassland"),
        ],
    )

    sites = read_sites(path)

    assert list(sites.columns) == [
        "site_id", "name", "county", "category", "status", "target",
        "restoration_start", "geometry",
    ]  # fmt: skip
    assert sites.crs.to_epsg() == 4326
    assert list(sites.index) == [0, 1]
    assert list(sites["site_id"]) == ["S01", "S02"]
    assert all(type(v) is str for v in sites["name"])
    assert sites.loc[1, "category"] == "illegal"
    assert sites.loc[0, "restoration_start"] == date(2021, 3, 15)
    assert type(sites.loc[0, "restoration_start"]) is date
    assert sites.loc[1, "restoration_start"] is None
    assert isinstance(sites.geometry[0], Polygon)
    assert sites.geometry[0].bounds == pytest.approx((114.90, 27.80, 114.91, 27.81))
    assert sites.attrs["warnings"] == []


def test_read_sites__numeric_ids_become_text(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [site(7)])  # type: ignore[arg-type]

    assert read_sites(path).loc[0, "site_id"] == "7"


# --- sites: file-level errors -----------------------------------------------------------


def test_read_sites__missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found") as excinfo:
        read_sites(tmp_path / "nope.geojson")

    assert "nope.geojson" in message(excinfo)
    assert excinfo.value.file == str(tmp_path / "nope.geojson")


def test_read_sites__invalid_json_says_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "sites.geojson"
    path.write_text('{"type": "FeatureCollection",\n  "features": [,]}')

    with pytest.raises(InputError) as excinfo:
        read_sites(path)

    assert "sites.geojson" in message(excinfo)
    assert "invalid JSON at line 2, column 16" in message(excinfo)
    assert "Traceback" not in message(excinfo)


def test_read_sites__not_a_feature_collection_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps(site("S01")))

    with pytest.raises(InputError, match="expected a GeoJSON FeatureCollection, found 'Feature'"):
        read_sites(path)


def test_read_sites__empty_file_is_refused(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [])

    with pytest.raises(InputError, match="contains no sites") as excinfo:
        read_sites(path)

    assert "sites.geojson" in message(excinfo)


# --- sites: record-level errors ---------------------------------------------------------


def test_read_sites__feature_without_geometry_names_record_and_field(tmp_path: Path) -> None:
    feature = site("S02")
    feature["geometry"] = None
    path = write_geojson(tmp_path / "sites.geojson", [site("S01"), feature])

    with pytest.raises(InputError, match="no geometry") as excinfo:
        read_sites(path)

    assert excinfo.value.record == "feature 1 (site_id=S02)"
    assert excinfo.value.field == "geometry"
    assert message(excinfo).startswith(
        f"{path}: record feature 1 (site_id=S02): field 'geometry': "
    )


def test_read_sites__point_geometry_is_refused_naming_its_type(tmp_path: Path) -> None:
    point = {"type": "Point", "coordinates": [114.9, 27.8]}
    path = write_geojson(tmp_path / "sites.geojson", [site("S01", geometry=point)])

    with pytest.raises(InputError, match="geometry is a Point; expected Polygon") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "geometry"
    assert excinfo.value.record == "feature 0 (site_id=S01)"


def test_read_sites__missing_required_property_names_the_field(tmp_path: Path) -> None:
    feature = site("S03")
    del feature["properties"]["county"]
    path = write_geojson(tmp_path / "sites.geojson", [site("S01"), site("S02"), feature])

    with pytest.raises(InputError, match="missing required property") as excinfo:
        read_sites(path)

    assert excinfo.value.record == "feature 2 (site_id=S03)"
    assert excinfo.value.field == "county"


def test_read_sites__missing_site_id_names_the_feature_index(tmp_path: Path) -> None:
    feature = site("S02")
    del feature["properties"]["site_id"]
    path = write_geojson(tmp_path / "sites.geojson", [site("S01"), feature])

    with pytest.raises(InputError, match="missing required property") as excinfo:
        read_sites(path)

    assert excinfo.value.record == "feature 1"
    assert excinfo.value.field == "site_id"


def test_read_sites__duplicate_site_id_names_both_records(tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "sites.geojson", [site("S01"), site("S02"), site("S03"), site("S02 ")]
    )

    with pytest.raises(InputError, match="duplicate site_id 'S02'") as excinfo:
        read_sites(path)

    assert excinfo.value.record == "features 1 and 3 (site_id=S02)"
    assert excinfo.value.field == "site_id"


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("category", "legal", "licensed, orphaned, illegal, waste_pile"),
        ("status", "active", "producing, suspended, closed, restoring"),
        ("target", "orchard", "forest, farmland, grassland, landscape"),
    ],
)
def test_read_sites__unknown_vocabulary_lists_the_allowed_values(
    tmp_path: Path, field: str, value: str, allowed: str
) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [site("S04", **{field: value})])

    with pytest.raises(InputError) as excinfo:
        read_sites(path)

    assert excinfo.value.field == field
    assert excinfo.value.record == "feature 0 (site_id=S04)"
    assert f"unknown {field} '{value}'; allowed: {allowed}" in message(excinfo)


@pytest.mark.parametrize("value", ["2021-02-30", "spring 2021", 20210301])
def test_read_sites__invalid_date_names_the_field_and_value(tmp_path: Path, value: Any) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [site("S01", restoration_start=value)])

    with pytest.raises(InputError, match="invalid date") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "restoration_start"
    assert repr(value) in message(excinfo)


# --- sites: repaired with a warning -----------------------------------------------------


def test_read_sites__bow_tie_is_repaired_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bow_tie = [
        [[114.90, 27.80], [114.91, 27.81], [114.91, 27.80], [114.90, 27.81], [114.90, 27.80]]
    ]
    path = write_geojson(tmp_path / "sites.geojson", [site("S05", geometry=polygon(bow_tie))])

    with caplog.at_level(logging.WARNING, logger="pipeline.inputs"):
        sites = read_sites(path)

    geom = sites.geometry[0]
    assert geom.is_valid
    assert isinstance(geom, MultiPolygon)
    assert geom.area == pytest.approx(0.5 * 0.01 * 0.01)  # two triangles, half the square
    [warning] = sites.attrs["warnings"]
    assert isinstance(warning, InputWarning)
    assert (warning.file, warning.record, warning.field) == (
        str(path),
        "feature 0 (site_id=S05)",
        "geometry",
    )
    assert "Self-intersection" in warning.message
    assert "feature 0 (site_id=S05)" in caplog.text
    assert "repaired" in caplog.text


def test_read_sites__overlapping_parts_are_merged_not_cut(tmp_path: Path) -> None:
    west = [[[114.90, 27.80], [114.92, 27.80], [114.92, 27.82], [114.90, 27.82], [114.90, 27.80]]]
    east = [[[114.91, 27.80], [114.93, 27.80], [114.93, 27.82], [114.91, 27.82], [114.91, 27.80]]]
    path = write_geojson(
        tmp_path / "sites.geojson", [site("S08", geometry=polygon([west, east], "MultiPolygon"))]
    )

    sites = read_sites(path)

    assert sites.geometry[0].equals(box(114.90, 27.80, 114.93, 27.82))
    assert sites.attrs["warnings"][0].field == "geometry"


@pytest.mark.parametrize(
    "line_ring",
    [
        [[[114.90, 27.80], [114.92, 27.80], [114.91, 27.80], [114.90, 27.80]]],  # invalid
        [[[114.90, 27.80], [114.91, 27.81], [114.92, 27.82], [114.90, 27.80]]],  # rounding
    ],
)
def test_read_sites__polygon_with_no_area_is_refused(tmp_path: Path, line_ring: list[Any]) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [site("S06", geometry=polygon(line_ring))])

    with pytest.raises(InputError, match="no area") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "geometry"
    assert excinfo.value.record == "feature 0 (site_id=S06)"


def test_read_sites__whitespace_around_ids_is_stripped_with_a_warning(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "sites.geojson", [site("  S07\t")])

    sites = read_sites(path)

    assert sites.loc[0, "site_id"] == "S07"
    [warning] = sites.attrs["warnings"]
    assert warning.field == "site_id"
    assert "stripped whitespace" in warning.message


# --- sites: coordinate reference systems ------------------------------------------------


def test_read_sites__gpkg_in_utm_is_read_back_in_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "sites.gpkg"
    frame = gpd.GeoDataFrame(
        {
            "site_id": ["S01", "S02"],
            "name": ["North pit", "South pit"],
            "county": ["Yushui", "Fenyi"],
            "category": ["licensed", "orphaned"],
            "status": ["producing", "restoring"],
            "target": ["forest", "farmland"],
            "restoration_start": pd.to_datetime([None, "2020-06-01"]),
        },
        geometry=[
            box(UTM_X, UTM_Y, UTM_X + 1000, UTM_Y + 1000),
            box(UTM_X - 1000, UTM_Y - 1000, UTM_X, UTM_Y),
        ],
        crs="EPSG:32649",
    )
    frame.to_file(path, driver="GPKG")

    sites = read_sites(path)

    assert sites.crs.to_epsg() == 4326
    minx, miny, _, _ = sites.geometry[0].bounds
    assert (minx, miny) == pytest.approx((111.0, 30.0), abs=1e-6)
    _, _, maxx, maxy = sites.geometry[1].bounds
    assert (maxx, maxy) == pytest.approx((111.0, 30.0), abs=1e-6)
    assert sites.loc[0, "restoration_start"] is None
    assert sites.loc[1, "restoration_start"] == date(2020, 6, 1)
    assert type(sites.loc[1, "restoration_start"]) is date
    assert list(sites["county"]) == ["Yushui", "Fenyi"]


def test_read_sites__gpkg_without_crs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sites.gpkg"
    frame = gpd.GeoDataFrame(
        {"site_id": ["S01"]}, geometry=[box(UTM_X, UTM_Y, UTM_X + 1000, UTM_Y + 1000)]
    )
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        frame.to_file(path, driver="GPKG")

    with pytest.raises(InputError, match="no CRS") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "crs"
    assert "sites.gpkg" in message(excinfo)


def test_read_sites__unreadable_gpkg_is_refused_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "sites.gpkg"
    path.write_bytes(b"this is not a geopackage")

    with pytest.raises(InputError, match="cannot read the file") as excinfo:
        read_sites(path)

    assert "sites.gpkg" in message(excinfo)
    assert "\n" not in message(excinfo)


def test_read_sites__legacy_geojson_crs_member_is_honoured(tmp_path: Path) -> None:
    utm_square = [
        [[UTM_X, UTM_Y], [UTM_X + 1000, UTM_Y], [UTM_X + 1000, UTM_Y + 1000], [UTM_X, UTM_Y]]
    ]
    path = write_geojson(
        tmp_path / "sites.geojson",
        [site("S01", geometry=polygon(utm_square))],
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32649"}},
    )

    minx, miny, _, _ = read_sites(path).geometry[0].bounds

    assert (minx, miny) == pytest.approx((111.0, 30.0), abs=1e-6)


def test_read_sites__projected_coordinates_without_crs_are_refused(tmp_path: Path) -> None:
    utm_square = [
        [[UTM_X, UTM_Y], [UTM_X + 1000, UTM_Y], [UTM_X + 1000, UTM_Y + 1000], [UTM_X, UTM_Y]]
    ]
    path = write_geojson(tmp_path / "sites.geojson", [site("S01", geometry=polygon(utm_square))])

    with pytest.raises(InputError, match="outside longitude/latitude range") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "geometry"


# --- permits ----------------------------------------------------------------------------


def test_read_permits__valid_file_has_dates_and_checks_sites(
    tmp_path: Path, sites_file: Path
) -> None:
    path = write_geojson(
        tmp_path / "permits.geojson",
        [permit("P01", "S01"), permit("P02", "S02", valid_to=None)],
    )

    permits = read_permits(path, read_sites(sites_file))

    assert list(permits.columns) == [
        "permit_id", "site_id", "holder", "valid_from", "valid_to", "geometry",
    ]  # fmt: skip
    assert permits.crs.to_epsg() == 4326
    assert permits.loc[0, "valid_from"] == date(2019, 1, 1)
    assert permits.loc[0, "valid_to"] == date(2029, 12, 31)
    assert permits.loc[1, "valid_to"] is None


def test_read_permits__none_gives_an_empty_frame_with_the_columns() -> None:
    permits = read_permits(None)

    assert len(permits) == 0
    assert list(permits.columns) == [
        "permit_id", "site_id", "holder", "valid_from", "valid_to", "geometry",
    ]  # fmt: skip
    assert permits.crs.to_epsg() == 4326
    assert permits.attrs["warnings"] == []


def test_read_permits__unknown_site_is_refused(tmp_path: Path, sites_file: Path) -> None:
    path = write_geojson(tmp_path / "permits.geojson", [permit("P01", "S01"), permit("P02", "S99")])

    with pytest.raises(InputError, match="'S99' is not among the 2 sites") as excinfo:
        read_permits(path, read_sites(sites_file))

    assert excinfo.value.record == "feature 1 (permit_id=P02)"
    assert excinfo.value.field == "site_id"
    assert "permits.geojson" in message(excinfo)
    assert "sites.geojson" in message(excinfo)


def test_read_permits__unknown_site_is_accepted_without_sites(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "permits.geojson", [permit("P02", "S99")])

    assert list(read_permits(path)["site_id"]) == ["S99"]


def test_read_permits__valid_from_after_valid_to_is_refused(tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "permits.geojson",
        [permit("P03", valid_from="2024-05-01", valid_to="2023-05-01")],
    )

    with pytest.raises(InputError, match="2024-05-01 is after valid_to 2023-05-01") as excinfo:
        read_permits(path)

    assert excinfo.value.record == "feature 0 (permit_id=P03)"
    assert excinfo.value.field == "valid_from"


def test_read_permits__invalid_valid_to_names_field_and_value(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "permits.geojson", [permit("P04", valid_to="2025-13-01")])

    with pytest.raises(InputError, match="invalid date '2025-13-01'") as excinfo:
        read_permits(path)

    assert excinfo.value.field == "valid_to"
    assert excinfo.value.record == "feature 0 (permit_id=P04)"


def test_read_permits__duplicate_permit_id_names_both_records(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "permits.geojson", [permit("P01"), permit("P01")])

    with pytest.raises(InputError, match="duplicate permit_id 'P01'") as excinfo:
        read_permits(path)

    assert excinfo.value.record == "features 0 and 1 (permit_id=P01)"


# --- zones and AOI ----------------------------------------------------------------------


def test_read_zones__any_kind_string_is_accepted(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"zone_id": "Z1", "kind": kind}, "geometry": polygon()}
        for kind in ("nature_reserve", "drinking_water_source")
    ]
    features[1]["properties"]["zone_id"] = "Z2"
    path = write_geojson(tmp_path / "zones.geojson", features)

    zones = read_zones(path)

    assert list(zones.columns) == ["zone_id", "kind", "geometry"]
    assert list(zones["kind"]) == ["nature_reserve", "drinking_water_source"]
    assert zones.crs.to_epsg() == 4326


def test_read_zones__none_gives_an_empty_frame() -> None:
    zones = read_zones(None)

    assert len(zones) == 0
    assert list(zones.columns) == ["zone_id", "kind", "geometry"]


def test_read_aoi__is_the_union_of_all_polygons_in_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "aoi.gpkg"
    gpd.GeoDataFrame(
        geometry=[
            box(UTM_X, UTM_Y, UTM_X + 1000, UTM_Y + 1000),
            box(UTM_X + 1000, UTM_Y, UTM_X + 2000, UTM_Y + 1000),
        ],
        crs="EPSG:32649",
    ).to_file(path, driver="GPKG")

    aoi = read_aoi(path)

    assert isinstance(aoi, Polygon)
    # Lines of constant northing bend south away from the central meridian: 30 N is
    # the corner on the meridian, the eastern corner lies a little lower.
    assert aoi.bounds[:2] == pytest.approx((111.0, 30.0), abs=1e-5)
    assert aoi.bounds[2] > 111.0 + 0.015  # 2 km east at 30 N is about 0.0207 degrees


# --- collecting every error (minewatch validate) -----------------------------------------


def test_read_sites__with_an_error_list_keeps_every_bad_record_and_reads_on(
    tmp_path: Path,
) -> None:
    no_geometry = site("S03")
    no_geometry["geometry"] = None
    path = write_geojson(
        tmp_path / "sites.geojson",
        [
            site("S01"),
            site("S02", category="quarry"),
            no_geometry,
            site("S01"),
            "not a feature",  # type: ignore[list-item]
            site("S05", restoration_start="someday"),
            site("S06"),
        ],
    )
    errors: list[InputError] = []

    sites = read_sites(path, errors=errors)

    assert list(sites["site_id"]) == ["S01", "S06"]
    assert sites.attrs["records"] == ["feature 0 (site_id=S01)", "feature 6 (site_id=S06)"]
    assert [(e.record, e.field) for e in errors] == [
        ("feature 4", None),
        ("feature 1 (site_id=S02)", "category"),
        ("feature 2 (site_id=S03)", "geometry"),
        ("features 0 and 3 (site_id=S01)", "site_id"),
        ("feature 5 (site_id=S05)", "restoration_start"),
    ]
    assert all(e.file == str(path) for e in errors)


def test_read_sites__without_an_error_list_raises_the_first(tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "sites.geojson", [site("S01", target="orchard"), site("S02", status="x")]
    )

    with pytest.raises(InputError) as excinfo:
        read_sites(path)

    assert (excinfo.value.record, excinfo.value.field) == ("feature 0 (site_id=S01)", "target")


def test_read_sites__file_level_errors_raise_even_when_collecting(tmp_path: Path) -> None:
    errors: list[InputError] = []

    with pytest.raises(InputError, match="file not found"):
        read_sites(tmp_path / "none.geojson", errors=errors)

    assert errors == []


def test_read_permits__collects_date_order_and_unknown_sites(
    tmp_path: Path, sites_file: Path
) -> None:
    path = write_geojson(
        tmp_path / "permits.geojson",
        [
            permit("P01", "S99"),
            permit("P02", valid_from="2030-01-01"),
            permit("P02"),
            permit("P04", "S02"),
        ],
    )
    errors: list[InputError] = []

    permits = read_permits(path, read_sites(sites_file), errors=errors)

    assert list(permits["permit_id"]) == ["P01", "P02", "P04"]
    assert [(e.record, e.field) for e in errors] == [
        ("features 1 and 2 (permit_id=P02)", "permit_id"),
        ("feature 1 (permit_id=P02)", "valid_from"),
        ("feature 0 (permit_id=P01)", "site_id"),
    ]


def test_read_sites__non_finite_coordinates_are_refused(tmp_path: Path) -> None:
    ring = [[[114.90, 27.80], [114.91, 27.80], [1e400, 27.81], [114.90, 27.80]]]
    path = tmp_path / "sites.geojson"
    text = json.dumps({"type": "FeatureCollection", "features": [site("S01", polygon(ring))]})
    path.write_text(text.replace("Infinity", "1e400"))

    with pytest.raises(InputError, match="non-finite") as excinfo:
        read_sites(path)

    assert excinfo.value.field == "geometry"


def test_input_warning__manifest_form_names_file_record_and_field() -> None:
    warning = InputWarning("sites.geojson", "feature 2 (site_id=S03)", "geometry", "repaired")

    assert warning.as_dict() == {
        "file": "sites.geojson",
        "record": "feature 2 (site_id=S03)",
        "field": "geometry",
        "message": "repaired",
    }
    assert str(warning) == (
        "sites.geojson: record feature 2 (site_id=S03): field 'geometry': repaired"
    )
