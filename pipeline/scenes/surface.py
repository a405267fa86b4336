"""Surface physics of a generated scene: endmember spectra, phenology, soils, climate.

A family's surfaces are a ``Physics``: its endmember table, phenology table and dig
materials. ``STANDARD`` (below) is the standard family's; ``loess`` has its own.
The standard physics, which other families vary:

Surface reflectance of every pixel and date is a linear mix of
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

Each pixel carries a fixed texture (multiplicative, smooth + white, ~5 %); each scene
adds a gain and noise (``atmosphere``).

Sites' surfaces: active pits stable bright bare rock (a whiter variant for limestone),
weathered bare ground with sparse weeds for closed sites, bright waste piles, green
dust-control netting (constant NDVI ~0.3, green > red, SWIR as bare ground, no seasonal
cycle). A restoration is a cover trajectory ``c(t)``
mixing the bare substrate with the target's own phenology
(``R = bare + c(t) * (target(t) - bare)``): restored sites reach full cover within
~1-1.5 seasons of ``restoration_start``; revegetating sites only reach c ~0.35 by the
end; regressed sites reach 0.75 then die back to 0.1 during the last season; a
landscape lake fills with water over 5-8 months.

A family may shift the whole crop calendar per calendar year (``World.crop_shift``,
days; none in ``standard``).

Climate (``climate`` > 0, off by default): each calendar year gets a vegetation vigour
``v = clip(1 + climate * N(0, 1), 0.55, 1.3)`` that multiplies every green cover, natural
and restored alike (``fc * v``): a drought year (v < 1) lowers the whole landscape's
summer NDVI, a wet year raises it. Restoration is judged against that background (the
recovery ratio), so a drought must not read as a failed restoration. The yearly values
are in ``truth.json`` (``climate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from rasterio.transform import Affine
from shapely.geometry import Polygon

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
CROP = 2  # the phenology class of double-cropped farmland


@dataclass(frozen=True)
class Physics:
    """A scene family's surfaces: what they are made of and how they follow the seasons."""

    endmembers: dict[str, tuple[float, ...]]
    """Endmember reflectances (blue, green, red, nir, swir16, swir22) by name; every
    family has the names of ``EM`` (the land covers, sites and the ``burn`` scar)."""
    phenology: dict[int, tuple[tuple[float, ...], tuple[float, ...]]]
    """Fractional green cover by day of year per phenology class (1 forest, 2 farmland,
    3 grassland)."""
    dig_materials: dict[str, tuple[str, float, float]]
    """Material of a dig -> (endmember name, brightness factor low, high), drawn per dig."""
    dig_draw: tuple[tuple[str, float], ...] = ()
    """(material, weight) a dig not quarrying limestone is drawn from; empty: every such
    dig is ``soil_rock`` (the standard family)."""
    moist: tuple[float, int] = (1.0, 0)
    """Freshly dug ground is this much darker for this many days (1.0: not at all)."""
    notes: dict[str, str] = field(default_factory=dict)
    """``truth.json`` notes of the seasonal confounders (``harvest``, ``leaf_off``)."""

    def endmember(self, name: str) -> np.ndarray:
        return np.asarray(self.endmembers[name], np.float32)

    def draw_material(self, rng: np.random.Generator, limestone: bool) -> str:
        """The material of a new dig: limestone in a limestone quarry, else drawn."""
        if limestone:
            return "limestone"
        if not self.dig_draw:
            return "soil_rock"
        names, weights = zip(*self.dig_draw, strict=True)
        w = np.asarray(weights, float)
        return str(names[int(rng.choice(len(names), p=w / w.sum()))])


STANDARD = Physics(
    EM,
    PHEN,
    {"soil_rock": ("dig", 0.75, 1.35), "limestone": ("dig_limestone", 0.95, 1.1),
     "red_soil": ("red_soil", 0.9, 1.1)},
    notes={"harvest": "all farmland bare ~early June (2-4 weeks) and Oct-Nov every year",
           "leaf_off": "deciduous forest NDVI ~0.3 from November to early April"},
)  # fmt: skip


@dataclass
class Region:
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
class Dig:
    idx: np.ndarray
    act_day: np.ndarray  # (n,) day since start on which each pixel turns bare
    em: np.ndarray  # (6, n)
    moist: tuple[float, int] = (1.0, 0)  # darker by this factor for this many days


@dataclass
class World:
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
    regions: list[Region] = field(default_factory=list)
    digs: list[Dig] = field(default_factory=list)
    sites: list[dict] = field(default_factory=list)  # geojson features (UTM geometry)
    permits: list[dict] = field(default_factory=list)
    zones: list[dict] = field(default_factory=list)
    counties: list[tuple[str, Polygon]] = field(default_factory=list)
    truth: dict = field(default_factory=dict)
    phen_index: dict = field(default_factory=dict)
    vigour: dict[int, float] = field(default_factory=dict)  # calendar year -> green cover factor
    physics: Physics = STANDARD
    crop_shift: dict[int, float] = field(default_factory=dict)  # calendar year -> days late


def crop_calendar_shift(
    seed: int, start: date, end: date, *, stream: int, most: float
) -> dict[int, float]:
    """Calendar year -> days the crop calendar runs late (negative: early) that year, at
    most ``most``; drawn from the seed's random stream ``stream`` (a family's own)."""
    rng = np.random.default_rng([seed, stream])
    years = range(start.year, end.year + 1)
    return {y: round(float(rng.uniform(-most, most)), 1) for y in years}


def _phase(doy: int, offset: np.ndarray, shift: float) -> np.ndarray:
    """Day of the phenology year of pixels shifted by ``offset`` (+ the year's ``shift``)."""
    return (doy - offset - shift) % 365 if shift else (doy - offset) % 365


def endmember(name: str) -> np.ndarray:
    return np.asarray(EM[name], np.float32)


def surface_reflectance(world: World, day: int, doy: int) -> np.ndarray:
    """Cloud-free surface reflectance (6, H*W) on ``day`` (days since start)."""
    fc = np.zeros(world.phen.size, np.float32)
    year = (world.start + timedelta(days=day)).year
    vigour = world.vigour.get(year, 1.0)
    phen = world.physics.phenology
    shift = {CROP: world.crop_shift.get(year, 0.0)}
    for p, (kx, ky) in phen.items():
        idx = world.phen_index[p]
        phase = _phase(doy, world.offset[idx], shift.get(p, 0.0))
        fc[idx] = np.interp(phase, kx, ky) * world.fcscale[idx]
        if vigour != 1.0:
            fc[idx] = np.minimum(fc[idx] * np.float32(vigour), 1.0)
    r = world.soil + fc * (world.canopy - world.soil)
    for reg in world.regions:
        c = np.interp(day, *reg.knots) * reg.jitter
        veg = reg.canopy
        if reg.phen:
            f = np.interp(_phase(doy, reg.offset, shift.get(reg.phen, 0.0)), *phen[reg.phen])
            f = f.astype(np.float32)
            if vigour != 1.0:
                f = np.minimum(f * np.float32(vigour), 1.0)
            veg = reg.soil + f * (reg.canopy - reg.soil)
        r[:, reg.idx] = reg.bare + c * (veg - reg.bare)
    for dig in world.digs:
        on = dig.act_day <= day
        if on.any():
            em = dig.em[:, on]
            darker, days = dig.moist
            if days:
                em = np.where(day - dig.act_day[on] < days, em * np.float32(darker), em)
            r[:, dig.idx[on]] = em
    return r
