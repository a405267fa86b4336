"""Each model feature's training range, and the sites whose features fall outside it.

The card records, per feature, the smallest and largest value training saw and
whether it saw NaN (``feature_ranges``). A site outside them is one the model was
never shown; ``predict.py`` classes it by the rules instead (``outside_training_range``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.recovery.relative import MODEL_FEATURES

if TYPE_CHECKING:
    from pipeline.recovery.model import RecoveryModel

# How far past a feature's training min/max (as a share of its range) a value may lie
# before the site counts as outside the training range: a tenth. Generated training
# scenes sample the range; a value a little past the largest seen is the same kind of
# site, a value far past it (ten years since restoration when training saw four) is not.
RANGE_SLACK = 0.1

# Features whose range is recorded but not checked: counts of looks and seasons say how
# much imagery there was, not what the site is. They scale with the revisit and the
# period covered (a 5-day revisit doubles them, a two-year run has two seasons where
# training had three or four), and the site's surface features already say whether
# its seasons look like training's.
RANGE_UNCHECKED = frozenset({"n_clear_dates", "n_clear_latest", "n_season_latest", "n_seasons"})


def feature_ranges(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Each feature's training range: min, max and whether NaN was seen (the card's).

    A tree model answers outside this range with whatever its outermost leaf says,
    whether or not that means anything there; ``outside_training_range`` uses it to
    hand such sites to the rules.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in MODEL_FEATURES:
        values = table[name].to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        out[name] = {
            "min": round(float(finite.min()), 6) if finite.size else None,
            "max": round(float(finite.max()), 6) if finite.size else None,
            "nan_seen": bool(np.isnan(values).any()),
        }
    return out


def outside_training_range(model: RecoveryModel, features: pd.DataFrame) -> pd.Series:
    """Per row of ``features``: the first feature outside the card's range, or "" (inside).

    Outside means below ``min`` or above ``max`` by more than ``RANGE_SLACK`` of the
    range's width (the training scenes are a sample: a value just past the largest
    seen is not a new kind of site), or NaN where training never saw NaN. The counts
    of looks (``RANGE_UNCHECKED``) are not checked. A card without ranges (an older
    model) puts every row inside.
    """
    ranges = model.card.get("feature_ranges") or {}
    out = pd.Series("", index=features.index, dtype=object)
    for name in MODEL_FEATURES:
        spec = ranges.get(name)
        if not spec or name in RANGE_UNCHECKED:
            continue
        values = features[name].to_numpy(dtype="float64")
        bad = np.isnan(values) & (not spec.get("nan_seen", True))
        if spec.get("min") is not None and spec.get("max") is not None:
            slack = RANGE_SLACK * (spec["max"] - spec["min"])
            with np.errstate(invalid="ignore"):
                bad |= (values < spec["min"] - slack) | (values > spec["max"] + slack)
        out[bad & (out == "").to_numpy()] = name
    return out
