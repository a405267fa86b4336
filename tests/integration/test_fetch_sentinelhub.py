"""Fetching from Sentinel Hub: the real ``sentinelhub`` client against a local server.

The server (``tests.fakes.eo_services``) speaks the OAuth token, Catalog API and
Process API endpoints over a generated scenario; nothing of ``sentinelhub`` is
patched. Retries are made short through the config, not by patching.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.scenes import ScenarioPaths, generate_scenario
from tests.fakes.eo_services import FakeEOServices, Fault

from .fetch_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    assert_archive_matches_source,
    log_text,
    write_config,
    written_text,
)

PROCESS = "/api/v1/process"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioPaths:
    from datetime import date

    return generate_scenario(
        tmp_path_factory.mktemp("fetch-scenario"),
        seed=11,
        shape=(120, 160),
        start=date(2021, 11, 20),
        end=date(2022, 4, 10),
    )


@pytest.fixture
def services(scenario: ScenarioPaths, monkeypatch: pytest.MonkeyPatch):
    # oauthlib refuses plain http unless told this is a local test server
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with FakeEOServices(scenario, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as svc:
        yield svc


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)


def _config(tmp_path: Path, svc: FakeEOServices, scenario: ScenarioPaths, **kw) -> Path:
    return write_config(
        tmp_path / "fetch.yaml",
        kind="sentinelhub",
        url=svc.url,
        archive=tmp_path / "archive",
        sites=scenario.sites,
        **kw,
    )


def _ledger(archive: Path) -> dict:
    return json.loads((archive / "fetch.json").read_text())


@pytest.mark.usefixtures("credentials")
def test_fetch_sentinelhub__archive_reads_like_the_source_and_runs(
    tmp_path, scenario, services, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    cfg = _config(tmp_path, services, scenario)
    archive = tmp_path / "archive"

    assert main(["-v", "fetch", "--config", str(cfg)]) == 0

    ledger = _ledger(archive)
    done = [r for r in ledger["items"].values() if r["status"] == "done"]
    assert len(ledger["tiles"]) == 4  # sites + 200 m buffer, cut at 96 px
    assert services.count("/oauth/token") == 1
    assert services.count("/api/v1/catalog/1.0.0/search") >= 3  # paged 4 at a time
    assert (
        services.count(PROCESS)
        == len(ledger["items"])
        == len(done) + sum(r["status"] == "empty" for r in ledger["items"].values())
    )
    assert assert_archive_matches_source(archive, scenario) > 0
    # the 20 m bands are stored at 20 m
    item = json.loads(next((archive / "items").glob("*/*.json")).read_text())
    assert item["assets"]["swir16"]["raster:bands"][0]["spatial_resolution"] == 20
    assert item["assets"]["red"]["raster:bands"][0] == {
        "nodata": 0,
        "data_type": "uint16",
        "spatial_resolution": 10,
        "scale": 0.0001,
        "offset": 0.0,
    }

    # `run` with the provider config: the archive is complete, nothing is fetched again.
    n_process = services.count(PROCESS)
    ws = tmp_path / "ws"
    assert main(["run", "--config", str(cfg), "--out", str(ws)]) == 0
    assert services.count(PROCESS) == n_process
    assert (ws / schema.FLAGS_FILE).exists()
    manifest = json.loads((ws / schema.MANIFEST_FILE).read_text())
    assert manifest["inputs"]["catalog"] == str(archive / "catalog.json")

    # the secret is nowhere: files, logs (at DEBUG), stdout/stderr
    out = capsys.readouterr()
    seen = written_text(archive, ws) + log_text(caplog.records) + out.out + out.err
    assert CLIENT_SECRET not in seen
    assert services.token not in seen


@pytest.mark.usefixtures("credentials")
def test_fetch_sentinelhub__429_storm_waits_as_told(tmp_path, scenario, services):
    # Sentinel Hub gives Retry-After in milliseconds.
    services.faults.append(
        Fault(lambda m, p, b: p == PROCESS, 429, times=6, headers={"Retry-After": "300"})
    )
    cfg = _config(tmp_path, services, scenario, tile_px=200, attempts=10)

    assert main(["fetch", "--config", str(cfg)]) == 0

    ledger = _ledger(tmp_path / "archive")
    assert all(r["status"] in ("done", "empty") for r in ledger["items"].values())
    process = [s for s in services.seen if s.path == PROCESS]
    assert sum(s.status == 429 for s in process) == 6
    # after a 429, the same request did not come back sooner than the service asked
    waits = []
    for i, s in enumerate(process):
        if s.status == 429:
            again = next(t for t in process[i + 1 :] if t.body == s.body)
            waits.append(again.at - s.at)
    assert len(waits) == 6 and min(waits) >= 0.29


@pytest.mark.usefixtures("credentials")
def test_fetch_sentinelhub__500_on_one_tile_is_named_and_the_rest_goes_on(
    tmp_path, scenario, services, capsys
):
    cfg = _config(tmp_path, services, scenario)
    archive = tmp_path / "archive"
    broken: list[float] = []

    def one_tile(method: str, path: str, body: dict | None) -> bool:
        if path != PROCESS or body is None:
            return False
        bbox = body["input"]["bounds"]["bbox"]
        if not broken:
            broken.extend(bbox)
        return bbox == broken

    services.faults.append(Fault(one_tile, 500, times=None))

    assert main(["fetch", "--config", str(cfg)]) == 1

    err = capsys.readouterr().err
    ledger = _ledger(archive)
    failed = {k: r for k, r in ledger["items"].items() if r["status"] == "failed"}
    done = {k: r for k, r in ledger["items"].items() if r["status"] == "done"}
    assert failed and done
    assert len({r["tile_id"] for r in failed.values()}) == 1
    for item_id, rec in failed.items():
        assert item_id in err
        assert "500" in rec["error"]
    catalog = json.loads((archive / "catalog.json").read_text())
    listed = {
        link["href"].split("/")[-1][:-5] for link in catalog["links"] if link["rel"] == "item"
    }
    assert listed == set(done)
    # 3 tries per failed item (the configured attempts)
    assert services.faults[0].hits == 3 * len(failed)

    # the service recovers: a rerun fetches only the failed items
    services.faults.clear()
    before = services.count(PROCESS)
    assert main(["fetch", "--config", str(cfg)]) == 0
    assert services.count(PROCESS) - before == len(failed)


def test_fetch_sentinelhub__bad_credential_is_one_clear_error(
    tmp_path, scenario, services, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET + "-wrong")
    cfg = _config(tmp_path, services, scenario)

    assert main(["-v", "fetch", "--config", str(cfg)]) == 2

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("minewatch:")]
    assert len(lines) == 1
    assert "refused the client credentials" in lines[0]
    assert "SH_CLIENT_SECRET" in lines[0]
    assert "Traceback" not in err
    assert CLIENT_SECRET not in err + log_text(caplog.records)
    assert not (tmp_path / "archive").exists()
    assert services.count(PROCESS) == 0


def test_fetch_sentinelhub__missing_credentials_say_where_to_put_them(
    tmp_path, scenario, services, monkeypatch, capsys
):
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    cfg = _config(tmp_path, services, scenario)
    assert main(["fetch", "--config", str(cfg)]) == 2
    assert "SH_CLIENT_ID" in capsys.readouterr().err
    assert services.seen == []


def test_fetch_sentinelhub__interrupted_fetch_resumes_without_refetching(
    tmp_path, scenario, services
):
    cfg = _config(tmp_path, services, scenario)
    archive = tmp_path / "archive"
    services.stall_process_after = 12
    env = {**os.environ, "SH_CLIENT_ID": CLIENT_ID, "SH_CLIENT_SECRET": CLIENT_SECRET}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "fetch", "--config", str(cfg)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert services.stalled.wait(60), "the fetch never reached the stall"
        time.sleep(0.3)  # let the items already received be written
    finally:
        proc.kill()
        proc.wait(10)
    services.release.set()
    services.stall_process_after = None

    assert not (archive / "catalog.json").exists()  # written last: never half a catalog
    done = {k: r for k, r in _ledger(archive)["items"].items() if r["status"] != "failed"}
    assert 0 < len(done) <= 12
    # a file damaged after the crash is caught by its checksum and fetched again
    victim = next(k for k, r in done.items() if r["status"] == "done")
    red = archive / "items" / victim / "red.tif"
    red.write_bytes(red.read_bytes()[:-100] + b"\0" * 100)

    before = services.count(PROCESS)
    os.environ["SH_CLIENT_ID"], os.environ["SH_CLIENT_SECRET"] = CLIENT_ID, CLIENT_SECRET
    try:
        assert main(["fetch", "--config", str(cfg)]) == 0
    finally:
        del os.environ["SH_CLIENT_ID"], os.environ["SH_CLIENT_SECRET"]
    ledger = _ledger(archive)
    total = len(ledger["items"])
    assert services.count(PROCESS) - before == total - len(done) + 1
    assert not list(archive.rglob(".*.tmp"))
    assert_archive_matches_source(archive, scenario)
