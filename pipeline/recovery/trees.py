"""The recovery model's trees as plain arrays, predicted with numpy alone.

A run needs the model's class probabilities for a few hundred sites, once. Loading
the scikit-learn estimator for that costs more than the prediction by three orders
of magnitude on a county: importing scikit-learn and skops and building the estimator from its
skops file takes 2.4-3.0 s and 97 MB of RSS, as much as the whole series of a small
county (issue on whole-run speed). So ``save_model`` also writes ``model_trees.npz``:
every tree's split feature, threshold, NaN direction, children and leaf value, the
baseline score, and the number of trees per boosting round. ``TreeEnsemble`` walks
them with numpy and adds the leaf values and the softmax in scikit-learn's order, so
its probabilities equal ``HistGradientBoostingClassifier.predict_proba``'s to the
last bit (``tests/unit/test_model.py`` checks it on the tiny and the shipped model).

The file is an ``.npz`` read with ``allow_pickle=False``: plain numbers, nothing in it
can run. Its sha256 is in the card beside ``model.skops``'s. Categorical splits are
not written: an estimator with them gets no tree file and is loaded from skops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.outputs import write_atomic

TREES_FILE = "model_trees.npz"

_NODE_FIELDS = ("feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


def export_trees(estimator: Any) -> dict[str, np.ndarray] | None:
    """The arrays of a fitted ``HistGradientBoostingClassifier``, or None (categorical splits).

    Nodes of all trees sit in one table; a tree's children are indices into it.
    Trees are listed round by round, class by class within a round: the order in
    which scikit-learn adds their values.
    """
    trees = [t for round_ in estimator._predictors for t in round_]
    if any(t.nodes["is_categorical"].any() for t in trees):
        return None
    starts = np.cumsum([0] + [len(t.nodes) for t in trees[:-1]]).astype(np.int64)
    nodes = np.concatenate([t.nodes for t in trees])
    offset = np.repeat(starts, [len(t.nodes) for t in trees])
    is_leaf = nodes["is_leaf"].astype(bool)
    # A leaf points at itself, so a walk that reached it stays there.
    here = np.arange(len(nodes), dtype=np.int64)
    left = np.where(is_leaf, here, nodes["left"].astype(np.int64) + offset)
    right = np.where(is_leaf, here, nodes["right"].astype(np.int64) + offset)
    return {
        "feature": nodes["feature_idx"].astype(np.int64),
        "threshold": nodes["num_threshold"].astype(np.float64),
        "missing_left": nodes["missing_go_to_left"].astype(bool),
        "left": left,
        "right": right,
        "value": nodes["value"].astype(np.float64),
        "is_leaf": is_leaf,
        "roots": starts,
        "baseline": np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1),
        "n_features": np.int64(estimator.n_features_in_),
    }


def write_trees(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write ``arrays`` to ``path`` whole (``outputs.write_atomic``)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file, so numpy adds no ``.npz`` to the name
            np.savez_compressed(f, **arrays)

    write_atomic(Path(path), write)


class TreeEnsemble:
    """A boosted tree classifier read from ``model_trees.npz``: ``predict_proba`` and
    the two attributes a run checks (``classes_``, ``n_features_in_``)."""

    def __init__(self, arrays: dict[str, np.ndarray], classes: list[str]) -> None:
        self.classes_ = np.asarray(classes, dtype=object)
        self.n_features_in_ = int(arrays["n_features"])
        self._a = arrays
        self._per_round = len(arrays["baseline"])
        n_nodes, n_trees = len(arrays["feature"]), len(arrays["roots"])
        per_round = 1 if len(classes) == 2 else len(classes)
        if n_trees % self._per_round or self._per_round != per_round:
            raise ValueError(f"{n_trees} trees do not make rounds of {len(classes)} classes")
        for name in ("left", "right", "roots"):
            if len(arrays[name]) and not 0 <= arrays[name].min() <= arrays[name].max() < n_nodes:
                raise ValueError(f"'{name}' points outside the {n_nodes} nodes")
        inner = ~arrays["is_leaf"]
        if inner.any() and arrays["feature"][inner].max() >= self.n_features_in_:
            raise ValueError("a split names a feature the model does not have")

    @classmethod
    def load(cls, path: Path, classes: list[str]) -> TreeEnsemble:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls(arrays, classes)

    def _leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf each row of ``x`` reaches in each tree: (trees, rows) node indices."""
        a = self._a
        node = np.repeat(a["roots"][:, None], len(x), axis=1)
        rows = np.arange(len(x))[None, :]
        while not a["is_leaf"][node].all():
            value = x[rows, a["feature"][node]]
            # As scikit-learn's predictor: NaN follows the node's missing direction,
            # anything else goes left when at most the threshold.
            with np.errstate(invalid="ignore"):
                below = value <= a["threshold"][node]
            go_left = np.where(np.isnan(value), a["missing_left"][node], below)
            node = np.where(go_left, a["left"][node], a["right"][node])
        return node

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities per row, columns in ``classes_`` order."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got shape {x.shape}")
        values = self._a["value"][self._leaves(x)]
        raw = np.zeros((len(x), self._per_round), dtype=np.float64, order="F")
        raw += self._a["baseline"]
        for tree, leaf_values in enumerate(values):  # scikit-learn's order of additions
            raw[:, tree % self._per_round] += leaf_values
        if self._per_round == 1:
            positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.column_stack([1 - positive, positive])
        raw -= raw.max(axis=1).reshape(-1, 1)
        np.exp(raw, out=raw)
        raw /= raw.sum(axis=1).reshape(-1, 1)
        return raw
