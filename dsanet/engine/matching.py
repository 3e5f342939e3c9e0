"""The matching task for the trainer: training tuples, the loss of eq. (24), validation accuracy.

A step's global batch is ``cfg.batch_size`` training tuples (anchor + ``cfg.k`` candidates).
``cfg.direction == "both"`` splits it into two halves, V-F and F-V, every step (not alternating
steps): the discriminator then sees both modalities as anchors and as candidates in each step, and
the objective is the mean of the two halves' losses, which equals eq. (24) over the whole batch
because every term is a per-tuple mean. Each half is one ``forward_tuples`` call (one backbone
call per modality).

Validation (model selection) is binary matching (k = 2, unconstrained "U") in both directions,
exact over every tuple of the validation split (:func:`dsanet.engine.exact.exact_matching`); the
score is the mean of the two accuracies with the embedding-distance scorer. Not the classifier: the paper's concatenation head is linear
in the (k+1) embeddings and cannot rank candidates by their relation to the anchor (at chance on
shuffled candidates, docs/fidelity.md), so selecting on it would pick a random checkpoint.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import losses
from ..data import batches
from ..data.sampling import IdentityBatchSampler, TupleSampler, in_batch_tuples
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
        self.train_list = self._fixed_list() if cfg.train_list_epochs and cached is not None else None

    def _fixed_list(self) -> dict[str, np.ndarray]:
        """The published script's training list: drawn once, read in order (``train_list_epochs``).

        ``cfg.steps // cfg.train_list_epochs`` batches (at least one) per direction, each
        ``(per, k+1)``; step t reads batch ``t mod`` that count, so a resumed run reads on where
        it stopped with no state beyond the step. Returns {direction: (batches, per, k+1)}.
        """
        cfg = self.cfg
        per = cfg.batch_size // len(self.directions)
        n = max(1, cfg.steps // cfg.train_list_epochs)                            # batches per epoch
        rng = np.random.default_rng([cfg.seed, 25])                     # a stream of its own
        return {d: self.samplers[d].sample(n * per, rng).reshape(n, per, -1) for d in self.directions}

    def unused_modules(self, model) -> list:
        """Modules the matching objective never touches (frozen so that DDP does not wait on them)."""
        return [model.retrieval_head]

    def attach_maps(self, maps) -> None:
        raise ValueError("backbone_train='frozen' trains on cached maps of in-batch tuples: it "
                         "needs sampling='batch' (per-tuple draws recompute every item)")

    # ------------------------------------------------------------------ batches
    def batch(self, rng: np.random.Generator, gen: torch.Generator, take, step: int = 0
              ) -> list[tuple]:
        """The global batch as parts ``((anchor, cands, direction), label)``; ``take`` slices a rank's share.

        anchor (B', ...), cands (B', k, ...), label (B',) long with B' = this rank's tuples per part.
        ``step`` (the trainer's step) is the read position of a fixed training list.
        """
        per = self.cfg.batch_size // len(self.directions)
        parts = []
        for d in self.directions:
            if self.train_list is None:
                tuples = self.samplers[d].sample(per, rng)                        # (per, k+1)
            else:
                tuples = self.train_list[d][step % len(self.train_list[d])]       # (per, k+1)
            tuples = to_device(torch.from_numpy(tuples), self.cached.voices.device)
            anchor, cands, label = batches.matching_batch(self.cached, tuples, d, self.cfg,
                                                          True, gen, self.device)
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
        """Binary validation accuracy: {"val_vf", "val_fv", "val_score"} (fractions).

        Exact: the expected accuracy over every binary "U" tuple of the split with the distance
        scorer (:func:`dsanet.engine.exact.exact_matching`, ties 1/2), from one score matrix
        (F-V is its transpose); no tuples are drawn, so ``seed`` changes nothing.
        """
        emb = ev.embed_split(model, cached, cfg)
        dist = ev.pair_score_matrix(emb, "vf", "distance")                  # (Nv, Nf)
        acc = {d: ev.exact_matching(emb, d, [2], scores=s).value[2]
               for d, s in (("vf", dist), ("fv", dist.T))}
        return {"val_vf": acc["vf"], "val_fv": acc["fv"], "val_score": (acc["vf"] + acc["fv"]) / 2}


class InBatchMatchingTask(MatchingTask):
    """Matching with tuples formed inside a batch of identities (``cfg.sampling = "batch"``).

    A step draws ``cfg.batch_size`` distinct identities with one voice and one face each
    (:class:`dsanet.data.sampling.IdentityBatchSampler`); every item is computed once
    (:meth:`dsanet.models.dsanet.DSANet.forward_batch`) and the V-F and F-V tuples index the
    batch. The objective is eq. (24) with its per-tuple terms (20), (23) averaged over the two
    directions, as :class:`MatchingTask` does for its halves; the adversarial term (13) sees each
    item once (a (voice, face) pair is a tuple of two items, as in retrieval). With
    ``cfg.metric_loss = "infonce"`` the metric term is the batch InfoNCE of the two-tower baseline.
    Under DDP each rank forms its tuples inside its own slice of the identities.
    """

    method = "forward_batch"

    def __init__(self, cfg, cached, device):
        if cfg.train_list_epochs:
            raise ValueError(f"cfg.train_list_epochs={cfg.train_list_epochs} reads a fixed list of "
                             "tuples; it needs sampling='tuple' (sampling='batch' draws identities)")
        super().__init__(cfg, None, device)
        self.cached = cached
        self.sampler = IdentityBatchSampler(cached) if cached is not None else None
        # the per-tuple terms; InfoNCE is a batch loss, added in generator_loss
        self.tuple_cfg = cfg.replace(metric_loss="none") if cfg.metric_loss == "infonce" else cfg
        self.maps = None

    def attach_maps(self, maps) -> None:
        """Train on cached backbone maps (:class:`dsanet.engine.maps.Maps`, frozen backbones)."""
        self.maps, self.method = maps, "forward_batch_maps"

    def batch(self, rng: np.random.Generator, gen: torch.Generator, take, step: int = 0
              ) -> list[tuple]:
        """One part ``((voice, face, tuples), labels)``: this rank's identities and their tuples."""
        cfg, B = self.cfg, self.cfg.batch_size
        local = take(torch.arange(B))                                     # this rank's slice
        chunk, first = len(local), int(local[0]) if len(local) else 0
        plan = self.sampler.sample(B, cfg.k, [], rng)                     # identities and items
        gender = self.sampler.items.identity_gender[plan.identities]
        tuples, labels = {}, {}
        for d in self.directions:    # tuples for every rank's chunk: the same draws on all ranks
            drawn = [in_batch_tuples(gender[s:s + chunk], cfg.k, cfg.tuples_per_anchor, False, rng)
                     for s in range(0, B - B % chunk, chunk)]
            anchor, cands, label = drawn[first // chunk]
            tuples[d] = (torch.from_numpy(anchor), torch.from_numpy(cands))
            labels[d] = torch.from_numpy(label)
        dev = self.cached.voices.device
        if self.maps is not None:   # frozen backbones: one cached view per item, (B, C, H, W) each
            voice, face = self.maps.gather(plan.voice_items, plan.face_items, gen)
        else:
            voice = batches.voice_batch(self.cached, plan.voice_items, cfg, True, gen,
                                        device=self.device)                        # (B, 1, F, T)
            face = batches.face_batch(self.cached, plan.face_items, cfg, True, gen,
                                      device=self.device)                          # (B, 3, S, S)
        tuples = {d: (a.to(dev), c.to(dev)) for d, (a, c) in tuples.items()}
        return [((take(voice), take(face), tuples), {d: t.to(dev) for d, t in labels.items()})]

    @staticmethod
    def items(out) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator items: every voice, then every face, once: h (S, 2B, D), modality (2B,)."""
        b = out.h_voice.shape[1]
        modality = torch.cat([torch.full((b,), VOICE), torch.full((b,), FACE)]).to(out.h_voice.device)
        return torch.cat([out.h_voice, out.h_face], dim=1), modality

    def generator_loss(self, out, target, model) -> dict:
        """Eq. (24) on the batch: per-tuple terms averaged over directions, adversarial per item."""
        cfg = self.cfg
        parts = [losses.tuple_terms(self.tuple_cfg, out.tuples[d], target[d]) for d in self.directions]
        metric = sum(m for m, _ in parts) / len(parts)
        cls = sum(c for _, c in parts) / len(parts)
        if cfg.metric_loss == "infonce":    # the baseline's batch loss, summed over streams
            metric = sum(losses.infonce(hv, hf, cfg.temperature)
                         for hv, hf in zip(out.h_voice, out.h_face))
        disc = model.discriminator if cfg.adversarial != "none" else None
        adversarial = losses.adversarial_total(cfg, out, disc)
        total = adversarial + cfg.lam * metric + cfg.mu * cls
        return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}
