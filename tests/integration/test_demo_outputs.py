"""The generated scenario and the run over it stay byte-identical: golden digests.

``tests/data/demo_outputs.json`` holds sha256 digests of the shared scenario's files
(``conftest.scenario``: every file the generator writes; the items' JSON and the COGs'
structure as one digest, and each COG's sum of pixel values, which may differ by a
few units: NumPy's SIMD kernels round a transcendental function's last bit
differently on CPUs with and without AVX-512, which moves a pixel in ten thousand by
one DN) and of the shared run's
outputs (``conftest.scenario_run``), normalised so that timestamps and run ids do not
count: ``timeseries.parquet`` as sorted CSV text, ``flags.geojson`` as each feature's
properties and geometry, ``site_status.csv`` and ``progress.csv`` as written. A change
that moves or reorganises code must leave them as they are; the tests reuse the
session's scenario and run, so they add no pipeline run of their own.

A change that means to alter the generator or the outputs regenerates the file on
purpose and says so in its commit::

    MINEWATCH_WRITE_GOLDEN=1 .venv/bin/python -m pytest -q tests/integration/test_demo_outputs.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from pipeline import schema
from pipeline.scenes import ScenarioPaths

GOLDEN = Path(__file__).parents[1] / "data" / "demo_outputs.json"
WRITE = os.environ.get("MINEWATCH_WRITE_GOLDEN") == "1"
PIXEL_SUM_SLACK = 8  # DN a COG's pixel sum may move by across CPUs


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scenario_digests(root: Path) -> dict[str, str]:
    """The files the generator wrote under ``root``: one digest for each file at the top
    and for ``catalog.json``, one for all the items (their JSON and COGs, with their paths).
    """
    items = root / "catalog" / "items"
    out = {
        path.relative_to(root).as_posix(): _sha256(path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and items not in path.parents
    }
    listing = "".join(
        f"{path.relative_to(items).as_posix()} {_item_file_digest(path)}\n"
        for path in sorted(items.rglob("*"))
        if path.is_file()
    )
    out["catalog/items/"] = _sha256(listing.encode())
    return out


def _item_file_digest(path: Path) -> str:
    """A JSON file's bytes; a COG's structure (profile, overviews, tags), not its pixels."""
    if path.suffix != ".tif":
        return _sha256(path.read_bytes())
    with rasterio.open(path) as src:
        structure = {
            "profile": {k: str(v) for k, v in sorted(src.profile.items())},
            "overviews": src.overviews(1),
            "tags": src.tags(),
            "band_tags": [src.tags(i) for i in src.indexes],
            "descriptions": src.descriptions,
        }
    return _sha256(json.dumps(structure, sort_keys=True, default=str).encode())


def pixel_sums(root: Path) -> dict[str, int]:
    """Each COG's sum of pixel values (full resolution), by its path under the items."""
    items = root / "catalog" / "items"
    sums = {}
    for path in sorted(items.rglob("*.tif")):
        with rasterio.open(path) as src:
            sums[path.relative_to(items).as_posix()] = int(src.read().astype(np.int64).sum())
    return sums


def run_digests(out: Path) -> dict[str, str]:
    """The run's contract tables, normalised so that timestamps and run ids do not count."""
    series = pd.read_parquet(out / schema.TIMESERIES_FILE)
    series = series.sort_values(["site_id", "date"], kind="stable").reset_index(drop=True)
    flags = json.loads((out / schema.FLAGS_FILE).read_text(encoding="utf-8"))["features"]
    features = sorted(
        (
            json.dumps(
                {"properties": f["properties"], "geometry": f["geometry"]},
                sort_keys=True,
                ensure_ascii=False,
            )
            for f in flags
        ),
    )
    return {
        schema.TIMESERIES_FILE: _sha256(series.to_csv(index=False).encode()),
        schema.FLAGS_FILE: _sha256("\n".join(features).encode()),
        schema.SITE_STATUS_FILE: _sha256((out / schema.SITE_STATUS_FILE).read_bytes()),
        schema.PROGRESS_FILE: _sha256((out / schema.PROGRESS_FILE).read_bytes()),
    }


def _golden(key: str, value: dict) -> dict:
    """The golden ``key``; with ``MINEWATCH_WRITE_GOLDEN=1``, ``value`` is written there
    instead and the test skips."""
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if WRITE:
        golden[key] = value
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {key} to {GOLDEN}")
    assert key in golden, f"no {key} in {GOLDEN}; see this module's docstring"
    return golden[key]


def _check(key: str, digests: dict[str, str]) -> None:
    golden = _golden(key, digests)
    changed = sorted(
        name for name in set(golden) | set(digests) if golden.get(name) != digests.get(name)
    )
    assert not changed, f"{key}: not as in {GOLDEN.name}: {changed[:10]}"


def test_scenario__files_are_byte_identical_to_the_golden_digests(scenario: ScenarioPaths):
    _check("scenario", scenario_digests(scenario.root))


def test_scenario__pixels_are_the_golden_ones_up_to_last_bit_rounding(scenario: ScenarioPaths):
    sums = pixel_sums(scenario.root)
    expected = _golden("scenario_pixels", sums)
    assert sorted(sums) == sorted(expected)
    off = {name: sums[name] - expected[name] for name in sums if sums[name] != expected[name]}
    # A few pixels of a few files by one DN (at most PIXEL_SUM_SLACK per file).
    assert all(abs(d) <= PIXEL_SUM_SLACK for d in off.values()), off
    assert len(off) <= max(3, len(sums) // 100), off


def test_run__contract_outputs_are_identical_to_the_golden_digests(scenario_run: Path):
    _check("run", run_digests(scenario_run))
