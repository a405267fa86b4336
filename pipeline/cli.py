"""The ``minewatch`` command: parse, load config, set up logging, call the stage, map errors.

Exit status: 0 done; 2 bad input or config (one line naming file, record and field;
nothing in --out changed); 3 the workspace is locked by another live run; 1 any
other failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import __version__, schema
from pipeline.audit_cli import (
    add_audit_commands,
    cmd_estimate,
    cmd_sample,
    train_from_ledger_command,
)
from pipeline.errors import InputError, MineWatchError, WorkspaceLocked
from pipeline.logs import report_folded, setup_logging

log = logging.getLogger("pipeline")

EXIT_OK, EXIT_FAILURE, EXIT_INPUT, EXIT_LOCKED = 0, 1, 2, 3


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML config merged over the packaged defaults")
    p.add_argument("--catalog", help="local STAC catalog (path or file:// URL); provider.catalog")
    p.add_argument("--sites", help="sites.geojson or sites.gpkg; inputs.sites")
    p.add_argument("--permits", help="permits.geojson (optional); inputs.permits")
    p.add_argument("--zones", help="zones.geojson (optional); inputs.zones")
    p.add_argument("--aoi", help="area-of-interest polygon file; default the catalog's extent")
    p.add_argument("--start", type=_date, help="first acquisition date used (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, help="last acquisition date used (YYYY-MM-DD)")
    _add_compute_options(p)
    p.add_argument("--language", choices=["zh-CN", "en"], help="report language; report.language")


def _add_compute_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scheduler",
        help="tcp://HOST:PORT of an existing Dask cluster; default: Dask threads on this machine",
    )
    p.add_argument("--workers", type=int, help="local threads (default: one per core)")
    p.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON object per line on stderr (no progress bar)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minewatch",
        description="Watch open-pit mine restoration and new excavation from Sentinel-2.",
        epilog="Exit status: 0 done, 2 bad input or config, 3 workspace locked, 1 other failure.",
    )
    parser.add_argument("--version", action="version", version=f"minewatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole pipeline on the embedded demo data")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.add_argument(
        "--data",
        type=Path,
        default=Path("data/demo"),
        help="where the demo data is generated (once)",
    )
    demo.add_argument("--language", choices=["zh-CN", "en"], help="report language")
    _add_compute_options(demo)

    run = sub.add_parser("run", help="run the pipeline; CLI flags override the config file")
    run.add_argument("--out", type=Path, required=True, help="the run's workspace folder")
    _add_run_options(run)

    fetch = sub.add_parser(
        "fetch",
        help="fetch Sentinel-2 L2A over the sites into a local archive (STAC catalog of COGs)",
        epilog="Credentials for Sentinel Hub: SH_CLIENT_ID and SH_CLIENT_SECRET. Rerunning "
        "with the same --out fetches only what is missing. Exit status: 0 all fetched, "
        "2 bad input, config or credentials, 1 some items failed (the rest is archived).",
    )
    fetch.add_argument(
        "--provider", choices=["sentinelhub", "stac"], help="provider.kind (stac: a STAC API)"
    )
    fetch.add_argument("--out", type=Path, help="archive folder; provider.archive")
    fetch.add_argument("--config", type=Path, help="YAML config merged over the packaged defaults")
    fetch.add_argument("--sites", help="sites.geojson or sites.gpkg; inputs.sites")
    fetch.add_argument("--aoi", help="also cover this area-of-interest polygon; aoi")
    fetch.add_argument("--start", type=_date, help="first acquisition date (YYYY-MM-DD)")
    fetch.add_argument("--end", type=_date, help="last acquisition date (YYYY-MM-DD)")

    validate = sub.add_parser(
        "validate",
        help="check the config and every input without running; list every problem at once",
        epilog="Exit status: 0 no error (warnings are listed), 2 at least one error.",
    )
    validate.add_argument("--config", type=Path, help="YAML config merged over the defaults")
    validate.add_argument("--catalog", help="local STAC catalog (path or file:// URL)")
    validate.add_argument("--sites", help="sites.geojson or sites.gpkg; inputs.sites")
    validate.add_argument("--permits", help="permits.geojson (optional); inputs.permits")
    validate.add_argument("--zones", help="zones.geojson (optional); inputs.zones")
    validate.add_argument("--aoi", help="area-of-interest polygon file; aoi")
    validate.add_argument("--start", type=_date, help="first acquisition date (YYYY-MM-DD)")
    validate.add_argument("--end", type=_date, help="last acquisition date (YYYY-MM-DD)")
    validate.add_argument("--json", action="store_true", help="machine-readable output")

    flags = sub.add_parser("flags", help="read and update the flag ledger of a workspace")
    fsub = flags.add_subparsers(dest="flags_command", required=True)
    fl = fsub.add_parser("list", help="list flags")
    fl.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    fl.add_argument("--county", help="only this county's flags")
    fl.add_argument("--json", action="store_true", help="machine-readable output")
    fs = fsub.add_parser("show", help="one flag and its history")
    fs.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    fs.add_argument("flag_id")
    fst = fsub.add_parser("set-status", help="record an enforcement unit's answer")
    fst.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    fst.add_argument("flag_id")
    fst.add_argument("status", choices=schema.ENFORCEMENT_STATUSES)
    fst.add_argument("--by", required=True, help="who answers (name or unit)")
    fst.add_argument("--comment", help="free text kept with the status")
    fe = fsub.add_parser(
        "export",
        help="write a county's enforcement package: open flags, image chips, plots, a page",
    )
    fe.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    fe.add_argument("--county", required=True, help="the county whose open flags are exported")
    fe.add_argument("--out", type=Path, required=True, help="package folder to write (created)")
    fe.add_argument(
        "--language", choices=["zh-CN", "en"], help="page language (default: the run's)"
    )

    train = sub.add_parser(
        "train",
        help="retrain the recovery model from labelled sites (grouped cross-validation)",
        description="Run the pipeline on the catalog and sites (or read --workspace), compute "
        "each labelled site's features as of its assessed_until, cross-validate grouped by "
        "site, fit, and write model.skops, model_trees.npz and model_card.json into --out.",
    )
    train.add_argument(
        "--labels",
        type=Path,
        help="CSV of site_id, assessed_until (YYYY-MM-DD), recovery_class (required "
        "unless --from-ledger)",
    )
    train.add_argument(
        "--from-ledger",
        action="store_true",
        help="learn from the county teams' answers in --workspace's ledger: review the "
        "detection thresholds, add confirmed flags' sites as labels (retrain with --labels)",
    )
    train.add_argument("--out", type=Path, required=True, help="model folder, e.g. models/NAME")
    train.add_argument(
        "--workspace", type=Path, help="read this finished run instead of running the pipeline"
    )
    train.add_argument("--model-version", help="version in the card (default: from the data)")
    _add_run_options(train)
    add_audit_commands(sub)
    return parser


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "provider.catalog": args.catalog,
        "inputs.sites": args.sites,
        "inputs.permits": args.permits,
        "inputs.zones": args.zones,
        "aoi": args.aoi,
        "period.start": args.start.isoformat() if args.start else None,
        "period.end": args.end.isoformat() if args.end else None,
        "compute.scheduler": args.scheduler,
        "compute.workers": args.workers,
        "report.language": args.language,
    }


def _resolve(value: str | None) -> str | None:
    if value is None or "://" in value:
        return value
    return str(Path(value).resolve())


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.run import run_pipeline

    overrides = _run_overrides(args)
    for key in ("provider.catalog", "inputs.sites", "inputs.permits", "inputs.zones", "aoi"):
        overrides[key] = _resolve(overrides[key])
    cfg = load_config(args.config, overrides)
    result = run_pipeline(cfg, args.out)
    print(f"{result.n_flags} flags; outputs in {result.out.resolve()}")
    print(f"report: {result.outputs[schema.REPORT_FILE].resolve()}")
    return EXIT_OK


def _cmd_fetch(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.fetch import fetch_archive

    kind = {"stac": "stac_api"}.get(args.provider, args.provider)
    overrides = {
        "provider.kind": kind,
        "provider.archive": _resolve(str(args.out)) if args.out else None,
        "inputs.sites": _resolve(args.sites),
        "aoi": _resolve(args.aoi),
        "period.start": args.start.isoformat() if args.start else None,
        "period.end": args.end.isoformat() if args.end else None,
    }
    cfg = load_config(args.config, overrides)
    result = fetch_archive(cfg)
    print(
        f"{len(result.fetched)} items fetched, {len(result.reused)} already archived, "
        f"{len(result.empty)} empty, {len(result.failed)} failed; catalog: {result.catalog}"
    )
    for item, reason in sorted(result.failed.items()):
        print(f"failed: {item}: {reason}", file=sys.stderr)
    return EXIT_FAILURE if result.failed else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.run import run_pipeline
    from pipeline.scenes import ensure_demo_data

    paths = ensure_demo_data(args.data)
    cfg = load_config(
        None,
        {
            **paths.run_overrides(),
            "report.language": args.language,
            "compute.workers": args.workers,
            "compute.scheduler": args.scheduler,
        },
    )
    result = run_pipeline(cfg, args.out)
    print(f"demo: {result.n_flags} flags; outputs in {result.out.resolve()}")
    print(f"report: {result.outputs[schema.REPORT_FILE].resolve()}")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.train import train_from_labels

    overrides = _run_overrides(args)
    for key in ("provider.catalog", "inputs.sites", "inputs.permits", "inputs.zones", "aoi"):
        overrides[key] = _resolve(overrides[key])
    cfg = load_config(args.config, overrides)
    if args.from_ledger:
        return train_from_ledger_command(cfg, args)
    if args.labels is None:
        raise InputError("give --labels (or --from-ledger with --workspace)", field="--labels")
    model = train_from_labels(
        cfg, args.labels, args.out, workspace=args.workspace, version=args.model_version
    )
    cv = model.card["cross_validation"]
    print(f"model {model.version} written to {args.out.resolve()}")
    print(f"cross-validation grouped by site: accuracy {cv['accuracy']}")
    for name, figures in cv["per_class"].items():
        print(
            f"  {name}: precision {figures['precision']} recall {figures['recall']} "
            f"(n={figures['support']})"
        )
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.validate import validate_inputs

    overrides = {
        "provider.catalog": _resolve(args.catalog),
        "inputs.sites": _resolve(args.sites),
        "inputs.permits": _resolve(args.permits),
        "inputs.zones": _resolve(args.zones),
        "aoi": _resolve(args.aoi),
        "period.start": args.start.isoformat() if args.start else None,
        "period.end": args.end.isoformat() if args.end else None,
    }
    quiet = logging.getLogger("pipeline")
    level = quiet.level
    if not args.verbose:  # the problems are listed below; no need to log them as well
        quiet.setLevel(logging.ERROR)
    try:
        result = validate_inputs(args.config, overrides)
    finally:
        quiet.setLevel(level)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    else:
        for name, path in result.inputs.items():
            if path is not None:
                print(f"{name}: {path}")
        for problem in result.problems:
            print(problem)
        n_err, n_warn = len(result.errors), len(result.warnings)
        verdict = "inputs are valid" if result.ok else "inputs are not valid"
        print(f"{verdict}: {n_err} error(s), {n_warn} warning(s)")
    return EXIT_OK if result.ok else EXIT_INPUT


def _cmd_flags(args: argparse.Namespace) -> int:
    from pipeline.ledger import LEDGER_FILE, flag_history, list_flags, open_ledger, set_status

    if not (args.workspace / LEDGER_FILE).exists():
        raise InputError(
            "no flag ledger here; run `minewatch run` first", file=args.workspace / LEDGER_FILE
        )
    with open_ledger(args.workspace) as con:
        if args.flags_command == "list":
            rows = list_flags(con, county=args.county)
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=1))
            else:
                for r in rows:
                    print(
                        f"{r['flag_id']}\t{r['status']}\t{r['violation']}\t{r['county']}\t"
                        f"{r['first_detected']}\t{r['area_m2']:.0f} m2"
                    )
        elif args.flags_command == "show":
            rows = [r for r in list_flags(con) if r["flag_id"] == args.flag_id]
            if not rows:
                raise InputError(f"no flag {args.flag_id!r} in the ledger", field="flag_id")
            row = {k: v for k, v in rows[0].items() if k != "geometry_wkt"}
            row["history"] = flag_history(con, args.flag_id)
            print(json.dumps(row, ensure_ascii=False, indent=1))
        elif args.flags_command == "export":
            from pipeline.report.package import export_county_package

            result = export_county_package(
                args.workspace, args.out, county=args.county, language=args.language, ledger=con
            )
            print(f"{result.n_flags} flags for {result.county}; package in {result.dest.resolve()}")
        else:
            set_status(con, args.flag_id, args.status, who=args.by, comment=args.comment)
            print(f"{args.flag_id}: {args.status}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose, json_lines=getattr(args, "log_json", False))
    handlers = {
        "run": _cmd_run,
        "demo": _cmd_demo,
        "flags": _cmd_flags,
        "validate": _cmd_validate,
        "train": _cmd_train,
        "fetch": _cmd_fetch,
        "sample": cmd_sample,
        "estimate": cmd_estimate,
    }
    try:
        return handlers[args.command](args)
    except InputError as exc:
        report_folded()
        print(f"minewatch: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except WorkspaceLocked as exc:
        print(f"minewatch: workspace locked: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except MineWatchError as exc:
        print(f"minewatch: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("minewatch: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # the last line of defence: one clear message, status 1
        log.debug("unexpected failure", exc_info=True)
        print(
            f"minewatch: failed: {type(exc).__name__}: {exc} (rerun with -v for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    finally:
        report_folded()


if __name__ == "__main__":
    sys.exit(main())
