"""Landsat Collection 2 Level-2 as a second sensor: QA bits, scaling, harmonisation."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pystac
import pytest

from pipeline.sources.base import AssetRef
from pipeline.sources.sensors import (
    HLS_OLI_FROM_MSI,
    LANDSAT,
    LANDSAT_QA,
    SENTINEL2,
    item_sensor,
    landsat_band,
    landsat_ref,
    qa_to_scl,
)


def _item(**props) -> pystac.Item:
    return pystac.Item("x", None, None, datetime(2016, 7, 1), props)


def test_qa_to_scl__each_bit_gives_its_class_and_cloud_wins():
    fill, dilated, cirrus, cloud, shadow, snow, clear, water = (1 << b for b in range(8))
    qa = np.array(
        [fill, clear, clear | water, cloud | dilated, dilated, cirrus, shadow, snow, 0,
         cloud | shadow | clear]
    )  # fmt: skip
    assert qa_to_scl(qa).tolist() == [0, 4, 6, 9, 8, 10, 3, 11, 7, 9]
    # real C2 values: 21824 clear land, 21952 clear water, 22280 high-confidence cloud
    assert qa_to_scl(np.array([21824, 21952, 22280, 23888, 1])).tolist() == [4, 6, 9, 3, 0]


def test_item_sensor__landsat_by_platform_collection_or_qa_asset():
    assert item_sensor(_item(platform="landsat-8")) == LANDSAT
    assert item_sensor(_item(platform="sentinel-2a")) == SENTINEL2
    item = _item()
    item.add_asset("qa_pixel", pystac.Asset("qa.tif"))
    assert item_sensor(item) == LANDSAT
    assert landsat_band("nir08") == "nir" and landsat_band("qa_pixel") == "scl"
    assert landsat_band("lwir11") is None and landsat_band("swir16") == "swir16"


def test_landsat_ref__oli_red_is_put_on_msi_scale_by_hls_coefficients():
    ref = landsat_ref(_item(platform="landsat-8"), "red", AssetRef("r.tif"), declared=False)
    dn = 12000
    oli = dn * 2.75e-05 - 0.2
    slope, intercept = HLS_OLI_FROM_MSI["red"]
    assert dn * ref.scale + ref.offset == pytest.approx((oli - intercept) / slope, abs=1e-9)
    # TM / ETM+: the Level-2 scaling only; a declared scale is kept
    tm = landsat_ref(_item(platform="landsat-5"), "red", AssetRef("r.tif"), declared=False)
    assert (tm.scale, tm.offset) == (2.75e-05, -0.2)
    own = landsat_ref(
        _item(platform="landsat-5"), "red", AssetRef("r.tif", scale=1.0), declared=True
    )
    assert (own.scale, own.offset) == (1.0, 0.0)


def test_landsat_ref__qa_pixel_is_decoded_with_fill_as_nodata():
    ref = landsat_ref(_item(platform="landsat-9"), "scl", AssetRef("qa.tif", nodata=None), True)
    assert ref.decode == LANDSAT_QA and ref.nodata == 1 and ref.scale == 1.0
