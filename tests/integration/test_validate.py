"""``minewatch validate``: every problem of every input at once, nothing computed or written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.validate import validate_inputs

from .test_hardening import (
    REFUSED,
    SITE_B,
    World,
    build_world,
    expected_file,
    permit_feature,
    site_feature,
    write_features,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


# Where validate says more than run: run stops at "no site overlaps", validate names each.
VALIDATE_SAYS = {
    "no_site_overlaps_the_imagery": ("feature 0 (site_id=S01)", "entirely outside the imagery")
}


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_validate__each_refused_input_is_an_error_with_status_2(
    case, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = case.make(world, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    assert main(["validate", *args]) == 2

    out = capsys.readouterr().out.splitlines()
    record, says = VALIDATE_SAYS.get(case.name, (case.record, case.says))
    errors = [line for line in out if line.startswith("error: ")]
    wanted = f"error: {expected_file(case, world, tmp_path)}: "
    matching = [line for line in errors if line.startswith(wanted) and says in line]
    assert matching, out
    if record is not None:
        assert f"record {record}" in matching[0]
    if case.field is not None:
        assert f"field '{case.field}'" in matching[0]
    assert out[-1].startswith("inputs are not valid:")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_validate__lists_every_problem_at_once(world: World, tmp_path: Path, capsys) -> None:
    no_geometry = site_feature("S04")
    no_geometry["geometry"] = None
    sites = write_features(
        tmp_path / "sites.geojson",
        [
            site_feature("S01"),
            site_feature("S02", SITE_B, category="quarry"),
            site_feature("S01", SITE_B),
            no_geometry,
            site_feature("S05", SITE_B, target="orchard"),
        ],
    )
    permits = write_features(
        tmp_path / "permits.geojson",
        [permit_feature("P01", site_id="S99"), permit_feature("P02", valid_from="2030-01-01")],
    )
    config = tmp_path / "config.yaml"
    config.write_text("detection:\n  min_maping_unit_ha: 0.2\ngrid:\n  chunk_size: 1\n")
    args = world.args(sites=str(sites), permits=str(permits), zones=str(tmp_path / "none.json"))

    assert main(["validate", *args, "--config", str(config), "--json"]) == 2

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    found = {(e["file"], e["record"], e["field"]) for e in report["errors"]}
    assert found == {
        (str(config), None, "detection.min_maping_unit_ha"),
        (str(config), None, "grid.chunk_size"),
        (str(sites), "feature 1 (site_id=S02)", "category"),
        (str(sites), "features 0 and 2 (site_id=S01)", "site_id"),
        (str(sites), "feature 3 (site_id=S04)", "geometry"),
        (str(sites), "feature 4 (site_id=S05)", "target"),
        (str(permits), "feature 0 (permit_id=P01)", "site_id"),
        (str(permits), "feature 1 (permit_id=P02)", "valid_from"),
        (str(tmp_path / "none.json"), None, None),
    }
    assert report["inputs"]["sites"] == str(sites)
    assert report["inputs"]["catalog"] == str(world.catalog)


def test_validate__valid_inputs_exit_0_and_list_warnings(
    world: World, tmp_path: Path, capsys
) -> None:
    sites = write_features(
        tmp_path / "sites.geojson",
        [site_feature("S01"), site_feature(" S02 ", SITE_B)],  # whitespace: stripped, warned
    )

    assert main(["validate", *world.args(sites=str(sites))]) == 0

    out = capsys.readouterr().out.splitlines()
    assert f"sites: {sites}" in out
    [warning] = [line for line in out if line.startswith("warning: ")]
    assert "record feature 1 (site_id=S02): field 'site_id': stripped whitespace" in warning
    assert out[-1] == "inputs are valid: 0 error(s), 1 warning(s)"


def test_validate_inputs__partly_outside_and_sliver_are_warnings(world: World, tmp_path) -> None:
    from .test_hardening import utm_box

    sites = write_features(
        tmp_path / "sites.geojson",
        [
            site_feature("S01", utm_box(640_500, 3_734_700, 640_700, 3_734_800)),
            site_feature("S02", utm_box(640_020, 3_734_620, 640_040, 3_734_640)),
        ],
    )

    result = validate_inputs(
        None, {"provider.catalog": str(world.catalog), "inputs.sites": str(sites)}
    )

    assert result.ok
    messages = {(w.record, w.message.split(";")[0].split(":")[0]) for w in result.warnings}
    assert ("feature 0 (site_id=S01)", "site only 50% inside the imagery") in messages
    assert any(r == "feature 1 (site_id=S02)" and "mapping unit" in m for r, m in messages)


def _provider_config(
    tmp_path: Path, world: World, kind: str, *, end: str | None = "2022-06-30", **settings: Any
) -> Path:
    provider: dict[str, Any] = {"kind": kind, "archive": str(tmp_path / "archive")}
    for key, value in settings.items():
        provider.setdefault(kind, {})[key] = value
    config = tmp_path / "provider.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "provider": provider,
                "inputs": {"sites": str(world.sites)},
                "period": {"start": "2022-01-01", "end": end},
            }
        )
    )
    return config


def test_validate__provider_config_checks_its_settings_and_says_imagery_is_fetched(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SH_CLIENT_ID", "validate-client")
    monkeypatch.setenv("SH_CLIENT_SECRET", "validate-secret-xyz")
    config = _provider_config(tmp_path, world, "sentinelhub")

    assert main(["validate", "--config", str(config)]) == 0

    out = capsys.readouterr().out
    assert "no catalog given" not in out
    assert f"archive: {tmp_path / 'archive'}" in out
    assert "imagery: fetched from Sentinel Hub at https://services.sentinel-hub.com" in out
    assert "validate-secret-xyz" not in out
    assert out.splitlines()[-1] == "inputs are valid: 0 error(s), 0 warning(s)"
    assert not (tmp_path / "archive").exists()  # nothing fetched, nothing written


def test_validate__provider_without_credentials_or_with_bad_urls_lists_each(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    config = _provider_config(
        tmp_path,
        world,
        "sentinelhub",
        end=None,  # fetching needs both ends
        base_url="services.example.org",  # no scheme
        token_url="http://auth.example.org/token",  # credentials in clear
    )

    result = validate_inputs(config, {})

    fields = {(e.field, e.file) for e in result.errors}
    assert fields == {
        ("provider.sentinelhub.client_secret", str(config)),
        ("provider.sentinelhub.base_url", str(config)),
        ("provider.sentinelhub.token_url", str(config)),
        ("period", str(config)),
    }
    [credentials] = [e for e in result.errors if e.field.endswith("client_secret")]
    assert "SH_CLIENT_ID" in credentials.message and "SH_CLIENT_SECRET" in credentials.message


def test_validate__stac_api_url_is_checked(world: World, tmp_path: Path) -> None:
    config = _provider_config(tmp_path, world, "stac_api", url="ftp://stac.example.org")

    result = validate_inputs(config, {})

    [error] = result.errors
    assert error.field == "provider.stac_api.url" and "not an http(s) URL" in error.message
    assert "STAC API ftp://stac.example.org" in str(result.inputs["imagery"])
