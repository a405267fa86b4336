"""Pixel blocks that fail to decode: the date leaves the run, is named, and is read again.

An asset whose header opens passes ``check_assets``; its damage shows only when a tile
task decodes the block. The world here is ``test_hardening``'s, with the red band of
one date rewritten as a tiled DEFLATE GeoTIFF (16 x 16 blocks) whose second block's
bytes are overwritten.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import tifffile

from pipeline import schema
from pipeline.cli import main
from pipeline.config import MaskingConfig
from pipeline.masking import clear_tile
from pipeline.sources.grid import analysis_grid
from pipeline.sources.local import read_catalog
from pipeline.sources.reads import read_failures, read_tile

from .compare import assert_same_outputs
from .conftest import run_args
from .test_hardening import DATES, World, asset, build_world

BROKEN = DATES[2]
ITEM = f"S2_TEST_{BROKEN:%Y%m%d}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def _retile(path: Path) -> None:
    """Rewrite a GeoTIFF with the same pixels as a tiled DEFLATE GeoTIFF of 16 x 16 blocks."""
    with rasterio.open(path) as src:
        data, profile = src.read(1), src.profile
    profile.update(driver="GTiff", tiled=True, blockxsize=16, blockysize=16, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _break_block(path: Path, block: int = 1) -> None:
    """Overwrite the start of one block's compressed bytes: the header still opens."""
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[block]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 32)


@pytest.fixture
def catalogs(world: World, tmp_path: Path) -> dict[str, Path]:
    """``good``: the red asset of ``BROKEN`` retiled; ``broken``: the same, one block damaged;
    ``without``: the good catalog without that date's item."""
    out = {}
    for name in ("good", "broken", "without"):
        root = tmp_path / name
        shutil.copytree(world.catalog.parent, root)
        _retile(asset(root / "catalog.json", BROKEN, "red"))
        out[name] = root / "catalog.json"
    _break_block(asset(out["broken"], BROKEN, "red"))
    catalog = json.loads(out["without"].read_text())
    catalog["links"] = [link for link in catalog["links"] if ITEM not in link["href"]]
    out["without"].write_text(json.dumps(catalog))
    return out


def _run(world: World, catalog: Path, out: Path) -> dict:
    assert main(["run", "--out", str(out), *world.args(catalog=str(catalog))]) == 0
    return json.loads((out / schema.MANIFEST_FILE).read_text())


def _unreadable(manifest: dict) -> list[dict]:
    return [w for w in manifest["warnings"] if "cannot be read" in w["message"]]


def test_read_tile__undecodable_block_is_named_and_leaves_the_tile_unobserved(catalogs):
    scenes = read_catalog(catalogs["broken"])
    grid = analysis_grid(scenes)
    box = (0, 0, *grid.shape)
    t = [np.datetime64(s.date, "D").item() for s in scenes].index(BROKEN)
    for k, scene in enumerate(scenes):
        refs = {band: [a[band] for a in scene.assets if band in a] for band in scene.assets[0]}
        read = read_tile(refs, grid, box, halo=1)
        if k != t:
            assert read_failures(read) == ()
            assert clear_tile(read, MaskingConfig()).all()
            continue
        [failure] = read_failures(read)
        assert failure.band == "red"
        assert failure.href == str(asset(catalogs["broken"], BROKEN, "red"))
        assert "TIFFReadEncodedTile" in failure.error or "Decod" in failure.error
        assert "red" in read.missing and "red" not in read.bands
        # never a clear observation: no pixel of the tile counts as seen on that date
        assert not clear_tile(read, MaskingConfig()).any()


def test_run__undecodable_block_skips_the_date_and_names_it_in_the_manifest(
    world: World, catalogs: dict[str, Path], tmp_path: Path
) -> None:
    manifest = _run(world, catalogs["broken"], tmp_path / "broken")

    [warning] = _unreadable(manifest)
    assert warning["record"] == f"item {ITEM}" and warning["field"] == "assets.red"
    assert str(asset(catalogs["broken"], BROKEN, "red")) in warning["message"]
    assert f"acquisition {BROKEN} skipped" in warning["message"]
    assert ITEM not in manifest["inputs"]["items"]
    assert manifest["stages"]["compute"]["dates_skipped_unreadable"] == 1
    timeseries = pd.read_parquet(tmp_path / "broken" / schema.TIMESERIES_FILE)
    assert BROKEN not in set(timeseries["date"].dt.date)
    # The run is the one over the catalog without that date, to the byte.
    _run(world, catalogs["without"], tmp_path / "without")
    assert_same_outputs(tmp_path / "broken", tmp_path / "without")


def test_resume__unit_with_a_read_error_is_not_saved_and_is_read_again_next_run(
    world: World, catalogs: dict[str, Path], tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    first = _run(world, catalogs["broken"], ws)
    assert _unreadable(first)

    # The fault was transient: the next run sees the asset whole.
    good = asset(catalogs["good"], BROKEN, "red").read_bytes()
    asset(catalogs["broken"], BROKEN, "red").write_bytes(good)
    second = _run(world, catalogs["broken"], ws)

    assert not _unreadable(second)
    graph = second["stages"]["graph"]
    assert graph["rows_dates_computed"] == 1  # only the date that failed is read again
    assert graph["rows_dates_reused"] == len(DATES) - 1
    assert ITEM in second["inputs"]["items"]
    _run(world, catalogs["good"], tmp_path / "good")
    assert_same_outputs(ws, tmp_path / "good")


def test_resume__read_failing_mid_series_then_whole_ends_like_a_clean_run(
    scenario, scenario_run: Path, tmp_path: Path
) -> None:
    """A long series (fold states saved every 16 dates) with a failure between two saves:
    no state that folded the failed read is kept, and the repaired rerun matches."""
    catalog = tmp_path / "catalog"
    shutil.copytree(scenario.catalog.parent, catalog)
    item = sorted((catalog / "items").iterdir())[29]
    red = item / "red.tif"
    _retile(red)
    whole = red.read_bytes()
    _break_block(red)
    ws = tmp_path / "ws"
    args = run_args(scenario, ws)
    args[args.index("--catalog") + 1] = str(catalog / "catalog.json")

    assert main(args) == 0
    first = json.loads((ws / schema.MANIFEST_FILE).read_text())
    [warning] = _unreadable(first)
    assert warning["record"] == f"item {item.name}"
    assert first["counts"]["dates"] > 2 * 16

    red.write_bytes(whole)
    assert main(args) == 0

    graph = json.loads((ws / schema.MANIFEST_FILE).read_text())["stages"]["graph"]
    assert graph["rows_dates_computed"] == 1  # the other dates' statistics were kept
    # Everything as a clean run gives, but a flag issued by the first run keeps its id
    # (the date it failed on was that flag's first look, so the id names a later date).
    flags, clean = (_flags_without_ids(folder) for folder in (ws, scenario_run))
    assert flags == clean
    for name in (schema.SITE_STATUS_FILE, schema.PROGRESS_FILE):
        pd.testing.assert_frame_equal(pd.read_csv(ws / name), pd.read_csv(scenario_run / name))
    pd.testing.assert_frame_equal(
        pd.read_parquet(ws / schema.TIMESERIES_FILE),
        pd.read_parquet(scenario_run / schema.TIMESERIES_FILE),
    )


def _flags_without_ids(folder: Path) -> list[dict]:
    features = json.loads((folder / schema.FLAGS_FILE).read_text())["features"]
    out = []
    for feature in features:
        props = {k: v for k, v in feature["properties"].items() if k != "flag_id"}
        out.append({"geometry": feature["geometry"], "properties": props})
    return sorted(out, key=lambda f: (f["properties"]["first_detected"], f["properties"]["lon"]))
