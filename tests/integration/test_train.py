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


def _answer(ws: Path, false_alarm_violation: str) -> dict[str, str]:
    """Confirm every enforcement flag but one, answered as a false alarm."""
    from pipeline.ledger import list_flags, open_ledger, set_status

    answers = {}
    with open_ledger(ws) as con:
        for flag in list_flags(con):
            if flag["violation"] == "within_permit":
                continue
            status = "false_alarm" if flag["violation"] == false_alarm_violation else "confirmed"
            set_status(con, flag["flag_id"], status, who="county team")
            answers[flag["flag_id"]] = status
    return answers


def test_train_from_ledger__reviews_thresholds_and_labels_sites(
    scenario, fresh_copy, tmp_path, capsys
):
    answers = _answer(fresh_copy, "suspended_site")
    out = tmp_path / "m"
    args = ["train", "--from-ledger", "--workspace", str(fresh_copy)]
    args += ["--sites", str(scenario.sites), "--out", str(out)]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    n_false = sum(s == "false_alarm" for s in answers.values())
    assert f"{len(answers)} answered flags: {len(answers) - n_false} confirmed, " in stdout
    saved = json.loads((out / "ledger_training.json").read_text())
    examples = {e["flag_id"]: e for e in saved["examples"]}
    assert {k: e["status"] for k, e in examples.items()} == answers
    false = next(e for e in examples.values() if e["status"] == "false_alarm")
    real = [e for e in examples.values() if e["real"]]
    assert all(0 <= e["persistence"] <= 1 for e in examples.values())
    mmu = next(t for t in saved["thresholds"] if t["key"] == "detection.min_mapping_unit_ha")
    lowest = min(e["area_ha"] for e in real if e["violation"] != "illegal_site")
    assert 0.1 <= false["area_ha"] < lowest  # this false alarm is smaller than every real dig
    assert mmu["suggested"] == pytest.approx((false["area_ha"] + lowest) / 2, abs=1e-3)
    assert mmu["false_alarms_dropped"] == 1
    assert f"detection.min_mapping_unit_ha: 0.1 -> {mmu['suggested']} would drop 1 of 1" in stdout
    persistence = next(t for t in saved["thresholds"] if t["key"] == "detection.persistence_min")
    assert persistence["suggested"] is None  # the false alarm stayed bare: no reason to move
    # The confirmed dig on restored land labels its site disturbed as of the run's end.
    truth = json.loads(scenario.truth.read_text(encoding="utf-8"))
    dug_restored = {d["site_id"] for d in truth["digs"] if d["violation"] == "restored_land"}
    labels = pd.read_csv(out / "ledger_labels.csv")
    assert set(labels["site_id"]) == dug_restored
    assert set(labels["recovery_class"]) == {"disturbed"}
    assert not (out / MODEL_FILE).exists()  # no --labels: nothing to retrain with
    assert "add --labels to retrain" in stdout


def test_train_from_ledger__with_labels_retrains_and_the_ledger_wins(
    scenario, fresh_copy, tmp_path, capsys
):
    _answer(fresh_copy, "suspended_site")
    labels = _labels(scenario, fresh_copy, tmp_path / "labels.csv")
    table = pd.read_csv(labels)
    truth = json.loads(scenario.truth.read_text(encoding="utf-8"))
    site = next(d["site_id"] for d in truth["digs"] if d["violation"] == "restored_land")
    until = json.loads((fresh_copy / schema.MANIFEST_FILE).read_text())["period"]["end"]
    row = (table["site_id"] == site) & (table["assessed_until"] == until)
    table.loc[row, "recovery_class"] = "restored"  # a stale label the ledger corrects
    table.to_csv(labels, index=False)
    out = tmp_path / "m"
    args = ["train", "--from-ledger", "--labels", str(labels), "--workspace", str(fresh_copy)]
    args += ["--sites", str(scenario.sites), "--out", str(out), "--model-version", "ledger-1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(model_module.ESTIMATOR_PARAMS, "max_iter", 10)
        mp.setattr(model_module, "CV_FOLDS", 3)
        assert main(args) == 0
    stdout = capsys.readouterr().out
    card = load_model(out).card
    assert card["version"] == "ledger-1"
    assert card["training_data"]["ledger_labels"] == 1
    per_class = card["training_data"]["per_class"]
    assert per_class["disturbed"] == int((table["recovery_class"] == "disturbed").sum()) + 1
    assert per_class["restored"] == int((table["recovery_class"] == "restored").sum()) - 1
    assert "model ledger-1 written to" in stdout
    assert "class: " in stdout


def test_train_from_ledger__no_answers_exit_2(scenario, fresh_copy, tmp_path, capsys):
    args = ["train", "--from-ledger", "--workspace", str(fresh_copy)]
    args += ["--sites", str(scenario.sites), "--out", str(tmp_path / "m")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ledger.sqlite" in err and "field 'status'" in err
    assert not (tmp_path / "m").exists()
