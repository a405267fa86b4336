"""``minewatch train``: run the pipeline over labelled sites, then fit and save a recovery model.

A peer of ``run.py`` at the orchestration level: it runs the pipeline (with the rule set,
so no model is needed to train one) or reads an earlier run's workspace, turns the labels
into features (``recovery.training``), and fits and writes the model
(``recovery.model``). The stages below it never call back up here or into ``run.py``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.recovery.model import RecoveryModel, save_model
from pipeline.recovery.training import fit_labelled, labelled_features, read_labels
from pipeline.run import run_pipeline

logger = logging.getLogger(__name__)


def train_from_labels(
    cfg: RunConfig,
    labels_path: str | Path,
    out: Path,
    *,
    workspace: Path | None = None,
    version: str | None = None,
) -> RecoveryModel:
    """``minewatch train``: run the pipeline (or read ``workspace``), fit, write the model.

    Without ``workspace`` the pipeline runs with the rule set into a temporary folder
    on ``cfg``'s catalog and sites; with it, that run's outputs are read (they must
    come from the same catalog and sites). The model and its card go to ``out``.
    """
    labels = read_labels(labels_path)
    if cfg.inputs.sites is None:
        raise InputError(
            "no sites file given: pass --sites or set it in the config", field="--sites"
        )
    with tempfile.TemporaryDirectory(prefix="minewatch-train-") as tmp:
        if workspace is None:
            workspace = Path(tmp) / "run"
            logger.info("training: running the pipeline with the rule set into %s", workspace)
            rules = cfg.model_copy(
                update={"recovery": cfg.recovery.model_copy(update={"model": "rules"})}
            )
            run_pipeline(rules, workspace)
        table = labelled_features(workspace, cfg.inputs.sites, labels, cfg=cfg.recovery)
    model = fit_labelled(
        table,
        version=version,
        training_data={
            "source": "minewatch train",
            "labels": str(Path(labels_path).resolve()),
            "catalog": cfg.provider.catalog,
            "sites": cfg.inputs.sites,
        },
    )
    save_model(model, out)
    return model
