"""``progress.xlsx``: the progress figures in the shape of the city's own workbook.

Officials work in spreadsheets, so ``progress.csv`` is also written as a workbook laid
out like the city's table: a city sheet with one row per site category (持证露天矿山,
责任主体灭失矿山, 非法无证采矿点, 采矿废石废渣) and a total row, then one sheet per
county with its categories and a subtotal; columns are the number of sites, sites
finished, area and restored area in mu and the two restoration rates. Every figure is
the very value of ``progress.csv`` (same rounding); the county subtotal, which
``progress.csv`` has no row for, is summed from the county's rows.

When the workspace holds a sample-based estimate (``estimate.json``), the city's total
row also carries the estimated restored area with its 95 % confidence interval, and an
``estimate`` sheet lists, per class, the mapped and the estimated area in mu with its
interval and the user's and producer's accuracy with their standard errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.estimate import ESTIMATE_COLUMNS
from pipeline.outputs import write_atomic
from pipeline.report import i18n
from pipeline.report.audit_text import audit_text
from pipeline.schema import ALL, CATEGORIES

log = logging.getLogger(__name__)

PROGRESS_XLSX_FILE = "progress.xlsx"

# progress.csv column -> i18n.text key of its header.
FIGURES = (
    ("sites", "sites"),
    ("sites_restored", "sites_restored"),
    ("area_mu", "area_mu"),
    ("restored_area_mu", "restored_area_mu"),
    ("restoration_rate_by_count_pct", "rate_by_count"),
    ("restoration_rate_by_area_pct", "rate_by_area"),
)

_BOLD = Font(bold=True)
_SHEET_NAME_MAX = 31  # Excel's limit
_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _sheet_title(name: str, taken: set[str]) -> str:
    title = name.translate(_FORBIDDEN)[:_SHEET_NAME_MAX] or "_"
    stem, k = title, 2
    while title in taken:
        suffix = f" ({k})"
        title, k = stem[: _SHEET_NAME_MAX - len(suffix)] + suffix, k + 1
    taken.add(title)
    return title


def _value(v: Any) -> Any:
    """A cell value: numpy scalars as Python numbers, NaN and empty text as blank."""
    if v is None or (isinstance(v, float) and v != v) or v == "":
        return None
    return v.item() if hasattr(v, "item") else v


def _table(ws: Worksheet, title: str, head: list[str], rows: list[list[Any]]) -> None:
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(head)
    for cell in ws[2]:
        cell.font = _BOLD
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        ws.append([_value(v) for v in row])
    for col in range(1, len(head) + 1):
        ws.column_dimensions[get_column_letter(col)].width = 26 if col == 1 else 16
    ws.freeze_panes = "B3"


def _categories(progress: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(progress["category"]))
    return [c for c in CATEGORIES if c in present] + [
        c for c in present if c not in CATEGORIES and c != ALL
    ]


def _subtotal(rows: pd.DataFrame) -> list[Any]:
    sites, done = int(rows["sites"].sum()), int(rows["sites_restored"].sum())
    area, restored = float(rows["area_mu"].sum()), float(rows["restored_area_mu"].sum())
    return [
        sites,
        done,
        round(area, 2),
        round(restored, 2),
        round(100 * done / sites, 1) if sites else 0.0,
        round(100 * restored / area, 1) if area else 0.0,
    ]


def build_workbook(
    progress: pd.DataFrame, estimate: Mapping[str, Any] | None, *, language: str
) -> Workbook:
    """The workbook of ``progress`` (``progress.csv``'s rows) and the estimate if any."""
    lang = i18n.check_language(language)
    t, a = i18n.text(lang), audit_text(lang)
    p = progress.copy()
    p["category"], p["county"] = p["category"].astype(str), p["county"].astype(str)
    figures = [t[key] for _, key in FIGURES]
    has_estimate = estimate is not None and all(c in p.columns for c in ESTIMATE_COLUMNS)
    wb = Workbook()
    taken: set[str] = set()

    city = wb.active
    city.title = _sheet_title(a["sheet_city"], taken)
    head = [t["category"], *figures]
    if has_estimate:
        head += [a["restored_estimate"], a["ci95_low"], a["ci95_high"]]
    rows = []
    for cat in _categories(p):
        row = p[(p["category"] == cat) & (p["county"] == ALL)]
        if len(row):
            rows.append(
                [i18n.term(i18n.CATEGORY_NAMES, cat, lang), *(row.iloc[0][c] for c, _ in FIGURES)]
            )
    overall = p[(p["category"] == ALL) & (p["county"] == ALL)]
    if len(overall):
        total = [t["total"], *(overall.iloc[0][c] for c, _ in FIGURES)]
        if has_estimate:
            total += [overall.iloc[0][c] for c in ESTIMATE_COLUMNS]
        rows.append(total)
    _table(city, a["workbook_title"], head, rows)
    city.cell(row=len(rows) + 2, column=1).font = _BOLD

    for county in sorted(c for c in dict.fromkeys(p["county"]) if c != ALL):
        ws = wb.create_sheet(_sheet_title(county, taken))
        in_county = p[(p["county"] == county) & (p["category"] != ALL)]
        rows = [
            [i18n.term(i18n.CATEGORY_NAMES, cat, lang), *(r[c] for c, _ in FIGURES)]
            for cat in _categories(p)
            for _, r in in_county[in_county["category"] == cat].iterrows()
        ]
        rows.append([t["subtotal"], *_subtotal(in_county)])
        _table(ws, f"{county} {t['progress']}", [t["category"], *figures], rows)
        ws.cell(row=len(rows) + 2, column=1).font = _BOLD

    if estimate is not None:
        _estimate_sheet(wb.create_sheet(_sheet_title(a["sheet_estimate"], taken)), estimate, lang)
    return wb


def _estimate_sheet(ws: Worksheet, estimate: Mapping[str, Any], lang: str) -> None:
    a = audit_text(lang)
    head = [
        a["class"],
        a["mapped_mu"],
        a["estimated_mu"],
        a["se_mu"],
        a["ci95_low"],
        a["ci95_high"],
        a["users"],
        a["users_se"],
        a["producers"],
        a["producers_se"],
    ]
    rows = []
    for name, c in (estimate.get("classes") or {}).items():
        area, ua, pa = c["area_mu"], c["users_accuracy"], c["producers_accuracy"]
        rows.append(
            [
                a["classes"].get(name, name),
                c["mapped_area_mu"],
                area["value"],
                area["se"],
                area["ci95_low"],
                area["ci95_high"],
                ua["value"],
                ua["se"],
                pa["value"],
                pa["se"],
            ]
        )
    oa = estimate.get("overall_accuracy") or {}
    rows.append([a["overall"], None, None, None, None, None, oa.get("value"), oa.get("se")])
    rows.append([a["sample_size"], estimate.get("n")])
    rows.append([a["sample_run"], estimate.get("run_id")])
    _table(ws, a["estimate_title"], head, rows)


def write_progress_xlsx(
    path: Path, progress: pd.DataFrame, estimate: Mapping[str, Any] | None, *, language: str
) -> None:
    """Write ``progress.xlsx`` atomically (temporary name, then rename)."""
    wb = build_workbook(progress, estimate, language=language)
    write_atomic(Path(path), lambda tmp: wb.save(tmp))
    log.info("progress workbook written to %s", path)
