"""Every loss of DSANet, one function per loss; the totals of eqs. (24) and (25).

Modules follow the paper (Sec. III-B..E); every name is re-exported here, so
``from dsanet import losses; losses.amce_loss(...)`` is the way to call them:

* :mod:`.adversarial`: :func:`discriminator_loss` (eq. 12) and :func:`adversarial_loss` (its
  generator side), :func:`discriminator_total` (eq. 13, the discriminator step) and
  :func:`adversarial_total`;
* :mod:`.classification`: :func:`amce_mask` (eq. 16), :func:`amce_loss` (eqs. 14-17) and the
  Table VIII alternatives :func:`bce_loss`, :func:`gbce_loss`, :func:`focal_loss`;
* :mod:`.metric`: :func:`structured_metric` (eqs. 21-22) and the Table X alternatives
  :func:`lifted_structure`, :func:`triplet`; :func:`infonce` (the two-tower baseline);
* :mod:`.matching`: :func:`matching_total` (eq. 24 with eqs. 13, 20, 23);
* :mod:`.retrieval`: :func:`centre_loss`, the class-centre term of eq. (27), and
  :func:`retrieval_total` (eqs. 25-27);
* :mod:`.common`: modality codes, variant names, checks and :func:`safe_distance`.

Conventions: modality codes face = 0, voice = 1; a tuple holds the anchor at index 0 and ``k``
candidates at 1..k; ``target`` (B,) is the index 0..k-1 of the true candidate. Every loss is computed
in float32 (bf16 autocast inputs are upcast), is batched (no loop over samples) and never reads a
value back to the host. Distances use a square root with a small ``eps`` inside, so that identical
embeddings give a finite (zero) gradient.

The totals take duck-typed model outputs (no import of :mod:`dsanet.models`):

* a tuple output has ``h`` (S, B, k+1, D), ``logits`` (S, B, k) and ``modality`` (B, k+1) long;
* a pair output has ``h_voice`` (S, B, D) and ``h_face`` (S, B, D).
"""
from __future__ import annotations

from .adversarial import (adversarial_loss, adversarial_total, discriminator_logits,
                          discriminator_loss, discriminator_total)
from .classification import (amce_loss, amce_mask, bce_loss, classification_loss, focal_loss,
                             gbce_loss)
from .common import (ADV_REDUCTIONS, ADV_TARGETS, ADVERSARIAL_KINDS, BATCH_METRICS, CLS_LOSSES, EPS,
                     FACE, METRIC_LOSSES, VOICE, Discriminator, safe_distance)
from .matching import matching_total, tuple_terms
from .metric import (METRIC_NORMS, infonce, lifted_structure, metric_loss, reduce_rows,
                     structured_metric, structured_terms, triplet)
from .retrieval import centre_loss, retrieval_cls, retrieval_metric, retrieval_total

__all__ = [
    # common
    "FACE", "VOICE", "EPS", "ADVERSARIAL_KINDS", "CLS_LOSSES", "METRIC_LOSSES", "BATCH_METRICS",
    "ADV_REDUCTIONS", "ADV_TARGETS", "Discriminator", "safe_distance",
    # classification (14-20)
    "amce_mask", "amce_loss", "bce_loss", "gbce_loss", "focal_loss", "classification_loss",
    # metric (21-23)
    "METRIC_NORMS", "reduce_rows", "structured_terms", "structured_metric", "lifted_structure",
    "triplet", "metric_loss", "infonce",
    # adversarial (12-13)
    "discriminator_loss", "adversarial_loss", "discriminator_logits", "discriminator_total",
    "adversarial_total",
    # totals (24), (25)-(27)
    "matching_total", "tuple_terms", "centre_loss", "retrieval_cls", "retrieval_metric",
    "retrieval_total",
]
