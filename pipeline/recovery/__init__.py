"""Recovery of restored sites: features from the time series, then a class per site.

``features.py`` describes each site alone (``site_features``); ``rings.py`` draws the
ring of surrounding land each site is compared with and ``relative.py`` compares them
and assembles the model's inputs (``model_features``, ``MODEL_FEATURES``);
``model.py`` trains, saves and safely loads the classifier; ``predict.py`` classifies
with it (``classify.py`` holds the rule set, ``recovery.model: rules``); ``status.py``
holds what both share, the target test and the ``site_status`` table; ``training.py``
turns labelled sites into training data for ``minewatch train`` (``pipeline/train.py``).
"""

from pipeline.recovery.classify import assess_sites, classify_sites
from pipeline.recovery.features import FEATURE_COLUMNS, site_features
from pipeline.recovery.relative import MODEL_FEATURES, model_features
from pipeline.recovery.status import site_status_table

__all__ = [
    "FEATURE_COLUMNS",
    "MODEL_FEATURES",
    "assess_sites",
    "classify_sites",
    "model_features",
    "site_features",
    "site_status_table",
]
