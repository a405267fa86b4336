"""The report's tables: the city's progress figures and the sortable, filterable site table.

The progress tables follow the source report's shape: per category (持证露天矿山,
责任主体灭失矿山, 非法无证采矿点, 采矿废石废渣) the number of sites, how many are
finished, the area and restored area in mu and the restoration rate, with a total row;
then the same per county, a subtotal row per county and a city total at the end.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pipeline.report import charts, i18n
from pipeline.report.markup import DASH, ImageSource, day, e, img, num, pct, present, raw
from pipeline.schema import ALL, CATEGORIES

_PROGRESS_NUMBERS = (
    ("sites", 0),
    ("sites_restored", 0),
    ("area_mu", 1),
    ("restored_area_mu", 1),
    ("restoration_rate_by_count_pct", 1),
    ("restoration_rate_by_area_pct", 1),
)


def _sum_progress(rows: pd.DataFrame) -> dict[str, float]:
    """A total row made from finer rows, when progress.csv lacks it."""
    total = {
        c: float(pd.to_numeric(rows[c], errors="coerce").sum())
        for c in ("sites", "sites_restored", "area_mu", "restored_area_mu")
    }
    total["restoration_rate_by_count_pct"] = (
        100 * total["sites_restored"] / total["sites"] if total["sites"] else math.nan
    )
    total["restoration_rate_by_area_pct"] = (
        100 * total["restored_area_mu"] / total["area_mu"] if total["area_mu"] else math.nan
    )
    return total


def _progress_row(label_html: str, row: Mapping[str, Any], css_class: str = "") -> str:
    cells = "".join(f'<td class="n">{num(row.get(c), d)}</td>' for c, d in _PROGRESS_NUMBERS)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<tr{cls}>{label_html}{cells}</tr>"


def _category_label(category: object, lang: str) -> str:
    name = e(i18n.term(i18n.CATEGORY_NAMES, category, lang))
    if lang != "zh-CN" and str(category) in i18n.CATEGORY_NAMES["zh-CN"]:
        official = e(i18n.CATEGORY_NAMES["zh-CN"][str(category)])
        name += f' <span class="term" lang="zh-CN">{official}</span>'
    return name


def progress_section(progress: pd.DataFrame, lang: str) -> str:
    """Progress by category, then by county, from ``progress.csv``'s rows."""
    t = i18n.text(lang)
    head = f'<section id="progress"><h2>{e(t["progress"])}</h2>'
    if progress is None or progress.empty:
        return head + f'<p class="empty">{e(t["no_progress"])}</p></section>\n'
    p = progress.copy()
    p["category"] = p["category"].astype(str)
    p["county"] = p["county"].astype(str)
    number_heads = "".join(
        f'<th scope="col">{e(t[k])}</th>'
        for k in (
            "sites",
            "sites_restored",
            "area_mu",
            "restored_area_mu",
            "rate_by_count",
            "rate_by_area",
        )
    )
    extra = [c for c in dict.fromkeys(p["category"]) if c not in CATEGORIES and c != ALL]
    categories = [c for c in (*CATEGORIES, *extra) if (p["category"] == c).any()]

    def total_of(rows: pd.DataFrame, detail: pd.DataFrame) -> Mapping[str, Any]:
        return rows.iloc[0].to_dict() if len(rows) else _sum_progress(detail)

    # By category: each category's ALL row, then the overall total.
    body = []
    for cat in categories:
        rows = p[p["category"] == cat]
        body.append(
            _progress_row(
                f'<th scope="row">{_category_label(cat, lang)}</th>',
                total_of(rows[rows["county"] == ALL], rows[rows["county"] != ALL]),
            )
        )
    overall = p[(p["category"] == ALL) & (p["county"] == ALL)]
    cat_totals = p[(p["category"] != ALL) & (p["county"] == ALL)]
    city_total = total_of(overall, cat_totals if len(cat_totals) else p[p["category"] != ALL])
    body.append(_progress_row(f'<th scope="row">{e(t["total"])}</th>', city_total, "total"))
    by_category = (
        f'<h3>{e(t["progress_by_category"])}</h3><table class="progress">'
        f'<thead><tr><th scope="col">{e(t["category"])}</th>{number_heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )

    # By county: a subtotal row per county, then its categories.
    body = []
    for county in sorted(c for c in dict.fromkeys(p["county"]) if c != ALL):
        rows = p[p["county"] == county]
        detail = rows[rows["category"] != ALL]
        body.append(
            _progress_row(
                f'<th scope="row">{e(county)}</th><td>{e(t["subtotal"])}</td>',
                total_of(rows[rows["category"] == ALL], detail),
                "total",
            )
        )
        for cat in categories:
            for _, row in detail[detail["category"] == cat].iterrows():
                body.append(
                    _progress_row(
                        f'<th scope="row">{e(county)}</th><td>{_category_label(cat, lang)}</td>',
                        row.to_dict(),
                    )
                )
    body.append(
        _progress_row(f'<th scope="row" colspan="2">{e(t["total"])}</th>', city_total, "total")
    )
    by_county = (
        f'<h3>{e(t["progress_by_county"])}</h3><table class="progress">'
        f'<thead><tr><th scope="col">{e(t["county"])}</th><th scope="col">'
        f"{e(t['category'])}</th>{number_heads}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return head + by_category + by_county + "</section>\n"


def open_flag_counts(flags: Iterable[dict]) -> Counter[str]:
    """site_id -> number of its open flags."""
    counts: Counter[str] = Counter()
    for f in flags:
        p = f.get("properties") or {}
        if present(p.get("site_id")) and charts.flag_is_open(p):
            counts[str(p["site_id"])] += 1
    return counts


def sites_section(
    status: pd.DataFrame,
    site_info: Mapping[str, Mapping[str, Any]],
    flags: list[dict],
    sparklines: Mapping[str, ImageSource],
    lang: str,
) -> str:
    """The site table: one row per site, sortable by column and filtered by a text box."""
    t = i18n.text(lang)
    head = f'<section id="sites"><h2>{e(t["site_table"])}</h2>'
    records = {str(r["site_id"]): r for r in status.to_dict("records")} if len(status) else {}
    site_ids = list(dict.fromkeys([*records, *site_info]))
    if not site_ids:
        return head + f'<p class="empty">{e(t["no_sites"])}</p></section>\n'
    open_flags = open_flag_counts(flags)
    # (label key, sort type or None)
    cols = [
        ("site_id", "text"),
        ("name", "text"),
        ("county", "text"),
        ("category", "text"),
        ("status", "text"),
        ("target", "text"),
        ("recovery_class", "text"),
        ("probability", "num"),
        ("vegetated", "num"),
        ("bare", "num"),
        ("water", "num"),
        ("restored_area_mu", "num"),
        ("meets_target", "text"),
        ("assessed_until", "text"),
        ("open_flags", "num"),
        ("trajectory", None),
    ]
    header = "".join(
        f'<th scope="col" data-type="{kind}">{e(t[key])}</th>'
        if kind
        else f'<th scope="col">{e(t[key])}</th>'
        for key, kind in cols
    )
    rows = []
    for sid in site_ids:
        r = records.get(sid, {})
        info = site_info.get(sid, {})

        def pick(key: str, r: Mapping[str, Any] = r, info: Mapping[str, Any] = info) -> Any:
            value = r.get(key)
            return value if present(value) else info.get(key)

        cls = r.get("recovery_class")
        cls_html = DASH
        if present(cls):
            cls_html = (
                f'<span class="swatch cls-{e(cls)}" aria-hidden="true"></span>'
                f"{e(i18n.term(i18n.RECOVERY_CLASS_NAMES, cls, lang))}"
            )
        meets = r.get("meets_target")
        meets_text = (
            t["yes"]
            if meets is True or str(meets).lower() == "true"
            else (t["no"] if present(meets) else "")
        )
        chart = (
            img(sparklines[sid], f"{t['trajectory']} {sid}", "spark") if sid in sparklines else DASH
        )
        cells = [
            f"<td><code>{e(sid)}</code></td>",
            f"<td>{e(info.get('name'))}</td>",
            f"<td>{e(pick('county'))}</td>",
            f"<td>{e(i18n.term(i18n.CATEGORY_NAMES, pick('category'), lang))}</td>",
            f"<td>{e(i18n.term(i18n.STATUS_NAMES, info.get('status'), lang))}</td>",
            f"<td>{e(i18n.term(i18n.TARGET_NAMES, pick('target'), lang))}</td>",
            f'<td data-v="{e(cls)}">{cls_html}</td>',
            *(
                f'<td class="n" data-v="{raw(r.get(k))}">{fmt}</td>'
                for k, fmt in (
                    ("probability", num(r.get("probability"), 2)),
                    ("vegetated_fraction", pct(r.get("vegetated_fraction"))),
                    ("bare_fraction", pct(r.get("bare_fraction"))),
                    ("water_fraction", pct(r.get("water_fraction"))),
                    ("restored_area_mu", num(r.get("restored_area_mu"), 1)),
                )
            ),
            f"<td>{e(meets_text)}</td>",
            f"<td>{day(r.get('assessed_until')) if r else DASH}</td>",
            f'<td class="n" data-v="{open_flags[sid]}">{open_flags[sid]}</td>',
            f"<td>{chart}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    controls = (
        f'<p id="site-filter-box" hidden><label for="site-filter">{e(t["filter"])}</label> '
        f'<input id="site-filter" type="search" placeholder="{e(t["filter_placeholder"])}"> '
        f'<output id="site-count" aria-live="polite"></output> '
        f'<span class="muted">{e(t["sort_hint"])}</span></p>'
    )
    return (
        head + controls + f'<p class="muted">{e(t["trajectory_caption"])}</p>'
        f'<div class="scroll"><table id="site-table" class="sites"><thead><tr>{header}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></section>\n"
    )
