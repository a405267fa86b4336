"""What a site's status is made of, whichever decides its class: the target test and the table.

The rule set (``classify.py``) and the trained model (``predict.py``) both give
``CLASSIFIED_COLUMNS``; ``site_status_table`` turns either into ``site_status.csv``,
and ``target_margin`` is the target test behind ``meets_target`` in both.

Meeting the target (``meets_target``), latest window, thresholds from
``cfg.targets[target]``:

* forest / farmland / grassland (and any target other than ``landscape``):
  peak NDVI >= ``season_peak_ndvi_min``, vegetated fraction >=
  ``vegetated_fraction_min``, water fraction >= ``water_fraction_min``, and a seasonal
  amplitude >= ``SEASONAL_AMPLITUDE_MIN``. The amplitude test keeps green
  dust-control netting (constant NDVI 0.25-0.35, bare-like SWIR) from ever reading
  as restored, even under permissive thresholds. Caveat: a dense evergreen stand in
  a snow-free winter can swing by less and is then not counted as restored; the
  trained model (with field labels) is the place to correct that, not a looser rule.
* landscape: either the general test (peak, vegetated and water fractions, no
  amplitude test because water does not swing), or a pit lake: water fraction >=
  ``LANDSCAPE_LAKE_WATER_MIN`` with a vegetated margin >=
  ``LANDSCAPE_LAKE_MARGIN_VEGETATED_MIN``. A mostly-water site's median NDVI is
  below zero whatever its banks look like, so the peak NDVI test is skipped there.

``restored_area_m2`` is the whole site area for a site classed ``restored`` and 0
otherwise, so that "sites finished" and "area restored" in the city report always
agree and a site is not half-counted while still unstable. ``restored_area_mu`` is
that area in mu, rounded to 2 decimals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import RecoveryConfig, TargetThresholds
from pipeline.errors import InputError
from pipeline.recovery.features import COVER_BEFORE, COVER_NOW, RECENT_BARE, site_table
from pipeline.schema import M2_PER_MU, SITE_STATUS_COLUMNS

# Candidate config key ``recovery.seasonal_amplitude_min``: NDVI swing between winter
# and the season's peak that living vegetation shows. Deciduous and crop canopies
# swing 0.3-0.6; green netting and sprayed dust binders swing < 0.05.
SEASONAL_AMPLITUDE_MIN = 0.15

# Candidate config keys ``recovery.landscape_lake_water_min`` / ``_margin_vegetated_min``:
# a pit lake (围湖造景) is mostly water with a planted bank.
LANDSCAPE_LAKE_WATER_MIN = 0.5
LANDSCAPE_LAKE_MARGIN_VEGETATED_MIN = 0.05

# Targets judged as open water plus banks rather than as a canopy.
WATER_TARGETS = frozenset({"landscape"})

# Targets bare after every harvest: their last months against the same days a year
# before compare two harvest dates, not a die-back, and bare looks lately are no loss
# by themselves (``cover_lost``).
HARVESTED_TARGETS = frozenset({"farmland"})

# A site's plant cover gone, not merely paler (``cover_lost``): its core-season
# vegetated share fell by this much since the previous window, from at least
# COVERED_MIN (a site half vegetated, its NDVI at the line, flips with a dry spell), or
# its growing-season looks of the last RECENT_DAYS are at least this bare after a
# vegetated window.
COVER_LOSS_MIN = 0.5
COVERED_MIN = 0.8
BARE_NOW_MIN = 0.5
BARE_AFTER_MIN = 0.5  # the previous window's vegetated share a bare "now" is a loss after
FARMLAND_BARE_NOW_MIN = 0.9

# Margins: the distances that count as "clearly" past a threshold, in NDVI and in
# fractions of the site.
NDVI_MARGIN_SCALE = 0.1
FRACTION_MARGIN_SCALE = 0.1

CLASSIFIED_COLUMNS = (
    "recovery_class",
    "probability",
    "meets_target",
    "vegetated_fraction",
    "bare_fraction",
    "water_fraction",
    "disturbed_fraction",
    "rule",
    "assessed_until",
    "model_used",
)


# Classes that only a site whose restoration has begun can have.
NEEDS_RESTORATION = ("revegetating", "regressed")


def site_target(targets: pd.Series, site_id: object, cfg: RecoveryConfig) -> str:
    """The target of ``site_id`` from ``targets`` (by site_id), checked against the config.

    Raises ``InputError`` naming the site when it is not in the sites table or its
    target has no thresholds in ``cfg.targets``.
    """
    if site_id not in targets.index:
        raise InputError("site is not in the sites table", record=str(site_id), field="site_id")
    target = str(targets[site_id])
    if target not in cfg.targets:
        raise InputError(
            f"no recovery thresholds for target {target!r}", record=str(site_id), field="target"
        )
    return target


def site_status_table(classified: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """The ``site_status.csv`` table: ``SITE_STATUS_COLUMNS``, one row per site, by site_id.

    ``sites`` supplies ``category``, ``county``, ``target`` and ``area_m2``;
    ``restored_area_m2`` is ``area_m2`` for a ``restored`` site and 0 otherwise.
    """
    frame = site_table(sites)
    if "area_m2" not in frame.columns:
        raise InputError("sites have no area_m2 (the orchestrator must add it)", field="area_m2")
    missing = frame.loc[~frame["site_id"].isin(classified.index), "site_id"]
    if not missing.empty:
        raise InputError("site was not classified", record=str(missing.iloc[0]), field="site_id")
    table = frame[["site_id", "category", "county", "target", "area_m2"]].join(
        classified, on="site_id"
    )
    restored = table["recovery_class"] == "restored"
    table["restored_area_m2"] = np.where(restored, table["area_m2"].astype(float), 0.0).round(1)
    table["restored_area_mu"] = (table["restored_area_m2"] / M2_PER_MU).round(2)
    table = table.sort_values("site_id", kind="stable").reset_index(drop=True)
    return table.loc[:, list(SITE_STATUS_COLUMNS)]


def target_margin(
    feat: pd.Series,
    target: str,
    thresholds: TargetThresholds,
    *,
    window: str = "latest",
    slack_ndvi: float = 0.0,
    slack_fraction: float = 0.0,
) -> float:
    """Signed distance of a window from meeting its target (>= 0 means met; NaN unknown).

    In margin units: the weakest of the tests counts (every test must pass). For
    ``landscape`` the better of the general test and the pit-lake test counts.
    """
    if window == "latest":
        peak, veg, water = (
            feat["latest_peak_ndvi"],
            feat["vegetated_fraction"],
            feat["water_fraction"],
        )
        amplitude = feat["seasonal_amplitude"]
    else:
        peak, veg, water = (
            feat["previous_peak_ndvi"],
            feat["previous_vegetated_fraction"],
            feat["previous_water_fraction"],
        )
        amplitude = feat["previous_seasonal_amplitude"]

    def ndvi_test(value: float, minimum: float) -> float:
        return (value - (minimum - slack_ndvi)) / NDVI_MARGIN_SCALE

    def fraction_test(value: float, minimum: float) -> float:
        return (value - (minimum - slack_fraction)) / FRACTION_MARGIN_SCALE

    tests = [
        ndvi_test(peak, thresholds.season_peak_ndvi_min),
        fraction_test(veg, thresholds.vegetated_fraction_min),
    ]
    if thresholds.water_fraction_min > 0:
        tests.append(fraction_test(water, thresholds.water_fraction_min))
    if target not in WATER_TARGETS:
        tests.append(ndvi_test(amplitude, SEASONAL_AMPLITUDE_MIN))
    general = all_of(tests)
    if target not in WATER_TARGETS:
        return general
    lake = all_of(
        [
            fraction_test(water, LANDSCAPE_LAKE_WATER_MIN),
            fraction_test(veg, LANDSCAPE_LAKE_MARGIN_VEGETATED_MIN),
        ]
    )
    return any_of([general, lake])


def disturbed_margin(dug: float, cfg: RecoveryConfig) -> float:
    """Margin of ``disturbed`` (the site has a dig that counts, ``disturbance.py``).

    In units of ``cfg.disturbed_fraction_min``: a dig covering that share of the site
    or more is beyond doubt (margin 1); a small dig lying on the site is still a dig,
    with a margin that grows with its share.
    """
    return dug / (cfg.disturbed_fraction_min or 0.05)


def cover_lost(feat: pd.Series, target: str, cfg: RecoveryConfig) -> bool:
    """Whether a site's plant cover is gone, not merely paler: its core-season vegetated
    share fell by ``COVER_LOSS_MIN`` since the previous window, month by month over the
    months both windows have looks in (``vegetated_same_months`` against
    ``previous_vegetated_same_months``: a window ending in June is not weighed against
    last August's full canopy), from at least ``COVERED_MIN``; or its growing-season
    looks of the last months are mostly bare (``BARE_NOW_MIN``) after a previous window
    at least half vegetated (``BARE_AFTER_MIN``). Either holds only while the ring's
    peak held (within a third of ``regression_drop_min``; a drought pales the ring too,
    and does not bare the ground). A season peak reached before a die-back late in the
    imagery hides it; this does not. Farmland (``HARVESTED_TARGETS``) is bare after
    every harvest (and all summer where wheat alternates with fallow): its cover is
    lost only where its last months were bare through (``FARMLAND_BARE_NOW_MIN``) and
    its core season's share fell since the previous window (the windows' own shares:
    the bare months carry a field's evidence, and the months both windows have looks in
    may all fall before its die-back). Not for water targets (a pit lake's NDVI says
    nothing of planting)."""
    if target in WATER_TARGETS:
        return False
    was = feat["previous_vegetated_fraction"]
    ring_fell = feat.get("ring_peak_change", np.nan) < -cfg.regression_drop_min / 3
    bare_now = feat.get(RECENT_BARE, np.nan)
    if target in HARVESTED_TARGETS:
        fell = _fell(was, feat["vegetated_fraction"])
        return bool(not ring_fell and fell and bare_now >= FARMLAND_BARE_NOW_MIN)
    fell = _fell(feat.get(COVER_BEFORE, np.nan), feat.get(COVER_NOW, np.nan))
    return bool(not ring_fell and (fell or (bare_now >= BARE_NOW_MIN and was >= BARE_AFTER_MIN)))


def _fell(before: float, now: float) -> bool:
    """A vegetated share fell by ``COVER_LOSS_MIN`` from at least ``COVERED_MIN``."""
    return bool(before >= COVERED_MIN and before - now >= COVER_LOSS_MIN)


def margin_confidence(margin: float) -> float:
    """0.5 on the threshold (a coin toss), 1 a full margin scale beyond it; 0.5 if unknown."""
    if np.isnan(margin):
        return 0.5
    return 0.5 + 0.5 * min(1.0, abs(margin))


def all_of(margins: list[float]) -> float:
    """Margin of "every test passes": the weakest test; NaN if any test is unknown."""
    values = np.asarray(margins, dtype=float)
    return float("nan") if np.isnan(values).any() else float(values.min())


def any_of(margins: list[float]) -> float:
    """Margin of "some test passes": the strongest known test; NaN if none is known."""
    values = np.asarray(margins, dtype=float)
    return float("nan") if np.isnan(values).all() else float(np.nanmax(values))
