"""The run's ``report.html``: one self-contained page for people (see ``html.render_report``)."""

from pipeline.report.html import render_report

__all__ = ["render_report"]
