"""Training data for the recovery model: labelled sites turned into model features.

Labels are a CSV of ``site_id, assessed_until, recovery_class`` (one row per site and
date an analyst or a field visit judged; a site may appear on several dates). The
features come from a run's workspace by the production code path: ``minewatch run``
(``pipeline/train.py`` runs it with the rule set, so no model is needed to train one)
writes ``timeseries.parquet``, the rings' series and ``flags.geojson``; for every label date
``model_features`` is computed as of that date, with the share of the site dug by
flags first detected on or before it. Cross-validation then groups rows by site.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import shape

from pipeline import schema
from pipeline.config import RecoveryConfig
from pipeline.errors import InputError
from pipeline.inputs import read_sites
from pipeline.recovery.disturbance import dug_shares
from pipeline.recovery.model import RecoveryModel, train_model
from pipeline.recovery.relative import model_features
from pipeline.recovery.rings import RING_TIMESERIES_FILE

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("site_id", "assessed_until", "recovery_class")


def read_labels(path: str | Path) -> pd.DataFrame:
    """The labels CSV, checked: known classes, ISO dates, no duplicate (site, date)."""
    path = Path(path)
    try:
        labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"labels are not a readable CSV: {exc}", file=path) from None
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise InputError("labels lack a column", file=path, field=missing[0])
    labels = labels.loc[:, list(LABEL_COLUMNS)].copy()
    for row, (site_id, until, klass) in enumerate(labels.itertuples(index=False), start=2):
        if not site_id:
            raise InputError("empty site_id", file=path, record=f"line {row}", field="site_id")
        try:
            date.fromisoformat(until)
        except ValueError:
            raise InputError(
                f"not a date (YYYY-MM-DD): {until!r}",
                file=path,
                record=f"line {row}",
                field="assessed_until",
            ) from None
        if klass not in schema.RECOVERY_CLASSES:
            raise InputError(
                f"unknown class {klass!r}; expected one of {schema.RECOVERY_CLASSES}",
                file=path,
                record=f"line {row}",
                field="recovery_class",
            )
    duplicated = labels.duplicated(["site_id", "assessed_until"])
    if duplicated.any():
        first = labels[duplicated].iloc[0]
        raise InputError(
            "site labelled twice on one date",
            file=path,
            record=f"site_id={first['site_id']}",
            field="assessed_until",
        )
    if labels.empty:
        raise InputError("no labels", file=path)
    return labels


def disturbed_until(
    flags: list[dict], sites_grid: gpd.GeoDataFrame, until: date, *, min_fraction: float
) -> dict[str, float]:
    """Share of each site dug where digging is not allowed, by flags confirmed by ``until``.

    The same rule as the orchestrator's (``disturbance.dug_shares``), read back from
    ``flags.geojson`` features and cut at a label's date. ``sites_grid`` is in a
    metric CRS.
    """
    rows = [
        (
            shape(f["geometry"]),
            date.fromisoformat(f["properties"]["first_detected"]),
            str(f["properties"].get("violation")),
        )
        for f in flags
        if f["properties"].get("confirmed")
        and date.fromisoformat(f["properties"]["confirmed"]) <= until
    ]
    rows = [r for r in rows if r[1] <= until]
    if not rows:
        return {}
    geoms = gpd.GeoSeries([g for g, _, _ in rows], crs="EPSG:4326").to_crs(sites_grid.crs)
    digs = [(g, d, v) for g, (_, d, v) in zip(geoms, rows, strict=True)]
    return dug_shares(digs, sites_grid, min_fraction=min_fraction)


def labelled_features(
    workspace: Path, sites_path: str | Path, labels: pd.DataFrame, *, cfg: RecoveryConfig
) -> pd.DataFrame:
    """``MODEL_FEATURES`` for every label row, from a run's workspace (same row order).

    Adds ``site_id``, ``assessed_until`` and ``recovery_class`` columns.
    """
    workspace = Path(workspace)
    needed = [schema.TIMESERIES_FILE, RING_TIMESERIES_FILE, schema.FLAGS_FILE, schema.MANIFEST_FILE]
    for name in needed:
        if not (workspace / name).is_file():
            raise InputError("run output is missing; run the pipeline first", file=workspace / name)
    timeseries = pd.read_parquet(workspace / schema.TIMESERIES_FILE)
    rings = pd.read_parquet(workspace / RING_TIMESERIES_FILE)
    flags = json.loads((workspace / schema.FLAGS_FILE).read_text(encoding="utf-8"))["features"]
    crs = json.loads((workspace / schema.MANIFEST_FILE).read_text(encoding="utf-8"))["grid"]["crs"]
    sites = read_sites(str(sites_path))
    sites_grid = sites.to_crs(crs)
    unknown = sorted(set(labels["site_id"]) - set(sites["site_id"]))
    if unknown:
        raise InputError(
            "labelled site is not in the sites file", record=unknown[0], field="site_id"
        )
    parts = []
    for until, group in labels.groupby("assessed_until", sort=True):
        day = date.fromisoformat(str(until))
        disturbed = disturbed_until(flags, sites_grid, day, min_fraction=cfg.disturbed_fraction_min)
        subset = sites[sites["site_id"].isin(group["site_id"])]
        feats = model_features(timeseries, rings, subset, disturbed, assessed_until=day, cfg=cfg)
        feats = feats.loc[group["site_id"]].reset_index()
        feats["assessed_until"] = str(until)
        feats["recovery_class"] = group["recovery_class"].to_numpy()
        feats.index = group.index
        parts.append(feats)
    logger.info("features for %d labels at %d sites", len(labels), labels["site_id"].nunique())
    return pd.concat(parts).loc[labels.index]


def fit_labelled(
    table: pd.DataFrame, *, version: str | None, training_data: dict[str, Any]
) -> RecoveryModel:
    """``train_model`` on a labelled feature table (``recovery_class``, ``site_id``);
    without ``version`` the model is named after its training data's fingerprint."""
    model = train_model(
        table,
        table["recovery_class"],
        table["site_id"],
        version=version or "pending",
        training_data=training_data,
    )
    if version is None:
        fp = model.card["training_data"]["fingerprint_sha256"]
        model.card["version"] = f"recovery-hgb-{fp[:8]}"
    return model
