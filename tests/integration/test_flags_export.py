"""``minewatch flags export``: the county enforcement package, from the shared scenario run."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.inputs import read_sites
from pipeline.ledger import list_flags, open_ledger
from pipeline.report import evidence, package, package_files
from pipeline.sources import reads as tile_reading

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = '<script>alert("x")</script>'


def _open_ledger_flags(workspace: Path, county: str) -> list[dict]:
    with open_ledger(workspace) as con:
        rows = list_flags(con, county=county)
    return [
        r
        for r in rows
        if r["status"] not in ("false_alarm", "resolved") and r["violation"] != "within_permit"
    ]


def _counties_by_open_flags(workspace: Path) -> list[str]:
    """Counties with open flags, most first."""
    with open_ledger(workspace) as con:
        rows = list_flags(con)
    counts = Counter(
        r["county"]
        for r in rows
        if r["status"] not in ("false_alarm", "resolved") and r["violation"] != "within_permit"
    )
    return [c for c, _ in counts.most_common()]


def _export(workspace: Path, county: str, dest: Path, *extra: str) -> int:
    return main(
        [
            "flags",
            "export",
            "--workspace",
            str(workspace),
            "--county",
            county,
            "--out",
            str(dest),
            *extra,
        ]
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "flags.csv must start with a UTF-8 BOM for Excel"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def _check_png(path: Path, min_side: int) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    with PIL.Image.open(io.BytesIO(data)) as img:
        img.verify()
    with PIL.Image.open(io.BytesIO(data)) as img:
        assert min(img.size) >= min_side, (path, img.size)


@pytest.fixture(scope="module")
def big_county(scenario_run: Path) -> str:
    return _counties_by_open_flags(scenario_run)[0]


@pytest.fixture(scope="module")
def small_county(scenario_run: Path) -> str:
    counties = _counties_by_open_flags(scenario_run)
    assert len(counties) >= 2, "the scenario should give two counties open flags"
    return counties[-1]


@pytest.fixture(scope="module")
def exported(
    scenario_run: Path, big_county: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[tuple[int, int]]]:
    """The busiest county's package (Chinese page), and the size of every window read."""
    dest = tmp_path_factory.mktemp("export") / "pkg"
    reads: list[tuple[int, int]] = []
    real_read = tile_reading._read_asset

    def recording(ref, grid, rows, cols):  # type: ignore[no-untyped-def]
        reads.append((rows[1] - rows[0], cols[1] - cols[0]))
        return real_read(ref, grid, rows, cols)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tile_reading, "_read_asset", recording)
        assert _export(scenario_run, big_county, dest, "--language", "zh-CN") == 0
    return dest, reads


def test_export__one_chip_pair_and_plot_per_open_flag(exported, scenario_run, big_county):
    dest, _ = exported
    ids = {r["flag_id"] for r in _open_ledger_flags(scenario_run, big_county)}
    assert ids
    chips = {p.name for p in (dest / "chips").iterdir()}
    plots = {p.name for p in (dest / "plots").iterdir()}
    assert chips == {f"{i}_{w}.png" for i in ids for w in ("before", "after")}
    assert plots == {f"{i}.png" for i in ids}
    for path in (dest / "chips").iterdir():
        _check_png(path, min_side=200)
    for path in (dest / "plots").iterdir():
        _check_png(path, min_side=200)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")], "staging left over"


def test_export__page_names_the_sites_flags_touch(exported, scenario):
    dest, _ = exported
    rows = _read_csv(dest / "flags.csv")
    names = dict(zip(*(read_sites(scenario.sites)[c] for c in ("site_id", "name")), strict=True))
    page = (dest / "index.html").read_text(encoding="utf-8")
    touched = [r["site_id"] for r in rows if r["site_id"]]
    assert touched
    for site_id in touched:
        assert f"{names[site_id]} <code>{site_id}</code>" in page


def test_export__tables_are_the_open_flags_of_the_county(exported, scenario_run, big_county):
    dest, _ = exported
    ledger = _open_ledger_flags(scenario_run, big_county)
    rows = _read_csv(dest / "flags.csv")
    features = json.loads((dest / "flags.geojson").read_text(encoding="utf-8"))["features"]
    assert len(rows) == len(features) == len(ledger) > 0
    assert {r["flag_id"] for r in rows} == {f["properties"]["flag_id"] for f in features}
    assert {r["flag_id"] for r in rows} == {r["flag_id"] for r in ledger}
    for column in (*schema.FLAG_PROPERTIES, "status"):
        assert column in rows[0], column
        assert column in features[0]["properties"], column
    assert "geometry" not in rows[0]
    assert {r["county"] for r in rows} == {big_county}
    for r in rows:
        assert -180 <= float(r["lon"]) <= 180 and -90 <= float(r["lat"]) <= 90
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in features)
    page = (dest / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    assert 'id="flag-table"' in page  # the report's flag list renders the package page
    for r in rows:
        assert f'data-flag-id="{r["flag_id"]}"' in page
        assert f'src="chips/{r["flag_id"]}_before.png"' in page
        assert f'src="chips/{r["flag_id"]}_after.png"' in page
        assert f'src="plots/{r["flag_id"]}.png"' in page


def test_export__chip_dates_bracket_first_detection(exported):
    dest, _ = exported
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == package.PACKAGE_KIND
    assert manifest["n_flags"] == len(manifest["flags"]) > 0
    for flag in manifest["flags"]:
        before, after = flag["before"]["date"], flag["after"]["date"]
        assert before < flag["first_detected"] <= after <= flag["last_seen"], flag
        assert 0.0 <= flag["before"]["clear_fraction"] <= 1.0
        assert flag["trajectory_looks"] > 0


def test_export__reads_only_chip_windows(exported, scenario_run):
    _, reads = exported
    grid = json.loads((scenario_run / "manifest.json").read_text())["grid"]
    halo = 2 * 1  # masking.buffer_pixels of the default config, both sides
    assert reads
    assert max(h for h, _ in reads) <= evidence.CHIP_MIN_PX + halo < grid["shape"][0]
    assert max(w for _, w in reads) <= evidence.CHIP_MIN_PX + halo < grid["shape"][1]


def test_export__false_alarm_is_left_out(fresh_copy, small_county, tmp_path, capsys):
    open_before = _open_ledger_flags(fresh_copy, small_county)
    target = open_before[0]["flag_id"]
    assert (
        main(
            [
                "flags",
                "set-status",
                "--workspace",
                str(fresh_copy),
                target,
                "false_alarm",
                "--by",
                "t",
            ]
        )
        == 0
    )
    dest = tmp_path / "pkg"
    assert _export(fresh_copy, small_county, dest) == 0
    assert f"{len(open_before) - 1} flags" in capsys.readouterr().out
    rows = _read_csv(dest / "flags.csv")
    assert target not in {r["flag_id"] for r in rows}
    assert len(rows) == len(open_before) - 1
    assert not any(p.name.startswith(target) for p in dest.rglob("*.png"))
    assert target not in (dest / "index.html").read_text(encoding="utf-8")


def test_export__county_without_open_flags_gives_empty_package(
    fresh_copy, small_county, tmp_path, capsys
):
    for row in _open_ledger_flags(fresh_copy, small_county):
        args = ["flags", "set-status", "--workspace", str(fresh_copy), row["flag_id"], "resolved"]
        assert main([*args, "--by", "t"]) == 0
    dest = tmp_path / "pkg"
    capsys.readouterr()
    assert _export(fresh_copy, small_county, dest, "--language", "en") == 0
    assert capsys.readouterr().out.startswith("0 flags")
    assert _read_csv(dest / "flags.csv") == []
    assert json.loads((dest / "flags.geojson").read_text())["features"] == []
    assert "0 open flags" in (dest / "index.html").read_text(encoding="utf-8")
    assert json.loads((dest / "manifest.json").read_text())["n_flags"] == 0


def test_export__unknown_county_exit_2_naming_known_counties(
    scenario_run, scenario, tmp_path, capsys
):
    dest = tmp_path / "pkg"
    assert _export(scenario_run, "Nowhere County", dest) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Nowhere County" in err[0]
    for county in set(read_sites(scenario.sites)["county"]):
        assert county in err[0]
    assert not dest.exists()


def test_export__workspace_without_run_exit_2(scenario_run, tmp_path, capsys):
    assert _export(tmp_path / "empty", "x", tmp_path / "pkg") == 2
    assert "minewatch run" in capsys.readouterr().err
    half = tmp_path / "half"  # a ledger but no finished run
    half.mkdir()
    shutil.copy(scenario_run / "ledger.sqlite", half / "ledger.sqlite")
    assert _export(half, "x", tmp_path / "pkg") == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "minewatch run" in err
    assert not (tmp_path / "pkg").exists()


def test_export__escapes_input_strings_and_file_names(fresh_copy, small_county, tmp_path):
    flags_path = fresh_copy / schema.FLAGS_FILE
    data = json.loads(flags_path.read_text(encoding="utf-8"))
    open_ids = {r["flag_id"] for r in _open_ledger_flags(fresh_copy, small_county)}
    feature = next(f for f in data["features"] if f["properties"]["flag_id"] in open_ids)
    feature["properties"].update(county=EVIL, site_id=EVIL, flag_id=f"../../{EVIL}")
    flags_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    dest = tmp_path / "pkg"
    assert _export(fresh_copy, EVIL, dest) == 0
    page = (dest / "index.html").read_text(encoding="utf-8")
    assert EVIL not in page
    assert page.count("<script>") == 1  # the page's own table script
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    pngs = list(dest.rglob("*.png"))
    assert len(pngs) == 3
    assert all(p.resolve().is_relative_to(dest.resolve()) for p in pngs)
    outside = [p for p in tmp_path.rglob("*alert*") if not p.is_relative_to(dest)]
    assert outside == []
    assert all(".." not in p.name and "<" not in p.name for p in pngs)
    rows = _read_csv(dest / "flags.csv")
    assert [r["county"] for r in rows] == [EVIL]


def test_export__dest_of_other_files_is_refused(scenario_run, big_county, tmp_path, capsys):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    assert _export(scenario_run, big_county, dest) == 2
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_export__failure_leaves_no_package(
    scenario_run, small_county, tmp_path, monkeypatch, capsys
):
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(package_files, "trajectory_png", broken)
    dest = tmp_path / "out" / "pkg"
    assert _export(scenario_run, small_county, dest) == 1
    assert "disk full" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_pick_look__clearest_then_latest():
    frac = np.array([0.9, 1.0, 1.0, 0.2, 1.0])
    assert evidence.pick_look(frac, np.array([True, True, True, True, False])) == 2
    assert evidence.pick_look(frac, np.array([True, False, False, True, False])) == 0
    assert evidence.pick_look(frac, np.zeros(5, bool)) is None


def test_candidate_looks__nearest_dates_either_side_of_the_change():
    days = [date(2023, 1, 1) + timedelta(days=6 * k) for k in range(40)]
    props = {
        "first_detected": days[20].isoformat(),
        "confirmed": days[22].isoformat(),
        "last_seen": days[25].isoformat(),
    }
    chosen = np.flatnonzero(evidence.candidate_looks(days, props))
    n = evidence.LOOK_CANDIDATES
    # before: the last n dates before first_detected; after: from confirmed to last_seen,
    # and the first n from first_detected on (the fallback when that span has no look)
    assert chosen.tolist() == list(range(20 - n, 20)) + list(range(20, 20 + n))
    assert not evidence.candidate_looks(days, {"first_detected": None}).any()
    early = evidence.candidate_looks(days, {"first_detected": days[2].isoformat()})
    assert np.flatnonzero(early).tolist() == [0, 1, *range(2, 2 + n)]
