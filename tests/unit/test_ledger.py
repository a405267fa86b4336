"""The flag ledger keeps ids and people's answers across runs."""

from __future__ import annotations

from datetime import date

import pytest
from shapely.geometry import box

from pipeline.errors import InputError
from pipeline.flags import Flag
from pipeline.ledger import flag_history, list_flags, open_ledger, reconcile, set_status


def _flag(fid: str, geom, area: float = 2000.0) -> Flag:
    return Flag(
        flag_id=fid,
        geometry=geom,
        first_detected=date(2023, 5, 1),
        confirmed=date(2023, 5, 11),
        last_seen=date(2023, 9, 1),
        area_m2=area,
        confidence=0.9,
        level="high",
        has_history=True,
        prior_ndvi=0.7,
        violation="unregistered",
        county="A",
    )


def test_reconcile__overlapping_detection_keeps_the_issued_id(tmp_path):
    with open_ledger(tmp_path) as con:
        first = reconcile(con, [_flag("F1", box(0, 0, 1, 1))], [box(0, 0, 1, 1)], "run1")
    with open_ledger(tmp_path) as con:
        grown = _flag("F2-other-seed", box(0, 0, 2, 1), area=4000)
        second = reconcile(con, [grown], [box(0, 0, 2, 1)], "run2")
        rows = list_flags(con)
    assert first[0]["flag_id"] == second[0]["flag_id"] == "F1"
    assert grown.flag_id == "F1"
    assert len(rows) == 1 and rows[0]["area_m2"] == 4000


def test_reconcile__person_status_survives_a_rerun(tmp_path):
    with open_ledger(tmp_path) as con:
        reconcile(con, [_flag("F1", box(0, 0, 1, 1))], [box(0, 0, 1, 1)], "run1")
        set_status(con, "F1", "dispatched", who="county A", comment="team sent")
    with open_ledger(tmp_path) as con:
        published = reconcile(con, [_flag("F1", box(0, 0, 1, 1))], [box(0, 0, 1, 1)], "run2")
        events = [h["event"] for h in flag_history(con, "F1")]
    assert published == [{"flag_id": "F1", "status": "dispatched"}]
    assert events == ["detected", "status:dispatched"]


def test_reconcile__false_alarm_stays_closed_unless_it_grows(tmp_path):
    with open_ledger(tmp_path) as con:
        reconcile(con, [_flag("F1", box(0, 0, 1, 1))], [box(0, 0, 1, 1)], "run1")
        set_status(con, "F1", "false_alarm", who="county A")
    with open_ledger(tmp_path) as con:
        same = reconcile(con, [_flag("F1", box(0, 0, 1, 1), area=2100)], [box(0, 0, 1, 1)], "r2")
    assert same == []
    with open_ledger(tmp_path) as con:
        grown = reconcile(con, [_flag("F1", box(0, 0, 3, 1), area=6000)], [box(0, 0, 3, 1)], "r3")
    assert grown == [{"flag_id": "F1", "status": "new"}]


def test_reconcile__distinct_digs_with_the_same_seed_id_get_distinct_ids(tmp_path):
    with open_ledger(tmp_path) as con:
        out = reconcile(
            con,
            [_flag("F1", box(0, 0, 1, 1)), _flag("F1", box(5, 5, 6, 6))],
            [box(0, 0, 1, 1), box(5, 5, 6, 6)],
            "run1",
        )
    assert [p["flag_id"] for p in out] == ["F1", "F1-2"]


def test_set_status__unknown_flag_or_status_is_input_error(tmp_path):
    with open_ledger(tmp_path) as con:
        reconcile(con, [_flag("F1", box(0, 0, 1, 1))], [box(0, 0, 1, 1)], "run1")
        with pytest.raises(InputError, match="no flag"):
            set_status(con, "F9", "resolved", who="x")
        with pytest.raises(InputError, match="unknown status"):
            set_status(con, "F1", "maybe", who="x")


def test_reconcile__same_detections_again_change_nothing(tmp_path):
    flags = [_flag("F1", box(0, 0, 1, 1)), _flag("F2", box(3, 0, 4, 1))]
    geoms = [f.geometry for f in flags]
    with open_ledger(tmp_path) as con:
        first = reconcile(con, flags, geoms, "run1")
        rows = list_flags(con)
        events = con.execute("SELECT flag_id, event FROM history ORDER BY id").fetchall()
    again = [_flag("F1", box(0, 0, 1, 1)), _flag("F2", box(3, 0, 4, 1))]
    with open_ledger(tmp_path) as con:  # a run killed after the ledger, started again
        second = reconcile(con, again, geoms, "run1")
        assert list_flags(con) == rows
        assert con.execute("SELECT flag_id, event FROM history ORDER BY id").fetchall() == events
    assert first == second


def test_reconcile__flag_touching_a_neighbours_corner_keeps_its_own_id(tmp_path):
    # Two digs meeting at one corner (8-connected flags can): each keeps its id.
    a, b = box(0, 0, 1, 1), box(1, 1, 2, 2)
    with open_ledger(tmp_path) as con:
        reconcile(con, [_flag("FA", a), _flag("FB", b)], [a, b], "run1")
    with open_ledger(tmp_path) as con:
        rerun = [_flag("FB-seed", b), _flag("FA-seed", a)]  # listed in the other order
        reconcile(con, rerun, [b, a], "run2")
    assert [f.flag_id for f in rerun] == ["FB", "FA"]
