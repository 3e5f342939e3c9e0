"""``python -m dsanet sweep``: the tables' runs outside a notebook, on this machine's process pool
or on Ray (a local Ray or a cluster), then the tables, ``verdicts.csv`` and the forest plots,
written by the same function notebook 04 calls (:func:`~dsanet.experiments.sweep_tables`).

A sweep started again trains only the runs missing from ``--runs``; the notebooks read the same
run cache afterwards (pass them the same runs folder and data).
"""
from __future__ import annotations

import argparse
import sys
import time

from ..config_file import from_scratch_warning
from ..engine.cli import UsageError, add_config_arguments, check_out_dir, config_from_args
from .executors import EXECUTORS
from .tables import SWEEP_STEPS, table_names, table_seeds

SWEPT = "V,VI,VII,IX,X,XI,XII"   # notebook 04's tables (VIII is notebook 03's, IV notebook 06's)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--tables", default=SWEPT,
                   help=f"comma-separated tables of the paper to sweep (default: {SWEPT}; "
                        "any of " + ", ".join(table_names()) + ")")
    p.add_argument("--seeds", type=int, default=0,
                   help="seeds per cell (0: the notebooks' default, 5 for Tables V-XI and 3 for "
                        "XII; 1 in the smoke profile)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per run (default: the profile's sweep budget, "
                        + ", ".join(f"{k} {v}" for k, v in SWEEP_STEPS.items() if v) + ")")
    p.add_argument("--rows", type=int, default=0, help="first rows of each table only (0: all)")
    p.add_argument("--runs", metavar="DIR", default="runs",
                   help="the run cache (shared storage on a cluster), as the notebooks' runs/")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="where tables/ (table_<N>.md/csv/json, verdicts.csv) and figures/ go")
    p.add_argument("--workers", type=int, default=1,
                   help="runs at once on this machine (local pool processes; a local Ray's CPUs "
                        "= workers x --cpus-per-run); on a cluster the cluster's size decides")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: a process pool here; ray: a Ray task per run "
                        "(pip install '.[cluster]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: auto (the cluster of this node) or ray://HOST:PORT; "
                        "default: start a local Ray")
    p.add_argument("--cpus-per-run", type=int, default=1,
                   help="CPUs (torch threads) a Ray task asks for")
    p.add_argument("--gpus-per-run", type=float, default=None,
                   help="share of a GPU a Ray task asks for (0.25 packs four runs on a GPU); "
                        "default: 1 in the paper profile when the cluster has GPUs, else 0")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="a progress bar over the runs (else one line per finished run)")


def run(args) -> int:
    from ..data.embedded import ensure_data
    from .report import sweep_tables

    out = check_out_dir(args.out)
    known = {n.upper() for n in table_names()}
    names = [t.strip().upper() for t in args.tables.split(",") if t.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UsageError(f"--tables {args.tables!r}: unknown table(s) {bad}; choose from "
                         + ", ".join(sorted(known)))
    if args.workers < 1 or args.cpus_per_run < 1 or (args.gpus_per_run or 0) < 0:
        raise UsageError("--workers and --cpus-per-run must be >= 1, --gpus-per-run >= 0")
    if args.address and args.executor != "ray":
        raise UsageError("--address needs --executor ray")
    cfg = config_from_args(args)
    ensure_data(cfg)   # the embedded benchmark of smoke / quick, when missing
    warning = from_scratch_warning(cfg)
    if warning:
        print(warning, file=sys.stderr)
    smoke = cfg.profile == "smoke"
    seeds_of = {n: table_seeds(n, args.seeds or None, smoke) for n in names}
    steps = args.steps or SWEEP_STEPS.get(cfg.profile)
    t0 = time.perf_counter()
    done = sweep_tables(names, cfg, seeds_of, args.runs, steps, args.rows or None, out,
                        workers=args.workers, executor=args.executor, address=args.address,
                        cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                        log=print, bar=args.progress and not smoke and not args.quiet)
    counts = done.verdicts["verdict"].value_counts()
    print(f"swept {', '.join(names)}: {done.trained} runs trained in "
          f"{time.perf_counter() - t0:.0f} s; {len(done.verdicts)} comparisons in "
          f"{out / 'tables' / 'verdicts.csv'} ("
          + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
    return 0
