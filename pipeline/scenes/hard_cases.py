"""The hard cases of a generated scene: digs and sites a detector or a model finds hard.

Each is a dig with a ``case`` in ``truth.json`` (the other digs' case is ``standard``):

- ``first_months``: dug on the wooded hills in the imagery's first 15-100 days, before
  any same-season history exists (red soil where the family has it);
- ``end_of_imagery``: dug 12-35 days before the last date, so seen on only one or two
  clear looks;
- ``loess_zone``: loess (the farmland's own soil where the family has it) dug inside a
  protected zone, a road's buffer zone when it has room, in May or June;
- ``farmland_dig``: a dig into farmland that starts while the parcel lies bare after a
  harvest, when its soil looks like the dig;
- ``red_soil_autumn``: red soil dug on the wooded hills in October, as the leaves turn.

Their violations follow the usual rules: a dig inside a zone is ``no_mining_zone``, a
dig away from every site, permit and zone ``unregistered``. ``die_back_plans`` adds
1-2 restorations that greened in their first year and died back in their second
(``regressed``, the cast's ``early_die_back``).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from shapely.ops import polylabel

from pipeline.scenes.cast import Plan
from pipeline.scenes.digs import Digger
from pipeline.scenes.grid import PIXEL
from pipeline.scenes.surface import CROP, World

CASES = ("first_months", "end_of_imagery", "loess_zone", "farmland_dig", "red_soil_autumn")
"""The hard dig cases, in the order they are drawn."""
ZONE_PREFERENCE = ("road_buffer", "railway_buffer", "river_buffer", "scenic_area",
                   "ecological_redline", "nature_reserve")  # fmt: skip
BARE_COVER = 0.05  # farmland green cover below which a parcel lies bare


def die_back_plans(rng: np.random.Generator) -> list[Plan]:
    """1-2 restorations that die back early (regressed), on any green target."""
    plans = []
    for _ in range(int(rng.integers(1, 3))):
        category = str(rng.choice(["orphaned", "illegal"]))
        target = str(rng.choice(["forest", "farmland", "grassland"]))
        plans.append(Plan(category, "restoring", "regressed", target, "restore", (1, 5),
                          early_die_back=True))  # fmt: skip
    return plans


def days_in_months(start: date, lo: int, hi: int, months: tuple[int, ...]) -> list[int]:
    """Days since ``start`` in [lo, hi) whose date falls in one of ``months``."""
    return [d for d in range(max(lo, 0), hi) if (start + timedelta(days=d)).month in months]


def bare_farmland_days(world: World, lo: int, hi: int, offset: float) -> list[int]:
    """Days in [lo, hi) on which a farmland parcel shifted by ``offset`` days lies bare."""
    kx, ky = world.physics.phenology[CROP]
    out = []
    for d in range(max(lo, 0), hi):
        when = world.start + timedelta(days=d)
        shift = world.crop_shift.get(when.year, 0.0)
        phase = (when.timetuple().tm_yday - offset - shift) % 365
        if np.interp(phase, kx, ky) < BARE_COVER:
            out.append(d)
    return out


def _zone_room(digger: Digger, a: float):
    """Room for a dig of ``a`` m² inside a protected zone: the preferred zone whose room
    is at least ~2.5 pixels across, else the zone with the widest room."""
    avoid = digger.avoid(zones=False)
    zones = dict(digger.lay.zone_geoms)
    best, best_r = None, -1.0
    for kind in ZONE_PREFERENCE:
        room = zones[kind].buffer(-PIXEL).difference(avoid)
        if room.is_empty:
            continue
        piece = max(getattr(room, "geoms", [room]), key=lambda g: g.area)
        r = float(polylabel(piece, 1.0).distance(piece.exterior))
        if r >= min(12.0, np.sqrt(a / np.pi)):
            return piece
        if r > best_r:
            best, best_r = piece, r
    if best is None:
        raise ValueError(f"no room for a dig in any zone of a scene of shape {digger.lay.shape}")
    return best


def place_hard_cases(digger: Digger) -> None:
    """Draw one dig of each hard case (``CASES``) into the digger's world."""
    lay, rng, T, world = digger.lay, digger.rng, digger.T, digger.world
    lo, hi = digger.lo, digger.hi
    materials = world.physics.dig_materials
    red = "red_soil" if "red_soil" in materials else "soil_rock"
    loess = "loess" if "loess" in materials else "soil_rock"

    def small() -> float:
        return float(rng.uniform(0.3, 1.2) * 1e4 * lay.s_len)

    def pick(*candidates: list[int]) -> int:
        days = next((c for c in candidates if c), [lo])
        return int(days[int(rng.integers(len(days)))])

    g = lay.free_dig((1,), small(), avoid=digger.avoid())
    start = int(rng.uniform(15, min(100, max(16, T // 4))))
    digger.add("unregistered", g, g.centroid, None, start=start, material=red,
               case="first_months")  # fmt: skip

    g = lay.free_dig((1, 3), small(), avoid=digger.avoid())
    digger.add("unregistered", g, g.centroid, None, start=int(rng.uniform(T - 35, T - 12)),
               case="end_of_imagery")  # fmt: skip

    room = _zone_room(digger, a := small())
    g, seed = digger.room_dig(room, None, a)
    start = pick(days_in_months(lay.start, lo, hi, (5, 6)),
                 days_in_months(lay.start, 30, T - 30, (5, 6)))  # fmt: skip
    digger.add("no_mining_zone", g, seed, None, start=start, material=loess, case="loess_zone")

    g = lay.free_dig((2,), small(), avoid=digger.avoid())
    offset = float(np.median(world.offset[lay.mask(g).ravel()]))
    start = pick(bare_farmland_days(world, lo, hi, offset),
                 bare_farmland_days(world, 30, T - 20, offset))  # fmt: skip
    digger.add("unregistered", g, g.centroid, None, start=start, material=loess,
               case="farmland_dig")  # fmt: skip

    g = lay.free_dig((1,), small(), avoid=digger.avoid())
    start = pick(days_in_months(lay.start, lo, hi, (10,)),
                 days_in_months(lay.start, 30, T - 20, (10,)))  # fmt: skip
    digger.add("unregistered", g, g.centroid, None, start=start, material=red,
               case="red_soil_autumn")  # fmt: skip
