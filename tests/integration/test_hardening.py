"""Every bad input gets a clear answer: the table of cases of issue 9.

Two tables, each one parametrised test:

- ``REFUSED``: inputs a run must refuse with exit status 2 and one line on stderr
  naming the file, the record and the field, leaving ``--out`` as it was.
- ``SURVIVED``: defects a run repairs or tolerates: it finishes, and
  ``manifest.json`` carries a warning naming what was wrong and what was done.

The world is small and real: a STAC catalog of COGs (40 x 60 pixels at 10 m, UTM 49N),
sites, permits and zones as GeoJSON, configs as YAML. ``test_validate.py`` runs the
``REFUSED`` table through ``minewatch validate`` as well.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping

from pipeline import schema
from pipeline.cli import main
from tests.conftest import EPSG, ORIGIN, uniform_bands, write_tiny_catalog

ROWS, COLS = 40, 60  # the catalog's 10 m grid: x 640000..640600, y 3734600..3735000
DATES = [date(2022, 5, 1), date(2022, 5, 11), date(2022, 5, 21), date(2022, 5, 31)]
TO_WGS84 = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)


def utm_box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A box given in UTM 49N metres, returned in WGS84."""
    ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    return Polygon([TO_WGS84.transform(x, y) for x, y in ring])


SITE_A = utm_box(640_100, 3_734_700, 640_300, 3_734_900)
SITE_B = utm_box(640_350, 3_734_650, 640_500, 3_734_800)
FAR_AWAY = utm_box(700_000, 3_800_000, 700_200, 3_800_200)  # 60 km north-east


def site_feature(site_id: str, geometry: Any = SITE_A, **props: Any) -> dict[str, Any]:
    properties = {
        "site_id": site_id,
        "name": f"Quarry {site_id}",
        "county": "Lushan",
        "category": "orphaned",
        "status": "restoring",
        "target": "forest",
        "restoration_start": "2020-04-01",
        **props,
    }
    geom = mapping(geometry) if hasattr(geometry, "geom_type") else geometry
    return {"type": "Feature", "properties": properties, "geometry": geom}


def permit_feature(permit_id: str, site_id: str = "S01", **props: Any) -> dict[str, Any]:
    properties = {
        "permit_id": permit_id,
        "site_id": site_id,
        "holder": "Lushan Stone Co.",
        "valid_from": "2019-01-01",
        "valid_to": "2029-12-31",
        **props,
    }
    return {"type": "Feature", "properties": properties, "geometry": mapping(SITE_A)}


def write_features(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def add_items(
    root: Path, name: str, values: dict[str, np.ndarray], dates: list[date], **kw
) -> None:
    """Write items into ``root/name`` (their own small catalog) and link them from ``root``."""
    sub = write_tiny_catalog(root / name, values, dates, **kw)
    links = json.loads(sub.read_text())["links"]
    catalog = json.loads((root / "catalog.json").read_text())
    catalog["links"] += [
        {**link, "href": f"./{name}/{link['href'][2:]}"} for link in links if link["rel"] == "item"
    ]
    (root / "catalog.json").write_text(json.dumps(catalog))


def asset(catalog: Path, day: date, band: str) -> Path:
    return catalog.parent / "items" / f"S2_TEST_{day:%Y%m%d}" / f"{band}.tif"


@dataclass
class World:
    """Paths of a valid set of inputs; a case copies and breaks one of them."""

    catalog: Path
    sites: Path
    permits: Path
    zones: Path

    def args(self, **change: str | None) -> list[str]:
        """Run options; ``change`` replaces (or with None drops) one, ``sites="..."``."""
        options: dict[str, str | None] = {
            "catalog": str(self.catalog),
            "sites": str(self.sites),
            "permits": str(self.permits),
            "zones": str(self.zones),
        }
        options.update(change)
        out = []
        for key, value in options.items():
            if value is not None:
                out += [f"--{key}", value]
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def build_world(root: Path) -> World:
    """A valid catalog (4 clear dates), two sites, a permit and a zone under ``root``."""
    catalog = write_tiny_catalog(root / "catalog", uniform_bands(len(DATES), ROWS, COLS), DATES)
    sites = write_features(
        root / "sites.geojson", [site_feature("S01"), site_feature("S02", SITE_B)]
    )
    permits = write_features(root / "permits.geojson", [permit_feature("P01")])
    zones = write_features(
        root / "zones.geojson",
        [
            {
                "type": "Feature",
                "properties": {"zone_id": "Z1", "kind": "river_buffer"},
                "geometry": mapping(SITE_B),
            }
        ],
    )
    return World(catalog, sites, permits, zones)


# --- refused: exit 2, one line naming file, record and field -----------------------------


@dataclass(frozen=True)
class Refused:
    """One bad input: how to make it, and what the one line on stderr must name."""

    name: str
    make: Callable[[World, Path], list[str]]
    """Returns the run options (without --out), given the world and a scratch folder."""
    file: str
    """The named file: a world attribute (``sites``...), or a file name in the scratch folder."""
    record: str | None
    field: str | None
    says: str
    """Words the message must contain."""


def _sites(world: World, tmp: Path, *features: dict[str, Any]) -> list[str]:
    return world.args(sites=str(write_features(tmp / "bad_sites.geojson", list(features))))


def _config(world: World, tmp: Path, text: str, **change: str) -> list[str]:
    path = tmp / "bad_config.yaml"
    path.write_text(text)
    return [*world.args(**change), "--config", str(path)]


def _no_geometry(world: World, tmp: Path) -> list[str]:
    feature = site_feature("S02")
    feature["geometry"] = None
    return _sites(world, tmp, site_feature("S01"), feature)


def _gpkg_without_crs(world: World, tmp: Path) -> list[str]:
    path = tmp / "bad_sites.gpkg"
    frame = gpd.GeoDataFrame(
        {"site_id": ["S01"], "name": ["Quarry"], "county": ["Lushan"]},
        geometry=[box(640_100, 3_734_700, 640_300, 3_734_900)],
    )
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        frame.to_file(path, driver="GPKG")
    return world.args(sites=str(path))


def _garbage_gpkg(world: World, tmp: Path) -> list[str]:
    path = tmp / "bad_sites.gpkg"
    path.write_bytes(b"SQLite format 3\x00 but nothing after it")
    return world.args(sites=str(path))


def _not_utf8(world: World, tmp: Path) -> list[str]:
    path = tmp / "bad_sites.geojson"
    path.write_bytes(json.dumps({"type": "FeatureCollection"}).encode()[:-1] + b"\xff}")
    return world.args(sites=str(path))


def _empty_catalog(world: World, tmp: Path) -> list[str]:
    path = tmp / "bad_catalog.json"
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "empty", "description": "none"}
    path.write_text(json.dumps({**catalog, "links": []}))
    return world.args(catalog=str(path))


def _catalog_not_json(world: World, tmp: Path) -> list[str]:
    path = tmp / "bad_catalog.json"
    path.write_text('{"type": "Catalog", "links": [')
    return world.args(catalog=str(path))


def _permits(world: World, tmp: Path, *features: dict[str, Any]) -> list[str]:
    return world.args(permits=str(write_features(tmp / "bad_permits.geojson", list(features))))


REFUSED = [
    Refused(
        "missing_sites_file",
        lambda w, t: w.args(sites=str(t / "bad_sites.geojson")),
        "bad_sites.geojson",
        None,
        None,
        "file not found",
    ),
    Refused("unreadable_gpkg", _garbage_gpkg, "bad_sites.gpkg", None, None, "cannot read"),
    Refused("sites_not_utf8", _not_utf8, "bad_sites.geojson", None, None, "not UTF-8"),
    Refused(
        "invalid_json",
        lambda w, t: world_with_text(
            w, t, "sites", '{"type": "FeatureCollection",\n "features": ['
        ),
        "bad_sites.geojson",
        None,
        None,
        "invalid JSON at line 2",
    ),
    Refused(
        "invalid_yaml",
        lambda w, t: _config(w, t, "detection:\n  min_mapping_unit_ha: [0.1\n"),
        "bad_config.yaml",
        "line 3",
        None,
        "invalid YAML",
    ),
    Refused(
        "missing_config_file",
        lambda w, t: [*w.args(), "--config", str(t / "bad_config.yaml")],
        "bad_config.yaml",
        None,
        None,
        "file not found",
    ),
    Refused(
        "unknown_config_key",
        lambda w, t: _config(w, t, "detection:\n  min_maping_unit_ha: 0.2\n"),
        "bad_config.yaml",
        None,
        "detection.min_maping_unit_ha",
        "unknown config key",
    ),
    Refused(
        "config_value_wrong_type",
        lambda w, t: _config(w, t, "grid:\n  chunk_size: large\n"),
        "bad_config.yaml",
        None,
        "grid.chunk_size",
        "valid integer",
    ),
    Refused(
        "config_value_out_of_range",
        lambda w, t: _config(w, t, "surface:\n  vegetated_ndvi_min: 1.5\n"),
        "bad_config.yaml",
        None,
        "surface.vegetated_ndvi_min",
        "less than or equal to 1",
    ),
    Refused(
        "config_section_not_a_mapping",
        lambda w, t: _config(w, t, "masking: 3\n"),
        "bad_config.yaml",
        None,
        "masking",
        "valid dictionary",
    ),
    Refused(
        "duplicate_site_id",
        lambda w, t: _sites(w, t, site_feature("S01"), site_feature("S01", SITE_B)),
        "bad_sites.geojson",
        "features 0 and 1 (site_id=S01)",
        "site_id",
        "duplicate site_id",
    ),
    Refused(
        "duplicate_permit_id",
        lambda w, t: _permits(w, t, permit_feature("P01"), permit_feature("P01")),
        "bad_permits.geojson",
        "features 0 and 1 (permit_id=P01)",
        "permit_id",
        "duplicate permit_id",
    ),
    Refused(
        "unknown_category",
        lambda w, t: _sites(w, t, site_feature("S01", category="quarry")),
        "bad_sites.geojson",
        "feature 0 (site_id=S01)",
        "category",
        "unknown category 'quarry'",
    ),
    Refused(
        "unknown_status",
        lambda w, t: _sites(w, t, site_feature("S01"), site_feature("S02", status="active")),
        "bad_sites.geojson",
        "feature 1 (site_id=S02)",
        "status",
        "unknown status 'active'",
    ),
    Refused(
        "unknown_target",
        lambda w, t: _sites(w, t, site_feature("S01", target="orchard")),
        "bad_sites.geojson",
        "feature 0 (site_id=S01)",
        "target",
        "unknown target 'orchard'",
    ),
    Refused(
        "missing_property",
        lambda w, t: _sites(w, t, site_feature("S01", county=None)),
        "bad_sites.geojson",
        "feature 0 (site_id=S01)",
        "county",
        "null",
    ),
    Refused(
        "feature_without_geometry",
        _no_geometry,
        "bad_sites.geojson",
        "feature 1 (site_id=S02)",
        "geometry",
        "no geometry",
    ),
    Refused(
        "non_polygon_geometry",
        lambda w, t: _sites(
            w,
            t,
            site_feature(
                "S01", {"type": "LineString", "coordinates": [[112.5, 33.7], [112.51, 33.71]]}
            ),
        ),
        "bad_sites.geojson",
        "feature 0 (site_id=S01)",
        "geometry",
        "geometry is a LineString",
    ),
    Refused("file_without_crs", _gpkg_without_crs, "bad_sites.gpkg", None, "crs", "no CRS"),
    Refused(
        "projected_geojson_without_crs",
        lambda w, t: _sites(w, t, site_feature("S01", box(640_100, 3_734_700, 640_300, 3_734_900))),
        "bad_sites.geojson",
        "feature 0 (site_id=S01)",
        "geometry",
        "outside longitude/latitude range",
    ),
    Refused(
        "period_start_after_end",
        lambda w, t: [*w.args(), "--start", "2022-06-01", "--end", "2022-05-01"],
        "command line",
        None,
        "period",
        "is after end",
    ),
    Refused(
        "permit_valid_from_after_valid_to",
        lambda w, t: _permits(
            w, t, permit_feature("P01", valid_from="2025-01-01", valid_to="2020-01-01")
        ),
        "bad_permits.geojson",
        "feature 0 (permit_id=P01)",
        "valid_from",
        "is after valid_to",
    ),
    Refused(
        "permit_of_unknown_site",
        lambda w, t: _permits(w, t, permit_feature("P01", site_id="S99")),
        "bad_permits.geojson",
        "feature 0 (permit_id=P01)",
        "site_id",
        "'S99' is not among the 2 sites",
    ),
    Refused("empty_catalog", _empty_catalog, "bad_catalog.json", None, "items", "no items"),
    Refused(
        "catalog_not_json", _catalog_not_json, "bad_catalog.json", None, None, "not a readable"
    ),
    Refused(
        "missing_catalog",
        lambda w, t: w.args(catalog=str(t / "bad_catalog.json")),
        "bad_catalog.json",
        None,
        None,
        "catalog not found",
    ),
    Refused(
        "no_acquisition_in_period",
        lambda w, t: [*w.args(), "--start", "2023-01-01"],
        "catalog",
        None,
        "period",
        "no acquisition",
    ),
    Refused(
        "no_site_overlaps_the_imagery",
        lambda w, t: _sites(w, t, site_feature("S01", FAR_AWAY)),
        "bad_sites.geojson",
        None,
        "geometry",
        "no site overlaps the imagery",
    ),
]


def world_with_text(world: World, tmp: Path, which: str, text: str) -> list[str]:
    path = tmp / f"bad_{which}.geojson"
    path.write_text(text)
    return world.args(**{which: str(path)})


def expected_file(case: Refused, world: World, tmp: Path) -> str:
    if hasattr(world, case.file):
        return str(getattr(world, case.file))
    if case.file == "command line":
        return case.file
    return str(tmp / case.file)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_run__bad_input_exits_2_naming_file_record_and_field(
    case: Refused, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = case.make(world, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / schema.MANIFEST_FILE).write_text('{"run_id": "an earlier run"}\n')
    before = _snapshot(out)

    assert main(["run", "--out", str(out), *args]) == 2

    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("minewatch:")]
    assert len(lines) == 1, err  # one message; log lines aside
    line = lines[0]
    assert line.startswith(f"minewatch: error: {expected_file(case, world, tmp_path)}: "), line
    if case.record is not None:
        assert f"record {case.record}" in line
    if case.field is not None:
        assert f"field '{case.field}'" in line
    assert case.says in line
    assert _snapshot(out) == before  # nothing in --out changed


# --- survived: the run finishes, manifest.json says what was wrong -----------------------


SURVIVED_DATES = {
    "clean": date(2022, 5, 1),
    "all_cloud": date(2022, 5, 11),
    "corrupt_asset": date(2022, 5, 21),
    "truncated_asset": date(2022, 5, 31),
    "other_crs": date(2022, 6, 10),
    "other_resolution": date(2022, 6, 20),
    "clean_again": date(2022, 6, 30),
}
BOW_TIE = [
    TO_WGS84.transform(x, y)
    for x, y in [
        (640_350, 3_734_650),
        (640_500, 3_734_800),
        (640_500, 3_734_650),
        (640_350, 3_734_800),
        (640_350, 3_734_650),
    ]
]


def _truncate(path: Path) -> None:
    """Cut a GeoTIFF one byte into its last block: the header still opens."""
    with rasterio.open(path) as src:
        bh, bw = src.block_shapes[0]
        last = (-(-src.width // bw) - 1, -(-src.height // bh) - 1)
        offset = int(src.get_tag_item(f"BLOCK_OFFSET_{last[0]}_{last[1]}", "TIFF", bidx=1))
    with open(path, "r+b") as fh:
        fh.truncate(offset + 1)


@pytest.fixture(scope="module")
def defective_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run over a world with every tolerated defect, each on its own date or site."""
    root = tmp_path_factory.mktemp("defective")
    main_dates = [
        d for k, d in SURVIVED_DATES.items() if k not in ("other_crs", "other_resolution")
    ]
    values = uniform_bands(len(main_dates), ROWS, COLS)
    rng = np.random.default_rng(9)
    for band in ("red", "nir"):  # texture, so a block compresses to more than a few bytes
        values[band] = values[band] * rng.uniform(0.9, 1.1, values[band].shape)
    values["scl"][main_dates.index(SURVIVED_DATES["all_cloud"])] = 9  # cloud high
    catalog = write_tiny_catalog(root / "catalog", values, main_dates)
    asset(catalog, SURVIVED_DATES["corrupt_asset"], "red").write_bytes(b"not a GeoTIFF at all")
    _truncate(asset(catalog, SURVIVED_DATES["truncated_asset"], "nir"))

    to_utm50 = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:32650", always_xy=True)
    add_items(
        root / "catalog",
        "utm50",
        uniform_bands(1, ROWS, COLS),
        [SURVIVED_DATES["other_crs"]],
        epsg=32650,
        origin=to_utm50.transform(*ORIGIN),
    )
    coarse = uniform_bands(1, ROWS, COLS)
    coarse["red"] = coarse["red"][:, ::2, ::2]  # red delivered at 20 m
    add_items(root / "catalog", "coarse", coarse, [SURVIVED_DATES["other_resolution"]])

    sites = write_features(
        root / "sites.geojson",
        [
            site_feature("S01"),
            site_feature("S02", {"type": "Polygon", "coordinates": [BOW_TIE]}),
            site_feature("S03", utm_box(640_020, 3_734_620, 640_040, 3_734_640)),  # 400 m2
            site_feature("S04", utm_box(640_500, 3_734_700, 640_700, 3_734_800)),  # half out
        ],
    )
    out = root / "out"
    assert main(["run", "--out", str(out), "--catalog", str(catalog), "--sites", str(sites)]) == 0
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    timeseries = pd.read_parquet(out / schema.TIMESERIES_FILE)
    return {"manifest": manifest, "timeseries": timeseries, "sites": str(sites)}


def _warnings(run: dict[str, Any], record: str, field: str | None = None) -> list[dict]:
    return [
        w
        for w in run["manifest"]["warnings"]
        if record in (w["record"] or "") and (field is None or w["field"] == field)
    ]


def _self_intersecting(run: dict[str, Any]) -> None:
    [w] = _warnings(run, "site_id=S02", "geometry")
    assert w["file"] == run["sites"]
    assert "Self-intersection" in w["message"] and "repaired" in w["message"]
    s02 = run["timeseries"][run["timeseries"]["site_id"] == "S02"]
    assert (s02["n_pixels"] > 0).all()  # the repaired site is measured


def _sliver(run: dict[str, Any]) -> None:
    [w] = _warnings(run, "site_id=S03", "geometry")
    assert "below the minimum mapping unit" in w["message"]
    assert "400 m2" in w["message"]


def _partly_outside(run: dict[str, Any]) -> None:
    coverage = run["manifest"]["zonal_statistics"]["coverage"]
    assert 0.4 < coverage["S04"] < 0.8
    assert coverage["S01"] == 1.0
    [w] = _warnings(run, "S04", "geometry")
    assert "inside the imagery" in w["message"]


def _skipped(run: dict[str, Any], key: str, band: str, says: str) -> None:
    day = SURVIVED_DATES[key]
    item = f"S2_TEST_{day:%Y%m%d}"
    [w] = _warnings(run, f"item {item}", f"assets.{band}")
    assert says in w["message"] and f"acquisition {day} skipped" in w["message"]
    assert item not in run["manifest"]["inputs"]["items"]
    assert day not in set(run["timeseries"]["date"].dt.date)


def _all_cloud(run: dict[str, Any]) -> None:
    day = SURVIVED_DATES["all_cloud"]
    [w] = _warnings(run, f"S2_TEST_{day:%Y%m%d}", "scl")
    assert "no clear pixel over any site" in w["message"]
    rows = run["timeseries"][run["timeseries"]["date"].dt.date == day]
    assert len(rows) == 4 and (rows["valid_fraction"] == 0).all()
    assert rows["ndvi_mean"].isna().all()


def _other_crs(run: dict[str, Any]) -> None:
    day = SURVIVED_DATES["other_crs"]
    [w] = _warnings(run, f"S2_TEST_{day:%Y%m%d}", "proj:epsg")
    assert "EPSG:32650" in w["message"] and "warped" in w["message"]
    assert run["manifest"]["grid"]["crs"] == f"EPSG:{EPSG}"
    s01 = run["timeseries"][
        (run["timeseries"]["site_id"] == "S01") & (run["timeseries"]["date"].dt.date == day)
    ]
    assert s01["valid_fraction"].item() == 1.0
    assert s01["ndvi_mean"].item() == pytest.approx((0.40 - 0.04) / (0.40 + 0.04), abs=1e-3)


def _other_resolution(run: dict[str, Any]) -> None:
    day = SURVIVED_DATES["other_resolution"]
    [w] = _warnings(run, f"S2_TEST_{day:%Y%m%d}", "proj:transform")
    assert "red 20 m" in w["message"] and "resampled" in w["message"]
    s01 = run["timeseries"][
        (run["timeseries"]["site_id"] == "S01") & (run["timeseries"]["date"].dt.date == day)
    ]
    assert s01["ndvi_mean"].item() == pytest.approx((0.40 - 0.04) / (0.40 + 0.04), abs=1e-3)


@dataclass(frozen=True)
class Survived:
    name: str
    check: Callable[[dict[str, Any]], None]
    behaviour: str = field(default="")


SURVIVED = [
    Survived("self_intersecting_polygon", _self_intersecting, "repaired (make_valid)"),
    Survived("sliver_below_mapping_unit", _sliver, "kept, warned"),
    Survived("site_partly_outside_imagery", _partly_outside, "covered part, coverage reported"),
    Survived(
        "corrupt_asset",
        lambda run: _skipped(run, "corrupt_asset", "red", "cannot be opened"),
        "scene skipped and named",
    ),
    Survived(
        "truncated_asset",
        lambda run: _skipped(run, "truncated_asset", "nir", "truncated"),
        "scene skipped and named",
    ),
    Survived("all_cloud_scene", _all_cloud, "kept with valid_fraction 0, warned"),
    Survived("asset_in_another_crs", _other_crs, "warped onto the grid, warned"),
    Survived("asset_at_another_resolution", _other_resolution, "resampled, warned"),
]


@pytest.mark.parametrize("case", SURVIVED, ids=[c.name for c in SURVIVED])
def test_run__tolerated_defect_is_survived_and_written_to_the_manifest(
    case: Survived, defective_run: dict[str, Any]
) -> None:
    case.check(defective_run)


def test_run__every_scene_unreadable_exits_2(world: World, tmp_path: Path, capsys) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(world.catalog.parent, catalog)
    for day in DATES:
        asset(catalog / "catalog.json", day, "red").write_bytes(b"")

    assert (
        main(
            [
                "run",
                "--out",
                str(tmp_path / "out"),
                *world.args(catalog=str(catalog / "catalog.json")),
            ]
        )
        == 2
    )

    assert "no readable acquisition" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
