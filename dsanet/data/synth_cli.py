"""The ``python -m dsanet generate`` command: its flags (every generator knob, a ``--preset`` for
the starting values) and its run function, which writes the tree and prints the calibration.
Re-exported by :mod:`dsanet.data.synthetic`, which the command line registers; the generator's
names are imported when the command runs (synthetic imports this module)."""
from __future__ import annotations

import argparse
import json
import time


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m dsanet generate``; a knob left out comes from --preset."""
    from dsanet.data.synthetic import _HELP, DEFAULTS, PRESETS, SMOKE

    parser.add_argument("--out", default="data/benchmark",
                        help="output directory of the tree (the smoke profile reads data/smoke)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="starting values of the knobs: 'default' (training in minutes on CPU) "
                             "or 'smoke' (tests, seconds)")
    for name, value in DEFAULTS.items():
        smoke = f"; smoke: {SMOKE[name]}" if name in SMOKE else ""
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(value),
                            default=argparse.SUPPRESS, help=f"{_HELP[name]} (default: {value:g}{smoke})")
    parser.add_argument("--workers", type=int, default=1, help="parallel rendering processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a benchmark already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_generate(args: argparse.Namespace) -> int:
    """Generate the tree, then print the calibration (as written to calibration.json)."""
    from dsanet.data.synthetic import DEFAULTS, PRESETS, generate

    knobs = {**PRESETS[args.preset], **{k: getattr(args, k) for k in DEFAULTS if hasattr(args, k)}}
    start = time.perf_counter()
    calibration = generate(args.out, workers=args.workers, progress=not args.quiet,
                           overwrite=args.overwrite, **knobs)
    print(json.dumps(calibration, indent=2))
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


add_arguments, run = add_generate_arguments, run_generate
