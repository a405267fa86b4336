"""report.html: self-contained, escaped, bilingual, and fast enough for a city of sites."""

from __future__ import annotations

import base64
import re
import time
from html.parser import HTMLParser

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box, mapping

from pipeline.errors import InputError
from pipeline.report import i18n, render_report
from pipeline.schema import (
    ALL,
    CATEGORIES,
    M2_PER_MU,
    PROGRESS_COLUMNS,
    RECOVERY_CLASSES,
    SITE_STATUS_COLUMNS,
    TARGETS,
    TIMESERIES_COLUMNS,
    VIOLATIONS,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL_NAME = "<script>alert(1)</script>"


class _Elements(HTMLParser):
    """Collects start tags and their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


def _parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


def _sites(n: int = 4) -> gpd.GeoDataFrame:
    ids = [f"S{i:03d}" for i in range(n)]
    return gpd.GeoDataFrame(
        {
            "site_id": ids,
            "name": [EVIL_NAME if i == 0 else f"Quarry {i}" for i in range(n)],
            "county": ["Lushan" if i % 2 else "Baofeng" for i in range(n)],
            "category": [CATEGORIES[i % 4] for i in range(n)],
            "status": ["restoring"] * n,
            "target": [TARGETS[i % 4] for i in range(n)],
            "restoration_start": [pd.Timestamp("2023-04-01")] * n,
        },
        geometry=[box(113.0 + 0.01 * i, 33.7, 113.005 + 0.01 * i, 33.704) for i in range(n)],
        crs="EPSG:4326",
    )


def _site_status(sites: gpd.GeoDataFrame) -> pd.DataFrame:
    n = len(sites)
    area_m2 = np.linspace(20_000, 60_000, n)
    classes = [RECOVERY_CLASSES[i % len(RECOVERY_CLASSES)] for i in range(n)]
    frame = pd.DataFrame(
        {
            "site_id": sites["site_id"],
            "category": sites["category"],
            "county": sites["county"],
            "target": sites["target"],
            "recovery_class": classes,
            "probability": 0.8,
            "vegetated_fraction": 0.6,
            "bare_fraction": 0.3,
            "water_fraction": 0.1,
            "restored_area_m2": area_m2 / 2,
            "restored_area_mu": area_m2 / 2 / M2_PER_MU,
            "meets_target": [c == "restored" for c in classes],
            "assessed_until": "2024-09-30",
        }
    )
    return frame[list(SITE_STATUS_COLUMNS)]


def _progress() -> pd.DataFrame:
    rows = [
        ("licensed", "Baofeng", 12, 7, 1234.5, 678.9, 58.3, 55.0),
        ("licensed", ALL, 12, 7, 1234.5, 678.9, 58.3, 55.0),
        ("orphaned", "Lushan", 9, 4, 456.7, 123.4, 44.4, 27.0),
        ("orphaned", ALL, 9, 4, 456.7, 123.4, 44.4, 27.0),
        (ALL, ALL, 21, 11, 1691.2, 802.3, 52.4, 47.4),
    ]
    return pd.DataFrame(rows, columns=list(PROGRESS_COLUMNS))


def _flag(flag_id: str, violation: str, site_id: str | None, county: str) -> dict:
    lon, lat = 113.002, 33.702
    return {
        "type": "Feature",
        "geometry": mapping(box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)),
        "properties": {
            "flag_id": flag_id,
            "first_detected": "2024-05-03",
            "confirmed": "2024-05-13",
            "last_seen": "2024-09-20",
            "area_m2": 3000.0,
            "area_mu": 3000.0 / M2_PER_MU,
            "confidence": 0.91,
            "level": "high",
            "violation": violation,
            "site_id": site_id,
            "permit_id": None,
            "zone_ids": [],
            "county": county,
            "lon": lon,
            "lat": lat,
        },
    }


def _flags() -> list[dict]:
    return [
        _flag("F-0001", "outside_permit", "S001", "Lushan"),
        _flag("F-0002", "within_permit", "S002", "Baofeng"),
    ]


def _timeseries(site_ids: list[str]) -> pd.DataFrame:
    dates = pd.date_range("2023-01-01", "2024-09-30", freq="15D")
    frames = []
    for k, sid in enumerate(site_ids):
        ndvi = 0.2 + 0.05 * k + 0.1 * np.sin(np.arange(len(dates)) / 4)
        ndvi[::5] = np.nan  # cloudy dates
        frames.append(
            pd.DataFrame(
                {
                    "site_id": sid,
                    "date": dates,
                    "n_pixels": 200,
                    "valid_fraction": np.where(np.isnan(ndvi), 0.0, 1.0),
                    "ndvi_mean": ndvi,
                    "ndvi_median": ndvi,
                    "bsi_mean": 0.1 - ndvi / 3,
                    "bsi_median": 0.1 - ndvi / 3,
                    "ndwi_mean": -ndvi,
                    "vegetated_fraction": ndvi,
                    "bare_fraction": 1 - ndvi,
                    "water_fraction": 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(TIMESERIES_COLUMNS)]


def _manifest() -> dict:
    return {
        "config_hash": "sha256:0f1e2d3c",
        "version": "0.1.0",
        "model_version": "recovery-rf-7",
        "period": {"start": "2023-01-01", "end": "2024-09-30"},
        "n_items": 42,
        "created": "2024-10-01T08:00:00Z",
    }


def _inputs(n_sites: int = 4) -> dict:
    sites = _sites(n_sites)
    return {
        "site_status": _site_status(sites),
        "progress": _progress(),
        "flags": _flags(),
        "timeseries": _timeseries(list(sites["site_id"])),
        "sites": sites,
        "manifest": _manifest(),
    }


@pytest.fixture(scope="module")
def page_zh() -> str:
    return render_report(**_inputs(), language="zh-CN")


@pytest.fixture(scope="module")
def page_en() -> str:
    return render_report(**_inputs(), language="en")


def test_render_report__is_self_contained(page_zh: str) -> None:
    assert "http://" not in page_zh
    assert "https://" not in page_zh
    elements = _parse(page_zh)
    assert not elements.of("link")
    for tag in ("img", "script", "a", "iframe", "source"):
        for attrs in elements.of(tag):
            for name in ("src", "href"):
                value = attrs.get(name)
                assert value is None or value.startswith(("data:image/png;base64,", "#")), (
                    tag,
                    name,
                    value[:40] if value else value,
                )
    assert "@import" not in page_zh
    assert "url(" not in page_zh


def test_render_report__contains_progress_numbers(page_zh: str) -> None:
    for text in (
        "1,234.5",
        "678.9",
        "58.3",
        "55.0",
        "456.7",
        "123.4",
        "1,691.2",
        "802.3",
        "52.4",
        "47.4",
        ">21<",
        ">11<",
    ):
        assert text in page_zh, text
    assert "Baofeng" in page_zh
    assert "Lushan" in page_zh


def test_render_report__progress_rows_carry_official_category_names(
    page_zh: str, page_en: str
) -> None:
    assert "持证露天矿山" in page_zh
    assert "责任主体灭失矿山" in page_zh
    assert "修复面积（亩）" in page_zh
    assert "修复率（按数量，%）" in page_zh
    assert "Licensed open-pit mines" in page_en
    assert "Restoration rate by area (%)" in page_en


def test_render_report__escapes_site_names(page_zh: str) -> None:
    assert EVIL_NAME not in page_zh
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_zh
    scripts = _parse(page_zh).of("script")
    assert len(scripts) == 1  # only the page's own sorting script
    assert all("src" not in attrs for attrs in scripts)


def test_render_report__escapes_flag_and_manifest_fields() -> None:
    inputs = _inputs()
    inputs["flags"][0]["properties"]["county"] = '<img src=x onerror="alert(2)">'
    inputs["flags"][0]["properties"]["flag_id"] = "F-<b>9</b>"
    inputs["manifest"]["model_version"] = "<i>m</i>"
    page = render_report(**inputs, title="<u>Report</u>")
    assert 'onerror="alert(2)"' not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "F-&lt;b&gt;9&lt;/b&gt;" in page
    assert "&lt;i&gt;m&lt;/i&gt;" in page
    assert "<title>&lt;u&gt;Report&lt;/u&gt;</title>" in page
    assert not [a for a in _parse(page).of("img") if a.get("src") == "x"]


def test_render_report__switches_language(page_zh: str, page_en: str) -> None:
    assert '<html lang="zh-CN">' in page_zh
    assert '<html lang="en">' in page_en
    zh, en = i18n.TEXT["zh-CN"], i18n.TEXT["en"]
    for key in ("title", "progress", "flags", "site_table", "not_for_enforcement"):
        assert zh[key] in page_zh
        assert en[key] not in page_zh
        assert en[key] in page_en
        assert zh[key] not in page_en
    assert "越界开采" in page_zh
    assert "Mining outside the permit boundary" in page_en


def test_render_report__rejects_unknown_language() -> None:
    with pytest.raises(InputError, match=r"report\.language"):
        render_report(**_inputs(), language="fr")


def test_render_report__images_are_inline_pngs(page_zh: str) -> None:
    images = _parse(page_zh).of("img")
    # The map plus one sparkline per site with a timeseries.
    assert len(images) == 1 + 4
    for attrs in images:
        src = attrs["src"] or ""
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        png = base64.b64decode(src[len(prefix) :], validate=True)
        assert png.startswith(PNG_MAGIC)
        assert attrs.get("alt")


def test_render_report__lists_every_flag_id(page_zh: str) -> None:
    for feature in _flags():
        assert feature["properties"]["flag_id"] in page_zh


def _flag_row(page: str, flag_id: str) -> str:
    match = re.search(
        rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(flag_id)}(?:(?!</tr>).)*</tr>", page, flags=re.S
    )
    assert match, flag_id
    return match.group(0)


def test_render_report__marks_within_permit_as_not_for_enforcement(
    page_zh: str, page_en: str
) -> None:
    for page, lang in ((page_zh, "zh-CN"), (page_en, "en")):
        marker = i18n.TEXT[lang]["not_for_enforcement"]
        recorded = _flag_row(page, "F-0002")
        enforced = _flag_row(page, "F-0001")
        assert marker in recorded
        assert 'class="within-permit"' in recorded
        assert marker not in enforced
        assert i18n.VIOLATION_NAMES[lang]["within_permit"] in recorded


def test_render_report__site_table_works_without_js(page_zh: str) -> None:
    elements = _parse(page_zh)
    # The filter box is hidden until the script shows it, so a page without JS has no dead control.
    boxes = [a for t, a in elements.tags if a.get("id") == "site-filter-box"]
    assert len(boxes) == 1
    assert "hidden" in boxes[0]
    tables = [a for a in elements.of("table") if a.get("id") == "site-table"]
    assert tables
    sortable = [a for a in elements.of("th") if a.get("data-type") in ("num", "text")]
    assert len(sortable) >= 10
    for sid in ("S000", "S001", "S002", "S003"):
        assert f"<code>{sid}</code>" in page_zh


def test_render_report__handles_no_flags_and_no_progress() -> None:
    inputs = _inputs()
    inputs["flags"] = []
    inputs["progress"] = pd.DataFrame(columns=list(PROGRESS_COLUMNS))
    inputs["timeseries"] = pd.DataFrame(columns=list(TIMESERIES_COLUMNS))
    page = render_report(**inputs, language="en")
    assert i18n.TEXT["en"]["no_flags"] in page
    assert i18n.TEXT["en"]["no_progress"] in page
    assert len(_parse(page).of("img")) == 1  # the map only


def test_i18n__both_languages_name_every_vocabulary_term() -> None:
    assert set(i18n.TEXT["zh-CN"]) == set(i18n.TEXT["en"])
    assert set(i18n.CHART_TEXT["zh-CN"]) == set(i18n.CHART_TEXT["en"])
    for vocabulary, keys in (
        (i18n.CATEGORY_NAMES, CATEGORIES),
        (i18n.VIOLATION_NAMES, VIOLATIONS),
        (i18n.RECOVERY_CLASS_NAMES, RECOVERY_CLASSES),
        (i18n.TARGET_NAMES, TARGETS),
    ):
        for lang in i18n.LANGUAGES:
            assert set(vocabulary[lang]) == set(keys)
    assert i18n.VIOLATION_NAMES["zh-CN"]["suspended_site"] == "停产整治期间开采"
    assert i18n.CATEGORY_NAMES["zh-CN"]["waste_pile"] == "采矿废石废渣"


def test_render_report__200_sites_render_under_10_s() -> None:
    inputs = _inputs(200)
    start = time.perf_counter()
    page = render_report(**inputs)
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"{elapsed:.1f} s"
    assert len(_parse(page).of("img")) == 1 + 200
