"""Writing run outputs safely: each file goes to a temporary name and is renamed into place.

A run that fails half-way, or is killed, leaves every earlier output whole: either the
old file or the new one, never a truncated mix. The file and then its folder are
synced, so a rename survives a power cut.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import MineWatchError


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()
# A full disk, a full quota, or a file-size limit: the write cannot finish.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` then rename ``tmp`` over ``path`` (same folder, same filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; outputs are for others to read
        try:
            writer(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno not in _FULL:
                raise
            raise MineWatchError(
                f"cannot write {path}: {os.strerror(exc.errno)} (disk or quota full); "
                f"{path.name} was left as it was and every other output is whole"
            ) from exc
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: a power cut after it must not bring the old entry back."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, encoding="utf-8"))


def write_parquet(path: Path, frame: pd.DataFrame, metadata: dict[str, str] | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata(
            {
                **(table.schema.metadata or {}),
                **{k.encode(): v.encode() for k, v in metadata.items()},
            }
        )
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
