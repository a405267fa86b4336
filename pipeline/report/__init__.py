"""The run's ``report.html``: one self-contained page for people (see ``html.render_report``).

``render_report`` is imported on first use: the page's modules bring matplotlib, which
a run needs only once its pixels are done with, and other commands not at all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_report"]


def __getattr__(name: str) -> Any:
    if name == "render_report":
        from pipeline.report.html import render_report

        return render_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
