"""A deterministic, seeded synthetic Sentinel-2 L2A scenario of an open-pit mining county.

``generate_scenario(out_dir, seed=...)`` writes a static STAC catalog of COGs plus the
site, permit, zone and AOI vector files and a ``truth.json`` answer key. The default
seed (``DEMO_SEED``) is the demo; fresh seeds give fresh layouts, landscape mixes and
cloud histories for honest accuracy evaluation.

The world
---------
Grid: EPSG:32649 (UTM 49N), 10 m pixels, upper-left corner (640000 E, 3735000 N),
``shape`` = (rows, cols), split into two counties (鲁山县 west, 宝丰县 east) by a wavy
north-south line. Surface reflectance of every pixel and date is a linear mix of
endmembers (blue, green, red, nir, swir16, swir22):

``R = soil + fc(t) * (canopy - soil)``

where ``fc`` is a seasonal fractional green cover read from a per-class phenology
table (day of year -> cover, shifted per farmland parcel by +/- 8 days):

- deciduous forest on the hills: fc 0.03 in winter (leaf-off, NDVI ~0.3) to 0.72 in
  summer (NDVI ~0.77), green-up in April, leaf fall late October.
- double-cropped farmland: winter wheat green March-May, harvest early June, bare
  ~3-4 weeks, maize July-September, harvest early October, ploughed bare soil until
  the wheat emerges in November. Farmland is bare twice a year, at the same season
  every year: the classic false alarm for an excavation detector.
- grassland: weak summer peak (NDVI ~0.65), dry and brownish in winter.
- stable surfaces (fc = 0): villages and roads (built-up), river and lake (NIR and
  SWIR very low, NDWI ~0.45), a white limestone outcrop (very bright, flat spectrum),
  red-soil patches (high red, low blue).
- a burn scar: a forest patch burned in the second year: NDVI collapses, dark (red
  0.05, NIR 0.12, SWIR1 0.18), then the forest mix returns linearly over ~2 years.

Each pixel carries a fixed texture (multiplicative, smooth + white, ~5 %) and each scene
a gain (~1 %) and white noise (0.002).

Mine sites are drawn as irregular polygons (1-15 ha at the default shape; areas scale
with the scene area, floor 0.2 x). Their surfaces: active pits stable bright bare rock
(a whiter variant for limestone), weathered bare ground with sparse weeds for closed
sites, bright waste piles, green dust-control netting (constant NDVI ~0.3, green > red,
SWIR as bare ground, no seasonal cycle). A restoration is a cover trajectory ``c(t)``
mixing the bare substrate with the target's own phenology
(``R = bare + c(t) * (target(t) - bare)``): restored sites reach full cover within
~1-1.5 seasons of ``restoration_start``; revegetating sites only reach c ~0.35 by the
end; regressed sites reach 0.75 then die back to 0.1 during the last season; a
landscape lake fills with water over 5-8 months.

Digs (new excavation) turn their pixels into fresh bright bare soil/rock (red
0.16-0.28, or a whiter limestone variant) from their start date on, optionally
spreading outward from a seed point over 1-4 months, and stay bare. At least one dig
of each violation is drawn; see ``truth.json``.

Climate (``climate`` > 0, off by default): each calendar year gets a vegetation vigour
``v = clip(1 + climate * N(0, 1), 0.55, 1.3)`` that multiplies every green cover, natural
and restored alike (``fc * v``): a drought year (v < 1) lowers the whole landscape's
summer NDVI, a wet year raises it. Restoration is judged against that background (the
recovery ratio), so a drought must not read as a failed restoration. The yearly values
are in ``truth.json`` (``climate``).

Training cast (``extra_sites`` > 0, 0 by default): that many more sites, drawn from
``_training_plans``: every recovery class on every target. For ``landscape`` the
restoration is a pit lake: filled (restored), still filling with only its deepest part
under water (revegetating), filled and then drained back to mud in the last season
(regressed), or filled and then dug again (disturbed). Green netting and bare or waste
ground on any target. The default cast is unchanged.

Atmosphere: scene cloud fraction is drawn from a Beta distribution whose mean follows
the season (25 % in winter to 60 % in the July monsoon, times ``cloud_scale``), so
many scenes are clear and some nearly all cloud. Clouds are smooth random blobs
(visible 0.35-0.6, SWIR 0.25-0.4) with shadows displaced north-west. SCL is imperfect
like the real one: a 1-3 pixel ring of partial cloud (alpha 0.55 falling off) is
blended into the surface and labelled clear; some scenes carry unflagged haze (+0.02-0.06
blue, less green/red) or a few small unflagged cloud puffs. Scenes are rendered at
10 m; swir16/swir22 are 2x2 means, SCL is the top-left 10 m label of each 2x2 block.

Encoding: DN = round(R * 10000) + 1000 from processing baseline 04.00 (2022-01-25) on,
DN = round(R * 10000) before; DN >= 1, 0 is nodata. ``raster:bands`` declares the
matching ``offset`` (-0.1 or 0.0) and ``scale`` 0.0001.

Item ids: ``S2A_49SDT_YYYYMMDD_0_L2A`` (or S2B; the tile code is synthetic).
``landcover.tif`` (uint8, codes in ``LANDCOVER_CODES``) is also written beside the
vectors: the background land cover before any site or dig, for evaluation.
A ``.complete`` marker (JSON, written last) tells ``ensure_demo_data`` the folder is whole.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point, Polygon, mapping
from shapely.ops import polylabel, unary_union

log = logging.getLogger(__name__)

__all__ = ["DEMO_SEED", "LANDCOVER_CODES", "ScenarioPaths", "ensure_demo_data", "generate_scenario"]

DEMO_SEED = 2024
GENERATOR_VERSION = 1
MARKER = ".complete"
EPSG = 32649
ORIGIN = (640_000.0, 3_735_000.0)  # upper-left corner (x, y), metres
PIXEL = 10.0
BASELINE_04 = date(2022, 1, 25)
COUNTIES = ("鲁山县", "宝丰县")
LANDCOVER_CODES = {
    "forest": 1, "farmland": 2, "grassland": 3, "built": 4, "water": 5,
    "limestone": 6, "red_soil": 7, "burn_scar": 8,
}  # fmt: skip

# Endmember surface reflectances: blue, green, red, nir, swir16, swir22.
EM = {
    "forest_canopy": (0.020, 0.045, 0.022, 0.36, 0.17, 0.075),
    "forest_floor": (0.045, 0.065, 0.085, 0.17, 0.24, 0.16),
    "crop_canopy": (0.025, 0.060, 0.030, 0.42, 0.20, 0.090),
    "farm_soil": (0.075, 0.100, 0.130, 0.19, 0.29, 0.24),
    "grass_canopy": (0.030, 0.065, 0.035, 0.35, 0.21, 0.10),
    "grass_soil": (0.065, 0.095, 0.120, 0.21, 0.31, 0.22),
    "water": (0.060, 0.070, 0.045, 0.025, 0.012, 0.008),
    "built": (0.110, 0.120, 0.135, 0.19, 0.24, 0.21),
    "rail": (0.080, 0.090, 0.100, 0.13, 0.16, 0.14),
    "limestone": (0.380, 0.410, 0.430, 0.45, 0.48, 0.40),
    "red_soil": (0.060, 0.100, 0.210, 0.27, 0.35, 0.29),
    "pit": (0.170, 0.200, 0.230, 0.27, 0.33, 0.28),
    "pit_limestone": (0.280, 0.310, 0.330, 0.35, 0.39, 0.33),
    "weathered": (0.120, 0.145, 0.170, 0.22, 0.29, 0.25),
    "waste": (0.190, 0.220, 0.250, 0.28, 0.33, 0.28),
    "dig": (0.140, 0.175, 0.210, 0.25, 0.32, 0.28),
    "dig_limestone": (0.300, 0.330, 0.350, 0.37, 0.41, 0.35),
    "burn": (0.035, 0.045, 0.050, 0.12, 0.18, 0.14),
    "netting": (0.070, 0.120, 0.090, 0.17, 0.30, 0.24),
}
# Phenology: (day of year knots, fractional green cover). 0 = no vegetation.
PHEN = {
    1: ((0, 95, 125, 150, 270, 300, 320, 340, 366),
        (0.03, 0.05, 0.55, 0.72, 0.72, 0.45, 0.12, 0.03, 0.03)),  # forest
    2: ((0, 45, 75, 100, 130, 148, 158, 180, 195, 215, 235, 255, 272, 280, 305, 320, 340, 366),
        (0.25, 0.25, 0.45, 0.8, 0.85, 0.5, 0.02, 0.02, 0.15, 0.7, 0.9, 0.75, 0.4, 0.02,
         0.02, 0.15, 0.25, 0.25)),  # farmland: wheat then maize
    3: ((0, 90, 130, 200, 260, 300, 330, 366),
        (0.12, 0.15, 0.5, 0.65, 0.55, 0.28, 0.12, 0.12)),  # grassland
}  # fmt: skip
TARGET_PHEN = {
    "forest": (1, "forest_canopy", "forest_floor"),
    "farmland": (2, "crop_canopy", "farm_soil"),
    "grassland": (3, "grass_canopy", "grass_soil"),
}
VILLAGES = ("袁家店", "张官营", "李家庄", "王湾", "赵庄", "马楼", "刘沟", "陈岗", "杨庄", "黄土岭",
            "孙店", "周营", "吴寨", "郑岭", "冯庄", "韩店", "朱沟", "何庄", "高村", "石门",
            "段店", "瓦屋", "下汤", "辛集", "张良", "熊背", "董周", "观音寺")  # fmt: skip
DIRS = ("东", "西", "南", "北", "东南", "西北", "东北", "西南")
MINERALS = ("灰岩矿", "建筑石料矿", "砂石矿", "铝土矿", "石英砂矿", "黏土矿")


@dataclass(frozen=True)
class ScenarioPaths:
    """Where a generated scenario lives."""

    root: Path
    """The scenario folder."""
    catalog: Path
    """``catalog/catalog.json`` of the static STAC catalog."""
    sites: Path
    """``sites.geojson`` (WGS84)."""
    permits: Path
    """``permits.geojson`` (WGS84)."""
    zones: Path
    """``zones.geojson`` (WGS84)."""
    aoi: Path
    """``aoi.geojson``: the county boundaries (WGS84)."""
    truth: Path
    """``truth.json``: the answer key."""

    @classmethod
    def under(cls, root: Path) -> ScenarioPaths:
        root = Path(root)
        return cls(
            root=root,
            catalog=root / "catalog" / "catalog.json",
            sites=root / "sites.geojson",
            permits=root / "permits.geojson",
            zones=root / "zones.geojson",
            aoi=root / "aoi.geojson",
            truth=root / "truth.json",
        )

    def run_overrides(self) -> dict[str, object]:
        """Config overrides that point a run at this scenario (absolute paths).

        The scenario's grid is small, so the tiles are 256 px (the default 512 would
        leave a 2-core machine one tile per date to work on).
        """
        return {
            "provider.catalog": str(self.catalog.resolve()),
            "inputs.sites": str(self.sites.resolve()),
            "inputs.permits": str(self.permits.resolve()),
            "inputs.zones": str(self.zones.resolve()),
            "aoi": str(self.aoi.resolve()),
            "grid.chunk_size": 256,
        }


@dataclass
class _Region:
    """Pixels whose surface follows a cover trajectory: bare -> target phenology."""

    idx: np.ndarray  # flat pixel indices
    bare: np.ndarray  # (6, n) substrate
    canopy: np.ndarray  # (6, n) target canopy
    soil: np.ndarray  # (6, n) target background
    phen: int  # 0 = no phenology (target is canopy == soil)
    offset: np.ndarray  # (n,) phenology shift, days
    knots: tuple[Sequence[float], Sequence[float]]  # (day since start, cover)
    jitter: np.ndarray  # (n,) per-pixel cover factor


@dataclass
class _Dig:
    idx: np.ndarray
    act_day: np.ndarray  # (n,) day since start on which each pixel turns bare
    em: np.ndarray  # (6, n)


@dataclass
class _World:
    shape: tuple[int, int]
    transform: Affine
    start: date
    end: date
    canopy: np.ndarray  # (6, H*W)
    soil: np.ndarray
    phen: np.ndarray  # (H*W,) int8
    offset: np.ndarray
    fcscale: np.ndarray
    landcover: np.ndarray  # (H, W) uint8
    regions: list[_Region] = field(default_factory=list)
    digs: list[_Dig] = field(default_factory=list)
    sites: list[dict] = field(default_factory=list)  # geojson features (UTM geometry)
    permits: list[dict] = field(default_factory=list)
    zones: list[dict] = field(default_factory=list)
    counties: list[tuple[str, Polygon]] = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    phen_index: dict = field(default_factory=dict)
    vigour: dict[int, float] = field(default_factory=dict)  # calendar year -> green cover factor


# --------------------------------------------------------------------------- geometry


def _blob(rng: np.random.Generator, cx: float, cy: float, area: float, n: int = 14) -> Polygon:
    """An irregular star-shaped polygon of ``area`` m² around (cx, cy)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi / n, n)
    ph = rng.uniform(0, 2 * np.pi, 3)
    rad = 1 + 0.18 * np.sin(2 * ang + ph[0]) + 0.12 * np.sin(3 * ang + ph[1])
    rad *= rng.uniform(0.88, 1.12, n)
    rad *= 1 + 0.25 * np.sin(ang + ph[2])
    poly = Polygon(np.c_[np.cos(ang) * rad, np.sin(ang) * rad])
    k = np.sqrt(area / poly.area)
    return shapely.affinity.affine_transform(poly, [k, 0, 0, k, cx, cy])


def _mask(geom, world_shape: tuple[int, int], transform: Affine) -> np.ndarray:
    if geom.is_empty:
        return np.zeros(world_shape, bool)
    return rasterize([(geom, 1)], out_shape=world_shape, transform=transform, dtype="uint8") > 0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to its ranks in [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    r = np.empty(f.size, np.float32)
    r[np.argsort(f, axis=None)] = np.linspace(0, 1, f.size, dtype=np.float32)
    return r.reshape(shape)


_TO_WGS84 = Transformer.from_crs(EPSG, 4326, always_xy=True)


def _wgs84(geom):
    g = shapely.transform(geom, _TO_WGS84.transform, interleaved=False)
    return shapely.set_precision(g, 1e-7)


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


# --------------------------------------------------------------------------- the world


def _em(name: str) -> np.ndarray:
    return np.asarray(EM[name], np.float32)


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth random field with values ranked into [0, 1] (computed at 1/4 res if wide)."""
    if sigma <= 6:
        return _smooth_noise(rng, shape, sigma)
    h, w = -(-shape[0] // 4), -(-shape[1] // 4)
    low = _smooth_noise(rng, (h, w), sigma / 4)
    return ndimage.zoom(low, 4, order=1)[: shape[0], : shape[1]]


@dataclass
class _Plan:
    """What one site is and how it behaves; position and shape come later."""

    category: str
    status: str
    klass: str
    target: str
    kind: str  # mine / restore / lake / netting / bare / waste
    area_ha: tuple[float, float]
    dig: str | None = None
    limestone: bool = False
    partner: _Plan | None = None  # overlap this site a little
    substrate: str = "weathered"
    geom: Polygon | None = None
    permit: Polygon | None = None
    pit: Polygon | None = None
    site_id: str = ""


def _site_plans(rng: np.random.Generator, extra_sites: int = 0) -> list[_Plan]:
    """The cast of sites: every category, status, target and recovery class, shuffled.

    ``extra_sites`` more come from ``_training_plans`` (none by default).
    """
    greens = [str(t) for t in rng.permutation(["forest", "farmland", "grassland"])]

    def any_target() -> str:
        return str(rng.choice(["forest", "farmland", "grassland", "landscape"]))

    def green() -> str:
        return str(rng.choice(greens))

    closed_illegal = _Plan("illegal", "closed", "unrestored", any_target(), "bare", (3, 8),
                           dig="illegal_site")  # fmt: skip
    plans = [
        _Plan("licensed", "producing", "unrestored", any_target(), "mine", (6, 12),
              dig="outside_permit"),
        _Plan("licensed", "producing", "unrestored", any_target(), "mine", (8, 13),
              dig="within_permit", limestone=bool(rng.random() < 0.5)),
        _Plan("licensed", "suspended", "unrestored", any_target(), "mine", (6, 12),
              dig="suspended_site"),
        _Plan("licensed", "producing", "unrestored", any_target(), "mine", (3, 10), limestone=True),
        _Plan("orphaned", "restoring", "restored", greens[0], "restore", (2, 10)),
        _Plan("illegal", "restoring", "restored", greens[1], "restore", (1, 6)),
        _Plan(str(rng.choice(["orphaned", "licensed"])), "restoring", "restored", greens[2],
              "restore", (2, 10)),
        _Plan("orphaned", "restoring", "disturbed", green(), "restore", (5, 12),
              dig="restored_land"),
        _Plan("orphaned", "restoring", "restored", "landscape", "lake", (3, 10)),
        _Plan("orphaned", "restoring", "revegetating", green(), "restore", (2, 10)),
        _Plan("illegal", "restoring", "revegetating", green(), "restore", (1, 5)),
        _Plan("orphaned", "restoring", "regressed", str(rng.choice(["forest", "grassland"])),
              "restore", (2, 8)),
        _Plan("illegal", "restoring", "regressed", green(), "restore", (1, 5)),
        _Plan("orphaned", "restoring", "unrestored", any_target(), "netting", (1, 5)),
        closed_illegal,
        _Plan("orphaned", "closed", "unrestored", any_target(), "bare", (2, 10)),
        _Plan("waste_pile", "closed", "unrestored", any_target(), "waste", (1, 4),
              partner=closed_illegal),
        _Plan("waste_pile", "restoring", str(rng.choice(["restored", "revegetating"])), green(),
              "restore", (1, 4), substrate="waste"),
        _Plan("illegal", "closed", "unrestored", any_target(), "bare", (1, 4)),
    ]  # fmt: skip
    pool = [
        lambda: _Plan("licensed", "producing", "unrestored", any_target(), "mine", (3, 10)),
        lambda: _Plan("licensed", "suspended", "unrestored", any_target(), "mine", (3, 8)),
        lambda: _Plan("orphaned", "restoring", "restored", green(), "restore", (1, 10)),
        lambda: _Plan("orphaned", "restoring", "revegetating", green(), "restore", (1, 10)),
        lambda: _Plan("illegal", "closed", "unrestored", any_target(), "bare", (1, 4)),
        lambda: _Plan("waste_pile", "closed", "unrestored", any_target(), "waste", (1, 3)),
        lambda: _Plan("waste_pile", "restoring", "revegetating", green(), "restore", (1, 3),
                      substrate="waste"),
        lambda: _Plan("illegal", "restoring", "regressed", green(), "restore", (1, 4)),
    ]  # fmt: skip
    for k in rng.integers(0, len(pool), int(rng.integers(2, 8))):
        plans.append(pool[int(k)]())
    if extra_sites:
        plans += _training_plans(rng, extra_sites)
    return [plans[int(i)] for i in rng.permutation(len(plans))]


def _training_plans(rng: np.random.Generator, n: int) -> list[_Plan]:
    """``n`` small sites for training the recovery model (see the module docstring).

    Weighted towards the classes a model finds hard (revegetating, restored,
    regressed); categories are drawn at random, so no class hides behind a category.
    """
    targets = ["forest", "farmland", "grassland", "landscape"]
    greens = targets[:3]

    def category() -> str:
        return str(rng.choice(["orphaned", "illegal", "licensed", "waste_pile"]))

    def pick(options: list[str]) -> str:
        return str(rng.choice(options))

    pool = [
        (3, lambda: _Plan(category(), "restoring", "restored", pick(greens), "restore", (1, 5))),
        (3, lambda: _Plan(category(), "restoring", "revegetating", pick(greens), "restore",
                          (1, 5), substrate=pick(["weathered", "waste"]))),
        (3, lambda: _Plan(category(), "restoring", "regressed", pick(greens), "restore", (1, 5))),
        (1, lambda: _Plan(category(), "restoring", "disturbed", pick(greens), "restore", (3, 6),
                          dig="restored_land")),
        (2, lambda: _Plan(category(), "restoring", "unrestored", pick(targets), "netting", (1, 4))),
        (1, lambda: _Plan(category(), "restoring", "restored", "landscape", "lake", (1, 5))),
        (1, lambda: _Plan(category(), "restoring", "revegetating", "landscape", "lake", (1, 5))),
        (1, lambda: _Plan(category(), "restoring", "regressed", "landscape", "lake", (1, 5))),
        (1, lambda: _Plan(category(), "restoring", "disturbed", "landscape", "lake", (3, 6),
                          dig="restored_land")),
        (1, lambda: _Plan(category(), "closed", "unrestored", pick(targets), "bare", (1, 4))),
        (1, lambda: _Plan("waste_pile", "closed", "unrestored", pick(targets), "waste", (1, 3))),
    ]  # fmt: skip
    weights = np.array([w for w, _ in pool], float)
    picks = rng.choice(len(pool), size=n, p=weights / weights.sum())
    return [pool[int(k)][1]() for k in picks]


def _names(rng: np.random.Generator, plans: list[_Plan]) -> list[str]:
    villages = list(rng.permutation(VILLAGES))
    out = []
    for i, p in enumerate(plans):
        v, d = villages[i % len(villages)], str(rng.choice(DIRS))
        if p.category == "waste_pile":
            out.append(f"{v}{d}废石堆")
        elif p.category == "illegal":
            out.append(f"{v}村{d}非法采石点")
        elif p.category == "orphaned":
            out.append(f"{v}{d}废弃{rng.choice(MINERALS)}")
        else:
            out.append(f"{v}村{d}{rng.choice(MINERALS)}")
    return out


class _Layout:
    """Draws the landscape, then places sites, zones and digs without conflicts."""

    def __init__(self, seed: int, shape: tuple[int, int], start: date, end: date) -> None:
        self.rng = np.random.default_rng([seed, 1])
        self.seed, self.shape, self.start, self.end = seed, shape, start, end
        self.T = (end - start).days
        h, w = shape
        self.transform = from_origin(*ORIGIN, PIXEL, PIXEL)
        self.x0, self.y1 = ORIGIN
        self.x1, self.y0 = self.x0 + w * PIXEL, self.y1 - h * PIXEL
        self.s_area = float(np.clip(h * w / (400 * 480), 0.1, 1.0))
        self.s_len = float(np.sqrt(self.s_area))
        self.forbidden: list = []  # geometries no site may touch

    # -- helpers
    def mask(self, geom) -> np.ndarray:
        return _mask(geom, self.shape, self.transform)

    def xy(self, r: np.ndarray | int, c: np.ndarray | int) -> tuple:
        return self.x0 + (np.asarray(c) + 0.5) * PIXEL, self.y1 - (np.asarray(r) + 0.5) * PIXEL

    def random_point(self, where: np.ndarray) -> tuple[float, float]:
        rr, cc = np.nonzero(where)
        i = int(self.rng.integers(len(rr)))
        x, y = self.xy(rr[i], cc[i])
        return float(x), float(y)

    def inside(self, geom, margin: float) -> bool:
        return shapely.box(self.x0, self.y0, self.x1, self.y1).buffer(-margin).contains(geom)

    # -- landscape
    def landscape(self) -> None:
        h, w = self.shape
        rng = self.rng
        lc = np.full(self.shape, LANDCOVER_CODES["farmland"], np.uint8)
        self.elev = _field(rng, self.shape, 0.12 * min(h, w))
        self.q_forest = rng.uniform(0.5, 0.72)
        q_grass = self.q_forest - rng.uniform(0.06, 0.15)
        lc[self.elev > q_grass] = LANDCOVER_CODES["grassland"]
        lc[self.elev > self.q_forest] = LANDCOVER_CODES["forest"]
        # Farmland parcels (Voronoi cells of ~3 ha): own phenology shift; some fallow.
        n_parcels = max(8, int(h * w * PIXEL**2 / 30_000))
        pts = rng.uniform([0, 0], [h, w], (n_parcels, 2))
        rr, cc = np.indices(self.shape)
        _, parcel = cKDTree(pts).query(np.c_[rr.ravel(), cc.ravel()])
        self.parcel_offset = rng.uniform(-8, 8, n_parcels).astype(np.float32)[parcel]
        fallow = (rng.random(n_parcels) < 0.08)[parcel].reshape(self.shape)
        lc[fallow & (lc == LANDCOVER_CODES["farmland"])] = LANDCOVER_CODES["grassland"]
        village = _field(rng, self.shape, 3 * self.s_len + 2) > rng.uniform(0.965, 0.985)
        lc[village & (lc == LANDCOVER_CODES["farmland"])] = LANDCOVER_CODES["built"]
        self.lc = lc
        # River (west-east, sinuous), road (north-south), railway (diagonal).
        xs = np.linspace(self.x0 - 50, self.x1 + 50, 80)
        ys = self.y0 + rng.uniform(0.15, 0.3) * (self.y1 - self.y0)
        amp, lam, ph = rng.uniform(60, 250) * self.s_len, rng.uniform(1500, 4000), rng.uniform(0, 7)
        self.river = LineString(np.c_[xs, ys + amp * np.sin(2 * np.pi * xs / lam + ph)])
        river_poly = self.river.buffer(max(15.0, 30 * self.s_len * rng.uniform(0.8, 1.3)))
        yr = np.linspace(self.y0 - 50, self.y1 + 50, 40)
        xr = self.x0 + rng.uniform(0.3, 0.7) * (self.x1 - self.x0)
        self.road = LineString(np.c_[xr + 80 * self.s_len * np.sin(yr / 900 + ph), yr])
        a, b = rng.uniform(0.2, 0.8, 2) * (self.y1 - self.y0) + self.y0
        self.rail = LineString([(self.x0 - 50, a), (self.x1 + 50, b)])
        lc[self.mask(self.road.buffer(8))] = LANDCOVER_CODES["built"]
        self.rail_mask = self.mask(self.rail.buffer(6))
        lc[self.rail_mask] = LANDCOVER_CODES["built"]
        lc[self.mask(river_poly)] = LANDCOVER_CODES["water"]
        low = (self.elev < q_grass) & ~self.mask(river_poly.buffer(200 * self.s_len))
        cx, cy = self.random_point(low)
        self.lake = _blob(rng, cx, cy, rng.uniform(3, 8) * 1e4 * self.s_area)
        lc[self.mask(self.lake)] = LANDCOVER_CODES["water"]
        self.landmarks = [river_poly, self.lake, self.road.buffer(15), self.rail.buffer(15)]
        # Stable bright confounders: a limestone outcrop on the hill edge, red-soil patches.
        edge = (np.abs(self.elev - q_grass) < 0.05) & (lc != LANDCOVER_CODES["water"])
        cx, cy = self.random_point(edge if edge.any() else lc != 5)
        self.limestone = _blob(rng, cx, cy, rng.uniform(1, 3) * 1e4 * self.s_area)
        lc[self.mask(self.limestone)] = LANDCOVER_CODES["limestone"]
        reds = []
        for _ in range(int(rng.integers(2, 4))):
            cx, cy = self.random_point(np.isin(lc, (2, 3)))
            reds.append(_blob(rng, cx, cy, rng.uniform(0.5, 2) * 1e4 * self.s_area))
        self.red_soil = unary_union(reds)
        m = self.mask(self.red_soil) & np.isin(lc, (2, 3))
        lc[m] = LANDCOVER_CODES["red_soil"]
        # Burn scar in the forest.
        forest = lc == LANDCOVER_CODES["forest"]
        cx, cy = self.random_point(forest if forest.any() else lc == 3)
        self.burn = _blob(rng, cx, cy, rng.uniform(3, 8) * 1e4 * self.s_area)
        self.burn_mask = self.mask(self.burn) & np.isin(lc, (1, 3))
        lc[self.burn_mask] = LANDCOVER_CODES["burn_scar"]
        self.burn_day = int(np.clip(365 + rng.uniform(60, 200), 0.3 * self.T, 0.8 * self.T))
        self.landmarks += [
            self.limestone.buffer(30),
            self.red_soil.buffer(30),
            self.burn.buffer(30),
        ]
        self.forbidden += self.landmarks

    def zones(self) -> list[tuple[str, object]]:
        rng, s = self.rng, self.s_len
        top = np.unravel_index(np.argmax(self.elev), self.shape)
        cx, cy = self.xy(*top)
        scene_box = shapely.box(self.x0, self.y0, self.x1, self.y1)
        area = (self.x1 - self.x0) * (self.y1 - self.y0)
        reserve = _blob(rng, float(cx), float(cy), 0.06 * area).intersection(scene_box)
        zones = [
            ("nature_reserve", reserve),
            ("river_buffer", self.river.buffer(80 * s + 30).intersection(scene_box)),
            ("road_buffer", self.road.buffer(60 * s).intersection(scene_box)),
            ("railway_buffer", self.rail.buffer(60 * s).intersection(scene_box)),
            ("scenic_area", self.lake.buffer(80 * s).intersection(scene_box)),
        ]
        far = self.mask(reserve.buffer(0.1 * (self.x1 - self.x0))) | (self.lc == 5)
        cx, cy = self.random_point(~far if (~far).any() else self.lc != 5)
        zones.append(
            ("ecological_redline", _blob(rng, cx, cy, 0.04 * area).intersection(scene_box))
        )
        self.forbidden += [g.buffer(20) for _, g in zones]
        self.zone_geoms = zones
        return zones

    # -- sites
    def place_sites(self, plans: list[_Plan]) -> None:
        rng = self.rng
        gap = 40 * self.s_len
        placed: list = []
        self.built = self.lc == LANDCOVER_CODES["built"]
        forbid = unary_union(self.forbidden)
        shapely.prepare(forbid)
        order = sorted(plans, key=lambda p: (p.partner is not None, -p.area_ha[1]))
        for p in order:
            area = np.exp(rng.uniform(*np.log(p.area_ha))) * 1e4 * self.s_area
            r = np.sqrt(area / np.pi)
            for attempt in range(800):
                reserve = (gap + (0.8 * r if p.kind == "mine" else 0)) * (1 - attempt / 900)
                if p.partner is not None:
                    q = p.partner.geom
                    rq = np.sqrt(q.area / np.pi)
                    th = rng.uniform(0, 2 * np.pi)
                    d = (rq + r) * rng.uniform(0.75, 0.9)
                    cx, cy = q.centroid.x + d * np.cos(th), q.centroid.y + d * np.sin(th)
                else:
                    cx = rng.uniform(self.x0 + 2 * r, self.x1 - 2 * r)
                    cy = rng.uniform(self.y0 + 2 * r, self.y1 - 2 * r)
                core = _blob(rng, cx, cy, area)
                geom = core.buffer(max(10.0, 15 * self.s_len)) if p.kind == "mine" else core
                if not self.inside(geom.buffer(max(reserve - gap, 0.0)), 2 * PIXEL):
                    continue
                if forbid.intersects(geom.buffer(reserve)):
                    continue
                others = [g for q, g in placed if q is not p.partner]
                if any(g.intersects(geom.buffer(reserve)) for g in others):
                    continue
                if p.partner is not None:
                    ov = geom.intersection(p.partner.geom).area / min(
                        geom.area, p.partner.geom.area
                    )
                    if not 0.02 < ov < 0.15:
                        continue
                if self.built[self.mask(geom)].mean() > 0.05:
                    continue
                break
            else:
                raise ValueError(
                    f"cannot place all sites in a scene of shape {self.shape} ({p.kind}, "
                    f"{p.area_ha}, partner={p.partner is not None}, placed={len(placed)})"
                )
            p.geom = geom
            if p.kind == "mine":
                p.permit = core
                frac = rng.uniform(0.5, 0.6) if p.dig else rng.uniform(0.8, 0.9)
                p.pit = self.sub_blob(
                    core, frac, shrink=10 * self.s_len, push=0.35 if p.dig else 0.1
                )
            elif p.kind == "bare" and p.dig:
                p.pit = self.sub_blob(core, 0.55, shrink=8, push=0.35)
            placed.append((p, geom.buffer(gap)))

    def sub_blob(self, outer: Polygon, frac: float, shrink: float, push: float = 0.3) -> Polygon:
        """A blob of ``frac`` of ``outer``'s area, pushed to one side, inside ``outer``."""
        r = np.sqrt(outer.area / np.pi)
        th = self.rng.uniform(0, 2 * np.pi)
        c = outer.centroid
        k = float(np.sqrt(frac))
        origin = Point(c.x + push * r * np.cos(th), c.y + push * r * np.sin(th))
        inner = shapely.affinity.scale(outer, k, k, origin=origin)
        out = inner.intersection(outer.buffer(-shrink))
        return max(getattr(out, "geoms", [out]), key=lambda g: g.area)

    # -- digs
    def dig_window(self) -> tuple[int, int]:
        return int(min(365, 0.55 * self.T)), int(self.T - max(45, 0.1 * self.T))

    def free_dig(self, klass: tuple[int, ...], area: float, inside=None, avoid=None) -> Polygon:
        """A blob on land cover ``klass`` away from every site, permit and dig."""
        rng = self.rng
        where = np.isin(self.lc, klass)
        if inside is not None:
            where &= self.mask(inside.buffer(-np.sqrt(area)))
        if not where.any():
            where = np.isin(self.lc, (1, 2, 3))
        for _ in range(800):
            cx, cy = self.random_point(where)
            g = _blob(rng, cx, cy, area, n=10)
            if inside is not None and not inside.contains(g):
                continue
            if avoid.intersects(g) or not self.inside(g, 3 * PIXEL):
                continue
            m = self.mask(g)
            if m.sum() == 0 or np.isin(self.lc[m], klass).mean() < 0.7:
                continue
            return g
        raise ValueError(f"cannot place a dig in a scene of shape {self.shape}")


def _build_world(
    seed: int,
    shape: tuple[int, int],
    start: date,
    end: date,
    *,
    climate: float = 0.0,
    extra_sites: int = 0,
) -> _World:
    """Draw land cover, sites, permits, zones, digs, surfaces and truth of one scenario."""
    lay = _Layout(seed, shape, start, end)
    rng, T, n = lay.rng, lay.T, shape[0] * shape[1]
    lay.landscape()
    zones = lay.zones()
    plans = _site_plans(rng, extra_sites)
    lay.place_sites(plans)
    names = _names(rng, plans)

    # Counties: split by a wavy north-south line.
    xs = lay.x0 + rng.uniform(0.4, 0.6) * (lay.x1 - lay.x0)
    ys = np.linspace(lay.y1 - 20, lay.y0 + 20, 9)
    line = [(float(xs + rng.uniform(-150, 150) * lay.s_len), float(y)) for y in ys]
    west = Polygon([(lay.x0 + 20, lay.y1 - 20), *line, (lay.x0 + 20, lay.y0 + 20)])
    east = Polygon([*line, (lay.x1 - 20, lay.y0 + 20), (lay.x1 - 20, lay.y1 - 20)])
    counties = [(COUNTIES[0], west), (COUNTIES[1], east)]

    def county_of(g) -> str:
        return COUNTIES[0] if west.contains(g.representative_point()) else COUNTIES[1]

    # Base surface from land cover.
    lc = lay.lc.ravel()
    canopy = np.zeros((6, n), np.float32)
    soil = np.zeros((6, n), np.float32)
    phen = np.zeros(n, np.int8)
    offset = rng.normal(0, 3, n).astype(np.float32)
    fcscale = np.clip(rng.normal(1, 0.06, n), 0.8, 1.15).astype(np.float32)
    cover = {1: (1, "forest_canopy", "forest_floor"), 8: (1, "forest_canopy", "forest_floor"),
             2: (2, "crop_canopy", "farm_soil"), 3: (3, "grass_canopy", "grass_soil"),
             4: (0, "built", "built"), 5: (0, "water", "water"), 6: (0, "limestone", "limestone"),
             7: (0, "red_soil", "red_soil")}  # fmt: skip
    for code, (ph, ca, so) in cover.items():
        m = lc == code
        phen[m], canopy[:, m], soil[:, m] = ph, _em(ca)[:, None], _em(so)[:, None]
    farm = lc == 2
    offset[farm] = lay.parcel_offset[farm]
    rail = lay.rail_mask.ravel()
    canopy[:, rail] = soil[:, rail] = _em("rail")[:, None]
    tex = _field(rng, shape, 2.0).ravel() * 0.08 + 0.96
    tex = (tex * rng.normal(1, 0.02, n)).astype(np.float32)

    def static(m: np.ndarray, em: np.ndarray, ph: int = 0, scale: float = 0.0) -> None:
        canopy[:, m] = _em("grass_canopy")[:, None] if ph else em[:, None]
        soil[:, m] = em[:, None]
        phen[m], fcscale[m] = ph, scale

    world = _World(shape, lay.transform, start, end, canopy, soil, phen, offset, fcscale,
                   lay.lc.copy())  # fmt: skip
    truth_sites, site_feats, permit_feats = [], [], []
    lo, hi = lay.dig_window()
    green_by: dict[str, int] = {}
    for i, p in enumerate(sorted(plans, key=lambda p: p.geom.centroid.x)):
        p.site_id = f"S{i + 1:02d}"
    for p, name in zip(plans, names, strict=True):
        m = lay.mask(p.geom).ravel()
        notes, restoration_start = "", None
        if p.kind == "mine":
            pit_em = _em("pit_limestone" if p.limestone else "pit")
            pit = lay.mask(p.pit).ravel()
            if p.status == "suspended":
                static(pit, 0.5 * pit_em + 0.5 * _em("weathered"), 3, 0.08)
                notes = "suspended: pit weathering, sparse weeds"
            else:
                static(pit, pit_em)
                notes = "producing: stable bare pit" + (" (limestone)" if p.limestone else "")
            pid = f"P{len(permit_feats) + 1:02d}"
            y0 = int(rng.integers(2012, 2020))
            permit_feats.append({"permit_id": pid, "site_id": p.site_id,
                                 "holder": f"{county_of(p.geom)[:2]}{name[:2]}建材有限公司",
                                 "valid_from": f"{y0}-{rng.integers(1, 13):02d}-01",
                                 "valid_to": f"{y0 + int(rng.integers(10, 16))}-12-31",
                                 "geometry": p.permit})  # fmt: skip
            p.permit_id = pid  # type: ignore[attr-defined]
        elif p.kind == "bare":
            where = lay.mask(p.pit).ravel() if p.pit is not None else m
            static(where, _em("weathered"), 3, 0.2)
            notes = "closed, never restored: weathered bare ground, sparse weeds"
        elif p.kind == "waste":
            static(m, _em("waste"))
            notes = "waste-rock pile, stable"
        elif p.kind == "netting":
            static(m, _em("netting"))
            restoration_start = start - timedelta(days=int(rng.integers(30, 300)))
            notes = "covered with green dust-control netting: no seasonal cycle, bare beneath"
        else:
            r0, knots = _trajectory(rng, p, T)
            restoration_start = start + timedelta(days=r0)
            idx = np.flatnonzero(m)
            bare = _em(p.substrate)[:, None] * tex[idx]
            if p.kind == "lake" and p.klass == "revegetating":
                # Still filling: only the deepest part of the pit is under water yet.
                deep = lay.mask(lay.sub_blob(p.geom, rng.uniform(0.3, 0.45), shrink=5)).ravel()
                idx = np.flatnonzero(m & deep)
                bare = _em(p.substrate)[:, None] * tex[idx]
            if p.kind == "lake":
                tgt = _em("water")[:, None] * np.ones(len(idx), np.float32)
                ph, ca, so = 0, tgt, tgt
                notes = f"pit fills with water from {restoration_start} (landscape lake)"
                if p.klass != "restored":
                    notes = f"{p.klass} landscape lake: water cover trajectory {knots}"
            else:
                ph, can, soi = TARGET_PHEN[p.target]
                ca, so = _em(can)[:, None] * tex[idx], _em(soi)[:, None] * tex[idx]
                notes = f"{p.klass}: {p.target} cover trajectory {knots}"
            jit = np.clip(rng.normal(0.96, 0.04, len(idx)), 0.8, 1.0).astype(np.float32)
            off = rng.normal(0, 2, len(idx)).astype(np.float32)
            world.regions.append(_Region(idx, bare, ca, so, ph, off, knots, jit))
            green_by[p.site_id] = int(knots[0][1])
            static(m, _em(p.substrate))
        site_feats.append(
            {
                "site_id": p.site_id,
                "name": name,
                "county": county_of(p.geom),
                "category": p.category,
                "status": p.status,
                "target": p.target,
                "restoration_start": _iso(restoration_start),
                "geometry": p.geom,
            }
        )
        truth_sites.append({"site_id": p.site_id, "recovery_class": p.klass,
                            "netting": p.kind == "netting", "notes": notes})  # fmt: skip
    # Burn scar: forest -> dark char -> forest again over ~2 years.
    bidx = np.flatnonzero(lay.burn_mask.ravel())
    bd = lay.burn_day
    world.regions.insert(0, _Region(bidx, _em("burn")[:, None] * tex[bidx],
                                    canopy[:, bidx] * tex[bidx],
                                    soil[:, bidx] * tex[bidx], 1, offset[bidx],
                                    ((bd - 1, bd, bd + 45, bd + 730), (1, 0, 0, 1)),
                                    np.ones(len(bidx), np.float32)))  # fmt: skip
    world.canopy, world.soil = canopy * tex, soil * tex
    world.phen_index = {p: np.flatnonzero(phen == p) for p in PHEN}
    if climate > 0:
        years = range(start.year, end.year + 1)
        draws = np.random.default_rng([seed, 11]).standard_normal(len(years))
        world.vigour = {
            y: round(float(np.clip(1 + climate * d, 0.55, 1.3)), 3)
            for y, d in zip(years, draws, strict=True)
        }

    digs = _place_digs(lay, plans, world, tex, green_by, lo, hi, county_of)
    zone_feats = [{"zone_id": f"Z{i + 1:02d}", "kind": k, "geometry": g}
                  for i, (k, g) in enumerate(zones)]  # fmt: skip
    for d in digs:
        d["zone_ids"] = [z["zone_id"] for z in zone_feats
                         if z["geometry"].intersection(d["geometry"]).area > 1.0]  # fmt: skip
    sorted_sites = sorted(
        zip(site_feats, truth_sites, strict=True), key=lambda st: st[0]["site_id"]
    )
    world.sites = [s for s, _ in sorted_sites]
    world.permits, world.zones, world.counties = permit_feats, zone_feats, counties
    netting = [p for p in plans if p.kind == "netting"]
    world.truth = {
        "seed": seed, "start": start.isoformat(), "end": end.isoformat(),
        "sites": [t for _, t in sorted_sites],
        "digs": digs,
        "climate": {str(y): v for y, v in world.vigour.items()},
        "confounders": [
            {"kind": "harvest", "geometry": None, "date": None,
             "notes": "all farmland bare ~early June (2-4 weeks) and Oct-Nov every year"},
            {"kind": "leaf_off", "geometry": None, "date": None,
             "notes": "deciduous forest NDVI ~0.3 from November to early April"},
            {"kind": "burn_scar", "geometry": lay.burn, "date": _iso(start + timedelta(days=bd)),
             "notes": "forest burned; dark, NDVI collapses, greens back over ~2 years"},
            {"kind": "limestone", "geometry": lay.limestone, "date": None,
             "notes": "natural white limestone outcrop, stable"},
            {"kind": "red_soil", "geometry": lay.red_soil, "date": None,
             "notes": "natural red-soil patches, stable bare"},
            *({"kind": "netting", "geometry": p.geom, "date": None, "notes": p.site_id}
              for p in netting),
        ],
    }  # fmt: skip
    return world


def _trajectory(rng: np.random.Generator, p: _Plan, T: int) -> tuple[int, tuple]:
    """Restoration start (days since start) and cover knots (days, cover) for a site."""
    if p.kind == "lake" and p.klass == "revegetating":
        r0 = int(rng.uniform(0.6, 0.8) * T)
        return r0, ((r0, T), (0.0, 1.0))
    if p.kind == "lake" and p.klass == "regressed":
        # Filled, then drained or leaking away during the last season: back to mud.
        r0 = int(rng.uniform(0.02, 0.12) * T)
        fill = int(min(rng.uniform(150, 240), 0.3 * T))
        d0 = int(max(r0 + fill + 30, T - min(150, 0.25 * T)))
        return r0, ((r0, r0 + fill, d0, d0 + int(min(90, 0.7 * (T - d0)))), (0, 1, 1, 0.1))
    if p.kind == "lake" and p.klass == "disturbed":
        r0 = int(rng.uniform(0.02, 0.08) * T)
        return r0, ((r0, r0 + int(min(rng.uniform(150, 240), 0.3 * T))), (0.0, 1.0))
    if p.kind == "lake":
        r0 = int(rng.uniform(0.05, 0.4) * T)
        return r0, ((r0, r0 + int(min(rng.uniform(150, 240), 0.3 * T))), (0.0, 1.0))
    if p.klass in ("restored", "disturbed"):
        r0 = int(rng.uniform(0.02, 0.08 if p.klass == "disturbed" else 0.2) * T)
        ramp = int(min(420, 0.35 * T) * rng.uniform(0.8, 1.0))
        return r0, ((r0, r0 + ramp), (0.0, 1.0))
    if p.klass == "revegetating":
        r0 = int(rng.uniform(0.1, 0.5) * T)
        return r0, ((r0, T), (0.0, float(rng.uniform(0.3, 0.4))))
    if p.klass == "regressed":
        r0 = int(rng.uniform(0.02, 0.12) * T)
        ramp = int(min(360, 0.3 * T))
        d0 = int(max(r0 + ramp + 30, T - min(150, 0.25 * T)))
        return r0, ((r0, r0 + ramp, d0, d0 + int(min(90, 0.7 * (T - d0)))), (0, 0.75, 0.75, 0.1))
    raise ValueError(p.klass)


def _place_digs(lay: _Layout, plans: list[_Plan], world: _World, tex: np.ndarray,
                green_by: dict[str, int], lo: int, hi: int, county_of) -> list[dict]:  # fmt: skip
    """Draw one dig per violation kind (plus the site digs the plans ask for)."""
    rng, T = lay.rng, lay.T
    s_dig = lay.s_len
    taken = [p.geom.buffer(60 * s_dig) for p in plans]
    taken += [p.permit.buffer(60 * s_dig) for p in plans if p.permit is not None]
    out: list[dict] = []

    def area() -> float:
        return float(rng.uniform(0.3, 3.0) * 1e4 * s_dig)

    def room_dig(room, near, a: float):
        room = max(getattr(room, "geoms", [room]), key=lambda g: g.area)
        a = min(a, 0.5 * room.area)
        minx, miny, maxx, maxy = room.bounds
        if near is None:
            pts = [Point(x, y) for x, y in rng.uniform((minx, miny), (maxx, maxy), (200, 2))]
            c = next((q for q in pts if room.buffer(-np.sqrt(a / np.pi)).contains(q)),
                     polylabel(room, 1.0))  # fmt: skip
        else:
            c = polylabel(room, 1.0)
        g = _blob(rng, c.x, c.y, a, n=10).intersection(room)
        g = max(getattr(g, "geoms", [g]), key=lambda h: h.area)
        seed = near.exterior.interpolate(near.exterior.project(c)) if near is not None else c
        return g, seed

    def add(violation: str, g, seed: Point, plan: _Plan | None, limestone: bool = False,
            start_lo: int = lo) -> None:  # fmt: skip
        s0 = int(rng.uniform(min(start_lo, hi), hi))
        growth = int(min(rng.uniform(30, 120), 0.4 * (T - s0))) if rng.random() < 0.5 else 0
        m = lay.mask(g)
        if not m.any():
            m = rasterize([(g, 1)], out_shape=lay.shape, transform=lay.transform,
                          all_touched=True) > 0  # fmt: skip
        idx = np.flatnonzero(m)
        rr, cc = np.divmod(idx, lay.shape[1])
        x, y = lay.xy(rr, cc)
        dist = np.hypot(x - seed.x, y - seed.y)
        act = s0 + (growth * dist / max(dist.max(), 1.0) if growth else 0 * dist)
        if limestone:
            em = _em("dig_limestone")[:, None] * rng.uniform(0.95, 1.1)
        else:
            em = _em("dig")[:, None] * rng.uniform(0.75, 1.35)
        world.digs.append(_Dig(idx, act.astype(np.float32), (em * tex[idx]).astype(np.float32)))
        taken.append(g.buffer(60 * s_dig))
        codes = {v: k for k, v in LANDCOVER_CODES.items()}
        before = codes.get(int(np.bincount(lay.lc.ravel()[idx]).argmax()), "other")
        out.append({"dig_id": "", "start": _iso(lay.start + timedelta(days=s0)),
                    "violation": violation, "site_id": plan.site_id if plan else None,
                    "permit_id": getattr(plan, "permit_id", None) if plan else None,
                    "zone_ids": [], "county": county_of(g), "geometry": g,
                    "area_m2": round(float(g.area), 1), "growth_days": growth,
                    "material": "limestone" if limestone else "soil_rock",
                    "pixels": len(idx), "landcover_before": before})  # fmt: skip

    for p in plans:
        if p.dig == "outside_permit":
            c, pc = p.permit.centroid, p.pit.centroid
            v = np.array([pc.x - c.x, pc.y - c.y])
            v = v / (np.hypot(*v) or 1.0)
            far = Point(c.x + v[0] * 1e4, c.y + v[1] * 1e4)
            bp = p.permit.exterior.interpolate(p.permit.exterior.project(far))
            a = area()
            rd = np.sqrt(a / np.pi)
            g = _blob(rng, bp.x + v[0] * 0.45 * rd, bp.y + v[1] * 0.45 * rd, a, n=10)
            g = g.difference(p.permit)
            add("outside_permit", max(getattr(g, "geoms", [g]), key=lambda h: h.area), bp, p)
        elif p.dig in ("within_permit", "suspended_site"):
            room = p.permit.buffer(-5).difference(p.pit)
            g, seed = room_dig(room, p.pit, area())
            add(p.dig, g, seed, p, limestone=p.limestone)
        elif p.dig == "illegal_site":
            room = p.geom.buffer(-5).difference(p.pit)
            a = float(rng.uniform(0.05, 0.2) * 1e4)
            g, seed = room_dig(room, p.pit, a)
            add("illegal_site", g, seed, p)
        elif p.dig == "restored_land":
            room = p.geom.buffer(-15 * s_dig)
            g, seed = room_dig(room, None, min(area(), 0.25 * p.geom.area))
            add("restored_land", g, seed, p, start_lo=max(lo, green_by[p.site_id] + 30))
    reserve = next(g for k, g in lay.zone_geoms if k == "nature_reserve")
    base_avoid = [*lay.landmarks]
    a = area()
    g = lay.free_dig((1, 3), a, inside=reserve, avoid=unary_union(base_avoid + taken))
    add("no_mining_zone", g, g.centroid, None)
    zones_all = [z.buffer(20) for _, z in lay.zone_geoms]
    for klass in ((1,), (2,)):
        a = area()
        avoid = unary_union(base_avoid + taken + zones_all)
        g = lay.free_dig(klass, a, avoid=avoid)
        add("unregistered", g, g.centroid, None, limestone=klass == (1,) and rng.random() < 0.5)
    out.sort(key=lambda d: (d["start"], d["violation"]))
    for i, d in enumerate(out):
        d["dig_id"] = f"D{i + 1:02d}"
    return out


# --------------------------------------------------------------------------- scenes


@dataclass
class _Scene:
    reflectance: np.ndarray  # (6, H, W) float32, top of the surface as seen (clouds included)
    scl: np.ndarray  # (H, W) uint8 at 10 m
    alpha: np.ndarray  # (H, W) cloud opacity (labelled or not)
    missed: dict  # what the SCL missed: ring width, puffs, haze


def _surface(world: _World, day: int, doy: int) -> np.ndarray:
    """Cloud-free surface reflectance (6, H*W) on ``day`` (days since start)."""
    fc = np.zeros(world.phen.size, np.float32)
    vigour = world.vigour.get((world.start + timedelta(days=day)).year, 1.0)
    for p, (kx, ky) in PHEN.items():
        idx = world.phen_index[p]
        fc[idx] = np.interp((doy - world.offset[idx]) % 365, kx, ky) * world.fcscale[idx]
        if vigour != 1.0:
            fc[idx] = np.minimum(fc[idx] * np.float32(vigour), 1.0)
    r = world.soil + fc * (world.canopy - world.soil)
    for reg in world.regions:
        c = np.interp(day, *reg.knots) * reg.jitter
        veg = reg.canopy
        if reg.phen:
            f = np.interp((doy - reg.offset) % 365, *PHEN[reg.phen]).astype(np.float32)
            if vigour != 1.0:
                f = np.minimum(f * np.float32(vigour), 1.0)
            veg = reg.soil + f * (reg.canopy - reg.soil)
        r[:, reg.idx] = reg.bare + c * (veg - reg.bare)
    for dig in world.digs:
        on = dig.act_day <= day
        if on.any():
            r[:, dig.idx[on]] = dig.em[:, on]
    return r


def _render(world: _World, when: date, rng: np.random.Generator, cloud_scale: float) -> _Scene:
    """One acquisition: surface, then shadows, clouds, haze, noise, and the SCL the
    processor would produce (which misses cloud edges, puffs and haze)."""
    h, w = world.shape
    day, doy = (when - world.start).days, when.timetuple().tm_yday
    r = _surface(world, day, doy)
    ndvi = (r[3] - r[2]) / (r[3] + r[2] + 1e-6)
    ndwi = (r[1] - r[3]) / (r[1] + r[3] + 1e-6)
    scl = np.full(r.shape[1], 5, np.uint8)
    scl[ndvi > 0.35] = 4
    scl[ndwi > 0.2] = 6
    scl = scl.reshape(h, w)
    r = r.reshape(6, h, w)
    missed: dict = {"ring": 0, "puffs": [], "haze": 0.0}
    # Cloud fraction: Beta around a seasonal mean (monsoon peak late July).
    mean = (0.25 + 0.35 * np.exp(-0.5 * ((doy - 205) / 45) ** 2)) * cloud_scale
    mean = float(np.clip(mean, 0, 0.95))
    frac = float(rng.beta(mean * 1.6, (1 - mean) * 1.6)) if mean > 0 else 0.0
    alpha = np.zeros((h, w), np.float32)
    if frac > 0.01:
        hl, wl = -(-h // 4), -(-w // 4)
        sig = rng.uniform(4, 10) * min(1.0, min(hl, wl) / 60)
        low = ndimage.gaussian_filter(rng.standard_normal((hl, wl)).astype(np.float32), sig)
        fld = ndimage.zoom(low, 4, order=1)[:h, :w]
        thr = np.quantile(low, 1 - frac) if frac < 0.97 else -np.inf
        core = fld > thr
        spread = float(np.std(low)) + 1e-6
        alpha[core] = 0.75 + 0.25 * np.clip((fld[core] - thr) / spread, 0, 1)
        # Shadows: the cloud cast north-west (up and left), darkening the surface.
        dy, dx = int(rng.integers(6, 20)), int(rng.integers(3, 12))
        sh = np.zeros((h, w), np.float32)
        sh[: h - dy, : w - dx] = alpha[dy:, dx:]
        r *= 1 - 0.7 * sh
        scl[(sh > 0.5) & ~core] = 3
        # The missed ring: partial cloud blended in, labelled as the surface.
        k = int(rng.integers(1, 4))
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
        cf = _field(rng, (h, w), 12) > rng.uniform(0.5, 0.8)
        cf &= ~np.isin(scl, (3, 8, 9))
        r[:, cf] += np.array([0.05, 0.045, 0.04, 0.035, 0.02, 0.015], np.float32)[:, None]
        scl[cf] = 10
    if rng.random() < 0.15:  # haze: not flagged
        hz = float(rng.uniform(0.02, 0.06))
        grad = np.linspace(0.6, 1.0, w, dtype=np.float32)[None, :] * hz
        for band, k in enumerate((1.0, 0.6, 0.4, 0.15)):
            r[band] += k * grad
        missed["haze"] = hz
    r *= np.float32(rng.normal(1, 0.01))
    r += rng.standard_normal(r.shape, dtype=np.float32) * np.float32(0.002)
    return _Scene(r, scl, alpha, missed)


def _dates(start: date, end: date, revisit_days: int, rng: np.random.Generator) -> list[date]:
    out, d = [], start
    while d <= end:
        j = d + timedelta(days=int(rng.integers(0, 2)))
        if j <= end and (not out or j > out[-1]):
            out.append(j)
        d += timedelta(days=revisit_days)
    return out


# --------------------------------------------------------------------------- writing

_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
_COG = {"driver": "COG", "compress": "DEFLATE", "predictor": 2, "blocksize": 256,
        "overviews": "NONE"}  # fmt: skip
_BAND_IDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
             "swir22": "B12"}  # fmt: skip


def _write_tif(path: Path, arr: np.ndarray, transform: Affine) -> None:
    with rasterio.open(path, "w", height=arr.shape[0], width=arr.shape[1], count=1,
                       dtype=arr.dtype, crs=f"EPSG:{EPSG}", transform=transform, nodata=0,
                       **_COG) as dst:  # fmt: skip
        dst.write(arr, 1)


def _encode(r: np.ndarray, offset_dn: int) -> np.ndarray:
    return np.clip(np.rint(r * 10000) + offset_dn, 1, 65535).astype(np.uint16)


def _write_item(items_dir: Path, world: _World, when: date, k: int, scene: _Scene,
                footprint: dict, bbox: list[float]) -> tuple[str, float]:  # fmt: skip
    """Write one acquisition's COGs and item JSON; returns (item id, cloud cover %)."""
    platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
    item_id = f"S2{platform[-1].upper()}_49SDT_{when:%Y%m%d}_0_L2A"
    d = items_dir / item_id
    d.mkdir(parents=True, exist_ok=True)
    new_baseline = when >= BASELINE_04
    off_dn = 1000 if new_baseline else 0
    h, w = world.shape
    t10, t20 = world.transform, world.transform * Affine.scale(2)
    r = scene.reflectance
    for b, name in enumerate(("blue", "green", "red", "nir")):
        _write_tif(d / f"{name}.tif", _encode(r[b], off_dn), t10)
    for b, name in ((4, "swir16"), (5, "swir22")):
        agg = r[b].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        _write_tif(d / f"{name}.tif", _encode(agg, off_dn), t20)
    scl20 = np.ascontiguousarray(scene.scl[::2, ::2])
    _write_tif(d / "scl.tif", scl20, t20)
    cover = round(float(np.isin(scl20, (3, 8, 9, 10)).mean() * 100), 2)
    assets = {}
    for name in (*_BAND_IDS, "scl"):
        res = 10 if name in ("blue", "green", "red", "nir") else 20
        tr = t10 if res == 10 else t20
        band: dict = {"nodata": 0, "data_type": "uint8" if name == "scl" else "uint16",
                      "spatial_resolution": res}  # fmt: skip
        if name != "scl":
            band.update(scale=0.0001, offset=-0.1 if new_baseline else 0.0)
        assets[name] = {
            "href": f"./{name}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": name if name == "scl" else f"{name} ({_BAND_IDS[name]})",
            "roles": ["data"],
            "proj:shape": [h * 10 // res, w * 10 // res],
            "proj:transform": list(tr)[:6],
            "raster:bands": [band],
        }
        if name != "scl":
            assets[name]["eo:bands"] = [{"name": _BAND_IDS[name], "common_name": name}]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": _EXTENSIONS,
        "id": item_id, "geometry": footprint, "bbox": bbox,
        "properties": {
            "datetime": f"{when.isoformat()}T03:00:00Z", "platform": platform,
            "constellation": "sentinel-2", "instruments": ["msi"], "eo:cloud_cover": cover,
            "proj:epsg": EPSG, "s2:processing_baseline": "04.00" if new_baseline else "03.01",
            "minewatch:synthetic": True,
        },
        "links": [{"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                  {"rel": "parent", "href": "../../catalog.json", "type": "application/json"}],
        "assets": assets,
    }  # fmt: skip
    (d / f"{item_id}.json").write_text(json.dumps(item, indent=1))
    return item_id, cover


def _feature_collection(path: Path, feats: list[dict]) -> None:
    out = []
    for f in feats:
        props = {k: v for k, v in f.items() if k != "geometry"}
        out.append({"type": "Feature", "properties": props,
                    "geometry": mapping(_wgs84(f["geometry"]))})  # fmt: skip
    doc = {"type": "FeatureCollection", "features": out}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def _geo(g) -> dict | None:
    return None if g is None else mapping(_wgs84(g))


def generate_scenario(
    out_dir: Path,
    *,
    seed: int = DEMO_SEED,
    start: date = date(2021, 3, 1),
    end: date = date(2024, 10, 31),
    revisit_days: int = 10,
    cloud_scale: float = 1.0,
    shape: tuple[int, int] = (400, 480),
    climate: float = 0.0,
    extra_sites: int = 0,
) -> ScenarioPaths:
    """Write a synthetic scenario (STAC catalog of COGs, vectors, truth) under ``out_dir``.

    ``climate`` (yearly vegetation vigour spread, 0 = every year alike) and
    ``extra_sites`` (more sites for training the recovery model) are described in the
    module docstring; their defaults leave the scenario as it always was.

    Deterministic: the same arguments give byte-identical files. The ``.complete``
    marker is removed first and written last, so a crash leaves an incomplete folder.
    """
    h, w = shape
    if h % 2 or w % 2 or h < 100 or w < 100:
        raise ValueError(f"shape must be even and at least 100 x 100, got {shape}")
    if end <= start or revisit_days < 1:
        raise ValueError("need start < end and revisit_days >= 1")
    out = Path(out_dir)
    paths = ScenarioPaths.under(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    cat_dir = paths.catalog.parent
    if cat_dir.exists():
        shutil.rmtree(cat_dir)
    world = _build_world(seed, shape, start, end, climate=climate, extra_sites=extra_sites)
    dates = _dates(start, end, revisit_days, np.random.default_rng([seed, 3]))
    x0, y1 = ORIGIN
    box = shapely.box(x0, y1 - h * PIXEL, x0 + w * PIXEL, y1)
    fp = _wgs84(box)
    footprint, bbox = mapping(fp), [round(v, 7) for v in fp.bounds]
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    confounders = world.truth["confounders"]
    for k, when in enumerate(dates):
        scene = _render(
            world, when, np.random.default_rng([seed, 7, when.toordinal()]), cloud_scale
        )
        item_id, _ = _write_item(cat_dir / "items", world, when, k, scene, footprint, bbox)
        links.append({"rel": "item", "href": f"./items/{item_id}/{item_id}.json",
                      "type": "application/json"})  # fmt: skip
        m = scene.missed
        if m["ring"]:
            confounders.append(
                {
                    "kind": "missed_cloud_edge",
                    "geometry": None,
                    "date": _iso(when),
                    "notes": f"{m['ring']}-pixel ring of partial cloud labelled clear",
                }
            )
        if m["puffs"]:
            puffs = unary_union(
                [
                    Point(x0 + (c + 0.5) * PIXEL, y1 - (r_ + 0.5) * PIXEL).buffer(2 * rad * PIXEL)
                    for r_, c, rad in m["puffs"]
                ]
            )
            confounders.append(
                {
                    "kind": "missed_cloud_edge",
                    "geometry": puffs,
                    "date": _iso(when),
                    "notes": "small cloud puffs not flagged by SCL",
                }
            )
        if m["haze"]:
            confounders.append({"kind": "haze", "geometry": None, "date": _iso(when),
                                "notes": f"unflagged haze, +{m['haze']:.3f} blue"})  # fmt: skip
    catalog = {
        "type": "Catalog", "stac_version": "1.0.0", "id": f"minewatch-synthetic-{seed}",
        "description": f"MineWatch synthetic Sentinel-2 L2A scenario (seed {seed})",
        "links": links,
    }  # fmt: skip
    paths.catalog.write_text(json.dumps(catalog, indent=1))
    _feature_collection(paths.sites, world.sites)
    _feature_collection(paths.permits, world.permits)
    _feature_collection(paths.zones, world.zones)
    _feature_collection(paths.aoi, [{"county": c, "geometry": g} for c, g in world.counties])
    truth = dict(world.truth)
    truth["digs"] = [{**d, "geometry": _geo(d["geometry"])} for d in truth["digs"]]
    truth["confounders"] = [{**c, "geometry": _geo(c["geometry"])} for c in confounders]
    truth["grid"] = {"epsg": EPSG, "origin": list(ORIGIN), "pixel": PIXEL, "shape": list(shape),
                     "n_items": len(dates), "landcover_codes": LANDCOVER_CODES}  # fmt: skip
    paths.truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    _write_tif(out / "landcover.tif", world.landcover, world.transform)
    marker = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "shape": list(shape),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "n_items": len(dates),
        "climate": climate,
        "extra_sites": extra_sites,
    }
    (out / MARKER).write_text(json.dumps(marker))
    log.info("scenario seed %d: %d items written to %s", seed, len(dates), out)
    return paths


def ensure_demo_data(data_dir: Path) -> ScenarioPaths:
    """The demo scenario under ``data_dir``, generated (default seed) unless complete."""
    data_dir = Path(data_dir)
    marker = data_dir / MARKER
    try:
        info = json.loads(marker.read_text())
        if info.get("generator_version") == GENERATOR_VERSION and info.get("seed") == DEMO_SEED:
            return ScenarioPaths.under(data_dir)
    except (OSError, ValueError):
        pass
    log.info("generating the demo scenario in %s", data_dir)
    return generate_scenario(data_dir, seed=DEMO_SEED)
