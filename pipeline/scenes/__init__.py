"""Generated scenes: seeded synthetic Sentinel-2 scenarios of a mining county, with truth.

The demo (``minewatch demo``), the evaluation (``scripts/evaluate.py``) and the recovery
model's training (``scripts/train_model.py``) run on them; the production run imports
nothing from here (``tests/unit/test_layout.py`` checks).

The modules follow how a scenario is made: ``grid`` (the grid, random shapes and
fields), ``cast`` (what each site is and does), ``layout`` (landscape, zones, sites,
permits), ``digs`` (new excavation and its truth), ``hard_cases`` (the digs and sites a
detector or model finds hard), ``surface`` (a family's ``Physics``: spectra, phenology,
soils; climate), ``world`` (all of it drawn into one world and its truth),
``atmosphere`` (a family's ``CloudModel``: clouds, haze, shadows, SCL errors),
``writing`` (COGs, STAC, vectors, truth files), the families ``standard`` (the demo
county: ``generate_scenario``) and ``loess`` (loess uplands and red-soil hills, other
physics), and ``families`` (scene families by name).
"""

from pipeline.scenes.families import FAMILIES, generate_family, scene_family
from pipeline.scenes.grid import EPSG, LANDCOVER_CODES, ORIGIN, PIXEL
from pipeline.scenes.standard import (
    DEMO_SEED,
    GENERATOR_VERSION,
    MARKER,
    ensure_demo_data,
    generate_scenario,
)
from pipeline.scenes.writing import BASELINE_04, ScenarioPaths

__all__ = [
    "BASELINE_04",
    "DEMO_SEED",
    "EPSG",
    "FAMILIES",
    "GENERATOR_VERSION",
    "LANDCOVER_CODES",
    "MARKER",
    "ORIGIN",
    "PIXEL",
    "ScenarioPaths",
    "ensure_demo_data",
    "generate_family",
    "generate_scenario",
    "scene_family",
]
