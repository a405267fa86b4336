"""A workspace survives SIGKILL at any moment, refuses a second writer, and grows by date.

The killed runs are real ``minewatch run`` processes that SIGKILL themselves at a
chosen file rename (the moment a saved unit or an output would become visible), so
each kill point is hit exactly, and a run paused at such a point holds the lock
while a second run tries the same workspace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline import schema
from pipeline.cli import EXIT_LOCKED, main
from pipeline.state import RUN_FILE, STATE_DIR
from pipeline.workspace import LOCK_FILE

from .compare import assert_same_outputs, ledger_content
from .conftest import run_args

# Runs ``minewatch`` with os.replace patched: at the nth rename of a saved unit
# (``unit``) or of an output (``output``) the process waits for the gate file (if
# one is named) and then SIGKILLs itself, before the rename happens.
_KILL_AT = """
import os, signal, sys, time
from pathlib import Path

kind, nth, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = {"unit": 0, "output": 0}
real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    dst = Path(dst)
    if ".state" in dst.parts:
        what = "unit" if dst.suffix in (".npz", ".parquet") else None
    else:
        what = "output"
    if what is not None:
        seen[what] += 1
        if what == kind and seen[what] == nth:
            if gate != "-":
                Path(gate + ".waiting").touch()
                while not Path(gate).exists():
                    time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
from pipeline.cli import main
sys.exit(main(sys.argv[4:]))
"""


def _start_killed_run(args: list[str], kind: str, nth: int, gate: Path | None = None):
    return subprocess.Popen(
        [sys.executable, "-c", _KILL_AT, kind, str(nth), str(gate or "-"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _killed(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    return err


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_resume__runs_killed_mid_compute_and_mid_write_end_like_an_uninterrupted_run(
    scenario, scenario_run, tmp_path, capsys
):
    ws = tmp_path / "ws"
    args = run_args(scenario, ws)
    state = ws / STATE_DIR

    # 1. Killed mid-computation, between writing a unit and renaming it into place
    # (logging JSON lines, which do not change what the run computes).
    err = _killed(_start_killed_run([*args, "--log-json"], "unit", 3))
    logged = [json.loads(line) for line in err.splitlines()]
    assert any(r["level"] == "INFO" and r.get("stage") == "compute" for r in logged)
    assert not (ws / schema.FLAGS_FILE).exists()
    owner = json.loads((ws / LOCK_FILE).read_text())  # the dead run's lock is left behind
    run_id = json.loads((state / RUN_FILE).read_text())["run_id"]
    whole = [*state.glob("fold/*/*.npz"), *state.glob("rows/*.parquet")]
    torn = list(state.glob("*/**/.*.tmp"))
    assert len(whole) == 2 and len(torn) == 1

    # 2. Paused after the ledger is written, half-way through the outputs: it holds the
    # lock, so a second run is refused and changes nothing; then it is killed there.
    gate = tmp_path / "gate"
    proc = _start_killed_run(args, "output", 3, gate)
    _wait_for(Path(str(gate) + ".waiting"), proc)
    assert json.loads((ws / LOCK_FILE).read_text())["pid"] == proc.pid != owner["pid"]
    before = sorted(p.name for p in ws.iterdir())
    capsys.readouterr()
    assert main(args) == EXIT_LOCKED
    assert "workspace locked" in capsys.readouterr().err
    assert sorted(p.name for p in ws.iterdir()) == before
    gate.touch()
    _killed(proc)
    flags_issued, _ = ledger_content(ws)
    assert flags_issued and (ws / schema.SITE_STATUS_FILE).exists()
    assert not (ws / schema.PROGRESS_FILE).exists()

    # The rerun finishes the interrupted run: same outputs, same ledger, no duplicate.
    assert main(args) == 0
    assert_same_outputs(ws, scenario_run)
    assert ledger_content(ws) == ledger_content(scenario_run)
    manifest = json.loads((ws / schema.MANIFEST_FILE).read_text())
    assert manifest["run_id"] == run_id
    assert manifest["stages"]["graph"]["fold_tile_dates_computed"] == 0
    assert not (ws / LOCK_FILE).exists() and not (state / RUN_FILE).exists()
    assert not list(state.glob("*/**/.*.tmp")) and not list(ws.glob(".*.tmp"))


def test_resume__later_end_date_continues_and_equals_a_full_run(scenario, scenario_run, tmp_path):
    ws = tmp_path / "ws"
    assert main(run_args(scenario, ws, "--end", "2022-06-30")) == 0
    first = json.loads((ws / schema.MANIFEST_FILE).read_text())

    assert main(run_args(scenario, ws)) == 0

    assert_same_outputs(ws, scenario_run)
    assert ledger_content(ws)[0] == ledger_content(scenario_run)[0]
    graph = json.loads((ws / schema.MANIFEST_FILE).read_text())["stages"]["graph"]
    n_before, n_all = first["counts"]["dates"], graph["dates"]
    assert 0 < n_before < n_all
    # Only the new dates were read: statistics and fold continue from the saved state.
    assert graph["rows_dates_reused"] == n_before
    assert graph["rows_dates_computed"] == n_all - n_before
    assert graph["fold_tile_dates_reused"] == n_before * graph["tiles"]
    assert graph["fold_tile_dates_computed"] == (n_all - n_before) * graph["tiles"]
