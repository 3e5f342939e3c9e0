"""Time one whole DSANet training step against the two backbones' forward + backward alone.

Both samplings are timed (``--sampling both``): "tuple" (every tuple draws its own k+1 items)
and "batch" (B identities, each item computed once, tuples formed in the batch,
:mod:`dsanet.data.sampling`); for each it prints tuples per second and backbone items per tuple.

The whole step is what the trainer runs per iteration (:class:`dsanet.engine.train.Stepper`):
generator-side forward (backbones, DEM streams, generator, classifier), the discriminator step on
detached embeddings and the generator step (losses of eq. 24, backward, clipping, Adam). The
reference is the two backbones' forward and backward on the same items (the same per-direction
calls, the same autocast), i.e. the part no DSANet design choice can remove. The printed ratio
backbones / step is the share of the step spent in the backbones (target on a GPU: >= 0.8).

    python benchmarks/train_step.py --device cpu --size small
    python benchmarks/train_step.py --device cuda --size paper
"""
from __future__ import annotations


import torch

from _common import SIZES, parse, parser, timed  # benchmarks/_common.py (the script's folder is on sys.path)
from dsanet.engine.device import autocast, resolve_device
from dsanet.engine.matching import MatchingTask
from dsanet.engine.train import Stepper, build_model, set_train_mode


def random_parts(cfg, device) -> list:
    """A matching batch as the trainer's parts: half V-F, half F-V, random inputs."""
    per = cfg.batch_size // 2
    voice = (1, cfg.spec_bins, cfg.spec_frames)
    face = (3, cfg.face_size, cfg.face_size)
    parts = []
    for d, (a, c) in (("vf", (voice, face)), ("fv", (face, voice))):
        anchor = torch.randn(per, *a, device=device)
        cands = torch.randn(per, cfg.k, *c, device=device)
        parts.append(((anchor, cands, d), torch.randint(cfg.k, (per,), device=device)))
    return parts


def random_batch_parts(cfg, device) -> list:
    """An in-batch step's part: B voices, B faces and 1:k tuples of each direction."""
    import numpy as np

    from dsanet.data.sampling import in_batch_tuples

    B = cfg.batch_size
    voice = torch.randn(B, 1, cfg.spec_bins, cfg.spec_frames, device=device)
    face = torch.randn(B, 3, cfg.face_size, cfg.face_size, device=device)
    rng = np.random.default_rng(0)
    tuples, labels = {}, {}
    for d in ("vf", "fv"):
        a, c, y = in_batch_tuples(np.arange(B) % 2, cfg.k, cfg.tuples_per_anchor, False, rng)
        tuples[d] = (torch.from_numpy(a).to(device), torch.from_numpy(c).to(device))
        labels[d] = torch.from_numpy(y).to(device)
    return [((voice, face, tuples), labels)]


def batch_backbones_step(model, parts, cfg, device) -> None:
    """Forward + backward of the two backbones alone on an in-batch step's items."""
    model.zero_grad(set_to_none=True)
    (voice, face, _), _ = parts[0]
    with autocast(device, cfg.amp):
        loss = model.voice_backbone(voice).float().mean() + model.face_backbone(face).float().mean()
    loss.backward()


def backbones_step(model, parts, cfg, device) -> None:
    """Forward + backward of the two backbones alone on the items of ``parts``."""
    model.zero_grad(set_to_none=True)
    loss = 0.0
    with autocast(device, cfg.amp):
        for (anchor, cands, d), _ in parts:
            a_net, c_net = ((model.voice_backbone, model.face_backbone) if d == "vf"
                            else (model.face_backbone, model.voice_backbone))
            loss = loss + a_net(anchor).float().mean() + c_net(cands.flatten(0, 1)).float().mean()
    loss.backward()


def measure(cfg, sampling: str, args, device) -> dict:
    """Seconds per step of the whole step and of the backbones alone, tuples and items per step."""
    from dsanet.engine.matching import InBatchMatchingTask

    cfg = cfg.replace(sampling=sampling)
    task = (InBatchMatchingTask if sampling == "batch" else MatchingTask)(cfg, None, device)
    model = build_model(cfg, task, device)
    stepper = Stepper(cfg, model, task, device)
    set_train_mode(model, cfg.freeze_bn)
    if sampling == "batch":
        parts, back = random_batch_parts(cfg, device), batch_backbones_step
        tuples, items = 2 * cfg.batch_size * cfg.tuples_per_anchor, 2 * cfg.batch_size
    else:
        parts, back = random_parts(cfg, device), backbones_step
        tuples, items = cfg.batch_size, cfg.batch_size * (cfg.k + 1)

    def full():
        stepper.step(parts)

    def backbones():
        back(model, parts, cfg, device)

    for fn in (full, backbones):
        if args.warmup > 0:
            timed(fn, args.warmup, device)
    t_step, t_back = timed(full, args.steps, device), timed(backbones, args.steps, device)
    return {"step": t_step, "back": t_back, "tuples": tuples, "items": items}


def measure_protocols(cfg, args, device) -> dict:
    """Seconds per step end to end and on cached maps (frozen backbones), and the maps' cost.

    The frozen step is the trainer's step on (B, C, H, W) maps (``forward_batch_maps``); the
    caching cost is the backbones' evaluation-mode forward per item, timed on one chunk and
    scaled to the quick training split's views (``TRAIN_ITEMS`` voices x ``cfg.map_views`` crops
    + faces x 2 flips), paid once per data tree and backbones.
    """
    from dsanet.engine.maps import CHUNK, FACE_VIEWS, freeze_backbones
    from dsanet.engine.matching import InBatchMatchingTask

    cfg = cfg.replace(sampling="batch")
    out = {}
    for proto in ("finetune", "frozen"):
        c = cfg.replace(backbone_train=proto)
        task = InBatchMatchingTask(c, None, device)
        model = build_model(c, task, device)
        if proto == "frozen":
            freeze_backbones(model)
            task.method = "forward_batch_maps"
        stepper = Stepper(c, model, task, device)
        set_train_mode(model, c.freeze_bn)
        (voice, face, tuples), labels = random_batch_parts(c, device)[0]
        if proto == "frozen":
            shape = (c.batch_size, c.channels, c.map_size, c.map_size)
            voice, face = torch.randn(shape, device=device), torch.randn(shape, device=device)
        parts = [((voice, face, tuples), labels)]
        if args.warmup > 0:
            timed(lambda: stepper.step(parts), args.warmup, device)
        out[proto] = timed(lambda: stepper.step(parts), args.steps, device)
        if proto == "frozen":
            model.eval()
            x_v = torch.randn(CHUNK, 1, c.spec_bins, c.spec_frames, device=device)
            x_f = torch.randn(CHUNK, 3, c.face_size, c.face_size, device=device)
            with torch.no_grad():
                t_v = timed(lambda: model.voice_backbone(x_v), 2, device) / CHUNK
                t_f = timed(lambda: model.face_backbone(x_f), 2, device) / CHUNK
            out["cache"] = TRAIN_ITEMS * (c.map_views * t_v + FACE_VIEWS * t_f)
    return out


TRAIN_ITEMS = 7550   # voices (and faces) of the quick benchmark's training split
SWEEP_RUNS = 255     # distinct runs of the quick sweep (Tables V-XI x 5 seeds, XII x 3) sharing one cache


def report_protocols(cfg, args, device) -> None:
    from dsanet.experiments.tables import SWEEP_STEPS

    steps = SWEEP_STEPS.get(cfg.profile) or cfg.steps
    r = measure_protocols(cfg, args, device)
    e2e, frz, cache = steps * r["finetune"], steps * r["frozen"] + r["cache"], r["cache"]
    print(f"[protocol] end-to-end step        {r['finetune'] * 1e3:9.1f} ms")
    print(f"[protocol] sweep (frozen) step    {r['frozen'] * 1e3:9.1f} ms   "
          f"(step ratio {r['finetune'] / r['frozen']:.2f})")
    print(f"[protocol] maps cache, once       {cache:9.1f} s   ({TRAIN_ITEMS} voices x "
          f"{cfg.map_views} crops + faces x 2 flips)")
    shared = steps * r["frozen"] + cache / SWEEP_RUNS
    print(f"[protocol] a run of {steps} steps: end-to-end {e2e:.1f} s; sweep protocol {shared:.1f} s "
          f"with the caching shared by the quick sweep's {SWEEP_RUNS} runs, {frz:.1f} s with all "
          f"of it charged to one run (speedup {e2e / frz:.2f})")
    print(f"speedup sweep protocol / end-to-end: {e2e / shared:.2f}")


def main(argv=None) -> None:
    p = parser(__doc__)
    p.add_argument("--batch-size", type=int, default=None,
                   help="tuples (tuple sampling) or identities (batch sampling) per step")
    p.add_argument("--k", type=int, default=None, help="candidates per tuple (profile's default)")
    p.add_argument("--sampling", choices=["tuple", "batch", "both"], default="both")
    p.add_argument("--protocol", choices=["none", "both"], default="none",
                   help="both: end-to-end step against the sweep protocol's step on cached maps")
    p.add_argument("--steps", type=int, default=10, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    args = parse(p, argv)
    cfg = SIZES[args.size](device=args.device)
    if args.batch_size:
        cfg = cfg.replace(batch_size=args.batch_size)
    if args.k:
        cfg = cfg.replace(k=args.k)
    device = resolve_device(cfg)
    print(f"device {device} ({torch.get_num_threads()} CPU threads), size {args.size} "
          f"({cfg.backbone}, face {cfg.face_size}px, spectrogram {cfg.spec_bins}x{cfg.spec_frames}), "
          f"k {cfg.k}, {cfg.n_streams} streams, amp {cfg.amp}")
    if args.protocol == "both":
        report_protocols(cfg, args, device)
        return
    modes = ["tuple", "batch"] if args.sampling == "both" else [args.sampling]
    for mode in modes:
        r = measure(cfg, mode, args, device)
        print(f"[{mode}] batch {cfg.batch_size}: {r['tuples']} tuples from {r['items']} backbone "
              f"items ({r['items'] / r['tuples']:.2f} items per tuple)")
        print(f"[{mode}] whole training step    {r['step'] * 1e3:9.1f} ms   "
              f"{r['tuples'] / r['step']:9.1f} tuples/s")
        print(f"[{mode}] backbones fwd+bwd only {r['back'] * 1e3:9.1f} ms")
        print(f"[{mode}] ratio backbones / step {r['back'] / r['step']:9.3f}   (target: >= 0.8)")


if __name__ == "__main__":
    main()
