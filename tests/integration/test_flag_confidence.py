"""A flag's level and its confidence number agree in flags.geojson, the export CSV and the
report: ``high`` exactly when ``confidence >= HIGH_CONFIDENCE_MIN`` (issue 17, item 5)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.flag_confidence import HIGH_CONFIDENCE_MIN, confidence_level

LEVEL_TERMS = {"High": "high", "Low": "low", "高": "high", "低": "low"}


def _row_levels(html: str) -> dict[str, tuple[str, float]]:
    """flag_id -> (level, confidence) as a flag list row of the page shows them."""
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        fid = re.search(r"<code>(F[0-9]{8}-[0-9a-f]{6})</code>", row)
        shown = re.search(r"<td>(High|Low|高|低) \(([0-9.]+)\)</td>", row)
        if fid and shown:
            out[fid.group(1)] = (LEVEL_TERMS[shown.group(1)], float(shown.group(2)))
    return out


@pytest.fixture(scope="module")
def flags(scenario_run: Path) -> list[dict]:
    return json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]


def test_flags_geojson__level_is_the_label_of_the_number(flags):
    assert flags
    for feature in flags:
        props = feature["properties"]
        assert props["level"] == confidence_level(props["confidence"]), props["flag_id"]
        assert (props["level"] == "high") == (props["confidence"] >= HIGH_CONFIDENCE_MIN)
        if props["confirmed"] is None:  # one look is never enough for high
            assert props["level"] == "low", props["flag_id"]


def test_report__shows_each_flag_with_the_geojson_level_and_number(scenario_run, flags):
    shown = _row_levels((scenario_run / schema.REPORT_FILE).read_text(encoding="utf-8"))
    props = {f["properties"]["flag_id"]: f["properties"] for f in flags}
    assert set(shown) == set(props)
    for fid, (level, confidence) in shown.items():
        assert level == props[fid]["level"], fid
        assert confidence == pytest.approx(props[fid]["confidence"], abs=0.005), fid
        assert level == confidence_level(confidence), fid


def test_export_csv_and_page__carry_the_same_level_and_number(scenario_run, flags, tmp_path):
    counties = Counter(f["properties"]["county"] for f in flags)
    county = counties.most_common(1)[0][0]
    dest = tmp_path / "pkg"
    argv = ["flags", "export", "--workspace", str(scenario_run), "--county", county]
    assert main([*argv, "--out", str(dest), "--language", "zh-CN"]) == 0
    text = (dest / "flags.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    props = {f["properties"]["flag_id"]: f["properties"] for f in flags}
    for row in rows:
        fid = row["flag_id"]
        assert row["level"] == props[fid]["level"], fid
        assert float(row["confidence"]) == props[fid]["confidence"], fid
        assert row["level"] == confidence_level(float(row["confidence"])), fid
    page = _row_levels((dest / "index.html").read_text(encoding="utf-8"))
    assert set(page) == {r["flag_id"] for r in rows}
    for fid, (level, confidence) in page.items():
        assert (level, confidence) == (props[fid]["level"], props[fid]["confidence"]), fid
