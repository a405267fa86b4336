"""Comparing two workspaces' outputs and ledgers, for the resume and cluster tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline import schema
from pipeline.ledger import open_ledger


def assert_same_outputs(ws: Path, reference: Path) -> None:
    """Flags (ids included), site status, progress and time series are the same."""
    flags = json.loads((ws / schema.FLAGS_FILE).read_text())
    assert flags == json.loads((reference / schema.FLAGS_FILE).read_text())
    for name in (schema.SITE_STATUS_FILE, schema.PROGRESS_FILE):
        pd.testing.assert_frame_equal(
            pd.read_csv(ws / name), pd.read_csv(reference / name), check_exact=True
        )
    pd.testing.assert_frame_equal(
        pd.read_parquet(ws / schema.TIMESERIES_FILE),
        pd.read_parquet(reference / schema.TIMESERIES_FILE),
        check_exact=True,
    )


def ledger_content(ws: Path) -> tuple[list[dict], list[tuple]]:
    """The ledger's flags and its history events (without times and run ids)."""
    with open_ledger(ws) as con:
        flags = [dict(r) for r in con.execute("SELECT * FROM flags ORDER BY flag_id")]
        events = [
            (r["flag_id"], r["event"], r["detail"])
            for r in con.execute("SELECT flag_id, event, detail FROM history ORDER BY id")
        ]
    return flags, events
