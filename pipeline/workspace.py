"""The run workspace lock: one writer per ``--out`` folder.

A lock file (``.minewatch.lock``) holds the writer's host and PID, created with
``O_EXCL`` so two runs cannot both take it. A lock left by a dead process on this
host (a crash, a power cut) is recognised as stale and taken over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import WorkspaceLocked

log = logging.getLogger(__name__)
LOCK_FILE = ".minewatch.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, fh)
    return True


@contextmanager
def workspace_lock(workspace: Path) -> Iterator[None]:
    """Hold the workspace's lock for the block; raise ``WorkspaceLocked`` if a live run has it."""
    workspace.mkdir(parents=True, exist_ok=True)
    path = workspace / LOCK_FILE
    if not _try_create(path):
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            owner = {}
        same_host = owner.get("host") == socket.gethostname()
        pid = int(owner.get("pid", -1))
        if same_host and pid > 0 and not _alive(pid):
            log.warning("workspace %s: taking over a stale lock of dead process %d", workspace, pid)
            path.unlink(missing_ok=True)
            if not _try_create(path):
                raise WorkspaceLocked(f"{workspace} is being written by another run")
        else:
            raise WorkspaceLocked(
                f"{workspace} is being written by another run "
                f"(host {owner.get('host', '?')}, pid {owner.get('pid', '?')}); lock file {path}"
            )
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
