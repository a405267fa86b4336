"""The layout of a generated scene: landscape, zones, sites, permits and digs, without conflicts.

``Layout`` draws the landscape (hills, farmland parcels, villages, a river, a lake, a
road, a railway, a limestone outcrop, red-soil patches, a burn scar), the protected
zones, then places the sites of the cast and their permits away from all of them.
Mine sites are drawn as irregular polygons (1-15 ha at the default shape; areas scale
with the scene area, floor 0.2 x).

``free_dig`` finds room for a dig on a land cover; ``digs`` draws the digs themselves.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from pipeline.scenes.cast import Plan
from pipeline.scenes.grid import LANDCOVER_CODES, ORIGIN, PIXEL, blob, random_field


def _mask(geom, world_shape: tuple[int, int], transform: Affine) -> np.ndarray:
    if geom.is_empty:
        return np.zeros(world_shape, bool)
    return rasterize([(geom, 1)], out_shape=world_shape, transform=transform, dtype="uint8") > 0


class Layout:
    """Draws the landscape, then places sites, zones and digs without conflicts."""

    def __init__(self, seed: int, shape: tuple[int, int], start: date, end: date, *,
                 parcel_shift: float = 8.0) -> None:  # fmt: skip
        self.rng = np.random.default_rng([seed, 1])
        self.parcel_shift = parcel_shift  # farmland parcels sow and harvest +/- this many days
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
        shift = self.parcel_shift
        self.parcel_offset = rng.uniform(-shift, shift, n_parcels).astype(np.float32)[parcel]
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
