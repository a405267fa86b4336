"""How a run reports itself: log lines for people or machines, and progress.

The CLI calls ``setup_logging`` once. Plain lines (``time level logger: message``)
suit cron mail and journald; ``--log-json`` writes one JSON object per line, with
any structured fields a message carries (``stage``, ``seconds``, ``done``,
``total``, counts). ``Progress`` draws a bar when stderr is a terminal and plain
logging is on, and otherwise logs a line at every tenth of the work.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

# Structured fields a log record may carry (``extra=``); the JSON lines include them.
FIELDS = ("stage", "seconds", "done", "total", "run_id", "counts", "workspace")

_bar_stream: IO[str] | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            if key in record.__dict__:
                data[key] = record.__dict__[key]
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def setup_logging(*, verbose: bool = False, json_lines: bool = False) -> None:
    """Route log records to stderr as plain lines or JSON lines (replacing an earlier setup).

    Like ``logging.basicConfig``, it leaves alone a root logger that something else
    has already given handlers.
    """
    global _bar_stream
    handler = _StderrHandler()
    handler._minewatch = True  # type: ignore[attr-defined]
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for noisy in ("distributed", "bokeh", "tornado"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_minewatch", False):
            root.removeHandler(old)
    _bar_stream = None
    if root.handlers:  # a host (or a test runner) configured logging: keep its setup
        return
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # library warnings become records (JSON lines too)
    _bar_stream = sys.stderr if (not json_lines and _is_terminal(sys.stderr)) else None


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Units of one stage done so far: a bar on a terminal, a log line per tenth otherwise."""

    def __init__(self, stage: str, total: int, logger: logging.Logger) -> None:
        self.stage, self.total, self.done = stage, total, 0
        self._log = logger
        self._start = time.perf_counter()
        self._next_tenth = 1
        self._bar = _bar_stream if total else None
        if total:
            self._log.info(
                "stage %s: %d units to compute",
                stage,
                total,
                extra={"stage": stage, "done": 0, "total": total},
            )

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            width = 30
            filled = int(width * self.done / self.total)
            self._bar.write(
                f"\r{self.stage} [{'#' * filled}{' ' * (width - filled)}] "
                f"{self.done}/{self.total} units, {time.perf_counter() - self._start:.0f} s"
            )
            self._bar.flush()
            if self.done >= self.total:
                self._bar.write("\n")
            return
        while self.total and self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth += 1
            self._log.info(
                "stage %s: %d/%d units (%d%%)",
                self.stage,
                self.done,
                self.total,
                100 * self.done // self.total,
                extra={"stage": self.stage, "done": self.done, "total": self.total},
            )
