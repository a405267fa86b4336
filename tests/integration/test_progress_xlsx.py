"""progress.xlsx beside progress.csv: the same figures, shaped like the city's table."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.estimate import ESTIMATE_COLUMNS, ESTIMATE_FILE
from pipeline.report import i18n
from pipeline.report.progress_xlsx import PROGRESS_XLSX_FILE
from pipeline.sampling import write_sample

FIGURES = schema.PROGRESS_COLUMNS[2:]  # every column after category and county


def _sheet_rows(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, tuple]:
    """First-column label -> the row's values, for the data rows under the header."""
    return {str(r[0]): r[1:] for r in ws.iter_rows(min_row=3, values_only=True)}


def _assert_workbook_matches_csv(ws_dir: Path, language: str) -> openpyxl.Workbook:
    progress = pd.read_csv(ws_dir / schema.PROGRESS_FILE, keep_default_na=False)
    wb = openpyxl.load_workbook(ws_dir / PROGRESS_XLSX_FILE)
    names = i18n.CATEGORY_NAMES[language]
    t = i18n.text(language)
    city = _sheet_rows(wb.worksheets[0])
    cat_rows = progress[(progress["category"] != schema.ALL) & (progress["county"] == schema.ALL)]
    assert len(city) == len(cat_rows) + 1
    for _, row in cat_rows.iterrows():
        assert list(city[names[row["category"]]][:6]) == [row[c] for c in FIGURES]
    overall = progress[(progress["category"] == schema.ALL) & (progress["county"] == schema.ALL)]
    assert list(city[t["total"]][:6]) == [overall.iloc[0][c] for c in FIGURES]
    detail = progress[(progress["category"] != schema.ALL) & (progress["county"] != schema.ALL)]
    counties = sorted(set(detail["county"]))
    assert [ws.title for ws in wb.worksheets[1 : 1 + len(counties)]] == counties
    for county in counties:
        sheet = _sheet_rows(wb[county])
        rows = detail[detail["county"] == county]
        assert len(sheet) == len(rows) + 1  # and the subtotal
        for _, row in rows.iterrows():
            assert list(sheet[names[row["category"]]]) == [row[c] for c in FIGURES]
        sub = sheet[t["subtotal"]]
        assert sub[0] == rows["sites"].sum() and sub[1] == rows["sites_restored"].sum()
        assert sub[2] == pytest.approx(rows["area_mu"].sum(), abs=0.005)
    return wb


def test_run__progress_xlsx_has_progress_csv_figures(scenario_run: Path) -> None:
    wb = _assert_workbook_matches_csv(scenario_run, "en")
    assert wb.worksheets[0].title == "City"
    assert "Estimate" not in wb.sheetnames  # no sample-based estimate in this workspace
    progress = pd.read_csv(scenario_run / schema.PROGRESS_FILE)
    assert list(progress.columns) == list(schema.PROGRESS_COLUMNS)


def test_estimate__progress_csv_and_xlsx_carry_the_interval(
    fresh_copy: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "sample.csv"
    frame, _ = write_sample(fresh_copy, csv, n=300, seed=4)
    frame["reference"] = frame["map_class"]  # the labeller agrees with the map everywhere
    frame.to_csv(csv, index=False)
    assert main(["estimate", "--workspace", str(fresh_copy), "--sample", str(csv)]) == 0
    estimate = json.loads((fresh_copy / ESTIMATE_FILE).read_text())
    restored = estimate["classes"]["restored"]
    # Perfect agreement: estimates equal the mapped areas and intervals collapse.
    assert restored["area_mu"]["value"] == pytest.approx(restored["mapped_area_mu"], abs=0.01)
    assert estimate["overall_accuracy"]["value"] == 1.0
    progress = pd.read_csv(fresh_copy / schema.PROGRESS_FILE)
    assert list(progress.columns) == [*schema.PROGRESS_COLUMNS, *ESTIMATE_COLUMNS]
    overall = progress[(progress["category"] == schema.ALL) & (progress["county"] == schema.ALL)]
    assert [overall.iloc[0][c] for c in ESTIMATE_COLUMNS] == [
        restored["area_mu"]["value"],
        restored["area_mu"]["ci95_low"],
        restored["area_mu"]["ci95_high"],
    ]
    assert progress.drop(overall.index)[list(ESTIMATE_COLUMNS)].isna().all().all()
    wb = _assert_workbook_matches_csv(fresh_copy, "en")
    total = _sheet_rows(wb.worksheets[0])["Total"]
    assert list(total[6:9]) == [overall.iloc[0][c] for c in ESTIMATE_COLUMNS]
    sheet = _sheet_rows(wb["Estimate"])
    assert sheet["New excavation"][1] == estimate["classes"]["excavation"]["area_mu"]["value"]
    report = (fresh_copy / schema.REPORT_FILE).read_text(encoding="utf-8")
    excavation = estimate["classes"]["excavation"]["area_mu"]["value"]
    assert f'<td class="n" data-col="estimated">{excavation:,.1f}</td>' in report
    assert report.count('<section id="estimate">') == 1
    assert "minewatch sample" not in report  # the placeholder is gone
    assert sheet["Restored"][3:5] == (restored["area_mu"]["ci95_low"],
                                      restored["area_mu"]["ci95_high"])  # fmt: skip
