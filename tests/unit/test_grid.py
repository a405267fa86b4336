"""The analysis grid's CRS: projected always, the UTM zone of the area by default."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import box

from pipeline.errors import InputError
from pipeline.sources.base import AssetRef, Scene
from pipeline.sources.grid import analysis_grid, grid_crs


def _sites(*boxes) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"site_id": [f"S{i}" for i in range(len(boxes))]},
                            geometry=[box(*b) for b in boxes], crs="EPSG:4326")  # fmt: skip


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [(112.9, 33.7, 32649), (114.3, 34.8, 32650), (16.1, 46.1, 32633), (-74.9, 1.6, 32618),
     (-70.6, -33.4, 32719)],
)  # fmt: skip
def test_grid_crs__utm_zone_of_the_sites_centroid(lon, lat, epsg):
    sites = _sites((lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
    assert grid_crs(None, sites=sites) == CRS.from_epsg(epsg)


def test_grid_crs__aoi_before_sites_and_config_before_both():
    sites = _sites((112.9, 33.7, 113.0, 33.8))
    assert grid_crs(None, aoi=box(16.0, 46.0, 16.2, 46.2), sites=sites) == CRS.from_epsg(32633)
    assert grid_crs("EPSG:4547", sites=sites) == CRS.from_epsg(4547)


def test_grid_crs__geographic_config__input_error():
    with pytest.raises(InputError, match="not a projected CRS"):
        grid_crs("EPSG:4326", sites=_sites((112.9, 33.7, 113.0, 33.8)))


def test_analysis_grid__items_of_two_zones_widen_it_where_they_lie():
    # One date: an item in 49N and one in 50N; the grid in 49N covers both, in metres.
    west = ("EPSG:32649", (700_000.0, 3_700_000.0, 710_000.0, 3_710_000.0))
    east = ("EPSG:32650", (190_000.0, 3_700_000.0, 200_000.0, 3_710_000.0))
    scene = Scene(np.datetime64("2023-05-01"), ("a", "b"), ({"red": AssetRef("a")},
                  {"red": AssetRef("b")}), footprints=(west, east))  # fmt: skip
    grid = analysis_grid([scene], crs=CRS.from_epsg(32649))
    left, bottom, right, top = grid.bounds
    assert left == 700_000 and bottom <= 3_700_000 and top >= 3_710_000
    # the east item's corners, taken to 49N with pyproj: the grid ends at the farthest
    to49 = Transformer.from_crs(32650, 32649, always_xy=True)
    xs, _ = to49.transform([200_000.0, 200_000.0], [3_700_000.0, 3_710_000.0])
    assert right == pytest.approx(np.ceil(max(xs) / 10) * 10, abs=10)
    assert 740_000 < right < 770_000  # 50N's 200 km is about 55 km east of 49N's 700 km
    assert grid.resolution == 10


def test_analysis_grid__geographic_crs__refused():
    scene = Scene(np.datetime64("2023-05-01"), ("a",), ({"red": AssetRef("a")},),
                  footprints=(("EPSG:4326", (16.0, 46.0, 16.1, 46.1)),))  # fmt: skip
    with pytest.raises(InputError, match="projected CRS"):
        analysis_grid([scene], crs=CRS.from_epsg(4326))
