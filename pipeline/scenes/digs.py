"""The digs of a generated scene: new excavation, where, when, of what, and its truth.

Digs (new excavation) turn their pixels into fresh bare ground from their start date on,
optionally spreading outward from a seed point over 1-4 months, and stay bare. Each dig
is of one material of its family's ``Physics.dig_materials`` (standard: bright soil/rock,
red 0.16-0.28, or a whiter limestone variant in a limestone quarry), with a brightness
drawn per dig; ground just dug may be darker for a few weeks (``Physics.moist``).

``place_digs`` draws one dig per violation kind (plus the site digs the plans ask for);
``hard_cases`` adds the digs a detector finds hard. ``Digger.numbered`` sorts them by
start and gives them their ids. In ``truth.json`` each dig carries its violation, site,
permit, zones, material and (when the scene labels cases) its ``case``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
from rasterio.features import rasterize
from shapely.geometry import Point
from shapely.ops import polylabel, unary_union

from pipeline.scenes.cast import Plan
from pipeline.scenes.grid import LANDCOVER_CODES, blob, iso_date
from pipeline.scenes.layout import Layout
from pipeline.scenes.surface import Dig, World

OUTSIDE_PERMIT_M = 100.0  # detection.outside_permit_buffer_m's default


class Digger:
    """Draws digs into a world, keeping them apart from the sites and from each other."""

    def __init__(self, lay: Layout, world: World, tex: np.ndarray, plans: list[Plan],
                 county_of: Callable, *, cases: bool = False) -> None:  # fmt: skip
        self.lay, self.world, self.tex, self.county_of = lay, world, tex, county_of
        self.rng, self.T = lay.rng, lay.T
        self.lo, self.hi = lay.dig_window()
        self.cases = cases  # write each dig's ``case`` into the truth
        s = lay.s_len
        self.taken = [p.geom.buffer(60 * s) for p in plans]
        self.taken += [p.permit.buffer(60 * s) for p in plans if p.permit is not None]
        # Where digging beyond a licensed site is measured from, as the detection does
        # (``flags._nearby_licensed``): its permit, or its boundary with no permit on record.
        self.licensed = [
            (p, p.geom if p.permit is None else p.permit) for p in plans if p.category == "licensed"
        ]
        self.out: list[dict] = []

    def area(self) -> float:
        """A dig's area (m²): 0.3-3 ha at the default shape."""
        return float(self.rng.uniform(0.3, 3.0) * 1e4 * self.lay.s_len)

    def room_dig(self, room, near, a: float):
        """A dig of about ``a`` m² inside ``room``; it spreads from ``near``'s edge if given."""
        rng = self.rng
        room = max(getattr(room, "geoms", [room]), key=lambda g: g.area)
        a = min(a, 0.5 * room.area)
        minx, miny, maxx, maxy = room.bounds
        if near is None:
            pts = [Point(x, y) for x, y in rng.uniform((minx, miny), (maxx, maxy), (200, 2))]
            c = next((q for q in pts if room.buffer(-np.sqrt(a / np.pi)).contains(q)),
                     polylabel(room, 1.0))  # fmt: skip
        else:
            c = polylabel(room, 1.0)
        g = blob(rng, c.x, c.y, a, n=10).intersection(room)
        g = max(getattr(g, "geoms", [g]), key=lambda h: h.area)
        seed = near.exterior.interpolate(near.exterior.project(c)) if near is not None else c
        return g, seed

    def add(self, violation: str, g, seed: Point, plan: Plan | None, limestone: bool = False,
            start_lo: int | None = None, *, start: int | None = None,
            material: str | None = None, case: str = "standard") -> dict:  # fmt: skip
        """Dig ``g`` from ``start`` (days since the scene's start; drawn in the dig window
        from ``start_lo`` on if not given), of ``material`` (drawn if not given)."""
        rng, lay, T, phys = self.rng, self.lay, self.T, self.world.physics
        lo, hi = self.lo if start_lo is None else start_lo, self.hi
        s0 = start if start is not None else int(rng.uniform(min(lo, hi), hi))
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
        material = material or phys.draw_material(rng, limestone)
        name, bright_lo, bright_hi = phys.dig_materials[material]
        em = phys.endmember(name)[:, None] * rng.uniform(bright_lo, bright_hi)
        em = (em * self.tex[idx]).astype(np.float32)
        self.world.digs.append(Dig(idx, act.astype(np.float32), em, phys.moist))
        self.taken.append(g.buffer(60 * lay.s_len))
        codes = {v: k for k, v in LANDCOVER_CODES.items()}
        before = codes.get(int(np.bincount(lay.lc.ravel()[idx]).argmax()), "other")
        if violation == "unregistered" and plan is None:
            # A dig this close to a licensed site's permit (its boundary, with none) is
            # ``outside_permit``, as the detection config defines it (``outside_permit_buffer_m``).
            near = [(p, a.distance(g)) for p, a in self.licensed]
            near = [(p, d) for p, d in near if d <= OUTSIDE_PERMIT_M]
            if near:
                violation, plan = "outside_permit", min(near, key=lambda pd: pd[1])[0]
        dig = {"dig_id": "", "start": iso_date(lay.start + timedelta(days=s0)),
               "violation": violation, "site_id": plan.site_id if plan else None,
               "permit_id": getattr(plan, "permit_id", None) if plan else None,
               "zone_ids": [], "county": self.county_of(g), "geometry": g,
               "area_m2": round(float(g.area), 1), "growth_days": growth,
               "material": material, "pixels": len(idx),
               "landcover_before": before}  # fmt: skip
        if self.cases:
            dig["case"] = case
        self.out.append(dig)
        return dig

    def avoid(self, *, zones: bool = True):
        """What a free dig must stay away from: landmarks, sites, digs (and zones)."""
        parts = [*self.lay.landmarks, *self.taken]
        if zones:
            parts += [z.buffer(20) for _, z in self.lay.zone_geoms]
        return unary_union(parts)

    def numbered(self) -> list[dict]:
        """The digs by start date (then violation), with their ids ``D01``, ``D02``..."""
        self.out.sort(key=lambda d: (d["start"], d["violation"]))
        for i, d in enumerate(self.out):
            d["dig_id"] = f"D{i + 1:02d}"
        return self.out


def place_digs(digger: Digger, plans: list[Plan], green_by: dict[str, int]) -> None:
    """Draw one dig per violation kind (plus the site digs the plans ask for)."""
    rng, lay, s_dig = digger.rng, digger.lay, digger.lay.s_len
    area, room_dig, add = digger.area, digger.room_dig, digger.add
    for p in plans:
        if p.dig == "outside_permit":
            c, pc = p.permit.centroid, p.pit.centroid
            v = np.array([pc.x - c.x, pc.y - c.y])
            v = v / (np.hypot(*v) or 1.0)
            far = Point(c.x + v[0] * 1e4, c.y + v[1] * 1e4)
            bp = p.permit.exterior.interpolate(p.permit.exterior.project(far))
            a = area()
            rd = np.sqrt(a / np.pi)
            g = blob(rng, bp.x + v[0] * 0.45 * rd, bp.y + v[1] * 0.45 * rd, a, n=10)
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
            add("restored_land", g, seed, p, start_lo=max(digger.lo, green_by[p.site_id] + 30))
    reserve = next(g for k, g in lay.zone_geoms if k == "nature_reserve")
    base_avoid = [*lay.landmarks]
    a = area()
    g = lay.free_dig((1, 3), a, inside=reserve, avoid=unary_union(base_avoid + digger.taken))
    add("no_mining_zone", g, g.centroid, None)
    zones_all = [z.buffer(20) for _, z in lay.zone_geoms]
    for klass in ((1,), (2,)):
        a = area()
        avoid = unary_union(base_avoid + digger.taken + zones_all)
        g = lay.free_dig(klass, a, avoid=avoid)
        add("unregistered", g, g.centroid, None, limestone=klass == (1,) and rng.random() < 0.5)
