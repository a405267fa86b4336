"""Train the shipped recovery model (models/recovery-default) from generated scenarios.

Each training seed draws its own dates (3 to 4.2 years from 2019-2021), cloudiness,
drought and wet years (``climate``), and a compact county (300 x 360 px) with
``EXTRA_SITES`` more sites from the generator's training cast, so every recovery
class meets every target, netting, drought, haze, cloud and the 2022 offset. Every
scenario is run through the whole pipeline (the production code path, with the rule
set), and each site is labelled with its true class on the last date of its
scenario. Scenarios and runs are cached under data/training/ and runs/training/.

    .venv/bin/python scripts/train_model.py --seeds 5000-5023 --out models/recovery-default

The evaluation seeds of scripts/evaluate.py (1000-1999) are never used here.
``--holdout 6000-6003`` also scores the written model on training-style scenarios of
other seeds (every class on every target), per class and per target.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import schema
from pipeline.config import load_config
from pipeline.recovery.model import save_model, train_model
from pipeline.recovery.training import labelled_features
from pipeline.run import run_pipeline
from pipeline.scenes import ScenarioPaths, generate_family

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (300, 360)
EXTRA_SITES = 16


def training_settings(seed: int) -> dict:
    """Dates, cloudiness and climate drawn from the seed (a stream apart from evaluate.py's)."""
    rng = np.random.default_rng([seed, 99])
    start = date(2019 + int(rng.integers(0, 3)), int(rng.integers(1, 13)), 1)
    end = start + timedelta(days=round(365.25 * float(rng.uniform(3.0, 4.2))))
    return {
        "start": start,
        "end": end,
        "cloud_scale": round(float(rng.uniform(0.8, 1.4)), 2),
        "climate": float(rng.choice([0.0, 0.12, 0.2])),
    }


def _name(family: str, seed: int) -> str:
    return f"seed{seed}" if family == "standard" else f"{family}-seed{seed}"


def _scenario(family: str, seed: int) -> ScenarioPaths:
    settings = training_settings(seed)
    folder = ROOT / "data" / "training" / _name(family, seed)
    paths = ScenarioPaths.under(folder)
    if (folder / ".complete").exists():
        return paths
    return generate_family(
        family, folder, seed=seed, shape=SHAPE, extra_sites=EXTRA_SITES, **settings
    )


def _run(name: str, paths: ScenarioPaths) -> Path:
    out = ROOT / "runs" / "training" / name
    if (out / schema.MANIFEST_FILE).exists():
        return out
    cfg = load_config(
        None,
        {
            **paths.run_overrides(),
            "recovery.model": "rules",
        },
    )
    run_pipeline(cfg, out)
    return out


def scenario_table(seed: int, family: str = "standard") -> pd.DataFrame:
    """Model features and true classes of one training scenario's sites."""
    paths = _scenario(family, seed)
    out = _run(_name(family, seed), paths)
    truth = json.loads(paths.truth.read_text(encoding="utf-8"))
    until = json.loads((out / schema.MANIFEST_FILE).read_text())["period"]["end"]
    labels = pd.DataFrame(
        {
            "site_id": [s["site_id"] for s in truth["sites"]],
            "assessed_until": until,
            "recovery_class": [s["recovery_class"] for s in truth["sites"]],
        }
    )
    cfg = load_config(None, {}).recovery
    table = labelled_features(out, paths.sites, labels, cfg=cfg)
    table["group"] = [f"{_name(family, seed)}:{s}" for s in table["site_id"]]
    return table


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(t) for t in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=_seeds, default=_seeds("5000-5023"))
    parser.add_argument(
        "--varied-seeds", type=_seeds, default=[], help="seeds of the varied family to add"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "recovery-default")
    parser.add_argument("--table", type=Path, help="also write the training table (parquet)")
    parser.add_argument("--prepare-only", action="store_true", help="generate and run, no fit")
    parser.add_argument("--holdout", type=_seeds, default=[], help="seeds to score the model on")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if any(1000 <= s < 2000 for s in args.seeds):
        parser.error("seeds 1000-1999 are evaluation seeds (scripts/evaluate.py)")
    if set(args.seeds + args.varied_seeds) & set(args.holdout):
        parser.error("a holdout seed is also a training seed")
    tables = []
    jobs = [("standard", s) for s in args.seeds] + [("varied", s) for s in args.varied_seeds]
    for family, seed in jobs:
        t0 = time.perf_counter()
        table = scenario_table(seed, family)
        tables.append(table)
        counts = table["recovery_class"].value_counts().to_dict()
        print(
            f"{_name(family, seed)}: {len(table)} sites {counts} ({time.perf_counter() - t0:.0f} s)"
        )
    if args.prepare_only:
        return 0
    table = pd.concat(tables, ignore_index=True)
    if args.table:
        table.drop(columns=["last_clear_date"]).to_parquet(args.table)
    seeds = f"{min(args.seeds)}-{max(args.seeds)}"
    if args.varied_seeds:
        seeds += f", varied {min(args.varied_seeds)}-{max(args.varied_seeds)}"
    model = train_model(
        table,
        table["recovery_class"],
        table["group"],
        version="pending",
        training_data={
            "source": "scripts/train_model.py: generated scenarios (pipeline.scenes)",
            "families": ["standard"] + (["varied"] if args.varied_seeds else []),
            "note": "generated scenes only; never scored against field truth",
            "seeds": seeds,
            "shape": list(SHAPE),
            "extra_sites": EXTRA_SITES,
        },
    )
    fp = model.card["training_data"]["fingerprint_sha256"]
    model.card["version"] = f"recovery-hgb-{fp[:8]}"
    save_model(model, args.out)
    cv = model.card["cross_validation"]
    print(f"model {model.version} -> {args.out}")
    print(f"cross-validation (grouped by site): accuracy {cv['accuracy']}")
    for c, figures in cv["per_class"].items():
        print(f"  {c:13s} {figures}")
    print(pd.DataFrame(cv["confusion"]["matrix"], index=schema.RECOVERY_CLASSES,
                       columns=schema.RECOVERY_CLASSES))  # fmt: skip
    if args.holdout:
        _score_holdout(args.out, args.holdout)
    return 0


def _score_holdout(folder: Path, seeds: list[int]) -> None:
    """Classes of the written model (``predict_sites``, as in a run) on unseen scenarios."""
    from pipeline.recovery.model import classification_figures, load_model
    from pipeline.recovery.predict import predict_sites

    model = load_model(folder)
    cfg = load_config(None, {}).recovery
    rows = []
    for seed in seeds:
        table = scenario_table(seed).set_index("site_id")
        sites = pd.DataFrame({"site_id": table.index, "target": _targets(table)})
        predicted = predict_sites(model, table, sites, cfg=cfg)["recovery_class"]
        rows.append(
            pd.DataFrame(
                {
                    "truth": table["recovery_class"],
                    "predicted": predicted,
                    "target": sites["target"].to_numpy(),
                }
            )
        )
    scored = pd.concat(rows, ignore_index=True)
    figures = classification_figures(scored["truth"], scored["predicted"])
    print(f"holdout seeds {seeds}: accuracy {figures['accuracy']} over {len(scored)} sites")
    hit = scored["truth"] == scored["predicted"]
    per = scored.assign(hit=hit).groupby(["truth", "target"])["hit"].agg(["sum", "count"])
    print(per.apply(lambda r: f"{r['sum']}/{r['count']}", axis=1).unstack(fill_value="-"))
    print(pd.DataFrame(figures["confusion"]["matrix"], index=schema.RECOVERY_CLASSES,
                       columns=schema.RECOVERY_CLASSES))  # fmt: skip


def _targets(table: pd.DataFrame) -> list[str]:
    onehot = table[[c for c in table.columns if c.startswith("target_")]]
    return [c.removeprefix("target_") for c in onehot.idxmax(axis=1)]


if __name__ == "__main__":
    sys.exit(main())
