"""The flag list: one table of flags shared by ``report.html`` and the county package.

Per flag: id, suspected violation, county, the site/permit/zones it touches, area in m²
and mu, first detected / confirmed / last seen, confidence, enforcement status and the
before/after image chips (``evidence``). Flags for the record only (``within_permit``)
are marked as not for enforcement. The package adds each flag's NDVI/BSI trajectory
below the table (``trajectories_section``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.report import i18n
from pipeline.report.evidence import ChipLook, FlagEvidence
from pipeline.report.evidence_charts import chip_png
from pipeline.report.markup import DASH, ImageSource, day, e, img, num, present
from pipeline.schema import M2_PER_MU


@dataclass(frozen=True)
class Picture:
    """An image on a page and the plain-text caption beside it."""

    image: ImageSource
    caption: str


@dataclass(frozen=True)
class FlagPictures:
    """The images of one flag in the flag list."""

    before: Picture | None = None
    after: Picture | None = None
    plot: Picture | None = None
    """The flag's NDVI/BSI trajectory (the package only)."""


def chip_caption(which: str, look: ChipLook, lang: str) -> str:
    """'Before 2022-03-01 (clear 98%)' in the page's language."""
    t = i18n.text(lang)
    return f"{t[which]} {look.date.isoformat()} ({t['clear']} {look.clear_fraction:.0%})"


def inline_pictures(evidence: Mapping[str, FlagEvidence], lang: str) -> dict[str, FlagPictures]:
    """Chips drawn as PNG bytes for a self-contained page, by flag_id."""
    out = {}
    for fid, ev in evidence.items():
        looks = {w: getattr(ev, w) for w in ("before", "after")}
        out[fid] = FlagPictures(
            **{
                w: Picture(chip_png(look, ev), chip_caption(w, look, lang))
                for w, look in looks.items()
                if look is not None
            }
        )
    return out


def site_label(site_id: object, name: object) -> str:
    """A site as the pages show it (HTML): its name, then its id unless the name already
    holds it ("quarry S024", not "quarry S024 S024"); the id alone without a name."""
    code = f"<code>{e(site_id)}</code>"
    if not present(name):
        return code
    # The id as a whole token: site S02 still shows its id beside a name "quarry S024".
    if re.search(rf"(?<![0-9A-Za-z_-]){re.escape(str(site_id))}(?![0-9A-Za-z_-])", str(name)):
        return e(name)
    return f"{e(name)} {code}"


def _chips_cell(fid: str, pictures: FlagPictures | None, lang: str) -> str:
    t = i18n.text(lang)
    if pictures is None or (pictures.before is None and pictures.after is None):
        return f'<td class="chips-cell">{DASH}</td>'
    figures = []
    for which in ("before", "after"):
        pic = getattr(pictures, which)
        if pic is None:
            figures.append(
                f'<figure class="missing"><figcaption>{e(t["no_image"])}</figcaption></figure>'
            )
            continue
        figures.append(
            f"<figure>{img(pic.image, f'{t[which]} {fid}', f'chip {which}')}"
            f"<figcaption>{e(pic.caption)}</figcaption></figure>"
        )
    return f'<td class="chips-cell"><div class="chips">{"".join(figures)}</div></td>'


def _flag_sort_key(props: Mapping[str, Any]) -> tuple[int, int, str, str]:
    return (
        props.get("violation") == "within_permit",
        props.get("level") != "high",
        str(props.get("county") or ""),
        str(props.get("first_detected") or ""),
    )


def flags_section(
    flags: list[dict],
    site_info: Mapping[str, Mapping[str, Any]],
    lang: str,
    *,
    pictures: Mapping[str, FlagPictures] | None = None,
    summary: str | None = None,
) -> str:
    """The flag list; ``pictures`` by flag_id adds the chips column.

    ``flags`` are GeoJSON Feature dicts with the contract properties (and optionally
    ``status``); ``site_info`` maps site_id to its attributes (for the site's name).
    ``summary`` replaces the standard line counting the flags.
    """
    t = i18n.text(lang)
    head = f'<section id="flags"><h2>{e(t["flags"])}</h2>'
    if not flags:
        empty = summary if summary is not None else t["no_flags"]
        return head + f'<p class="empty">{e(empty)}</p></section>\n'
    props_list = sorted(((f.get("properties") or {}) for f in flags), key=_flag_sort_key)
    n_record = sum(p.get("violation") == "within_permit" for p in props_list)
    has_status = any(present(p.get("status")) for p in props_list)
    cols = [
        "flag_id",
        "violation",
        "county",
        "site",
        "area_m2",
        "area_mu",
        "first_detected",
        "confirmed",
        "last_seen",
        "level",
        *(["enforcement"] if has_status else []),
        "note",
        *(["chips"] if pictures is not None else []),
    ]
    rows = []
    for p in props_list:
        record_only = p.get("violation") == "within_permit"
        site_id = p.get("site_id")
        site_html = DASH
        if present(site_id):
            site_html = site_label(site_id, (site_info.get(str(site_id)) or {}).get("name"))
        touches = [e(p.get("permit_id"))] if present(p.get("permit_id")) else []
        zone_ids = p.get("zone_ids") or []
        touches += [e(z) for z in (zone_ids if isinstance(zone_ids, list) else [zone_ids])]
        if touches:
            site_html += f"<br><small>{', '.join(touches)}</small>"
        area_mu = p.get("area_mu")
        if not present(area_mu) and present(p.get("area_m2")):
            area_mu = float(p["area_m2"]) / M2_PER_MU
        confidence = num(p.get("confidence"), 2)
        level = i18n.term(i18n.LEVEL_NAMES, p.get("level"), lang)
        confirmed = (
            day(p.get("confirmed"))
            if present(p.get("confirmed"))
            else (f'<span class="muted">{e(t["unconfirmed"])}</span>')
        )
        cells = [
            f'<td class="nw"><code>{e(p.get("flag_id"))}</code></td>',
            f"<td>{e(i18n.term(i18n.VIOLATION_NAMES, p.get('violation'), lang))}</td>",
            f"<td>{e(p.get('county')) or DASH}</td>",
            f'<td class="site">{site_html}</td>',
            f'<td class="n">{num(p.get("area_m2"), 0)}</td>',
            f'<td class="n">{num(area_mu, 2)}</td>',
            f'<td class="nw">{day(p.get("first_detected"))}</td>',
            f'<td class="nw">{confirmed}</td>',
            f'<td class="nw">{day(p.get("last_seen"))}</td>',
            f"<td>{e(level) or DASH} ({confidence})</td>",
        ]
        if has_status:
            cells.append(f"<td>{e(i18n.term(i18n.ENFORCEMENT_NAMES, p.get('status'), lang))}</td>")
        note = f"<strong>{e(t['not_for_enforcement'])}</strong>" if record_only else ""
        cells.append(f"<td>{note}</td>")
        fid = str(p.get("flag_id"))
        if pictures is not None:
            cells.append(_chips_cell(fid, pictures.get(fid), lang))
        cls = ' class="within-permit"' if record_only else ""
        rows.append(f'<tr{cls} data-flag-id="{e(fid)}">{"".join(cells)}</tr>')
    if summary is None:
        summary = t["flags_summary"].format(
            n=len(props_list), m=len(props_list) - n_record, k=n_record
        )
    caption = f'<p class="muted">{e(t["chips_caption"])}</p>' if pictures is not None else ""
    header = "".join(f'<th scope="col">{e(t[c])}</th>' for c in cols)
    return (
        head + f"<p>{e(summary)}</p>{caption}"
        f'<div class="scroll"><table id="flag-table" class="flags"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>\n"
    )


def trajectories_section(flags: list[dict], pictures: Mapping[str, FlagPictures], lang: str) -> str:
    """Each flag's NDVI/BSI trajectory plot, in the order of ``flags``."""
    t = i18n.text(lang)
    figures = []
    for feature in flags:
        fid = str((feature.get("properties") or {}).get("flag_id"))
        pic = pictures.get(fid)
        if pic is None or pic.plot is None:
            continue
        plot = img(pic.plot.image, f"NDVI/BSI {fid}", "plot")
        figures.append(
            f'<figure class="plot" id="plot-{e(fid)}">{plot}'
            f"<figcaption>{e(pic.plot.caption)}</figcaption></figure>"
        )
    if not figures:
        return ""
    return (
        f'<section id="trajectories"><h2>{e(t["trajectories"])}</h2>'
        f'<p class="muted">{e(t["flag_plot_caption"])}</p>{"".join(figures)}</section>\n'
    )
