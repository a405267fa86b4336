"""report.html in a real headless Chromium: it loads offline, shows its tables and images, and
its script sorts and filters the site table.

Uses Debian's ``chromium`` (``.ci/run`` installs it, with a CJK font) driven by Playwright's
Python client; Playwright's own browser downloads are never used. Without Chromium or the
client the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schema
from pipeline.inputs import read_sites
from pipeline.report import charts, render_report
from pipeline.scenes import ScenarioPaths

EVIL = "<script>alert(1)</script>"
CJK_FAMILIES = ("WenQuanYi", "Noto Sans CJK", "Noto Serif CJK", "Source Han", "Droid Sans Fallback")
CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",  # Debian's binary (the /usr/bin/chromium wrapper also works)
    "chromium",
    "chromium-browser",
    "google-chrome",
)

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright's Python client is not installed (pip install .[test])",
)


def _chromium() -> tuple[str | None, str]:
    """The Chromium binary to drive, or None and why not."""
    explicit = os.environ.get("MINEWATCH_CHROMIUM")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit, ""
        return None, f"MINEWATCH_CHROMIUM={explicit} is not an executable"
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path, ""
    return None, (
        "Chromium not found (apt-get install chromium, or set MINEWATCH_CHROMIUM); "
        ".ci/run installs it"
    )


CHROMIUM, WHY_NOT = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=WHY_NOT)


@dataclass
class Visit:
    """One page load and everything the page did."""

    page: object
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def _visit(browser: object, path: Path, screenshot: Path) -> Visit:
    context = browser.new_context(viewport={"width": 1300, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    visit = Visit(page=page, url=path.resolve().as_uri())
    page.on(
        "console",
        lambda m: (
            visit.errors.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda exc: visit.errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: visit.errors.append(f"request failed: {r.url[:80]}"))
    context.on("request", lambda r: visit.requests.append(r.url))

    def dialog(d: object) -> None:
        visit.dialogs.append(d.message)  # type: ignore[attr-defined]
        d.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", dialog)
    page.goto(visit.url, wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    return visit


def _outside_requests(visit: Visit) -> list[str]:
    return [u[:80] for u in visit.requests if u != visit.url and not u.startswith("data:")]


def _rows(page: object, selector: str) -> int:
    return page.locator(selector).count()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def run_report(browser: object, scenario_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """The English report the scenario run wrote, opened from file://."""
    shot = tmp_path_factory.mktemp("shots") / "report_en.png"
    visit = _visit(browser, scenario_run / schema.REPORT_FILE, shot)
    yield visit, shot
    visit.page.context.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def zh_report(
    browser: object,
    scenario: ScenarioPaths,
    scenario_run: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    """The scenario's outputs rendered in Chinese, one site renamed to a script tag."""
    folder = tmp_path_factory.mktemp("zh")
    sites = read_sites(scenario.sites).to_crs(4326)
    sites.loc[sites.index[0], "name"] = EVIL
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text(encoding="utf-8"))
    page = render_report(
        site_status=pd.read_csv(scenario_run / schema.SITE_STATUS_FILE),
        progress=pd.read_csv(scenario_run / schema.PROGRESS_FILE),
        flags=features["features"],
        timeseries=pd.read_parquet(scenario_run / schema.TIMESERIES_FILE),
        sites=sites,
        manifest=json.loads((scenario_run / schema.MANIFEST_FILE).read_text(encoding="utf-8")),
        language="zh-CN",
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    visit = _visit(browser, path, folder / "report_zh.png")
    yield visit, str(sites.iloc[0]["site_id"])
    visit.page.context.close()  # type: ignore[attr-defined]


def test_report__loads_offline_without_errors(run_report) -> None:
    visit, shot = run_report
    assert visit.errors == []
    assert visit.requests[0] == visit.url
    assert _outside_requests(visit) == []
    assert shot.stat().st_size > 50_000  # a full-page screenshot of a real page


def test_report__tables_have_a_row_per_category_county_site_and_flag(
    run_report, scenario_run: Path
) -> None:
    visit, _ = run_report
    page = visit.page
    progress = pd.read_csv(scenario_run / schema.PROGRESS_FILE, keep_default_na=False)
    detail = progress[(progress["category"] != schema.ALL) & (progress["county"] != schema.ALL)]
    categories = set(detail["category"])
    counties = set(detail["county"])
    tables = page.locator("table.progress")  # type: ignore[attr-defined]
    assert tables.count() == 2
    by_category = tables.nth(0).locator("tbody tr")
    assert by_category.count() == len(categories) + 1  # and the total
    assert by_category.last.locator("td").first.inner_text() == str(
        progress[(progress["category"] == schema.ALL)]["sites"].iloc[0]
    )
    by_county = tables.nth(1).locator("tbody tr")
    assert by_county.count() == len(counties) + len(detail) + 1  # subtotals, rows, total

    status = pd.read_csv(scenario_run / schema.SITE_STATUS_FILE)
    assert _rows(page, "#site-table tbody tr") == len(status) > 0
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    assert _rows(page, "#flag-table tbody tr") == len(features) > 0
    for feature in features:
        props = feature["properties"]
        row = page.locator(f'#flag-table tr[data-flag-id="{props["flag_id"]}"]')  # type: ignore[attr-defined]
        assert row.count() == 1
        chips = row.locator("img.chip").count()
        assert chips == (2 if charts.flag_is_open(props) else 0), props["flag_id"]


def test_report__every_image_decodes(run_report, scenario_run: Path) -> None:
    visit, _ = run_report
    images = visit.page.evaluate(  # type: ignore[attr-defined]
        """() => Array.from(document.images).map(i => ({
            cls: i.className, ok: i.complete && i.naturalWidth > 0,
            w: i.naturalWidth, data: i.src.startsWith('data:image/png;base64,')}))"""
    )
    assert images and all(i["ok"] and i["data"] for i in images), images
    ts = pd.read_parquet(scenario_run / schema.TIMESERIES_FILE)
    kinds = pd.Series([i["cls"] for i in images]).value_counts()
    assert kinds.get("map") == 1
    assert kinds.get("spark") == ts["site_id"].nunique()
    assert kinds.get("chip before", 0) + kinds.get("chip after", 0) >= 2
    assert min(i["w"] for i in images if i["cls"] == "map") > 500


def _column(page: object, index: int) -> list[str]:
    return page.evaluate(  # type: ignore[attr-defined]
        """(i) => Array.from(document.querySelectorAll('#site-table tbody tr'))
            .filter(r => !r.hidden).map(r => {
                const c = r.cells[i]; const v = c.getAttribute('data-v');
                return v === null ? c.textContent.trim() : v; })""",
        index,
    )


def test_report__site_table_sorts_by_column(run_report) -> None:
    page = run_report[0].page
    headers = page.locator("#site-table thead th")  # type: ignore[attr-defined]
    names = [h.strip() for h in headers.all_inner_texts()]
    area = names.index("Area restored (mu)")
    button = headers.nth(area).locator("button.sort")
    button.click()
    assert headers.nth(area).get_attribute("aria-sort") == "ascending"
    values = [float(v) for v in _column(page, area) if v != ""]
    assert values == sorted(values) and values[0] < values[-1]
    button.click()
    assert headers.nth(area).get_attribute("aria-sort") == "descending"
    values = [float(v) for v in _column(page, area) if v != ""]
    assert values == sorted(values, reverse=True)
    site_id = names.index("Site ID")
    headers.nth(site_id).locator("button.sort").click()
    ids = _column(page, site_id)
    assert ids == sorted(ids)


def test_report__site_table_filters_rows(run_report, scenario_run: Path) -> None:
    page = run_report[0].page
    status = pd.read_csv(scenario_run / schema.SITE_STATUS_FILE)
    county = str(status["county"].iloc[0])
    box = page.locator("#site-filter")  # type: ignore[attr-defined]
    assert box.is_visible()
    box.fill(county)
    shown = _rows(page, "#site-table tbody tr:not([hidden])")
    assert shown == int((status["county"] == county).sum()) < len(status)
    assert page.locator("#site-count").inner_text() == f"{shown} / {len(status)}"  # type: ignore[attr-defined]
    box.fill(str(status["site_id"].iloc[-1]))
    assert _rows(page, "#site-table tbody tr:not([hidden])") == 1
    box.fill("")
    assert _rows(page, "#site-table tbody tr:not([hidden])") == len(status)


def test_report__site_name_with_a_script_tag_is_text(zh_report) -> None:
    visit, site_id = zh_report
    page = visit.page
    assert visit.dialogs == []
    assert visit.errors == []
    assert _outside_requests(visit) == []
    assert page.evaluate("document.scripts.length") == 1  # type: ignore[attr-defined]
    row = page.locator("#site-table tbody tr", has_text=site_id).first  # type: ignore[attr-defined]
    assert row.locator("td").nth(1).inner_text() == EVIL


def test_report__chinese_page_renders_with_a_cjk_font(zh_report) -> None:
    visit, _ = zh_report
    page = visit.page
    assert page.evaluate("document.documentElement.lang") == "zh-CN"  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "露天矿山修复治理遥感监测报告"  # type: ignore[attr-defined]
    images = page.evaluate(  # type: ignore[attr-defined]
        "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images and all(images)
    cdp = page.context.new_cdp_session(page)  # type: ignore[attr-defined]
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk = [f for f in fonts if any(name in f["familyName"] for name in CJK_FAMILIES)]
    if not cjk:
        pytest.skip(f"no CJK font installed (fonts-wqy-microhei); page drawn with {fonts}")
    assert sum(f["glyphCount"] for f in cjk) >= len("露天矿山修复治理遥感监测报告")
    if charts.find_cjk_font() is not None:  # charts labelled in Chinese, not English
        alt = page.locator("img.map").get_attribute("alt")
        assert alt == "矿山分布图"


@pytest.fixture(scope="module")
def audit_pages(
    browser: object,
    scenario: ScenarioPaths,
    scenario_run: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    """The report with a sample-based estimate and county answers, in both languages."""
    from pipeline.estimate import estimate_workspace
    from pipeline.ledger import list_flags, open_ledger, set_status
    from pipeline.report.audit import enforcement_record
    from pipeline.sampling import write_sample

    folder = tmp_path_factory.mktemp("audit")
    ws = folder / "ws"
    shutil.copytree(scenario_run, ws)
    with open_ledger(ws) as con:
        flags = [f for f in list_flags(con) if f["violation"] != "within_permit"]
        set_status(con, flags[0]["flag_id"], "confirmed", who="county team")
        set_status(con, flags[1]["flag_id"], "false_alarm", who="county team")
        record = enforcement_record(list_flags(con))
    sample, _ = write_sample(ws, folder / "sample.csv", n=300, seed=9)
    sample["reference"] = sample["map_class"]
    sample.loc[sample.index[-1], "reference"] = "excavation"  # one dig the map missed
    sample.to_csv(folder / "sample.csv", index=False)
    estimate = estimate_workspace(ws, folder / "sample.csv")
    sites = read_sites(scenario.sites).to_crs(4326)
    visits = {}
    for lang in ("zh-CN", "en"):
        page = render_report(
            site_status=pd.read_csv(ws / schema.SITE_STATUS_FILE),
            progress=pd.read_csv(ws / schema.PROGRESS_FILE),
            flags=json.loads((ws / schema.FLAGS_FILE).read_text(encoding="utf-8"))["features"],
            timeseries=pd.read_parquet(ws / schema.TIMESERIES_FILE),
            sites=sites,
            manifest=json.loads((ws / schema.MANIFEST_FILE).read_text(encoding="utf-8")),
            language=lang,
            estimate=estimate,
            enforcement=record,
        )
        path = folder / f"report_{lang}.html"
        path.write_text(page, encoding="utf-8")
        visits[lang] = _visit(browser, path, folder / f"report_{lang}.png")
    yield visits, estimate, record, flags[:2]
    for visit in visits.values():
        visit.page.context.close()  # type: ignore[attr-defined]


def _cell(page: object, selector: str) -> str:
    return page.locator(selector).inner_text().strip()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("lang", "estimate_title", "record_title", "excavation"),
    [
        ("zh-CN", "抽样面积估算", "执法核查记录", "新增开挖"),
        ("en", "Sample-based area estimate", "Enforcement record", "New excavation"),
    ],
)
def test_report__shows_the_estimate_and_the_enforcement_record(
    audit_pages, lang: str, estimate_title: str, record_title: str, excavation: str
) -> None:
    visits, estimate, record, answered = audit_pages
    visit = visits[lang]
    page = visit.page
    assert visit.errors == []
    assert _outside_requests(visit) == []
    assert _cell(page, "#estimate h2") == estimate_title
    assert page.locator("#estimate").is_visible()  # type: ignore[attr-defined]
    assert _rows(page, "#estimate tbody tr") == 3
    row = "#estimate tr[data-class='excavation']"
    assert _cell(page, f"{row} th") == excavation
    area = estimate["classes"]["excavation"]["area_mu"]
    mapped = estimate["classes"]["excavation"]["mapped_area_mu"]
    assert _cell(page, f"{row} td[data-col='mapped']") == f"{mapped:,.1f}"
    assert _cell(page, f"{row} td[data-col='estimated']") == f"{area['value']:,.1f}"
    assert _cell(page, f"{row} td[data-col='ci95']") == (
        f"{area['ci95_low']:,.1f} – {area['ci95_high']:,.1f}"
    )
    assert area["value"] > mapped  # the missed dig adds area
    assert _cell(page, "#enforcement h2") == record_title
    assert _rows(page, "#enforcement tbody tr") == len(record)
    for flag, column in zip(answered, ("confirmed", "false_alarm"), strict=True):
        sel = (
            f"#enforcement tr[data-county='{flag['county']}'][data-violation='{flag['violation']}']"
        )
        expected = record[(record["county"] == flag["county"])
                          & (record["violation"] == flag["violation"])].iloc[0]  # fmt: skip
        assert int(_cell(page, f"{sel} td[data-col='{column}']")) == expected[column] >= 1
        assert int(_cell(page, f"{sel} td[data-col='issued']")) == expected["issued"]
    city = record[(record["county"] == schema.ALL)].iloc[0]
    assert (city["confirmed"], city["false_alarm"]) == (1, 1)
    sel = "#enforcement tr[data-county='ALL'][data-violation='ALL']"
    assert _cell(page, f"{sel} td[data-col='precision']") == "50%"
    assert int(_cell(page, f"{sel} td[data-col='open']")) == city["issued"] - 2
