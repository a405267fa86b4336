"""The cast of sites of a generated scene: what each site is and how it behaves over time.

Every category, status, target and recovery class is drawn at least once, in random
order; ``restoration_trajectory`` gives each restoration its start and cover knots.

Training cast (``extra_sites`` > 0, 0 by default): that many more sites, drawn from
``_training_plans``: every recovery class on every target. For ``landscape`` the
restoration is a pit lake: filled (restored), still filling with only its deepest part
under water (revegetating), filled and then drained back to mud in the last season
(regressed), or filled and then dug again (disturbed). Green netting and bare or waste
ground on any target. Restorations that greened to their target in their first year and
died back in their second, and stayed so (``regressed`` for good: a failed restoration);
restorations that never greened (``unrestored``); suspended quarries and closed illegal
sites dug again (``disturbed``, although their restoration never began). The default
cast is unchanged but for its labels: its suspended quarry and closed illegal site
that are dug are ``disturbed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon

VILLAGES = ("袁家店", "张官营", "李家庄", "王湾", "赵庄", "马楼", "刘沟", "陈岗", "杨庄", "黄土岭",
            "孙店", "周营", "吴寨", "郑岭", "冯庄", "韩店", "朱沟", "何庄", "高村", "石门",
            "段店", "瓦屋", "下汤", "辛集", "张良", "熊背", "董周", "观音寺")  # fmt: skip
DIRS = ("东", "西", "南", "北", "东南", "西北", "东北", "西南")
MINERALS = ("灰岩矿", "建筑石料矿", "砂石矿", "铝土矿", "石英砂矿", "黏土矿")


@dataclass
class Plan:
    """What one site is and how it behaves; position and shape come later."""

    category: str
    status: str
    klass: str
    target: str
    kind: str  # mine / restore / lake / netting / bare / waste
    area_ha: tuple[float, float]
    dig: str | None = None
    limestone: bool = False
    partner: Plan | None = None  # overlap this site a little
    substrate: str = "weathered"
    early_die_back: bool = False  # regressed: died back a year or more before the end
    geom: Polygon | None = None
    permit: Polygon | None = None
    pit: Polygon | None = None
    site_id: str = ""


def site_plans(rng: np.random.Generator, extra_sites: int = 0) -> list[Plan]:
    """The cast of sites: every category, status, target and recovery class, shuffled.

    ``extra_sites`` more come from ``_training_plans`` (none by default).
    """
    greens = [str(t) for t in rng.permutation(["forest", "farmland", "grassland"])]

    def any_target() -> str:
        return str(rng.choice(["forest", "farmland", "grassland", "landscape"]))

    def green() -> str:
        return str(rng.choice(greens))

    # A site dug where digging is not allowed (a closed illegal site, a suspended quarry)
    # is ``disturbed``, whether or not its restoration has begun.
    closed_illegal = Plan("illegal", "closed", "disturbed", any_target(), "bare", (3, 8),
                           dig="illegal_site")  # fmt: skip
    plans = [
        Plan("licensed", "producing", "unrestored", any_target(), "mine", (6, 12),
              dig="outside_permit"),
        Plan("licensed", "producing", "unrestored", any_target(), "mine", (8, 13),
              dig="within_permit", limestone=bool(rng.random() < 0.5)),
        Plan("licensed", "suspended", "disturbed", any_target(), "mine", (6, 12),
              dig="suspended_site"),
        Plan("licensed", "producing", "unrestored", any_target(), "mine", (3, 10), limestone=True),
        Plan("orphaned", "restoring", "restored", greens[0], "restore", (2, 10)),
        Plan("illegal", "restoring", "restored", greens[1], "restore", (1, 6)),
        Plan(str(rng.choice(["orphaned", "licensed"])), "restoring", "restored", greens[2],
              "restore", (2, 10)),
        Plan("orphaned", "restoring", "disturbed", green(), "restore", (5, 12),
              dig="restored_land"),
        Plan("orphaned", "restoring", "restored", "landscape", "lake", (3, 10)),
        Plan("orphaned", "restoring", "revegetating", green(), "restore", (2, 10)),
        Plan("illegal", "restoring", "revegetating", green(), "restore", (1, 5)),
        Plan("orphaned", "restoring", "regressed", str(rng.choice(["forest", "grassland"])),
              "restore", (2, 8)),
        Plan("illegal", "restoring", "regressed", green(), "restore", (1, 5)),
        Plan("orphaned", "restoring", "unrestored", any_target(), "netting", (1, 5)),
        closed_illegal,
        Plan("orphaned", "closed", "unrestored", any_target(), "bare", (2, 10)),
        Plan("waste_pile", "closed", "unrestored", any_target(), "waste", (1, 4),
              partner=closed_illegal),
        Plan("waste_pile", "restoring", str(rng.choice(["restored", "revegetating"])), green(),
              "restore", (1, 4), substrate="waste"),
        Plan("illegal", "closed", "unrestored", any_target(), "bare", (1, 4)),
    ]  # fmt: skip
    pool = [
        lambda: Plan("licensed", "producing", "unrestored", any_target(), "mine", (3, 10)),
        lambda: Plan("licensed", "suspended", "unrestored", any_target(), "mine", (3, 8)),
        lambda: Plan("orphaned", "restoring", "restored", green(), "restore", (1, 10)),
        lambda: Plan("orphaned", "restoring", "revegetating", green(), "restore", (1, 10)),
        lambda: Plan("illegal", "closed", "unrestored", any_target(), "bare", (1, 4)),
        lambda: Plan("waste_pile", "closed", "unrestored", any_target(), "waste", (1, 3)),
        lambda: Plan("waste_pile", "restoring", "revegetating", green(), "restore", (1, 3),
                      substrate="waste"),
        lambda: Plan("illegal", "restoring", "regressed", green(), "restore", (1, 4)),
    ]  # fmt: skip
    for k in rng.integers(0, len(pool), int(rng.integers(2, 8))):
        plans.append(pool[int(k)]())
    if extra_sites:
        plans += _training_plans(rng, extra_sites)
    return [plans[int(i)] for i in rng.permutation(len(plans))]


def _training_plans(rng: np.random.Generator, n: int) -> list[Plan]:
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
        (3, lambda: Plan(category(), "restoring", "restored", pick(greens), "restore", (1, 5))),
        (3, lambda: Plan(category(), "restoring", "revegetating", pick(greens), "restore",
                          (1, 5), substrate=pick(["weathered", "waste"]))),
        (3, lambda: Plan(category(), "restoring", "regressed", pick(greens), "restore", (1, 5))),
        (1, lambda: Plan(category(), "restoring", "disturbed", pick(greens), "restore", (3, 6),
                          dig="restored_land")),
        (2, lambda: Plan(category(), "restoring", "regressed", pick(greens), "restore", (1, 5),
                          early_die_back=True)),
        (1, lambda: Plan(category(), "restoring", "unrestored", pick(greens), "restore", (1, 5))),
        (1, lambda: Plan("licensed", "suspended", "disturbed", pick(targets), "mine", (4, 8),
                          dig="suspended_site")),
        (1, lambda: Plan("illegal", "closed", "disturbed", pick(targets), "bare", (2, 5),
                          dig="illegal_site")),
        (2, lambda: Plan(category(), "restoring", "unrestored", pick(targets), "netting", (1, 4))),
        (1, lambda: Plan(category(), "restoring", "restored", "landscape", "lake", (1, 5))),
        (1, lambda: Plan(category(), "restoring", "revegetating", "landscape", "lake", (1, 5))),
        (1, lambda: Plan(category(), "restoring", "regressed", "landscape", "lake", (1, 5))),
        (1, lambda: Plan(category(), "restoring", "disturbed", "landscape", "lake", (3, 6),
                          dig="restored_land")),
        (1, lambda: Plan(category(), "closed", "unrestored", pick(targets), "bare", (1, 4))),
        (1, lambda: Plan("waste_pile", "closed", "unrestored", pick(targets), "waste", (1, 3))),
    ]  # fmt: skip
    weights = np.array([w for w, _ in pool], float)
    picks = rng.choice(len(pool), size=n, p=weights / weights.sum())
    return [pool[int(k)][1]() for k in picks]


def site_names(rng: np.random.Generator, plans: list[Plan]) -> list[str]:
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


def restoration_trajectory(rng: np.random.Generator, p: Plan, T: int) -> tuple[int, tuple]:
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
    if p.klass == "regressed" and p.early_die_back:
        # Greens to its target over the first year, holds a growing season, then dies
        # back (thin topsoil) at least a year before the end and never recovers.
        r0 = int(rng.uniform(0.02, 0.08) * T)
        ramp = int(min(300, 0.25 * T))
        d0 = int(min(r0 + ramp + rng.uniform(240, 420), T - 455))
        d0 = max(d0, r0 + ramp + 120)
        return r0, ((r0, r0 + ramp, d0, d0 + 90), (0, 0.8, 0.8, 0.08))
    if p.klass == "unrestored":
        # Restoration began, nothing took: a thin weedy cover at most.
        r0 = int(rng.uniform(0.05, 0.4) * T)
        return r0, ((r0, T), (0.0, float(rng.uniform(0.03, 0.1))))
    if p.klass == "regressed":
        r0 = int(rng.uniform(0.02, 0.12) * T)
        ramp = int(min(360, 0.3 * T))
        d0 = int(max(r0 + ramp + 30, T - min(150, 0.25 * T)))
        return r0, ((r0, r0 + ramp, d0, d0 + int(min(90, 0.7 * (T - d0)))), (0, 0.75, 0.75, 0.1))
    raise ValueError(p.klass)
