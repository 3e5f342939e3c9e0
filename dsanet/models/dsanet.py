"""DSANet assembled (Fig. 3): backbones -> DEM (1-9) -> shared generator (10-11) -> heads.

Training passes are batched end to end: one backbone call per modality, DEM on every map at once,
one generator call on all streams stacked along the batch, one classifier call on all streams.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .backbones import build_backbone
from .dem import DEM
from .heads import MatchingClassifier, RetrievalClassifier
from .sas import Discriminator, Generator

FACE, VOICE = 0, 1  # modality codes (as in the published code)
DIRECTIONS = ("vf", "fv")


@dataclass
class TupleOutput:
    """A matching pass over B tuples in S streams."""
    h: Tensor         # (S, B, k+1, D) embeddings, anchor at index 0
    logits: Tensor    # (S, B, k) matching logits
    modality: Tensor  # (B, k+1) long, face = 0, voice = 1


@dataclass
class PairOutput:
    """A retrieval pass over B (voice, face) pairs in S streams."""
    h_voice: Tensor   # (S, B, D)
    h_face: Tensor    # (S, B, D)


class DSANet(nn.Module):
    """The full network for ``cfg``; ``centres`` stays ``None`` until ``init_centres``."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.face_backbone = build_backbone(cfg, "face")
        self.voice_backbone = build_backbone(cfg, "voice")
        self.dem = DEM(cfg)
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)
        self.classifier = MatchingClassifier(cfg.k, cfg.embed_dim, cfg.dropout, head=cfg.head)
        self.retrieval_head = RetrievalClassifier(cfg.embed_dim)
        self.centres: nn.Parameter | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def stream_kinds(self) -> list[int]:
        """Centre kind (row of ``centres``) of each training stream: 0 salient side, 1 subtle side."""
        return self.dem.stream_kinds

    def backbone(self, modality: str | int) -> nn.Module:
        if modality in ("face", FACE):
            return self.face_backbone
        if modality in ("voice", VOICE):
            return self.voice_backbone
        raise ValueError(f"dsanet/models/dsanet.py: modality must be 'face' or 'voice', got {modality!r}")

    def _streams(self, maps: Tensor, generator: torch.Generator | None) -> Tensor:
        """maps (M, C, H, W) -> embeddings (S, M, D) of every DEM stream, one generator call."""
        streams = self.dem(maps, generator=generator)  # S x (M, C, H, W)
        h = self.generator(torch.cat(streams))         # (S*M, D)
        return h.view(len(streams), maps.shape[0], -1)

    # ------------------------------------------------------------------ passes
    def embed(self, x: Tensor, modality: str | int) -> Tensor:
        """Evaluation path: backbone -> generator, no DEM. x (B, ...) -> (B, D)."""
        return self.generator(self.backbone(modality)(x))

    def forward_tuples(self, anchor: Tensor, cands: Tensor, direction: str,
                       generator: torch.Generator | None = None) -> TupleOutput:
        """Matching pass. "vf": anchor voices (B, 1, F, T), cands faces (B, k, 3, S, S); "fv" reverse."""
        if direction not in DIRECTIONS:
            raise ValueError(f"dsanet/models/dsanet.py: direction must be 'vf' or 'fv', got {direction!r}")
        if cands.dim() != anchor.dim() + 1 or cands.shape[0] != anchor.shape[0]:
            raise ValueError(f"dsanet/models/dsanet.py: anchor (B, ...) and cands (B, k, ...) expected, "
                             f"got {tuple(anchor.shape)} and {tuple(cands.shape)}")
        B, k = cands.shape[:2]
        a_mod, c_mod = (VOICE, FACE) if direction == "vf" else (FACE, VOICE)
        a_maps = self.backbone(a_mod)(anchor)                            # (B, C, H, W)
        c_maps = self.backbone(c_mod)(cands.flatten(0, 1))               # (B*k, C, H, W)
        maps = torch.cat([a_maps.unsqueeze(1), c_maps.unflatten(0, (B, k))], dim=1)  # (B, k+1, C, H, W)
        h = self._streams(maps.flatten(0, 1), generator).unflatten(1, (B, k + 1))  # (S, B, k+1, D)
        S, D = h.shape[0], h.shape[-1]
        logits = self.classifier(h[:, :, 0].reshape(S * B, D), h[:, :, 1:].reshape(S * B, k, D))
        modality = torch.full((B, k + 1), c_mod, dtype=torch.long, device=h.device)
        modality[:, 0] = a_mod
        return TupleOutput(h=h, logits=logits.view(S, B, k), modality=modality)

    def forward_pairs(self, voice: Tensor, face: Tensor,
                      generator: torch.Generator | None = None) -> PairOutput:
        """Retrieval pass on B (voice (B, 1, F, T), face (B, 3, S, S)) pairs."""
        if voice.shape[0] != face.shape[0]:
            raise ValueError(f"dsanet/models/dsanet.py: {voice.shape[0]} voices but {face.shape[0]} faces")
        maps = torch.cat([self.voice_backbone(voice), self.face_backbone(face)])  # (2B, C, H, W)
        h = self._streams(maps, generator).unflatten(1, (2, voice.shape[0]))     # (S, 2, B, D)
        return PairOutput(h_voice=h[:, 0], h_face=h[:, 1])

    def forward(self, anchor: Tensor, cands: Tensor, direction: str,
                generator: torch.Generator | None = None) -> TupleOutput:
        return self.forward_tuples(anchor, cands, direction, generator)

    # ------------------------------------------------------------------ retrieval centres, optimiser
    def init_centres(self, n_identities: int) -> nn.Parameter:
        """Class centres c_L of eq. (27): (2, n_identities, D), row 0 salient side, row 1 subtle side.

        Stream s uses ``centres[stream_kinds[s]]``. Zeros at the start; call before
        ``parameter_groups`` so the optimiser sees them.
        """
        if n_identities < 1:
            raise ValueError(f"dsanet/models/dsanet.py: need n_identities >= 1, got {n_identities}")
        ref = self.retrieval_head.linear.weight
        self.centres = nn.Parameter(torch.zeros(2, n_identities, self.cfg.embed_dim,
                                                device=ref.device, dtype=ref.dtype))
        return self.centres

    def parameter_groups(self, cfg=None) -> list[dict]:
        """Optimiser groups: backbone, generator, classifier (+ retrieval head + centres)."""
        cfg = cfg or self.cfg
        classifier = list(self.classifier.parameters()) + list(self.retrieval_head.parameters())
        if self.centres is not None:
            classifier.append(self.centres)
        backbone = list(self.face_backbone.parameters()) + list(self.voice_backbone.parameters())
        return [
            {"name": "backbone", "params": backbone, "lr": cfg.lr_backbone},
            {"name": "generator", "params": list(self.generator.parameters()), "lr": cfg.lr_generator},
            {"name": "classifier", "params": classifier, "lr": cfg.lr_classifier},
        ]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())
