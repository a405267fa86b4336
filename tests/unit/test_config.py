"""Config: typed once, unknown keys refused, CLI overrides the file, file the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import InputError


def test_load_config__defaults_match_the_shipped_default_yaml():
    cfg = load_config()
    repo_default = Path(__file__).parents[2] / "configs" / "default.yaml"
    assert load_config(repo_default) == cfg
    assert cfg.detection.min_mapping_unit_ha == 0.1
    assert cfg.report.language == "zh-CN"
    assert cfg.provider.kind == "catalog"


def test_load_config__file_overrides_defaults_and_cli_overrides_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "detection:\n  min_mapping_unit_ha: 0.2\nperiod:\n  end: 2023-12-31\n"
        "inputs:\n  sites: sites.geojson\n"
    )
    cfg = load_config(path, {"period.end": "2023-06-30", "report.language": None})
    assert cfg.detection.min_mapping_unit_ha == 0.2
    assert str(cfg.period.end) == "2023-06-30"
    assert cfg.inputs.sites == str(tmp_path / "sites.geojson")  # relative to the config file


def test_load_config__unknown_key_names_file_and_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  min_maping_unit_ha: 0.2\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "detection.min_maping_unit_ha" in str(err.value)
    assert "unknown config key" in str(err.value)


def test_load_config__wrong_type_and_range(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  min_mapping_unit_ha: -1\n")
    with pytest.raises(InputError, match=r"detection\.min_mapping_unit_ha"):
        load_config(path)
    path.write_text("report:\n  language: fr\n")
    with pytest.raises(InputError, match=r"report\.language"):
        load_config(path)


def test_load_config__invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detection:\n  min_mapping_unit_ha: [0.1\n")
    with pytest.raises(InputError, match=r"invalid YAML.*|line \d+"):
        load_config(path)


def test_load_config__missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_config(tmp_path / "none.yaml")


def test_load_config__dates_out_of_order(tmp_path):
    with pytest.raises(InputError, match="after end"):
        load_config(None, {"period.start": "2024-01-01", "period.end": "2023-01-01"})


def test_config_hash__ignores_credentials_and_tracks_thresholds():
    base = load_config()
    secret = load_config(None, {"provider.sentinelhub.client_secret": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(secret.public_dict())
    assert "s3cr3t-value" not in repr(secret)
    tuned = load_config(None, {"detection.persistence_min": 0.8})
    assert tuned.config_hash() != base.config_hash()


def test_check_config__lists_every_problem_with_its_dotted_key(tmp_path):
    from pipeline.config import check_config

    path = tmp_path / "c.yaml"
    path.write_text(
        "detection:\n  min_maping_unit_ha: 0.2\n  persistence_min: 2\n"
        "grid:\n  chunk_size: big\nreport:\n  language: fr\n"
    )

    cfg, errors = check_config(path)

    assert cfg is None
    assert {(e.file, e.field) for e in errors} == {
        (str(path), "detection.min_maping_unit_ha"),
        (str(path), "detection.persistence_min"),
        (str(path), "grid.chunk_size"),
        (str(path), "report.language"),
    }
    with pytest.raises(InputError) as first:
        load_config(path)
    assert first.value.field in {e.field for e in errors}


def test_check_config__valid_config_has_no_problem():
    from pipeline.config import check_config

    cfg, errors = check_config(None, {"detection.persistence_min": 0.8})

    assert errors == []
    assert cfg is not None and cfg.detection.persistence_min == 0.8


def test_load_config__a_bad_value_from_the_command_line_is_named_so(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("period:\n  start: 2022-01-01\n")

    with pytest.raises(InputError) as err:
        load_config(path, {"period.end": "2021-01-01", "compute.workers": None})

    assert err.value.file == "command line"
    assert err.value.field == "period"
    assert "after end" in str(err.value)


def test_load_config__config_that_is_a_list_or_a_folder_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- detection\n- grid\n")
    with pytest.raises(InputError, match="must be a mapping"):
        load_config(path)
    with pytest.raises(InputError, match="cannot read file") as err:
        load_config(tmp_path)
    assert err.value.file == str(tmp_path)
