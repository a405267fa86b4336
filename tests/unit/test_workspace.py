"""One writer per workspace; a dead writer's lock is taken over; saved units are found."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import WorkspaceLocked
from pipeline.sources.base import AssetRef, Scene
from pipeline.state import STATE_DIR, FoldStart, StateStore, fold_prefixes, row_keys
from pipeline.workspace import LOCK_FILE, workspace_lock


def test_workspace_lock__second_writer_is_refused(tmp_path):
    with workspace_lock(tmp_path):
        with pytest.raises(WorkspaceLocked, match="another run"), workspace_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()


def test_workspace_lock__stale_lock_of_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    with workspace_lock(tmp_path):
        owner = json.loads((tmp_path / LOCK_FILE).read_text())
    assert owner["pid"] != pid


def test_state_store__continues_from_the_longest_saved_prefix(tmp_path):
    store = StateStore(tmp_path)
    prefixes = ["p1", "p2", "p3", "p4"]
    store.save_fold((0, 1), "p1", _zip_bytes())
    store.save_fold((0, 1), "p3", _zip_bytes())
    store.save_fold((0, 1), "other-period", _zip_bytes())

    assert store.find_fold((0, 1), prefixes) == FoldStart(3, store.fold_path((0, 1), "p3"))
    assert store.find_fold((0, 1), ["q1", "q2"]) == FoldStart(0, None)
    assert store.find_fold((1, 1), prefixes) == FoldStart(0, None)


def test_state_store__damaged_state_is_ignored(tmp_path):
    store = StateStore(tmp_path)
    store.save_fold((0, 0), "p1", _zip_bytes())
    store.save_fold((0, 0), "p2", b"not a zip")

    assert store.find_fold((0, 0), ["p1", "p2"]).n_done == 1


def test_state_store__prune_keeps_only_what_a_later_run_needs(tmp_path):
    store = StateStore(tmp_path)
    keep = [store.save_fold((0, 0), "p2", _zip_bytes())]
    store.save_fold((0, 0), "p1", _zip_bytes())
    store.save_fold((5, 5), "p1", _zip_bytes())
    keep.append(store.save_rows("k1", pd.DataFrame({"a": [1]})))
    store.save_rows("k0", pd.DataFrame({"a": [0]}))
    (tmp_path / ".flags.geojson.x1.tmp").write_text("half")
    (tmp_path / STATE_DIR / "rows" / ".k2.parquet.x2.tmp").write_text("half")

    assert store.prune(keep) == 5

    left = sorted(p for p in (tmp_path / STATE_DIR).rglob("*") if p.is_file())
    assert left == sorted(keep)
    assert not (tmp_path / STATE_DIR / "fold" / "5-5").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_state_store__interrupted_run_keeps_its_id_until_it_ends(tmp_path):
    store = StateStore(tmp_path)
    run_id, resumed = store.begin_run("fp-a")
    assert not resumed
    assert store.begin_run("fp-a") == (run_id, True)
    other, resumed = store.begin_run("fp-b")  # another period or config: a new run
    assert other != run_id and not resumed
    store.end_run()
    assert store.begin_run("fp-b")[0] != other


def test_state_keys__a_changed_scene_changes_its_key_and_every_later_prefix():
    def scene(day: str, item: str) -> Scene:
        ref = AssetRef(href=f"/data/{item}/B04.tif", scale=0.0001, offset=-0.1)
        return Scene(date=np.datetime64(day), item_ids=(item,), assets=({"red": ref},))

    scenes = [scene("2023-01-01", "a"), scene("2023-01-11", "b"), scene("2023-01-21", "c")]
    replaced = [scenes[0], scene("2023-01-11", "b2"), scenes[2]]

    base, rows = fold_prefixes("base", scenes), row_keys("base", scenes)
    assert fold_prefixes("base", scenes[:2]) == base[:2]  # a later --end extends the chain
    assert fold_prefixes("base", replaced)[0] == base[0]
    assert fold_prefixes("base", replaced)[1:] != base[1:]
    assert row_keys("base", replaced)[::2] == rows[::2]  # other dates' rows are kept
    assert row_keys("base", replaced)[1] != rows[1]
    assert fold_prefixes("other-config", scenes)[0] != base[0]


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(3))
    return buf.getvalue()
