"""Time one whole DSANet training step against the two backbones' forward + backward alone.

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


def main(argv=None) -> None:
    p = parser(__doc__)
    p.add_argument("--batch-size", type=int, default=None, help="tuples per step (profile's default)")
    p.add_argument("--steps", type=int, default=10, help="timed iterations")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    args = parse(p, argv)
    cfg = SIZES[args.size](device=args.device)
    if args.batch_size:
        cfg = cfg.replace(batch_size=args.batch_size)
    device = resolve_device(cfg)
    task = MatchingTask(cfg, None, device)
    model = build_model(cfg, task, device)
    stepper = Stepper(cfg, model, task, device)
    set_train_mode(model, cfg.freeze_bn)
    parts = random_parts(cfg, device)

    def full():
        stepper.step(parts)

    def backbones():
        backbones_step(model, parts, cfg, device)

    for fn in (full, backbones):
        if args.warmup > 0:
            timed(fn, args.warmup, device)
    t_step, t_back = timed(full, args.steps, device), timed(backbones, args.steps, device)
    items = cfg.batch_size * (cfg.k + 1)
    print(f"device {device} ({torch.get_num_threads()} CPU threads), size {args.size} "
          f"({cfg.backbone}, face {cfg.face_size}px, spectrogram {cfg.spec_bins}x{cfg.spec_frames}), "
          f"batch {cfg.batch_size} tuples = {items} items, {cfg.n_streams} streams, amp {cfg.amp}")
    print(f"whole training step    {t_step * 1e3:9.1f} ms   {items / t_step:9.1f} items/s")
    print(f"backbones fwd+bwd only {t_back * 1e3:9.1f} ms   {items / t_back:9.1f} items/s")
    print(f"ratio backbones / step {t_back / t_step:9.3f}   (target on a GPU: >= 0.8)")


if __name__ == "__main__":
    main()
