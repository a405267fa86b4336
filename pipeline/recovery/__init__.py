"""Recovery of restored sites: features from the time series, then a class per site.

``features.py`` describes each site (``site_features``, ``FEATURE_COLUMNS``);
``classify.py`` decides (``classify_sites``, rules today, a trained model later) and
builds the ``site_status`` table (``site_status_table``, ``assess_sites``).
"""

from pipeline.recovery.classify import assess_sites, classify_sites, site_status_table
from pipeline.recovery.features import FEATURE_COLUMNS, site_features

__all__ = [
    "FEATURE_COLUMNS",
    "assess_sites",
    "classify_sites",
    "site_features",
    "site_status_table",
]
