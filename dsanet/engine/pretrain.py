"""Unimodal identity pretraining of the two backbones (``cfg.backbone_init = "identity"``).

The paper fine-tunes its ResNet18 feature extractors (Sec. IV-A: Adam "to fine-tune the
network"), i.e. the backbones start from weights learnt on another task, not at random. The
embedded benchmark has no ImageNet, so this is its stand-in: before a run, each backbone learns
alone to tell the **training split's** identities apart from its own modality - a linear layer
over the flattened C x H x W map (the f^v / f^a of Sec. III-A), cross-entropy, Adam with a
cosine decay over ``cfg.pretrain_steps`` steps of :data:`BATCH` random items. No cross-modal
signal and no validation or test item is used; the linear layers are dropped afterwards.

The weights are a function of the data and the settings that shape them (:data:`FIELDS`, the
decoded cache's key, this module's and the backbones' source), not of the run's seed: like a
downloaded file, every run on that data and those inputs starts from the same backbones
(trained once with seed 0, then read from ``<data cache>/pretrained/``; a file lock makes
concurrent sweep workers wait for the first). The run's own RNG streams are untouched.

``"scratch"`` (random initialisation, as the published script) stays available; the choice and
its validation evidence are in ``docs/fidelity.md`` ("Session 4").
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..data.batches import face_batch, voice_batch
from ..models import backbones
from .checkpoint import load_checkpoint, save_checkpoint

BATCH = 128        # items per modality and step
LR = 2e-3          # Adam, cosine decay to 0 over cfg.pretrain_steps
PRETRAIN_SEED = 0  # the same backbones for every training seed
# settings the pretrained weights depend on, besides the decoded training data itself
FIELDS = ("backbone", "pretrained", "channels", "map_size", "face_size", "spec_bins", "spec_frames",
          "pretrain_steps")


def pretrain_key(cfg, cached) -> str:
    """sha256 over the training cache's name, :data:`FIELDS` and the code that trains them."""
    source = inspect.getsource(inspect.getmodule(pretrain_key)) + inspect.getsource(backbones)
    payload = {"cache": cached.path.name if cached.path is not None else None,
               "fields": {f: getattr(cfg, f) for f in FIELDS}, "batch": BATCH, "lr": LR,
               "seed": PRETRAIN_SEED, "source": hashlib.sha256(source.encode()).hexdigest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def pretrained_path(cfg, cached) -> Path | None:
    """Where the pretrained backbones of ``cfg`` on ``cached`` live (None: an in-memory split)."""
    if cached.path is None:
        return None
    return Path(cached.path).parent / "pretrained" / f"backbones-{pretrain_key(cfg, cached)}.pt"


def train_backbones(cfg, cached, device) -> dict[str, dict]:
    """Train a face and a voice backbone on identity classification -> their state dicts.

    ``cached``: the training split. Each step draws :data:`BATCH` voices and :data:`BATCH` faces
    at random (training crops and flips), classifies each item's map (B, C, H, W) -> (B, n_ids)
    among the split's identities, and steps both networks on the sum of the two cross-entropies.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(PRETRAIN_SEED)
        nets = nn.ModuleDict({m: backbones.build_backbone(cfg, m) for m in ("face", "voice")})
        ids = {"voice": cached.voice_ids.long(), "face": cached.face_ids.long()}      # (Nv,), (Nf,)
        known = torch.unique(torch.cat(list(ids.values())))                          # (n_ids,)
        label = torch.full((int(known.max()) + 1,), -1, dtype=torch.long, device=known.device)
        label[known] = torch.arange(len(known), device=known.device)                 # identity -> class
        feat = cfg.channels * cfg.map_size ** 2
        heads = nn.ModuleDict({m: nn.Linear(feat, len(known)) for m in nets})
        nets, heads = nets.to(device), heads.to(device)
        opt = torch.optim.Adam([*nets.parameters(), *heads.parameters()], lr=LR)
        steps = cfg.pretrain_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
        gen = torch.Generator(cached.voices.device).manual_seed(PRETRAIN_SEED)
        nets.train()
        for _ in range(steps):
            loss = 0.0
            for m, gather in (("voice", voice_batch), ("face", face_batch)):
                items = torch.randint(len(ids[m]), (BATCH,), generator=gen, device=gen.device)
                x = gather(cached, items, cfg, True, gen, device=device)              # (B, ...)
                y = label[ids[m][items.to(known.device)]].to(device)                            # (B,)
                loss = loss + F.cross_entropy(heads[m](nets[m](x).flatten(1)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"backbone pretraining ended with a non-finite loss ({float(loss)})")
    return {m: {k: v.detach().cpu() for k, v in nets[m].state_dict().items()} for m in nets}


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path``.lock (one process pretrains; the others wait, then read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pretrained_backbones(cfg, cached, device) -> dict[str, dict]:
    """The pretrained face and voice state dicts of ``cfg`` on ``cached``, trained once and cached."""
    path = pretrained_path(cfg, cached)
    if path is None:
        return train_backbones(cfg, cached, device)
    with _locked(path):
        if not path.is_file():
            state = train_backbones(cfg, cached, device)
            save_checkpoint({"backbones": state, "fields": {f: getattr(cfg, f) for f in FIELDS}}, path)
    return load_checkpoint(path)["backbones"]


def init_backbones(model: nn.Module, cfg, cached, device) -> None:
    """Load the pretrained backbones into ``model`` (``cfg.backbone_init = "identity"``)."""
    state = pretrained_backbones(cfg, cached, device)
    model.face_backbone.load_state_dict(state["face"])
    model.voice_backbone.load_state_dict(state["voice"])
