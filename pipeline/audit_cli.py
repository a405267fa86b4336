"""The audit commands of ``minewatch``: ``sample``, ``estimate`` and ``train --from-ledger``.

Their arguments and handlers, kept beside ``cli`` (which parses, sets up logging and
maps errors to exit codes for every command) so that each module stays readable.
Handlers return the exit status; errors propagate to ``cli.main`` as for any command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

EXIT_OK = 0


def add_audit_commands(sub: argparse._SubParsersAction) -> None:
    sample = sub.add_parser(
        "sample",
        help="draw a stratified random sample of pixels from a run's map, for labelling",
        description="Strata: flagged excavation, a 30 m ring around flags, sites classed "
        "restored, other site pixels, the rest of the AOI. At least 50 points per rare "
        "stratum, the rest in proportion to area. Writes the CSV (reference left empty) "
        "and beside it NAME.strata.json with the strata sizes. Same seed, same sample.",
    )
    sample.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    sample.add_argument("--n", type=int, required=True, help="number of sample points")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--out", type=Path, required=True, help="sample CSV to write")
    sample.add_argument(
        "--chips",
        type=Path,
        help="also write a before/after chip and an NDVI plot per point into this new folder",
    )
    estimate = sub.add_parser(
        "estimate",
        help="area per class with 95%% confidence intervals, and accuracies, "
        "from a labelled sample",
        description="Reads the sample CSV with `reference` filled in (excavation, restored, "
        "other) and its strata file; writes estimate.json into the workspace. A bad row "
        "exits 2 naming it, with the workspace unchanged.",
    )
    estimate.add_argument("--workspace", type=Path, required=True, help="the run's --out folder")
    estimate.add_argument("--sample", type=Path, required=True, help="the labelled sample CSV")
    estimate.add_argument("--json", action="store_true", help="print estimate.json")


def cmd_sample(args: argparse.Namespace) -> int:
    from pipeline.sampling import strata_path, write_sample

    if args.chips is not None and args.chips.exists() and any(args.chips.iterdir()):
        raise InputError("exists and is not an empty folder", file=args.chips, field="--chips")
    frame, sidecar = write_sample(args.workspace, args.out, n=args.n, seed=args.seed)
    for name, info in sidecar["strata"].items():
        print(f"{name}\t{info['pixels']} pixels\t{info['n']} points")
    print(f"{len(frame)} points written to {args.out}; strata in {strata_path(args.out)}")
    if args.chips is not None:
        from pipeline.sample_chips import write_sample_chips

        drawn = write_sample_chips(args.workspace, frame, args.chips)
        print(f"chips and plots for {drawn} points in {args.chips}")
    return EXIT_OK


def cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.estimate import ESTIMATE_FILE, estimate_workspace

    result = estimate_workspace(args.workspace, args.sample)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return EXIT_OK
    for name, c in result["classes"].items():
        area, ua, pa = c["area_mu"], c["users_accuracy"], c["producers_accuracy"]
        print(
            f"{name}: mapped {c['mapped_area_mu']} mu, estimated {area['value']} mu "
            f"(95% CI {area['ci95_low']} to {area['ci95_high']}); user's {ua['value']} "
            f"(se {ua['se']}), producer's {pa['value']} (se {pa['se']})"
        )
    oa = result["overall_accuracy"]
    print(f"overall accuracy {oa['value']} (se {oa['se']}); n={result['n']}")
    print(f"written to {args.workspace / ESTIMATE_FILE}")
    return EXIT_OK


def train_from_ledger_command(cfg: Any, args: argparse.Namespace) -> int:
    from pipeline.recovery.ledger_training import train_from_ledger

    if args.workspace is None:
        raise InputError(
            "--from-ledger reads a run's ledger: give --workspace", field="--workspace"
        )
    result = train_from_ledger(
        cfg, args.workspace, args.out, labels_path=args.labels, version=args.model_version
    )
    ex = result.examples
    print(
        f"{len(ex)} answered flags: {int(ex['real'].sum())} confirmed, "
        f"{int((~ex['real']).sum())} false alarms"
    )
    for t in result.thresholds:
        if t.suggested is None:
            print(f"{t.key}: {t.current} unchanged")
        else:
            print(
                f"{t.key}: {t.current} -> {t.suggested} would drop {t.false_alarms_dropped} of "
                f"{t.false_alarms} false alarms and keep all {t.confirmed} confirmed flags"
            )
    for row in result.site_labels.itertuples(index=False):
        print(f"label: {row.site_id} {row.recovery_class} as of {row.assessed_until}")
    if result.class_changes is None:
        print(f"site labels written to {args.out / 'ledger_labels.csv'}; add --labels to retrain")
    else:
        print(f"model {result.model.version} written to {args.out.resolve()}")
        for row in result.class_changes.itertuples(index=False):
            print(f"class: {row.site_id} {row.current} -> {row.retrained}")
        if result.class_changes.empty:
            print("class: no site changes class")
    return EXIT_OK
