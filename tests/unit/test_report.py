"""report.html: self-contained, escaped, bilingual, and fast enough for a city of sites."""

from __future__ import annotations

import base64
import io
import itertools
import re
import time
import warnings
from datetime import date
from html.parser import HTMLParser

import geopandas as gpd
import numpy as np
import pandas as pd
import PIL.Image
import pytest
from affine import Affine
from matplotlib.colors import to_rgb
from rasterio.crs import CRS
from shapely.geometry import box, mapping

from pipeline.config import MaskingConfig
from pipeline.errors import InputError
from pipeline.report import charts, i18n, render_report, sparklines
from pipeline.report.evidence import ChipLook, FlagEvidence
from pipeline.report.evidence_charts import chip_png, scale_bar_length
from pipeline.report.evidence_reads import load_flag_evidence
from pipeline.report.flag_list import flags_section, site_label
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
from pipeline.sources.base import GridSpec
from pipeline.sources.local import read_catalog
from tests.conftest import EPSG, ORIGIN

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
            "model_used": True,
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


def _evidence(flag_ids: list[str]) -> dict[str, FlagEvidence]:
    rng = np.random.default_rng(0)
    ring = np.array([[20, 20], [40, 20], [40, 40], [20, 40], [20, 20]], float)
    out = {}
    for fid in flag_ids:
        rgb = rng.uniform(0.0, 0.3, (60, 60, 3)).astype(np.float32)
        out[fid] = FlagEvidence(
            flag_id=fid,
            outline=[ring],
            resolution_m=10.0,
            before=ChipLook(date(2024, 4, 20), 0.98, rgb),
            after=ChipLook(date(2024, 6, 1), 1.0, rgb[::-1]),
        )
    return out


def test_render_report__flag_list_shows_before_after_chips() -> None:
    page = render_report(**_inputs(), language="en", evidence=_evidence(["F-0001"]))
    with_chips = _parse(_flag_row(page, "F-0001")).of("img")
    assert [a["class"] for a in with_chips] == ["chip before", "chip after"]
    for attrs in with_chips:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
    row = _flag_row(page, "F-0001")
    assert "Before 2024-04-20 (clear 98%)" in row
    assert "After 2024-06-01 (clear 100%)" in row
    assert not _parse(_flag_row(page, "F-0002")).of("img")  # record only: no evidence read
    assert i18n.TEXT["en"]["chips_caption"] in page


def test_chip_png__large_enough_to_read_with_a_scale_bar() -> None:
    ev = _evidence(["F"])["F"]
    assert ev.before is not None
    png = chip_png(ev.before, ev)
    with PIL.Image.open(io.BytesIO(png)) as image:
        assert min(image.size) >= 240
    assert scale_bar_length(600.0) == 200.0
    assert scale_bar_length(2400.0) == 500.0
    assert scale_bar_length(60.0) == 20.0


def _grey(colour: str) -> float:
    r, g, b = to_rgb(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_class_style__classes_stay_apart_in_grey_print() -> None:
    styles = [*charts.CLASS_STYLE.values(), charts.UNASSESSED_STYLE]
    assert set(charts.CLASS_STYLE) == set(RECOVERY_CLASSES)
    for (fill_a, _, _), (fill_b, _, _) in itertools.combinations(styles, 2):
        assert abs(_grey(fill_a) - _grey(fill_b)) >= 0.1, (fill_a, fill_b)
    hatches = [hatch for _, hatch, _ in charts.CLASS_STYLE.values()]
    assert len(set(hatches)) == len(hatches)
    # Worst to best reads dark to light.
    order = ["disturbed", "regressed", "unrestored", "revegetating", "restored"]
    greys = [_grey(charts.CLASS_STYLE[c][0]) for c in order]
    assert greys == sorted(greys)


def test_charts__chinese_labels_use_the_cjk_font() -> None:
    font = charts.find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    assert charts.chart_language("zh-CN") == "zh-CN"
    assert charts.chart_rc("zh-CN")["font.sans-serif"] == [font, "DejaVu Sans"]
    sites = _sites(4)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*[Gg]lyph.*missing")
        png = charts.render_map_png(sites, {"S000": "restored"}, _flags(), language="zh-CN")
        sparks = sparklines.render_sparklines(
            _timeseries(["S000"]), {"S000": None}, targets={"S000": ("目标", 0.6)}, language="zh-CN"
        )
    assert png.startswith(PNG_MAGIC)
    assert sparks["S000"].startswith(PNG_MAGIC)


def test_render_sparklines__draws_the_target_line() -> None:
    ts = _timeseries(["S000"])
    plain = sparklines.render_sparklines(ts, {"S000": None}, language="en")["S000"]
    target = sparklines.render_sparklines(
        ts, {"S000": None}, targets={"S000": ("target", 0.6)}, language="en"
    )["S000"]
    with PIL.Image.open(io.BytesIO(plain)) as a, PIL.Image.open(io.BytesIO(target)) as b:
        diff = np.abs(np.asarray(a.convert("L"), float) - np.asarray(b.convert("L"), float))
    # Palette quantisation shifts grey levels a little everywhere; the line changes them a lot.
    rows = np.flatnonzero((diff > 20).any(axis=1))
    assert len(rows) > 0
    assert rows.max() - rows.min() < 20  # one band of rows: the line and its label


def test_render_report__progress_by_county_ends_with_the_city_total(page_en: str) -> None:
    tables = re.findall(r'<table class="progress">.*?</table>', page_en, flags=re.S)
    assert len(tables) == 2
    last_row = re.findall(r"<tr[^>]*>.*?</tr>", tables[1], flags=re.S)[-1]
    assert 'class="total"' in last_row
    assert "Total" in last_row
    assert ">21<" in last_row


def _patch_flag(first_detected: str) -> dict:
    """A flag over the tiny catalog's bright patch (rows 10-20, columns 10-30)."""
    x0, y0 = ORIGIN[0] + 100.0, ORIGIN[1] - 200.0
    patch = gpd.GeoSeries([box(x0, y0, x0 + 200.0, y0 + 100.0)], crs=f"EPSG:{EPSG}")
    return {
        "type": "Feature",
        "geometry": mapping(patch.to_crs(4326).iloc[0]),
        "properties": {"flag_id": "F-patch", "first_detected": first_detected},
    }


def test_load_flag_evidence__chips_show_the_flag_where_it_is(tiny_catalog) -> None:
    catalog, values, dates = tiny_catalog
    scenes = read_catalog(catalog)
    grid = GridSpec(
        crs=CRS.from_epsg(EPSG),
        transform=Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1]),
        shape=(40, 60),
    )
    flag = _patch_flag(dates[1].isoformat())
    evidence = load_flag_evidence(scenes, grid, [flag], MaskingConfig())["F-patch"]
    assert evidence.before is not None and evidence.after is not None
    assert (evidence.before.date, evidence.after.date) == (dates[0], dates[1])
    assert evidence.before.clear_fraction == 1.0
    assert evidence.after.clear_fraction < 1.0  # the second scene's corner cloud
    red = evidence.before.rgb[..., 0]
    assert red.shape == (40, 60)  # the whole (small) grid: chips are at least 60 px if it allows
    np.testing.assert_allclose(red[10:20, 10:30], 0.2, atol=1e-3)
    np.testing.assert_allclose(red[25:, 35:], values["red"][0, 25:, 35:], atol=1e-3)
    ring = evidence.outline[0]
    np.testing.assert_allclose(ring.min(axis=0), [10, 10], atol=1e-3)  # (column, row)
    np.testing.assert_allclose(ring.max(axis=0), [30, 20], atol=1e-3)
    assert (
        load_flag_evidence(scenes, grid, [_patch_flag(dates[0].isoformat())], MaskingConfig())[
            "F-patch"
        ].before
        is None
    )  # nothing was seen before the first look


@pytest.mark.parametrize(
    ("site_id", "name", "shown"),
    [
        ("S024", "quarry S024", "quarry S024"),
        ("S024", "S024", "S024"),
        ("S024", "quarry", "quarry <code>S024</code>"),
        ("S02", "quarry S024", "quarry S024 <code>S02</code>"),
        ("S024", None, "<code>S024</code>"),
        ("S024", "", "<code>S024</code>"),
        ("S07", "袁家店S07采石场", "袁家店S07采石场"),
    ],
)
def test_site_label__the_id_is_never_shown_twice(site_id, name, shown) -> None:
    assert site_label(site_id, name) == shown


def test_flags_section__a_name_that_holds_the_id_shows_it_once() -> None:
    props = {"flag_id": "F1", "site_id": "S024", "violation": "outside_permit"}
    html = flags_section([{"properties": props}], {"S024": {"name": "quarry S024"}}, "en")
    assert "quarry S024" in html
    assert "S024 S024" not in html and "<code>S024</code>" not in html
