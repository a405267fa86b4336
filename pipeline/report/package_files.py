"""What ``minewatch flags export`` writes: chips, plots, tables, manifest and page.

``package.py`` decides which flags go into a county's package; this module draws each
flag's evidence into ``chips/`` and ``plots/`` and writes ``flags.geojson``,
``flags.csv``, ``manifest.json`` and ``index.html`` into the staging folder. The page is
made by the report's own renderer (``markup`` + ``flag_list``), so the county sees the
flag list exactly as the city's report shows it, with images linked from the folder.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__, schema
from pipeline.config import MaskingConfig
from pipeline.report import i18n
from pipeline.report.evidence import as_date
from pipeline.report.evidence_charts import chip_png, trajectory_png
from pipeline.report.evidence_reads import load_flag_window
from pipeline.report.flag_list import (
    FlagPictures,
    Picture,
    chip_caption,
    flags_section,
    trajectories_section,
)
from pipeline.report.markup import e, page
from pipeline.sources.base import GridSpec, Scene

log = logging.getLogger(__name__)

# Labels of the package page besides the report's vocabulary (i18n.py).
LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "疑似违法开采图斑核查包",
        "summary": "{county}：{n} 处待核查图斑。",
        "downloads": "数据下载",
        "run": "监测运行",
    },
    "en": {
        "title": "Enforcement package: suspected illegal excavation",
        "summary": "{county}: {n} open flags.",
        "downloads": "Data",
        "run": "Monitoring run",
    },
}


@dataclass(frozen=True)
class ChipFile:
    """A chip written into the package."""

    date: str
    """Acquisition date (ISO)."""
    clear_fraction: float
    """Share of the chip window's pixels that are clear on that date."""
    file: str
    """Path of the PNG inside the package."""


@dataclass
class PackageFlag:
    """One open flag of the package and what was drawn for it."""

    properties: dict[str, Any]
    """Contract properties plus ``status`` (and any extra properties of the run)."""
    geometry: dict[str, Any] | None
    """GeoJSON geometry (WGS84)."""
    before: ChipFile | None = None
    after: ChipFile | None = None
    plot: str | None = None
    """Path of the trajectory PNG inside the package."""
    n_looks: int = 0
    """Clear looks in the trajectory."""
    pictures: FlagPictures | None = None
    """What the page shows of it."""


def draw_imagery(
    scenes: Sequence[Scene],
    grid: GridSpec,
    masking: MaskingConfig,
    flags: list[PackageFlag],
    staging: Path,
    lang: str,
) -> None:
    """Read each flag's window and write its chips and trajectory plot into ``staging``."""
    if not flags:
        return
    (staging / "chips").mkdir()
    (staging / "plots").mkdir()
    names: set[str] = set()
    for flag in flags:
        fid = str(flag.properties["flag_id"])
        feature = {"geometry": flag.geometry, "properties": flag.properties}
        evidence = load_flag_window(scenes, grid, feature, masking)
        if evidence is None:
            continue
        stem = _file_stem(fid, names)
        pictures: dict[str, Picture] = {}
        for which in ("before", "after"):
            look = getattr(evidence, which)
            if look is None:
                continue
            rel = f"chips/{stem}_{which}.png"
            (staging / rel).write_bytes(chip_png(look, evidence))
            setattr(flag, which, ChipFile(look.date.isoformat(), look.clear_fraction, rel))
            pictures[which] = Picture(rel, chip_caption(which, look, lang))
        first = as_date(flag.properties.get("first_detected"))
        dates = evidence.trajectory_dates or []
        if first is not None and evidence.trajectory_ndvi is not None:
            marks = {
                w: (getattr(evidence, w).date if getattr(evidence, w) else None)
                for w in ("before", "after")
            }
            png = trajectory_png(
                dates,
                evidence.trajectory_ndvi,
                evidence.trajectory_bsi if evidence.trajectory_bsi is not None else [],
                fid,
                first,
                marks,
                lang,
            )
            flag.plot, flag.n_looks = f"plots/{stem}.png", len(dates)
            (staging / flag.plot).write_bytes(png)
            pictures["plot"] = Picture(flag.plot, f"NDVI/BSI {fid}")
        flag.pictures = FlagPictures(**pictures)


def _file_stem(flag_id: str, taken: set[str]) -> str:
    """A safe, unique file name for a flag id (ids come from an input file)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", flag_id)[:80] or "flag"
    out, n = stem, 1
    while out in taken:
        n += 1
        out = f"{stem}-{n}"
    taken.add(out)
    return out


# ---------------------------------------------------------------- tables and page


CSV_LIST_SEPARATOR = ";"


# Text a spreadsheet would run as a formula; such cells get a leading apostrophe (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        value = CSV_LIST_SEPARATOR.join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_package(
    manifest: Mapping[str, Any],
    flags: list[PackageFlag],
    staging: Path,
    county: str,
    lang: str,
    *,
    kind: str,
    site_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Write the tables, the package manifest and the page; return the package's files."""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f.properties["flag_id"],
                "geometry": f.geometry,
                "properties": f.properties,
            }
            for f in flags
        ],
    }
    (staging / schema.FLAGS_FILE).write_text(
        json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    columns: list[str] = [*schema.FLAG_PROPERTIES, "status"]
    for f in flags:
        columns += [k for k in f.properties if k not in columns]
    with open(staging / "flags.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for f in flags:
            writer.writerow([_csv_value(f.properties.get(c)) for c in columns])

    m = manifest
    package_manifest = {
        "kind": kind,
        "county": county,
        "language": lang,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "run": {
            "run_id": m.get("run_id"),
            "config_hash": m.get("config_hash"),
            "version": m.get("version"),
            "period": m.get("period"),
            "n_items": len(m["inputs"].get("items") or []),
        },
        "n_flags": len(flags),
        "chip_stretch_reflectance": [0.0, 0.3],
        "flags": [
            {
                "flag_id": f.properties["flag_id"],
                "first_detected": f.properties.get("first_detected"),
                "confirmed": f.properties.get("confirmed"),
                "last_seen": f.properties.get("last_seen"),
                "before": asdict(f.before) if f.before else None,
                "after": asdict(f.after) if f.after else None,
                "plot": f.plot,
                "trajectory_looks": f.n_looks,
            }
            for f in flags
        ],
    }
    (staging / schema.MANIFEST_FILE).write_text(
        json.dumps(package_manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    html = package_page(
        county=county, flags=flags, run_manifest=m, language=lang, site_info=site_info
    )
    (staging / "index.html").write_text(html, encoding="utf-8")
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


def package_page(
    *,
    county: str,
    flags: Sequence[PackageFlag],
    run_manifest: Mapping[str, Any],
    language: str,
    site_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The package's ``index.html``: the report's flag list of the county's open flags,
    chips and trajectories linked from the package folder. ``site_info`` maps site_id to
    its attributes (the site's name is shown). Every input string is escaped.
    """
    lang = i18n.check_language(language)
    t, pl = i18n.text(lang), LABELS[lang]
    title = f"{county} · {pl['title']}"
    period = run_manifest.get("period") or {}
    provenance = (
        f'<section id="provenance"><p><small>{e(pl["run"])} '
        f"<code>{e(run_manifest.get('run_id'))}</code> · {e(t['period'])} "
        f"{e(period.get('start'))} – {e(period.get('end'))} · {e(t['config_hash'])} "
        f"<code>{e(run_manifest.get('config_hash'))}</code> · {e(t['model_version'])} "
        f"{e(run_manifest.get('model_version'))} · MineWatch {e(__version__)}</small></p>"
        f'<p>{e(pl["downloads"])}: <a href="flags.csv">flags.csv</a> · '
        f'<a href="flags.geojson">flags.geojson</a></p></section>\n'
    )
    features = [{"properties": f.properties, "geometry": f.geometry} for f in flags]
    pictures = {str(f.properties["flag_id"]): f.pictures or FlagPictures() for f in flags}
    summary = pl["summary"].format(county=county, n=len(flags))
    return page(
        lang=lang,
        title=title,
        sections=[
            provenance,
            flags_section(features, site_info or {}, lang, pictures=pictures, summary=summary),
            trajectories_section(features, pictures, lang),
        ],
        footer=t["footer"].format(version=__version__),
        version=__version__,
    )
