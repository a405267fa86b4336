"""Warnings a person can read: one line per kind, library warnings as lines of ours."""

from __future__ import annotations

import logging
import warnings

import pytest

from pipeline import logs


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]):
    """The CLI's logging set up on a bare root logger; yields a reader of stderr."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, warnings.showwarning)
    for h in saved[0]:
        root.removeHandler(h)
    logs.setup_logging()
    yield lambda: capsys.readouterr().err
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    warnings.showwarning = saved[2]


def test_setup_logging__repeated_warnings_fold_into_one_line_per_kind(stderr):
    log = logging.getLogger("pipeline.recovery.features")
    for sid in ("S01", "S02", "S03", "S04", "S05"):
        log.warning("site %s: no clear look up to 2023-08-20; recovery not judged", sid)
    logging.getLogger("pipeline.run").warning("catalog lacks band swir16")
    logs.report_folded()
    lines = stderr().splitlines()
    warned = [ln for ln in lines if " WARNING " in ln]
    assert len(warned) == 2 and "S01: no clear look" in warned[0] and "swir16" in warned[1]
    [folded] = [ln for ln in lines if "more warning(s) like" in ln]
    assert "4 more" in folded and "S02" in folded and "S04" in folded and "1 more" in folded
    assert "S05" not in folded  # three examples, then the count
    assert sum("swir16" in ln for ln in lines) == 1


def test_setup_logging__library_warning_is_one_line_without_its_path(stderr):
    warnings.warn_explicit(
        "Geometry is in a geographic CRS. Results from 'area' are likely incorrect.\n more",
        UserWarning,
        "/x/.venv/lib/python3.11/site-packages/geopandas/geoseries.py",
        1012,
    )
    [line] = stderr().splitlines()
    assert "site-packages" not in line and "py.warnings" not in line
    assert "geographic CRS" in line and "(geopandas UserWarning)" in line
    assert "more" not in line
