"""Whole runs on real imagery as it comes: any CRS, two UTM zones, wrong offset flags,
Landsat, and imagery that misses the sites.

The Zagorje crops (Sentinel-2 L2A, SCL, five August 2023 dates) are run in their native
UTM 33N, reprojected by the test to EPSG:4326 and to UTM 34N, and cut between two
zones; the figures are held to an independent computation with plain rasterio and
numpy (``real_catalogs``). The masking buffer is 0 so that the independent computation
needs no cloud-edge growth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from tests.integration import real_catalogs as rc

needs_real = pytest.mark.skipif(
    not (rc.ZAGORJE.exists() and rc.LANDSAT.exists()), reason=f"real data not found at {rc.REAL}"
)
pytestmark = needs_real

AOI_UTM = (574000, 5094000, 599000, 5118000)
RES = 20  # a 20 m grid: the crops' 120 m pixels are six of its pixels wide


@pytest.fixture(scope="module")
def zagorje(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zagorje")
    rc.zagorje_sites(root / "sites.geojson")
    rc.aoi_file(root / "aoi.geojson", AOI_UTM)
    (root / "config.yaml").write_text(f"grid:\n  resolution: {RES}\nmasking:\n  buffer_pixels: 0\n")
    return root


def _run(root: Path, catalog: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--config",
            str(root / "config.yaml"),
            "--catalog",
            str(catalog),
            "--sites",
            str(root / "sites.geojson"),
            "--aoi",
            str(root / "aoi.geojson"),
            "--out",
            str(out),
            "--language",
            "en",
            *extra,
        ]
    )


def _series(out: Path) -> pd.DataFrame:
    ts = pd.read_parquet(out / "timeseries.parquet")
    ts["day"] = ts["date"].dt.strftime("%Y-%m-%d")
    return ts.set_index(["site_id", "day"]).sort_index()


@pytest.fixture(scope="module")
def native_run(zagorje: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("native") / "run"
    assert _run(zagorje, rc.zagorje_catalog(zagorje / "native"), out) == 0
    return out


def test_run__zagorje_native__equals_independent_ndvi_and_offset_flag_is_honoured(
    native_run: Path,
):
    # Earth Search says offset -0.1 and boa_offset_applied true: read with offset 0,
    # so NDVI is that of DN x 0.0001 on every clear pixel, to float32 precision.
    ts = _series(native_run)
    ref = rc.independent_site_ndvi(resolution=RES)
    assert len(ts) == 25
    for (sid, day), (mean, n_clear) in ref.items():
        row = ts.loc[(sid, day)]
        assert round(row["valid_fraction"] * row["n_pixels"]) == n_clear, (sid, day)
        if n_clear:
            assert row["ndvi_mean"] == pytest.approx(mean, abs=1e-4), (sid, day)
    assert set(ts["sensor"]) == {"sentinel-2"}
    manifest = json.loads((native_run / "manifest.json").read_text())
    assert manifest["grid"]["crs"] == "EPSG:32633"
    assert manifest["offset_corrections"] == []


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32634", "EPSG:3035"])
def test_run__zagorje_reprojected__matches_native_grid_and_independent(
    zagorje: Path, native_run: Path, tmp_path: Path, crs: str
):
    # The catalog in degrees, in the next UTM zone, or in a national/continental CRS
    # (ETRS89-LAEA Europe) is warped onto the sites' UTM 33N grid.
    out = tmp_path / "run"
    assert _run(zagorje, rc.zagorje_catalog(tmp_path / "cat", crs=crs), out) == 0
    ts, native = _series(out), _series(native_run)
    ref = rc.independent_site_ndvi(resolution=RES)
    clear = [k for k, (_, n) in ref.items() if n]
    got = ts.loc[clear, "ndvi_mean"].to_numpy()
    assert np.isfinite(got).all()  # a value on every site-date with clear pixels
    want = native.loc[clear, "ndvi_mean"].to_numpy()
    assert np.median(np.abs(got - want)) <= 0.02
    assert np.corrcoef(got, want)[0, 1] >= 0.98
    indep = np.array([ref[k][0] for k in clear])
    assert np.median(np.abs(got - indep)) <= 0.02
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid"]["crs"] == "EPSG:32633"
    assert manifest["grid"]["transform"][0] == RES
    # areas are square metres of the projected grid, not square degrees
    for sid, (x0, y0, x1, y1) in rc.ZAGORJE_SITES_UTM.items():
        pixels = ts.loc[sid, "n_pixels"].iloc[0]
        assert pixels * RES**2 == pytest.approx((x1 - x0) * (y1 - y0), rel=0.005), sid


def test_run__two_utm_zones_in_one_date__same_figures_as_one_zone(
    zagorje: Path, native_run: Path, tmp_path: Path
):
    # Every date is two items: the west in 33N, the east in 34N (S4 straddles the seam).
    out = tmp_path / "run"
    catalog = rc.zagorje_catalog(tmp_path / "cat", split="EPSG:32634")
    assert _run(zagorje, catalog, out) == 0
    ts, native = _series(out), _series(native_run)
    assert len(ts) == 25  # five dates, not ten: the two items of a date are one look
    for sid in ("S1", "S2"):  # wholly in the 33N items: read exactly as before
        np.testing.assert_allclose(
            ts.loc[sid, "ndvi_mean"], native.loc[sid, "ndvi_mean"], atol=1e-6
        )
    # Elsewhere the 34N pixels are resampled twice (by the test into 34N, by the run back
    # into 33N): close on every clear look, a little apart where a cloud leaves a few pixels.
    seen = native["valid_fraction"] > 0
    diff = (ts.loc[seen, "ndvi_mean"] - native.loc[seen, "ndvi_mean"]).abs()
    assert diff.median() <= 0.005
    assert diff[native.loc[seen, "valid_fraction"] >= 0.3].max() <= 0.01
    assert (ts["n_pixels"] == native["n_pixels"]).all()


def test_run__offset_flag_contradicted_by_pixels__corrected_and_named(
    zagorje: Path, native_run: Path, tmp_path: Path
):
    # One item says the offset is not applied (it is); another keeps +1000 DN in its
    # pixels while saying it is applied. The pixels decide; the manifest names both.
    wrong_flag, kept_offset = "S2B_33TWM_20230813_0_L2A", "S2A_33TWM_20230815_0_L2A"
    catalog = rc.zagorje_catalog(
        tmp_path / "cat", boa_flag={wrong_flag: False}, offset_in_pixels=(kept_offset,)
    )
    out = tmp_path / "run"
    assert _run(zagorje, catalog, out) == 0
    np.testing.assert_allclose(
        _series(out)["ndvi_mean"], _series(native_run)["ndvi_mean"], atol=1e-4
    )
    manifest = json.loads((out / "manifest.json").read_text())
    fixes = {c["item"]: c for c in manifest["offset_corrections"]}
    assert set(fixes) == {wrong_flag, kept_offset}
    assert (fixes[wrong_flag]["declared_offset"], fixes[wrong_flag]["used_offset"]) == (-0.1, 0)
    assert fixes[wrong_flag]["date"] == "2023-08-13"
    assert (fixes[kept_offset]["declared_offset"], fixes[kept_offset]["used_offset"]) == (0, -0.1)
    named = [w for w in manifest["warnings"] if w["field"] == "raster:bands.offset"]
    assert len(named) == 2


def test_run__imagery_misses_every_site__exits_2_with_one_line_and_no_workspace(
    zagorje: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # Items cover the crop's western and eastern edges; every site lies between them,
    # inside the grid but where no item has a pixel.
    catalog = rc.zagorje_catalog(tmp_path / "cat", columns=((0, 10), (246, 256)))
    out = tmp_path / "run"
    assert _run(zagorje, catalog, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no site has a single valid value" in err[0]
    assert "does not cover the sites" in err[0]
    assert not out.exists()


def test_run__imagery_misses_some_sites__names_them_once(
    zagorje: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # Only the crop's western 150 columns: S3 and S5 lie east of them.
    catalog = rc.zagorje_catalog(tmp_path / "cat", columns=((0, 150),))
    out = tmp_path / "run"
    assert _run(zagorje, catalog, out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    named = [w for w in manifest["warnings"] if "S3" in (w["record"] or "")]
    assert len(named) == 1
    assert "S5" in named[0]["record"] and "S1" not in named[0]["record"]
    ts = _series(out)
    assert ts.loc["S3", "valid_fraction"].max() == 0
    assert ts.loc["S1", "valid_fraction"].max() > 0


def test_cli_run__wgs84_catalog__no_repeated_or_library_warning_lines(
    zagorje: Path, tmp_path: Path
):
    # As a user sees it: the CLI in its own process, its own logging set up.
    catalog = rc.zagorje_catalog(tmp_path / "cat", crs="EPSG:4326")
    args = ["--config", str(zagorje / "config.yaml"), "--catalog", str(catalog)]
    args += ["--sites", str(zagorje / "sites.geojson"), "--aoi", str(zagorje / "aoi.geojson")]
    args += ["--out", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if " WARNING " in ln]
    kinds = [re.sub(r"\S*\d\S*", "#", ln.split(" WARNING ", 1)[1]) for ln in lines]
    assert len(kinds) == len(set(kinds)), lines
    assert not any("site-packages" in ln or "py.warnings" in ln for ln in proc.stderr.splitlines())
    assert not any("geographic CRS" in ln for ln in lines)
    # the warp is named once, for all five items
    warped = [ln for ln in lines if "EPSG:4326" in ln]
    assert len(warped) == 1 and "5 item(s)" in warped[0]


@pytest.fixture(scope="module")
def landsat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landsat")
    rc.landsat_sites(root / "sites.geojson")
    (root / "config.yaml").write_text("grid:\n  resolution: 30\nmasking:\n  buffer_pixels: 0\n")
    return root


def _landsat_run(root: Path, catalog: Path, out: Path) -> pd.DataFrame:
    args = ["run", "--config", str(root / "config.yaml"), "--catalog", str(catalog)]
    args += ["--sites", str(root / "sites.geojson"), "--aoi", str(root / "landsat_aoi.geojson")]
    assert main([*args, "--out", str(out), "--language", "en"]) == 0
    return pd.read_parquet(out / "timeseries.parquet").set_index("site_id")


def test_run__landsat_c2_l2__qa_masked_harmonised_and_equal_to_independent(
    landsat: Path, tmp_path: Path
):
    ts = _landsat_run(landsat, rc.landsat_catalog(tmp_path / "native"), tmp_path / "run")
    assert set(ts["sensor"]) == {"landsat"}
    ref = rc.independent_landsat()
    # L1, L2, L4 clear; L3 mostly under cloud (QA_PIXEL bit 3), kept only where clear
    assert ts.loc["L3", "valid_fraction"] < 0.3 < ts.loc["L1", "valid_fraction"]
    for sid in ("L1", "L2", "L3", "L4"):
        assert ts.loc[sid, "ndvi_mean"] == pytest.approx(ref[sid][0], abs=0.01), sid
        assert ts.loc[sid, "bsi_mean"] == pytest.approx(ref[sid][1], abs=0.01), sid
    # the README's figures for clear land in the scene: NDVI near 0.77, BSI near -0.23
    assert 0.7 < ts.loc["L2", "ndvi_mean"] < 0.85
    assert -0.3 < ts.loc["L2", "bsi_mean"] < -0.15

    wgs = _landsat_run(
        landsat, rc.landsat_catalog(tmp_path / "wgs", crs="EPSG:4326"), tmp_path / "run84"
    )
    clear = ts["valid_fraction"] > 0.1
    diff = (wgs.loc[clear, "ndvi_mean"] - ts.loc[clear, "ndvi_mean"]).abs()
    assert diff.median() <= 0.02


@pytest.mark.parametrize("crs", [None, "EPSG:4326"])
def test_run__slovenian_series__ndvi_and_bsi_equal_independent(tmp_path: Path, crs: str | None):
    # Five real Sentinel-2 scenes with SWIR (two under cloud by s2cloudless), in their
    # UTM zone and in degrees, sites in WGS84: NDVI and BSI on every clear date.
    if not rc.SLOVENIA.exists():
        pytest.skip(f"real data not found at {rc.SLOVENIA}")
    sites = rc.slovenia_sites(tmp_path / "sites.geojson")
    (tmp_path / "config.yaml").write_text("masking:\n  buffer_pixels: 0\n")
    catalog = rc.slovenia_catalog(tmp_path / "cat", crs=crs)
    args = ["run", "--config", str(tmp_path / "config.yaml"), "--catalog", str(catalog)]
    assert main([*args, "--sites", str(sites), "--out", str(tmp_path / "run")]) == 0
    ts = _series(tmp_path / "run")
    ref = rc.independent_slovenia()
    assert len(ts) == len(ref) == 20
    for (sid, day), (ndvi, bsi, n_clear) in ref.items():
        row = ts.loc[(sid, day)]
        if n_clear == 0:  # the two cloudy dates: kept, with no statistics
            assert row["valid_fraction"] == 0 and np.isnan(row["ndvi_mean"])
            continue
        assert row["valid_fraction"] > 0.95, (sid, day)
        assert row["ndvi_mean"] == pytest.approx(ndvi, abs=0.02), (sid, day)
        assert row["bsi_mean"] == pytest.approx(bsi, abs=0.02), (sid, day)


def test_run__landsat_recovery_series__history_before_2017_follows_the_burn(tmp_path: Path):
    # 22 yearly Landsat composites (2002-2023) of a site burned in 2006, on a grid set
    # by grid.crs (the data's NAD83 UTM 10N) at 30 m: the series falls with the burn,
    # bottoms out in 2011 and recovers, year by year as an independent computation.
    if not rc.BC06.exists():
        pytest.skip(f"real data not found at {rc.BC06}")
    sites = rc.bc06_site(tmp_path / "sites.geojson")
    (tmp_path / "config.yaml").write_text("grid:\n  resolution: 30\n  crs: EPSG:26910\n")
    args = ["run", "--config", str(tmp_path / "config.yaml")]
    args += ["--catalog", str(rc.bc06_catalog(tmp_path / "cat")), "--sites", str(sites)]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    by_year = dict(zip(ts["date"].dt.year, ts["ndvi_mean"], strict=True))
    ref = rc.independent_bc06()
    assert sorted(by_year) == list(range(2002, 2024))
    for year, want in ref.items():
        assert by_year[year] == pytest.approx(want, abs=0.01), year
    assert by_year[2005] > 0.55 and by_year[2006] < 0.35 and by_year[2011] < 0.1
    assert by_year[2023] > 0.3
    assert set(ts["sensor"]) == {"landsat"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["grid"]["crs"] == "EPSG:26910"
