"""Names shared by every module: dimensions, bands, variables, categories and output columns.

These mirror ``contracts.md``; a change here is a change of a public contract.
"""

from __future__ import annotations

# Cube dimensions.
TIME = "time"
Y = "y"
X = "x"

# Asset keys (Earth Search ``sentinel-2-l2a`` names).
REFLECTANCE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
BANDS_10M = ("blue", "green", "red", "nir")
BANDS_20M = ("swir16", "swir22")
SCL = "scl"
ALL_ASSETS = (*REFLECTANCE_BANDS, SCL)

# Sentinel-2 SCL codes treated as invalid by default:
# 0 no data, 1 defective, 3 cloud shadow, 8 cloud medium, 9 cloud high, 10 cirrus, 11 snow.
DEFAULT_INVALID_SCL = (0, 1, 3, 8, 9, 10, 11)

# Site vocabulary (domain.md).
CATEGORIES = ("licensed", "orphaned", "illegal", "waste_pile")
STATUSES = ("producing", "suspended", "closed", "restoring")
TARGETS = ("forest", "farmland", "grassland", "landscape")
RECOVERY_CLASSES = ("unrestored", "revegetating", "restored", "regressed", "disturbed")

# Violations (contracts.md). ``within_permit`` is recorded, not sent for enforcement.
VIOLATIONS = (
    "outside_permit",
    "illegal_site",
    "suspended_site",
    "restored_land",
    "no_mining_zone",
    "unregistered",
    "within_permit",
)
ENFORCEMENT_STATUSES = ("new", "dispatched", "confirmed", "false_alarm", "resolved")

M2_PER_MU = 666.67  # 1 mu (亩) = 666.67 m²
M2_PER_HA = 10_000.0

# Output files.
FLAGS_FILE = "flags.geojson"
SITE_STATUS_FILE = "site_status.csv"
PROGRESS_FILE = "progress.csv"
TIMESERIES_FILE = "timeseries.parquet"
REPORT_FILE = "report.html"
MANIFEST_FILE = "manifest.json"
OUTPUT_FILES = (
    FLAGS_FILE,
    SITE_STATUS_FILE,
    PROGRESS_FILE,
    TIMESERIES_FILE,
    REPORT_FILE,
    MANIFEST_FILE,
)

TIMESERIES_COLUMNS = (
    "site_id",
    "date",
    "n_pixels",
    "valid_fraction",
    "ndvi_mean",
    "ndvi_median",
    "bsi_mean",
    "bsi_median",
    "ndwi_mean",
    "vegetated_fraction",
    "bare_fraction",
    "water_fraction",
)

TIMESERIES_FILE_COLUMNS = (*TIMESERIES_COLUMNS, "sensor")
"""``timeseries.parquet``: the statistics and which sensor took each date
(``sentinel-2``, ``landsat``, or both joined by ``+``)."""

SITE_STATUS_COLUMNS = (
    "site_id",
    "category",
    "county",
    "target",
    "recovery_class",
    "probability",
    "vegetated_fraction",
    "bare_fraction",
    "water_fraction",
    "restored_area_m2",
    "restored_area_mu",
    "meets_target",
    "assessed_until",
    "model_used",
)
"""``model_used``: the trained model decided the class (false: the rule set did, because
``recovery.model`` is ``rules`` or the site's features lie outside the model's
training range)."""

# Added after the contract's columns: how long a closed illegal site has stayed quiet.
SITE_STATUS_EXTRA_COLUMNS = ("quiet_since", "quiet_days")

PROGRESS_COLUMNS = (
    "category",
    "county",
    "sites",
    "sites_restored",
    "area_mu",
    "restored_area_mu",
    "restoration_rate_by_count_pct",
    "restoration_rate_by_area_pct",
)

FLAG_PROPERTIES = (
    "flag_id",
    "first_detected",
    "confirmed",
    "last_seen",
    "area_m2",
    "area_mu",
    "confidence",
    "level",
    "violation",
    "site_id",
    "permit_id",
    "zone_ids",
    "county",
    "lon",
    "lat",
)

ALL = "ALL"
