"""Per-site figures on the real imagery in ../shared/data/real/, native and reprojected.

Builds the same catalogs as tests/integration/test_real_imagery.py (the Zagorje
Sentinel-2 L2A crops in UTM 33N, in EPSG:4326, in UTM 34N and cut between the two
zones; the Slovenian series in UTM 33N and EPSG:4326; the Colombian Landsat 8 scene in
UTM 18N and EPSG:4326), runs ``minewatch run`` on each and prints, per catalog, how far
its per-site NDVI (and BSI where the data has SWIR) lies from an independent
computation with plain rasterio and numpy, and from the native-grid run:

    .venv/bin/python scripts/real_imagery.py [--work DIR]

Site-dates count when the independent computation has clear pixels there. The masking
buffer is 0, as the independent computation grows no cloud edges.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cli import main
from tests.integration import real_catalogs as rc


def _run(catalog: Path, sites: Path, out: Path, config: Path, aoi: Path | None = None) -> float:
    args = ["run", "--config", str(config), "--catalog", str(catalog), "--sites", str(sites)]
    if aoi is not None:
        args += ["--aoi", str(aoi)]
    start = time.perf_counter()
    if main([*args, "--out", str(out), "--language", "en"]) != 0:
        raise SystemExit(f"run failed: {catalog}")
    return time.perf_counter() - start


def _series(out: Path) -> pd.DataFrame:
    ts = pd.read_parquet(out / "timeseries.parquet")
    ts["day"] = ts["date"].dt.strftime("%Y-%m-%d")
    return ts.set_index(["site_id", "day"]).sort_index()


def _row(name: str, got: np.ndarray, want: np.ndarray, native: np.ndarray | None) -> dict:
    diff = np.abs(got - want)
    row = {"catalog": name, "site-dates": len(got), "with value": int(np.isfinite(got).sum())}
    row["|d| vs independent: median"] = round(float(np.nanmedian(diff)), 4)
    row["max"] = round(float(np.nanmax(diff)), 4)
    if native is not None:
        ok = np.isfinite(got) & np.isfinite(native)
        row["vs native: median |d|"] = round(float(np.median(np.abs(got - native)[ok])), 4)
        row["corr"] = round(float(np.corrcoef(got[ok], native[ok])[0, 1]), 4)
    return row


def zagorje(work: Path) -> list[dict]:
    rc.zagorje_sites(work / "sites.geojson")
    aoi = rc.aoi_file(work / "aoi.geojson", (574000, 5094000, 599000, 5118000))
    (work / "config.yaml").write_text("masking:\n  buffer_pixels: 0\n")
    ref = rc.independent_site_ndvi()
    keys = [k for k, (_, n) in ref.items() if n]
    want = np.array([ref[k][0] for k in keys])
    rows, native = [], None
    variants = {"33N (native)": {}, "EPSG:4326": {"crs": "EPSG:4326"}}
    variants |= {"34N": {"crs": "EPSG:32634"}, "33N + 34N items": {"split": "EPSG:32634"}}
    for name, kw in variants.items():
        cat = rc.zagorje_catalog(work / name.replace(" ", "_"), **kw)
        out = work / f"out_{name.replace(' ', '_').replace(':', '')}"
        _run(cat, work / "sites.geojson", out, work / "config.yaml", aoi)
        got = _series(out).loc[keys, "ndvi_mean"].to_numpy()
        native = got if native is None else native
        rows.append(_row(f"Zagorje S2 L2A, {name}, NDVI", got, want, native))
    return rows


def slovenia(work: Path) -> list[dict]:
    sites = rc.slovenia_sites(work / "sites.geojson")
    (work / "config.yaml").write_text("masking:\n  buffer_pixels: 0\n")
    ref = rc.independent_slovenia()
    keys = [k for k, v in ref.items() if v[2]]
    rows, native = [], {}
    for name, crs in {"33N (native)": None, "EPSG:4326": "EPSG:4326"}.items():
        out = work / f"out_{name[:3].replace(':', '')}"
        cat = rc.slovenia_catalog(work / f"cat_{name[:3].replace(':', '')}", crs=crs)
        _run(cat, sites, out, work / "config.yaml")
        for i, index in ((0, "ndvi"), (1, "bsi")):
            got = _series(out).loc[keys, f"{index}_mean"].to_numpy()
            native.setdefault(index, got)
            want = np.array([ref[k][i] for k in keys])
            rows.append(_row(f"Slovenia S2, {name}, {index.upper()}", got, want, native[index]))
    return rows


def landsat(work: Path) -> list[dict]:
    sites = rc.landsat_sites(work / "sites.geojson")
    cfg = work / "config.yaml"
    cfg.write_text("grid:\n  resolution: 30\nmasking:\n  buffer_pixels: 0\n")
    ref = rc.independent_landsat()
    rows, native = [], {}
    for name, crs in {"18N (native)": None, "EPSG:4326": "EPSG:4326"}.items():
        tag = name[:3].replace(":", "")
        out = work / f"out_{tag}"
        _run(rc.landsat_catalog(work / f"cat_{tag}", crs=crs), sites, out, cfg,
             work / "landsat_aoi.geojson")  # fmt: skip
        ts = pd.read_parquet(out / "timeseries.parquet").set_index("site_id")
        ids = [s for s in ref if ts.loc[s, "valid_fraction"] >= 0.1]
        for i, index in ((0, "ndvi"), (1, "bsi")):
            got = ts.loc[ids, f"{index}_mean"].to_numpy()
            native.setdefault(index, got)
            want = np.array([ref[s][i] for s in ids])
            rows.append(_row(f"Landsat 8 C2 L2, {name}, {index.upper()}", got, want,
                             native[index]))  # fmt: skip
    return rows


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows = []
        for name, build in (("zagorje", zagorje), ("slovenia", slovenia), ("landsat", landsat)):
            (work / name).mkdir(parents=True, exist_ok=True)
            rows += build(work / name)
    table = pd.DataFrame(rows).fillna("")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main_()
