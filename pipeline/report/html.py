"""``report.html``: one self-contained page rendered from a run's output tables.

Everything is inlined (styles, a few lines of vanilla JS, charts as base64 PNG data URIs),
so the file can be mailed or opened offline. The page reads fully without JS; JS only adds
sorting by column and a filter box to the site table.

Every value that comes from input files (ids, names, counties, comments, manifest fields)
passes through ``_e`` (``html.escape``) before it reaches the page.
"""

from __future__ import annotations

import html
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pipeline.report import charts, i18n
from pipeline.schema import ALL, CATEGORIES, M2_PER_MU

logger = logging.getLogger(__name__)

DASH = "—"


def render_report(
    *,
    site_status: pd.DataFrame,
    progress: pd.DataFrame,
    flags: list[dict],
    timeseries: pd.DataFrame,
    sites: pd.DataFrame,
    manifest: dict,
    language: str = i18n.DEFAULT_LANGUAGE,
    title: str | None = None,
) -> str:
    """Render the run's report page and return it as a string of HTML.

    ``site_status``, ``progress`` and ``timeseries`` have the contract columns
    (contracts.md); ``flags`` are GeoJSON Feature dicts with the contract flag properties
    (an optional ``status`` property carries the ledger's enforcement answer); ``sites`` is
    the GeoDataFrame of sites in EPSG:4326; ``manifest`` the run manifest (config_hash,
    version, model_version, period {start, end}, n_items, created). ``language`` is
    ``zh-CN`` or ``en``; ``title`` overrides the language's standard title.
    """
    lang = i18n.check_language(language)
    t = i18n.text(lang)
    page_title = title if title else t["title"]
    site_info = _site_info(sites)
    recovery = (
        {
            str(sid): str(cls)
            for sid, cls in zip(site_status["site_id"], site_status["recovery_class"], strict=True)
            if _present(cls)
        }
        if len(site_status)
        else {}
    )
    start, end = _period(manifest, timeseries)

    map_png = charts.render_map_png(sites, recovery, flags, language=lang)
    sparklines = charts.render_sparklines(
        timeseries,
        {sid: info.get("restoration_start") for sid, info in site_info.items()},
        start=start,
        end=end,
        language=lang,
    )
    logger.debug("report: %d sparklines, %d flags", len(sparklines), len(flags))

    sections = [
        _provenance(manifest, start, end, lang),
        _progress_section(progress, lang),
        _map_section(map_png, lang),
        _flags_section(flags, site_info, lang),
        _sites_section(site_status, site_info, flags, sparklines, lang),
    ]
    version = manifest.get("version") or ""
    return "".join(
        [
            "<!DOCTYPE html>\n",
            f'<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f'<meta name="generator" content="MineWatch {_e(version)}">\n',
            f"<title>{_e(page_title)}</title>\n<style>{_css()}</style>\n</head>\n<body>\n",
            f"<header><h1>{_e(page_title)}</h1></header>\n",
            _nav(lang),
            "<main>\n",
            *sections,
            "</main>\n",
            f"<footer><p>{_e(t['footer'].format(version=version))}</p></footer>\n",
            f"<script>{_JS}</script>\n</body>\n</html>\n",
        ]
    )


# ---------------------------------------------------------------- formatting


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute; missing values become ''."""
    if not _present(value):
        return ""
    return html.escape(str(value), quote=True)


def _present(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value == "")


def _num(value: object, digits: int = 1) -> str:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DASH
    return DASH if math.isnan(x) else f"{x:,.{digits}f}"


def _raw(value: object) -> str:
    """Sort key of a numeric cell ('' when missing)."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(x) else repr(x)


def _date(value: object) -> str:
    if not _present(value):
        return DASH
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    text = str(value)
    return _e(text[:10] if len(text) >= 10 and text[4:5] == "-" else text)


def _pct(fraction: object) -> str:
    try:
        x = float(fraction)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DASH
    return DASH if math.isnan(x) else f"{100 * x:.0f}%"


def _img(png: bytes, alt: str, css_class: str) -> str:
    return f'<img class="{css_class}" src="{charts.png_data_uri(png)}" alt="{_e(alt)}">'


# ---------------------------------------------------------------- inputs


def _site_info(sites: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """site_id -> its attribute dict (no geometry)."""
    if sites is None or len(sites) == 0 or "site_id" not in sites:
        return {}
    cols = [
        c
        for c in ("name", "county", "category", "status", "target", "restoration_start")
        if c in sites
    ]
    frame = pd.DataFrame(sites[["site_id", *cols]])
    return {str(r["site_id"]): r for r in frame.to_dict("records")}


def _period(manifest: Mapping[str, Any], timeseries: pd.DataFrame) -> tuple[Any, Any]:
    period = manifest.get("period") or {}
    start, end = period.get("start"), period.get("end")
    if (not start or not end) and len(timeseries) and "date" in timeseries:
        dates = pd.to_datetime(timeseries["date"])
        start, end = start or dates.min(), end or dates.max()
    try:
        start = pd.Timestamp(start).tz_localize(None) if start else None
        end = pd.Timestamp(end).tz_localize(None) if end else None
    except (TypeError, ValueError):
        start = end = None
    return start, end


# ---------------------------------------------------------------- sections


def _nav(lang: str) -> str:
    t = i18n.text(lang)
    items = "".join(
        f'<li><a href="#{key}">{_e(t[label])}</a></li>'
        for key, label in (
            ("progress", "progress"),
            ("map", "map"),
            ("flags", "flags"),
            ("sites", "site_table"),
        )
    )
    return f'<nav aria-label="{_e(t["nav"])}"><ul>{items}</ul></nav>\n'


def _provenance(manifest: Mapping[str, Any], start: Any, end: Any, lang: str) -> str:
    t = i18n.text(lang)
    period = f"{_date(start)} – {_date(end)}"
    rows = [
        (t["period"], period),
        (t["config_hash"], f"<code>{_e(manifest.get('config_hash')) or DASH}</code>"),
        (t["version"], _e(manifest.get("version")) or DASH),
        (t["model_version"], _e(manifest.get("model_version")) or DASH),
        (t["n_items"], _e(manifest.get("n_items")) or DASH),
        (t["created"], _e(manifest.get("created")) or DASH),
    ]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return (
        f'<section id="provenance"><h2>{_e(t["provenance"])}</h2>'
        f'<dl class="provenance">{items}</dl></section>\n'
    )


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
    cells = "".join(f'<td class="n">{_num(row.get(c), d)}</td>' for c, d in _PROGRESS_NUMBERS)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<tr{cls}>{label_html}{cells}</tr>"


def _category_label(category: object, lang: str) -> str:
    name = _e(i18n.term(i18n.CATEGORY_NAMES, category, lang))
    if lang != "zh-CN" and str(category) in i18n.CATEGORY_NAMES["zh-CN"]:
        official = _e(i18n.CATEGORY_NAMES["zh-CN"][str(category)])
        name += f' <span class="term" lang="zh-CN">{official}</span>'
    return name


def _progress_section(progress: pd.DataFrame, lang: str) -> str:
    t = i18n.text(lang)
    head = f'<section id="progress"><h2>{_e(t["progress"])}</h2>'
    if progress is None or progress.empty:
        return head + f'<p class="empty">{_e(t["no_progress"])}</p></section>\n'
    p = progress.copy()
    p["category"] = p["category"].astype(str)
    p["county"] = p["county"].astype(str)
    number_heads = "".join(
        f'<th scope="col">{_e(t[k])}</th>'
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
    body.append(
        _progress_row(
            f'<th scope="row">{_e(t["total"])}</th>',
            total_of(overall, cat_totals if len(cat_totals) else p[p["category"] != ALL]),
            "total",
        )
    )
    by_category = (
        f'<h3>{_e(t["progress_by_category"])}</h3><table class="progress">'
        f'<thead><tr><th scope="col">{_e(t["category"])}</th>{number_heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )

    # By county: a subtotal row per county, then its categories.
    body = []
    for county in sorted(c for c in dict.fromkeys(p["county"]) if c != ALL):
        rows = p[p["county"] == county]
        detail = rows[rows["category"] != ALL]
        body.append(
            _progress_row(
                f'<th scope="row">{_e(county)}</th><td>{_e(t["subtotal"])}</td>',
                total_of(rows[rows["category"] == ALL], detail),
                "total",
            )
        )
        for cat in categories:
            for _, row in detail[detail["category"] == cat].iterrows():
                body.append(
                    _progress_row(
                        f'<th scope="row">{_e(county)}</th><td>{_category_label(cat, lang)}</td>',
                        row.to_dict(),
                    )
                )
    by_county = (
        f'<h3>{_e(t["progress_by_county"])}</h3><table class="progress">'
        f'<thead><tr><th scope="col">{_e(t["county"])}</th><th scope="col">'
        f"{_e(t['category'])}</th>{number_heads}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return head + by_category + by_county + "</section>\n"


def _map_section(png: bytes, lang: str) -> str:
    t = i18n.text(lang)
    return (
        f'<section id="map"><h2>{_e(t["map"])}</h2><figure>'
        f"{_img(png, t['map_alt'], 'map')}"
        f"<figcaption>{_e(t['map_caption'])}</figcaption></figure></section>\n"
    )


def _flag_sort_key(props: Mapping[str, Any]) -> tuple[int, int, str, str]:
    return (
        props.get("violation") == "within_permit",
        props.get("level") != "high",
        str(props.get("county") or ""),
        str(props.get("first_detected") or ""),
    )


def _flags_section(flags: list[dict], site_info: Mapping[str, Mapping[str, Any]], lang: str) -> str:
    t = i18n.text(lang)
    head = f'<section id="flags"><h2>{_e(t["flags"])}</h2>'
    if not flags:
        return head + f'<p class="empty">{_e(t["no_flags"])}</p></section>\n'
    props_list = sorted(((f.get("properties") or {}) for f in flags), key=_flag_sort_key)
    n_record = sum(p.get("violation") == "within_permit" for p in props_list)
    has_status = any(_present(p.get("status")) for p in props_list)
    cols = [
        "flag_id",
        "violation",
        "county",
        "site",
        "area_m2",
        "area_mu",
        "first_detected",
        "confirmed",
        "last_seen",
        "level",
        *(["enforcement"] if has_status else []),
        "note",
    ]
    rows = []
    for p in props_list:
        record_only = p.get("violation") == "within_permit"
        site_id = p.get("site_id")
        site_html = DASH
        if _present(site_id):
            name = (site_info.get(str(site_id)) or {}).get("name")
            site_html = (
                f"{_e(name)} <code>{_e(site_id)}</code>"
                if _present(name)
                else f"<code>{_e(site_id)}</code>"
            )
        touches = [_e(p.get("permit_id"))] if _present(p.get("permit_id")) else []
        zone_ids = p.get("zone_ids") or []
        touches += [_e(z) for z in (zone_ids if isinstance(zone_ids, list) else [zone_ids])]
        if touches:
            site_html += f"<br><small>{', '.join(touches)}</small>"
        area_mu = p.get("area_mu")
        if not _present(area_mu) and _present(p.get("area_m2")):
            area_mu = float(p["area_m2"]) / M2_PER_MU
        confidence = _num(p.get("confidence"), 2)
        level = i18n.term(i18n.LEVEL_NAMES, p.get("level"), lang)
        confirmed = (
            _date(p.get("confirmed"))
            if _present(p.get("confirmed"))
            else (f'<span class="muted">{_e(t["unconfirmed"])}</span>')
        )
        cells = [
            f"<td><code>{_e(p.get('flag_id'))}</code></td>",
            f"<td>{_e(i18n.term(i18n.VIOLATION_NAMES, p.get('violation'), lang))}</td>",
            f"<td>{_e(p.get('county')) or DASH}</td>",
            f"<td>{site_html}</td>",
            f'<td class="n">{_num(p.get("area_m2"), 0)}</td>',
            f'<td class="n">{_num(area_mu, 2)}</td>',
            f"<td>{_date(p.get('first_detected'))}</td>",
            f"<td>{confirmed}</td>",
            f"<td>{_date(p.get('last_seen'))}</td>",
            f"<td>{_e(level) or DASH} ({confidence})</td>",
        ]
        if has_status:
            cells.append(f"<td>{_e(i18n.term(i18n.ENFORCEMENT_NAMES, p.get('status'), lang))}</td>")
        note = f"<strong>{_e(t['not_for_enforcement'])}</strong>" if record_only else ""
        cells.append(f"<td>{note}</td>")
        cls = ' class="within-permit"' if record_only else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    summary = t["flags_summary"].format(n=len(props_list), m=len(props_list) - n_record, k=n_record)
    header = "".join(f'<th scope="col">{_e(t[c])}</th>' for c in cols)
    return (
        head + f"<p>{_e(summary)}</p>"
        f'<div class="scroll"><table class="flags"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>\n"
    )


def _open_flag_counts(flags: Iterable[dict]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for f in flags:
        p = f.get("properties") or {}
        if _present(p.get("site_id")) and charts.flag_is_open(p):
            counts[str(p["site_id"])] += 1
    return counts


def _sites_section(
    status: pd.DataFrame,
    site_info: Mapping[str, Mapping[str, Any]],
    flags: list[dict],
    sparklines: Mapping[str, bytes],
    lang: str,
) -> str:
    t = i18n.text(lang)
    head = f'<section id="sites"><h2>{_e(t["site_table"])}</h2>'
    records = {str(r["site_id"]): r for r in status.to_dict("records")} if len(status) else {}
    site_ids = list(dict.fromkeys([*records, *site_info]))
    if not site_ids:
        return head + f'<p class="empty">{_e(t["no_sites"])}</p></section>\n'
    open_flags = _open_flag_counts(flags)
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
        f'<th scope="col" data-type="{kind}">{_e(t[key])}</th>'
        if kind
        else f'<th scope="col">{_e(t[key])}</th>'
        for key, kind in cols
    )
    rows = []
    for sid in site_ids:
        r = records.get(sid, {})
        info = site_info.get(sid, {})

        def pick(key: str, r: Mapping[str, Any] = r, info: Mapping[str, Any] = info) -> Any:
            value = r.get(key)
            return value if _present(value) else info.get(key)

        cls = r.get("recovery_class")
        cls_html = DASH
        if _present(cls):
            cls_html = (
                f'<span class="swatch cls-{_e(cls)}" aria-hidden="true"></span>'
                f"{_e(i18n.term(i18n.RECOVERY_CLASS_NAMES, cls, lang))}"
            )
        meets = r.get("meets_target")
        meets_text = (
            t["yes"]
            if meets is True or str(meets).lower() == "true"
            else (t["no"] if _present(meets) else "")
        )
        chart = (
            _img(sparklines[sid], f"{t['trajectory']} {sid}", "spark")
            if sid in sparklines
            else DASH
        )
        cells = [
            f"<td><code>{_e(sid)}</code></td>",
            f"<td>{_e(info.get('name'))}</td>",
            f"<td>{_e(pick('county'))}</td>",
            f"<td>{_e(i18n.term(i18n.CATEGORY_NAMES, pick('category'), lang))}</td>",
            f"<td>{_e(i18n.term(i18n.STATUS_NAMES, info.get('status'), lang))}</td>",
            f"<td>{_e(i18n.term(i18n.TARGET_NAMES, pick('target'), lang))}</td>",
            f'<td data-v="{_e(cls)}">{cls_html}</td>',
            *(
                f'<td class="n" data-v="{_raw(r.get(k))}">{fmt}</td>'
                for k, fmt in (
                    ("probability", _num(r.get("probability"), 2)),
                    ("vegetated_fraction", _pct(r.get("vegetated_fraction"))),
                    ("bare_fraction", _pct(r.get("bare_fraction"))),
                    ("water_fraction", _pct(r.get("water_fraction"))),
                    ("restored_area_mu", _num(r.get("restored_area_mu"), 1)),
                )
            ),
            f"<td>{_e(meets_text)}</td>",
            f"<td>{_date(r.get('assessed_until')) if r else DASH}</td>",
            f'<td class="n" data-v="{open_flags[sid]}">{open_flags[sid]}</td>',
            f"<td>{chart}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    controls = (
        f'<p id="site-filter-box" hidden><label for="site-filter">{_e(t["filter"])}</label> '
        f'<input id="site-filter" type="search" placeholder="{_e(t["filter_placeholder"])}"> '
        f'<span class="muted">{_e(t["sort_hint"])}</span></p>'
    )
    return (
        head + controls + f'<p class="muted">{_e(t["trajectory_caption"])}</p>'
        f'<div class="scroll"><table id="site-table" class="sites"><thead><tr>{header}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></section>\n"
    )


# ---------------------------------------------------------------- styles and script


def _css() -> str:
    swatches = "".join(
        f".cls-{name}{{background:{colour}}}" for name, (colour, _) in charts.CLASS_STYLE.items()
    )
    return _CSS + swatches


_CSS = """
:root{color-scheme:light}
body{font-family:system-ui,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",
"WenQuanYi Micro Hei",sans-serif;margin:0 auto;max-width:1400px;padding:0 1rem 2rem;
color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem;margin:1.2rem 0 .4rem}h2{border-bottom:2px solid #0072B2;
padding-bottom:.2rem;margin-top:2rem}h3{margin-bottom:.3rem}
nav ul{list-style:none;padding:0;display:flex;gap:1.2rem;flex-wrap:wrap}
nav a{color:#0072B2}
dl.provenance{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));
gap:.3rem 1.5rem}
dl.provenance dt{font-size:.8rem;color:#555}dl.provenance dd{margin:0;word-break:break-all}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0 1rem}
th,td{border:1px solid #bbb;padding:.25rem .45rem;text-align:left;vertical-align:middle}
thead th{background:#eef3f7;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total{font-weight:bold;background:#f6f6f6}
tr.within-permit{color:#555;
background:repeating-linear-gradient(135deg,#fff 0 6px,#f1f1f1 6px 12px)}
.term{color:#555;font-size:.85em}.muted{color:#666}.empty{font-style:italic}
.scroll{overflow-x:auto}
img.map{max-width:100%;height:auto;border:1px solid #ccc}
img.spark{display:block;width:274px;height:auto}
figure{margin:0}figcaption{font-size:.85rem;color:#444;max-width:60rem}
.swatch{display:inline-block;width:.8em;height:.8em;border:1px solid #333;margin-right:.3em;
vertical-align:-.05em}
button.sort{all:unset;cursor:pointer;text-decoration:underline dotted}
button.sort:focus-visible{outline:2px solid #0072B2}
th[aria-sort=ascending] button.sort::after{content:" \\25B2"}
th[aria-sort=descending] button.sort::after{content:" \\25BC"}
#site-filter{min-width:18rem;padding:.2rem}
footer{margin-top:2rem;font-size:.8rem;color:#666}
@media print{nav,#site-filter-box{display:none}thead th{position:static}
tr{break-inside:avoid}h2{break-after:avoid}}
"""

# Sorting by column and filtering for the site table; the page reads the same without it.
_JS = """
(function () {
  "use strict";
  var table = document.getElementById("site-table");
  if (!table || !table.tBodies.length) { return; }
  var body = table.tBodies[0];
  var box = document.getElementById("site-filter-box");
  var input = document.getElementById("site-filter");
  if (box && input) {
    box.hidden = false;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      for (var i = 0; i < body.rows.length; i++) {
        var row = body.rows[i];
        row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
      }
    });
  }
  var headers = table.tHead.rows[0].cells;
  function key(cell, numeric) {
    var v = cell.getAttribute("data-v");
    if (v === null) { v = cell.textContent.trim(); }
    if (!numeric) { return v === "\\u2014" ? "" : v; }
    var n = parseFloat(v);
    return isNaN(n) ? "" : n;
  }
  function sortBy(index) {
    var th = headers[index];
    var numeric = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    for (var j = 0; j < headers.length; j++) { headers[j].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
      if (x === "") { return y === "" ? 0 : 1; }
      if (y === "") { return -1; }
      var c = numeric ? x - y : String(x).localeCompare(String(y), document.documentElement.lang,
        { numeric: true });
      return asc ? c : -c;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
  }
  Array.prototype.forEach.call(headers, function (th, index) {
    if (!th.hasAttribute("data-type")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(index); });
  });
})();
"""
