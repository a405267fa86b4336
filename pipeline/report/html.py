"""``report.html``: one self-contained page rendered from a run's output tables.

Sections, in the order a reader asks: where the figures come from (provenance), how far
restoration has come (progress by category and county, ``tables``), where the sites and
open flags are (map, ``charts``), what to act on (the flag list with before/after
chips, ``flag_list``), and every site with its trajectory (``tables``). Everything is
inlined (``markup``): styles, a few lines of script, images as PNG data URIs, so the
file can be mailed or opened offline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.config import RecoveryConfig, TargetThresholds
from pipeline.report import charts, i18n
from pipeline.report.audit import enforcement_section, estimate_section
from pipeline.report.audit_text import audit_text
from pipeline.report.evidence import FlagEvidence
from pipeline.report.flag_list import flags_section, inline_pictures
from pipeline.report.markup import DASH, day, e, img, page
from pipeline.report.sparklines import render_sparklines
from pipeline.report.tables import progress_section, sites_section

logger = logging.getLogger(__name__)


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
    evidence: Mapping[str, FlagEvidence] | None = None,
    estimate: Mapping[str, Any] | None = None,
    enforcement: pd.DataFrame | None = None,
) -> str:
    """Render the run's report page and return it as a string of HTML.

    ``site_status``, ``progress`` and ``timeseries`` have the contract columns
    (contracts.md); ``flags`` are GeoJSON Feature dicts with the contract flag properties
    (an optional ``status`` property carries the ledger's enforcement answer); ``sites`` is
    the GeoDataFrame of sites in EPSG:4326; ``manifest`` the run manifest (config_hash,
    version, model_version, period {start, end}, inputs.items or n_items, created, and
    config.recovery.targets for the target lines). ``language`` is ``zh-CN`` or ``en``;
    ``title`` overrides the language's standard title. ``evidence`` (flag_id ->
    before/after looks, from ``evidence_reads.load_flag_evidence``) adds image chips to the
    flag list. ``estimate`` (``estimate.json``) adds the sample-based area estimate and
    ``enforcement`` (``audit.enforcement_record``) the county teams' answers.
    """
    lang = i18n.check_language(language)
    t = i18n.text(lang)
    page_title = title if title else t["title"]
    site_info = _site_info(sites)
    recovery = (
        {
            str(sid): str(cls)
            for sid, cls in zip(site_status["site_id"], site_status["recovery_class"], strict=True)
            if isinstance(cls, str) and cls
        }
        if len(site_status)
        else {}
    )
    start, end = _period(manifest, timeseries)

    map_png = charts.render_map_png(sites, recovery, flags, language=lang)
    sparklines = render_sparklines(
        timeseries,
        {sid: info.get("restoration_start") for sid, info in site_info.items()},
        targets=_target_lines(site_info, manifest, lang),
        start=start,
        end=end,
        language=lang,
    )
    pictures = inline_pictures(evidence, lang) if evidence is not None else None
    logger.debug("report: %d sparklines, %d flags", len(sparklines), len(flags))

    version = str(manifest.get("version") or "")
    return page(
        lang=lang,
        title=page_title,
        nav=[
            ("progress", t["progress"]),
            ("map", t["map"]),
            ("flags", t["flags"]),
            ("estimate", audit_text(lang)["estimate"]),
            ("enforcement", audit_text(lang)["enforcement"]),
            ("sites", t["site_table"]),
            ("provenance", t["provenance"]),
        ],
        nav_label=t["nav"],
        sections=[
            _provenance(manifest, start, end, lang),
            progress_section(progress, lang),
            _map_section(map_png, lang),
            flags_section(flags, site_info, lang, pictures=pictures),
            estimate_section(estimate, lang),
            enforcement_section(enforcement, lang),
            sites_section(site_status, site_info, flags, sparklines, lang),
        ],
        footer=t["footer"].format(version=version),
        version=version,
    )


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


def _target_lines(
    site_info: Mapping[str, Mapping[str, Any]], manifest: Mapping[str, Any], lang: str
) -> dict[str, tuple[str, float]]:
    """site_id -> (label, season-peak NDVI its target asks for), from the run's config."""
    raw = ((manifest.get("config") or {}).get("recovery") or {}).get("targets")
    targets = RecoveryConfig().targets
    if isinstance(raw, Mapping):
        try:
            targets = {str(k): TargetThresholds.model_validate(v) for k, v in raw.items()}
        except ValueError:
            logger.warning("report: the manifest's recovery targets are unreadable; defaults used")
    label = i18n.CHART_TEXT[charts.chart_language(lang)]["target"]
    out = {}
    for sid, info in site_info.items():
        threshold = targets.get(str(info.get("target")))
        if threshold is not None:
            out[sid] = (label, threshold.season_peak_ndvi_min)
    return out


# ---------------------------------------------------------------- sections


def _provenance(manifest: Mapping[str, Any], start: Any, end: Any, lang: str) -> str:
    t = i18n.text(lang)
    items = (manifest.get("inputs") or {}).get("items")
    n_items = manifest.get("n_items", len(items) if isinstance(items, list) else None)
    period = manifest.get("period") or {}
    n_dates = period.get("n_dates") if isinstance(period, Mapping) else None
    covered = f"{day(start)} – {day(end)}"
    if n_dates:
        covered += f" ({e(n_dates)} {e(t['dates'])})"
    rows = [
        (t["period"], covered),
        (t["config_hash"], f"<code>{e(manifest.get('config_hash')) or DASH}</code>"),
        (t["model_version"], e(manifest.get("model_version")) or DASH),
        (t["version"], e(manifest.get("version")) or DASH),
        (t["n_items"], e(n_items) or DASH),
        (t["run_id"], f"<code>{e(manifest.get('run_id')) or DASH}</code>"),
        (t["created"], e(manifest.get("created")) or DASH),
    ]
    items_html = "".join(f"<div><dt>{e(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return (
        f'<section id="provenance"><h2>{e(t["provenance"])}</h2>'
        f'<dl class="provenance">{items_html}</dl></section>\n'
    )


def _map_section(png: bytes, lang: str) -> str:
    t = i18n.text(lang)
    return (
        f'<section id="map"><h2>{e(t["map"])}</h2><figure>'
        f"{img(png, t['map_alt'], 'map')}"
        f"<figcaption>{e(t['map_caption'])}</figcaption></figure></section>\n"
    )
