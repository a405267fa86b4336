"""Rule-based recovery classes from the site features (``recovery.model: rules``).

The trained model (``predict.py``) decides by default; these rules decide with
``recovery.model: rules`` and serve as the readable reference it was built to beat.
The target test behind ``meets_target`` (``target_margin``) and the ``site_status``
table, which serve both, are in ``status.py``.

The rules, in order (the first that holds decides):

1. ``disturbed``: the site has a fresh dig where digging is not allowed (from the
   excavation flags, ``disturbance.py``: restored or restoring land, a closed
   illegal site, a suspended quarry), whether or not its restoration has begun.
   New digging is a finding in itself and is never hidden behind an older green
   signal, so it comes first, even for a site without clear looks.
2. ``unrestored`` with probability 0 (rule ``no_clear_data``): no clear look in the
   latest window; the site's present state is unknown and nothing is claimed.
2b. ``regressed`` (rule ``recent_die_back``): greened before (an earlier or the
   previous season's peak near the target) and dying back now, though this season's
   peak, reached before, may still meet the target: the last ``RECENT_DAYS`` at least
   ``cfg.regression_drop_min`` below the same days a year before (not on farmland,
   where that compares two harvest dates), or its cover gone (``status.cover_lost``).
3. ``restored``: the latest window meets the target *and* the previous window met
   it too, or came within a small slack of it (``STABILITY_SLACK_NDVI``,
   ``STABILITY_SLACK_FRACTION``). domain.md: restored means the surface behaves like
   its target "stably, over at least one full growing season".
4. ``regressed``: not meeting the target now, an earlier season's peak had reached
   the target (within ``STABILITY_SLACK_NDVI``) or had greened by
   ``cfg.greening_gain_min`` over the first season, and the latest peak is at least
   ``cfg.regression_drop_min`` below that best earlier peak. This is the report's
   "planted, greened up, then died back" on thin topsoil: a failed restoration, for
   good. However long ago the die-back happened, the site stays ``regressed`` until
   it meets its target again (then ``revegetating``, and ``restored`` a season
   later); a site that never greened after its restoration began is ``unrestored``.
   For ``landscape`` a drop in NDVI while the water fraction meets its target is the
   pit lake filling, not die-back, and does not count.
5. ``revegetating``: not meeting a stable target but moving towards it: the latest
   window meets the target for the first time (stability not proven yet), or the
   latest peak is at least ``cfg.greening_gain_min`` above the first season's *and*
   the latest season swings by as much or by half the gain, whichever is less
   (netting does not swing; sparse plants on bare ground, whose winter rose too, swing
   by little more than half their gain), or the
   vegetated fraction rose by ``FRACTION_RISE_MIN`` since the previous window (for
   ``landscape`` also the water fraction).
6. ``unrestored``: everything else.

``probability`` is a heuristic confidence in the class, not a calibrated
probability (the trained model's is its ``predict_proba``)::

    probability = margin_confidence * data_confidence
    margin_confidence = 0.5 + 0.5 * min(1, |margin|)
    data_confidence = min(1, n_season_latest / FULL_CONFIDENCE_SEASON_LOOKS)

``margin`` is the deciding feature's distance from its threshold, in units of
``NDVI_MARGIN_SCALE`` (NDVI) or ``FRACTION_MARGIN_SCALE`` (fractions); where a class
rests on several tests, the weakest one counts. On the threshold the confidence is
0.5 (a coin toss); a full scale beyond it, 1. With few clear growing-season looks it
shrinks in proportion, and without any it is 0. ``disturbed`` rests on the
excavation flags, not on the season's looks: its margin is the dug fraction in units
of ``cfg.disturbed_fraction_min`` (``status.disturbed_margin``), and its data
confidence 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from pipeline.config import RecoveryConfig, TargetThresholds
from pipeline.recovery.features import LAST_CLEAR_DATE, site_features, site_table
from pipeline.recovery.status import (
    CLASSIFIED_COLUMNS,
    FRACTION_MARGIN_SCALE,
    HARVESTED_TARGETS,
    NDVI_MARGIN_SCALE,
    NEEDS_RESTORATION,
    WATER_TARGETS,
    all_of,
    any_of,
    cover_lost,
    disturbed_margin,
    margin_confidence,
    site_status_table,
    site_target,
    target_margin,
)

logger = logging.getLogger(__name__)

# Candidate config keys ``recovery.stability_slack_ndvi`` / ``_fraction``: how close to
# the target the previous window must have come for the latest one to count as
# stably restored (one hazy season should not undo a finished site).
STABILITY_SLACK_NDVI = 0.05
STABILITY_SLACK_FRACTION = 0.1

# Candidate config key ``recovery.fraction_rise_min``: rise in the vegetated (or, for
# landscape, water) fraction since the previous window that counts as progress:
# a tenth of the site.
FRACTION_RISE_MIN = 0.1

# Confidence: clear growing-season looks in the latest window for full confidence
# (about one every three weeks from April to October).
FULL_CONFIDENCE_SEASON_LOOKS = 10


def classify_sites(
    features: pd.DataFrame,
    sites: pd.DataFrame,
    disturbed: Mapping[str, float],
    *,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """Give every site of ``features`` a recovery class by the rules in the module docstring.

    ``features`` comes from ``site_features``; ``sites`` supplies each site's
    ``target``; ``disturbed`` maps site_id to the share of the site newly dug (absent
    means 0). Returns a frame indexed by ``site_id`` with ``CLASSIFIED_COLUMNS``:
    the class, its confidence, whether the latest window meets the target, the
    latest fractions, the dug fraction, the ``rule`` that decided, and
    ``assessed_until`` (the last clear look used, ``YYYY-MM-DD``, or None).
    """
    targets = site_table(sites).set_index("site_id")["target"]
    rows = []
    for site_id, feat in features.iterrows():
        target = site_target(targets, site_id, cfg)
        dug = float(disturbed.get(site_id, 0.0) or 0.0)
        row = _classify_one(feat, target, cfg.targets[target], dug, cfg)
        since = feat.get("days_since_restoration_start", np.nan)
        if row["recovery_class"] in NEEDS_RESTORATION and not (since >= 0):
            # Greening and regression describe a restoration; a site whose restoration
            # has not begun (a working pit losing its green margins, weeds on a
            # suspended site) is unrestored.
            row["recovery_class"] = "unrestored"
            row["rule"] = "no_restoration_yet"
        logger.debug(
            "site %s: %s by %s (probability %.2f)",
            site_id,
            row["recovery_class"],
            row["rule"],
            row["probability"],
        )
        rows.append(row)
    out = pd.DataFrame(rows, index=features.index, columns=list(CLASSIFIED_COLUMNS))
    out["meets_target"] = out["meets_target"].astype(bool)
    out["probability"] = out["probability"].astype("float64")
    out["model_used"] = False
    return out


def assess_sites(
    timeseries: pd.DataFrame,
    sites: pd.DataFrame,
    disturbed: Mapping[str, float],
    *,
    assessed_until: date,
    cfg: RecoveryConfig,
) -> pd.DataFrame:
    """Features, then classes, then the ``site_status`` table, in one call."""
    features = site_features(timeseries, sites, assessed_until=assessed_until, cfg=cfg)
    classified = classify_sites(features, sites, disturbed, cfg=cfg)
    return site_status_table(classified, sites)


def peak_near_target(peak: float, thresholds: TargetThresholds) -> float:
    """Margin of a season peak over the target's peak NDVI, less the stability slack."""
    return (peak - (thresholds.season_peak_ndvi_min - STABILITY_SLACK_NDVI)) / NDVI_MARGIN_SCALE


def _classify_one(
    feat: pd.Series,
    target: str,
    thresholds: TargetThresholds,
    dug: float,
    cfg: RecoveryConfig,
) -> dict[str, object]:
    last = feat[LAST_CLEAR_DATE]
    base: dict[str, object] = {
        "vegetated_fraction": feat["vegetated_fraction"],
        "bare_fraction": feat["bare_fraction"],
        "water_fraction": feat["water_fraction"],
        "disturbed_fraction": dug,
        "assessed_until": None if pd.isna(last) else pd.Timestamp(last).strftime("%Y-%m-%d"),
    }
    latest = target_margin(feat, target, thresholds)
    meets = bool(latest >= 0)
    data = min(1.0, float(np.nan_to_num(feat["n_season_latest"])) / FULL_CONFIDENCE_SEASON_LOOKS)

    def decide(recovery_class: str, rule: str, margin: float, data_conf: float = data) -> dict:
        probability = round(margin_confidence(margin) * data_conf, 3)
        return {
            **base,
            "recovery_class": recovery_class,
            "probability": probability,
            "meets_target": meets,
            "rule": rule,
        }

    # 1. New digging where digging is not allowed.
    if dug > 0:
        return decide("disturbed", "new_excavation", disturbed_margin(dug, cfg), 1.0)

    # 2. Nothing seen in the latest window.
    if not feat["n_clear_latest"] > 0:
        return decide("unrestored", "no_clear_data", np.nan, 0.0)

    # 2b. Greened before, and dying back now: the recent looks sit well below the same
    # time last year, although this season's peak (reached before the die-back) may
    # still meet the target.
    def near_target(peak: float) -> float:
        return peak_near_target(peak, thresholds)

    greened = any_of(
        [near_target(feat["best_earlier_peak_ndvi"]), near_target(feat["previous_peak_ndvi"])]
    )
    dying = (-feat["recent_ndvi_change"] - cfg.regression_drop_min) / NDVI_MARGIN_SCALE
    if target in HARVESTED_TARGETS:  # the last months against last year's: two harvest dates
        dying = np.nan
    if cover_lost(feat, target, cfg):  # the cover is gone, whatever the NDVI says
        dying = any_of([dying, 1.0])
    lake = target in WATER_TARGETS and feat["water_fraction"] >= FRACTION_RISE_MIN
    if greened >= 0 and dying >= 0 and not lake:
        return decide("regressed", "recent_die_back", all_of([greened, dying]))

    # 3. Meets the target now and (nearly) did over the previous season.
    previous = target_margin(
        feat,
        target,
        thresholds,
        window="previous",
        slack_ndvi=STABILITY_SLACK_NDVI,
        slack_fraction=STABILITY_SLACK_FRACTION,
    )
    if meets and previous >= 0:
        return decide("restored", "target_met_two_seasons", min(latest, previous))

    # 4. Greened (or reached the target) before, died back since.
    best, first, now = (
        feat["best_earlier_peak_ndvi"],
        feat["first_season_peak_ndvi"],
        feat["latest_peak_ndvi"],
    )
    reached = any_of(
        [
            near_target(best),
            (best - (first + cfg.greening_gain_min)) / NDVI_MARGIN_SCALE,
        ]
    )
    drop = (best - now - cfg.regression_drop_min) / NDVI_MARGIN_SCALE
    # A landscape site whose NDVI fell because its pit lake filled has not died back
    # (at least a tenth of the site must be water when the target sets no minimum).
    lake_filled = target in WATER_TARGETS and (
        feat["water_fraction"] >= max(thresholds.water_fraction_min, FRACTION_RISE_MIN)
    )
    if not meets and reached >= 0 and drop >= 0 and not lake_filled:
        return decide("regressed", "peak_drop", all_of([reached, drop, -latest]))

    # 5. Moving towards the target.
    if meets:
        return decide("revegetating", "target_met_once", all_of([latest, -previous]))
    # The gain must be living: the season swings by the gain line or by half the gain,
    # whichever is less. Sparse plants on bare ground swing by little more than half
    # their gain (their winter rose too); netting or a sprayed binder gains without any
    # swing.
    gain = now - first
    swing_min = min(cfg.greening_gain_min, gain / 2)
    progress = {
        "greening": all_of(
            [
                (gain - cfg.greening_gain_min) / NDVI_MARGIN_SCALE,
                (feat["seasonal_amplitude"] - swing_min) / NDVI_MARGIN_SCALE,
            ]
        ),
        "vegetated_fraction_rising": (feat["vegetated_fraction_change"] - FRACTION_RISE_MIN)
        / FRACTION_MARGIN_SCALE,
    }
    if target in WATER_TARGETS:
        progress["water_fraction_rising"] = (
            feat["water_fraction_change"] - FRACTION_RISE_MIN
        ) / FRACTION_MARGIN_SCALE
    rule, best_progress = max(
        progress.items(), key=lambda item: -np.inf if np.isnan(item[1]) else item[1]
    )
    if best_progress >= 0:
        return decide("revegetating", rule, all_of([best_progress, -latest]))

    # 6. Neither there nor on the way.
    return decide("unrestored", "no_progress", all_of([-latest, -best_progress]))
