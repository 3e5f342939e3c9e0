"""The matching objective, eq. (24): adversarial (eq. 13) + metric (eq. 23) + classification
(eq. 20) terms, summed over the streams."""
from __future__ import annotations

from torch import Tensor

from .adversarial import _adversarial_total
from .classification import classification_loss
from .common import Discriminator
from .metric import metric_loss


def matching_total(cfg, out, target: Tensor, discriminator: Discriminator = None) -> dict[str, Tensor]:
    r"""The matching objective of eq. (24), every term summed over the S streams.

    .. math:: \mathcal{L}^m_{total} = \mathcal{L}^{total}_{adv} + \lambda\,\mathcal{L}^m_{metric}
        + \mu\,\mathcal{L}^{total}_{cls}

    * adversarial (eq. 13 form, generator side): :func:`adversarial_loss` on ``out.h``'s items,
      reduced as ``cfg.adv_reduction`` (default "tuple": eq. 12's 1/N sum over the k+1 items);
    * metric (eq. 23): :func:`metric_loss` on each stream's (B, k+1, D) tuples;
    * cls (eq. 20): :func:`classification_loss` on each stream's (B, k) logits.

    ``out``: ``h`` (S, B, k+1, D), ``logits`` (S, B, k), ``modality`` (B, k+1); ``target`` (B,).
    ``discriminator``: a module (M, D) -> logits, precomputed logits, or None when
    ``cfg.adversarial == "none"``. Returns scalars ``{total, adversarial, metric, cls}``.
    """
    s, b, items, d = out.h.shape
    if out.logits.shape != (s, b, items - 1):
        raise ValueError(f"matching_total: logits must be (S, B, k) = ({s}, {b}, {items - 1}), "
                         f"got {tuple(out.logits.shape)}")
    metric, cls = tuple_terms(cfg, out, target)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam * metric + cfg.mu * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}


def tuple_terms(cfg, out, target: Tensor) -> tuple[Tensor, Tensor]:
    """The per-tuple terms of eq. (24) summed over streams: (metric, eq. 23; cls, eq. 20).

    ``out``: ``h`` (S, B, k+1, D), ``logits`` (S, B, k); ``target`` (B,) -> two scalars.
    """
    s, b, items, d = out.h.shape
    targets = target.repeat(s)                                             # (S*B,), stream-major
    # every per-stream loss is a mean over its B rows, so the sum over streams is S x the flat mean
    metric = s * metric_loss(cfg, out.h.reshape(s * b, items, d), targets)
    cls = s * classification_loss(cfg, out.logits.reshape(s * b, items - 1), targets)
    return metric, cls
