"""The order the local threads compute a window's units in: each date is folded as it is
read, so a window's fold bands are not all held at once (issue on whole-run speed)."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import partial

from dask.callbacks import Callback
from shapely.geometry import box

from pipeline import checkpoint, schema
from pipeline.config import load_config
from pipeline.indices import INDEX_BANDS, add_indices
from pipeline.logs import Progress
from pipeline.masking import mask_clouds
from pipeline.scheduler import compute_units
from pipeline.site_pixels import site_pixel_index
from pipeline.sources.grid import analysis_grid
from pipeline.sources.local import load_cube, read_catalog
from pipeline.state import StateStore
from pipeline.zonal import site_timeseries_tasks
from tests.conftest import uniform_bands, write_tiny_catalog

N_DATES = 40


def test_compute_units__each_date_is_folded_as_it_is_read(tmp_path):
    dates = [date(2022, 4, 1) + timedelta(days=5 * t) for t in range(N_DATES)]
    values = uniform_bands(N_DATES, 24, 32)
    values["red"][N_DATES // 2 :, 4:12, 4:12] = 0.3  # a dig half way
    catalog = write_tiny_catalog(tmp_path / "cat", values, dates)
    cfg = load_config(None, {"provider.catalog": str(catalog)})
    scenes = read_catalog(str(catalog))
    grid = analysis_grid(scenes)
    cube = load_cube(scenes, grid, chunk_size=16, bands=(*INDEX_BANDS, schema.SCL), halo=1)
    ds = add_indices(mask_clouds(cube, cfg.masking))
    pixels = site_pixel_index(["A"], [box(*grid.bounds)], grid, chunk_size=16)
    tasks = list(site_timeseries_tasks(ds, pixels, cfg.surface))
    store = StateStore(tmp_path / "out")
    plan = checkpoint.plan_units(store, cfg, scenes, grid, ds, pixels, tasks, window=32)
    assert plan.until == 32

    # Each date's rows are its unit only once the date's fold steps (one per tile) ran.
    finished: list[tuple] = []

    class Finished(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(key, tuple) and str(key[0]).startswith(("read-tile", "fold-step")):
                finished.append(key)

    with Finished():
        compute_units(
            plan.units,
            partial(checkpoint.save, store, plan),
            client=None,
            workers=2,
            progress=Progress("compute", len(plan.units), logging.getLogger(__name__)),
        )
    read_at: dict[int, int] = {}
    folded_at: dict[int, int] = {}
    for pos, key in enumerate(finished):
        if str(key[0]).startswith("read-tile"):
            read_at.setdefault(key[1], pos)
        else:
            folded_at[key[-1]] = pos  # the last of its tiles' steps
    assert sorted(folded_at) == sorted(read_at) == list(range(32))
    ahead = [
        sum(pos < folded for pos in read_at.values()) - (t + 1) for t, folded in folded_at.items()
    ]
    # Unpaced, the threads read nearly the whole window before the first fold step (28
    # dates ahead on the first).
    assert max(ahead) <= 6, ahead
    assert len(plan.rows) == 32 and all(p.is_file() for p in plan.rows.values())
    assert all(n_done == 32 for n_done, _ in plan.folds.values())
