"""The generated scenario and the run over it stay byte-identical: golden digests.

``tests/data/demo_outputs.json`` holds sha256 digests of the shared scenario's files
(``conftest.scenario``: every file the generator writes, the items' COGs and JSON
as one digest) and of the shared run's
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

import pandas as pd
import pytest

from pipeline import schema
from pipeline.scenes import ScenarioPaths

GOLDEN = Path(__file__).parents[1] / "data" / "demo_outputs.json"
WRITE = os.environ.get("MINEWATCH_WRITE_GOLDEN") == "1"


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
        f"{path.relative_to(items).as_posix()} {_sha256(path.read_bytes())}\n"
        for path in sorted(items.rglob("*"))
        if path.is_file()
    )
    out["catalog/items/"] = _sha256(listing.encode())
    return out


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


def _check(key: str, digests: dict[str, str]) -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if WRITE:
        golden[key] = digests
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {key} digests to {GOLDEN}")
    assert key in golden, f"no {key} digests in {GOLDEN}; see this module's docstring"
    changed = sorted(
        name
        for name in set(golden[key]) | set(digests)
        if golden[key].get(name) != digests.get(name)
    )
    assert not changed, f"{key}: not as in {GOLDEN.name}: {changed[:10]}"


def test_scenario__files_are_byte_identical_to_the_golden_digests(scenario: ScenarioPaths):
    _check("scenario", scenario_digests(scenario.root))


def test_run__contract_outputs_are_identical_to_the_golden_digests(scenario_run: Path):
    _check("run", run_digests(scenario_run))
