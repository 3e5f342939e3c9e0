"""Shared pieces of the losses: modality codes, the variant names each loss accepts, the
choice / shape checks and the safe Euclidean distance used by eqs. (21)-(27)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import variants

FACE, VOICE = 0, 1
EPS = 1e-12  # inside the square root of every Euclidean distance
# The names are registered in dsanet.variants, with what each needs:
ADVERSARIAL_KINDS = variants.names("adversarial")
CLS_LOSSES = variants.names("cls_loss")
METRIC_LOSSES = variants.names("metric_loss")
# need the whole batch, not tuples: only with cfg.sampling = "batch"
BATCH_METRICS = tuple(n for n, spec in variants.METRIC_LOSSES.items() if spec.batch_only)
ADV_REDUCTIONS = ("tuple", "mean", "published")
# What the generator's side of eq. (12) aims the discriminator at (see adversarial_loss):
ADV_TARGETS = variants.names("adv_target")

Discriminator = Callable[[Tensor], Tensor] | Tensor | None


# ----------------------------------------------------------------------------- helpers

def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")



def _check_logits_target(logits: Tensor, target: Tensor, where: str) -> None:
    if logits.dim() != 2:
        raise ValueError(f"{where}: logits must be (B, k), got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"{where}: target must be (B,) = ({logits.shape[0]},), "
                         f"got {tuple(target.shape)}")
    if target.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{where}: target must be an integer class index, got {target.dtype}")


def _one_hot(target: Tensor, k: int) -> Tensor:
    """(B,) class indices -> (B, k) float32 one-hot."""
    return F.one_hot(target.long(), k).float()


def safe_distance(x: Tensor, y: Tensor) -> Tensor:
    r"""Euclidean distance over the last axis, :math:`\sqrt{\lVert x-y\rVert^2 + \epsilon}`.

    Broadcasts ``x`` (..., D) against ``y`` (..., D). With ``eps`` inside the root the distance of
    identical vectors is :math:`10^{-6}` and its gradient is exactly zero instead of NaN.
    """
    return ((x.float() - y.float()).pow(2).sum(-1) + EPS).sqrt()
