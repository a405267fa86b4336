"""Drawing the county package: true-colour chips, flag trajectories and ``index.html``.

Pure rendering from arrays and dicts (no reads); ``package.py`` gathers the data.
Figures use ``matplotlib.figure.Figure`` with the Agg canvas, the report's Okabe–Ito
colours and its label vocabulary (``i18n``); labels inside PNGs fall back to English
when no CJK font is installed, as in the report.

Chips use a fixed reflectance stretch (0-0.3 -> black-white) rather than a
per-image percentile stretch, so the before and after chips of a flag are directly
comparable: fresh rock and soil (red reflectance 0.15-0.3) show bright, vegetation dark.
"""

from __future__ import annotations

import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

import matplotlib.dates as mdates
import numpy as np
from affine import Affine
from matplotlib import patheffects, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from shapely.geometry.base import BaseGeometry

from pipeline import __version__
from pipeline.report import charts, i18n

log = logging.getLogger(__name__)

STRETCH = (0.0, 0.3)  # reflectance mapped to black..white in the chips
NODATA_GREY = 0.75
CHIP_SIZE_IN = (3.3, 3.6)
PLOT_SIZE_IN = (6.4, 2.8)
DPI = 100
PNG_METADATA = {"Software": None}

# Labels this package adds to the report's vocabulary (i18n.py holds the shared ones).
LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "疑似违法开采图斑核查包",
        "summary": "{county}：{n} 处待核查图斑。",
        "no_flags": "{county}：0 处待核查图斑。",
        "before": "变化前",
        "after": "变化后",
        "clear": "无云",
        "no_image": "无可用影像",
        "downloads": "数据下载",
        "chips_caption": (
            "真彩色影像（红、绿、蓝波段，反射率 0–0.3 线性拉伸），蓝色边框为图斑范围；"
            "左：首次发现前最清晰的一景，右：确认后最清晰的一景。"
        ),
        "plot_caption": (
            "图斑内晴空像元的中位数：绿色实线 NDVI，红色虚线 BSI（无量纲）；"
            "黑色竖线为首次发现日期。"
        ),
        "zones": "禁采区",
        "permit": "采矿许可",
        "location": "位置（经度, 纬度）",
        "run": "监测运行",
    },
    "en": {
        "title": "Enforcement package: suspected illegal excavation",
        "summary": "{county}: {n} open flags.",
        "no_flags": "{county}: 0 flags.",
        "before": "Before",
        "after": "After",
        "clear": "clear",
        "no_image": "no usable image",
        "downloads": "Data",
        "chips_caption": (
            "True colour (red, green, blue; reflectance 0-0.3 stretched linearly), the flag "
            "outlined in blue; left: clearest look before first detection, right: clearest "
            "look after confirmation."
        ),
        "plot_caption": (
            "Median over the flag's clear pixels: green solid line NDVI, vermillion dashed "
            "line BSI (unitless); black vertical line: first detected."
        ),
        "zones": "Zones",
        "permit": "Permit",
        "location": "Location (lon, lat)",
        "run": "Monitoring run",
    },
}

# Chart labels not in i18n.CHART_TEXT.
CHART_LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {"before": "变化前", "after": "变化后", "clear": "无云", "first": "首次发现"},
    "en": {"before": "before", "after": "after", "clear": "clear", "first": "first detected"},
}


def _rc(lang: str) -> dict[str, object]:
    rc: dict[str, object] = {"font.size": 8, "axes.linewidth": 0.6}
    font = charts.find_cjk_font()
    if lang != "en" and font is not None:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
    return rc


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buf.getvalue()


def true_colour(rgb: np.ndarray) -> np.ndarray:
    """(y, x, 3) reflectance -> (y, x, 3) display values in 0..1; no data is light grey."""
    lo, hi = STRETCH
    out = np.clip((rgb - lo) / (hi - lo), 0.0, 1.0)
    return np.where(np.isnan(out), NODATA_GREY, out)


def _rings(geom: BaseGeometry) -> list[np.ndarray]:
    parts = getattr(geom, "geoms", [geom])
    rings = []
    for poly in parts:
        if poly.geom_type == "Polygon":
            rings += [np.asarray(r.coords)[:, :2] for r in (poly.exterior, *poly.interiors)]
    return rings


def chip_png(
    rgb: np.ndarray,
    transform: Affine,
    geom: BaseGeometry,
    flag_id: str,
    which: str,
    day: date,
    clear_fraction: float,
    language: str,
) -> bytes:
    """One true-colour chip (grid CRS, metres) with the flag outlined and the date in the title."""
    lang = charts.chart_language(language)
    labels = CHART_LABELS[lang]
    rows, cols = rgb.shape[:2]
    left, top, res = transform.c, transform.f, transform.a
    extent = (left, left + cols * res, top - rows * res, top)
    with rc_context(_rc(lang)):
        fig = Figure(figsize=CHIP_SIZE_IN)
        ax = fig.add_axes((0.02, 0.02, 0.96, 0.84))
        ax.imshow(true_colour(rgb), extent=extent, interpolation="nearest", origin="upper")
        halo = [patheffects.withStroke(linewidth=3.0, foreground="white")]
        for ring in _rings(geom):
            (line,) = ax.plot(ring[:, 0], ring[:, 1], color=charts.OPEN_FLAG_COLOUR, lw=1.6)
            line.set_path_effects(halo)
        # A scale bar of a round length near a fifth of the chip's width.
        width = cols * res
        bar = 10 ** math.floor(math.log10(max(width / 5, 1)))
        bar *= 5 if bar * 5 <= width / 3 else 2 if bar * 2 <= width / 3 else 1
        x0, y0 = extent[0] + width * 0.05, extent[2] + rows * res * 0.06
        (sb,) = ax.plot([x0, x0 + bar], [y0, y0], color="white", lw=2.5, solid_capstyle="butt")
        sb.set_path_effects([patheffects.withStroke(linewidth=4.0, foreground="black")])
        ax.text(
            x0 + bar / 2,
            y0 + rows * res * 0.025,
            f"{bar:g} m",
            color="white",
            ha="center",
            va="bottom",
            path_effects=[patheffects.withStroke(linewidth=2.0, foreground="black")],
        )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"{flag_id}\n{labels[which]} {day.isoformat()} ({labels['clear']} "
            f"{clear_fraction:.0%})",
            fontsize=8,
        )
        return _png(fig)


def trajectory_png(
    dates: Sequence[date],
    ndvi: np.ndarray,
    bsi: np.ndarray,
    flag_id: str,
    first_detected: date,
    marks: Mapping[str, date | None],
    language: str,
) -> bytes:
    """NDVI and BSI of the flag's clear looks, first detection marked; chip dates ticked."""
    lang = charts.chart_language(language)
    labels = {**i18n.CHART_TEXT[lang], **CHART_LABELS[lang]}
    with rc_context(_rc(lang)):
        fig = Figure(figsize=PLOT_SIZE_IN)
        ax = fig.add_subplot()
        ax.axhline(0.0, color="#999999", lw=0.4)
        if len(dates):
            x = mdates.date2num(list(dates))
            ax.plot(x, ndvi, color=charts.NDVI_COLOUR, lw=1.2, marker="o", ms=2.5, label="NDVI")
            ax.plot(x, bsi, color=charts.BSI_COLOUR, lw=1.1, ls="--", marker=".", label="BSI")
        ax.axvline(
            mdates.date2num(first_detected),
            color="black",
            lw=1.2,
            label=f"{labels['first']} {first_detected.isoformat()}",
        )
        for key in ("before", "after"):
            day = marks.get(key)
            if day is not None:
                ax.axvline(mdates.date2num(day), color="#666666", lw=0.8, ls=":")
                ax.annotate(
                    labels[key],
                    (mdates.date2num(day), 1.0),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="#444444",
                )
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(-0.6, 1.0)
        ax.set_xlabel(labels["date"])
        ax.set_ylabel(labels["index"])
        ax.grid(True, lw=0.3, color="#999999", alpha=0.6)
        ax.legend(loc="lower left", fontsize=7, frameon=False, ncol=3)
        fig.suptitle(flag_id, fontsize=8, y=0.99)
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.17, top=0.86)
        return _png(fig)


# ---------------------------------------------------------------- index.html


class _Look(Protocol):
    date: str
    clear_fraction: float
    file: str


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute; None becomes ''."""
    return "" if value is None else html.escape(str(value), quote=True)


def _num(value: object, digits: int) -> str:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(x) else f"{x:,.{digits}f}"


def _figure(look: _Look | None, which: str, lang: str) -> str:
    pl = LABELS[lang]
    if look is None:
        missing = _e(pl["no_image"])
        return f'<figure class="chip missing"><figcaption>{missing}</figcaption></figure>'
    return (
        f'<figure class="chip"><a href="{_e(look.file)}"><img src="{_e(look.file)}" '
        f'alt="{_e(pl[which])} {_e(look.date)}"></a><figcaption>{_e(pl[which])} '
        f"{_e(look.date)} ({_e(pl['clear'])} {look.clear_fraction:.0%})</figcaption></figure>"
    )


def _flag_section(
    props: Mapping[str, Any], before: Any, after: Any, plot: str | None, lang: str
) -> str:
    t, pl = i18n.text(lang), LABELS[lang]
    fid = props.get("flag_id")
    zones = props.get("zone_ids") or []
    zones = zones if isinstance(zones, list) else [zones]
    area_mu = props.get("area_mu")
    rows = [
        (t["violation"], i18n.term(i18n.VIOLATION_NAMES, props.get("violation"), lang)),
        (t["enforcement"], i18n.term(i18n.ENFORCEMENT_NAMES, props.get("status"), lang)),
        (t["site_id"], props.get("site_id") or "—"),
        (pl["permit"], props.get("permit_id") or "—"),
        (pl["zones"], ", ".join(str(z) for z in zones) or "—"),
        (t["area_m2"], _num(props.get("area_m2"), 0)),
        (t["area_mu"], _num(area_mu if area_mu is not None else math.nan, 2)),
        (t["first_detected"], props.get("first_detected") or "—"),
        (t["confirmed"], props.get("confirmed") or t["unconfirmed"]),
        (t["last_seen"], props.get("last_seen") or "—"),
        (
            t["level"],
            f"{i18n.term(i18n.LEVEL_NAMES, props.get('level'), lang)} "
            f"({_num(props.get('confidence'), 2)})",
        ),
        (pl["location"], f"{_num(props.get('lon'), 6)}, {_num(props.get('lat'), 6)}"),
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    plot_html = (
        f'<figure class="plot"><img src="{_e(plot)}" alt="NDVI/BSI {_e(fid)}">'
        f"<figcaption>{_e(pl['plot_caption'])}</figcaption></figure>"
        if plot
        else ""
    )
    return (
        f'<section class="flag" id="{_e(fid)}"><h2>{_e(t["flag_id"])} <code>{_e(fid)}</code></h2>'
        f'<table class="props">{table}</table>'
        f'<div class="chips">{_figure(before, "before", lang)}{_figure(after, "after", lang)}</div>'
        f'<p class="caption">{_e(pl["chips_caption"])}</p>{plot_html}</section>\n'
    )


_CSS = (
    "body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:1.5em;"
    "color:#222;max-width:62em}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}"
    "table.props{border-collapse:collapse;font-size:.9em}table.props th{text-align:left;"
    "padding:.15em 1em .15em 0;color:#555;font-weight:normal}.chips{display:flex;gap:1em;"
    "flex-wrap:wrap}figure{margin:.5em 0}figure img{max-width:100%}.chip img{width:330px}"
    ".caption,figcaption{font-size:.85em;color:#555}section.flag{border-top:1px solid #ccc}"
)


def index_html(
    *,
    county: str,
    flags: Sequence[tuple[Mapping[str, Any], Any, Any, str | None]],
    run_manifest: Mapping[str, Any],
    language: str,
) -> str:
    """The package's page: one section per flag (properties, chips, trajectory).

    ``flags`` holds, per flag, its properties, the before and after looks (objects
    with ``date``, ``clear_fraction`` and ``file``, or None) and the plot's path.
    Every string from input files is escaped.
    """
    lang = i18n.check_language(language)
    t, pl = i18n.text(lang), LABELS[lang]
    title = f"{county} · {pl['title']}"
    summary = (pl["summary"] if flags else pl["no_flags"]).format(county=county, n=len(flags))
    period = run_manifest.get("period") or {}
    provenance = (
        f"<p><small>{_e(pl['run'])} <code>{_e(run_manifest.get('run_id'))}</code> · "
        f"{_e(t['period'])} {_e(period.get('start'))} – {_e(period.get('end'))} · "
        f"{_e(t['config_hash'])} <code>{_e(run_manifest.get('config_hash'))}</code> · "
        f"MineWatch {_e(__version__)}</small></p>"
    )
    toc = "".join(
        f'<li><a href="#{_e(p.get("flag_id"))}"><code>{_e(p.get("flag_id"))}</code></a> '
        f"{_e(i18n.term(i18n.VIOLATION_NAMES, p.get('violation'), lang))} · "
        f"{_e(_num(p.get('area_mu'), 2))} {_e('亩' if lang == 'zh-CN' else 'mu')}</li>"
        for p, *_ in flags
    )
    sections = "".join(_flag_section(p, b, a, plot, lang) for p, b, a, plot in flags)
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n<p>{_e(summary)}</p>\n{provenance}\n"
        f'<p>{_e(pl["downloads"])}: <a href="flags.csv">flags.csv</a> · '
        f'<a href="flags.geojson">flags.geojson</a></p>\n'
        f"<ol>{toc}</ol>\n{sections}</body>\n</html>\n"
    )
