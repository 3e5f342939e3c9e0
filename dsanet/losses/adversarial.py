"""Adversarial objectives of the modality discriminator, eqs. (12)-(13): the discriminator's loss
and the generator's side for the GAN / SAGAN, WGAN and LSGAN kinds, and their totals over the
streams of a tuple or pair output (:func:`discriminator_total`, :func:`adversarial_total`)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import variants
from .common import ADV_REDUCTIONS, ADV_TARGETS, FACE, VOICE, Discriminator, _check_choice


# ----------------------------------------------------------------------------- adversarial (12-13)

def _adversarial(logits: Tensor, modality: Tensor, kind: str, flip: bool, weight: Tensor | None,
                 norm: float | None, where: str, target: str = "flip") -> Tensor:
    """Eq. (12) for the objective of ``kind``'s spec (dsanet.variants.ADVERSARIAL); ``flip``: the
    generator's side, aimed as ``target``'s spec says (dsanet.variants.ADV_TARGETS)."""
    spec = variants.get("adversarial", kind)
    if spec.objective == "none":
        return logits.new_zeros((), dtype=torch.float32)
    if logits.dim() < 2 or logits.shape[-1] not in (1, 2):
        raise ValueError(f"{where}: logits must be (..., M, 2) or (..., M, 1), "
                         f"got {tuple(logits.shape)}")
    m = logits.shape[-2]
    if modality.shape[-1] != m:
        raise ValueError(f"{where}: modality must end in M = {m}, got {tuple(modality.shape)}")
    z = logits.float()                                                   # (..., M, C)
    mod = modality.long().expand(z.shape[:-1])                          # (..., M)
    w = torch.ones_like(z[..., 0]) if weight is None else weight.float().expand(z.shape[:-1])
    if spec.outputs == 1 and z.shape[-1] != 1:
        raise ValueError(f"{where}: the {kind!r} discriminator is a 1-output critic, its logits are "
                         f"(..., M, 1), got {tuple(z.shape)}")
    if spec.objective == "wasserstein":
        c = z[..., 0]
        wf, wv = w * (mod == FACE), w * (mod == VOICE)                   # (..., M)
        gap = (c * wf).sum(-1) / wf.sum(-1).clamp_min(1e-12) - (c * wv).sum(-1) / wv.sum(-1).clamp_min(1e-12)
        return (-gap if flip else gap).sum()                             # summed over leading streams
    goal = variants.get("adv_target", target) if flip else None
    if goal is not None and goal.negate:   # the generator maximises the discriminator's loss
        return -_adversarial(logits, modality, kind, False, weight, norm, where)
    if goal is not None and goal.label == "uniform":   # both modalities at probability 1/2
        y = torch.full(mod.shape, 0.5, device=z.device)                  # (..., M)
    else:
        y = (1 - mod if goal is not None and goal.label == "flipped" else mod).float()  # (..., M)
    if spec.objective == "least_squares":
        per_item = (z[..., 0] - y).square()                              # (D(h) - y)^2, (..., M)
    elif z.shape[-1] == 2:
        logp = F.log_softmax(z, dim=-1)                                  # (..., M, 2)
        per_item = -(y * logp[..., VOICE] + (1 - y) * logp[..., FACE])
    else:
        per_item = F.binary_cross_entropy_with_logits(z[..., 0], y, reduction="none")
    return (per_item * w).sum() / (m if norm is None else norm)


def discriminator_loss(logits: Tensor, modality: Tensor, kind: str = "sagan", *,
                       weight: Tensor | None = None, norm: float | None = None) -> Tensor:
    r"""The discriminator's loss, eq. (12); leading axes (streams) are summed, eq. (13).

    "sagan" / "gan": cross-entropy on the true modality (face 0, voice 1),

    .. math:: \mathcal{L}_{disc} = -\frac{1}{\text{norm}}\sum_{m} w_m \log D_{Y_m}(h_m),

    softmax cross-entropy for (M, 2) logits, sigmoid BCE (probability of "voice") for (M, 1).
    ``norm`` defaults to M (a mean over items); eq. (12) is ``norm`` = N tuples with the k+1 items of
    each tuple summed (see :func:`matching_total`). ``weight`` (M,) weighs items (default 1).

    "wgan": critic loss :math:`\bar c_{face} - \bar c_{voice}` (weighted means of the critic (M, 1)
    over each modality): the critic learns to score voices high and faces low; the Wasserstein
    estimate it maximises is :math:`\bar c_{voice} - \bar c_{face}`; ``norm`` is not used (the
    per-modality means already normalise). "none": zero.

    "lsgan" (Mao et al., 2017): the least-squares loss of a 1-output discriminator (M, 1) trained
    towards 1 for voices and 0 for faces, reduced as the cross-entropy is,

    .. math:: \mathcal{L}_{disc} = \frac{1}{\text{norm}}\sum_{m} w_m \big(D(h_m) - Y_m\big)^2
        \quad(\text{a voice gives }(D - 1)^2\text{, a face }D^2).

    logits (..., M, C), modality (M,) or (..., M) long -> scalar.
    """
    return _adversarial(logits, modality, kind, False, weight, norm, "discriminator_loss")


def adversarial_loss(logits: Tensor, modality: Tensor, kind: str = "sagan", *,
                     weight: Tensor | None = None, norm: float | None = None,
                     target: str = "flip") -> Tensor:
    r"""The generator's side of eq. (12): fool the discriminator. ``target`` says how:

    * "flip" (the published code; the non-saturating GAN form): the cross-entropy of
      :func:`discriminator_loss` on the *flipped* modality :math:`1 - Y`. Its optimum maps voices
      to where faces were and back: the modalities swap instead of merging, and the
      discriminator's accuracy falls towards 0 rather than 1/2.
    * "confusion" (modality confusion): cross-entropy against the uniform target
      :math:`-\tfrac12(\log D_{face}(h) + \log D_{voice}(h))`, minimal where the discriminator
      cannot tell the modalities apart (accuracy 1/2).
    * "minimax" (gradient reversal): the negated discriminator loss, eq. (12)'s min-max read
      literally; its gradient is the discriminator's, reversed.

    "lsgan" takes the same targets with the squared error in place of the cross-entropy: "flip"
    :math:`(D(h) - (1 - Y))^2`, "confusion" :math:`(D(h) - \tfrac12)^2`, "minimax" the negated
    discriminator loss. "wgan" ignores ``target``: the negated critic loss,
    :math:`\bar c_{voice} - \bar c_{face}`. "none": zero. Same shapes and options as
    :func:`discriminator_loss`.
    """
    _check_choice("adversarial target", target, ADV_TARGETS)
    return _adversarial(logits, modality, kind, True, weight, norm, "adversarial_loss", target)


def _adversarial_weights(modality: Tensor, reduction: str) -> tuple[Tensor | None, int]:
    """Item weights (B*(k+1),) and the divisor for a (B, k+1) modality table, per ``cfg.adv_reduction``.

    "tuple" (eq. 12): every item 1, divided by N = B. "mean": every item 1, divided by B(k+1).
    "published": the anchor weighs k and each candidate 1 (both modalities weigh k per tuple; the
    published code's face term x2 for k = 2), divided by B.
    """
    _check_choice("cfg.adv_reduction", reduction, ADV_REDUCTIONS)
    b, items = modality.shape
    if reduction == "mean":
        return None, b * items
    if reduction == "tuple":
        return None, b
    w = torch.ones(b, items, device=modality.device)
    w[:, 0] = items - 1
    return w.reshape(-1), b


# ----------------------------------------------------------------------------- stream totals (13)

def _per_input_logits(discriminator: Callable[[Tensor], Tensor], out, h: Tensor) -> Tensor:
    """``cfg.gen_calls="per_input"``: one discriminator call per stream and input batch.

    The inputs of a tuple output are its k+1 positions (anchor batch, each candidate batch); of a
    pair (or in-batch) output its voice batch and its face batch. h (S, M, D) -> (S, M, C).
    """
    s, m, d = h.shape
    if hasattr(out, "h"):                                             # items b-major: (b, j)
        b, items = out.modality.shape
        x = h.view(s, b, items, d).transpose(1, 2)                    # (S, k+1, B, D)
    else:                                                             # voices, then faces
        x = h.view(s, 2, m // 2, d)                                   # (S, 2, B, D)
    z = torch.stack([torch.stack([discriminator(x[i, j]) for j in range(x.shape[1])])
                     for i in range(s)])                              # (S, G, n, C)
    return (z.transpose(1, 2) if hasattr(out, "h") else z).reshape(s, m, -1)


def _disc_logits(discriminator: Discriminator, h: Tensor, kind: str, out=None) -> Tensor | None:
    """Discriminator logits (S, M, C) for items h (S, M, D); precomputed logits are reshaped.

    With ``out`` (the model output the items come from) the module is called once per stream
    and input batch (:func:`_per_input_logits`), else once on all S*M items.
    """
    if variants.get("adversarial", kind).objective == "none":
        return None
    if discriminator is None:
        raise ValueError(f"cfg.adversarial={kind!r} needs a discriminator (module or logits), got None")
    s, m, d = h.shape
    if isinstance(discriminator, Tensor):
        z = discriminator
    elif out is not None:
        z = _per_input_logits(discriminator, out, h)
    else:
        z = discriminator(h.reshape(s * m, d))
    if z.numel() not in (s * m, 2 * s * m):
        raise ValueError(f"discriminator logits of shape {tuple(z.shape)} do not fit "
                         f"{s} streams x {m} items")
    return z.reshape(s, m, -1)                                        # (S, M, C)


def _tuple_items(out) -> tuple[Tensor, Tensor]:
    """A tuple output as items: h (S, B*(k+1), D) and modality (B*(k+1),)."""
    if out.h.dim() != 4:
        raise ValueError(f"TupleOutput.h must be (S, B, k+1, D), got {tuple(out.h.shape)}")
    s, b, items, d = out.h.shape
    if out.modality.shape != (b, items):
        raise ValueError(f"TupleOutput.modality must be (B, k+1) = ({b}, {items}), "
                         f"got {tuple(out.modality.shape)}")
    return out.h.reshape(s, b * items, d), out.modality.reshape(-1)


def _pair_items(out) -> tuple[Tensor, Tensor]:
    """A pair output as items: h (S, 2B, D) (voices then faces) and modality (2B,)."""
    hv, hf = out.h_voice, out.h_face
    if hv.dim() != 3 or hv.shape != hf.shape:
        raise ValueError(f"PairOutput needs h_voice and h_face (S, B, D) of one shape, "
                         f"got {tuple(hv.shape)} and {tuple(hf.shape)}")
    b = hv.shape[1]
    modality = torch.cat([torch.full((b,), VOICE, device=hv.device), torch.full((b,), FACE, device=hv.device)])
    return torch.cat([hv, hf], dim=1), modality


def _items_of(out, reduction: str) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """Items, modality, weights and divisor of a tuple or pair output (pairs are tuples with k = 1)."""
    if hasattr(out, "h"):
        h, modality = _tuple_items(out)
        weight, norm = _adversarial_weights(out.modality, reduction)
    else:
        h, modality = _pair_items(out)
        b = out.h_voice.shape[1]
        weight, norm = None, (2 * b if reduction == "mean" else b)
    return h, modality, weight, norm


def _adversarial_total(cfg, out, discriminator: Discriminator, generator_side: bool) -> Tensor:
    h, modality, weight, norm = _items_of(out, cfg.adv_reduction)         # (S, M, D), (M,)
    per_input = out if getattr(cfg, "gen_calls", "pooled") == "per_input" else None
    z = _disc_logits(discriminator, h, cfg.adversarial, per_input)        # (S, M, C) or None
    if z is None:
        return h.new_zeros((), dtype=torch.float32)
    if generator_side:
        return adversarial_loss(z, modality, cfg.adversarial, weight=weight, norm=norm,
                                target=cfg.adv_target)
    return discriminator_loss(z, modality, cfg.adversarial, weight=weight, norm=norm)


def discriminator_logits(cfg, out, discriminator: Callable[[Tensor], Tensor]) -> Tensor:
    """The discriminator's logits (S, M, C) on a tuple or pair output's items, in item order:
    one call on all items, or one per stream and input batch (``cfg.gen_calls="per_input"``)."""
    h = _items_of(out, cfg.adv_reduction)[0]                              # (S, M, D)
    if getattr(cfg, "gen_calls", "pooled") == "per_input":
        return _per_input_logits(discriminator, out, h)
    s, m, d = h.shape
    return discriminator(h.reshape(s * m, d)).view(s, m, -1)


def discriminator_total(cfg, out, discriminator: Discriminator) -> Tensor:
    r"""The discriminator step's loss, eq. (13): eq. (12) summed over the S streams.

    :math:`\mathcal{L}^{total}_{disc} = \sum_s \mathcal{L}^{s}_{disc}` with the reduction
    ``cfg.adv_reduction``. ``out`` is a tuple output (matching) or a pair output (retrieval: each
    (voice, face) pair is a tuple of two items); the caller detaches its embeddings.
    ``discriminator`` is a module (M, D) -> (M, 2) or (M, 1), called once on all S*M items, or
    precomputed logits (S, M, C) / (S*M, C) in item order. Returns a scalar (0 for "none").
    """
    return _adversarial_total(cfg, out, discriminator, generator_side=False)


def adversarial_total(cfg, out, discriminator: Discriminator) -> Tensor:
    """The generator side of eq. (13) on a tuple or pair output (each item once for pairs)."""
    return _adversarial_total(cfg, out, discriminator, generator_side=True)
