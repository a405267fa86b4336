"""The atmosphere of a generated scene: clouds, shadows, cirrus, haze, noise and SCL errors.

A ``CloudModel`` says how a family's sky behaves; ``render`` draws one acquisition with it.
``SMOOTH_BLOBS`` (the standard family): scene cloud fraction is drawn from a Beta
distribution whose mean follows the season (25 % in winter to 60 % in the July monsoon,
times ``cloud_scale``), so many scenes are clear and some nearly all cloud. Clouds are
smooth random blobs (visible 0.35-0.6, SWIR 0.25-0.4) with shadows displaced north-west.
SCL is imperfect like the real one: a 1-3 pixel ring of partial cloud (alpha 0.55
falling off) is blended into the surface and labelled clear; some scenes carry
unflagged haze (+0.02-0.06 blue, less green/red) or a few small unflagged cloud puffs.
A ``cumulus`` model instead fills the same fraction with clusters of small discs (fair-
weather cumulus fields): many edges, so the missed ring covers far more ground. Scenes are
rendered at 10 m; swir16/swir22 are 2x2 means, SCL is the top-left 10 m label of each
2x2 block.

Each scene carries a gain (~1 %) and white noise (0.002).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy import ndimage

from pipeline.scenes.grid import (
    random_field,
)
from pipeline.scenes.surface import (
    World,
    surface_reflectance,
)


@dataclass(frozen=True)
class CloudModel:
    """How a family's sky behaves: cloud shapes, season, shadows, SCL misses and haze."""

    cumulus: bool = False
    """Clusters of small cumulus cells (True) or smooth random blobs (False)."""
    season: tuple[float, float, float, float] = (0.25, 0.35, 205.0, 45.0)
    """Mean cloud fraction: base + peak * exp(-((doy - peak day) / width)² / 2)."""
    shadow: tuple[int, int] = (1, 1)
    """Where shadows fall from their cloud: (+1 north / -1 south, +1 west / -1 east)."""
    ring: tuple[int, int] = (1, 4)
    """Width of the missed ring of partial cloud labelled clear: integers in [low, high)."""
    haze: tuple[float, float, float] = (0.15, 0.02, 0.06)
    """Share of scenes with unflagged haze, and its blue offset range."""


SMOOTH_BLOBS = CloudModel()


@dataclass
class Scene:
    reflectance: np.ndarray  # (6, H, W) float32, top of the surface as seen (clouds included)
    scl: np.ndarray  # (H, W) uint8 at 10 m
    alpha: np.ndarray  # (H, W) cloud opacity (labelled or not)
    missed: dict  # what the SCL missed: ring width, puffs, haze


def _blobs(rng: np.random.Generator, shape: tuple[int, int], frac: float) -> np.ndarray:
    """Smooth random cloud blobs covering ``frac`` of the scene: their opacity (0 outside)."""
    h, w = shape
    alpha = np.zeros((h, w), np.float32)
    hl, wl = -(-h // 4), -(-w // 4)
    sig = rng.uniform(4, 10) * min(1.0, min(hl, wl) / 60)
    low = ndimage.gaussian_filter(rng.standard_normal((hl, wl)).astype(np.float32), sig)
    fld = ndimage.zoom(low, 4, order=1)[:h, :w]
    thr = np.quantile(low, 1 - frac) if frac < 0.97 else -np.inf
    core = fld > thr
    spread = float(np.std(low)) + 1e-6
    alpha[core] = 0.75 + 0.25 * np.clip((fld[core] - thr) / spread, 0, 1)
    return alpha


def _cumulus(rng: np.random.Generator, shape: tuple[int, int], frac: float) -> np.ndarray:
    """Clusters of small cumulus cells (discs of 2-9 px radius, opaque at the centre)
    added cluster by cluster until they cover ``frac`` of the scene."""
    h, w = shape
    alpha = np.zeros((h, w), np.float32)
    for _ in range(400):
        if (alpha > 0).mean() >= frac:
            break
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        spread = rng.uniform(8, 30)
        for _ in range(int(rng.integers(6, 25))):
            y, x = rng.normal(cy, spread), rng.normal(cx, spread)
            rad = rng.uniform(2, 9)
            k = int(rad) + 1
            y0, y1 = max(int(y) - k, 0), min(int(y) + k + 1, h)
            x0, x1 = max(int(x) - k, 0), min(int(x) + k + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d = np.hypot(yy - y, xx - x) / rad
            a = np.where(d < 1, 0.75 + 0.25 * (1 - d), 0).astype(np.float32)
            alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], a)
    return alpha


def _cast(alpha: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``alpha`` moved ``dy`` rows up and ``dx`` columns left (negative: down, right)."""
    h, w = alpha.shape
    out = np.zeros_like(alpha)

    def moved(d: int, n: int) -> tuple[slice, slice]:
        return (slice(d, n), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, n))

    (src_r, dst_r), (src_c, dst_c) = moved(dy, h), moved(dx, w)
    out[dst_r, dst_c] = alpha[src_r, src_c]
    return out


def render(world: World, when: date, rng: np.random.Generator, cloud_scale: float,
           clouds: CloudModel = SMOOTH_BLOBS) -> Scene:  # fmt: skip
    """One acquisition: surface, then shadows, clouds, haze, noise, and the SCL the
    processor would produce (which misses cloud edges, puffs and haze)."""
    h, w = world.shape
    day, doy = (when - world.start).days, when.timetuple().tm_yday
    r = surface_reflectance(world, day, doy)
    ndvi = (r[3] - r[2]) / (r[3] + r[2] + 1e-6)
    ndwi = (r[1] - r[3]) / (r[1] + r[3] + 1e-6)
    scl = np.full(r.shape[1], 5, np.uint8)
    scl[ndvi > 0.35] = 4
    scl[ndwi > 0.2] = 6
    scl = scl.reshape(h, w)
    r = r.reshape(6, h, w)
    missed: dict = {"ring": 0, "puffs": [], "haze": 0.0}
    # Cloud fraction: Beta around a seasonal mean (monsoon peak late July).
    base, peak, peak_doy, width = clouds.season
    mean = (base + peak * np.exp(-0.5 * ((doy - peak_doy) / width) ** 2)) * cloud_scale
    mean = float(np.clip(mean, 0, 0.95))
    frac = float(rng.beta(mean * 1.6, (1 - mean) * 1.6)) if mean > 0 else 0.0
    alpha = np.zeros((h, w), np.float32)
    if frac > 0.01:
        alpha = (_cumulus if clouds.cumulus else _blobs)(rng, (h, w), frac)
        core = alpha > 0
        # Shadows: the cloud cast away from the sun (standard: north-west, up and left).
        dy, dx = int(rng.integers(6, 20)), int(rng.integers(3, 12))
        sh = _cast(alpha, dy * clouds.shadow[0], dx * clouds.shadow[1])
        r *= 1 - 0.7 * sh
        scl[(sh > 0.5) & ~core] = 3
        # The missed ring: partial cloud blended in, labelled as the surface.
        k = int(rng.integers(*clouds.ring))
        prev = core
        for i in range(1, k + 1):
            nxt = ndimage.binary_dilation(prev)
            alpha[nxt & ~prev] = 0.55 * (1 - (i - 1) / k)
            prev = nxt
        missed["ring"] = k if core.any() and not core.all() else 0
        scl[core] = np.where(alpha[core] > 0.9, 9, 8)
    if rng.random() < 0.2:  # a few small puffs the SCL does not see
        for _ in range(int(rng.integers(1, 5))):
            cy, cx, rad = int(rng.integers(h)), int(rng.integers(w)), rng.uniform(2, 4)
            y0, y1, x0, x1 = max(cy - 8, 0), min(cy + 9, h), max(cx - 8, 0), min(cx + 9, w)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            a = rng.uniform(0.4, 0.8) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad**2))
            alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], a)
            missed["puffs"].append((cy, cx, rad))
    if alpha.any():
        b, sw = rng.uniform(0.35, 0.6), rng.uniform(0.25, 0.4)
        cloud = np.array([b, 0.985 * b, 0.97 * b, 0.95 * b, sw, 0.85 * sw], np.float32)
        r += alpha * (cloud[:, None, None] - r)
    if rng.random() < 0.1:  # thin cirrus, flagged 10
        cf = random_field(rng, (h, w), 12) > rng.uniform(0.5, 0.8)
        cf &= ~np.isin(scl, (3, 8, 9))
        r[:, cf] += np.array([0.05, 0.045, 0.04, 0.035, 0.02, 0.015], np.float32)[:, None]
        scl[cf] = 10
    if rng.random() < clouds.haze[0]:  # haze: not flagged
        hz = float(rng.uniform(*clouds.haze[1:]))
        grad = np.linspace(0.6, 1.0, w, dtype=np.float32)[None, :] * hz
        for band, k in enumerate((1.0, 0.6, 0.4, 0.15)):
            r[band] += k * grad
        missed["haze"] = hz
    r *= np.float32(rng.normal(1, 0.01))
    r += rng.standard_normal(r.shape, dtype=np.float32) * np.float32(0.002)
    return Scene(r, scl, alpha, missed)
