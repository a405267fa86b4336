"""Fetching from a STAC API: real pystac-client search, COG windows read by range requests."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.scenes import ScenarioPaths, generate_scenario
from tests.fakes.eo_services import FakeEOServices, Fault

from .fetch_helpers import CLIENT_ID, CLIENT_SECRET, assert_archive_matches_source, write_config


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioPaths:
    return generate_scenario(
        tmp_path_factory.mktemp("stac-scenario"),
        seed=11,
        shape=(120, 160),
        start=date(2021, 11, 20),
        end=date(2022, 4, 10),
    )


def test_fetch_stac__windows_by_range_requests_retry_after_and_no_refetch(tmp_path: Path, scenario):
    with FakeEOServices(scenario, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as svc:
        cfg = write_config(
            tmp_path / "fetch.yaml",
            kind="stac_api",
            url=svc.url,
            archive=tmp_path / "archive",
            sites=scenario.sites,
            tile_px=96,
            attempts=5,
        )
        # a 503 on the first search page and a 429 storm on the COGs, both with Retry-After
        svc.faults.append(
            Fault(lambda m, p, b: p == "/stac/search", 503, times=1, headers={"Retry-After": "1"})
        )
        svc.faults.append(
            Fault(
                lambda m, p, b: p.startswith("/cogs/"), 429, times=3, headers={"Retry-After": "1"}
            )
        )
        assert main(["fetch", "--provider", "stac", "--config", str(cfg)]) == 0

        archive = tmp_path / "archive"
        ledger = json.loads((archive / "fetch.json").read_text())
        assert ledger["provider"] == "stac_api"
        assert all(r["status"] == "done" for r in ledger["items"].values())
        # after each refusal the same request waited the second the server asked for
        for i, s in enumerate(svc.seen):
            if s.status in (429, 503):
                again = next(
                    t
                    for t in svc.seen[i + 1 :]
                    if (t.path, t.headers.get("Range"), t.body)
                    == (s.path, s.headers.get("Range"), s.body)
                )
                assert again.at - s.at >= 0.95
        assert svc.count("/stac/search", "POST") >= 4  # paged 4 at a time (+ the retried one)
        cogs = [s for s in svc.seen if s.path.startswith("/cogs/")]
        assert cogs and all(s.method == "GET" and "Range" in s.headers for s in cogs)
        assert {s.status for s in cogs} == {206, 429}
        assert_archive_matches_source(archive, scenario)
        # the 2022 processing-baseline offset travels with the item
        items = [json.loads(p.read_text()) for p in (archive / "items").glob("*/*.json")]
        offsets = {
            it["properties"]["datetime"][:10] >= "2022-01-25": it["assets"]["red"]["raster:bands"][
                0
            ]["offset"]
            for it in items
        }
        assert offsets == {False: 0.0, True: -0.1}

        # a second fetch finds everything archived and valid: no COG is read again
        n_cogs = len(cogs)
        assert main(["fetch", "--provider", "stac", "--config", str(cfg)]) == 0
        assert svc.count("/cogs/") == n_cogs
