"""One writer per workspace; a dead writer's lock is taken over."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pipeline.errors import WorkspaceLocked
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
