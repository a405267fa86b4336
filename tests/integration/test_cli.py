"""The command line: exit statuses, one clear line on bad input, nothing in --out changed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import schema
from pipeline.cli import main

from .conftest import run_args


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _edit_sites(scenario, tmp_path: Path, change) -> Path:
    data = json.loads(scenario.sites.read_text())
    change(data)
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def _bad_sites(kind: str):
    def duplicate(d):
        d["features"][1]["properties"]["site_id"] = d["features"][0]["properties"]["site_id"]

    def category(d):
        d["features"][2]["properties"]["category"] = "quarry"

    def geometry(d):
        d["features"][3]["geometry"] = None

    return {
        "duplicate": (duplicate, "site_id"),
        "category": (category, "category"),
        "geometry": (geometry, "geometry"),
    }[kind]


@pytest.mark.parametrize("kind", ["duplicate", "category", "geometry"])
def test_run__bad_sites_exit_2_naming_record_and_field(
    scenario, fresh_copy, tmp_path, capsys, kind
):
    change, field = _bad_sites(kind)
    sites = _edit_sites(scenario, tmp_path, change)
    before = _snapshot(fresh_copy)
    args = run_args(scenario, fresh_copy)
    args[args.index("--sites") + 1] = str(sites)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(sites) in err[0] and "feature" in err[0] and field in err[0]
    assert _snapshot(fresh_copy) == before


def test_run__invalid_json_sites(scenario, fresh_copy, tmp_path, capsys):
    sites = tmp_path / "sites.geojson"
    sites.write_text('{"type": "FeatureCollection", "features": [')
    args = run_args(scenario, fresh_copy)
    args[args.index("--sites") + 1] = str(sites)
    before = _snapshot(fresh_copy)
    assert main(args) == 2
    assert "invalid JSON" in capsys.readouterr().err or "JSON" in capsys.readouterr().err
    assert _snapshot(fresh_copy) == before


def test_run__unknown_config_key_exit_2(scenario, fresh_copy, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detection:\n  min_mapping_unit: 0.2\n")
    before = _snapshot(fresh_copy)
    assert main([*run_args(scenario, fresh_copy), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "detection.min_mapping_unit" in err
    assert _snapshot(fresh_copy) == before


def test_run__missing_catalog_exit_2(scenario, tmp_path, capsys):
    args = run_args(scenario, tmp_path / "out")
    args[args.index("--catalog") + 1] = str(tmp_path / "none" / "catalog.json")
    assert main(args) == 2
    assert "catalog not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run__sites_outside_the_imagery_exit_2(scenario, tmp_path, capsys):
    def move(d):
        for f in d["features"]:
            f["geometry"] = {
                "type": "Polygon",
                "coordinates": [[[10, 10], [10.01, 10], [10.01, 10.01], [10, 10]]],
            }

    sites = _edit_sites(scenario, tmp_path, move)
    args = run_args(scenario, tmp_path / "out")
    args[args.index("--sites") + 1] = str(sites)
    assert main(args) == 2
    assert "no site overlaps the imagery" in capsys.readouterr().err


def test_console_script__no_traceback_and_status_2(tmp_path):
    exe = Path(sys.executable).with_name("minewatch")
    proc = subprocess.run(
        [
            str(exe),
            "run",
            "--out",
            str(tmp_path / "o"),
            "--sites",
            str(tmp_path / "missing.geojson"),
            "--catalog",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "missing.geojson" in proc.stderr


def test_flags_cli__list_show_and_unknown_flag(scenario_run, capsys):
    assert main(["flags", "list", "--workspace", str(scenario_run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    flags = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    assert {r["flag_id"] for r in rows} == {f["properties"]["flag_id"] for f in flags}
    assert main(["flags", "show", "--workspace", str(scenario_run), rows[0]["flag_id"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["history"][0]["event"] == "detected"
    assert main(["flags", "show", "--workspace", str(scenario_run), "F00000000-nope"]) == 2


def test_demo_config__loads_with_paths_relative_to_it():
    from pipeline.config import load_config

    root = Path(__file__).parents[2]
    cfg = load_config(root / "configs" / "demo.yaml")
    assert cfg.inputs.sites == str(root / "data" / "demo" / "sites.geojson")
    assert cfg.grid.chunk_size == 256


def test_run__workspace_held_by_a_live_run_exits_3(scenario, fresh_copy, capsys):
    from pipeline.workspace import LOCK_FILE

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"host": socket.gethostname(), "pid": holder.pid}
        (fresh_copy / LOCK_FILE).write_text(json.dumps(lock))
        before = _snapshot(fresh_copy)
        assert main(run_args(scenario, fresh_copy)) == 3
        assert "locked" in capsys.readouterr().err
        assert _snapshot(fresh_copy) == before
    finally:
        holder.kill()
        holder.wait()
