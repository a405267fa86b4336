"""The demo's wall time on Dask's threaded scheduler and on a LocalCluster of worker processes.

Each run is ``minewatch demo`` in a fresh workspace (runs resume from saved units, so
a reused workspace would measure nothing), in a subprocess, side by side in one
script so that the ratios compare like with like::

    .venv/bin/python scripts/bench_scheduler.py [--repeat 2] [--data data/demo]

Prints, per setting, the best wall time and the compute stage's time (from
``manifest.json``), and each setting's ratio to two threads, the local default.
The cluster is started before the timed run and its start-up time is printed apart.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
MINEWATCH = Path(sys.executable).with_name("minewatch")

SETTINGS = (
    ("threads, 2", "threads", 2),
    ("threads, 1", "threads", 1),
    ("1 worker process", "cluster", 1),
    ("2 worker processes", "cluster", 2),
)


def _demo(out: Path, data: Path, *extra: str) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [str(MINEWATCH), "demo", "--out", str(out), "--data", str(data), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"minewatch demo {' '.join(extra)} failed:\n{done.stderr[-2000:]}")
    stages = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["stages"]
    return wall, stages["compute"]["seconds"]


def _one(label: str, kind: str, n: int, work: Path, data: Path) -> tuple[float, float, float]:
    out = work / label.replace(" ", "-").replace(",", "")
    if kind == "threads":
        return (*_demo(out, data, "--workers", str(n)), 0.0)
    start = time.perf_counter()
    with LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        started = time.perf_counter() - start
        wall, compute = _demo(out, data, "--scheduler", cluster.scheduler_address)
    return wall, compute, started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting (best kept)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    args = parser.parse_args()
    # Generate the demo data once, outside the timed runs.
    _demo(Path(tempfile.mkdtemp(prefix="minewatch-warm-")), args.data)
    best: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        for _ in range(args.repeat):
            for label, kind, n in SETTINGS:
                result = _one(label, kind, n, Path(tmp), args.data)
                if label not in best or result[0] < best[label][0]:
                    best[label] = result
    base = best["threads, 2"][0]
    for label, (wall, compute, started) in best.items():
        extra = f", cluster start {started:.1f} s" if started else ""
        print(
            f"{label:>20}: wall {wall:5.1f} s ({wall / base:.2f}x two threads), "
            f"compute stage {compute:5.1f} s{extra}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
