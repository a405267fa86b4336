"""The flag ledger: every flag's history and enforcement status, in SQLite.

Lives in the run workspace (``ledger.sqlite``). Each run reconciles its detections
with the ledger: a detection overlapping a flag already issued keeps that flag's id
(so a dig that grows stays one flag), a new one gets its seed id. A status set by a
person (``dispatched``, ``confirmed``, ``false_alarm``, ``resolved``) is never
changed by a run; a ``false_alarm`` that shows up again stays closed unless it has
grown past ``REOPEN_GROWTH`` times the area it had when it was closed.

Reconciling is idempotent: a second reconcile of the same detections (a run killed
after the ledger was written and started again) gives every flag the same id and
adds no event, so a resumed run neither duplicates nor loses a flag.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from shapely import wkt
from shapely.geometry.base import BaseGeometry

from pipeline import schema
from pipeline.errors import InputError
from pipeline.flags import Flag

LEDGER_FILE = "ledger.sqlite"
REOPEN_GROWTH = 1.5  # a false alarm reopens when it grows beyond 1.5x its closed area

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flags (
    flag_id TEXT PRIMARY KEY,
    first_detected TEXT NOT NULL,
    confirmed TEXT,
    last_seen TEXT NOT NULL,
    area_m2 REAL NOT NULL,
    violation TEXT NOT NULL,
    county TEXT,
    site_id TEXT,
    geometry_wkt TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    status_area_m2 REAL,
    present INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id TEXT NOT NULL,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    who TEXT,
    detail TEXT
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def open_ledger(workspace: Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) the workspace's ledger; commits on success."""
    workspace.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(workspace / LEDGER_FILE, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        con.executescript(_SCHEMA)
        yield con
        con.commit()
    finally:
        con.close()


def reconcile(
    con: sqlite3.Connection, flags: list[Flag], geometries_wgs84: list[BaseGeometry], run_id: str
) -> list[dict]:
    """Give each detection its ledger id, record it, and return what to publish.

    Returns one dict per flag to publish, with ``flag_id`` and ``status``; false
    alarms that did not grow are left out.
    """
    existing = [
        (r["flag_id"], wkt.loads(r["geometry_wkt"]), r)
        for r in con.execute("SELECT * FROM flags ORDER BY first_detected, flag_id")
    ]
    taken: set[str] = set()
    published = []
    for flag, geom in zip(flags, geometries_wgs84, strict=True):
        match = _best_match(existing, taken, geom)
        if match is not None:
            flag.flag_id = match["flag_id"]
        else:
            base, n = flag.flag_id, 1
            ids = {fid for fid, _, _ in existing} | taken
            while flag.flag_id in ids:
                n += 1
                flag.flag_id = f"{base}-{n}"
        taken.add(flag.flag_id)
        values = (
            flag.first_detected.isoformat(),
            flag.confirmed.isoformat() if flag.confirmed else None,
            flag.last_seen.isoformat(),
            flag.area_m2,
            flag.violation,
            flag.county,
            flag.site_id,
            geom.wkt,
        )
        status = "new"
        if match is None:
            con.execute(
                "INSERT INTO flags (first_detected, confirmed, last_seen, area_m2, violation,"
                " county, site_id, geometry_wkt, flag_id) VALUES (?,?,?,?,?,?,?,?,?)",
                (*values, flag.flag_id),
            )
            _event(con, flag.flag_id, "detected", run_id, {"area_m2": flag.area_m2})
        else:
            status = match["status"]
            con.execute(
                "UPDATE flags SET first_detected=?, confirmed=?, last_seen=?, area_m2=?,"
                " violation=?, county=?, site_id=?, geometry_wkt=?, present=1 WHERE flag_id=?",
                (*values, flag.flag_id),
            )
            if status == "false_alarm":
                closed_area = match["status_area_m2"] or match["area_m2"]
                if flag.area_m2 > REOPEN_GROWTH * closed_area:
                    status = "new"
                    con.execute("UPDATE flags SET status='new' WHERE flag_id=?", (flag.flag_id,))
                    _event(
                        con,
                        flag.flag_id,
                        "reopened",
                        run_id,
                        {"area_m2": flag.area_m2, "closed_area_m2": closed_area},
                    )
        if status != "false_alarm":
            published.append({"flag_id": flag.flag_id, "status": status})
    gone = [fid for fid, _, _ in existing if fid not in taken]
    for fid in gone:
        con.execute("UPDATE flags SET present=0 WHERE flag_id=?", (fid,))
    return published


def _best_match(
    existing: list[tuple[str, BaseGeometry, sqlite3.Row]], taken: set[str], geom: BaseGeometry
) -> sqlite3.Row | None:
    """The issued flag this detection overlaps most (the earliest issued on a tie).

    Largest overlap, not first hit: a flag that only touches a neighbour's corner
    must not take the neighbour's id, so a rerun gives every flag its own id back.
    """
    best, best_area = None, -1.0
    for fid, g, row in existing:
        if fid in taken or not g.intersects(geom):
            continue
        area = g.intersection(geom).area
        if area > best_area:
            best, best_area = row, area
    return best


def _event(
    con: sqlite3.Connection, flag_id: str, event: str, who: str | None, detail: dict | None = None
) -> None:
    con.execute(
        "INSERT INTO history (flag_id, at, event, who, detail) VALUES (?,?,?,?,?)",
        (flag_id, _now(), event, who, json.dumps(detail or {}, ensure_ascii=False)),
    )


def set_status(
    con: sqlite3.Connection, flag_id: str, status: str, *, who: str, comment: str | None = None
) -> None:
    """Record a person's answer on a flag."""
    if status not in schema.ENFORCEMENT_STATUSES:
        raise InputError(
            f"unknown status {status!r}; expected one of {', '.join(schema.ENFORCEMENT_STATUSES)}",
            field="status",
        )
    row = con.execute("SELECT area_m2 FROM flags WHERE flag_id=?", (flag_id,)).fetchone()
    if row is None:
        raise InputError(f"no flag {flag_id!r} in the ledger", field="flag_id")
    con.execute(
        "UPDATE flags SET status=?, status_area_m2=? WHERE flag_id=?",
        (status, row["area_m2"], flag_id),
    )
    _event(con, flag_id, f"status:{status}", who, {"comment": comment})


def list_flags(con: sqlite3.Connection, *, county: str | None = None) -> list[dict]:
    query = "SELECT * FROM flags"
    args: tuple = ()
    if county:
        query += " WHERE county=?"
        args = (county,)
    return [dict(r) for r in con.execute(query + " ORDER BY first_detected, flag_id", args)]


def flag_history(con: sqlite3.Connection, flag_id: str) -> list[dict]:
    return [
        dict(r)
        for r in con.execute(
            "SELECT at, event, who, detail FROM history WHERE flag_id=? ORDER BY id", (flag_id,)
        )
    ]
