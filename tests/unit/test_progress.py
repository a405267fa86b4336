"""The progress table against totals computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.progress import progress_table
from pipeline.schema import M2_PER_MU, PROGRESS_COLUMNS

# site, category, county, class, area in m² (chosen as whole or half mu).
SITES = [
    ("s1", "orphaned", "A", "restored", 10 * M2_PER_MU),
    ("s2", "orphaned", "A", "unrestored", 5 * M2_PER_MU),
    ("s3", "orphaned", "B", "restored", 20 * M2_PER_MU),
    ("s4", "illegal", "A", "revegetating", 1 * M2_PER_MU),
    ("s5", "illegal", "B", "restored", 3 * M2_PER_MU),
]


def _inputs(rows=SITES) -> tuple[pd.DataFrame, pd.DataFrame]:
    sites = pd.DataFrame(
        {
            "site_id": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "county": [r[2] for r in rows],
            "target": "forest",
            "area_m2": [r[4] for r in rows],
        }
    )
    status = pd.DataFrame(
        {
            "site_id": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "county": [r[2] for r in rows],
            "recovery_class": [r[3] for r in rows],
            "restored_area_m2": [r[4] if r[3] == "restored" else 0.0 for r in rows],
        }
    )
    return status, sites


@pytest.fixture
def table() -> pd.DataFrame:
    status, sites = _inputs()
    return progress_table(status, sites)


def test_progress_table__columns_follow_the_contract(table):
    assert tuple(table.columns) == PROGRESS_COLUMNS
    assert table["sites"].dtype == "int64"
    assert table["sites_restored"].dtype == "int64"


def test_progress_table__row_order(table):
    # Categories in schema order (orphaned before illegal), counties sorted, ALL last.
    assert list(zip(table["category"], table["county"], strict=True)) == [
        ("orphaned", "A"),
        ("orphaned", "B"),
        ("orphaned", "ALL"),
        ("illegal", "A"),
        ("illegal", "B"),
        ("illegal", "ALL"),
        ("ALL", "ALL"),
    ]


def test_progress_table__hand_computed_totals(table):
    expected = pd.DataFrame(
        [
            # sites, restored, area mu, restored mu, % by count, % by area
            ("orphaned", "A", 2, 1, 15.0, 10.0, 50.0, 66.7),  # 10/15
            ("orphaned", "B", 1, 1, 20.0, 20.0, 100.0, 100.0),
            ("orphaned", "ALL", 3, 2, 35.0, 30.0, 66.7, 85.7),  # 2/3, 30/35
            ("illegal", "A", 1, 0, 1.0, 0.0, 0.0, 0.0),
            ("illegal", "B", 1, 1, 3.0, 3.0, 100.0, 100.0),
            ("illegal", "ALL", 2, 1, 4.0, 3.0, 50.0, 75.0),
            ("ALL", "ALL", 5, 3, 39.0, 33.0, 60.0, 84.6),  # 33/39 = 0.84615
        ],
        columns=list(PROGRESS_COLUMNS),
    )
    pd.testing.assert_frame_equal(table, expected)


def test_progress_table__input_order_does_not_matter(table):
    status, sites = _inputs(list(reversed(SITES)))
    pd.testing.assert_frame_equal(progress_table(status, sites), table)


def test_progress_table__zero_denominators_give_zero_rates():
    rows = [("z1", "waste_pile", "C", "unrestored", 0.0), ("z2", "licensed", "C", "disturbed", 0.0)]
    status, sites = _inputs(rows)
    table = progress_table(status, sites)
    assert list(table["category"]) == ["licensed", "licensed", "waste_pile", "waste_pile", "ALL"]
    assert (table["restoration_rate_by_area_pct"] == 0.0).all()
    assert (table["restoration_rate_by_count_pct"] == 0.0).all()
    assert table.iloc[-1]["sites"] == 2


def test_progress_table__unknown_category_comes_after_known_ones():
    rows = [*SITES, ("s6", "quarry_pond", "A", "restored", 2 * M2_PER_MU)]
    status, sites = _inputs(rows)
    table = progress_table(status, sites)
    assert list(table["category"])[-3:] == ["quarry_pond", "quarry_pond", "ALL"]
    overall = table.iloc[-1]
    assert overall["sites"] == 6
    assert overall["area_mu"] == 41.0
    assert overall["restored_area_mu"] == 35.0


def test_progress_table__from_site_status_table():
    # End to end from the recovery stage's own table.
    from datetime import date

    from pipeline.config import RecoveryConfig
    from pipeline.recovery import classify_sites, site_features, site_status_table

    _, sites = _inputs()
    sites["restoration_start"] = date(2021, 1, 1)
    days = pd.date_range("2021-01-15", "2023-12-15", freq="MS") + pd.Timedelta(days=14)
    frames = []
    for site_id, *_rest, klass, _area in SITES:
        green = klass == "restored"
        month = days.month
        ndvi = 0.3 + 0.55 * ((month >= 5) & (month <= 9)) if green else 0.1 + 0 * month
        frames.append(
            pd.DataFrame(
                {
                    "site_id": site_id,
                    "date": days,
                    "n_pixels": 100,
                    "valid_fraction": 1.0,
                    "ndvi_mean": ndvi,
                    "ndvi_median": ndvi,
                    "bsi_mean": -0.1 if green else 0.2,
                    "bsi_median": -0.1 if green else 0.2,
                    "ndwi_mean": -0.5,
                    "vegetated_fraction": 0.9 * (ndvi > 0.4),
                    "bare_fraction": 0.0 if green else 0.9,
                    "water_fraction": 0.0,
                }
            )
        )
    cfg = RecoveryConfig()
    features = site_features(pd.concat(frames), sites, assessed_until=date(2023, 12, 31), cfg=cfg)
    status = site_status_table(classify_sites(features, sites, {}, cfg=cfg), sites)
    assert list(status["recovery_class"]) == [
        "restored",
        "unrestored",
        "restored",
        "unrestored",
        "restored",
    ]
    overall = progress_table(status, sites).iloc[-1]
    assert overall["sites_restored"] == 3
    assert overall["restored_area_mu"] == 33.0
    assert overall["restoration_rate_by_area_pct"] == 84.6
