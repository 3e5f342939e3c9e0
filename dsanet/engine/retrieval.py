"""The retrieval task for the trainer (Sec. III-E): (voice, face) pairs, eqs. (25)-(27), val mAP.

A step's global batch is ``cfg.batch_size`` pairs (128 in the paper), each a voice and a face of
one training identity. The loss is :func:`dsanet.losses.retrieval_total` with the model's
retrieval head C_R (eq. 26) and its class centres (eq. 27): one centre table per stream kind
(salient side / subtle side), indexed by the global identity int of the data index, so the table
has a row for every identity of the index (only training identities ever receive a gradient).
In-batch negatives make eqs. (26)-(27) couple the pairs of a batch: under DDP each rank couples
only the pairs of its own slice.

Model selection: mean average precision on the validation split, mean of V-F and F-V.
The paper's retrieval schedule (batch 128, x0.1 at 600 and 1000 of 1200 iterations, scaled to
the profile's length for smoke / quick runs) is a preset beside the others:
``dsanet.config.retrieval_profile(cfg)``.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import losses
from ..config import retrieval_profile  # noqa: F401 - the preset lives with the others
from ..data import batches
from ..data.sampling import PairSampler
from . import evaluate as ev
from .device import to_device


class RetrievalTask:
    """Batches, losses and validation of cross-modal retrieval (eqs. 25-27)."""

    method = "forward_pairs"
    name = "retrieval"

    def __init__(self, cfg, cached, device):
        self.cfg, self.cached, self.device = cfg, cached, device
        self.sampler = PairSampler(cached) if cached is not None else None  # None: losses only

    def unused_modules(self, model) -> list:
        return [model.classifier]

    def prepare(self, model) -> None:
        """Create the class centres of eq. (27) (before the optimiser is built)."""
        if model.centres is None:
            model.init_centres(self.cached.n_identities if self.cached is not None else 1)

    # ------------------------------------------------------------------ batches
    def attach_maps(self, maps) -> None:
        """Train on cached backbone maps (:class:`dsanet.engine.maps.Maps`, frozen backbones)."""
        self.maps, self.method = maps, "forward_pair_maps"

    def batch(self, rng: np.random.Generator, gen: torch.Generator, take, step: int = 0
              ) -> list[tuple]:
        """One part ``((voice, face), identity)``: voice (B', 1, F, T), face (B', 3, S, S), (B',)."""
        pairs = self.sampler.sample(self.cfg.batch_size, rng)                  # (B, 2)
        pairs = to_device(torch.from_numpy(pairs), self.cached.voices.device)
        if getattr(self, "maps", None) is not None:   # frozen backbones: cached maps (B, C, H, W)
            voice, face = self.maps.gather(pairs[:, 0], pairs[:, 1], gen)
            identity = self.cached.voice_ids.to(pairs.device)[pairs[:, 0]]
            return [((take(voice), take(face)), take(identity))]
        voice, face, identity = batches.pair_batch(self.cached, pairs, self.cfg, True, gen,
                                                   self.device)
        return [((take(voice), take(face)), take(identity))]

    # ------------------------------------------------------------------ losses
    @staticmethod
    def items(out) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator items of a pair output: h (S, 2B, D) voices then faces, modality (2B,)."""
        b = out.h_voice.shape[1]
        modality = torch.cat([torch.full((b,), 1, device=out.h_voice.device),
                              torch.full((b,), 0, device=out.h_voice.device)])
        return torch.cat([out.h_voice, out.h_face], dim=1), modality

    def generator_loss(self, out, target, model) -> dict:
        """Eqs. (25)-(27) summed over streams; stream s uses centres[stream_kinds[s]]."""
        centres = model.centres[model.stream_kinds[: out.h_voice.shape[0]]]          # (S, n, D)
        disc = model.discriminator if self.cfg.adversarial != "none" else None
        return losses.retrieval_total(self.cfg, out, target, model.retrieval_head, centres, disc)

    # ------------------------------------------------------------------ validation
    def validate(self, model, cached, cfg, seed: int = 0) -> dict[str, float]:
        """Validation mAP: {"val_vf", "val_fv", "val_score"} (fractions)."""
        emb = ev.embed_split(model, cached, cfg)
        m = {d: ev.retrieval_map(emb, d) for d in ("vf", "fv")}
        return {"val_vf": m["vf"], "val_fv": m["fv"], "val_score": (m["vf"] + m["fv"]) / 2}
