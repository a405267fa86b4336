"""Time ``render_report`` for a city: 500 sites and 200 flags (with before/after chips).

Synthetic but realistic inputs, seeded: sites scattered over a county-sized area in four
categories and two counties, a 4-year timeseries every 5 days (about 290 looks per site,
a third of them cloudy), flags with 60 x 60 px chips. Prints the time of each run and
the best; exits 1 when the best is over the budget (30 s).

    .venv/bin/python scripts/bench_report.py [--sites 500] [--flags 200] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, mapping

from pipeline.progress import progress_table
from pipeline.report import render_report
from pipeline.report.evidence import ChipLook, FlagEvidence
from pipeline.schema import (
    CATEGORIES,
    M2_PER_MU,
    RECOVERY_CLASSES,
    SITE_STATUS_COLUMNS,
    TARGETS,
    TIMESERIES_COLUMNS,
    VIOLATIONS,
)

BUDGET_S = 30.0
START, END = date(2021, 3, 1), date(2025, 2, 28)


def make_sites(n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    lon = rng.uniform(112.4, 113.4, n)
    lat = rng.uniform(33.5, 34.2, n)
    radius = rng.uniform(0.001, 0.004, n)
    return gpd.GeoDataFrame(
        {
            "site_id": [f"S{i:04d}" for i in range(n)],
            "name": [f"Quarry {i}" for i in range(n)],
            "county": rng.choice(["宝丰县", "鲁山县"], n),
            "category": rng.choice(CATEGORIES, n),
            "status": rng.choice(["producing", "suspended", "closed", "restoring"], n),
            "target": rng.choice(TARGETS, n),
            "restoration_start": [
                pd.Timestamp(START) + pd.Timedelta(days=int(d)) for d in rng.integers(0, 900, n)
            ],
        },
        geometry=[Point(x, y).buffer(r) for x, y, r in zip(lon, lat, radius, strict=True)],
        crs="EPSG:4326",
    )


def make_site_status(sites: gpd.GeoDataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(sites)
    area_m2 = sites.to_crs(32649).area.to_numpy()
    classes = rng.choice(RECOVERY_CLASSES, n)
    restored = np.where(classes == "restored", area_m2, 0.0)
    veg = rng.uniform(0, 1, n)
    frame = pd.DataFrame(
        {
            "site_id": sites["site_id"],
            "category": sites["category"],
            "county": sites["county"],
            "target": sites["target"],
            "recovery_class": classes,
            "probability": rng.uniform(0.5, 1, n).round(2),
            "vegetated_fraction": veg,
            "bare_fraction": 1 - veg,
            "water_fraction": 0.0,
            "restored_area_m2": restored,
            "restored_area_mu": restored / M2_PER_MU,
            "meets_target": classes == "restored",
            "assessed_until": END.isoformat(),
        }
    )
    return frame[list(SITE_STATUS_COLUMNS)]


def make_timeseries(site_ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    dates = pd.date_range(START, END, freq="5D")
    doy = dates.day_of_year.to_numpy()
    season = np.sin(2 * np.pi * (doy - 100) / 365)
    frames = []
    for sid in site_ids:
        ndvi = 0.25 + 0.2 * season * rng.uniform(0.2, 1) + rng.normal(0, 0.03, len(dates))
        ndvi[rng.random(len(dates)) < 0.33] = np.nan  # cloudy looks
        frames.append(
            pd.DataFrame(
                {
                    "site_id": sid,
                    "date": dates,
                    "n_pixels": 400,
                    "valid_fraction": np.where(np.isnan(ndvi), 0.0, 1.0),
                    "ndvi_mean": ndvi,
                    "ndvi_median": ndvi,
                    "bsi_mean": 0.05 - ndvi / 3,
                    "bsi_median": 0.05 - ndvi / 3,
                    "ndwi_mean": -ndvi,
                    "vegetated_fraction": (ndvi > 0.4).astype(float),
                    "bare_fraction": (ndvi < 0.15).astype(float),
                    "water_fraction": 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(TIMESERIES_COLUMNS)]


def make_flags(
    sites: gpd.GeoDataFrame, n: int, rng: np.random.Generator
) -> tuple[list[dict], dict[str, FlagEvidence]]:
    features, evidence = [], {}
    ring = np.array([[22, 24], [38, 22], [40, 37], [24, 40], [22, 24]], float)
    for i in range(n):
        site = sites.iloc[int(rng.integers(len(sites)))]
        point = site.geometry.representative_point()
        first = START + timedelta(days=int(rng.integers(200, 1300)))
        area = float(rng.uniform(1000, 30000))
        fid = f"F{first:%Y%m%d}-{i:06x}"
        violation = str(rng.choice(VIOLATIONS))
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(point.buffer(0.0008)),
                "properties": {
                    "flag_id": fid,
                    "first_detected": first.isoformat(),
                    "confirmed": (first + timedelta(days=10)).isoformat(),
                    "last_seen": END.isoformat(),
                    "area_m2": area,
                    "area_mu": area / M2_PER_MU,
                    "confidence": float(rng.uniform(0.5, 1)),
                    "level": "high",
                    "violation": violation,
                    "site_id": site["site_id"],
                    "permit_id": None,
                    "zone_ids": [],
                    "county": site["county"],
                    "lon": point.x,
                    "lat": point.y,
                    "status": "new",
                },
            }
        )
        if violation != "within_permit":
            evidence[fid] = FlagEvidence(
                flag_id=fid,
                outline=[ring],
                resolution_m=10.0,
                before=ChipLook(first - timedelta(days=10), 0.97, _chip(rng, bare=False)),
                after=ChipLook(first + timedelta(days=20), 1.0, _chip(rng, bare=True)),
            )
    return features, evidence


def _chip(rng: np.random.Generator, *, bare: bool) -> np.ndarray:
    base = np.array([0.2, 0.17, 0.14] if bare else [0.05, 0.08, 0.04], np.float32)
    return (base + rng.normal(0, 0.01, (60, 60, 3))).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--language", default="zh-CN", choices=["zh-CN", "en"])
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    sites = make_sites(args.sites, rng)
    status = make_site_status(sites, rng)
    frame = sites.copy()
    frame["area_m2"] = sites.to_crs(32649).area.to_numpy()
    progress = progress_table(status, frame)
    timeseries = make_timeseries(list(sites["site_id"]), rng)
    flags, evidence = make_flags(sites, args.flags, rng)
    manifest = {
        "run_id": "bench",
        "config_hash": "bench",
        "version": "bench",
        "model_version": "bench",
        "period": {"start": START.isoformat(), "end": END.isoformat()},
        "n_items": int(timeseries["date"].nunique()),
    }
    print(
        f"{args.sites} sites, {len(flags)} flags ({len(evidence)} with chips), "
        f"{len(timeseries)} timeseries rows, language {args.language}"
    )
    times = []
    for k in range(args.repeat):
        start = time.perf_counter()
        page = render_report(
            site_status=status,
            progress=progress,
            flags=flags,
            timeseries=timeseries,
            sites=sites,
            manifest=manifest,
            language=args.language,
            evidence=evidence,
        )
        times.append(time.perf_counter() - start)
        print(f"run {k + 1}: {times[-1]:.1f} s, page {len(page) / 1e6:.1f} MB")
    best = min(times)
    print(f"render_report: best {best:.1f} s (budget {BUDGET_S:.0f} s)")
    return 0 if best <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
