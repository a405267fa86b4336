"""Benchmark: the whole ``minewatch run`` against what an analyst would write instead.

A generated scene (``pipeline.scenes``, seeded, cached under ``data/bench/run-*``) is
processed three ways, each in a fresh Python process so that imports count, each twice
(the faster run is reported, on every side):

- ``run``: ``minewatch run`` into a new workspace (every stage: inputs, the per-site
  series, the excavation fold, flags, recovery, the report);
- ``exactextract``: a per-date loop over the same COGs with exactextract 0.3.0 (its
  ``Operation`` objects): bands decoded with 2 threads, SCL masked (the project's
  invalid classes, grown by one pixel), NDVI and BSI in numpy, then per-site means of
  NDVI and BSI. This is the peer the issue on whole-run speed names;
- ``decode``: GDAL decoding every asset the run reads, nothing else.

It prints wall time and peak RSS of each, and the ratios run/exactextract and
run/decode. ``--dates-factor 1 4`` repeats with four times the dates (small: a period
four times as long; city: the same period at a quarter of the revisit), to show
whether memory grows with them. It is a benchmark, not a test: CI does not run it.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python scripts/bench_run.py [--scene small] [--dates-factor 1 4] [--repeat 2]

The small scene is 400 x 400 px at 10 m, about 110 dates and the generator's 26 sites.
The city scene is 4096 x 4096 px, 36 dates and 2,000 sites, written by
``scripts/city_scene.py`` (the scene generator would take hours to draw it); it needs
about 2 GB of disk per 36 dates and takes minutes per job, so ``--repeat 1`` suits it.
Other work on the machine slows every run; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "small": {"shape": (400, 400), "dates": 110},
    "city": {"shape": (4096, 4096), "dates": 36, "sites": 2000},
}
REVISIT_DAYS = 10

# Each timed job runs in its own process and prints {"seconds": ..., "peak_mb": ...}.
_TIMED = textwrap.dedent(
    """
    import json, resource, sys, time
    start = time.perf_counter()
    exec(compile(sys.argv[1], "job", "exec"))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))
    """
)

_RUN = """
from pipeline.cli import main
assert main(["run", "--catalog", C, "--sites", S, "--permits", P, "--zones", Z, "--aoi", A,
             "--out", OUT, "--language", "en"]) == 0
"""

_PEER_READ = """
import numpy as np, pystac, rasterio
from concurrent.futures import ThreadPoolExecutor
BANDS = ("blue", "red", "nir", "swir16", "scl")
def dates(catalog):
    items = sorted(pystac.read_file(catalog).get_items(recursive=True), key=lambda i: i.datetime)
    for item in items:
        yield item, {b: item.assets[b].get_absolute_href() for b in BANDS}
def read(href):
    with rasterio.open(href) as src:
        return src.read(1)
"""

_DECODE = (
    _PEER_READ
    + """
with ThreadPoolExecutor(2) as pool:
    for item, paths in dates(C):
        list(pool.map(read, [*paths.values(), item.assets["green"].get_absolute_href()]))
"""
)

_EXACTEXTRACT = (
    _PEER_READ
    + """
import geopandas as gpd
from scipy import ndimage
from exactextract import exact_extract
from exactextract.operation import Operation
from exactextract.raster import NumPyRasterSource
INVALID = (0, 1, 3, 8, 9, 10, 11)
sites = None
with ThreadPoolExecutor(2) as pool:
    for item, paths in dates(C):
        raw = dict(zip(BANDS, pool.map(read, paths.values())))
        with rasterio.open(paths["red"]) as src:
            bounds, crs = src.bounds, src.crs
        if sites is None:
            sites = gpd.read_file(S).to_crs(crs)
        rb = item.assets["red"].extra_fields.get("raster:bands", [{}])[0]
        scale, offset = rb.get("scale", 1e-4), rb.get("offset", 0.0)
        scl = np.repeat(np.repeat(raw["scl"], 2, axis=0), 2, axis=1)
        h, w = raw["red"].shape
        swir = np.repeat(np.repeat(raw["swir16"], 2, axis=0), 2, axis=1)[:h, :w]
        clear = ~ndimage.binary_dilation(np.isin(scl[:h, :w], INVALID), np.ones((3, 3), bool))
        clear &= raw["red"] != 0
        r = {b: raw[b].astype(np.float32) * scale + offset for b in ("blue", "red", "nir")}
        s = swir.astype(np.float32) * scale + offset
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (r["nir"] - r["red"]) / (r["nir"] + r["red"])
            a, b = s + r["red"], r["nir"] + r["blue"]
            bsi = (a - b) / (a + b)
        ndvi[~clear] = np.nan
        bsi[~clear] = np.nan
        wkt = crs.to_wkt()
        src_n = NumPyRasterSource(ndvi, *bounds, nodata=np.nan, name="ndvi", srs_wkt=wkt)
        src_b = NumPyRasterSource(bsi, *bounds, nodata=np.nan, name="bsi", srs_wkt=wkt)
        ops = [Operation("mean", "ndvi_mean", src_n), Operation("mean", "bsi_mean", src_b)]
        exact_extract(src_n, sites, ops, include_cols=["site_id"], output="pandas")
"""
)


def _scene(size: str, factor: int):
    from pipeline.scenes import ScenarioPaths, generate_scenario

    spec = SIZES[size]
    days = spec["dates"] * factor * REVISIT_DAYS
    start = date(2021, 3, 1)
    folder = ROOT / "data" / "bench" / f"run-{size}-x{factor}"
    if (folder / ".complete").exists():  # generated by an earlier benchmark
        return ScenarioPaths.under(folder)
    print(f"generating {folder} ...", flush=True)
    if size == "city":
        sys.path.insert(0, str(ROOT / "scripts"))
        from city_scene import write_city_scene

        # Four times the dates: the same period at a quarter of the revisit.
        revisit = max(1, round(REVISIT_DAYS / factor))
        return write_city_scene(
            folder, shape=spec["shape"], n_dates=spec["dates"] * factor,
            n_sites=spec["sites"], revisit_days=revisit,
        )  # fmt: skip
    return generate_scenario(
        folder, seed=2026, start=start, end=start + timedelta(days=days),
        revisit_days=REVISIT_DAYS, shape=spec["shape"],
    )  # fmt: skip


def _timed(job: str, env: dict[str, str]) -> dict[str, float]:
    prelude = "".join(f"{k} = {v!r}\n" for k, v in env.items())
    proc = subprocess.run(
        [sys.executable, "-c", _TIMED, prelude + job],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"job failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(size: str, factor: int, tmp: Path, repeat: int = 2) -> dict[str, dict[str, float]]:
    paths = _scene(size, factor)
    env = {"C": str(paths.catalog), "S": str(paths.sites), "P": str(paths.permits),
           "Z": str(paths.zones), "A": str(paths.aoi)}  # fmt: skip
    best: dict[str, dict[str, float]] = {}
    for attempt in range(repeat):
        for name, job in (("decode", _DECODE), ("exactextract", _EXACTEXTRACT), ("run", _RUN)):
            out = {"OUT": str(tmp / f"{size}-x{factor}-{name}-{attempt}")}
            got = _timed(job, {**env, **out})
            if name not in best or got["seconds"] < best[name]["seconds"]:
                best[name] = got
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", "--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--dates-factor", type=int, nargs="+", default=[1])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each job (best kept)")
    args = parser.parse_args(argv)
    import tempfile

    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.dates_factor:
            best = bench(args.scene, factor, Path(tmp), args.repeat)
            n = SIZES[args.scene]["dates"] * factor
            print(f"\n{args.scene} scene, about {n} dates (best of {args.repeat} run(s) each):")
            for name, got in best.items():
                print(f"  {name:13s} {got['seconds']:7.2f} s   peak RSS {got['peak_mb']:6.0f} MB")
            run, ee, dec = (best[k]["seconds"] for k in ("run", "exactextract", "decode"))
            print(f"  run / exactextract = {run / ee:.2f}   run / decode = {run / dec:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
