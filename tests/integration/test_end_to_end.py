"""The whole pipeline on a generated scenario: outputs, figures against truth, reruns."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from shapely.geometry import shape

from pipeline import schema
from pipeline.cli import main
from pipeline.ledger import list_flags, open_ledger

from .conftest import run_args


def test_run__writes_the_six_outputs_with_contract_columns(scenario_run):
    for name in schema.OUTPUT_FILES:
        assert (scenario_run / name).stat().st_size > 0, name
    ts = pd.read_parquet(scenario_run / schema.TIMESERIES_FILE)
    assert list(ts.columns) == list(schema.TIMESERIES_FILE_COLUMNS)
    status = pd.read_csv(scenario_run / schema.SITE_STATUS_FILE)
    assert list(status.columns) == [*schema.SITE_STATUS_COLUMNS, *schema.SITE_STATUS_EXTRA_COLUMNS]
    assert set(status.recovery_class) <= set(schema.RECOVERY_CLASSES)
    progress = pd.read_csv(scenario_run / schema.PROGRESS_FILE)
    assert list(progress.columns) == list(schema.PROGRESS_COLUMNS)
    overall = progress[(progress.category == "ALL") & (progress.county == "ALL")].iloc[0]
    assert overall.sites == len(status)
    manifest = json.loads((scenario_run / schema.MANIFEST_FILE).read_text())
    for key in ("config_hash", "version", "model_version", "inputs", "period", "timings_s"):
        assert key in manifest
    assert manifest["period"]["start"] == str(ts.date.min().date())
    assert manifest["counts"]["dates"] == ts.date.nunique()
    assert len(manifest["inputs"]["items"]) == manifest["counts"]["dates"]


def test_run__timeseries_one_row_per_site_and_date(scenario, scenario_run):
    ts = pd.read_parquet(scenario_run / schema.TIMESERIES_FILE)
    sites = json.loads(scenario.sites.read_text())["features"]
    assert len(ts) == len(sites) * ts.date.nunique()
    assert ts.valid_fraction.between(0, 1).all()
    clear = ts[ts.valid_fraction > 0]
    assert clear.ndvi_mean.between(-1, 1).all()
    cloudy = ts[ts.valid_fraction == 0]
    assert cloudy.ndvi_mean.isna().all()


def test_run__flags_carry_contract_properties_in_wgs84(scenario_run):
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    assert features
    for feat in features:
        props = feat["properties"]
        assert set(schema.FLAG_PROPERTIES) <= set(props)
        assert props["violation"] in schema.VIOLATIONS
        assert props["level"] in ("low", "high")
        assert 0 <= props["confidence"] <= 1
        assert props["area_mu"] == pytest.approx(props["area_m2"] / schema.M2_PER_MU, abs=0.01)
        geom = shape(feat["geometry"])
        assert 112 < props["lon"] < 114 and 33 < props["lat"] < 35
        assert geom.buffer(1e-9).contains(geom.representative_point())
        assert props["first_detected"] <= props["last_seen"]
        if props["confirmed"]:
            assert props["level"] == "high"
            assert props["first_detected"] < props["confirmed"]


def test_run__finds_the_scenario_digs_with_the_right_violation(scenario, scenario_run):
    truth = json.loads(scenario.truth.read_text())
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    flags = [(shape(f["geometry"]), f["properties"]) for f in features]
    found = right = 0
    for dig in truth["digs"]:
        hits = [p for g, p in flags if g.intersects(shape(dig["geometry"]))]
        if hits:
            found += 1
            right += any(p["violation"] == dig["violation"] for p in hits)
    assert found / len(truth["digs"]) >= 0.75
    assert right == found
    false = [
        p for g, p in flags if not any(g.intersects(shape(d["geometry"])) for d in truth["digs"])
    ]
    assert len(false) <= 2


def test_run__rerun_keeps_ids_and_a_person_status(scenario, fresh_copy):
    before = json.loads((fresh_copy / schema.FLAGS_FILE).read_text())["features"]
    target = before[0]["properties"]["flag_id"]
    assert (
        main(
            [
                "flags",
                "set-status",
                "--workspace",
                str(fresh_copy),
                target,
                "dispatched",
                "--by",
                "county team",
                "--comment",
                "inspection booked",
            ]
        )
        == 0
    )
    assert main(run_args(scenario, fresh_copy)) == 0
    after = json.loads((fresh_copy / schema.FLAGS_FILE).read_text())["features"]
    assert sorted(f["properties"]["flag_id"] for f in after) == sorted(
        f["properties"]["flag_id"] for f in before
    )
    status = {f["properties"]["flag_id"]: f["properties"]["status"] for f in after}
    assert status[target] == "dispatched"
    with open_ledger(fresh_copy) as con:
        assert len(list_flags(con)) == len(before)


def test_run__catalog_order_does_not_change_flag_ids(scenario, scenario_run, tmp_path):
    shuffled = tmp_path / "catalog"
    shutil.copytree(scenario.catalog.parent, shuffled)
    cat = json.loads((shuffled / "catalog.json").read_text())
    cat["links"] = list(reversed(cat["links"]))
    (shuffled / "catalog.json").write_text(json.dumps(cat))
    out = tmp_path / "out"
    args = run_args(scenario, out)
    args[args.index("--catalog") + 1] = str(shuffled / "catalog.json")
    assert main(args) == 0
    ids = sorted(
        f["properties"]["flag_id"]
        for f in json.loads((out / schema.FLAGS_FILE).read_text())["features"]
    )
    ref = sorted(
        f["properties"]["flag_id"]
        for f in json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    )
    assert ids == ref


def test_run__period_end_limits_the_dates(scenario, tmp_path):
    out = tmp_path / "short"
    assert main(run_args(scenario, out, "--end", "2022-06-30")) == 0
    ts = pd.read_parquet(out / schema.TIMESERIES_FILE)
    assert ts.date.max() <= pd.Timestamp("2022-06-30")
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    assert manifest["period"]["end"] <= "2022-06-30"
    assert manifest["config"]["period"]["end"] == "2022-06-30"


def test_run__confounders_are_not_flagged(scenario, scenario_run):
    truth = json.loads(scenario.truth.read_text())
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    digs = [shape(d["geometry"]) for d in truth["digs"]]
    # flags on a real dig may share ground with a cloud puff of some date; the others
    # must not sit on a confounder
    flags = [shape(f["geometry"]) for f in features]
    flags = [f for f in flags if not any(f.intersects(d) for d in digs)]
    kinds = {"burn_scar", "limestone", "red_soil", "netting", "missed_cloud_edge"}
    checked = 0
    for item in truth["confounders"]:
        if item["kind"] not in kinds or not item.get("geometry"):
            continue
        area = shape(item["geometry"])
        checked += 1
        assert not any(f.intersects(area) for f in flags), item["kind"]
    assert checked >= 3


def test_run__closed_illegal_sites_report_how_long_they_stayed_quiet(scenario, scenario_run):
    status = pd.read_csv(scenario_run / schema.SITE_STATUS_FILE)
    sites = {
        f["properties"]["site_id"]: f["properties"]
        for f in json.loads(scenario.sites.read_text())["features"]
    }
    features = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    end = json.loads((scenario_run / schema.MANIFEST_FILE).read_text())["period"]["end"]
    closed = [s for s, p in sites.items() if p["category"] == "illegal" and p["status"] == "closed"]
    assert closed
    for sid in closed:
        row = status[status.site_id == sid].iloc[0]
        last = [f["properties"]["last_seen"] for f in features if f["properties"]["site_id"] == sid]
        if last:
            assert row.quiet_since == max(last)
        expected = (pd.Timestamp(end) - pd.Timestamp(row.quiet_since)).days
        assert row.quiet_days == expected
    others = status[~status.site_id.isin(closed)]
    assert others.quiet_days.isna().all()


def test_run__incremental_run_keeps_the_ids_of_a_full_run(scenario, scenario_run, tmp_path):
    out = tmp_path / "incremental"
    assert main(run_args(scenario, out, "--end", "2022-09-30")) == 0
    early = {
        f["properties"]["flag_id"]: f["properties"]["first_detected"]
        for f in json.loads((out / schema.FLAGS_FILE).read_text())["features"]
    }
    assert main(run_args(scenario, out)) == 0
    later = json.loads((out / schema.FLAGS_FILE).read_text())["features"]
    full = json.loads((scenario_run / schema.FLAGS_FILE).read_text())["features"]
    assert sorted(f["properties"]["flag_id"] for f in later) == sorted(
        f["properties"]["flag_id"] for f in full
    )
    later_ids = {f["properties"]["flag_id"] for f in later}
    assert set(early) <= later_ids, "a flag of the early run vanished or was renamed"
