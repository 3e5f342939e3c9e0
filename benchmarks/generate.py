"""Time the embedded benchmark generator: planning, calibration, rendering and a whole tree.

    .venv/bin/python benchmarks/generate.py [--out /tmp/bench_default] [--workers 1] [--preset default]

Prints wall and CPU seconds per stage; generating the default tree must stay under 60 s on 2 cores.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from dsanet.data.synthetic import PRESETS, _render_identity, _tasks, calibrate, generate, plan


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<40} wall {time.perf_counter() - wall:7.2f} s   cpu {time.process_time() - cpu:7.2f} s")
    return out


def render_only(p, modality: str, n_ids: int = 10) -> None:
    """Render the first ``n_ids`` identities' clips (or frames) only, into a scratch folder."""
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_, ident, voices, faces, k) in enumerate(_tasks(Path(tmp), p)):
            if i == n_ids:
                break
            _render_identity((Path(tmp), ident, voices if modality == "voice" else [],
                              faces if modality == "face" else [], k))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/bench_default")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    args = ap.parse_args()
    knobs = PRESETS[args.preset]
    p = timed("plan (traits, no rendering)", lambda: plan(**knobs))
    timed("calibration (2 protocols x 2 k x 2 dir.)", lambda: calibrate(p))
    per_v, per_f = p.knobs["voices_per_identity"], p.knobs["faces_per_identity"]
    timed(f"render 10 ids' voices ({10 * per_v} clips)", lambda: render_only(p, "voice"))
    timed(f"render 10 ids' faces ({10 * per_f} frames)", lambda: render_only(p, "face"))
    shutil.rmtree(args.out, ignore_errors=True)
    timed(f"generate {len(p.identities)} ids, {args.workers} worker(s)",
          lambda: generate(args.out, workers=args.workers, **knobs))
    print(f"{len(p.voices)} clips of {p.knobs['clip_seconds']} s, {len(p.faces)} faces of "
          f"{p.knobs['image_size']} px -> {args.out}")


if __name__ == "__main__":
    main()
