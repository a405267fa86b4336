"""Scene families: the kinds of generated scenario, by name, and the function that writes one.

A family is a way of drawing a world (its cast, landscape and weather); each writes the
same files (``ScenarioPaths``) so the demo, the evaluation and the training scripts can
take any of them: ``standard`` (the demo county and its seeded variants), ``loess``
(a county of loess uplands and red-soil hills with other spectra, phenology and clouds,
and the hard cases; see ``loess``; evaluated, never trained on) and ``varied``
(standard's county with soils, canopies and phenology drawn per seed; the recovery
model's training adds it, see ``varied``). A new family is a module beside ``standard.py`` and
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.scenes import loess, varied
from pipeline.scenes.standard import generate_scenario
from pipeline.scenes.writing import ScenarioPaths

GenerateScenario = Callable[..., ScenarioPaths]
"""``generate(out_dir, *, seed=..., ...) -> ScenarioPaths``: writes one scenario."""

FAMILIES: dict[str, GenerateScenario] = {
    "standard": generate_scenario,
    loess.FAMILY: loess.generate_scenario,
    varied.FAMILY: varied.generate_scenario,
}
DEFAULT_FAMILY = "standard"


def scene_family(name: str) -> GenerateScenario:
    """The generate function of family ``name``; ``ValueError`` naming the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown scene family {name!r}; known: {sorted(FAMILIES)}") from None


def generate_family(name: str, out_dir: Path, *, seed: int, **options: object) -> ScenarioPaths:
    """Write a scenario of family ``name`` under ``out_dir`` (``options`` go to its function)."""
    return scene_family(name)(out_dir, seed=seed, **options)
