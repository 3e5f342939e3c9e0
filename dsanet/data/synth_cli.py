"""The generator's knobs and the ``python -m dsanet generate`` command's flags and output.

``DEFAULTS`` (every knob and its default), ``SMOKE`` and ``PRESETS`` (starting values), ``_HELP``
(what each knob means), :func:`add_generate_arguments` (a flag per knob and ``--preset``),
:func:`knobs_from_args` and :func:`report` (what the command prints: the calibration and a
summary line, or with ``--quiet`` the summary line alone). The command itself,
:func:`dsanet.data.synthetic.run_generate`, writes the tree; :mod:`dsanet.data.synthetic`
re-exports every name of this module, which imports nothing of the generator (no import cycle).
"""
from __future__ import annotations

import argparse
import json

from dsanet.data.synth_traits import REAL_FRACTIONS

DEFAULTS = dict(
    # Many identities with several samples each, strongly shared traits and mild nuisance. With
    # 160 identities x 8 samples (a = 0.8, nuisance 0.5) a two-tower model memorised the training
    # identities; with 640 x 4 (nuisance 0.3) every learned model plateaued near 0.8-0.83 on
    # validation; 1,000 x 10 at nuisance 0.1 lets DSANet reach ~0.87 (docs/fidelity.md,
    # "Embedded benchmark" and "Learning on the benchmark"). The calibration lines stay honest:
    # gender-only 0.75, oracle 0.97 (the oracle reads the traits, not the nuisance).
    n_identities=1000,         # 755 train / 91 val / 154 test (77 m + 77 f)
    voices_per_identity=10,    # clips
    faces_per_identity=10,     # frames
    sessions=3,                # videos per identity and modality
    image_size=64,
    clip_seconds=2.0,
    shared_strength=0.95,      # a in e_m = a z + sqrt(1 - a^2) u_m
    nuisance=0.1,              # 0 clean .. 1 hard recording / imaging conditions
    seed=0,
    val_fraction=REAL_FRACTIONS["val"],
    test_fraction=REAL_FRACTIONS["test"],
)
# Every code path in a few seconds; a larger test share so 10-way gender-constrained tuples exist.
SMOKE = dict(n_identities=40, voices_per_identity=4, faces_per_identity=4, sessions=2,
             image_size=32, clip_seconds=0.5, nuisance=0.3, val_fraction=0.15, test_fraction=0.5)
PRESETS = {"default": {}, "smoke": SMOKE}

_HELP = {
    "n_identities": "identities (each has one voice id and one face name)",
    "voices_per_identity": "voice clips per identity",
    "faces_per_identity": "face frames per identity",
    "sessions": "sessions (videos) per identity and modality; clips/frames are spread over them",
    "image_size": "face images are image_size x image_size RGB",
    "clip_seconds": "length of every voice clip in seconds",
    "shared_strength": "0..1: how strongly the shared continuous traits show in both modalities "
                       "(0: only gender links voice and face)",
    "nuisance": "0..1: level of session/sample nuisance (noise, channel, reverb; pose, lighting, "
                "occlusion, blur, JPEG quality)",
    "seed": "random seed; same seed and knobs give a byte-identical tree",
    "val_fraction": "share of identities in validation (names starting with A or B)",
    "test_fraction": "share of identities in test (names starting with C, D or E)",
}


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m dsanet generate``; a knob left out comes from --preset."""
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
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar, and one summary line instead of the calibration")


def knobs_from_args(args: argparse.Namespace) -> dict:
    """The preset's knobs updated with those given as flags."""
    return {**PRESETS[args.preset], **{k: getattr(args, k) for k in DEFAULTS if hasattr(args, k)}}


def summary_line(calibration: dict, out, seconds: float) -> str:
    """One line: where the tree went, its identities per split and the 1:2 V-F bounds on test."""
    splits = calibration.get("splits", {})
    total = sum(s.get("identities", 0) for s in splits.values())
    per = ", ".join(f"{name} {splits[name]['identities']}" for name in ("train", "val", "test")
                    if name in splits)
    line = f"wrote {out} in {seconds:.1f} s: {total} identities ({per})"
    vf = calibration.get("matching", {}).get("unconstrained", {}).get("k2", {}).get("vf")
    if vf:
        line += (f"; 1:2 V-F on test: oracle {vf['oracle']:.3f}, gender-only "
                 f"{vf['gender_only']:.3f}, chance {vf['chance']:.3f} (calibration.json)")
    return line


def report(calibration: dict, out, seconds: float, quiet: bool = False) -> None:
    """What ``generate`` prints: the calibration (as in calibration.json) and the summary line;
    ``quiet``: the summary line alone."""
    if not quiet:
        print(json.dumps(calibration, indent=2))
    print(summary_line(calibration, out, seconds))
