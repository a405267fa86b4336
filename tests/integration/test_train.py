"""`minewatch train` on the shared scenario run, and `minewatch run` with a bad model."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.recovery import model as model_module
from pipeline.recovery.model import CARD_FILE, MODEL_FILE, load_model
from tests.integration.conftest import run_args


def _labels(scenario, scenario_run: Path, path: Path) -> Path:
    truth = json.loads(scenario.truth.read_text(encoding="utf-8"))
    until = json.loads((scenario_run / schema.MANIFEST_FILE).read_text())["period"]["end"]
    rows = [(s["site_id"], until, s["recovery_class"]) for s in truth["sites"]]
    # A second, earlier look at every unrestored site: several dates per site.
    rows += [(sid, "2022-10-31", c) for sid, _, c in rows if c == "unrestored"]
    pd.DataFrame(rows, columns=["site_id", "assessed_until", "recovery_class"]).to_csv(
        path, index=False
    )
    return path


@pytest.fixture(scope="module")
def trained(scenario, scenario_run, tmp_path_factory) -> tuple[Path, Path, str]:
    """`minewatch train` once on the shared run: (labels, model folder, its stdout)."""
    tmp = tmp_path_factory.mktemp("train")
    labels = _labels(scenario, scenario_run, tmp / "labels.csv")
    out = tmp / "models" / "county"
    args = ["train", "--labels", str(labels), "--sites", str(scenario.sites)]
    args += ["--workspace", str(scenario_run), "--out", str(out), "--model-version", "county-1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(model_module.ESTIMATOR_PARAMS, "max_iter", 10)
        mp.setattr(model_module, "CV_FOLDS", 3)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(args) == 0
    return labels, out, buffer.getvalue()


def test_train__writes_a_loadable_model_with_its_card(trained):
    labels, out, stdout = trained
    assert "cross-validation grouped by site" in stdout
    model = load_model(out)
    card = model.card
    n_labels = len(pd.read_csv(labels))
    assert model.version == "county-1"
    assert card["training_data"]["n_samples"] == n_labels
    assert card["training_data"]["n_sites"] < n_labels  # grouped: sites, not rows
    assert sum(map(sum, card["cross_validation"]["confusion"]["matrix"])) == n_labels


def test_train__bad_labels_exit_2(scenario, scenario_run, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("site_id,assessed_until,recovery_class\nNOPE,2023-01-01,restored\n")
    args = ["train", "--labels", str(labels), "--sites", str(scenario.sites)]
    args += ["--workspace", str(scenario_run), "--out", str(tmp_path / "m")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "NOPE" in err and "site_id" in err
    assert not (tmp_path / "m").exists()


def test_run__tampered_model_exit_2_and_workspace_untouched(
    scenario, trained, fresh_copy, tmp_path, capsys
):
    folder = tmp_path / "m"
    shutil.copytree(trained[1], folder)
    with (folder / MODEL_FILE).open("ab") as f:
        f.write(b"\0")
    config = tmp_path / "model.yaml"
    config.write_text("recovery:\n  model: m\n")  # relative to the config file
    before = (fresh_copy / schema.SITE_STATUS_FILE).read_bytes()
    assert main(run_args(scenario, fresh_copy, "--config", str(config))) == 2
    err = capsys.readouterr().err
    assert str(folder / MODEL_FILE) in err and "changed after training" in err
    assert (fresh_copy / schema.SITE_STATUS_FILE).read_bytes() == before
    assert (folder / CARD_FILE).exists()
