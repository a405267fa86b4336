"""The report's audit sections: the sample-based area estimate and the enforcement record.

The estimate (``estimate.json``, from ``minewatch estimate``) puts each class's area
with its 95 % confidence interval beside the mapped area, with the user's, producer's
and overall accuracy. The enforcement record closes the loop with the county teams:
per county and violation, how many flags were issued, confirmed (``confirmed`` or
``resolved`` in the ledger), answered as false alarms, or still open (``new``,
``dispatched``), and the precision that follows, confirmed / (confirmed + false
alarms). Flags ``within_permit`` are kept for the record, not for enforcement, and are
left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pipeline.report import i18n
from pipeline.report.audit_text import audit_text
from pipeline.report.markup import DASH, e, num
from pipeline.schema import ALL

RECORD_COLUMNS = ("county", "violation", "issued", "confirmed", "false_alarm", "open", "precision")
_CONFIRMED = ("confirmed", "resolved")
_OPEN = ("new", "dispatched")


def _record_row(county: str, violation: str, statuses: pd.Series) -> dict[str, Any]:
    confirmed = int(statuses.isin(_CONFIRMED).sum())
    false_alarm = int((statuses == "false_alarm").sum())
    answered = confirmed + false_alarm
    return {
        "county": county,
        "violation": violation,
        "issued": len(statuses),
        "confirmed": confirmed,
        "false_alarm": false_alarm,
        "open": int(statuses.isin(_OPEN).sum()),
        "precision": round(confirmed / answered, 3) if answered else None,
    }


def enforcement_record(flags: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Per county and violation: issued, confirmed, false alarms, open, precision.

    ``flags`` are the ledger's rows (``ledger.list_flags``: ``county``, ``violation``,
    ``status``). Rows come sorted by county then violation, each county followed by its
    ``ALL`` row, and a last ``ALL``/``ALL`` row for the city.
    """
    frame = pd.DataFrame(list(flags), columns=["county", "violation", "status"])
    frame = frame[frame["violation"] != "within_permit"]
    frame["county"] = frame["county"].fillna("").astype(str)
    rows = []
    for county in sorted(set(frame["county"])):
        in_county = frame[frame["county"] == county]
        for violation in sorted(set(in_county["violation"])):
            statuses = in_county.loc[in_county["violation"] == violation, "status"]
            rows.append(_record_row(county, violation, statuses))
        rows.append(_record_row(county, ALL, in_county["status"]))
    if rows:
        rows.append(_record_row(ALL, ALL, frame["status"]))
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def enforcement_section(record: pd.DataFrame | None, lang: str) -> str:
    """The enforcement record as a table (``id="enforcement"``)."""
    a = audit_text(lang)
    head = f'<section id="enforcement"><h2>{e(a["enforcement"])}</h2>'
    if record is None or record.empty:
        return head + f'<p class="empty">{e(a["no_enforcement"])}</p></section>\n'
    cols = ("issued", "confirmed", "false_alarm", "open", "precision")
    heads = "".join(f'<th scope="col">{e(a[c])}</th>' for c in (*cols,))
    body = []
    for r in record.to_dict("records"):
        total = r["violation"] == ALL
        county = a["total"] if r["county"] == ALL else r["county"]
        violation = a["total"] if total else i18n.term(i18n.VIOLATION_NAMES, r["violation"], lang)
        precision = (
            DASH
            if r["precision"] is None or pd.isna(r["precision"])
            else (f"{100 * float(r['precision']):.0f}%")
        )
        cells = (
            "".join(f'<td class="n" data-col="{c}">{num(r[c], 0)}</td>' for c in cols[:-1])
            + f'<td class="n" data-col="precision">{precision}</td>'
        )
        cls = ' class="total"' if total else ""
        body.append(
            f'<tr{cls} data-county="{e(r["county"])}" data-violation="{e(r["violation"])}">'
            f'<th scope="row">{e(county)}</th><td>{e(violation)}</td>{cells}</tr>'
        )
    return (
        f'{head}<p>{e(a["enforcement_intro"])}</p><table class="enforcement">'
        f'<thead><tr><th scope="col">{e(a["county"])}</th><th scope="col">'
        f"{e(a['violation'])}</th>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f'<p class="note">{e(a["precision_note"])}</p></section>\n'
    )


def estimate_section(estimate: Mapping[str, Any] | None, lang: str) -> str:
    """The sample-based estimate beside the mapped areas (``id="estimate"``)."""
    a = audit_text(lang)
    head = f'<section id="estimate"><h2>{e(a["estimate"])}</h2>'
    if not estimate:
        return head + f'<p class="empty">{e(a["no_estimate"])}</p></section>\n'
    keys = ("mapped_mu", "estimated_mu", "ci95", "users", "producers")
    heads = "".join(f'<th scope="col">{e(a[k])}</th>' for k in keys)
    body = []
    for name, c in (estimate.get("classes") or {}).items():
        area, ua, pa = c["area_mu"], c["users_accuracy"], c["producers_accuracy"]
        body.append(
            f'<tr data-class="{e(name)}"><th scope="row">{e(a["classes"].get(name, name))}</th>'
            f'<td class="n" data-col="mapped">{num(c["mapped_area_mu"], 1)}</td>'
            f'<td class="n" data-col="estimated">{num(area["value"], 1)}</td>'
            f'<td class="n" data-col="ci95">{num(area["ci95_low"], 1)} – '
            f"{num(area['ci95_high'], 1)}</td>"
            f'<td class="n" data-col="users">{_accuracy(ua)}</td>'
            f'<td class="n" data-col="producers">{_accuracy(pa)}</td></tr>'
        )
    oa = estimate.get("overall_accuracy") or {}
    foot = (
        f"<p>{e(a['overall'])}: <span data-col='overall'>{_accuracy(oa)}</span>; "
        f"{e(a['sample_size'])}: {e(estimate.get('n'))}; {e(a['sample_run'])}: "
        f"<code>{e(estimate.get('run_id'))}</code></p>"
    )
    return (
        f'{head}<p>{e(a["estimate_intro"])}</p><table class="estimate"><thead><tr>'
        f'<th scope="col">{e(a["class"])}</th>{heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{foot}</section>\n"
    )


def _accuracy(figure: Mapping[str, Any]) -> str:
    value, se = figure.get("value"), figure.get("se")
    if value is None:
        return DASH
    text = f"{100 * float(value):.1f}%"
    return f"{text} ± {100 * float(se):.1f}" if se is not None else text
