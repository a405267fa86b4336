"""The trained recovery model: fit, cross-validate, save, load (safely) and predict.

A model lives in a folder of three files:

``model.skops``
    The fitted scikit-learn estimator, written with ``skops.io``. Unlike pickle,
    loading a skops file does not run code from the file: every type it names must
    be on a list of trusted types, and ``load_model`` trusts only ``TRUSTED_TYPES``
    (the classes a histogram gradient-boosting classifier is made of).
``model_trees.npz``
    The same trees as plain arrays (``trees.py``): what a run predicts from, without
    importing scikit-learn. A folder without it (an older model) is loaded from skops.
``model_card.json``
    What the model is: version, classes, the ordered feature names and their training
    ranges, the training data's fingerprint and size per class, cross-validated
    per-class precision and recall and the confusion matrix (folds grouped by site,
    so looks at one site on different dates never sit on both sides of a split), the
    date, the package versions, and the sha256 of the two model files.

``load_model`` refuses, with an ``InputError`` naming the file (exit status 2), a
folder without its files, a card whose features are not this code's
``MODEL_FEATURES`` (same names, same order), a model file whose sha256 is not the
card's (changed after training), and a skops file that needs untrusted types. All but
the last are ``check_model_files``' checks, made before a run touches its workspace.

The estimator is ``HistGradientBoostingClassifier``: it takes the features' NaN
(no peak without enough clear looks, no ring) as information rather than needing
them imputed, is small on disk, and its ``predict_proba`` gives the class
probabilities. ``class_weight="balanced"`` because unrestored sites outnumber the
rest several times in any county. Fitting and predicting use one OpenMP thread: on a
few hundred rows more threads only wait for each other (20 times slower on a busy
two-core machine), and the pipeline's own workers already use the cores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline.errors import InputError
from pipeline.outputs import write_atomic
from pipeline.recovery.ranges import feature_ranges
from pipeline.recovery.relative import MODEL_FEATURES
from pipeline.recovery.trees import TREES_FILE, TreeEnsemble, export_trees, write_trees
from pipeline.schema import RECOVERY_CLASSES

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
CARD_FILE = "model_card.json"
CARD_FORMAT = 1

# Everything a fitted HistGradientBoostingClassifier is made of; ``load_model`` trusts
# these and nothing else.
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "builtins.float",
    "builtins.int",
)

# Fitting settings, fixed so that a retraining is reproducible. Shallow trees and a
# slow learning rate: a few hundred labelled sites, not millions.
ESTIMATOR_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 8,
    "l2_regularization": 1.0,
    "class_weight": "balanced",
    "random_state": 0,
}
CV_FOLDS = 5


@dataclass(frozen=True)
class RecoveryModel:
    """A fitted classifier and its card."""

    estimator: Any
    """The scikit-learn estimator; ``predict_proba`` columns follow ``classes``."""
    card: dict[str, Any]
    """The model card (see the module docstring)."""

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities per row of ``features`` (columns: ``classes``)."""
        matrix = features.loc[:, list(MODEL_FEATURES)].to_numpy(dtype="float64")
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = self.estimator.predict_proba(matrix)
        known = [str(c) for c in self.estimator.classes_]
        out = pd.DataFrame(proba, index=features.index, columns=known)
        return out.reindex(columns=self.classes, fill_value=0.0)


def fingerprint(table: pd.DataFrame) -> str:
    """sha256 of a training table's values, in a stable order (the card's data fingerprint)."""
    ordered = table.sort_index(axis=1).sort_values(list(table.columns.sort_values()))
    digest = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _estimator() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**ESTIMATOR_PARAMS)


def cross_validate(
    features: pd.DataFrame, labels: pd.Series, groups: pd.Series, *, folds: int | None = None
) -> dict[str, Any]:
    """Out-of-fold predictions with folds grouped by site: per-class figures and confusion."""
    from sklearn.model_selection import StratifiedGroupKFold

    x = features.loc[:, list(MODEL_FEATURES)].to_numpy(dtype="float64")
    y = labels.to_numpy(dtype=object)
    n_groups = int(pd.Series(groups).nunique())
    n_splits = min(folds or CV_FOLDS, n_groups)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=0)
    predicted = np.empty(len(y), dtype=object)
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in splitter.split(x, y, groups=np.asarray(groups)):
            estimator = _estimator().fit(x[train], y[train])
            predicted[test] = estimator.predict(x[test])
    return classification_figures(pd.Series(y), pd.Series(predicted))


def classification_figures(truth: pd.Series, predicted: pd.Series) -> dict[str, Any]:
    """Accuracy, per-class precision / recall / support and confusion (rows: truth)."""
    classes = list(RECOVERY_CLASSES)
    truth, predicted = truth.reset_index(drop=True), predicted.reset_index(drop=True)
    confusion = pd.crosstab(truth, predicted).reindex(index=classes, columns=classes, fill_value=0)
    per_class = {}
    for c in classes:
        hit = int(confusion.loc[c, c])
        support = int(confusion.loc[c].sum())
        called = int(confusion[c].sum())
        per_class[c] = {
            "precision": round(hit / called, 3) if called else None,
            "recall": round(hit / support, 3) if support else None,
            "support": support,
        }
    return {
        "accuracy": round(float((truth == predicted).mean()), 3) if len(truth) else None,
        "per_class": per_class,
        "confusion": {"rows_truth_columns_predicted": classes, "matrix": confusion.values.tolist()},
    }


def train_model(
    features: pd.DataFrame,
    labels: pd.Series,
    groups: pd.Series,
    *,
    version: str,
    training_data: dict[str, Any] | None = None,
) -> RecoveryModel:
    """Cross-validate (grouped by ``groups``, one per site), then fit on everything.

    ``features`` holds ``MODEL_FEATURES``; ``labels`` the recovery classes; both in
    the same row order. ``training_data`` is recorded in the card as it is (where the
    labels came from).
    """
    unknown = sorted(set(labels) - set(RECOVERY_CLASSES))
    if unknown:
        raise InputError(f"unknown recovery_class {unknown[0]!r}", field="recovery_class")
    if labels.nunique() < 2:
        raise InputError("labels need at least two recovery classes", field="recovery_class")
    table = features.loc[:, list(MODEL_FEATURES)].astype("float64")
    logger.info("cross-validating on %d labelled looks at %d sites", len(table), groups.nunique())
    cv = cross_validate(table, labels, groups)
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator = _estimator().fit(table.to_numpy(), labels.to_numpy(dtype=object))
    fingerprinted = table.assign(recovery_class=labels.to_numpy(), group=np.asarray(groups))
    card = {
        "card_format": CARD_FORMAT,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "estimator": type(estimator).__name__,
        "estimator_params": ESTIMATOR_PARAMS,
        "classes": [str(c) for c in estimator.classes_],
        "features": list(MODEL_FEATURES),
        "training_data": {
            **(training_data or {}),
            "fingerprint_sha256": fingerprint(fingerprinted.reset_index(drop=True)),
            "n_samples": len(table),
            "n_sites": int(groups.nunique()),
            "per_class": {c: int((labels == c).sum()) for c in RECOVERY_CLASSES},
        },
        "cross_validation": {"folds": CV_FOLDS, "grouped_by": "site", **cv},
        "feature_ranges": feature_ranges(table),
        "packages": _package_versions(),
    }
    return RecoveryModel(estimator, card)


def save_model(model: RecoveryModel, folder: Path) -> Path:
    """Write ``model.skops`` and ``model_card.json`` (with the file's sha256) into ``folder``."""
    import skops.io as sio

    folder = Path(folder)
    model_path = folder / MODEL_FILE
    write_atomic(
        model_path,
        lambda tmp: sio.dump(
            model.estimator, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9
        ),
    )
    card = {**model.card, "model_file": MODEL_FILE, "model_sha256": _sha256(model_path)}
    card.pop("trees_file", None)
    card.pop("trees_sha256", None)
    arrays = export_trees(model.estimator)
    if arrays is not None:  # the run predicts from these, without scikit-learn (trees.py)
        write_trees(arrays, folder / TREES_FILE)
        card.update(trees_file=TREES_FILE, trees_sha256=_sha256(folder / TREES_FILE))
    text = json.dumps(card, indent=1, ensure_ascii=False) + "\n"
    write_atomic(folder / CARD_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    logger.info("model %s written to %s", model.version, folder)
    return folder


def check_model_files(folder: Path) -> dict[str, Any]:
    """The card of the model in ``folder``, after every check that needs no scikit-learn:
    both files present, the card's features and classes, the file's sha256."""
    folder = Path(folder)
    card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
    for path in (card_path, model_path):
        if not path.is_file():
            raise InputError("recovery model file is missing", file=path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"model card is not readable JSON: {exc}", file=card_path) from None
    if not isinstance(card, dict):
        raise InputError("model card is not a JSON object", file=card_path)
    features = card.get("features")
    if features != list(MODEL_FEATURES):
        missing = [f for f in MODEL_FEATURES if f not in (features or [])]
        extra = [f for f in (features or []) if f not in MODEL_FEATURES]
        raise InputError(
            "feature schema does not match this version of MineWatch "
            f"(missing {missing[:3]}, unexpected {extra[:3]}"
            f"{', or another order' if not missing and not extra else ''}); retrain the model",
            file=card_path,
            field="features",
        )
    classes = card.get("classes") or []
    if not set(classes) <= set(RECOVERY_CLASSES) or not classes:
        raise InputError(f"unknown classes {classes}", file=card_path, field="classes")
    checked = [(model_path, "model_sha256")]
    if card.get("trees_sha256"):
        checked.append((folder / TREES_FILE, "trees_sha256"))
    for path, key in checked:
        if not path.is_file():
            raise InputError("recovery model file is missing", file=path)
        expected, actual = card.get(key), _sha256(path)
        if actual != expected:
            raise InputError(
                f"sha256 {actual[:12]}... is not the one its card records "
                f"({str(expected)[:12]}...): the file was changed after training",
                file=path,
            )
    return card


def load_model(folder: Path) -> RecoveryModel:
    """Read a model folder, refusing anything but the model its card describes (see above)."""
    card = check_model_files(folder)
    model_path, classes = Path(folder) / MODEL_FILE, card["classes"]
    if card.get("trees_sha256"):  # the same trees as plain arrays: no scikit-learn needed
        try:
            return RecoveryModel(TreeEnsemble.load(Path(folder) / TREES_FILE, classes), card)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            path = Path(folder) / TREES_FILE
            raise InputError(f"not a readable tree file ({exc})", file=path) from None
    import sklearn
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    trained_with = str((card.get("packages") or {}).get("scikit-learn", ""))
    if trained_with.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        logger.warning(
            "model %s was trained with scikit-learn %s, this is %s; retrain it if it fails",
            model_path,
            trained_with or "(unknown)",
            sklearn.__version__,
        )
    # skops checks every type in the file against the trusted list before it builds any
    # object (one pass over the file: asking for the untrusted types first read it twice).
    try:
        estimator = sio.load(model_path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        listed = sio.get_untrusted_types(file=model_path)  # only to name them
        untrusted = [t for t in listed if t not in TRUSTED_TYPES]
        raise InputError(
            f"refusing to load: the file asks for untrusted types {untrusted[:3]}",
            file=model_path,
        ) from None
    except Exception as exc:  # a corrupt archive: skops raises whatever zipfile does
        raise InputError(
            f"not a loadable skops file ({exc}); retrain the model with this scikit-learn",
            file=model_path,
        ) from None
    if [str(c) for c in getattr(estimator, "classes_", [])] != classes:
        raise InputError("estimator classes differ from the card's", file=model_path)
    if getattr(estimator, "n_features_in_", None) != len(MODEL_FEATURES):
        raise InputError("estimator expects another number of features", file=model_path)
    return RecoveryModel(estimator, card)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _package_versions() -> dict[str, str]:
    import sklearn
    import skops

    from pipeline import __version__

    return {
        "python": platform.python_version(),
        "minewatch": __version__,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
