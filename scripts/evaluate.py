"""Score MineWatch against generated scenarios it was not tuned on.

For each scene family (``--family``: ``standard``, ``loess`` or ``both``; the ``varied``
family is the recovery model's training, not evaluated) and each seed:
generate a scenario (pipeline.scenes.generate_family, cached under data/scenarios/ in a
folder named after the family), run the whole pipeline on it, and compare with its
truth file. The standard family is generated with its hard cases (``hard_cases=True``);
``loess`` always has them (see pipeline.scenes.hard_cases). Figures:

- digs: recall (a true dig overlapped by a flag), ``recall_seen`` (the same over the
  digs seen on at least one clear look before they began and one after, by the scene's
  SCL: a dig under cloud until the imagery ends cannot be detected, nor told from an
  old pit when no look shows the ground before it), precision of enforcement flags
  (flags other than ``within_permit`` that overlap a true dig), violation correct
  (the flag overlapping a detected dig most carries the true violation; a dig within a
  pixel of the edge of ``outside_permit_buffer_m`` around a permit (a licensed site's
  boundary where it has no permit, as the detection measures it) may read
  ``outside_permit`` or ``unregistered``, counted in ``violation_at_buffer_edge``), latency
  (first_detected minus the dig's start, days), area error (|flag - truth| / truth);
- sites: accuracy of recovery_class, per-class recall, confusion matrix;
- per case kind (each dig's ``case`` in truth.json; ``standard`` where it has none) and
  per dig material: digs, found, recall and median latency.

    .venv/bin/python scripts/evaluate.py --seeds 101 202 303 [--family both] [--json out.json]
        [--climate 0.15] [--model models/NAME | --model rules] [--out runs/evaluate]
        [--config tuned.yaml]

``--climate`` adds drought and wet years (pipeline.scenes' yearly vegetation vigour);
``--model`` picks the recovery model (default: the shipped one); ``--config`` a YAML
merged over the defaults for every run, as ``minewatch run --config`` does (to score a
setting side by side with the defaults, each with its own ``--out``). Per family, the site
classes of all seeds are summed into one confusion matrix and the digs of all seeds into
the case and material tables. ``--json``: one entry per scenario, each with the figures
above plus ``family``, ``by_case`` and ``by_material``; a standard scenario's key is its
seed (as before families), another family's ``family:seed``.
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
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds
from shapely.geometry import shape

from pipeline import schema
from pipeline.config import load_config
from pipeline.masking import invalid_classes
from pipeline.run import run_pipeline
from pipeline.scenes import ScenarioPaths, generate_family

ROOT = Path(__file__).resolve().parents[1]
FAMILY_OPTIONS: dict[str, dict[str, object]] = {"standard": {"hard_cases": True}}
"""Generator options per family in the evaluation: standard with its hard cases."""
EVALUATED = ("standard", "loess")
"""The families ``--family both`` means (``varied`` is the recovery model's training)."""
SEEN_CLEAR_SHARE = 0.5
"""A dig is seen on a date when at least this share of its pixels is clear (SCL)."""


def scenario_settings(seed: int) -> dict:
    """Dates and cloudiness drawn from the seed, so each scenario differs in all of them."""
    rng = np.random.default_rng(seed)
    start = date(2020 + int(rng.integers(0, 2)), int(rng.integers(1, 13)), 1)
    years = float(rng.uniform(3.2, 4.0))
    end = start + timedelta(days=round(365.25 * years))
    return {"start": start, "end": end, "cloud_scale": round(float(rng.uniform(0.8, 1.4)), 2)}


def _scenario(family: str, seed: int, climate: float = 0.0) -> ScenarioPaths:
    """The scenario of a family for a seed, generated once, cached under data/scenarios/."""
    settings = scenario_settings(seed)
    options = FAMILY_OPTIONS.get(family, {})
    name = (
        f"{family}{'-hard' if options.get('hard_cases') else ''}-seed{seed}"
        f"-{settings['start']:%Y%m}-{settings['end']:%Y%m}-c{settings['cloud_scale']:g}"
        + (f"-k{climate:g}" if climate else "")
    )
    folder = ROOT / "data" / "scenarios" / name
    paths = ScenarioPaths.under(folder)
    if (folder / ".complete").exists():  # the generator writes this marker last
        return paths
    return generate_family(family, folder, seed=seed, climate=climate, **settings, **options)


def by_kind(per_dig: list[dict], key: str) -> dict[str, dict]:
    """Digs, found, recall and median latency (days) per value of ``key`` of the digs."""
    out: dict[str, dict] = {}
    for kind in sorted({d[key] for d in per_dig}):
        rows = [d for d in per_dig if d[key] == kind]
        found = [d for d in rows if d["found"]]
        lat = [d["latency_days"] for d in found]
        out[kind] = {
            "digs": len(rows),
            "found": len(found),
            "recall": len(found) / len(rows),
            "median_latency_days": float(np.median(lat)) if lat else None,
        }
    return out


def print_by_kind(title: str, table: dict[str, dict]) -> None:
    print(f"{title} (digs, found, recall, median latency):")
    for kind, row in table.items():
        lat = row["median_latency_days"]
        print(
            f"  {kind:16s} {row['digs']:3d} {row['found']:3d}  {row['recall']:.2f}  "
            + ("n/a" if lat is None else f"{lat:.0f} d")
        )


def clear_looks_of_digs(paths: ScenarioPaths, truth: dict) -> dict[str, tuple[int, int]]:
    """Per dig, the dates before its start and from its start on when at least
    ``SEEN_CLEAR_SHARE`` of its pixels are clear by the scene's SCL: a dig seen on none
    after it began could not be detected, nor dated as new with none before."""
    invalid = invalid_classes(load_config(None, {}).masking)
    digs = [
        (d["dig_id"], date.fromisoformat(d["start"]), shape(d["geometry"])) for d in truth["digs"]
    ]
    seen = {dig_id: [0, 0] for dig_id, _, _ in digs}
    projected: dict[tuple[str, str], object] = {}  # (CRS, dig id) -> geometry in that CRS
    for item_path in paths.catalog.parent.glob("items/*/*.json"):
        item = json.loads(item_path.read_text())
        day = date.fromisoformat(item["properties"]["datetime"][:10])
        current = [(i, g, start <= day) for i, start, g in digs]
        href = item_path.parent / item["assets"]["scl"]["href"]
        with rasterio.open(href) as src:
            for dig_id, geom, after in current:
                key = (src.crs.to_string(), dig_id)
                if key not in projected:
                    projected[key] = gpd.GeoSeries([geom], crs=4326).to_crs(src.crs).iloc[0]
                g = projected[key]
                win = (
                    from_bounds(*g.bounds, transform=src.transform).round_offsets().round_lengths()
                )
                win = Window(win.col_off, win.row_off, max(win.width, 1), max(win.height, 1))
                scl = src.read(1, window=win, boundless=True, fill_value=0)
                inside = geometry_mask([g], scl.shape, src.window_transform(win), invert=True,
                                       all_touched=True)  # fmt: skip
                if inside.any() and (~invalid[scl[inside]]).mean() >= SEEN_CLEAR_SHARE:
                    seen[dig_id][int(after)] += 1
    return {dig_id: (before, after) for dig_id, (before, after) in seen.items()}


EDGE_M = 10.0
"""A dig whose outline lies within this of ``outside_permit_buffer_m`` from a licensed
site's permit (one 10 m pixel) may be read ``outside_permit`` or ``unregistered``: a
flag's outline is whole pixels, so its distance differs from the true outline's by up
to a pixel."""
NEAR_QUARRY = {"outside_permit", "unregistered"}


def buffer_outlines(sites: gpd.GeoDataFrame, permits: gpd.GeoDataFrame | None) -> gpd.GeoSeries:
    """What ``outside_permit_buffer_m`` is measured from, as the detection measures it
    (``pipeline.flags``): the permits, and a licensed site's boundary where it has no
    permit on record. In the sites' CRS."""
    licensed = sites[sites["category"] == "licensed"]
    if permits is None or not len(permits):
        return licensed.geometry
    without = licensed[~licensed["site_id"].isin(set(permits["site_id"]))]
    outlines = [permits.to_crs(sites.crs).geometry, without.geometry]
    return gpd.GeoSeries(pd.concat(outlines, ignore_index=True), crs=sites.crs)


def at_buffer_edge(dig_geom, permits: gpd.GeoSeries | None, buffer_m: float) -> bool:
    """Whether a dig lies within ``EDGE_M`` of the edge of the permits' buffer
    (``permits``: ``buffer_outlines``)."""
    if permits is None or not len(permits):
        return False
    return abs(float(permits.distance(dig_geom).min()) - buffer_m) <= EDGE_M


def score(
    flags_path: Path,
    status_path: Path,
    truth_path: Path,
    seen: dict[str, tuple[int, int]] | None = None,
    permits: gpd.GeoSeries | None = None,
    buffer_m: float = 100.0,
) -> dict:
    """The figures of one run against its truth (module docstring). ``permits``
    (``buffer_outlines``, in any CRS) and ``buffer_m``: a dig at the edge of the permits'
    buffer counts as read right as either ``outside_permit`` or ``unregistered``
    (``at_buffer_edge``)."""
    truth = json.loads(truth_path.read_text())
    seen = seen or {}
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
    if permits is not None:
        permits = permits.to_crs(crs)
    detected, correct, latency, area_err, at_edge = 0, 0, [], [], 0
    matched_flags: set[str] = set()
    per_dig = []
    for _, dig in digs.iterrows():
        hits = fl[fl.intersects(dig.geometry)] if len(fl) else fl
        kind = {
            "case": dig.get("case", "standard"),
            "material": dig["material"],
            "clear_looks_before": seen.get(dig["dig_id"], (None, None))[0],
            "clear_looks": seen.get(dig["dig_id"], (None, None))[1],
        }
        if not len(hits):
            per_dig.append(
                {"dig_id": dig["dig_id"], "violation": dig["violation"], "found": False, **kind}
            )
            continue
        detected += 1
        matched_flags.update(hits["flag_id"])
        best = hits.loc[hits.geometry.intersection(dig.geometry).area.idxmax()]
        ok = best["violation"] == dig["violation"]
        if not ok and {best["violation"], dig["violation"]} <= NEAR_QUARRY:
            edge = at_buffer_edge(dig.geometry, permits, buffer_m)
            ok, at_edge = edge, at_edge + edge
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
                **kind,
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
    visible = [d for d in per_dig if d["clear_looks"] and d["clear_looks_before"]]
    return {
        "digs": len(digs),
        "flags": len(fl),
        "digs_seen": len(visible),
        "recall_seen": sum(d["found"] for d in visible) / len(visible) if visible else None,
        "enforcement_flags": len(enforce),
        "recall": detected / len(digs) if len(digs) else None,
        "precision": true_enforce / len(enforce) if len(enforce) else None,
        "violation_correct": correct / detected if detected else None,
        "violation_at_buffer_edge": at_edge,
        "median_latency_days": float(np.median(latency)) if latency else None,
        "median_area_error": float(np.median(area_err)) if area_err else None,
        "site_accuracy": float((status.truth == status.recovery_class).mean()),
        "site_recall": recall,
        "confusion": confusion.to_dict(),
        "per_dig": per_dig,
        "by_case": by_kind(per_dig, "case"),
        "by_material": by_kind(per_dig, "material"),
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


def evaluate_scenario(family: str, seed: int, args: argparse.Namespace) -> dict:
    """Generate (or reuse) one scenario, run the pipeline on it and score the outputs."""
    t0 = time.perf_counter()
    paths = _scenario(family, seed, args.climate)
    out = args.out / f"{family}-seed{seed}"
    if (out / "ledger.sqlite").exists():
        (out / "ledger.sqlite").unlink()
    cfg = load_config(args.config, {**paths.run_overrides(), "recovery.model": args.model})
    run_pipeline(cfg, out)
    seen = clear_looks_of_digs(paths, json.loads(paths.truth.read_text()))
    permits = gpd.read_file(paths.permits) if paths.permits.is_file() else None
    outlines = buffer_outlines(gpd.read_file(paths.sites), permits)
    res = score(
        out / schema.FLAGS_FILE, out / schema.SITE_STATUS_FILE, paths.truth, seen,
        outlines, cfg.detection.outside_permit_buffer_m,
    )  # fmt: skip
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["family"] = family
    res["scenario"] = {k: str(v) for k, v in scenario_settings(seed).items()}
    print(
        f"{family} seed {seed} {res['scenario']}: digs {res['digs']} flags {res['flags']} "
        f"recall {_fmt(res['recall'])} (seen {res['digs_seen']}: {_fmt(res['recall_seen'])}) "
        f"precision {_fmt(res['precision'])} "
        f"violation {res['violation_correct']} ({res['violation_at_buffer_edge']} at the "
        f"permit buffer's edge) latency {res['median_latency_days']} d "
        f"area err {res['median_area_error']} site acc {res['site_accuracy']:.2f} "
        f"({res['seconds']} s)"
    )
    for d in res["per_dig"]:
        print("   ", d)
    for f in res["false_flags"][:15]:
        print("    false:", f)
    return res


def print_family(family: str, results: list[dict]) -> None:
    """A family's figures over its scenarios: medians, site classes, cases, materials."""
    print(f"== {family}: {len(results)} scenario(s)")
    keys = [
        "recall",
        "recall_seen",
        "precision",
        "violation_correct",
        "median_latency_days",
        "median_area_error",
        "site_accuracy",
    ]
    medians = {}
    for k in keys:
        values = [r[k] for r in results if r[k] is not None]
        medians[k] = float(np.median(values)) if values else None
    print("median over scenarios:", medians)
    classes = list(schema.RECOVERY_CLASSES)
    # Summed confusion, rows: truth, columns: predicted.
    total = sum(
        pd.DataFrame(r["confusion"]).reindex(index=classes, columns=classes, fill_value=0)
        for r in results
    )
    hits = int(np.trace(total.to_numpy()))
    print(f"site classes over {len(results)} scenarios: accuracy {hits / total.values.sum():.3f}")
    for c in classes:
        n = int(total.loc[c].sum())
        print(f"  {c:13s} recall {int(total.loc[c, c])}/{n}" if n else f"  {c:13s} none")
    print("confusion (rows truth, columns predicted):")
    print(total.to_string())
    digs = [d for r in results for d in r["per_dig"]]
    visible = [d for d in digs if d["clear_looks"] and d["clear_looks_before"]]
    print(
        f"digs: {sum(d['found'] for d in digs)}/{len(digs)} found; of the {len(visible)} seen "
        f"on a clear look before and after they began, {sum(d['found'] for d in visible)} found"
    )
    print_by_kind("per case", by_kind(digs, "case"))
    print_by_kind("per material", by_kind(digs, "material"))
    print_reliability([row for r in results for row in r["reliability"]])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument(
        "--family",
        choices=[*EVALUATED, "both"],
        default="both",
        help="scene family to evaluate on (default: both)",
    )
    parser.add_argument("--json", type=Path, help="write all figures here")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "runs" / "evaluate",
        help="where each scenario's run goes (its workspace: FAMILY-seedSEED)",
    )  # fmt: skip
    parser.add_argument("--climate", type=float, default=0.0, help="drought/wet-year spread")
    parser.add_argument("--model", help="recovery.model: a model folder or 'rules'")
    parser.add_argument(
        "--config", type=Path,
        help="a YAML config merged over the defaults for every run (as minewatch run's)",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    families = list(EVALUATED) if args.family == "both" else [args.family]
    results: dict[str, dict] = {}
    per_family: dict[str, list[dict]] = {}
    for family in families:
        for seed in args.seeds:
            res = evaluate_scenario(family, seed, args)
            results[str(seed) if family == "standard" else f"{family}:{seed}"] = res
            per_family.setdefault(family, []).append(res)
    for family, rows in per_family.items():
        print_family(family, rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
