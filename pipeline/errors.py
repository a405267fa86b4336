"""The exceptions MineWatch raises.

One base, ``MineWatchError``; the CLI maps ``InputError`` to exit status 2,
``WorkspaceLocked`` to 3 and any other ``MineWatchError`` to exit status 1.
"""

from __future__ import annotations

from pathlib import Path


class MineWatchError(Exception):
    """Base of every error MineWatch raises on purpose."""


class InputError(MineWatchError):
    """Bad input or config: names the file, the record and the field (exit status 2)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.record = record
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(self.file)
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        where = ": ".join(parts)
        return f"{where}: {self.reason}" if where else self.reason


class NoValidData(InputError):
    """No site got a single valid value from the imagery (exit status 2): the imagery
    misses the sites, or their CRS does not say where they are."""


class WorkspaceLocked(MineWatchError):
    """Another live run holds the workspace lock (exit status 3)."""
