"""Every switchable variant, registered by name with what its consumers need (the one home of the names).

Five families, each a dict name -> spec, keyed in :data:`FAMILIES` by the :class:`~dsanet.config.Config`
field that picks one:

* ``adversarial`` (Table IX): :class:`Adversarial` - self-attention and spectral norm in the SAS
  generator (eqs. 10-11), the discriminator's outputs per item (eq. 12), the objective that
  :mod:`dsanet.losses` computes, the hook run after each discriminator step and the modality
  read-out that turns the discriminator's output into a "voice" prediction;
* ``head``: :class:`Head` - the matching classifier of eq. (15) (:mod:`dsanet.models.heads`);
* ``cls_loss`` (Table VIII), ``metric_loss`` (Table X): :class:`Loss`;
* ``adv_target``: :class:`AdvTarget` - what the generator's side of eq. (12) aims at.

A new variant is one entry here plus its implementation where the objective lives, and a test.
This module imports nothing from dsanet and not torch: read-outs and hooks only call tensor
methods on what they are given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

VOICE = 1  # modality code of a voice (face = 0), as in dsanet.losses


# ----------------------------------------------------------------------------- adversarial (Table IX)

def argmax_readout(z):
    """Two modality logits (..., 2) -> (...) bool: voice where the voice logit is the larger."""
    return z.argmax(-1) == VOICE


def critic_readout(z):
    """A critic score (..., 1) -> (...) bool: voice where the score is positive (voices score high)."""
    return z[..., 0] > 0


def least_squares_readout(z):
    """A least-squares score (..., 1), trained towards 1 for voices and 0 for faces -> voice above 1/2."""
    return z[..., 0] > 0.5


def clip_weights(params, cfg) -> None:
    """WGAN's Lipschitz constraint: clamp every discriminator weight to [-cfg.wgan_clip, cfg.wgan_clip].

    The caller runs it under ``torch.no_grad()`` after the discriminator's optimiser step.
    """
    for p in params:
        p.clamp_(-cfg.wgan_clip, cfg.wgan_clip)


OBJECTIVES = ("cross_entropy", "wasserstein", "least_squares", "none")


@dataclass(frozen=True)
class Adversarial:
    """One adversarial network of SAS (Table IX)."""

    name: str
    description: str
    self_attention: bool       # SAGAN self-attention phi on the generator's input map (eqs. 10-11)
    spectral_norm: bool        # spectral norm on the generator's and discriminator's linear layers
    outputs: int               # discriminator outputs per item: 2 modality logits or 1 score
    batch_norm: bool           # BatchNorm1d on the discriminator's outputs (as published for 2)
    objective: str             # one of OBJECTIVES: the loss dsanet.losses computes on the outputs
    readout: Callable          # discriminator output (..., outputs) -> (...) bool, True = voice
    post_step: Callable | None = None  # (discriminator params, cfg) after each discriminator step


ADVERSARIAL: dict[str, Adversarial] = {a.name: a for a in (
    Adversarial("sagan", "SAGAN (paper): self-attention and spectral norm, 2-way modality "
                "cross-entropy", True, True, 2, True, "cross_entropy", argmax_readout),
    Adversarial("gan", "GAN: plain generator, 2-way modality cross-entropy",
                False, False, 2, True, "cross_entropy", argmax_readout),
    Adversarial("wgan", "WGAN: 1-output critic, Wasserstein estimate, weights clipped to "
                "cfg.wgan_clip", False, False, 1, False, "wasserstein", critic_readout,
                clip_weights),
    Adversarial("lsgan", "LSGAN (Mao et al., 2017): 1-output discriminator, least-squares loss "
                "towards 1 for voices and 0 for faces", False, False, 1, False, "least_squares",
                least_squares_readout),
    Adversarial("none", "no adversarial term (the discriminator is built like GAN's, never trained)",
                False, False, 2, True, "none", argmax_readout),
)}


# ----------------------------------------------------------------------------- matching heads (eq. 15)

@dataclass(frozen=True)
class Head:
    name: str
    description: str
    k_agnostic: bool           # True: one trained head scores tuples of any k (and any order)


HEADS: dict[str, Head] = {h.name: h for h in (
    Head("concat", "paper: spectral-norm Linear((k+1)D, k) -> BN on the concatenated tuple", False),
    Head("pairwise", "shared spectral-norm Linear(D, 1) on (h_0 - h_j)^2 per candidate", True),
    Head("mlp", "the concatenated tuple through one hidden layer of 4D units", False),
)}


# ----------------------------------------------------------------------------- losses (Tables VIII, X)

@dataclass(frozen=True)
class Loss:
    name: str
    description: str
    batch_only: bool = False   # needs the whole batch (cfg.sampling = "batch"), not tuples


CLS_LOSSES: dict[str, Loss] = {c.name: c for c in (
    Loss("amce", "adaptive masked cross-entropy, eqs. (14)-(17) (cfg.eta)"),
    Loss("bce", "binary cross-entropy on every class"),
    Loss("gbce", "gradient-boosting cross-entropy (cfg.gbce_negatives)"),
    Loss("focal", "sigmoid focal loss (cfg.focal_gamma)"),
    Loss("none", "no classification term"),
)}

METRIC_LOSSES: dict[str, Loss] = {m.name: m for m in (
    Loss("structured", "structured metric, eqs. (21)-(22) (cfg.margin)"),
    Loss("lifted", "lifted structured loss on tuples"),
    Loss("triplet", "triplet loss with the hardest negative"),
    Loss("infonce", "symmetric in-batch InfoNCE, the two-tower baseline (cfg.temperature)",
         batch_only=True),
    Loss("none", "no metric term"),
)}


# ----------------------------------------------------------------------------- adversarial targets

@dataclass(frozen=True)
class AdvTarget:
    """What the generator's side of eq. (12) aims the discriminator at."""

    name: str
    description: str
    label: str                 # "flipped": 1 - Y; "uniform": 1/2 for both; "true": Y
    negate: bool = False       # the generator minimises the negated discriminator loss


ADV_TARGETS: dict[str, AdvTarget] = {t.name: t for t in (
    AdvTarget("flip", "the flipped modality 1 - Y (published code, non-saturating form)", "flipped"),
    AdvTarget("confusion", "probability 1/2 for both modalities", "uniform"),
    AdvTarget("minimax", "the negated discriminator loss (gradient reversal)", "true", negate=True),
)}


# ----------------------------------------------------------------------------- lookup

FAMILIES: dict[str, dict] = {"adversarial": ADVERSARIAL, "head": HEADS, "cls_loss": CLS_LOSSES,
                             "metric_loss": METRIC_LOSSES, "adv_target": ADV_TARGETS}


def names(family: str) -> tuple[str, ...]:
    """The registered names of a family ("adversarial", "head", ...), in registration order."""
    return tuple(FAMILIES[family])


def get(family: str, name: str):
    """The spec registered as ``name`` in ``family``; ValueError naming the allowed names."""
    specs = FAMILIES[family]
    if name not in specs:
        raise ValueError(f"unknown {family} {name!r}; registered: {', '.join(specs)}")
    return specs[name]
