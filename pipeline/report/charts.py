"""The report's map of sites and flags, and what every chart shares: colours and fonts.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never
through ``pyplot``: no global figure registry to leak into, no backend switch forced on
the caller.

Colours survive colour blindness and grey print: the recovery classes are five samples
of viridis (perceptually uniform, monotonic in lightness, so each class is its own grey)
in the order of recovery, and each class also has its own hatching. Lines differ by
style as well as colour (NDVI solid with dots, BSI dashed, targets dotted).

Labels inside PNGs are Chinese when the page is and a CJK font is installed (the font
is registered with matplotlib even when its font cache predates the font); otherwise
English, because a missing font draws Chinese as empty boxes.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely.geometry
from matplotlib import font_manager, patheffects, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path

from pipeline.report import i18n
from pipeline.schema import RECOVERY_CLASSES

logger = logging.getLogger(__name__)

# Okabe–Ito palette (lines and outlines).
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}

# Recovery class -> (fill colour, hatch, hatch colour). Fills are viridis at 0, 0.3,
# 0.55, 0.78 and 1 (grey levels about 0.12, 0.35, 0.47, 0.65, 0.85), worst to best;
# hatching keeps classes apart where print or eyesight merges the fills.
CLASS_STYLE: dict[str, tuple[str, str, str]] = {
    "disturbed": ("#440154", "\\\\", "#FFFFFF"),
    "regressed": ("#3E4A89", "//", "#FFFFFF"),
    "unrestored": ("#25858E", "xx", "#FFFFFF"),
    "revegetating": ("#5DC863", "..", "#1A1A1A"),
    "restored": ("#FDE725", "", "#1A1A1A"),
}
UNASSESSED_STYLE = ("#FFFFFF", "", "#1A1A1A")
OPEN_FLAG_COLOUR = OKABE_ITO["blue"]
CLOSED_FLAG_COLOUR = "#666666"
NDVI_COLOUR = OKABE_ITO["bluish_green"]
BSI_COLOUR = OKABE_ITO["vermillion"]

CJK_FONTS = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",  # the first face of Debian's NotoSansCJK .ttc; it has every hanzi
    "Noto Sans SC",
    "Source Han Sans SC",
    "Droid Sans Fallback",
)
# File names of CJK fonts, for registering fonts installed after matplotlib's font cache.
CJK_FONT_FILES = ("wqy", "notosanscjk", "notoserifcjk", "sourcehan", "droidsansfallback")

MAP_SIZE_IN = (7.5, 6.0)
MAP_DPI = 120
PNG_METADATA = {"Software": None}  # keep the PNG free of version strings and URLs


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Name of a CJK-capable font matplotlib can use, or None.

    matplotlib caches its font list once; a font installed later (``apt-get install
    fonts-wqy-microhei``) is not in it, so system font files with a CJK name are
    registered here before giving up.
    """
    available = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in available), None)
    if found is None:
        for path in font_manager.findSystemFonts():
            if any(key in path.lower().replace("-", "") for key in CJK_FONT_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError) as exc:
                    logger.debug("font %s not usable: %s", path, exc)
        available = {f.name for f in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in available), None)
    logger.debug("CJK font for charts: %s", found)
    return found


def chart_language(language: str) -> str:
    """The language of labels inside PNGs: ``language`` if it can be drawn, else ``en``."""
    if language != "en" and find_cjk_font() is None:
        return "en"
    return language


def chart_rc(language: str, *, font_size: float = 7) -> dict[str, object]:
    """matplotlib settings of a chart in ``language`` (the CJK font first when Chinese)."""
    rc: dict[str, object] = {"font.size": font_size, "axes.linewidth": 0.6, "hatch.linewidth": 0.6}
    font = find_cjk_font()
    if language != "en" and font is not None:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
        rc["axes.unicode_minus"] = False  # CJK fonts often lack the minus sign
    return rc


def png_data_uri(png: bytes) -> str:
    """A ``data:`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig: Figure, dpi: float, *, tight: bool = False) -> bytes:
    """The figure as PNG bytes (no version strings in the metadata)."""
    buf = io.BytesIO()
    kwargs: dict[str, object] = {"bbox_inches": "tight", "pad_inches": 0.05} if tight else {}
    fig.savefig(buf, format="png", dpi=dpi, metadata=PNG_METADATA, **kwargs)
    return buf.getvalue()


# ---------------------------------------------------------------- map


def _geometry_path(geoms: Iterable[object]) -> Path | None:
    """One compound matplotlib Path of the polygon rings of ``geoms`` (holes kept)."""
    verts: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for geom in geoms:
        if geom is None or getattr(geom, "is_empty", True):
            continue
        parts = getattr(geom, "geoms", [geom])
        for poly in parts:
            if poly.geom_type != "Polygon":
                continue
            for ring in (poly.exterior, *poly.interiors):
                xy = np.asarray(ring.coords, dtype=float)[:, :2]
                if len(xy) < 3:
                    continue
                c = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
                c[0] = Path.MOVETO
                c[-1] = Path.CLOSEPOLY
                verts.append(xy)
                codes.append(c)
    if not verts:
        return None
    return Path(np.concatenate(verts), np.concatenate(codes))


def flag_is_open(props: Mapping[str, object]) -> bool:
    """An enforceable flag the ledger has not closed."""
    if props.get("violation") == "within_permit":
        return False
    return props.get("status") not in ("false_alarm", "resolved")


def render_map_png(
    sites: pd.DataFrame,
    recovery_class: Mapping[str, str],
    flags: list[dict],
    *,
    language: str,
) -> bytes:
    """Sites filled by recovery class, open flags outlined; lon/lat axes in degrees.

    ``sites`` is a GeoDataFrame in EPSG:4326 with ``site_id`` and ``geometry``;
    ``recovery_class`` maps site_id to its class (absent: not assessed).
    """
    lang = chart_language(language)
    labels = i18n.CHART_TEXT[lang]
    crs = getattr(sites, "crs", None)
    if crs is not None and crs.to_epsg() != 4326:
        sites = sites.to_crs(4326)
    with rc_context(chart_rc(lang)):
        fig = Figure(figsize=MAP_SIZE_IN)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        handles: list[object] = []

        site_ids = sites["site_id"].astype(str).to_numpy() if len(sites) else np.array([])
        classes = np.array([recovery_class.get(s, "") for s in site_ids], dtype=object)
        geoms = sites.geometry.to_numpy() if len(sites) else np.array([])
        bounds: list[tuple[float, float, float, float]] = []
        for cls in (*RECOVERY_CLASSES, ""):
            colour, hatch, hatch_colour = CLASS_STYLE.get(cls, UNASSESSED_STYLE)
            path = _geometry_path(geoms[classes == cls]) if len(geoms) else None
            if path is None:
                continue
            # The hatch takes the edge colour: one patch for fill and hatch, one for the edge.
            ax.add_patch(
                PathPatch(path, facecolor=colour, edgecolor=hatch_colour, hatch=hatch, lw=0)
            )
            ax.add_patch(PathPatch(path, facecolor="none", edgecolor="#333333", lw=0.5))
            bounds.append((*path.vertices.min(axis=0), *path.vertices.max(axis=0)))
            name = i18n.term(i18n.RECOVERY_CLASS_NAMES, cls, lang) if cls else labels["no_status"]
            n = int((classes == cls).sum())
            handles.append(
                Patch(facecolor=colour, edgecolor=hatch_colour, hatch=hatch, label=f"{name} ({n})")
            )

        open_geoms, closed_geoms, open_pts, closed_pts = [], [], [], []
        for feature in flags:
            props = feature.get("properties") or {}
            try:
                geom = shapely.geometry.shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError):
                geom = None
            is_open = flag_is_open(props)
            if geom is not None and geom.geom_type in ("Polygon", "MultiPolygon"):
                (open_geoms if is_open else closed_geoms).append(geom)
            else:
                pt = geom if geom is not None and geom.geom_type == "Point" else None
                lon, lat = (pt.x, pt.y) if pt is not None else (props.get("lon"), props.get("lat"))
                if lon is not None and lat is not None:
                    (open_pts if is_open else closed_pts).append((float(lon), float(lat)))
        halo = [patheffects.withStroke(linewidth=3.2, foreground="white")]
        for geoms_, pts, colour, lw, ls, label in (
            (closed_geoms, closed_pts, CLOSED_FLAG_COLOUR, 0.9, "--", labels["closed_flag"]),
            (open_geoms, open_pts, OPEN_FLAG_COLOUR, 1.8, "-", labels["open_flag"]),
        ):
            path = _geometry_path(geoms_)
            # A ring around each polygon flag too: at city scale a flag is a few pixels.
            pts = [
                *pts,
                *((g.representative_point().x, g.representative_point().y) for g in geoms_),
            ]
            if path is not None:
                patch = PathPatch(path, facecolor="none", edgecolor=colour, lw=lw, ls=ls, zorder=3)
                patch.set_path_effects(halo)
                ax.add_patch(patch)
                bounds.append((*path.vertices.min(axis=0), *path.vertices.max(axis=0)))
            if pts:
                xy = np.asarray(pts)
                ax.scatter(
                    xy[:, 0],
                    xy[:, 1],
                    s=36,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=lw,
                    zorder=3,
                )
                bounds.append((*xy.min(axis=0), *xy.max(axis=0)))
            if path is not None or pts:
                handles.append(
                    Line2D([], [], color=colour, lw=lw, ls=ls, marker="o", mfc="none", label=label)
                )

        if bounds:
            b = np.asarray(bounds)
            x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
            pad = max(x1 - x0, y1 - y0, 0.002) * 0.05
            ax.set_xlim(x0 - pad, x1 + pad)
            ax.set_ylim(y0 - pad, y1 + pad)
            # Equal ground distance on both axes at the map's latitude.
            ax.set_aspect(1.0 / max(np.cos(np.deg2rad((y0 + y1) / 2)), 0.1), adjustable="box")
        else:
            ax.text(0.5, 0.5, labels["no_sites"], ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(labels["lon"])
        ax.set_ylabel(labels["lat"])
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.grid(True, lw=0.3, color="#999999", alpha=0.6)
        if handles:
            ax.legend(
                handles=handles,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                frameon=False,
                fontsize=7,
            )
        fig.subplots_adjust(left=0.1, right=0.72, bottom=0.09, top=0.97)
        return figure_png(fig, MAP_DPI, tight=True)
