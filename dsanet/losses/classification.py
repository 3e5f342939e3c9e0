"""Classification losses: the adaptive mask cross-entropy AMCE (eqs. 14-17, its term of eq. 20)
and the Table VIII alternatives BCE, GBCE and focal; :func:`classification_loss` picks one."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import CLS_LOSSES, _check_choice, _check_logits_target, _one_hot


# ----------------------------------------------------------------------------- classification (14-20)

def amce_mask(logits: Tensor, target: Tensor, eta: float) -> Tensor:
    r"""The adaptive 0/1 mask of eq. (16); not differentiated.

    With :math:`p_j = \sigma(m_j)` (eq. 15) and :math:`p^{\max} = \max_j p_j` over the row,

    .. math::
        \omega_j = \begin{cases} 1 & L_i = j \\ 1 & L_i \ne j,\ p_j - p^{\max} + \eta > 0 \\
        0 & \text{otherwise.} \end{cases}

    The row's most probable class always passes (for :math:`\eta > 0`); :math:`\eta > 1` keeps every
    class. Equality (:math:`p_j - p^{\max} + \eta = 0`) is masked, a case eq. (16) leaves open.

    logits (B, k), target (B,) -> mask (B, k) float32.
    """
    _check_logits_target(logits, target, "amce_mask")
    with torch.no_grad():
        p = logits.detach().float().sigmoid()                       # (B, k), eq. (15)
        p_max = p.amax(dim=1, keepdim=True)                         # (B, 1)
        keep = (p - p_max + eta) > 0                                # (B, k)
        keep = keep | _one_hot(target, logits.shape[1]).bool()      # the true class is always kept
    return keep.float()


def amce_loss(logits: Tensor, target: Tensor, eta: float = 0.1) -> Tensor:
    r"""Adaptive mask cross-entropy, eqs. (14)-(17).

    .. math::
        \mathcal{L}_{AMCE} = \frac{1}{B}\sum_{i=1}^{B}\sum_{j=1}^{k} \omega_{ij}\,
        \mathrm{BCE}(m_{ij}, y_{ij}),\qquad
        \mathrm{BCE}(m, y) = -y\log\sigma(m) - (1-y)\log(1-\sigma(m)),

    with :math:`y` the one-hot target and :math:`\omega` from :func:`amce_mask`. Its gradient is
    :math:`\partial\mathcal{L}/\partial m_j = (p_j - 1)/B` for the true class and
    :math:`\omega_j p_j / B` for a negative, which is eq. (17) up to the batch mean.

    Note: eq. (14) writes only :math:`-\sum_j \omega_j \log p_j`; the gradient of eq. (17) (and the
    published code) is that of the binary cross-entropy above, which is what is computed. Eq. (18)
    gives the plain BCE gradient as 0 for negatives, but BCE's gradient there is :math:`p_j`; so with
    :math:`\eta > 1` (every class kept) AMCE *equals* the full BCE of :func:`bce_loss`.

    logits (B, k), target (B,) -> scalar.
    """
    mask = amce_mask(logits, target, eta)                           # (B, k)
    onehot = _one_hot(target, logits.shape[1])                      # (B, k)
    bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none")
    return (bce * mask).sum() / logits.shape[0]


def bce_loss(logits: Tensor, target: Tensor) -> Tensor:
    r"""Binary cross-entropy with logits on every class (Table VIII, :math:`\mathcal{L}_{BCE}`).

    .. math:: \mathcal{L}_{BCE} = \frac{1}{B}\sum_{i}\sum_{j=1}^{k}\mathrm{BCE}(m_{ij}, y_{ij}).

    logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "bce_loss")
    onehot = _one_hot(target, logits.shape[1])
    return F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="sum") / logits.shape[0]


def gbce_loss(logits: Tensor, target: Tensor, negatives: int = 1) -> Tensor:
    r"""Gradient-boosting cross-entropy (Sun et al., AAAI 2020; Table VIII, :math:`\mathcal{L}_{GBCE}`).

    A softmax cross-entropy restricted to the true class and the ``negatives`` highest-scoring
    negative classes :math:`\mathcal{N}_i` of each row:

    .. math:: \mathcal{L}_{GBCE} = \frac{1}{B}\sum_i \Big[\log\big(e^{m_{iL_i}} +
        \sum_{j\in\mathcal{N}_i} e^{m_{ij}}\big) - m_{iL_i}\Big].

    ``negatives`` is capped at k - 1 (then GBCE is the full softmax cross-entropy; for k = 2 it
    always is). logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "gbce_loss")
    if negatives < 1:
        raise ValueError(f"gbce_loss: negatives must be >= 1, got {negatives}")
    k = logits.shape[1]
    if k < 2:
        raise ValueError(f"gbce_loss needs k >= 2 classes, got logits {tuple(logits.shape)}")
    m = logits.float()                                                # (B, k)
    true = m.gather(1, target.long()[:, None])                        # (B, 1)
    neg = m.masked_fill(_one_hot(target, k).bool(), float("-inf"))    # (B, k), true class removed
    hard = neg.topk(min(negatives, k - 1), dim=1).values              # (B, n)
    return (torch.logsumexp(torch.cat([true, hard], 1), dim=1) - true[:, 0]).mean()


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, alpha: float | None = None) -> Tensor:
    r"""Sigmoid focal loss (Lin et al., ICCV 2017; Table VIII, :math:`\mathcal{L}_{Focal}`).

    .. math:: \mathcal{L}_{Focal} = \frac{1}{B}\sum_i\sum_{j=1}^{k} -\alpha_{ij}(1 - p^t_{ij})^{\gamma}
        \log p^t_{ij},\qquad p^t_{ij} = \begin{cases}\sigma(m_{ij}) & y_{ij}=1\\
        1-\sigma(m_{ij}) & y_{ij}=0\end{cases}

    :math:`\alpha_{ij} = 1` by default (``alpha=None``), so that ``gamma=0`` gives :func:`bce_loss`;
    ``alpha=a`` weighs positives by a and negatives by 1 - a (Lin et al. use 0.25).
    Computed as :math:`\log p^t = -\mathrm{BCE}` and :math:`1 - p^t = -\mathrm{expm1}(-\mathrm{BCE})`,
    stable for any logit. logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "focal_loss")
    onehot = _one_hot(target, logits.shape[1])                                        # (B, k)
    bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none")  # -log p_t
    one_minus_pt = (-torch.expm1(-bce)).clamp_min(1e-12)                              # (B, k)
    loss = one_minus_pt.pow(gamma) * bce
    if alpha is not None:
        loss = loss * (alpha * onehot + (1.0 - alpha) * (1.0 - onehot))
    return loss.sum() / logits.shape[0]


def classification_loss(cfg, logits: Tensor, target: Tensor) -> Tensor:
    """The classification term of eq. (24) chosen by ``cfg.cls_loss`` (Table VIII).

    "amce" (eq. 14-17, ``cfg.eta``) | "bce" | "gbce" (``cfg.gbce_negatives``) | "focal"
    (``cfg.focal_gamma``). logits (B, k), target (B,) -> scalar.
    """
    _check_choice("cfg.cls_loss", cfg.cls_loss, CLS_LOSSES)
    return _CLASSIFICATION[cfg.cls_loss](cfg, logits, target)


# what computes each classification loss registered in dsanet.variants.CLS_LOSSES
_CLASSIFICATION: dict[str, Callable[..., Tensor]] = {
    "amce": lambda cfg, z, t: amce_loss(z, t, cfg.eta),
    "bce": lambda cfg, z, t: bce_loss(z, t),
    "gbce": lambda cfg, z, t: gbce_loss(z, t, cfg.gbce_negatives),
    "focal": lambda cfg, z, t: focal_loss(z, t, cfg.focal_gamma),
    "none": lambda cfg, z, t: z.new_zeros((), dtype=torch.float32),
}
