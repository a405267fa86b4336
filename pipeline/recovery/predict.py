"""Recovery classes from the trained model, in the rule set's table shape.

``recovery_model(cfg)`` finds the model the config asks for (``recovery.model``: a
folder, ``null`` for the shipped ``models/recovery-default`` (the rules, with a
warning, where an install lacks that folder), or ``"rules"``) and loads it;
``predict_sites`` turns ``model_features`` into the same ``CLASSIFIED_COLUMNS`` that
``classify.classify_sites`` gives, so ``site_status_table`` and everything after it do
not care which one decided.

- ``recovery_class`` is the most probable class, and ``probability`` its
  ``predict_proba``. Two classes describe a restoration (``revegetating``,
  ``regressed``); a site whose restoration has not begun cannot have them, so their
  probabilities are set to 0 and the rest renormalised (``rule``
  ``no_restoration_yet``) before choosing.
- A site with a fresh dig where digging is not allowed (``disturbed_fraction`` above
  0, ``disturbance.py``) is ``disturbed`` whatever the model says (rule
  ``new_excavation``, the rule set's confidence), as in the rules; a site with none is
  not (``disturbed`` set to 0 and the rest renormalised; rule ``no_dig_flagged`` when
  it was the most probable): the flags establish a dig, not a pattern.
- ``regressed`` names a loss (``loss_seen``): a site that shows none (its peak, own and
  against its ring, no lower than its best earlier season's, no die-back this season)
  cannot have it (set to 0, renormalised; rule ``no_loss_seen``); a site dying back this
  season (``dying_now``: down against last year and against its ring) is not
  ``restored`` (rule ``dying_now``); a restoration that reached its target's level in
  an earlier season (``greened_once``) is not ``unrestored`` (rule ``greened_before``).
- A site with no clear look in the latest window is ``unrestored`` with probability
  0 (rule ``no_clear_data``) unless new digging makes it ``disturbed``, as in the
  rules: nothing is claimed about a surface nobody saw.
- A site whose features lie outside the model's training range (the card's
  ``feature_ranges``, ``ranges.outside_training_range``) is classed by the rule set
  instead, with ``model_used`` false, and one warning names every such site and the
  first feature out of range: the shipped model was trained on generated scenes, and
  a tree model far from its training data answers with whatever its outermost leaf
  says.
- ``meets_target`` is the rule set's target test on the latest window
  (``status.target_margin``): whether the surface now behaves like its target,
  stated by thresholds an analyst can read in the config. A site the model calls
  ``restored`` meets its target by definition (domain.md: restored means behaving
  like the target), so the two columns never contradict each other in the report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import RecoveryConfig
from pipeline.recovery.features import LAST_CLEAR_DATE, site_table
from pipeline.recovery.model import RecoveryModel, load_model
from pipeline.recovery.ranges import outside_training_range
from pipeline.recovery.status import (
    CLASSIFIED_COLUMNS,
    HARVESTED_TARGETS,
    NEEDS_RESTORATION,
    WATER_TARGETS,
    cover_lost,
    disturbed_margin,
    margin_confidence,
    site_target,
    target_margin,
)

logger = logging.getLogger(__name__)

RULES = "rules"
RULES_VERSION = "rules-0.1"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "recovery-default"


def model_folder(cfg: RecoveryConfig) -> Path | None:
    """The folder of the model ``cfg.model`` names; None means the rule set."""
    if cfg.model == RULES:
        return None
    folder = Path(cfg.model) if cfg.model else DEFAULT_MODEL_DIR
    if cfg.model is None and not folder.exists():
        return None  # an install without the repository's models/ folder: the rules
    return folder


def recovery_model(cfg: RecoveryConfig) -> RecoveryModel | None:
    """The model ``cfg.model`` names, loaded and checked; None means the rule set."""
    folder = model_folder(cfg)
    if folder is None:
        if cfg.model != RULES:
            # The manifest's model_version says which decided.
            logger.warning(
                "no shipped recovery model at %s; classifying by the rules", DEFAULT_MODEL_DIR
            )
        return None
    return load_model(folder)


def predict_sites(
    model: RecoveryModel,
    features: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """Classes, probabilities and ``meets_target`` for every row of ``features``.

    ``features`` comes from ``relative.model_features``; ``sites`` supplies each
    site's ``target``. Returns ``CLASSIFIED_COLUMNS`` indexed by ``site_id``.
    """
    targets = site_table(sites).set_index("site_id")["target"]
    proba = model.predict_proba(features)
    classes = np.array(model.classes, dtype=object)
    rows = []
    for site_id, feat in features.iterrows():
        target = site_target(targets, site_id, cfg)
        p = proba.loc[site_id].to_numpy(dtype=float).copy()
        rule = "model"
        dug = float(np.nan_to_num(feat["disturbed_fraction"]))
        if not dug > 0:  # only a flagged dig makes a site disturbed (below)
            p, rule = _without(p, classes, ("disturbed",), rule, "no_dig_flagged")
        if not feat["restoration_started"] >= 1:
            p, rule = _without(p, classes, NEEDS_RESTORATION, rule, "no_restoration_yet")
        elif not loss_seen(feat, target, cfg):
            p, rule = _without(p, classes, ("regressed",), rule, "no_loss_seen")
        if dying_now(feat, target, cfg):
            p, rule = _without(p, classes, ("restored",), rule, "dying_now")
        if feat["restoration_started"] >= 1 and greened_once(feat, target, cfg):
            p, rule = _without(p, classes, ("unrestored",), rule, "greened_before")
        best = int(np.argmax(p))
        recovery_class, probability = str(classes[best]), float(p[best])
        if dug > 0 and recovery_class != "disturbed":
            # A dig where digging is not allowed is a fact the flags establish, not a
            # pattern to learn: the site is disturbed, with the rule set's confidence.
            recovery_class, rule = "disturbed", "new_excavation"
            probability = margin_confidence(disturbed_margin(dug, cfg))
        seen = feat["n_clear_latest"] > 0
        if not seen and recovery_class != "disturbed":
            recovery_class, probability, rule = "unrestored", 0.0, "no_clear_data"
        last = feat[LAST_CLEAR_DATE]
        margin = target_margin(feat, target, cfg.targets[target])
        rows.append(
            {
                "recovery_class": recovery_class,
                "probability": round(probability, 3),
                "meets_target": bool(margin >= 0) or recovery_class == "restored",
                "vegetated_fraction": feat["vegetated_fraction"],
                "bare_fraction": feat["bare_fraction"],
                "water_fraction": feat["water_fraction"],
                "disturbed_fraction": feat["disturbed_fraction"],
                "rule": rule,
                "assessed_until": None
                if pd.isna(last)
                else pd.Timestamp(last).strftime("%Y-%m-%d"),
            }
        )
        logger.debug(
            "site %s: %s (probability %.2f, %s)", site_id, recovery_class, probability, rule
        )
    out = pd.DataFrame(rows, index=features.index, columns=list(CLASSIFIED_COLUMNS))
    out["meets_target"] = out["meets_target"].astype(bool)
    out["probability"] = out["probability"].astype("float64")
    out["model_used"] = True
    outside = outside_training_range(model, features)
    away = outside[outside != ""]
    if len(away):
        from pipeline.recovery.classify import classify_sites

        dug = features.loc[away.index, "disturbed_fraction"].fillna(0.0).to_dict()
        by_rules = classify_sites(features.loc[away.index], sites, dug, cfg=cfg)
        out.loc[away.index, list(CLASSIFIED_COLUMNS)] = by_rules[list(CLASSIFIED_COLUMNS)]
        out["model_used"] = out["model_used"].astype(bool)
        named = ", ".join(f"{site} ({feature})" for site, feature in away.items())
        logger.warning(
            "%d site(s) outside the recovery model %s's training range, classed by the rules: %s",
            len(away),
            model.version,
            named,
        )
    return out


def loss_seen(feat: pd.Series, target: str, cfg: RecoveryConfig) -> bool:
    """Whether a site shows the loss ``regressed`` names (a restoration that reached its
    target and has since lost it): a die-back this season against the same days a year
    before (``recent_ndvi_change`` down by a third of ``regression_drop_min``), or this
    season's peak, its own or against its ring's, below its best earlier season's by
    half of it, or its cover gone (``status.cover_lost``). A model trained on one physics
    can take a level for a loss (a grassland that peaks at 0.45 where its training's
    peaked at 0.6); a level is no loss. A crop's season against last year's is its
    harvest date, not a loss: not for farmland."""
    drop = cfg.regression_drop_min
    return bool(
        (target not in HARVESTED_TARGETS and -feat["recent_ndvi_change"] >= drop / 3)
        or cover_lost(feat, target, cfg)
        or feat["ratio_drop"] >= drop / 2
        or feat["best_earlier_peak_ndvi"] - feat["latest_peak_ndvi"] >= drop / 2
    )


def dying_now(feat: pd.Series, target: str, cfg: RecoveryConfig) -> bool:
    """Whether a site is dying back this season: its NDVI of the last ``RECENT_DAYS``
    below the same days a year before, and below its ring's by more than a year before
    (a drought lowers both), each by two thirds of ``regression_drop_min``; or its cover
    gone (``status.cover_lost``). Such a site is not ``restored`` ("stably, over a full
    season"), whatever its peak says. A farmland's last months against the same days a
    year before compare two harvest dates: not for farmland."""
    drop = 2 * cfg.regression_drop_min / 3
    recent = -feat["recent_ndvi_change"] >= drop and -feat["recent_gap_change"] >= drop
    return bool((target not in HARVESTED_TARGETS and recent) or cover_lost(feat, target, cfg))


def greened_once(feat: pd.Series, target: str, cfg: RecoveryConfig) -> bool:
    """Whether an earlier season reached the target's vegetated level (the rule set's
    ``classify.peak_near_target``): such a restoration is not ``unrestored``, which is
    for restorations that never greened, however long ago it died back. Not for water
    targets (a pit lake's NDVI says nothing of planting)."""
    from pipeline.recovery.classify import peak_near_target

    if target in WATER_TARGETS:
        return False
    return bool(peak_near_target(feat["best_earlier_peak_ndvi"], cfg.targets[target]) >= 0)


def _without(
    p: np.ndarray, classes: np.ndarray, barred: tuple[str, ...], rule: str, reason: str
) -> tuple[np.ndarray, str]:
    """Probabilities with ``barred`` classes at 0, renormalised; ``reason`` becomes the
    rule when one of them was the most probable."""
    allowed = ~np.isin(classes, barred)
    if p[~allowed].max(initial=0.0) > p[allowed].max(initial=0.0):
        rule = reason
    p = np.where(allowed, p, 0.0)
    return (p / p.sum() if p.sum() > 0 else allowed / allowed.sum()), rule


def classify_with(
    model: RecoveryModel | None,
    features: pd.DataFrame,
    sites: pd.DataFrame,
    disturbed: Mapping[str, float],
    *,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """``predict_sites`` with a model, ``classify.classify_sites`` (the rules) without one."""
    if model is not None:
        return predict_sites(model, features, sites, cfg=cfg)
    from pipeline.recovery.classify import classify_sites

    return classify_sites(features, sites, disturbed, cfg=cfg)
