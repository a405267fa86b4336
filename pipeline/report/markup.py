"""The pieces every MineWatch page is made of: escaping, number formats, the page shell.

Both pages people read (``report.html`` and a county package's ``index.html``) are
built from these, so they look alike, escape alike and print alike. Every value that
comes from input files (ids, names, counties, comments, manifest fields) passes through
``e`` (``html.escape``) before it reaches a page. Styles and the few lines of script are
inlined: a page opens with no network, and reads fully without script (the script only
adds sorting and filtering to tables marked ``data-sortable``).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import pandas as pd

from pipeline.report import charts

DASH = "—"

ImageSource = bytes | str
"""PNG bytes (inlined as a ``data:`` URI) or a relative path next to the page."""


def e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute; missing values become ''."""
    if not present(value):
        return ""
    return html.escape(str(value), quote=True)


def present(value: object) -> bool:
    """False for None, NA, NaT, NaN and ''."""
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value == "")


def _number(value: object) -> float | None:
    """``value`` as a float, or None when it is missing, not a number or NaN."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def num(value: object, digits: int = 1) -> str:
    """A number with thousands separators, or a dash."""
    x = _number(value)
    return DASH if x is None else f"{x:,.{digits}f}"


def raw(value: object) -> str:
    """Sort key of a numeric cell ('' when missing)."""
    x = _number(value)
    return "" if x is None else repr(x)


def day(value: object) -> str:
    """A date (or the date part of a timestamp), escaped; a dash when missing."""
    if not present(value):
        return DASH
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    text = str(value)
    return e(text[:10] if len(text) >= 10 and text[4:5] == "-" else text)


def pct(fraction: object) -> str:
    """A fraction 0..1 as a whole percentage, or a dash."""
    x = _number(fraction)
    return DASH if x is None else f"{100 * x:.0f}%"


def image_src(image: ImageSource) -> str:
    """The ``src`` of an image: a PNG data URI for bytes, the escaped path for a str."""
    if isinstance(image, bytes):
        return "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    return e(image)


def img(image: ImageSource, alt: str, css_class: str) -> str:
    """An ``<img>`` of a PNG (inlined) or of a file beside the page."""
    return f'<img class="{css_class}" src="{image_src(image)}" alt="{e(alt)}">'


def page(
    *,
    lang: str,
    title: str,
    sections: Sequence[str],
    nav: Sequence[tuple[str, str]] = (),
    nav_label: str = "",
    footer: str = "",
    version: str = "",
) -> str:
    """A whole page: head with inlined style, title, table of contents, sections, script.

    ``nav`` holds (anchor id, label) pairs; ``sections`` are HTML made by the callers
    from escaped values.
    """
    nav_html = ""
    if nav:
        items = "".join(f'<li><a href="#{e(key)}">{e(label)}</a></li>' for key, label in nav)
        nav_html = f'<nav aria-label="{e(nav_label)}"><ul>{items}</ul></nav>\n'
    return "".join(
        [
            "<!DOCTYPE html>\n",
            f'<html lang="{e(lang)}">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f'<meta name="generator" content="MineWatch {e(version)}">\n',
            f"<title>{e(title)}</title>\n<style>{css()}</style>\n</head>\n<body>\n",
            f"<header><h1>{e(title)}</h1></header>\n",
            nav_html,
            "<main>\n",
            *sections,
            "</main>\n",
            f"<footer><p>{e(footer)}</p></footer>\n" if footer else "",
            f"<script>{_JS}</script>\n</body>\n</html>\n",
        ]
    )


def css() -> str:
    """The pages' style sheet, with a swatch class per recovery class."""
    swatches = "".join(
        f".cls-{name}{{background:{colour}}}" for name, (colour, _, _) in charts.CLASS_STYLE.items()
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
dl.provenance{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));
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
.chips{display:flex;gap:.4rem}.chips figure{margin:0;width:120px}
.chips img{display:block;width:120px;height:auto;border:1px solid #999}
.chips figcaption{font-size:.72rem;color:#444;line-height:1.2}
figure.plot img{max-width:100%;height:auto}
td.chips-cell{min-width:248px}td.nw{white-space:nowrap}td.site{min-width:7rem}
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
  var count = document.getElementById("site-count");
  function showCount() {
    if (!count) { return; }
    var shown = 0;
    for (var i = 0; i < body.rows.length; i++) { if (!body.rows[i].hidden) { shown++; } }
    count.textContent = shown + " / " + body.rows.length;
  }
  if (box && input) {
    box.hidden = false;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      for (var i = 0; i < body.rows.length; i++) {
        var row = body.rows[i];
        row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
      }
      showCount();
    });
    showCount();
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
