"""``--scheduler tcp://...``: the same run on a real two-process Dask cluster on loopback."""

from __future__ import annotations

import json
import logging

import dask
import pytest

from pipeline import schema
from pipeline.cli import EXIT_FAILURE, EXIT_INPUT, main
from pipeline.logs import JsonFormatter

from .compare import assert_same_outputs, ledger_content
from .conftest import run_args


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def test_cluster__two_worker_processes_give_the_local_run_outputs(
    scenario, scenario_run, tmp_path, cluster, caplog
):
    out = tmp_path / "ws"
    args = run_args(scenario, out, "--scheduler", cluster.scheduler_address, "--log-json")

    with caplog.at_level(logging.INFO):
        assert main(args) == 0

    assert_same_outputs(out, scenario_run)
    assert ledger_content(out) == ledger_content(scenario_run)
    # The fold ran in the worker processes (task names as Dask shortens them).
    assert {"fold-step", "fold-snap"} <= set(cluster.scheduler.task_prefixes)
    # As JSON lines, stages report their seconds and counts.
    records = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    done = {r["stage"]: r for r in records if "seconds" in r}
    assert {"inputs", "graph", "compute", "flags", "write"} <= set(done)
    assert done["compute"]["counts"]["units"] > 0
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    assert manifest["stages"]["compute"]["seconds"] >= 0
    assert manifest["stages"]["flags"]["published"] == len(
        json.loads((out / schema.FLAGS_FILE).read_text())["features"]
    )


def test_cluster__bad_or_unreachable_scheduler_is_a_clear_error(scenario, tmp_path, capsys):
    assert main(run_args(scenario, tmp_path / "a", "--scheduler", "localhost:1")) == EXIT_INPUT
    assert "scheduler" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    unreachable = "tcp://127.0.0.1:9"  # the discard port: nothing listens
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = main(run_args(scenario, tmp_path / "b", "--scheduler", unreachable))
    assert code == EXIT_FAILURE
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
