"""The layout of a generated scene: landscape, zones, sites, permits and digs, without conflicts.

``Layout`` draws the landscape (hills, farmland parcels, villages, a river, a lake, a
road, a railway, a limestone outcrop, red-soil patches, a burn scar), the protected
zones, then places the sites of the cast and their permits away from all of them.
Mine sites are drawn as irregular polygons (1-15 ha at the default shape; areas scale
with the scene area, floor 0.2 x).

Digs (new excavation) turn their pixels into fresh bright bare soil/rock (red
0.16-0.28, or a whiter limestone variant) from their start date on, optionally
spreading outward from a seed point over 1-4 months, and stay bare. At least one dig
of each violation is drawn; see ``truth.json``.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import polylabel, unary_union

from pipeline.scenes.cast import Plan
from pipeline.scenes.grid import LANDCOVER_CODES, ORIGIN, PIXEL, blob, iso_date, random_field
from pipeline.scenes.surface import Dig, World, endmember


def _mask(geom, world_shape: tuple[int, int], transform: Affine) -> np.ndarray:
    if geom.is_empty:
        return np.zeros(world_shape, bool)
    return rasterize([(geom, 1)], out_shape=world_shape, transform=transform, dtype="uint8") > 0


class Layout:
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
        self.elev = random_field(rng, self.shape, 0.12 * min(h, w))
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
        village = random_field(rng, self.shape, 3 * self.s_len + 2) > rng.uniform(0.965, 0.985)
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
        self.lake = blob(rng, cx, cy, rng.uniform(3, 8) * 1e4 * self.s_area)
        lc[self.mask(self.lake)] = LANDCOVER_CODES["water"]
        self.landmarks = [river_poly, self.lake, self.road.buffer(15), self.rail.buffer(15)]
        # Stable bright confounders: a limestone outcrop on the hill edge, red-soil patches.
        edge = (np.abs(self.elev - q_grass) < 0.05) & (lc != LANDCOVER_CODES["water"])
        cx, cy = self.random_point(edge if edge.any() else lc != 5)
        self.limestone = blob(rng, cx, cy, rng.uniform(1, 3) * 1e4 * self.s_area)
        lc[self.mask(self.limestone)] = LANDCOVER_CODES["limestone"]
        reds = []
        for _ in range(int(rng.integers(2, 4))):
            cx, cy = self.random_point(np.isin(lc, (2, 3)))
            reds.append(blob(rng, cx, cy, rng.uniform(0.5, 2) * 1e4 * self.s_area))
        self.red_soil = unary_union(reds)
        m = self.mask(self.red_soil) & np.isin(lc, (2, 3))
        lc[m] = LANDCOVER_CODES["red_soil"]
        # Burn scar in the forest.
        forest = lc == LANDCOVER_CODES["forest"]
        cx, cy = self.random_point(forest if forest.any() else lc == 3)
        self.burn = blob(rng, cx, cy, rng.uniform(3, 8) * 1e4 * self.s_area)
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
        reserve = blob(rng, float(cx), float(cy), 0.06 * area).intersection(scene_box)
        zones = [
            ("nature_reserve", reserve),
            ("river_buffer", self.river.buffer(80 * s + 30).intersection(scene_box)),
            ("road_buffer", self.road.buffer(60 * s).intersection(scene_box)),
            ("railway_buffer", self.rail.buffer(60 * s).intersection(scene_box)),
            ("scenic_area", self.lake.buffer(80 * s).intersection(scene_box)),
        ]
        far = self.mask(reserve.buffer(0.1 * (self.x1 - self.x0))) | (self.lc == 5)
        cx, cy = self.random_point(~far if (~far).any() else self.lc != 5)
        zones.append(("ecological_redline", blob(rng, cx, cy, 0.04 * area).intersection(scene_box)))
        self.forbidden += [g.buffer(20) for _, g in zones]
        self.zone_geoms = zones
        return zones

    # -- sites
    def place_sites(self, plans: list[Plan]) -> None:
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
                core = blob(rng, cx, cy, area)
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
            g = blob(rng, cx, cy, area, n=10)
            if inside is not None and not inside.contains(g):
                continue
            if avoid.intersects(g) or not self.inside(g, 3 * PIXEL):
                continue
            m = self.mask(g)
            if m.sum() == 0 or np.isin(self.lc[m], klass).mean() < 0.7:
                continue
            return g
        raise ValueError(f"cannot place a dig in a scene of shape {self.shape}")


def place_digs(lay: Layout, plans: list[Plan], world: World, tex: np.ndarray,
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
        g = blob(rng, c.x, c.y, a, n=10).intersection(room)
        g = max(getattr(g, "geoms", [g]), key=lambda h: h.area)
        seed = near.exterior.interpolate(near.exterior.project(c)) if near is not None else c
        return g, seed

    def add(violation: str, g, seed: Point, plan: Plan | None, limestone: bool = False,
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
            em = endmember("dig_limestone")[:, None] * rng.uniform(0.95, 1.1)
        else:
            em = endmember("dig")[:, None] * rng.uniform(0.75, 1.35)
        world.digs.append(Dig(idx, act.astype(np.float32), (em * tex[idx]).astype(np.float32)))
        taken.append(g.buffer(60 * s_dig))
        codes = {v: k for k, v in LANDCOVER_CODES.items()}
        before = codes.get(int(np.bincount(lay.lc.ravel()[idx]).argmax()), "other")
        out.append({"dig_id": "", "start": iso_date(lay.start + timedelta(days=s0)),
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
