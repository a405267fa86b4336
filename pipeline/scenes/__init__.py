"""Generated scenes: seeded synthetic Sentinel-2 scenarios of a mining county, with truth.

The demo, the evaluation and the recovery model's training draw on them; the production
run imports nothing from here.
"""

from pipeline.scenes.layout import (
    BASELINE_04,
    DEMO_SEED,
    LANDCOVER_CODES,
    ScenarioPaths,
    ensure_demo_data,
    generate_scenario,
)

__all__ = [
    "BASELINE_04",
    "DEMO_SEED",
    "LANDCOVER_CODES",
    "ScenarioPaths",
    "ensure_demo_data",
    "generate_scenario",
]
