"""PNG charts for the report: the site map and one NDVI/BSI sparkline per site.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly, never
through ``pyplot``: no global figure registry to leak into, no backend switch forced on
the caller. Colours are the Okabe–Ito palette (distinguishable with the common forms of
colour blindness) and every recovery class also has its own hatching, so the map still
reads in grey print.

Labels inside PNGs are English unless matplotlib finds a CJK font, because a missing
font draws Chinese as empty boxes.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable, Mapping
from datetime import date
from functools import lru_cache

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import PIL.Image
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

# Okabe–Ito palette.
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

# Recovery class -> (fill colour, hatch). Hatching keeps classes apart in grey print.
CLASS_STYLE: dict[str, tuple[str, str]] = {
    "unrestored": (OKABE_ITO["orange"], "xx"),
    "revegetating": (OKABE_ITO["yellow"], ".."),
    "restored": (OKABE_ITO["bluish_green"], ""),
    "regressed": (OKABE_ITO["reddish_purple"], "//"),
    "disturbed": (OKABE_ITO["vermillion"], "\\\\"),
}
UNASSESSED_STYLE = ("#BBBBBB", "")
OPEN_FLAG_COLOUR = OKABE_ITO["blue"]
CLOSED_FLAG_COLOUR = "#666666"
NDVI_COLOUR = OKABE_ITO["bluish_green"]
BSI_COLOUR = OKABE_ITO["vermillion"]

CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC")

# Sparkline geometry: small and at screen resolution; one PNG is ~4-6 kB.
SPARK_SIZE_IN = (3.8, 1.7)
SPARK_DPI = 72
SPARK_YLIM = (-0.6, 1.25)  # NDVI and BSI of land surfaces, with room for the legend on top.
MAP_SIZE_IN = (7.5, 6.0)
MAP_DPI = 96
PNG_METADATA = {"Software": None}  # keep the PNG free of version strings and URLs


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Name of a CJK-capable font matplotlib knows, or None."""
    available = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in available:
            return name
    return None


def chart_language(language: str) -> str:
    """The language of labels inside PNGs: ``language`` if it can be drawn, else ``en``."""
    if language != "en" and find_cjk_font() is None:
        return "en"
    return language


def _rc(language: str) -> dict[str, object]:
    rc: dict[str, object] = {"font.size": 7, "axes.linewidth": 0.6, "hatch.linewidth": 0.6}
    font = find_cjk_font()
    if language != "en" and font is not None:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
    return rc


def png_data_uri(png: bytes) -> str:
    """A ``data:`` URI for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _to_png(fig: Figure, dpi: float) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=PNG_METADATA)
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
    with rc_context(_rc(lang)):
        fig = Figure(figsize=MAP_SIZE_IN)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        handles: list[object] = []

        site_ids = sites["site_id"].astype(str).to_numpy() if len(sites) else np.array([])
        classes = np.array([recovery_class.get(s, "") for s in site_ids], dtype=object)
        geoms = sites.geometry.to_numpy() if len(sites) else np.array([])
        bounds: list[tuple[float, float, float, float]] = []
        for cls in (*RECOVERY_CLASSES, ""):
            colour, hatch = CLASS_STYLE.get(cls, UNASSESSED_STYLE)
            path = _geometry_path(geoms[classes == cls]) if len(geoms) else None
            if path is None:
                continue
            ax.add_patch(
                PathPatch(path, facecolor=colour, edgecolor="#333333", hatch=hatch, lw=0.4)
            )
            bounds.append((*path.vertices.min(axis=0), *path.vertices.max(axis=0)))
            name = i18n.term(i18n.RECOVERY_CLASS_NAMES, cls, lang) if cls else labels["no_status"]
            n = int((classes == cls).sum())
            handles.append(
                Patch(facecolor=colour, edgecolor="#333333", hatch=hatch, label=f"{name} ({n})")
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
        return _to_png(fig, MAP_DPI)


# ---------------------------------------------------------------- sparklines


class SparklineRenderer:
    """Draws many NDVI/BSI sparklines on one reused figure.

    Every sparkline shares the date axis and the index range, so the frame (axes, ticks,
    labels, legend) is drawn once and kept as a bitmap; per site only the two lines and
    the restoration-start marker are drawn over a copy of it and the pixels are encoded
    as PNG. That is ~20x faster than a ``savefig`` per site.
    """

    def __init__(self, *, start: pd.Timestamp, end: pd.Timestamp, language: str) -> None:
        lang = chart_language(language)
        labels = i18n.CHART_TEXT[lang]
        self._labels = labels
        self._rc = _rc(lang)
        self._rc["font.size"] = 6.5
        if end <= start:
            end = start + pd.Timedelta(days=30)
        span = end - start
        self._x0 = float(mdates.date2num(start - span * 0.02))
        self._x1 = float(mdates.date2num(end + span * 0.02))
        with rc_context(self._rc):
            fig = Figure(figsize=SPARK_SIZE_IN, dpi=SPARK_DPI)
            self._canvas = FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            ax.axhline(0.0, color="#999999", lw=0.4)
            ax.set_xlim(self._x0, self._x1)
            ax.set_ylim(*SPARK_YLIM)
            locator = mdates.AutoDateLocator(minticks=2, maxticks=5)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            ax.set_yticks([-0.5, 0.0, 0.5, 1.0])
            ax.set_ylabel(labels["index"])
            ax.set_xlabel(labels["date"], labelpad=1)
            ax.tick_params(length=2, pad=1)
            ax.legend(
                handles=[
                    Line2D([], [], color=NDVI_COLOUR, lw=1.2, label="NDVI"),
                    Line2D([], [], color=BSI_COLOUR, lw=1.1, ls="--", label="BSI"),
                ],
                loc="upper left",
                ncol=2,
                frameon=False,
                handlelength=1.8,
                borderaxespad=0.1,
            )
            fig.subplots_adjust(left=0.19, right=0.97, bottom=0.25, top=0.97)
            (self._ndvi,) = ax.plot(
                [], [], color=NDVI_COLOUR, lw=1.2, marker="o", ms=2.0, animated=True
            )
            (self._bsi,) = ax.plot([], [], color=BSI_COLOUR, lw=1.1, ls="--", animated=True)
            self._start = ax.axvline(self._x0, color="black", lw=1.0, animated=True)
            self._note = ax.text(
                0.01, 0.03, "", transform=ax.transAxes, ha="left", va="bottom", animated=True
            )
            self._canvas.draw()
            self._background = self._canvas.copy_from_bbox(fig.bbox)
        self._fig = fig
        self._ax = ax

    def render(
        self,
        dates: pd.Series,
        ndvi: np.ndarray,
        bsi: np.ndarray,
        restoration_start: date | pd.Timestamp | None,
    ) -> bytes:
        """One PNG; NaN values (cloudy dates) drop out of the lines."""
        x = mdates.date2num(pd.DatetimeIndex(dates).to_pydatetime()) if len(dates) else np.array([])
        for line, values in ((self._ndvi, ndvi), (self._bsi, bsi)):
            y = np.asarray(values, dtype=float)
            ok = np.isfinite(y)
            line.set_data(x[ok], y[ok])
        artists: list[object] = [self._bsi, self._ndvi]
        if restoration_start is not None and not pd.isna(restoration_start):
            rs = pd.Timestamp(restoration_start)
            if rs.tzinfo is not None:
                rs = rs.tz_localize(None)
            xs = float(mdates.date2num(rs))
            if self._x0 <= xs <= self._x1:
                self._start.set_xdata([xs, xs])
                artists.insert(0, self._start)
            else:
                arrow = "◀" if xs < self._x0 else "▶"
                self._note.set_text(f"{arrow} {self._labels['restoration_start']} {rs:%Y-%m-%d}")
                artists.append(self._note)
        with rc_context(self._rc):
            self._canvas.restore_region(self._background)
            for artist in artists:
                self._ax.draw_artist(artist)
        rgba = np.asarray(self._canvas.buffer_rgba())
        buf = io.BytesIO()
        # A 64-colour palette keeps the antialiasing and cuts the PNG to about a third.
        image = PIL.Image.fromarray(rgba[..., :3]).quantize(
            colors=64, method=PIL.Image.Quantize.FASTOCTREE
        )
        image.save(buf, format="png", compress_level=6)
        return buf.getvalue()


def render_sparklines(
    timeseries: pd.DataFrame,
    restoration_starts: Mapping[str, object],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    language: str,
) -> dict[str, bytes]:
    """One NDVI/BSI sparkline PNG per site that has timeseries rows, keyed by site_id.

    Uses the median statistics when present (robust to mixed edge pixels), else the means.
    All sparklines share one date axis (``start``..``end``, default the timeseries range)
    so sites compare at a glance.
    """
    if timeseries.empty or "site_id" not in timeseries or "date" not in timeseries:
        return {}
    ts = timeseries.copy()
    dates = pd.to_datetime(ts["date"])
    ts["date"] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    ts = ts.sort_values(["site_id", "date"], kind="stable")
    start = pd.Timestamp(start) if start is not None else ts["date"].min()
    end = pd.Timestamp(end) if end is not None else ts["date"].max()
    ndvi_col = _first_column(ts, "ndvi_median", "ndvi_mean")
    bsi_col = _first_column(ts, "bsi_median", "bsi_mean")
    renderer = SparklineRenderer(start=start, end=end, language=language)
    out: dict[str, bytes] = {}
    nan = np.full(len(ts), np.nan)
    ndvi_all = ts[ndvi_col].to_numpy(dtype=float) if ndvi_col else nan
    bsi_all = ts[bsi_col].to_numpy(dtype=float) if bsi_col else nan
    dates_all = ts["date"]
    for site_id, idx in ts.groupby("site_id", sort=False).indices.items():
        out[str(site_id)] = renderer.render(
            dates_all.iloc[idx],
            ndvi_all[idx],
            bsi_all[idx],
            restoration_starts.get(str(site_id)),
        )
    return out


def _first_column(frame: pd.DataFrame, *names: str) -> str | None:
    for name in names:
        if name in frame and frame[name].notna().any():
            return name
    return None
