"""A small generated scenario and one pipeline run over it, shared by the integration tests."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.scenes import ScenarioPaths, generate_scenario

SCENARIO_SEED = 7  # not the demo's seed


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioPaths:
    root = tmp_path_factory.mktemp("scenario")
    return generate_scenario(
        root, seed=SCENARIO_SEED, shape=(160, 200), start=date(2021, 3, 1), end=date(2023, 4, 30)
    )


def run_args(paths: ScenarioPaths, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--catalog",
        str(paths.catalog),
        "--sites",
        str(paths.sites),
        "--permits",
        str(paths.permits),
        "--zones",
        str(paths.zones),
        "--aoi",
        str(paths.aoi),
        "--out",
        str(out),
        "--language",
        "en",
        *extra,
    ]


@pytest.fixture(scope="session")
def scenario_run(scenario: ScenarioPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(run_args(scenario, out)) == 0
    return out


@pytest.fixture
def fresh_copy(scenario_run: Path, tmp_path: Path) -> Path:
    """A copy of the shared run's workspace that a test may change."""
    out = tmp_path / "ws"
    shutil.copytree(scenario_run, out)
    return out
