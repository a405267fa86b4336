"""The city's progress table (``progress.csv``): sites done and area restored.

Shaped like the source report: per category and county, the number of sites, how
many are restored, their area and restored area in mu, and the restoration rate by
count and by area. Rows come in a stable order: categories in ``schema.CATEGORIES``
order (unknown categories after them, sorted), within each its counties sorted and
then its ``ALL`` row; last the overall ``ALL`` / ``ALL`` row.

Totals are summed in m² and converted once, so an ``ALL`` row's mu is the exact
total rounded (it can differ from the sum of rounded county rows by 0.01). Rates
are percentages rounded to 1 decimal, 0 when the denominator is 0.
"""

from __future__ import annotations

import pandas as pd

from pipeline.errors import InputError
from pipeline.recovery.features import site_table
from pipeline.schema import ALL, CATEGORIES, M2_PER_MU, PROGRESS_COLUMNS


def progress_table(site_status: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """Aggregate ``site_status`` (one row per site) into ``PROGRESS_COLUMNS``.

    ``sites`` supplies each site's total ``area_m2``; ``site_status`` supplies the
    category, county, recovery class and ``restored_area_m2``. A site counts as
    finished when its ``recovery_class`` is ``restored``.
    """
    frame = site_table(sites)
    if "area_m2" not in frame.columns:
        raise InputError("sites have no area_m2 (the orchestrator must add it)", field="area_m2")
    status = site_status[
        ["site_id", "category", "county", "recovery_class", "restored_area_m2"]
    ].merge(frame[["site_id", "area_m2"]], on="site_id", how="left", validate="one_to_one")
    missing = status.loc[status["area_m2"].isna(), "site_id"]
    if not missing.empty:
        raise InputError("site has no area_m2", record=str(missing.iloc[0]), field="area_m2")
    status["category"] = status["category"].astype(str)
    status["county"] = status["county"].astype(str)

    present = set(status["category"])
    categories = [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))
    rows = []
    for category in categories:
        in_category = status[status["category"] == category]
        for county in sorted(set(in_category["county"])):
            rows.append(_row(category, county, in_category[in_category["county"] == county]))
        rows.append(_row(category, ALL, in_category))
    rows.append(_row(ALL, ALL, status))
    table = pd.DataFrame(rows, columns=list(PROGRESS_COLUMNS))
    return table.astype({"sites": "int64", "sites_restored": "int64"})


def _row(category: str, county: str, group: pd.DataFrame) -> dict[str, object]:
    sites = len(group)
    restored = int((group["recovery_class"] == "restored").sum())
    area_m2 = float(group["area_m2"].sum())
    restored_m2 = float(group["restored_area_m2"].fillna(0).sum())
    return {
        "category": category,
        "county": county,
        "sites": sites,
        "sites_restored": restored,
        "area_mu": round(area_m2 / M2_PER_MU, 2),
        "restored_area_mu": round(restored_m2 / M2_PER_MU, 2),
        "restoration_rate_by_count_pct": _percent(restored, sites),
        "restoration_rate_by_area_pct": _percent(restored_m2, area_m2),
    }


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0
