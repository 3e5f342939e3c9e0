"""Evaluation embeddings: every item of a split through the backbones once.

Every evaluation protocol (:mod:`dsanet.engine.metrics`, :mod:`dsanet.engine.evaluate`)
gathers rows of these cached embeddings, so a 1:k tuple costs an index, not k + 1 backbone
passes; exact because the evaluation path has no DEM and runs BatchNorm on running statistics.
Direction ``"vf"`` (the paper's V-F): voice anchor (or query), face candidates (or gallery);
``"fv"`` the reverse. ``"V-F"`` / ``"F-V"`` are accepted too and are what tables show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .device import autocast

DIRECTIONS = {"vf": "vf", "fv": "fv", "V-F": "vf", "F-V": "fv"}


def _direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use 'vf', 'fv', 'V-F' or 'F-V'")
    return DIRECTIONS[direction]


class Side(NamedTuple):
    """One modality of a split: embeddings, identity per item, gender per item (or None)."""
    x: Tensor                     # (N, D)
    ids: np.ndarray               # (N,)
    gender: np.ndarray | None     # (N,)


@dataclass
class Embeddings:
    """Evaluation embeddings of every item of a split (float32, CPU) and their labels."""
    voice: Tensor                        # (Nv, D)
    face: Tensor                         # (Nf, D)
    voice_ids: np.ndarray                # (Nv,) identity int per voice item
    face_ids: np.ndarray                 # (Nf,)
    voice_gender: np.ndarray | None = None   # (Nv,) any comparable code; None: no G protocol
    face_gender: np.ndarray | None = None    # (Nf,)

    def __post_init__(self):
        self.voice_ids, self.face_ids = np.asarray(self.voice_ids), np.asarray(self.face_ids)
        for name, x, ids, g in (("voice", self.voice, self.voice_ids, self.voice_gender),
                                ("face", self.face, self.face_ids, self.face_gender)):
            if x.ndim != 2 or len(ids) != len(x) or (g is not None and len(g) != len(x)):
                raise ValueError(f"Embeddings.{name}: embeddings {tuple(x.shape)}, ids "
                                 f"{len(ids)}, gender {None if g is None else len(g)} disagree")
        if self.voice.shape[1] != self.face.shape[1]:
            raise ValueError(f"Embeddings: voice dim {self.voice.shape[1]} != face dim "
                             f"{self.face.shape[1]}")

    @property
    def has_gender(self) -> bool:
        return self.voice_gender is not None and self.face_gender is not None

    def side(self, modality: str) -> Side:
        if modality == "voice":
            return Side(self.voice, self.voice_ids, self.voice_gender)
        return Side(self.face, self.face_ids, self.face_gender)

    def sides(self, direction: str) -> tuple[Side, Side]:
        """(anchor / query side, candidate / gallery side) for a direction."""
        d = _direction(direction)
        return (self.side("voice"), self.side("face")) if d == "vf" else \
            (self.side("face"), self.side("voice"))


def embed_split(model, cached, cfg, batch_size: int = 256) -> Embeddings:
    """Embed every voice and face item of a cached split once (no DEM, eval BatchNorm).

    Items come from the data layer's evaluation gather (``train=False``): voices centre-cropped
    to ``cfg.spec_frames``, faces normalised (mean 0.5, std 0.5), no flip. Runs under
    ``torch.inference_mode`` and bf16 autocast on CUDA (when ``cfg.amp``); the model's
    train/eval mode is restored afterwards.

    ``cfg.eval_generator_mode="train"`` (the published script's test pass): only the generator
    stays in train mode, so dropout is on and BatchNorm uses the statistics of each chunk of
    ``batch_size`` items (one input call); the dropout masks come from a fixed seed (the global
    RNG is left as it was) and the generator's running statistics are restored afterwards.
    """
    from dsanet.data.batches import modality_batch  # the data layer, imported lazily

    was_training = model.training
    model.eval()
    generator_train = getattr(cfg, "eval_generator_mode", "eval") == "train"
    saved = ({k: v.clone() for k, v in model.generator.state_dict().items()}
             if generator_train else None)
    try:
        with torch.inference_mode(), _fixed_rng(generator_train, model):
            if generator_train:
                model.generator.train()
            if getattr(cfg, "backbone_train", "finetune") == "frozen" and not generator_train:
                from .maps import evaluation_maps   # fixed backbones: their maps once per split
                voice, face = (_embed_maps(model, x, cfg, batch_size)
                               for x in evaluation_maps(model, cached, cfg))
            else:
                voice, face = (_embed_chunks(model, cached, m, cfg, batch_size, modality_batch)
                               for m in ("voice", "face"))
    finally:
        if saved is not None:
            model.generator.load_state_dict(saved)
        model.train(was_training)
    return Embeddings(voice, face, _np(cached.voice_ids), _np(cached.face_ids),
                      _gender(cached, "voice"), _gender(cached, "face"))


def _fixed_rng(active: bool, model):
    """A context with the global RNG forked and seeded (train-mode dropout), or a no-op."""
    import contextlib

    if not active:
        return contextlib.nullcontext()
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=devices))
    torch.manual_seed(0)
    return stack


def _embed_chunks(model, cached, modality: str, cfg, batch_size: int, gather) -> Tensor:
    """model.embed over every item of one modality in chunks -> (N, D) float32 on CPU."""
    n = len(cached.voices if modality == "voice" else cached.faces)
    if n == 0:
        raise ValueError(f"embed_split: the cached split has no {modality} items")
    device = next(model.parameters()).device
    amp = getattr(cfg, "amp", "bf16")
    out = []
    for start in range(0, n, batch_size):
        items = torch.arange(start, min(start + batch_size, n))              # (b,)
        x = gather(cached, modality, items, cfg, train=False, device=device)  # (b, C, H, W) f32
        with autocast(device, amp):                                          # cfg.amp's dtype on CUDA
            out.append(model.embed(x, modality).float())                    # (b, D)
    return torch.cat(out).cpu()                                             # one transfer


def _embed_maps(model, maps: Tensor, cfg, batch_size: int) -> Tensor:
    """The generator over backbone maps (N, C, H, W) in chunks -> (N, D) float32 on CPU."""
    device = maps.device
    with autocast(device, getattr(cfg, "amp", "bf16")):
        out = [model.generator(maps[s:s + batch_size]).float() for s in range(0, len(maps), batch_size)]
    return torch.cat(out).cpu()


def _np(a) -> np.ndarray:
    return a.cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)


def _gender(cached, modality: str) -> np.ndarray | None:
    g = getattr(cached, f"{modality}_gender", None)
    return None if g is None else _np(g)


__all__ = ["DIRECTIONS", "Embeddings", "Side", "embed_split"]
