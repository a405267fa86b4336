"""Area and accuracy from a labelled stratified sample (``minewatch estimate``).

The estimator is the stratified one of Olofsson et al. 2014 ("Good practices for
estimating area and assessing accuracy of land change", Remote Sensing of Environment
148: 42-57, eqs. 2-10), in the general form of Stehman 2014 ("Estimating area and map
accuracy for stratified random sampling when the strata are different from the map
classes", International Journal of Remote Sensing 35: 4923-4939), because our strata
(a buffer ring, site pixels...) are finer than the map classes. With strata equal to
the map classes both give the same numbers (checked in the tests on Olofsson's worked
example).

For a sample unit ``u`` in stratum ``h`` (``N_h`` pixels, ``n_h`` units) and an
indicator ``y_u``, the estimated population total is ``Y = sum_h N_h * mean_h(y)`` with
variance ``V(Y) = sum_h N_h^2 * s2_h(y) / n_h`` (``s2`` with ``n_h - 1`` in the
denominator; no finite population correction, as in Olofsson et al.: the sample is a
vanishing fraction of the pixels, and leaving it out errs on the wide side). Then:

- area of reference class ``k``: ``y_u = [reference_u = k]``, area = ``Y * pixel area``;
- overall accuracy: ``y_u = [map_u = reference_u]``, divided by ``N``;
- user's accuracy of ``k`` is the ratio ``R = Y / X`` of ``y_u = [map_u = k and
  reference_u = k]`` over ``x_u = [map_u = k]``; producer's accuracy the same ``y``
  over ``x_u = [reference_u = k]``. A ratio's variance is
  ``V(R) = 1/X^2 * sum_h N_h^2 (s2_h(y) + R^2 s2_h(x) - 2 R s_h(x, y)) / n_h``.

A 95 % confidence interval is the estimate +/- 1.96 standard errors.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.outputs import write_csv, write_json, write_text
from pipeline.sampling import (
    MAP_CLASSES,
    OUTSIDE,
    SAMPLE_COLUMNS,
    STRATA,
    load_strata,
    strata_path,
)
from pipeline.schema import ALL, M2_PER_MU, MANIFEST_FILE, PROGRESS_FILE, REPORT_FILE

log = logging.getLogger(__name__)

Z95 = 1.959964  # two-sided 95 % quantile of the normal distribution


@dataclass(frozen=True)
class _Stratum:
    size: float
    units: pd.DataFrame


def _stratified(strata: Sequence[_Stratum], y: str, x: str | None = None) -> tuple[float, float]:
    """Total ``Y`` (or ratio ``Y/X`` when ``x`` is given) and its standard error."""
    total_y = sum(s.size * s.units[y].mean() for s in strata)
    if x is None:
        var = sum(s.size**2 * s.units[y].var(ddof=1) / len(s.units) for s in strata)
        return float(total_y), float(np.sqrt(var))
    total_x = sum(s.size * s.units[x].mean() for s in strata)
    if total_x == 0:
        return float("nan"), float("nan")
    ratio = total_y / total_x
    var = 0.0
    for s in strata:
        yv, xv = s.units[y].to_numpy(float), s.units[x].to_numpy(float)
        cov = float(np.cov(xv, yv, ddof=1)[0, 1])
        spread = yv.var(ddof=1) + ratio**2 * xv.var(ddof=1) - 2 * ratio * cov
        var += s.size**2 * spread / len(yv)
    return float(ratio), float(np.sqrt(max(var, 0.0)) / total_x)


def _figure(value: float, se: float, digits: int = 4) -> dict[str, float | None]:
    if not np.isfinite(value):
        return {"value": None, "se": None, "ci95_low": None, "ci95_high": None}
    return {
        "value": round(value, digits),
        "se": round(se, digits),
        "ci95_low": round(value - Z95 * se, digits),
        "ci95_high": round(value + Z95 * se, digits),
    }


def stratified_estimate(
    sample: pd.DataFrame,
    strata_pixels: Mapping[str, int],
    *,
    classes: Sequence[str],
    pixel_area_m2: float,
) -> dict:
    """Area per class with its 95 % interval, and user's, producer's, overall accuracy.

    ``sample`` has ``stratum``, ``map_class`` and ``reference`` per unit (every stratum
    with pixels must hold at least two units: the caller checks); ``strata_pixels``
    the size of every stratum in pixels. Returns a JSON-ready dict: per class the mapped
    area and the estimated area (``value``, ``se``, ``ci95_low``, ``ci95_high``) in m²
    and mu, the area proportion, user's and producer's accuracy; and overall accuracy.
    """
    frame = sample.copy()
    for k in classes:
        frame[f"ref_{k}"] = (frame["reference"] == k).astype(float)
        frame[f"map_{k}"] = (frame["map_class"] == k).astype(float)
        frame[f"hit_{k}"] = frame[f"ref_{k}"] * frame[f"map_{k}"]
    frame["agree"] = (frame["reference"] == frame["map_class"]).astype(float)
    strata = [
        _Stratum(float(size), frame[frame["stratum"] == name])
        for name, size in strata_pixels.items()
        if size > 0
    ]
    n_pixels = float(sum(s.size for s in strata))
    mapped = {k: 0.0 for k in classes}
    for s in strata:
        # One map class per stratum: a stratum's pixels count towards its class.
        for k in classes:
            mapped[k] += s.size * float(s.units[f"map_{k}"].mean())
    out: dict = {"classes": {}, "pixel_area_m2": pixel_area_m2, "n": len(frame)}
    for k in classes:
        total, se = _stratified(strata, f"ref_{k}")
        ua, ua_se = _stratified(strata, f"hit_{k}", f"map_{k}")
        pa, pa_se = _stratified(strata, f"hit_{k}", f"ref_{k}")
        m2, se_m2 = total * pixel_area_m2, se * pixel_area_m2
        out["classes"][k] = {
            "mapped_area_m2": round(mapped[k] * pixel_area_m2, 1),
            "mapped_area_mu": round(mapped[k] * pixel_area_m2 / M2_PER_MU, 2),
            "area_m2": _figure(m2, se_m2, 1),
            "area_mu": _figure(m2 / M2_PER_MU, se_m2 / M2_PER_MU, 2),
            "proportion": _figure(total / n_pixels, se / n_pixels, 6),
            "users_accuracy": _figure(ua, ua_se),
            "producers_accuracy": _figure(pa, pa_se),
            "n_map": int(frame[f"map_{k}"].sum()),
            "n_reference": int(frame[f"ref_{k}"].sum()),
        }
    agree, agree_se = _stratified(strata, "agree")
    out["overall_accuracy"] = _figure(agree / n_pixels, agree_se / n_pixels)
    out["total_area_m2"] = round(n_pixels * pixel_area_m2, 1)
    return out


# ---------------------------------------------------------------- the labelled sample

ESTIMATE_FILE = "estimate.json"
ESTIMATE_COLUMNS = (
    "restored_area_mu_estimate",
    "restored_area_mu_ci95_low",
    "restored_area_mu_ci95_high",
)
"""Columns ``progress.csv`` gains, filled on its overall row, when an estimate exists."""


def read_labelled_sample(
    sample_csv: Path, workspace: Path | None = None
) -> tuple[pd.DataFrame, dict]:
    """Read and check a labelled sample and its strata sidecar against the run's map.

    Every row must carry a known ``stratum`` with that stratum's ``map_class``, a
    ``reference`` label among ``MAP_CLASSES``, and a point inside the AOI that falls in
    the stratum it claims (so a hand-edited or mis-pasted row, or a map that changed
    since the sample was drawn, is caught). Every stratum with pixels needs at least two
    labelled units for its variance. The first problem raises ``InputError`` naming the
    file, the row (its CSV line and ``sample_id``) and the field. The map is rebuilt
    from ``workspace`` (default: the one the sidecar names).
    """
    sample_csv = Path(sample_csv)
    sidecar_path = strata_path(sample_csv)
    if not sample_csv.is_file():
        raise InputError("no such sample file", file=sample_csv)
    if not sidecar_path.is_file():
        raise InputError(
            "the sample's strata file is missing (written by `minewatch sample`)", file=sidecar_path
        )
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        strata_info = {str(k): v for k, v in sidecar["strata"].items()}
        pixels = {k: int(v["pixels"]) for k, v in strata_info.items()}
        float(sidecar["pixel_area_m2"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a strata file ({exc})", file=sidecar_path) from None
    try:
        frame = pd.read_csv(sample_csv, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"not a readable CSV ({exc})", file=sample_csv) from None
    for column in SAMPLE_COLUMNS:
        if column not in frame.columns:
            raise InputError("column missing", file=sample_csv, field=column)
    frame = frame[list(SAMPLE_COLUMNS)].apply(lambda c: c.str.strip())

    def fail(i: int, field: str, message: str) -> InputError:
        sid = frame.at[i, "sample_id"]
        return InputError(
            message, file=sample_csv, record=f"row {i + 2} (sample_id={sid})", field=field
        )

    seen: set[str] = set()
    for i, row in frame.iterrows():
        if not row["sample_id"] or row["sample_id"] in seen:
            raise fail(int(i), "sample_id", "empty or repeated sample_id")
        seen.add(row["sample_id"])
        if row["stratum"] not in strata_info:
            raise fail(int(i), "stratum", f"unknown stratum {row['stratum']!r}")
        if row["map_class"] != strata_info[row["stratum"]]["map_class"]:
            raise fail(
                int(i),
                "map_class",
                f"map_class {row['map_class']!r} is not the "
                f"stratum's ({strata_info[row['stratum']]['map_class']})",
            )
        if not row["reference"]:
            raise fail(int(i), "reference", "reference is empty: label the point")
        if row["reference"] not in MAP_CLASSES:
            raise fail(
                int(i),
                "reference",
                f"unknown label {row['reference']!r}; expected one of {', '.join(MAP_CLASSES)}",
            )
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(float)
    for i in np.flatnonzero(~np.isfinite(lon) | ~np.isfinite(lat)):
        raise fail(int(i), "lon", "lon/lat is not a number")

    strata = load_strata(Path(workspace) if workspace else Path(sidecar.get("workspace", "")))
    rows, cols = strata.locate(lon, lat)
    code = np.where(rows >= 0, strata.strata[np.maximum(rows, 0), np.maximum(cols, 0)], OUTSIDE)
    for i in np.flatnonzero(code == OUTSIDE):
        raise fail(int(i), "lon", "the point lies outside the area of interest")
    claimed = frame["stratum"].map({name: k for k, name in enumerate(STRATA)}).to_numpy()
    for i in np.flatnonzero(code != claimed):
        raise fail(
            int(i),
            "stratum",
            f"the map puts this point in stratum {STRATA[code[i]]!r}; "
            "the map changed since the sample was drawn, or the row was edited",
        )

    counts = frame["stratum"].value_counts()
    for name, size in pixels.items():
        if size > 0 and int(counts.get(name, 0)) < 2:
            raise InputError(
                f"stratum {name!r} has {int(counts.get(name, 0))} labelled rows; "
                "each stratum needs at least 2",
                file=sample_csv,
                record=f"stratum {name}",
                field="stratum",
            )
    return frame, sidecar


def estimate_workspace(workspace: Path, sample_csv: Path) -> dict:
    """Check the labelled sample, estimate, and write ``estimate.json`` into ``workspace``.

    Then ``progress.csv`` and ``progress.xlsx`` get the estimate beside the mapped
    figures and the report's estimate section is filled in (a later run keeps them).
    Nothing is written before every check has passed; each file is replaced atomically.
    """
    workspace = Path(workspace)
    sample, sidecar = read_labelled_sample(sample_csv, workspace)
    if Path(sidecar["workspace"]).resolve() != workspace.resolve():
        log.warning(
            "sample %s was drawn from %s, not %s", sample_csv, sidecar["workspace"], workspace
        )
    pixels = {k: int(v["pixels"]) for k, v in sidecar["strata"].items()}
    result = stratified_estimate(
        sample, pixels, classes=MAP_CLASSES, pixel_area_m2=float(sidecar["pixel_area_m2"])
    )
    result = {
        "sample": str(Path(sample_csv).resolve()),
        "run_id": sidecar.get("run_id"),
        "seed": sidecar.get("seed"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "estimator": "stratified (Olofsson et al. 2014; Stehman 2014), 95 % normal intervals",
        "strata": {
            name: {
                "pixels": pixels[name],
                "map_class": info["map_class"],
                "n": int((sample["stratum"] == name).sum()),
            }
            for name, info in sidecar["strata"].items()
        },
        **result,
    }
    write_json(workspace / ESTIMATE_FILE, result)
    log.info("estimate from %d labelled points written to %s", len(sample), workspace)
    _refresh_progress(workspace, result)
    return result


def load_estimate(workspace: Path) -> dict | None:
    """The workspace's ``estimate.json``, or None when there is none (or it is unreadable)."""
    path = Path(workspace) / ESTIMATE_FILE
    if not path.is_file():
        return None
    try:
        estimate = json.loads(path.read_text(encoding="utf-8"))
        float(estimate["classes"]["restored"]["area_mu"]["value"])  # the shape it must have
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s unreadable (%s); figures reported without the estimate", path, exc)
        return None
    return estimate


def progress_with_estimate(progress: pd.DataFrame, estimate: Mapping | None) -> pd.DataFrame:
    """``progress`` with the estimated restored area and its 95 % interval on the overall row.

    The sample covers the whole AOI, so the estimate is a city figure: it fills the
    ``ALL``/``ALL`` row and leaves the category and county rows blank. Without an
    estimate ``progress`` comes back with the contract columns only.
    """
    table = progress.drop(columns=[c for c in ESTIMATE_COLUMNS if c in progress.columns])
    if estimate is None:
        return table
    area = estimate["classes"]["restored"]["area_mu"]
    overall = (table["category"].astype(str) == ALL) & (table["county"].astype(str) == ALL)
    for column, key in zip(ESTIMATE_COLUMNS, ("value", "ci95_low", "ci95_high"), strict=True):
        table[column] = np.where(overall, area[key], np.nan)
    return table


def _refresh_progress(workspace: Path, estimate: Mapping) -> None:
    """Rewrite ``progress.csv`` and ``progress.xlsx`` with the estimate beside the figures."""
    from pipeline.report.progress_xlsx import PROGRESS_XLSX_FILE, write_progress_xlsx

    path = workspace / PROGRESS_FILE
    if not path.is_file():
        return
    progress = progress_with_estimate(pd.read_csv(path, keep_default_na=False), estimate)
    manifest = json.loads((workspace / MANIFEST_FILE).read_text(encoding="utf-8"))
    language = ((manifest.get("config") or {}).get("report") or {}).get("language", "zh-CN")
    write_csv(path, progress)
    write_progress_xlsx(workspace / PROGRESS_XLSX_FILE, progress, estimate, language=language)
    _refresh_report(workspace / REPORT_FILE, estimate, language)


def _refresh_report(path: Path, estimate: Mapping, language: str) -> None:
    """Put the estimate into the report's estimate section, leaving the rest of the page.

    The section is self-contained markup (``report.audit.estimate_section``), so it is
    swapped in place: the page keeps its image chips, which only a run can read.
    """
    from pipeline.report.audit import estimate_section

    if not path.is_file():
        return
    page = path.read_text(encoding="utf-8")
    section = re.compile(r'<section id="estimate">.*?</section>\n', re.S)
    if not section.search(page):
        log.warning("%s has no estimate section; the next run's report will show it", path)
        return
    fresh = estimate_section(estimate, language)
    write_text(path, section.sub(lambda _: fresh, page, count=1))
