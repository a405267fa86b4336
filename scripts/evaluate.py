"""Score MineWatch against generated scenarios it was not tuned on.

For each seed: generate a scenario (pipeline.scenes.generate_scenario, cached under
data/scenarios/), run the whole pipeline on it, and compare with its truth file:

- digs: recall (a true dig overlapped by a flag), precision of enforcement flags
  (flags other than ``within_permit`` that overlap a true dig), violation correct
  (the flag overlapping a detected dig most carries the true violation), latency
  (first_detected minus the dig's start, days), area error (|flag - truth| / truth);
- sites: accuracy of recovery_class, per-class recall, confusion matrix.

    .venv/bin/python scripts/evaluate.py --seeds 101 202 303 [--json out.json]
        [--climate 0.15] [--model models/NAME | --model rules]

``--climate`` adds drought and wet years (pipeline.scenes' yearly vegetation vigour);
``--model`` picks the recovery model (default: the shipped one). The site classes
of all seeds are summed into one confusion matrix at the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import shape

from pipeline import schema
from pipeline.config import load_config
from pipeline.run import run_pipeline
from pipeline.scenes import ScenarioPaths, generate_scenario

ROOT = Path(__file__).resolve().parents[1]


def scenario_settings(seed: int) -> dict:
    """Dates and cloudiness drawn from the seed, so each scenario differs in all of them."""
    rng = np.random.default_rng(seed)
    start = date(2020 + int(rng.integers(0, 2)), int(rng.integers(1, 13)), 1)
    years = float(rng.uniform(3.2, 4.0))
    end = start + timedelta(days=round(365.25 * years))
    return {"start": start, "end": end, "cloud_scale": round(float(rng.uniform(0.8, 1.4)), 2)}


def _scenario(seed: int, climate: float = 0.0) -> ScenarioPaths:
    """The scenario for a seed, generated once and cached under data/scenarios/."""
    settings = scenario_settings(seed)
    folder = (
        ROOT
        / "data"
        / "scenarios"
        / (
            f"seed{seed}-{settings['start']:%Y%m}-{settings['end']:%Y%m}-c{settings['cloud_scale']:g}"
            + (f"-k{climate:g}" if climate else "")
        )
    )
    paths = ScenarioPaths.under(folder)
    if (folder / ".complete").exists():  # the generator writes this marker last
        return paths
    return generate_scenario(folder, seed=seed, climate=climate, **settings)


def score(flags_path: Path, status_path: Path, truth_path: Path) -> dict:
    truth = json.loads(truth_path.read_text())
    flags = json.loads(flags_path.read_text())["features"]
    crs = "EPSG:32649"
    digs = gpd.GeoDataFrame(
        truth["digs"], geometry=[shape(d["geometry"]) for d in truth["digs"]], crs="EPSG:4326"
    ).to_crs(crs)
    fl = gpd.GeoDataFrame(
        [f["properties"] for f in flags],
        geometry=[shape(f["geometry"]) for f in flags],
        crs="EPSG:4326",
    )
    fl = fl.to_crs(crs) if len(fl) else fl
    detected, correct, latency, area_err = 0, 0, [], []
    matched_flags: set[str] = set()
    per_dig = []
    for _, dig in digs.iterrows():
        hits = fl[fl.intersects(dig.geometry)] if len(fl) else fl
        if not len(hits):
            per_dig.append({"dig_id": dig["dig_id"], "violation": dig["violation"], "found": False})
            continue
        detected += 1
        matched_flags.update(hits["flag_id"])
        best = hits.loc[hits.geometry.intersection(dig.geometry).area.idxmax()]
        ok = best["violation"] == dig["violation"]
        correct += ok
        lat = (
            date.fromisoformat(min(hits["first_detected"])) - date.fromisoformat(dig["start"])
        ).days
        latency.append(lat)
        err = abs(hits["area_m2"].sum() - dig["area_m2"]) / dig["area_m2"]
        area_err.append(err)
        per_dig.append(
            {
                "dig_id": dig["dig_id"],
                "violation": dig["violation"],
                "found": True,
                "flag_violation": best["violation"],
                "latency_days": lat,
                "area_error": round(err, 3),
            }
        )
    # Every flag (within_permit ones too: the dig is real either way) with its
    # confidence and whether it overlaps a true dig: the reliability table's rows.
    reliability = [
        {
            "confidence": float(f["confidence"]),
            "level": f["level"],
            "real": bool(digs.intersects(f.geometry).any()),
        }
        for _, f in (fl.iterrows() if len(fl) else iter(()))
    ]
    enforce = fl[fl["violation"] != "within_permit"] if len(fl) else fl
    true_enforce = int(enforce["flag_id"].isin(matched_flags).sum()) if len(enforce) else 0
    status = pd.read_csv(status_path)
    truth_cls = {s["site_id"]: s["recovery_class"] for s in truth["sites"]}
    status["truth"] = status["site_id"].map(truth_cls)
    classes = list(schema.RECOVERY_CLASSES)
    confusion = pd.crosstab(status["truth"], status["recovery_class"]).reindex(
        index=classes, columns=classes, fill_value=0
    )
    recall = {
        c: (
            float((status[status.truth == c].recovery_class == c).mean())
            if (status.truth == c).any()
            else None
        )
        for c in classes
    }
    return {
        "digs": len(digs),
        "flags": len(fl),
        "enforcement_flags": len(enforce),
        "recall": detected / len(digs) if len(digs) else None,
        "precision": true_enforce / len(enforce) if len(enforce) else None,
        "violation_correct": correct / detected if detected else None,
        "median_latency_days": float(np.median(latency)) if latency else None,
        "median_area_error": float(np.median(area_err)) if area_err else None,
        "site_accuracy": float((status.truth == status.recovery_class).mean()),
        "site_recall": recall,
        "confusion": confusion.to_dict(),
        "per_dig": per_dig,
        "reliability": reliability,
        "false_flags": enforce[~enforce["flag_id"].isin(matched_flags)][
            ["flag_id", "first_detected", "area_m2", "violation", "level"]
        ].to_dict("records")
        if len(enforce)
        else [],
    }


RELIABILITY_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def print_reliability(rows: list[dict]) -> None:
    """Flags per confidence bin and the share of them that are real digs (calibration)."""
    print("reliability (confidence bin: flags, real, share real, mean confidence):")
    for lo, hi in itertools.pairwise(RELIABILITY_BINS):
        inside = [r for r in rows if lo <= r["confidence"] < hi]
        if not inside:
            print(f"  [{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}: 0 flags")
            continue
        real = sum(r["real"] for r in inside)
        mean = sum(r["confidence"] for r in inside) / len(inside)
        levels = sorted({r["level"] for r in inside})
        print(
            f"  [{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}: {len(inside)} flags, "
            f"{real} real, share {real / len(inside):.2f}, mean confidence {mean:.2f}, "
            f"level {'/'.join(levels)}"
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--json", type=Path, help="write all figures here")
    parser.add_argument("--climate", type=float, default=0.0, help="drought/wet-year spread")
    parser.add_argument("--model", help="recovery.model: a model folder or 'rules'")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    results = {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        paths = _scenario(seed, args.climate)
        out = ROOT / "runs" / "evaluate" / f"seed{seed}"
        if (out / "ledger.sqlite").exists():
            (out / "ledger.sqlite").unlink()
        cfg = load_config(
            None,
            {
                **paths.run_overrides(),
                "recovery.model": args.model,
            },
        )
        run_pipeline(cfg, out)
        res = score(out / schema.FLAGS_FILE, out / schema.SITE_STATUS_FILE, paths.truth)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        res["scenario"] = {k: str(v) for k, v in scenario_settings(seed).items()}
        results[seed] = res
        print(
            f"seed {seed} {res['scenario']}: digs {res['digs']} flags {res['flags']} "
            f"recall {res['recall']:.2f} "
            f"precision {_fmt(res['precision'])} "
            f"violation {res['violation_correct']} latency {res['median_latency_days']} d "
            f"area err {res['median_area_error']} site acc {res['site_accuracy']:.2f} "
            f"({res['seconds']} s)"
        )
        for d in res["per_dig"]:
            print("   ", d)
        for f in res["false_flags"][:15]:
            print("    false:", f)
    keys = [
        "recall",
        "precision",
        "violation_correct",
        "median_latency_days",
        "median_area_error",
        "site_accuracy",
    ]
    print(
        "median over scenarios:",
        {k: float(np.median([r[k] for r in results.values() if r[k] is not None])) for k in keys},
    )
    classes = list(schema.RECOVERY_CLASSES)
    # Summed confusion, rows: truth, columns: predicted.
    total = sum(
        pd.DataFrame(r["confusion"]).reindex(index=classes, columns=classes, fill_value=0)
        for r in results.values()
    )
    hits = int(np.trace(total.to_numpy()))
    print(f"site classes over {len(results)} scenarios: accuracy {hits / total.values.sum():.3f}")
    for c in classes:
        n = int(total.loc[c].sum())
        print(f"  {c:13s} recall {int(total.loc[c, c])}/{n}" if n else f"  {c:13s} none")
    print("confusion (rows truth, columns predicted):")
    print(total.to_string())
    print_reliability([row for r in results.values() for row in r["reliability"]])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
