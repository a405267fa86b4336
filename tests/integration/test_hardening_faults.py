"""Faults and security: a full disk loses nothing, secrets and paths stay inert, HTML escapes.

The disk fills for real: the rerun's process gets a file-size limit (``RLIMIT_FSIZE``,
any user) or its workspace lies on a tiny tmpfs (when this user may mount one).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schema
from pipeline.cli import main

from .test_hardening import SITE_B, World, build_world, site_feature, utm_box, write_features

MINEWATCH = str(Path(sys.executable).with_name("minewatch"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def many_sites(world: World) -> list[str]:
    """Run options with 48 sites: enough for the report to be the largest file written."""
    features = [
        site_feature(
            f"S{r}{c:02d}",
            utm_box(640_010 + 50 * c, 3_734_610 + 95 * r, 640_050 + 50 * c, 3_734_690 + 95 * r),
        )
        for r in range(4)
        for c in range(12)
    ]
    sites = write_features(world.sites.with_name("many_sites.geojson"), features)
    return world.args(sites=str(sites), permits=None, zones=None)


@pytest.fixture(scope="module")
def earlier_run(many_sites: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the outputs of a run over the first two dates only."""
    out = tmp_path_factory.mktemp("earlier") / "ws"
    assert main(["run", "--out", str(out), *many_sites, "--end", "2022-05-11"]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_whole(out: Path, before: dict[str, bytes]) -> None:
    """Every output is either as before or a complete new version; no temporary file left."""
    after = _files(out)
    assert not [n for n in after if n.endswith(".tmp")], sorted(after)
    assert set(before) <= set(after)
    assert after[schema.MANIFEST_FILE] == before[schema.MANIFEST_FILE]  # written last
    json.loads(after[schema.FLAGS_FILE])
    pd.read_parquet(out / schema.TIMESERIES_FILE)
    for name in (schema.SITE_STATUS_FILE, schema.PROGRESS_FILE):
        pd.read_csv(out / name)
    assert after[schema.REPORT_FILE].rstrip().endswith(b"</html>")


def _rerun(options: list[str], out: Path, limit: int) -> subprocess.CompletedProcess:
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [MINEWATCH, "run", "--out", str(out), *options],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=set_limit,
        timeout=300,
    )


def test_run__file_size_limit_mid_write_keeps_earlier_outputs_whole(
    many_sites: list[str], earlier_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ws"
    shutil.copytree(earlier_run, out)
    before = _files(out)
    # Every other file (outputs, ledger, saved units) fits under the limit; the report not.
    others = [p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name != "report.html"]
    limit = max(others) + 16 * 1024
    assert len(before[schema.REPORT_FILE]) > limit + 16 * 1024, "the report must be largest"

    proc = _rerun(many_sites, out, limit)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [message] = [line for line in proc.stderr.splitlines() if line.startswith("minewatch:")]
    assert f"cannot write {out / schema.REPORT_FILE}" in message
    assert "File too large" in message and "left as it was" in message
    _assert_whole(out, before)
    assert _files(out)[schema.REPORT_FILE] == before[schema.REPORT_FILE]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    size = 2 * 1024 * 1024
    done = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size}",
            f"minewatch-{uuid.uuid4().hex[:6]}",
            str(mount),
        ],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_run__disk_full_mid_run_keeps_earlier_outputs_whole(
    many_sites: list[str], earlier_run: Path, tiny_tmpfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_tmpfs / "ws"
    shutil.copytree(earlier_run, out)
    before = _files(out)
    # Fill the disk so that about half of the report fits. Each output is written next
    # to the old one and then replaces it, so the smaller ones fit one at a time.
    room = len(before[schema.REPORT_FILE]) // 2
    free = shutil.disk_usage(tiny_tmpfs).free
    assert free > room
    with open(tiny_tmpfs / "filler", "wb") as fh:
        fh.write(b"\0" * (free - room))

    assert main(["run", "--out", str(out), *many_sites]) == 1

    err = capsys.readouterr().err
    assert "Traceback" not in err
    [message] = [line for line in err.splitlines() if line.startswith("minewatch:")]
    assert "No space left on device" in message or "disk is full" in message, message
    assert str(out) in message
    _assert_whole(out, before)


# --- security ------------------------------------------------------------------------------

FAKE_ID = "fake-client-id-4f1c9b"
FAKE_SECRET = "fake-client-secret-8e2d7a"
ENV_ID = "env-client-id-71b0c3"
ENV_SECRET = "env-client-secret-a93e55"


def test_run__credentials_never_reach_outputs_or_logs(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the most talkative logging
    config = tmp_path / "config.yaml"
    config.write_text(
        f"provider:\n  sentinelhub:\n    client_id: {FAKE_ID}\n    client_secret: {FAKE_SECRET}\n"
    )
    out = tmp_path / "ws"
    monkeypatch.setenv("SH_CLIENT_ID", ENV_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", ENV_SECRET)

    code = main(["-v", "run", "--out", str(out), "--config", str(config), *world.args()])

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    logs = caplog.text + printed.out + printed.err
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert schema.MANIFEST_FILE in {p.name for p in written}
    for secret in (FAKE_ID, FAKE_SECRET, ENV_ID, ENV_SECRET):
        assert secret not in logs
        for path, data in written.items():
            assert secret.encode() not in data, path
            assert secret.encode("utf-16-le") not in data, path
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    sentinelhub = manifest["config"]["provider"]["sentinelhub"]
    assert sentinelhub["client_id"] and sentinelhub["client_id"] != FAKE_ID


@pytest.mark.parametrize(
    "path",
    ["$(touch {marker})", "`touch {marker}`", "x; touch {marker}", "| touch {marker}"],
)
def test_run__paths_from_config_are_resolved_and_reported_never_executed(
    world: World, tmp_path: Path, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "executed"
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"inputs": {"sites": path.format(marker=marker)}}))
    args = [a for a in world.args() if a not in ("--sites", str(world.sites))]

    assert main(["run", "--out", str(tmp_path / "ws"), "--config", str(config), *args]) == 2

    line = capsys.readouterr().err.strip().splitlines()[-1]
    resolved = (tmp_path / path.format(marker=marker)).resolve()
    assert line.startswith(f"minewatch: error: {resolved}: file not found"), line
    assert not marker.exists()
    assert not (tmp_path / "ws").exists()


def test_report__strings_from_input_files_are_escaped(world: World, tmp_path: Path) -> None:
    script = "<script>alert(1)</script>"
    sites = write_features(
        tmp_path / "sites.geojson",
        [
            site_feature("S01", name=script, county=f'"><img src=x onerror=alert(2)>{script}'),
            site_feature("S02", SITE_B, name="Quarry & <b>Co</b>"),
        ],
    )
    out = tmp_path / "ws"

    assert main(["run", "--out", str(out), *world.args(sites=str(sites)), "--language", "en"]) == 0

    html = (out / schema.REPORT_FILE).read_text(encoding="utf-8")
    assert script not in html
    assert "<img src=x" not in html and "<b>Co</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Quarry &amp; &lt;b&gt;Co&lt;/b&gt;" in html
