"""Cheaper kernels for what the generator side computes many times a step, the same maths.

The sweep protocol trains on cached maps (:mod:`dsanet.engine.maps`), where a step is no longer
the backbones but a few hundred small ops; two of them cost most on a CPU (``torch.profiler``,
``benchmarks/train_step.py --protocol both``):

* dropout's ``bernoulli_``: :class:`Dropout` draws the keep mask as ``rand >= p`` (uniform
  float32, so P(keep) = 1 - p up to 2^-24: the same Bernoulli(1 - p) mask, drawn from the same
  global generator) and scales by 1 / (1 - p) as ``nn.Dropout`` does; on CUDA the fused native
  kernel is used;
* 1 x 1 convolutions (the self-attention's query, key, value and output maps): :func:`pointwise`
  is the same channel mixing as an ``einsum`` over the conv's (spectral-normed) weight, equal to
  ``conv(x)`` up to float rounding.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, same state) with a cheaper mask on the CPU."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.is_cuda or self.inplace:
            return super().forward(x)
        if self.p >= 1.0:
            return x * 0.0
        keep = torch.rand(x.shape, device=x.device) >= self.p                # (...,) bool
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


def pointwise(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1 x 1 ``conv`` on x (B, C_in, H, W) -> (B, C_out, H, W) as one einsum."""
    w = conv.weight[:, :, 0, 0]                                              # (C_out, C_in)
    y = torch.einsum("oc,bchw->bohw", w.to(x.dtype), x)
    return y if conv.bias is None else y + conv.bias.to(x.dtype)[:, None, None]


__all__ = ["Dropout", "pointwise"]
