"""`minewatch sample` and `minewatch estimate` on the shared scenario run, against its truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import shape

from pipeline.cli import main
from pipeline.estimate import ESTIMATE_FILE, read_labelled_sample, stratified_estimate
from pipeline.inputs.vectors import read_sites
from pipeline.sampling import MAP_CLASSES, STRATA, StrataMap, load_strata, write_sample
from pipeline.scenes import ScenarioPaths

N_POINTS = 400
N_SEEDS = 20


def _burn(geoms: list, strata: StrataMap) -> np.ndarray:
    from rasterio.features import rasterize

    if not geoms:
        return np.zeros(strata.grid.shape, bool)
    return rasterize(
        [(g, 1) for g in geoms], out_shape=strata.grid.shape, transform=strata.grid.transform
    ).astype(bool)


@pytest.fixture(scope="module")
def truth_maps(
    scenario: ScenarioPaths, scenario_run: Path
) -> tuple[StrataMap, np.ndarray, np.ndarray]:
    """The run's strata, and the true dug and restored pixels from ``truth.json``."""
    strata = load_strata(scenario_run)
    truth = json.loads(scenario.truth.read_text(encoding="utf-8"))
    crs = strata.grid.crs
    digs = gpd.GeoSeries([shape(d["geometry"]) for d in truth["digs"]], crs="EPSG:4326")
    inside = strata.strata >= 0
    dug = _burn(list(digs.to_crs(crs)), strata) & inside
    klass = {s["site_id"]: s["recovery_class"] for s in truth["sites"]}
    sites = read_sites(scenario.sites).to_crs(crs)
    restored = [
        g
        for g, sid in zip(sites.geometry, sites["site_id"], strict=True)
        if klass[sid] == "restored"
    ]
    return strata, dug, _burn(restored, strata) & inside & ~dug


def _label(sample_csv: Path, truth_maps: tuple[StrataMap, np.ndarray, np.ndarray]) -> None:
    """Fill ``reference`` from the truth, as a person looking at the imagery would."""
    strata, dug, restored = truth_maps
    frame = pd.read_csv(sample_csv, keep_default_na=False)
    rows, cols = strata.locate(frame["lon"].to_numpy(), frame["lat"].to_numpy())
    assert (rows >= 0).all()
    frame["reference"] = np.where(
        dug[rows, cols], "excavation", np.where(restored[rows, cols], "restored", "other")
    )
    frame.to_csv(sample_csv, index=False)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sample__same_seed_same_sample_and_rare_strata_get_fifty(
    scenario_run: Path, tmp_path: Path
) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert (
        main(
            [
                "sample",
                "--workspace",
                str(scenario_run),
                "--n",
                "400",
                "--seed",
                "5",
                "--out",
                str(a),
            ]
        )
        == 0
    )
    write_sample(scenario_run, b, n=400, seed=5)
    write_sample(scenario_run, c, n=400, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    frame = pd.read_csv(a, keep_default_na=False)
    assert list(frame.columns) == ["sample_id", "stratum", "lon", "lat", "map_class", "reference"]
    assert (frame["reference"] == "").all()
    assert frame["sample_id"].is_unique and len(frame) == 400
    sidecar = json.loads((tmp_path / "a.strata.json").read_text())
    strata = load_strata(scenario_run)
    assert {k: v["pixels"] for k, v in sidecar["strata"].items()} == strata.counts()
    assert sum(v["pixels"] for v in sidecar["strata"].values()) == int((strata.strata >= 0).sum())
    counts = frame["stratum"].value_counts().to_dict()
    rare = [k for k in STRATA[:-1] if sidecar["strata"][k]["pixels"] >= 50]
    assert all(counts[k] == 50 for k in rare), counts
    assert counts["rest"] == 400 - 50 * len(rare)
    # The mapped excavation stratum is exactly the published flags' area.
    flags = json.loads((scenario_run / "flags.geojson").read_text())["features"]
    mapped_m2 = sidecar["strata"]["excavation"]["pixels"] * sidecar["pixel_area_m2"]
    assert mapped_m2 == pytest.approx(sum(f["properties"]["area_m2"] for f in flags))


def test_estimate__95_percent_interval_covers_the_true_dug_area(
    scenario_run: Path, truth_maps: tuple[StrataMap, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    strata, dug, _ = truth_maps
    true_m2 = float(dug.sum()) * strata.pixel_area_m2
    mapped_m2 = float((strata.strata == STRATA.index("excavation")).sum()) * strata.pixel_area_m2
    assert true_m2 > mapped_m2 > 0  # the map misses some digging: the estimate must see it
    covered, estimates = 0, []
    for seed in range(N_SEEDS):
        csv = tmp_path / f"s{seed}.csv"
        write_sample(scenario_run, csv, n=N_POINTS, seed=seed)
        _label(csv, truth_maps)
        sample, sidecar = read_labelled_sample(csv)
        pixels = {k: v["pixels"] for k, v in sidecar["strata"].items()}
        area = stratified_estimate(sample, pixels, classes=MAP_CLASSES, pixel_area_m2=100.0)[
            "classes"
        ]["excavation"]["area_m2"]
        estimates.append(area["value"])
        covered += area["ci95_low"] <= true_m2 <= area["ci95_high"]
    # The estimator's interval (Olofsson et al.'s) is estimate +/- 1.96 SE: where a
    # stratum's 50 units show no omitted digging, it claims none there. On this map the
    # omission left is 4 % of the buffer ring around the flags, which 50 units miss one
    # time in seven (0.96 ** 50), so the interval covers the truth about 86 % of the
    # time, not 95 % (measured: 15 of these 20 samples). Below 15 the intervals would be
    # too narrow for more than that.
    assert 15 <= covered <= N_SEEDS, (covered, true_m2, estimates)
    # Unbiased: the mean of the 20 estimates is near the truth, and above the map's count.
    assert np.mean(estimates) == pytest.approx(true_m2, rel=0.15)


def test_estimate__writes_estimate_json_with_areas_and_accuracies(
    fresh_copy: Path,
    truth_maps: tuple[StrataMap, np.ndarray, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = tmp_path / "sample.csv"
    write_sample(fresh_copy, csv, n=N_POINTS, seed=1)
    _label(csv, truth_maps)
    capsys.readouterr()
    assert main(["estimate", "--workspace", str(fresh_copy), "--sample", str(csv), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((fresh_copy / ESTIMATE_FILE).read_text())
    assert printed["classes"] == saved["classes"]
    exc = saved["classes"]["excavation"]
    assert exc["area_mu"]["value"] == pytest.approx(exc["area_m2"]["value"] / 666.6667, abs=0.01)
    # <=: a sample that shows no omitted digging gives a point interval (see above).
    assert exc["area_m2"]["ci95_low"] <= exc["area_m2"]["value"] <= exc["area_m2"]["ci95_high"]
    assert exc["area_m2"]["value"] >= exc["area_m2"]["ci95_low"] >= 0.8 * exc["area_m2"]["value"]
    assert 0 < exc["users_accuracy"]["value"] <= 1 and exc["users_accuracy"]["se"] >= 0
    assert 0 < exc["producers_accuracy"]["value"] <= 1
    assert 0.9 < saved["overall_accuracy"]["value"] <= 1
    total = sum(c["area_m2"]["value"] for c in saved["classes"].values())
    assert total == pytest.approx(saved["total_area_m2"], abs=1)
    assert saved["n"] == N_POINTS and saved["seed"] == 1


def _bad_sample(
    fresh_copy: Path, tmp_path: Path, truth_maps: tuple[StrataMap, np.ndarray, np.ndarray]
) -> tuple[Path, pd.DataFrame]:
    csv = tmp_path / "sample.csv"
    write_sample(fresh_copy, csv, n=N_POINTS, seed=2)
    _label(csv, truth_maps)
    return csv, pd.read_csv(csv, keep_default_na=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("label", "row 12 (sample_id=S0011): field 'reference': unknown label 'quarry'"),
        ("outside", "row 12 (sample_id=S0011): field 'lon': the point lies outside"),
        ("empty", "row 12 (sample_id=S0011): field 'reference': reference is empty"),
        ("stratum", "record stratum restored: field 'stratum': stratum 'restored' has 1 "),
    ],
)
def test_estimate__bad_row_exits_2_naming_it_and_changes_nothing(
    fresh_copy: Path,
    tmp_path: Path,
    truth_maps: tuple[StrataMap, np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
    edit: str,
    message: str,
) -> None:
    csv, frame = _bad_sample(fresh_copy, tmp_path, truth_maps)
    if edit == "label":
        frame.loc[10, "reference"] = "quarry"
    elif edit == "empty":
        frame.loc[10, "reference"] = ""
    elif edit == "outside":
        frame.loc[10, ["lon", "lat"]] = [100.0, 20.0]
    else:
        restored = frame.index[frame["stratum"] == "restored"]
        frame = frame.drop(restored[1:])
    frame.to_csv(csv, index=False)
    before = _tree_digest(fresh_copy)
    capsys.readouterr()
    assert main(["estimate", "--workspace", str(fresh_copy), "--sample", str(csv)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert _tree_digest(fresh_copy) == before
    assert not (fresh_copy / ESTIMATE_FILE).exists()


def test_sample_chips__before_after_and_plot_per_point(scenario_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    from pipeline.sample_chips import write_sample_chips

    frame, _ = write_sample(scenario_run, tmp_path / "s.csv", n=N_POINTS, seed=3)
    points = pd.concat([frame[frame["stratum"] == s].head(1) for s in ("excavation", "rest")])
    dest = tmp_path / "chips"
    assert write_sample_chips(scenario_run, points, dest, language="en") == 2
    index = pd.read_csv(dest / "index.csv", keep_default_na=False)
    assert list(index["sample_id"]) == list(points["sample_id"])
    flags = json.loads((scenario_run / "flags.geojson").read_text())["features"]
    dig = index.iloc[0]
    # A point inside a flag is looked at around the flag's first detection.
    first = next(
        f["properties"]["first_detected"]
        for f in flags
        if shape(f["geometry"]).intersects(
            shape({"type": "Point", "coordinates": [points.iloc[0]["lon"], points.iloc[0]["lat"]]})
        )
    )
    assert dig["looks_around"] == first
    assert dig["before_date"] < first <= dig["after_date"]
    for row in index.itertuples(index=False):
        for rel in (row.before, row.after, row.plot):
            with Image.open(dest / rel) as image:
                assert image.width >= 200 and image.height >= 200
    assert (
        main(
            [
                "sample",
                "--workspace",
                str(scenario_run),
                "--n",
                "12",
                "--out",
                str(tmp_path / "t.csv"),
                "--chips",
                str(dest),
            ]
        )
        == 2
    )
    assert not (tmp_path / "t.csv").exists()  # a used chips folder is refused first
