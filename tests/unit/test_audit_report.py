"""The enforcement record and the estimate section of the report."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.report.audit import enforcement_record, enforcement_section, estimate_section

LEDGER = [
    {"county": "鲁山县", "violation": "outside_permit", "status": "confirmed"},
    {"county": "鲁山县", "violation": "outside_permit", "status": "resolved"},
    {"county": "鲁山县", "violation": "outside_permit", "status": "false_alarm"},
    {"county": "鲁山县", "violation": "unregistered", "status": "new"},
    {"county": "鲁山县", "violation": "within_permit", "status": "new"},  # not enforcement
    {"county": "宝丰县", "violation": "unregistered", "status": "false_alarm"},
    {"county": "宝丰县", "violation": "unregistered", "status": "dispatched"},
]


def test_enforcement_record__counts_and_precision_per_county_and_violation() -> None:
    record = enforcement_record(LEDGER)
    rows = {(r["county"], r["violation"]): r for r in record.to_dict("records")}
    assert list(rows) == [
        ("宝丰县", "unregistered"),
        ("宝丰县", "ALL"),
        ("鲁山县", "outside_permit"),
        ("鲁山县", "unregistered"),
        ("鲁山县", "ALL"),
        ("ALL", "ALL"),
    ]
    outside = rows[("鲁山县", "outside_permit")]
    assert (outside["issued"], outside["confirmed"], outside["false_alarm"], outside["open"]) == (
        3, 2, 1, 0)  # fmt: skip
    assert outside["precision"] == pytest.approx(0.667)
    assert pd.isna(rows[("鲁山县", "unregistered")]["precision"])  # nothing answered yet
    assert rows[("宝丰县", "unregistered")]["precision"] == 0.0
    city = rows[("ALL", "ALL")]
    assert (city["issued"], city["confirmed"], city["false_alarm"], city["open"]) == (6, 2, 2, 2)
    assert city["precision"] == 0.5


def test_enforcement_section__both_languages_name_the_figures() -> None:
    record = enforcement_record(LEDGER)
    zh = enforcement_section(record, "zh-CN")
    en = enforcement_section(record, "en")
    assert "执法核查记录" in zh and "越界开采" in zh and "查准率" in zh
    assert "Enforcement record" in en and "Mining outside the permit boundary" in en
    assert 'data-county="鲁山县" data-violation="outside_permit"' in en
    assert '<td class="n" data-col="precision">67%</td>' in en
    assert "No flag issued yet." in enforcement_section(pd.DataFrame(), "en")


def test_estimate_section__interval_and_accuracies() -> None:
    figure = {"value": 43.18, "se": 4.99, "ci95_low": 33.4, "ci95_high": 52.95}
    accuracy = {"value": 0.7191, "se": 0.0831, "ci95_low": 0.56, "ci95_high": 0.88}
    estimate = {
        "classes": {
            "excavation": {
                "mapped_area_mu": 31.05,
                "area_mu": figure,
                "users_accuracy": accuracy,
                "producers_accuracy": accuracy,
            },
        },
        "overall_accuracy": {"value": 0.9974, "se": 0.0011},
        "n": 400,
        "run_id": "R1",
    }
    zh = estimate_section(estimate, "zh-CN")
    en = estimate_section(estimate, "en")
    assert "新增开挖" in zh and "95% 置信区间（亩）" in zh
    assert '<td class="n" data-col="ci95">33.4 – 53.0</td>' in en
    assert '<td class="n" data-col="estimated">43.2</td>' in en
    assert '<td class="n" data-col="users">71.9% ± 8.3</td>' in en
    assert "99.7% ± 0.1" in en
    assert "minewatch sample" in estimate_section(None, "en")
