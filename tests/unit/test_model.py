"""The recovery model: training figures, safe saving and loading, prediction rules.

Models here are tiny (a few boosting rounds on a made-up table where the class
follows two features) so the tests are fast; the shipped model is checked for its
card and size only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from pipeline.config import RecoveryConfig
from pipeline.errors import InputError
from pipeline.recovery import model as model_module
from pipeline.recovery.model import (
    CARD_FILE,
    MODEL_FILE,
    RecoveryModel,
    check_model_files,
    classification_figures,
    load_model,
    save_model,
    train_model,
)
from pipeline.recovery.predict import (
    DEFAULT_MODEL_DIR,
    dying_now,
    loss_seen,
    predict_sites,
    recovery_model,
)
from pipeline.recovery.relative import MODEL_FEATURES
from pipeline.recovery.status import cover_lost, target_margin
from pipeline.recovery.training import read_labels
from pipeline.recovery.trees import TREES_FILE, TreeEnsemble, export_trees
from pipeline.schema import RECOVERY_CLASSES

ROOT = Path(__file__).resolve().parents[2]


def _table(n_per_class: int = 12, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Made-up features: the class is set by recovery_ratio and disturbed_fraction."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    centres = {
        "unrestored": (0.2, 0.0),
        "revegetating": (0.5, 0.0),
        "restored": (1.0, 0.0),
        "regressed": (0.7, 0.0),
        "disturbed": (0.9, 0.3),
    }
    for klass, (ratio, dug) in centres.items():
        for _ in range(n_per_class):
            row = dict.fromkeys(MODEL_FEATURES, 0.0)
            row["recovery_ratio"] = ratio + rng.normal(0, 0.03)
            row["disturbed_fraction"] = dug
            row["ratio_drop"] = 0.3 if klass == "regressed" else 0.0
            row["restoration_started"] = 1.0
            row["n_clear_latest"] = 20.0
            rows.append(row)
            labels.append(klass)
    return pd.DataFrame(rows), pd.Series(labels)


@pytest.fixture(scope="module")
def tiny_model() -> RecoveryModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _table()
    estimator = HistGradientBoostingClassifier(max_iter=15, min_samples_leaf=3, random_state=0)
    estimator.fit(x.to_numpy(), y.to_numpy(dtype=object))
    card = {
        "version": "test-1",
        "classes": [str(c) for c in estimator.classes_],
        "features": list(MODEL_FEATURES),
    }
    return RecoveryModel(estimator, card)


@pytest.fixture
def saved(tmp_path, tiny_model) -> Path:
    return save_model(tiny_model, tmp_path / "m")


def _card(folder: Path) -> dict:
    return json.loads((folder / CARD_FILE).read_text())


def test_save_load__round_trip_keeps_predictions(saved, tiny_model):
    loaded = load_model(saved)
    x, _ = _table(seed=1)
    assert loaded.version == "test-1"
    assert _card(saved)["model_sha256"] == model_module._sha256(saved / MODEL_FILE)
    pd.testing.assert_frame_equal(loaded.predict_proba(x), tiny_model.predict_proba(x))


def test_load_model__feature_schema_mismatch_refused(saved):
    card = _card(saved)
    card["features"] = [f for f in card["features"] if f != "recovery_ratio"]
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError, match="feature schema") as err:
        load_model(saved)
    assert err.value.file == str(saved / CARD_FILE)
    assert err.value.field == "features"
    assert "recovery_ratio" in str(err.value)


def test_load_model__reordered_features_refused(saved):
    card = _card(saved)
    card["features"] = list(reversed(card["features"]))
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError, match="another order"):
        load_model(saved)


def test_load_model__tampered_file_refused(saved):
    path = saved / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="changed after training") as err:
        load_model(saved)
    assert err.value.file == str(path)


class Payload:
    """Stands for code a tampered model would smuggle in: a type nobody trusts."""

    def __init__(self) -> None:
        self.command = "echo owned"


def _without_trees(folder: Path) -> Path:
    """``folder`` as an older model: no tree file, loaded from skops."""
    (folder / TREES_FILE).unlink()
    card = _card(folder)
    del card["trees_file"], card["trees_sha256"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def test_load_model__untrusted_type_refused_even_with_matching_hash(saved):
    # Whoever swaps the file can also rewrite the card's hash; the type check still holds.
    _without_trees(saved)
    path = saved / MODEL_FILE
    sio.dump({"estimator": Payload()}, path)
    card = _card(saved)
    card["model_sha256"] = model_module._sha256(path)
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError, match="untrusted types") as err:
        load_model(saved)
    assert "Payload" in str(err.value)
    assert err.value.file == str(path)


def test_check_model_files__card_and_hash_checked_without_loading(saved):
    # What a run checks before it touches its workspace; the estimator loads later.
    assert check_model_files(saved) == _card(saved)
    path = saved / MODEL_FILE
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(InputError, match="changed after training") as err:
        check_model_files(saved)
    assert err.value.file == str(path)


def _rows_around(card: dict, n: int, seed: int) -> pd.DataFrame:
    """Feature rows from 30 % below to 30 % above each training range, a tenth NaN."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in MODEL_FEATURES:
        spec = (card.get("feature_ranges") or {}).get(name) or {}
        lo, hi = spec.get("min", -1.0), spec.get("max", 1.0)
        lo, hi = (-1.0, 1.0) if lo is None else (lo, hi)
        width = (hi - lo) or 1.0
        out[name] = rng.uniform(lo - 0.3 * width, hi + 0.3 * width, n)
    rows = pd.DataFrame(out)
    return rows.mask(rng.random(rows.shape) < 0.1)


def _on_thresholds(trees: TreeEnsemble, rows: np.ndarray) -> np.ndarray:
    """``rows`` with, in each, one feature set to the threshold of one split of the trees."""
    a = trees._a
    inner = np.flatnonzero(~a["is_leaf"])
    out = rows.copy()
    for i, node in enumerate(inner[np.linspace(0, len(inner) - 1, len(out)).astype(int)]):
        out[i, a["feature"][node]] = a["threshold"][node]
    return out


def test_tree_file__predicts_as_the_estimator_to_the_last_bit(saved, tiny_model):
    loaded = load_model(saved)
    assert isinstance(loaded.estimator, TreeEnsemble)
    assert _card(saved)["trees_sha256"] == model_module._sha256(saved / TREES_FILE)
    x = pd.concat([_table(seed=1)[0], _rows_around({}, 300, seed=2)], ignore_index=True)
    ours, theirs = loaded.predict_proba(x), tiny_model.predict_proba(x)
    assert ours.shape == (360, 5) and list(ours.columns) == tiny_model.classes
    assert np.array_equal(ours.to_numpy(), theirs.to_numpy())
    at = _on_thresholds(loaded.estimator, x.to_numpy())
    assert np.array_equal(
        loaded.estimator.predict_proba(at), tiny_model.estimator.predict_proba(at)
    )
    assert (ours.idxmax(axis=1).iloc[:60] == pd.Series(_table(seed=1)[1])).mean() > 0.9


def test_tree_file__two_classes_and_categorical_splits(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _table()
    keep = y.isin(["restored", "unrestored"]).to_numpy()
    two = HistGradientBoostingClassifier(max_iter=10, min_samples_leaf=3, random_state=0)
    two.fit(x[keep].to_numpy(), y[keep].to_numpy(dtype=object))
    card = {
        "version": "t",
        "classes": [str(c) for c in two.classes_],
        "features": list(MODEL_FEATURES),
    }
    loaded = load_model(save_model(RecoveryModel(two, card), tmp_path / "two"))
    rows = _rows_around({}, 200, seed=4).to_numpy()
    np.testing.assert_allclose(
        loaded.estimator.predict_proba(rows), two.predict_proba(rows), rtol=1e-12
    )
    # A categorical split has no place in the tree file: such a model is kept in skops only.
    x["n_seasons"] = pd.factorize(y)[0]  # a category that tells the class
    column = list(MODEL_FEATURES).index("n_seasons")
    cat = HistGradientBoostingClassifier(
        max_iter=5, min_samples_leaf=3, categorical_features=[column], random_state=0
    )
    cat.fit(x.to_numpy(), y.to_numpy(dtype=object))
    card = {**card, "classes": [str(c) for c in cat.classes_]}
    folder = save_model(RecoveryModel(cat, card), tmp_path / "cat")
    assert export_trees(cat) is None
    assert not (folder / TREES_FILE).exists() and "trees_sha256" not in _card(folder)


def test_tree_file__tampered_or_pickled_refused(saved):
    path = saved / TREES_FILE
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(InputError, match="changed after training") as err:
        load_model(saved)
    assert err.value.file == str(path)
    # An object array would need pickle to load: refused even with the card's hash matching.
    np.savez(path.with_suffix(""), feature=np.array([Payload()], dtype=object))
    card = _card(saved)
    card["trees_sha256"] = model_module._sha256(path)
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError, match="not a readable tree file") as err:
        load_model(saved)
    assert err.value.file == str(path)


def test_older_model_without_tree_file_loads_from_skops(saved, tiny_model):
    loaded = load_model(_without_trees(saved))
    assert loaded.estimator.__class__.__name__ == "HistGradientBoostingClassifier"
    x, _ = _table(seed=5)
    assert np.array_equal(
        loaded.predict_proba(x).to_numpy(), tiny_model.predict_proba(x).to_numpy()
    )


def test_load_model__missing_file_named(tmp_path):
    with pytest.raises(InputError, match="missing") as err:
        load_model(tmp_path)
    assert err.value.file == str(tmp_path / CARD_FILE)


def test_recovery_model__config_chooses(saved):
    assert recovery_model(RecoveryConfig(model="rules")) is None
    assert recovery_model(RecoveryConfig(model=str(saved))).version == "test-1"


def test_train_model__grouped_cv_figures_and_card(monkeypatch):
    monkeypatch.setitem(model_module.ESTIMATOR_PARAMS, "max_iter", 5)
    monkeypatch.setitem(model_module.ESTIMATOR_PARAMS, "min_samples_leaf", 3)
    monkeypatch.setattr(model_module, "CV_FOLDS", 3)
    x, y = _table()
    groups = pd.Series([f"site{i // 2}" for i in range(len(y))])  # two looks per site
    model = train_model(x, y, groups, version="v")
    card = model.card
    assert card["classes"] == sorted(RECOVERY_CLASSES)
    assert card["features"] == list(MODEL_FEATURES)
    assert card["training_data"]["n_samples"] == 60
    assert card["training_data"]["n_sites"] == 30
    assert card["training_data"]["per_class"]["regressed"] == 12
    cv = card["cross_validation"]
    assert cv["grouped_by"] == "site"
    assert np.asarray(cv["confusion"]["matrix"]).sum() == 60
    assert cv["accuracy"] >= 0.9  # separable by construction
    assert {"scikit-learn", "skops", "numpy"} <= set(card["packages"])
    again = train_model(x, y, groups, version="v")
    assert (
        again.card["training_data"]["fingerprint_sha256"]
        == (card["training_data"]["fingerprint_sha256"])
    )


def test_classification_figures__hand_counted():
    truth = pd.Series(["restored", "restored", "unrestored", "regressed"])
    predicted = pd.Series(["restored", "unrestored", "unrestored", "restored"])
    f = classification_figures(truth, predicted)
    assert f["accuracy"] == 0.5
    assert f["per_class"]["restored"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert f["per_class"]["unrestored"] == {"precision": 0.5, "recall": 1.0, "support": 1}
    assert f["per_class"]["regressed"]["recall"] == 0.0
    assert f["per_class"]["disturbed"] == {"precision": None, "recall": None, "support": 0}


def test_predict_sites__classes_guard_and_meets_target(tiny_model):
    x, _ = _table(n_per_class=1, seed=3)
    x.index = pd.Index(list(RECOVERY_CLASSES), name="site_id")
    x["last_clear_date"] = pd.Timestamp("2023-12-20")
    x.loc["restored", ["latest_peak_ndvi", "vegetated_fraction", "seasonal_amplitude"]] = [
        0.8,
        0.9,
        0.5,
    ]
    # The regressed-looking site had no restoration: it cannot have regressed.
    x.loc["regressed", "restoration_started"] = 0.0
    sites = pd.DataFrame({"site_id": x.index, "target": "forest"})
    out = predict_sites(tiny_model, x, sites, cfg=RecoveryConfig())
    assert out.loc["restored", "recovery_class"] == "restored"
    assert out.loc["disturbed", "recovery_class"] == "disturbed"
    assert out.loc["unrestored", "recovery_class"] == "unrestored"
    assert out.loc["regressed", "recovery_class"] not in ("regressed", "revegetating")
    assert out.loc["regressed", "rule"] == "no_restoration_yet"
    assert bool(out.loc["restored", "meets_target"]) is True
    assert bool(out.loc["unrestored", "meets_target"]) is False
    assert out["probability"].between(0, 1).all()
    assert out.loc["restored", "assessed_until"] == "2023-12-20"


def test_predict_sites__regressed_needs_a_loss_and_disturbed_a_flagged_dig():
    # A model that learnt ``regressed`` as a level (ratio 0.7; its training's regressed
    # sites all lost their green, but it was not told how). Two sites at that level: one
    # lost its green (ratio_drop 0.3), one never had more (a level is no loss). A third
    # has the features of a dug site but no flag on it.
    from sklearn.ensemble import HistGradientBoostingClassifier

    train, labels = _table()
    train[["ratio_drop", "disturbed_fraction"]] = 0.0  # classes by level alone
    estimator = HistGradientBoostingClassifier(max_iter=15, min_samples_leaf=3, random_state=0)
    estimator.fit(train.to_numpy(), labels.to_numpy(dtype=object))
    card = {"version": "t", "classes": list(estimator.classes_), "features": list(MODEL_FEATURES)}
    level_model = RecoveryModel(estimator, card)
    x, _ = _table(n_per_class=1, seed=5)
    x.index = pd.Index(list(RECOVERY_CLASSES), name="site_id")
    x["last_clear_date"] = pd.Timestamp("2023-12-20")
    level = x.loc["regressed"].copy()
    level["ratio_drop"] = 0.0
    x.loc["level"] = level
    x.loc["level", ["recent_ndvi_change", "latest_peak_ndvi", "best_earlier_peak_ndvi"]] = [
        0.0,
        0.5,
        0.5,
    ]
    unflagged = x.loc["disturbed"].copy()
    unflagged["disturbed_fraction"] = 0.0
    x.loc["unflagged"] = unflagged
    dying = x.loc["restored"].copy()  # at a restored level, dying back this season
    dying[["recent_ndvi_change", "recent_gap_change"]] = -0.2
    x.loc["dying"] = dying
    proba = level_model.predict_proba(x)  # what the model alone says:
    assert proba.loc[["level", "unflagged"]].idxmax(axis=1).tolist() == ["regressed", "disturbed"]
    sites = pd.DataFrame({"site_id": x.index, "target": "forest"})
    out = predict_sites(level_model, x, sites, cfg=RecoveryConfig())
    assert out.loc["regressed", "recovery_class"] == "regressed"
    assert out.loc["level", "recovery_class"] != "regressed"
    assert out.loc["level", "rule"] == "no_loss_seen"
    assert out.loc["disturbed", "recovery_class"] == "disturbed"
    assert out.loc["unflagged", "recovery_class"] != "disturbed"
    assert out.loc["unflagged", "rule"] == "no_dig_flagged"
    assert out.loc["restored", "recovery_class"] == "restored"
    assert out.loc["dying", "recovery_class"] != "restored"
    assert out.loc["dying", "rule"] == "dying_now"
    assert out["probability"].between(0, 1).all()


def _restored_site(**changes: float) -> pd.Series:
    """Features of a forest site restored two seasons running, with ``changes``."""
    x, _ = _table(n_per_class=1, seed=5)
    feat = x.iloc[list(RECOVERY_CLASSES).index("restored")].copy()
    feat[["vegetated_fraction", "previous_vegetated_fraction", "ring_peak_change"]] = [
        0.9,
        0.95,
        0.0,
    ]
    feat[["recent_ndvi_change", "recent_gap_change"]] = [0.0, 0.0]
    feat["recent_bare_fraction"] = 0.0
    feat["vegetated_same_months"] = 0.9
    feat["previous_vegetated_same_months"] = 0.95
    for name, value in changes.items():
        feat[name] = value
    return feat


def test_cover_lost__cover_gone_not_paler_and_never_a_harvest():
    cfg = RecoveryConfig()
    assert not cover_lost(_restored_site(), "forest", cfg)
    # The core season's cover gone since the previous window (a die-back late in the
    # imagery, under a season peak reached before it), with the ring as green as before.
    gone = _restored_site(vegetated_fraction=0.0, vegetated_same_months=0.0)
    assert cover_lost(gone, "forest", cfg) and cover_lost(gone, "grassland", cfg)
    # A grassland half vegetated, its NDVI at the line, flips with a dry spell: no loss.
    at_line = _restored_site(
        previous_vegetated_same_months=0.5, vegetated_fraction=0.0, vegetated_same_months=0.0
    )
    assert not cover_lost(at_line, "grassland", cfg)
    # A window ending in June, its grass still greening, against a previous window
    # with no June look: nothing to weigh it against.
    greening = _restored_site(
        previous_vegetated_same_months=np.nan, vegetated_fraction=0.0, vegetated_same_months=0.0
    )
    assert not cover_lost(greening, "grassland", cfg)
    # The growing-season looks of the last months bare, where the core season before
    # was vegetated.
    assert cover_lost(_restored_site(recent_bare_fraction=0.9), "forest", cfg)
    assert not cover_lost(_restored_site(recent_bare_fraction=0.3), "forest", cfg)
    # A dry year pales the ring as well: no loss.
    assert not cover_lost(
        _restored_site(vegetated_fraction=0.0, vegetated_same_months=0.0, ring_peak_change=-0.1),
        "forest",
        cfg,
    )
    # A pit lake's NDVI says nothing of planting. Farmland is bare after every harvest:
    # its cover is lost where its core season's cover fell and the last months were bare
    # through, not on either alone.
    assert not cover_lost(gone, "landscape", cfg)
    assert not cover_lost(gone, "farmland", cfg)
    assert not cover_lost(_restored_site(recent_bare_fraction=1.0), "farmland", cfg)
    assert cover_lost(
        _restored_site(vegetated_fraction=0.0, vegetated_same_months=0.0, recent_bare_fraction=1.0),
        "farmland",
        cfg,
    )
    assert not cover_lost(
        _restored_site(vegetated_fraction=0.0, vegetated_same_months=0.0, recent_bare_fraction=0.6),
        "farmland",
        cfg,
    )
    # A crop's last months against last year's are two harvest dates, not a die-back.
    harvest = _restored_site(recent_ndvi_change=-0.4, recent_gap_change=-0.4)
    assert dying_now(harvest, "forest", cfg) and loss_seen(harvest, "forest", cfg)
    assert not dying_now(harvest, "farmland", cfg) and not loss_seen(harvest, "farmland", cfg)


def test_predict_sites__cover_gone_is_not_restored(tiny_model):
    x = pd.DataFrame(
        [_restored_site(), _restored_site(vegetated_fraction=0.0, vegetated_same_months=0.0)]
    )
    x.index = pd.Index(["kept", "gone"], name="site_id")
    x["last_clear_date"] = pd.Timestamp("2023-12-20")
    sites = pd.DataFrame({"site_id": x.index, "target": "forest"})
    assert tiny_model.predict_proba(x).idxmax(axis=1).tolist() == ["restored", "restored"]
    out = predict_sites(tiny_model, x, sites, cfg=RecoveryConfig())
    assert out["recovery_class"].tolist()[0] == "restored"
    assert out.loc["gone", "recovery_class"] != "restored"
    assert out.loc["gone", "rule"] == "dying_now"


def test_predict_sites__no_clear_look_claims_nothing(tiny_model):
    x, _ = _table(n_per_class=1, seed=4)
    x.index = pd.Index(list(RECOVERY_CLASSES), name="site_id")
    x["last_clear_date"] = pd.NaT
    x["n_clear_latest"] = 0.0
    sites = pd.DataFrame({"site_id": x.index, "target": "forest"})
    out = predict_sites(tiny_model, x, sites, cfg=RecoveryConfig())
    assert out.loc["restored", "recovery_class"] == "unrestored"
    assert out.loc["restored", "probability"] == 0.0
    assert out.loc["disturbed", "recovery_class"] == "disturbed"  # digging is still seen


def test_read_labels__bad_class_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "site_id,assessed_until,recovery_class\nS01,2023-10-01,restored\nS02,2023-10-01,green\n"
    )
    with pytest.raises(InputError, match="unknown class") as err:
        read_labels(path)
    assert err.value.record == "line 3"
    assert err.value.field == "recovery_class"


def test_read_labels__several_dates_per_site(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "site_id,assessed_until,recovery_class\n"
        "S01,2022-10-01,revegetating\nS01,2023-10-01,restored\n"
    )
    labels = read_labels(path)
    assert labels["assessed_until"].tolist() == ["2022-10-01", "2023-10-01"]
    path.write_text(path.read_text() + "S01,2023-10-01,regressed\n")
    with pytest.raises(InputError, match="twice"):
        read_labels(path)


@pytest.mark.skipif(not DEFAULT_MODEL_DIR.exists(), reason="no shipped model in this checkout")
def test_shipped_model__predicts_from_its_trees_without_scikit_learn():
    # A run loads the model once the pixels are done; scikit-learn's import and the
    # skops file's build took 2.4-2.7 s of a small county's 12 s run.
    code = (
        "import sys, json, numpy as np, pandas as pd\n"
        "from pipeline.recovery.predict import DEFAULT_MODEL_DIR\n"
        "from pipeline.recovery.model import load_model\n"
        "m = load_model(DEFAULT_MODEL_DIR)\n"
        "x = pd.DataFrame(json.loads(sys.stdin.read()), columns=m.card['features'])\n"
        "p = m.predict_proba(x)\n"
        "heavy = {k.split('.')[0] for k in sys.modules} & {'sklearn', 'skops', 'scipy'}\n"
        "print(json.dumps([sorted(heavy), p.to_numpy().tolist()]))\n"
    )
    model = load_model(DEFAULT_MODEL_DIR)
    x = _rows_around(model.card, 2000, 7)
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=x.iloc[:50].to_json(orient="values"),
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    imported, proba = json.loads(done.stdout)
    assert imported == []
    estimator = sio.load(DEFAULT_MODEL_DIR / MODEL_FILE, trusted=list(model_module.TRUSTED_TYPES))
    ours = model.estimator.predict_proba(x.to_numpy())
    assert np.array_equal(ours, estimator.predict_proba(x.to_numpy()))
    # Values exactly on a split's threshold go left, as scikit-learn sends them.
    at = _on_thresholds(model.estimator, x.to_numpy())
    assert np.array_equal(model.estimator.predict_proba(at), estimator.predict_proba(at))
    assert np.array_equal(np.asarray(proba), ours[:50])  # JSON keeps a float64 whole
    assert len(set(ours.argmax(axis=1))) >= 3  # rows that reach several classes


@pytest.mark.skipif(not DEFAULT_MODEL_DIR.exists(), reason="no shipped model in this checkout")
def test_shipped_model__loads_small_with_its_card():
    model = load_model(DEFAULT_MODEL_DIR)
    card = model.card
    assert (DEFAULT_MODEL_DIR / MODEL_FILE).stat().st_size < 5 * 2**20
    assert set(card["classes"]) == set(RECOVERY_CLASSES)
    assert card["cross_validation"]["grouped_by"] == "site"
    assert all(card["training_data"]["per_class"][c] > 0 for c in RECOVERY_CLASSES)
    assert model.version.startswith("recovery-hgb-")
    assert date.fromisoformat(card["created"][:10]) >= date(2026, 1, 1)


def test_predict_sites__a_restored_class_always_meets_its_target(tiny_model):
    # A pit lake the model calls restored while the config's lake test (a planted
    # margin of at least 5 %) fails: the report must not say "restored" and
    # "does not meet the target" about one site.
    x, _ = _table(n_per_class=1, seed=3)
    x.index = pd.Index(list(RECOVERY_CLASSES), name="site_id")
    x["last_clear_date"] = pd.Timestamp("2023-12-20")
    sites = pd.DataFrame({"site_id": x.index, "target": "landscape"})
    cfg = RecoveryConfig()
    out = predict_sites(tiny_model, x, sites, cfg=cfg)
    restored = out.index[out["recovery_class"] == "restored"]
    assert len(restored) == 1
    margins = {s: target_margin(x.loc[s], "landscape", cfg.targets["landscape"]) for s in x.index}
    assert margins[restored[0]] < 0  # the rule test alone says no
    assert bool(out.loc[restored[0], "meets_target"]) is True
    others = [s for s in x.index if s not in restored and margins[s] < 0]
    assert others and not out.loc[others, "meets_target"].any()
