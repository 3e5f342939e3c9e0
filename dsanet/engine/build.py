"""A run's pieces from its config: seeding, the decoded data caches, the task and the model.

Used by :class:`dsanet.engine.train.Trainer`, :func:`dsanet.engine.train.evaluate_checkpoint`,
the analysis probes and the benchmarks.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from ..config import Config
from . import distributed as dist
from .matching import InBatchMatchingTask, MatchingTask
from .retrieval import RetrievalTask


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_splits(cfg: Config, splits, info: dist.DistInfo) -> dict:
    """Decoded caches of ``splits`` (rank 0 builds them first under DDP; the others then read)."""
    from ..data.cache import build_cache
    from ..data.splits import load_cfg_index

    if info.enabled and not info.is_main:
        dist.barrier(info)
    index = load_cfg_index(cfg)
    import sys  # a decoding progress bar only on a terminal, never in smoke
    bar = info.is_main and cfg.profile != "smoke" and sys.stderr.isatty()
    out = {s: build_cache(index, cfg, s, progress=bar) for s in splits}
    if info.enabled and info.is_main:
        dist.barrier(info)
    return out


def build_task(cfg: Config, cached, device):
    if cfg.task == "matching":
        return (InBatchMatchingTask if cfg.sampling == "batch" else MatchingTask)(cfg, cached, device)
    if cfg.task == "retrieval":
        return RetrievalTask(cfg, cached, device)
    raise ValueError(f"unknown cfg.task {cfg.task!r}; choose 'matching' or 'retrieval'")


def build_model(cfg: Config, task, device: torch.device) -> nn.Module:
    """DSANet for ``cfg`` on ``device``, seeded, with the task's unused heads frozen.

    The backbones start pretrained when ``cfg.backbone_init == "identity"``
    (:mod:`dsanet.engine.pretrain`, on the task's training split); ``cfg.init_from`` (a whole
    checkpoint) replaces every weight it holds.
    """
    from ..models.dsanet import DSANet

    torch.manual_seed(cfg.seed)
    model = DSANet(cfg)
    if hasattr(task, "prepare"):
        task.prepare(model)
    if cfg.backbone_init == "identity" and not cfg.init_from and getattr(task, "cached", None) is not None:
        from .pretrain import init_backbones     # trained once per data and inputs, then read
        init_backbones(model, cfg, task.cached, device)
    if cfg.init_from:
        init_weights(model, cfg.init_from)
    for m in task.unused_modules(model):
        m.requires_grad_(False)
    model = model.to(device)
    if device.type == "cuda":  # NHWC weights: cuDNN runs the backbones channels-last (input converted once)
        model.face_backbone.to(memory_format=torch.channels_last)
        model.voice_backbone.to(memory_format=torch.channels_last)
    return model


def init_weights(model: nn.Module, path) -> None:
    """Start ``model`` from the weights of the checkpoint at ``path`` (``cfg.init_from``).

    The retrieval run fine-tunes the trained matching network (Sec. III-E: "the original
    matching network is kept unchanged, and the data input is changed to the audio-visual pair
    data"); modules the checkpoint lacks (the class centres of eq. 27) keep their initialisation.
    A missing file, or a weight of another shape, is an error naming the file.
    """
    from .checkpoint import load_checkpoint

    state = load_checkpoint(path)["model"]
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{path}: weights of another shape than this config's model: {bad[:5]}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """``model.train()``; with ``freeze_bn`` BatchNorm layers keep using their running statistics."""
    model.train()
    if getattr(getattr(model, "cfg", None), "backbone_train", "finetune") == "frozen":
        model.face_backbone.eval()    # fixed backbones (cached maps): running statistics
        model.voice_backbone.eval()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
