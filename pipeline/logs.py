"""How a run reports itself: log lines for people or machines, and progress.

The CLI calls ``setup_logging`` once. Plain lines (``time level logger: message``)
suit cron mail and journald; ``--log-json`` writes one JSON object per line, with
any structured fields a message carries (``stage``, ``seconds``, ``done``,
``total``, counts). Warnings are folded: the first of each kind is shown as it comes,
the others of that kind are counted and ``report_folded`` (called by the CLI when the
command ends) shows them as one line per kind with the count and the first three
examples (the manifest keeps every warning). Warnings of the libraries underneath
(``warnings.warn`` in geopandas, rasterio, sentinelhub...) become one line of ours,
without their source paths. ``Progress`` draws a bar when stderr is a terminal and plain
logging is on, and otherwise logs a line at every tenth of the work.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

# Structured fields a log record may carry (``extra=``); the JSON lines include them.
FIELDS = ("stage", "seconds", "done", "total", "run_id", "counts", "workspace")

_bar_stream: IO[str] | None = None
SHOWN_PER_KIND = 3
"""Examples of a kind of warning named in its folded line."""
_DIGITS = re.compile(r"[^\s,;:()'\"]*\d[^\s,;:()'\"]*")
library_log = logging.getLogger("minewatch.libraries")


def warning_kind(record: logging.LogRecord) -> tuple[str, str]:
    """What makes two warnings alike: the logger and the message with every token that
    holds a digit (ids, dates, counts, paths) blanked out."""
    return record.name, _DIGITS.sub("#", record.getMessage())


class FoldWarnings(logging.Filter):
    """Lets the first warning of each kind through; counts and keeps the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[tuple[str, str], list[str]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        seen = self.kinds.setdefault(warning_kind(record), [])
        seen.append(record.getMessage())
        return len(seen) == 1

    def folded(self) -> list[tuple[str, int, list[str]]]:
        """(logger, count, first examples) of each kind that was held back."""
        return [
            (name, len(msgs), msgs[: 1 + SHOWN_PER_KIND])
            for (name, _), msgs in self.kinds.items()
            if len(msgs) > 1
        ]


_fold: FoldWarnings | None = None


def report_folded() -> None:
    """One line per kind of warning that was held back: how many, and examples."""
    global _fold
    fold, _fold = _fold, None
    if fold is None:
        return
    for name, count, (first, *examples) in fold.folded():
        rest = count - 1 - len(examples)
        more = f" and {rest} more" if rest > 0 else ""
        head = first if len(first) <= 60 else first[:57] + "..."
        logging.getLogger(name).info(
            "%d more warning(s) like %r: %s%s",
            count - 1,
            head,
            " | ".join(examples),
            more,
        )


def _show_library_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """A library's ``warnings.warn`` as one line of ours: which library, what it said."""
    parts = re.split(r"[\\/]", filename)
    where = next(
        (parts[i + 1] for i, p in enumerate(parts[:-1]) if p in ("site-packages", "dist-packages")),
        "minewatch" if "pipeline" in parts else parts[-1],
    )
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    library_log.warning("%s (%s %s)", text, where, category.__name__)


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
    global _fold
    _fold = FoldWarnings()
    handler.addFilter(_fold)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    warnings.showwarning = _show_library_warning  # library warnings become records of ours
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


class StageTimer:
    """Wall time and counts of each stage of a run, logged and kept for the manifest."""

    def __init__(self, logger: logging.Logger) -> None:
        self.timings: dict[str, float] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self._log = logger

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, int]]:
        """Time the block; what it puts in the yielded dict is the stage's counts."""
        start = time.perf_counter()
        self._log.info("stage %s: start", name, extra={"stage": name})
        counts: dict[str, int] = {}
        yield counts
        self.timings[name] = round(time.perf_counter() - start, 3)
        self.counts[name] = counts
        self._log.info(
            "stage %s: done in %.2f s",
            name,
            self.timings[name],
            extra={"stage": name, "seconds": self.timings[name], "counts": counts},
        )

    def stages(self) -> dict[str, dict[str, Any]]:
        return {n: {"seconds": s, **self.counts.get(n, {})} for n, s in self.timings.items()}
