"""Shared pieces of the fetch tests: a scenario served by the fake services, configs, checks."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import yaml

from pipeline.scenes import ScenarioPaths
from pipeline.sources.grid import analysis_grid
from pipeline.sources.local import load_cube, read_catalog

CLIENT_ID = "mw-test-client-7f3a"
CLIENT_SECRET = "s3cret-Zq9-never-to-be-seen"
START, END = date(2021, 12, 1), date(2022, 3, 31)


def write_config(
    path: Path,
    *,
    kind: str,
    url: str,
    archive: Path,
    sites: Path,
    tile_px: int = 96,
    attempts: int = 3,
) -> Path:
    cfg = {
        "provider": {
            "kind": kind,
            "archive": str(archive),
            "max_cloud_cover": 100,
            "retry": {"attempts": attempts, "backoff_s": 0.05, "timeout_s": 20},
            "sentinelhub": {
                "base_url": url,
                "token_url": f"{url}/oauth/token",
                "max_tile_px": tile_px,
                "page_size": 4,
            },
            "stac_api": {"url": f"{url}/stac", "page_size": 4, "max_tile_px": tile_px},
        },
        "inputs": {"sites": str(sites)},
        "period": {"start": START.isoformat(), "end": END.isoformat()},
        "report": {"language": "en"},
        "compute": {"workers": 2},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def assert_archive_matches_source(archive: Path, scenario: ScenarioPaths) -> int:
    """Every archived pixel equals the scenario's (reflectance and SCL); returns the count."""
    fetched = read_catalog(archive / "catalog.json")
    source = read_catalog(scenario.catalog, start=np.datetime64(START), end=np.datetime64(END))
    grid = analysis_grid(fetched)
    a = load_cube(fetched, grid, chunk_size=512).compute()
    b = load_cube(source, grid, chunk_size=512).compute()
    a_days = a["time"].values.astype("datetime64[D]")
    b_days = b["time"].values.astype("datetime64[D]")
    assert set(a_days) <= set(b_days)
    b = b.isel(time=[list(b_days).index(d) for d in a_days])
    n = 0
    for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
        x, y = a[band].values, b[band].values
        both = ~np.isnan(x) & ~np.isnan(y)
        assert both.sum() > 0, band
        assert np.isnan(x[~np.isnan(y)]).sum() == 0, f"{band}: archive lost pixels"
        close = np.isclose(x[both], y[both], atol=2e-4)
        assert close.mean() > 0.999, f"{band}: {close.mean():.4f} of pixels match"
        n += int(both.sum())
    scl_a, scl_b = a["scl"].values, b["scl"].values
    assert np.array_equal(scl_a[scl_b > 0], scl_b[scl_b > 0])
    return n


def written_text(*folders: Path) -> str:
    """Every byte written under ``folders``, decoded leniently, for secret greps."""
    chunks = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                chunks.append(path.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


def log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() for r in records)
