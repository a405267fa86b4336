"""Drawing a flag's evidence: true-colour chips and the flag's NDVI/BSI trajectory.

Pure rendering from ``evidence.FlagEvidence`` (no reads). Chips are drawn with Pillow
straight from the pixels (a few milliseconds each, so a report of 200 flags draws its
400 chips in about a second); their date and clear share are written by the page beside
them, in the page's language. The trajectory is a matplotlib figure with the report's
colours and label vocabulary.

Chips use a fixed reflectance stretch (0-0.3 -> black-white) rather than a per-image
percentile stretch, so the before and after chips of a flag are directly comparable:
fresh rock and soil (red reflectance 0.15-0.3) show bright, vegetation dark. The flag
is outlined in blue on a white halo, readable in colour and in grey print, and every
chip carries a scale bar in metres.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache

import matplotlib.dates as mdates
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.report import charts, i18n
from pipeline.report.evidence import ChipLook, FlagEvidence

STRETCH = (0.0, 0.3)  # reflectance mapped to black..white in the chips
NODATA_GREY = 0.75
CHIP_PX = 240  # a chip is drawn at least this many pixels on its longer side
PLOT_SIZE_IN = (6.4, 2.8)
PLOT_DPI = 100

# Chart labels not in i18n.CHART_TEXT.
CHART_LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {"before": "变化前", "after": "变化后", "first": "首次发现"},
    "en": {"before": "before", "after": "after", "first": "first detected"},
}


def true_colour(rgb: np.ndarray) -> np.ndarray:
    """(y, x, 3) reflectance -> (y, x, 3) display values in 0..1; no data is light grey."""
    lo, hi = STRETCH
    out = np.clip((rgb - lo) / (hi - lo), 0.0, 1.0)
    return np.where(np.isnan(out), NODATA_GREY, out)


@lru_cache(maxsize=1)
def _label_font() -> PIL.ImageFont.ImageFont | PIL.ImageFont.FreeTypeFont:
    try:
        return PIL.ImageFont.load_default(size=13)
    except (OSError, TypeError):  # Pillow without FreeType: the small bitmap font
        return PIL.ImageFont.load_default()


def scale_bar_length(width_m: float) -> float:
    """A round length (1, 2 or 5 x 10^n m) of at most a third of ``width_m``."""
    bar = 10 ** math.floor(math.log10(max(width_m / 5, 1)))
    return bar * (5 if bar * 5 <= width_m / 3 else 2 if bar * 2 <= width_m / 3 else 1)


def chip_png(look: ChipLook, evidence: FlagEvidence) -> bytes:
    """One true-colour chip PNG with the flag outlined and a scale bar (metres)."""
    rows, cols = look.rgb.shape[:2]
    zoom = max(1, math.ceil(CHIP_PX / max(rows, cols, 1)))
    pixels = np.round(true_colour(look.rgb) * 255).astype(np.uint8)
    image = PIL.Image.fromarray(pixels, "RGB").resize(
        (cols * zoom, rows * zoom), PIL.Image.Resampling.NEAREST
    )
    draw = PIL.ImageDraw.Draw(image)
    for ring in evidence.outline:
        points = [(float(c) * zoom, float(r) * zoom) for c, r in ring]
        draw.line(points, fill="white", width=5, joint="curve")
        draw.line(points, fill=charts.OPEN_FLAG_COLOUR, width=2, joint="curve")
    width_m = cols * evidence.resolution_m
    bar_m = scale_bar_length(width_m)
    bar_px = bar_m / evidence.resolution_m * zoom
    x0, y0 = image.width * 0.05, image.height * 0.92
    label = f"{bar_m:g} m"
    font = _label_font()
    box = draw.textbbox((0, 0), label, font=font)
    draw.rectangle(
        (x0 - 4, y0 - (box[3] - box[1]) - 10, x0 + max(bar_px, box[2]) + 4, y0 + 6), fill="black"
    )
    draw.rectangle((x0, y0, x0 + bar_px, y0 + 3), fill="white")
    draw.text((x0, y0 - (box[3] - box[1]) - 6), label, fill="white", font=font)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=6)
    return buf.getvalue()


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
    with rc_context(charts.chart_rc(lang, font_size=8)):
        fig = Figure(figsize=PLOT_SIZE_IN)
        FigureCanvasAgg(fig)
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
        return charts.figure_png(fig, PLOT_DPI)
