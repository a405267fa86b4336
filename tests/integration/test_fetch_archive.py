"""The archive's tiling, and remote COG windows read through ranged HTTP requests."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from pipeline import schema
from pipeline.cli import main
from pipeline.fetch.cog import read_window
from pipeline.fetch.http import RemoteBlocks, Traffic, retrying_session
from pipeline.fetch.tiles import plan_tiles
from pipeline.scenes import ScenarioPaths, generate_scenario
from tests.fakes.eo_services import FakeEOServices, Fault

from .fetch_helpers import CLIENT_ID, CLIENT_SECRET, write_config


def _sites(*boxes_utm: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"site_id": [f"S{i}" for i in range(len(boxes_utm))]},
        geometry=[box(*b) for b in boxes_utm],
        crs="EPSG:32649",
    )


def test_plan_tiles__cover_buffered_sites_snapped_and_small_enough():
    sites = _sites(
        (640_013, 3_733_007, 640_905, 3_734_411),  # two neighbours: merged into one box
        (641_100, 3_733_900, 641_350, 3_734_300),
        (652_000, 3_740_000, 652_100, 3_740_100),  # far away: its own tile
    )
    tiles = plan_tiles(sites, buffer_m=200, max_tile_px=64)
    assert {t.epsg for t in tiles} == {32649}
    for t in tiles:
        assert all(v % 20 == 0 for v in t.bounds)
        rows, cols = t.shape(10.0)
        assert 0 < rows <= 64 and 0 < cols <= 64
    covered = gpd.GeoSeries([box(*t.bounds) for t in tiles]).union_all()
    for geom in sites.geometry:
        assert covered.contains(box(*geom.bounds).buffer(200, join_style="mitre"))
    # the far site needs one tile, not a grid spanning the gap
    far = [t for t in tiles if t.bounds[0] >= 651_000]
    assert len(far) == 1
    assert len({t.tile_id for t in tiles}) == len(tiles)


def test_plan_tiles__same_sites_same_tile_ids():
    sites = _sites((640_013, 3_733_007, 640_905, 3_734_411))
    a = plan_tiles(sites, buffer_m=200, max_tile_px=2500)
    b = plan_tiles(sites.iloc[::-1], buffer_m=200, max_tile_px=2500)
    assert [t.tile_id for t in a] == [t.tile_id for t in b]


@pytest.fixture(scope="module")
def big_cog_services(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("range-scenario")
    scenario = ScenarioPaths.under(root)  # an empty catalog: only the COG below is served
    scenario.catalog.parent.mkdir(parents=True)
    scenario.catalog.write_text('{"type": "Catalog", "links": []}')
    rng = np.random.default_rng(0)
    data = rng.integers(1, 10000, (1024, 1024), dtype=np.uint16)
    path = scenario.catalog.parent / "big.tif"
    with rasterio.open(
        path, "w", driver="COG", width=1024, height=1024, count=1, dtype="uint16",
        crs="EPSG:32649", transform=Affine(10, 0, 600_000, 0, -10, 3_800_000),
        compress="DEFLATE", blocksize=256, overviews="NONE",
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    with FakeEOServices(scenario, client_id="x", client_secret="y") as svc:
        yield svc, data, path


def test_remote_cog__window_reads_only_the_blocks_it_needs(big_cog_services):
    svc, data, path = big_cog_services
    svc.seen.clear()
    traffic = Traffic()
    remote = RemoteBlocks(f"{svc.url}/cogs/big.tif", retrying_session(attempts=2, backoff_s=0.01),
                          timeout=10, traffic=traffic)  # fmt: skip
    # rows 300..399, cols 300..399 of the 10 m grid whose corner is (600 000, 3 800 000)
    bounds = (603_000.0, 3_796_000.0, 604_000.0, 3_797_000.0)
    window = read_window(remote, bounds=bounds, resolution=10.0, epsg=32649)
    assert np.array_equal(window, data[300:400, 300:400])
    assert traffic.bytes < Path(path).stat().st_size / 4  # 1 of 16 internal tiles + header
    assert all(s.status == 206 and "Range" in s.headers for s in svc.seen)
    # at 20 m: every second pixel; outside the file: 0
    coarse = read_window(remote, bounds=(603_000.0, 3_796_000.0, 604_000.0, 3_797_000.0),
                         resolution=20.0, epsg=32649)  # fmt: skip
    assert np.array_equal(coarse, data[301:400:2, 301:400:2])  # the pixel under each centre
    outside = read_window(remote, bounds=(590_000.0, 3_796_000.0, 600_200.0, 3_797_000.0),
                          resolution=10.0, epsg=32649)  # fmt: skip
    assert (outside[:, :-20] == 0).all() and np.array_equal(outside[:, -20:], data[300:400, :20])


def test_remote_cog__another_utm_zone_is_warped(big_cog_services):
    svc, data, _ = big_cog_services
    remote = RemoteBlocks(f"{svc.url}/cogs/big.tif", retrying_session(attempts=2, backoff_s=0.01),
                          timeout=10)  # fmt: skip
    # the same ground seen from zone 50N
    from rasterio.warp import transform_bounds

    b = transform_bounds("EPSG:32649", "EPSG:32650", 603_000, 3_796_000, 604_000, 3_797_000)
    b = tuple(round(v / 20) * 20 for v in b)
    window = read_window(remote, bounds=b, resolution=10.0, epsg=32650)
    assert window.shape == (round((b[3] - b[1]) / 10), round((b[2] - b[0]) / 10))
    assert (window > 0).mean() > 0.9
    assert set(np.unique(window[window > 0])) <= set(np.unique(data[250:450, 250:450]))


def test_remote_cog__retry_after_is_obeyed(big_cog_services):
    svc, _, _ = big_cog_services
    svc.seen.clear()
    svc.faults.append(
        Fault(lambda m, p, b: p == "/cogs/big.tif", 503, times=2, headers={"Retry-After": "1"})
    )
    remote = RemoteBlocks(f"{svc.url}/cogs/big.tif", retrying_session(attempts=3, backoff_s=0.01),
                          timeout=10)  # fmt: skip
    window = read_window(remote, bounds=(600_000.0, 3_799_900.0, 600_100.0, 3_800_000.0),
                         resolution=10.0, epsg=32649)  # fmt: skip
    assert window.any()
    gaps = [b.at - a.at for a, b in zip(svc.seen, svc.seen[1:], strict=False)]
    assert [s.status for s in svc.seen[:3]] == [503, 503, 206]
    assert min(gaps[:2]) >= 0.95
    svc.faults.clear()


@pytest.fixture(scope="module")
def small_scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioPaths:
    return generate_scenario(
        tmp_path_factory.mktemp("run-fetch-scenario"),
        seed=11,
        shape=(120, 160),
        start=date(2021, 11, 20),
        end=date(2022, 4, 10),
    )


def test_run_with_provider__failed_items_are_warnings_in_the_manifest(
    tmp_path: Path, small_scenario: ScenarioPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local server speaks http
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    archive, ws = tmp_path / "archive", tmp_path / "ws"
    broken: list[float] = []

    def one_tile(method: str, path: str, body: dict | None) -> bool:
        if path != "/api/v1/process" or body is None:
            return False
        bbox = body["input"]["bounds"]["bbox"]
        if not broken:
            broken.extend(bbox)
        return bbox == broken

    with FakeEOServices(small_scenario, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as svc:
        cfg = write_config(
            tmp_path / "run.yaml",
            kind="sentinelhub",
            url=svc.url,
            archive=archive,
            sites=small_scenario.sites,
        )
        svc.faults.append(Fault(one_tile, 500, times=None))
        assert main(["run", "--config", str(cfg), "--out", str(ws)]) == 0

    ledger = json.loads((archive / "fetch.json").read_text())
    failed = {k: r for k, r in ledger["items"].items() if r["status"] == "failed"}
    assert failed
    manifest = json.loads((ws / schema.MANIFEST_FILE).read_text())
    warned = {w["record"]: w for w in manifest["warnings"] if "fetch failed" in w["message"]}
    assert set(warned) == {f"item {item_id}" for item_id in failed}
    for item_id, rec in failed.items():
        warning = warned[f"item {item_id}"]
        assert warning["file"] == str(archive / "fetch.json")
        assert rec["tile_id"] in warning["message"] and rec["datetime"][:10] in warning["message"]
        assert "500" in warning["message"]
        assert item_id not in manifest["inputs"]["items"]
    assert CLIENT_SECRET not in json.dumps(manifest)
