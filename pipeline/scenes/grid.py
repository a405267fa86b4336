"""The grid every generated scene is drawn on, and the random shapes and fields it draws with.

Grid: EPSG:32649 (UTM 49N), 10 m pixels, upper-left corner (640000 E, 3735000 N),
``shape`` = (rows, cols), split into two counties (鲁山县 west, 宝丰县 east) by a wavy
north-south line. ``LANDCOVER_CODES`` are the classes of ``landcover.tif``: the
background land cover before any site or dig.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import shapely
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import Polygon

EPSG = 32649
ORIGIN = (640_000.0, 3_735_000.0)  # upper-left corner (x, y), metres
PIXEL = 10.0
COUNTIES = ("鲁山县", "宝丰县")
LANDCOVER_CODES = {
    "forest": 1, "farmland": 2, "grassland": 3, "built": 4, "water": 5,
    "limestone": 6, "red_soil": 7, "burn_scar": 8,
}  # fmt: skip


def blob(rng: np.random.Generator, cx: float, cy: float, area: float, n: int = 14) -> Polygon:
    """An irregular star-shaped polygon of ``area`` m² around (cx, cy)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi / n, n)
    ph = rng.uniform(0, 2 * np.pi, 3)
    rad = 1 + 0.18 * np.sin(2 * ang + ph[0]) + 0.12 * np.sin(3 * ang + ph[1])
    rad *= rng.uniform(0.88, 1.12, n)
    rad *= 1 + 0.25 * np.sin(ang + ph[2])
    poly = Polygon(np.c_[np.cos(ang) * rad, np.sin(ang) * rad])
    k = np.sqrt(area / poly.area)
    return shapely.affinity.affine_transform(poly, [k, 0, 0, k, cx, cy])


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to its ranks in [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    r = np.empty(f.size, np.float32)
    r[np.argsort(f, axis=None)] = np.linspace(0, 1, f.size, dtype=np.float32)
    return r.reshape(shape)


_TO_WGS84 = Transformer.from_crs(EPSG, 4326, always_xy=True)


def to_wgs84(geom):
    g = shapely.transform(geom, _TO_WGS84.transform, interleaved=False)
    return shapely.set_precision(g, 1e-7)


def iso_date(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def random_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth random field with values ranked into [0, 1] (computed at 1/4 res if wide)."""
    if sigma <= 6:
        return _smooth_noise(rng, shape, sigma)
    h, w = -(-shape[0] // 4), -(-shape[1] // 4)
    low = _smooth_noise(rng, (h, w), sigma / 4)
    return ndimage.zoom(low, 4, order=1)[: shape[0], : shape[1]]
