"""Asset checks kept in the workspace: an unchanged file is not opened again."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from pipeline.inputs import imagery, offsets
from pipeline.inputs.asset_cache import AssetChecks
from pipeline.sources.local import read_catalog
from tests.conftest import uniform_bands, write_tiny_catalog

DATES = [date(2022, 5, 1), date(2022, 6, 1)]  # baseline 04.00: offsets are checked too


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_tiny_catalog(tmp_path / "cat", uniform_bands(2, 32, 32), DATES)


def _spy(monkeypatch: pytest.MonkeyPatch, module, name: str) -> list:
    calls: list = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_check_assets__second_run_opens_only_the_changed_file(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    scenes = read_catalog(catalog)
    n_assets = sum(len(refs) for s in scenes for refs in s.assets)
    probes = _spy(monkeypatch, imagery, "_probe")
    judged = _spy(monkeypatch, offsets, "_judge")
    cache_file = tmp_path / "ws" / ".state" / "assets.json"

    first = AssetChecks(cache_file)
    kept, _, found = imagery.check_assets(scenes, catalog=str(catalog), cache=first)
    offsets.check_offsets(kept, catalog=str(catalog), cache=first)
    first.save()
    assert len(probes) == n_assets and len(judged) == 2

    # a new run reads the cache: nothing is opened; the same probes come back
    second = AssetChecks(cache_file)
    _, _, again = imagery.check_assets(scenes, catalog=str(catalog), cache=second)
    offsets.check_offsets(kept, catalog=str(catalog), cache=second)
    assert len(probes) == n_assets and len(judged) == 2
    assert [(p.href, p.crs, p.resolution) for p in again] == [
        (p.href, p.crs, p.resolution) for p in found
    ]

    # a file rewritten since (another mtime) is checked again, and only that one
    red = Path(scenes[0].assets[0]["red"].href)
    st = red.stat()
    os.utime(red, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = AssetChecks(cache_file)
    imagery.check_assets(scenes, catalog=str(catalog), cache=third)
    offsets.check_offsets(kept, catalog=str(catalog), cache=third)
    assert [a[2] for a in probes[n_assets:]] == [str(red)]
    assert len(judged) == 3


def test_check_assets__a_failed_asset_is_not_remembered(catalog: Path, tmp_path: Path):
    scenes = read_catalog(catalog)
    red = Path(scenes[1].assets[0]["red"].href)
    good = red.read_bytes()
    red.write_bytes(b"not a tiff")
    cache = AssetChecks(tmp_path / "assets.json")
    kept, warnings, _ = imagery.check_assets(scenes, catalog=str(catalog), cache=cache)
    assert len(kept) == 1 and len(warnings) == 1
    cache.save()
    red.write_bytes(good)  # repaired: the next run reads it and keeps the date
    kept, warnings, _ = imagery.check_assets(
        scenes, catalog=str(catalog), cache=AssetChecks(tmp_path / "assets.json")
    )
    assert len(kept) == 2 and not warnings


def test_check_items__each_file_opened_once_for_both_checks(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
):
    import rasterio

    from pipeline.inputs.asset_files import check_items

    scenes = read_catalog(catalog)
    kept_alone, _, probes_alone = imagery.check_assets(scenes, catalog=str(catalog))
    fixed_alone, _, corrections_alone = offsets.check_offsets(kept_alone, catalog=str(catalog))
    opened = _spy(monkeypatch, rasterio, "open")
    judged = _spy(monkeypatch, offsets, "_judge")

    results, verdicts = check_items(scenes)
    kept, _, probes = imagery.check_assets(scenes, catalog=str(catalog), results=results)
    fixed, _, corrections = offsets.check_offsets(kept, catalog=str(catalog), verdicts=verdicts)

    files = {ref.href for s in scenes for refs in s.assets for ref in refs.values()}
    assert sorted(str(a[0]) for a in opened) == sorted(files)
    assert len(judged) == 2
    assert fixed == fixed_alone and corrections == corrections_alone
    assert [(p.href, p.crs, p.resolution) for p in probes] == [
        (p.href, p.crs, p.resolution) for p in probes_alone
    ]
