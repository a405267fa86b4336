"""The evaluation's permit-buffer edge: measured from what the detection measures from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import geopandas as gpd
from shapely.geometry import box

SCRIPT = Path(__file__).parents[2] / "scripts" / "evaluate.py"
_spec = importlib.util.spec_from_file_location("evaluate_script", SCRIPT)
evaluate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate)

CRS = "EPSG:32649"


def test_buffer_edge__a_licensed_site_with_no_permit_is_measured_from_its_boundary():
    # S1 is licensed with no permit on record; S2 is licensed, its permit P1 in its
    # north-east corner; S3 is an orphan pit (not licensed).
    sites = gpd.GeoDataFrame(
        {"site_id": ["S1", "S2", "S3"], "category": ["licensed", "licensed", "orphan"]},
        geometry=[box(0, 0, 200, 200), box(5000, 0, 5400, 400), box(0, 5000, 200, 5200)],
        crs=CRS,
    )
    permits = gpd.GeoDataFrame(
        {"permit_id": ["P1"], "site_id": ["S2"]}, geometry=[box(5300, 300, 5400, 400)], crs=CRS
    )
    outlines = evaluate.buffer_outlines(sites, permits)
    assert len(outlines) == 2  # P1, and S1's boundary
    beside_s1 = box(302, 0, 352, 50)  # 102 m east of S1's boundary
    beside_s2 = box(5502, 0, 5552, 50)  # 102 m east of S2's boundary, beyond its permit
    beside_p1 = box(5503, 300, 5553, 350)  # 103 m east of P1
    beside_s3 = box(303, 5000, 353, 5050)  # 103 m east of the orphan pit
    edge = [evaluate.at_buffer_edge(g, outlines, 100.0) for g in (beside_s1, beside_s2)]
    assert edge == [True, False]
    assert evaluate.at_buffer_edge(beside_p1, outlines, 100.0)
    assert not evaluate.at_buffer_edge(beside_s3, outlines, 100.0)
    # Measured from the permits alone, the dig beside S1 was 5 km from any.
    assert not evaluate.at_buffer_edge(beside_s1, permits, 100.0)
    # No permits at all: every licensed site's boundary.
    assert len(evaluate.buffer_outlines(sites, None)) == 2
    assert evaluate.at_buffer_edge(beside_s2, evaluate.buffer_outlines(sites, None), 100.0)
