"""Learning from the county teams' answers (``minewatch train --from-ledger``).

Every flag a county team answers is a labelled example: ``confirmed`` (or
``resolved``) is real digging, ``false_alarm`` is not. Two things learn from them:

- **The detector's thresholds.** For each answered flag the run's saved fold states
  (``saved_layers``) give, over the flag's pixels, the medians of what the thresholds
  test: the share of clear looks since the onset that stayed bare (against
  ``detection.persistence_min``), the NDVI before the change (against
  ``detection.prior_ndvi_min``); and the flag's area (against
  ``detection.min_mapping_unit_ha``; ``closed_site_mmu_ha`` on closed illegal sites).
  A threshold "would change" when false alarms lie between its current value and the
  lowest value of any confirmed flag: the suggestion is the midpoint between the
  highest such false alarm and that lowest confirmed value, which drops those false
  alarms and keeps every confirmed flag. A handful of answers is no calibration set,
  so nothing is changed: the figures are printed and written for an analyst to weigh.
- **The recovery model.** A confirmed flag (not ``within_permit``) on a site whose
  restoration had begun when it was first detected makes that site ``disturbed`` as of
  the run's last date: a label row like those of ``--labels``. With ``--labels`` the
  model is retrained on both (the ledger's row wins for the same site and date) and
  the sites whose class the new model changes are listed. A false alarm says what a
  site is not, not what it is, so it adds no recovery label.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.features import rasterize
from shapely import wkt

from pipeline import schema
from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.inputs import read_sites
from pipeline.ledger import LEDGER_FILE, list_flags, open_ledger
from pipeline.outputs import write_csv, write_json
from pipeline.recovery.training import (
    LABEL_COLUMNS,
    fit_labelled,
    labelled_features,
    read_labels,
)
from pipeline.sampling import run_grid
from pipeline.saved_layers import read_fold_layers

log = logging.getLogger(__name__)

ANSWERS = {"confirmed": True, "resolved": True, "false_alarm": False}
"""Ledger status -> was it real digging."""
EXAMPLES_FILE = "ledger_training.json"
LEDGER_LABELS_FILE = "ledger_labels.csv"
LAYERS = ("n_bare", "n_since", "prior_ndvi")


@dataclass(frozen=True)
class ThresholdReview:
    """What the answered flags say about one detection threshold."""

    key: str
    """The config key, e.g. ``detection.persistence_min``."""
    current: float
    suggested: float | None
    """None: the answers give no reason to change it."""
    false_alarms_dropped: int
    false_alarms: int
    confirmed: int


@dataclass
class LedgerTraining:
    """The outcome of ``train_from_ledger``."""

    examples: pd.DataFrame
    thresholds: list[ThresholdReview]
    site_labels: pd.DataFrame
    class_changes: pd.DataFrame | None = None
    model: Any = None


def flag_examples(workspace: Path) -> pd.DataFrame:
    """One row per answered flag: its label and the features the thresholds test."""
    workspace = Path(workspace)
    ledger = workspace / LEDGER_FILE
    if not ledger.is_file():
        raise InputError("no flag ledger here; run `minewatch run` first", file=ledger)
    with open_ledger(workspace) as con:
        rows = [r for r in list_flags(con) if r["status"] in ANSWERS]
    if not rows:
        raise InputError(
            "no flag is answered confirmed, resolved or false_alarm", file=ledger, field="status"
        )
    manifest_path = workspace / schema.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    grid = run_grid(manifest, manifest_path)
    layers = read_fold_layers(workspace, grid, manifest, LAYERS)
    geoms = gpd.GeoSeries([wkt.loads(r["geometry_wkt"]) for r in rows], crs="EPSG:4326")
    out = []
    for r, geom in zip(rows, geoms.to_crs(grid.crs), strict=True):
        feats = {"persistence": np.nan, "prior_ndvi": np.nan}
        if layers is not None:
            mask = rasterize(
                [(geom, 1)], out_shape=grid.shape, transform=grid.transform, all_touched=True
            ).astype(bool)
            since = layers["n_since"][mask]
            with np.errstate(invalid="ignore", divide="ignore"):
                share = layers["n_bare"][mask] / np.maximum(since, 1)
            if mask.any():
                feats = {
                    "persistence": float(np.nanmedian(share))
                    if np.isfinite(share).any()
                    else np.nan,
                    "prior_ndvi": float(np.nanmedian(layers["prior_ndvi"][mask]))
                    if np.isfinite(layers["prior_ndvi"][mask]).any()
                    else np.nan,
                }
        out.append(
            {
                "flag_id": r["flag_id"],
                "status": r["status"],
                "real": ANSWERS[r["status"]],
                "violation": r["violation"],
                "county": r["county"],
                "site_id": r["site_id"],
                "first_detected": r["first_detected"],
                "area_ha": round(float(r["area_m2"]) / schema.M2_PER_HA, 4),
                "persistence": feats["persistence"],
                "prior_ndvi": feats["prior_ndvi"],
            }
        )
    return pd.DataFrame(out)


def review_threshold(
    key: str, current: float, real: np.ndarray, false: np.ndarray
) -> ThresholdReview:
    """Would raising ``key`` above ``current`` drop false alarms and keep every real flag?"""
    real, false = real[np.isfinite(real)], false[np.isfinite(false)]
    suggested, dropped = None, 0
    if len(real) and len(false):
        lowest = float(real.min())
        between = false[(false >= current) & (false < lowest)]
        if len(between):
            suggested = round((float(between.max()) + lowest) / 2, 3)
            dropped = int(((false >= current) & (false < suggested)).sum())
    return ThresholdReview(key, current, suggested, dropped, len(false), len(real))


def review_thresholds(examples: pd.DataFrame, cfg: RunConfig) -> list[ThresholdReview]:
    """The detection thresholds the answered flags speak to, reviewed one by one."""
    det = cfg.detection
    closed = examples["violation"] == "illegal_site"
    checks = [
        ("detection.persistence_min", det.persistence_min, examples, "persistence"),
        ("detection.prior_ndvi_min", det.prior_ndvi_min, examples, "prior_ndvi"),
        ("detection.min_mapping_unit_ha", det.min_mapping_unit_ha, examples[~closed], "area_ha"),
        ("detection.closed_site_mmu_ha", det.closed_site_mmu_ha, examples[closed], "area_ha"),
    ]
    return [
        review_threshold(
            key,
            float(current),
            frame.loc[frame["real"], column].to_numpy(float),
            frame.loc[~frame["real"], column].to_numpy(float),
        )
        for key, current, frame, column in checks
    ]


def ledger_site_labels(examples: pd.DataFrame, sites: pd.DataFrame, until: str) -> pd.DataFrame:
    """``disturbed`` as of ``until`` for sites with a confirmed flag after restoration began."""
    starts = dict(zip(sites["site_id"].astype(str), sites["restoration_start"], strict=True))
    rows = []
    for ex in examples[examples["real"]].itertuples(index=False):
        start = starts.get(str(ex.site_id)) if ex.site_id else None
        if ex.violation == "within_permit" or start is None or pd.isna(start):
            continue
        if pd.Timestamp(start).date() <= date.fromisoformat(str(ex.first_detected)):
            rows.append((str(ex.site_id), until, "disturbed"))
    labels = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    return labels.drop_duplicates(["site_id", "assessed_until"]).reset_index(drop=True)


def train_from_ledger(
    cfg: RunConfig,
    workspace: Path,
    out: Path,
    *,
    labels_path: Path | None = None,
    version: str | None = None,
) -> LedgerTraining:
    """``minewatch train --from-ledger``: review thresholds, add site labels, retrain.

    Writes ``ledger_training.json`` (examples and threshold reviews) and
    ``ledger_labels.csv`` (the site labels, in the ``--labels`` format) into ``out``;
    with ``labels_path`` also the retrained model and its card. Reads ``workspace``
    only; every input is checked before ``out`` is written.
    """
    from pipeline.recovery.model import save_model
    from pipeline.recovery.predict import predict_sites

    workspace = Path(workspace)
    if cfg.inputs.sites is None:
        raise InputError(
            "no sites file given: pass --sites or set it in the config", field="--sites"
        )
    examples = flag_examples(workspace)
    thresholds = review_thresholds(examples, cfg)
    manifest = json.loads((workspace / schema.MANIFEST_FILE).read_text(encoding="utf-8"))
    until = str(manifest["period"]["end"])
    sites = read_sites(cfg.inputs.sites)
    site_labels = ledger_site_labels(examples, sites, until)
    result = LedgerTraining(examples, thresholds, site_labels)

    if labels_path is not None:
        given = read_labels(labels_path)
        merged = pd.concat([site_labels, given]).drop_duplicates(
            ["site_id", "assessed_until"], keep="first"
        )
        table = labelled_features(
            workspace, cfg.inputs.sites, merged.reset_index(drop=True), cfg=cfg.recovery
        )
        model = fit_labelled(
            table,
            version=version,
            training_data={
                "source": "minewatch train --from-ledger",
                "labels": str(Path(labels_path).resolve()),
                "ledger": str((workspace / LEDGER_FILE).resolve()),
                "ledger_labels": len(site_labels),
            },
        )
        status = pd.read_csv(workspace / schema.SITE_STATUS_FILE, dtype={"site_id": str})
        now = pd.DataFrame(
            {
                "site_id": status["site_id"],
                "assessed_until": until,
                "recovery_class": status["recovery_class"],
            }
        )
        feats = labelled_features(workspace, cfg.inputs.sites, now, cfg=cfg.recovery)
        predicted = predict_sites(model, feats.set_index("site_id"), sites, cfg=cfg.recovery)
        changes = pd.DataFrame(
            {
                "site_id": status["site_id"],
                "current": status["recovery_class"],
                "retrained": predicted.loc[status["site_id"], "recovery_class"].to_numpy(),
            }
        )
        result.class_changes = changes[changes["current"] != changes["retrained"]].reset_index(
            drop=True
        )
        result.model = model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / EXAMPLES_FILE,
        {
            "workspace": str(workspace.resolve()),
            "examples": json.loads(examples.to_json(orient="records")),
            "thresholds": [asdict(t) for t in thresholds],
            "site_labels": site_labels.to_dict("records"),
            "class_changes": None
            if result.class_changes is None
            else result.class_changes.to_dict("records"),
        },
    )
    write_csv(out / LEDGER_LABELS_FILE, site_labels)
    if result.model is not None:
        save_model(result.model, out)
    log.info("ledger training: %d answered flags, %d site labels", len(examples), len(site_labels))
    return result
