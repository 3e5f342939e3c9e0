"""The matching task for the trainer: training tuples, the loss of eq. (24), validation accuracy.

A step's global batch is ``cfg.batch_size`` training tuples (anchor + ``cfg.k`` candidates).
``cfg.direction == "both"`` splits it into two halves, V-F and F-V, every step (not alternating
steps): the discriminator then sees both modalities as anchors and as candidates in each step, and
the objective is the mean of the two halves' losses, which equals eq. (24) over the whole batch
because every term is a per-tuple mean. Each half is one ``forward_tuples`` call (one backbone
call per modality).

Validation (model selection) is binary matching (k = 2, unconstrained "U" lists) in both
directions on fixed tuples of the validation split; the score is the mean of the two accuracies
with the embedding-distance scorer. Not the classifier: the paper's concatenation head is linear
in the (k+1) embeddings and cannot rank candidates by their relation to the anchor (at chance on
shuffled candidates, docs/fidelity.md), so selecting on it would pick a random checkpoint.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import losses
from ..data import batches
from ..data.protocols import TupleSampler
from . import evaluate as ev
from .device import to_device

FACE, VOICE = 0, 1


class MatchingTask:
    """Batches, losses and validation of cross-modal matching (eq. 24)."""

    method = "forward_tuples"
    name = "matching"

    def __init__(self, cfg, cached, device):
        self.cfg, self.cached, self.device = cfg, cached, device
        self.directions = ["vf", "fv"] if cfg.direction == "both" else [cfg.direction]
        if cfg.direction not in ("vf", "fv", "both"):
            raise ValueError(f"cfg.direction must be 'vf', 'fv' or 'both', got {cfg.direction!r}")
        if cfg.batch_size % len(self.directions):
            raise ValueError(f"cfg.batch_size={cfg.batch_size} must be even with direction='both'")
        self.samplers = ({d: TupleSampler(cached, None, cfg.k, d) for d in self.directions}
                         if cached is not None else {})                  # None: losses only
        self._val_tuples = None

    def unused_modules(self, model) -> list:
        """Modules the matching objective never touches (frozen so that DDP does not wait on them)."""
        return [model.retrieval_head]

    # ------------------------------------------------------------------ batches
    def batch(self, rng: np.random.Generator, gen: torch.Generator, take) -> list[tuple]:
        """The global batch as parts ``((anchor, cands, direction), label)``; ``take`` slices a rank's share.

        anchor (B', ...), cands (B', k, ...), label (B',) long with B' = this rank's tuples per part.
        """
        per = self.cfg.batch_size // len(self.directions)
        parts = []
        for d in self.directions:
            tuples = self.samplers[d].sample(per, rng)                            # (per, k+1)
            tuples = to_device(torch.from_numpy(tuples), self.cached.voices.device)
            anchor, cands, label = batches.matching_batch(self.cached, tuples, d, self.cfg,
                                                          True, gen)
            parts.append(((take(anchor), take(cands), d), take(label)))
        return parts

    # ------------------------------------------------------------------ losses
    @staticmethod
    def items(out) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator items of a tuple output: h (S, B*(k+1), D), modality (B*(k+1),).

        The item order of :func:`dsanet.losses.discriminator_total` for precomputed logits.
        """
        s, b, n, d = out.h.shape
        return out.h.reshape(s, b * n, d), out.modality.reshape(-1)

    def generator_loss(self, out, target, model) -> dict:
        """Eq. (24) summed over streams for one part."""
        disc = model.discriminator if self.cfg.adversarial != "none" else None
        return losses.matching_total(self.cfg, out, target, disc)

    # ------------------------------------------------------------------ validation
    def validate(self, model, cached, cfg, seed: int = 0) -> dict[str, float]:
        """Binary validation accuracy: {"val_vf", "val_fv", "val_score"} (fractions)."""
        emb = ev.embed_split(model, cached, cfg)
        if self._val_tuples is None:  # fixed lists: every evaluation scores the same tuples
            self._val_tuples = {d: ev.sample_tuples(*emb.sides(d), 2, cfg.eval_tuples,
                                                    np.random.default_rng([seed, i]))
                                for i, d in enumerate(("vf", "fv"))}
        acc = {d: float(ev.matching_accuracy(emb, t, d, "distance", None, seed).mean())
               for d, t in self._val_tuples.items()}
        return {"val_vf": acc["vf"], "val_fv": acc["fv"], "val_score": (acc["vf"] + acc["fv"]) / 2}
