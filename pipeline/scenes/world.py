"""One generated scenario's world: land cover, sites, permits, zones, digs, surfaces and truth.

``build_world`` draws the layout (``layout``), gives every pixel its surface
(``surface``) and writes down the answer key (``truth.json``): each site's recovery
class, each dig and its violation, and the confounders a detector must not flag.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from shapely.geometry import Polygon

from pipeline.scenes.cast import restoration_trajectory, site_names, site_plans
from pipeline.scenes.digs import Digger, place_digs
from pipeline.scenes.grid import (
    COUNTIES,
    iso_date,
    random_field,
)
from pipeline.scenes.hard_cases import die_back_plans, place_hard_cases
from pipeline.scenes.layout import Layout
from pipeline.scenes.surface import (
    STANDARD,
    TARGET_PHEN,
    Physics,
    Region,
    World,
)


def build_world(
    seed: int,
    shape: tuple[int, int],
    start: date,
    end: date,
    *,
    climate: float = 0.0,
    extra_sites: int = 0,
    physics: Physics = STANDARD,
    hard_cases: bool = False,
    parcel_shift: float = 8.0,
    crop_shift: dict[int, float] | None = None,
) -> World:
    """Draw land cover, sites, permits, zones, digs, surfaces and truth of one scenario.

    ``physics`` is the family's spectra and phenology; ``hard_cases`` adds the digs and
    sites of ``hard_cases`` and labels every dig's ``case``; ``parcel_shift`` (days) is
    how far farmland parcels' crop calendars spread, ``crop_shift`` (calendar year ->
    days) how late the whole crop calendar runs each year. The defaults draw the
    standard scene, unchanged.
    """
    endmember = physics.endmember
    lay = Layout(seed, shape, start, end, parcel_shift=parcel_shift)
    rng, T, n = lay.rng, lay.T, shape[0] * shape[1]
    lay.landscape()
    zones = lay.zones()
    plans = site_plans(rng, extra_sites)
    if hard_cases:
        plans += die_back_plans(rng)
    lay.place_sites(plans)
    names = site_names(rng, plans)

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
        phen[m], canopy[:, m], soil[:, m] = ph, endmember(ca)[:, None], endmember(so)[:, None]
    farm = lc == 2
    offset[farm] = lay.parcel_offset[farm]
    rail = lay.rail_mask.ravel()
    canopy[:, rail] = soil[:, rail] = endmember("rail")[:, None]
    tex = random_field(rng, shape, 2.0).ravel() * 0.08 + 0.96
    tex = (tex * rng.normal(1, 0.02, n)).astype(np.float32)

    def static(m: np.ndarray, em: np.ndarray, ph: int = 0, scale: float = 0.0) -> None:
        canopy[:, m] = endmember("grass_canopy")[:, None] if ph else em[:, None]
        soil[:, m] = em[:, None]
        phen[m], fcscale[m] = ph, scale

    world = World(shape, lay.transform, start, end, canopy, soil, phen, offset, fcscale,
                   lay.lc.copy(), physics=physics, crop_shift=dict(crop_shift or {}))  # fmt: skip
    truth_sites, site_feats, permit_feats = [], [], []
    green_by: dict[str, int] = {}
    for i, p in enumerate(sorted(plans, key=lambda p: p.geom.centroid.x)):
        p.site_id = f"S{i + 1:02d}"
    for p, name in zip(plans, names, strict=True):
        m = lay.mask(p.geom).ravel()
        notes, restoration_start = "", None
        if p.kind == "mine":
            pit_em = endmember("pit_limestone" if p.limestone else "pit")
            pit = lay.mask(p.pit).ravel()
            if p.status == "suspended":
                static(pit, 0.5 * pit_em + 0.5 * endmember("weathered"), 3, 0.08)
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
            static(where, endmember("weathered"), 3, 0.2)
            notes = "closed, never restored: weathered bare ground, sparse weeds"
        elif p.kind == "waste":
            static(m, endmember("waste"))
            notes = "waste-rock pile, stable"
        elif p.kind == "netting":
            static(m, endmember("netting"))
            restoration_start = start - timedelta(days=int(rng.integers(30, 300)))
            notes = "covered with green dust-control netting: no seasonal cycle, bare beneath"
        else:
            r0, knots = restoration_trajectory(rng, p, T)
            restoration_start = start + timedelta(days=r0)
            idx = np.flatnonzero(m)
            bare = endmember(p.substrate)[:, None] * tex[idx]
            if p.kind == "lake" and p.klass == "revegetating":
                # Still filling: only the deepest part of the pit is under water yet.
                deep = lay.mask(lay.sub_blob(p.geom, rng.uniform(0.3, 0.45), shrink=5)).ravel()
                idx = np.flatnonzero(m & deep)
                bare = endmember(p.substrate)[:, None] * tex[idx]
            if p.kind == "lake":
                tgt = endmember("water")[:, None] * np.ones(len(idx), np.float32)
                ph, ca, so = 0, tgt, tgt
                notes = f"pit fills with water from {restoration_start} (landscape lake)"
                if p.klass != "restored":
                    notes = f"{p.klass} landscape lake: water cover trajectory {knots}"
            else:
                ph, can, soi = TARGET_PHEN[p.target]
                ca, so = endmember(can)[:, None] * tex[idx], endmember(soi)[:, None] * tex[idx]
                notes = f"{p.klass}: {p.target} cover trajectory {knots}"
            jit = np.clip(rng.normal(0.96, 0.04, len(idx)), 0.8, 1.0).astype(np.float32)
            off = rng.normal(0, 2, len(idx)).astype(np.float32)
            world.regions.append(Region(idx, bare, ca, so, ph, off, knots, jit))
            green_by[p.site_id] = int(knots[0][1])
            static(m, endmember(p.substrate))
        site_feats.append(
            {
                "site_id": p.site_id,
                "name": name,
                "county": county_of(p.geom),
                "category": p.category,
                "status": p.status,
                "target": p.target,
                "restoration_start": iso_date(restoration_start),
                "geometry": p.geom,
            }
        )
        truth_sites.append({"site_id": p.site_id, "recovery_class": p.klass,
                            "netting": p.kind == "netting", "notes": notes})  # fmt: skip
    # Burn scar: forest -> dark char -> forest again over ~2 years.
    bidx = np.flatnonzero(lay.burn_mask.ravel())
    bd = lay.burn_day
    world.regions.insert(0, Region(bidx, endmember("burn")[:, None] * tex[bidx],
                                    canopy[:, bidx] * tex[bidx],
                                    soil[:, bidx] * tex[bidx], 1, offset[bidx],
                                    ((bd - 1, bd, bd + 45, bd + 730), (1, 0, 0, 1)),
                                    np.ones(len(bidx), np.float32)))  # fmt: skip
    world.canopy, world.soil = canopy * tex, soil * tex
    world.phen_index = {p: np.flatnonzero(phen == p) for p in physics.phenology}
    if climate > 0:
        years = range(start.year, end.year + 1)
        draws = np.random.default_rng([seed, 11]).standard_normal(len(years))
        world.vigour = {
            y: round(float(np.clip(1 + climate * d, 0.55, 1.3)), 3)
            for y, d in zip(years, draws, strict=True)
        }

    digger = Digger(lay, world, tex, plans, county_of, cases=hard_cases)
    place_digs(digger, plans, green_by)
    if hard_cases:
        place_hard_cases(digger)
    validity = {f["permit_id"]: (f["valid_from"], f["valid_to"]) for f in permit_feats}
    for d in digger.out:
        # Digging in a permit's polygon after it expired (or before it began) is digging
        # without one: ``outside_permit``, as the detection attributes it.
        if d["violation"] == "within_permit" and not (
            validity[d["permit_id"]][0] <= d["start"] <= validity[d["permit_id"]][1]
        ):
            d["violation"] = "outside_permit"
    digs = digger.numbered()
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
             "notes": physics.notes["harvest"]},
            {"kind": "leaf_off", "geometry": None, "date": None,
             "notes": physics.notes["leaf_off"]},
            {"kind": "burn_scar", "geometry": lay.burn,
             "date": iso_date(start + timedelta(days=bd)),
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
