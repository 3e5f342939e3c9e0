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


@dataclass
class BatchOutput:
    """An in-batch matching pass (:mod:`dsanet.data.sampling`): each item once, tuples gathered.

    Reads as a pair output (``h_voice``, ``h_face``: every item once) for the discriminator and
    the adversarial term; ``tuples`` holds a :class:`TupleOutput` per direction for eqs. (20)-(23).
    """
    h_voice: Tensor   # (S, B, D)
    h_face: Tensor    # (S, B, D)
    tuples: dict      # direction -> TupleOutput with h (S, T, k+1, D), logits (S, T, k)


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
        raise ValueError(f"DSANet.backbone: modality must be 'face' or 'voice', got {modality!r}")

    def _streams(self, maps: Tensor, generator: torch.Generator | None, inputs: int = 1) -> Tensor:
        """maps (M, C, H, W) -> embeddings (S, M, D) of every DEM stream.

        One generator call on all S*M items, or with ``cfg.gen_calls="per_input"`` (published)
        one per stream and input batch, so BatchNorm sees each input's own statistics; the M items
        are then ``inputs`` equal input batches laid end to end.
        """
        streams = self.dem(maps, generator=generator)  # S x (M, C, H, W)
        if getattr(self.cfg, "gen_calls", "pooled") == "per_input":
            h = torch.cat([self.generator(x) for st in streams for x in st.chunk(inputs)])
        else:
            h = self.generator(torch.cat(streams))     # (S*M, D)
        return h.view(len(streams), maps.shape[0], -1)

    # ------------------------------------------------------------------ passes
    def embed(self, x: Tensor, modality: str | int) -> Tensor:
        """Evaluation path: backbone -> generator, no DEM. x (B, ...) -> (B, D)."""
        return self.generator(self.backbone(modality)(x))

    def forward_tuples(self, anchor: Tensor, cands: Tensor, direction: str,
                       generator: torch.Generator | None = None) -> TupleOutput:
        """Matching pass. "vf": anchor voices (B, 1, F, T), cands faces (B, k, 3, S, S); "fv" reverse."""
        if direction not in DIRECTIONS:
            raise ValueError(f"DSANet.forward_tuples: direction must be 'vf' or 'fv', got {direction!r}")
        if cands.dim() != anchor.dim() + 1 or cands.shape[0] != anchor.shape[0]:
            raise ValueError(f"DSANet.forward_tuples expects anchor (B, ...) and cands (B, k, ...), "
                             f"got {tuple(anchor.shape)} and {tuple(cands.shape)}")
        B, k = cands.shape[:2]
        a_mod, c_mod = (VOICE, FACE) if direction == "vf" else (FACE, VOICE)
        a_maps = self.backbone(a_mod)(anchor)                            # (B, C, H, W)
        c_maps = self.backbone(c_mod)(cands.flatten(0, 1))               # (B*k, C, H, W)
        maps = torch.cat([a_maps.unsqueeze(1), c_maps.unflatten(0, (B, k))], dim=1)  # (B, k+1, C, H, W)
        if getattr(self.cfg, "gen_calls", "pooled") == "per_input":   # input-major: k+1 batches of B
            h = self._streams(maps.transpose(0, 1).flatten(0, 1), generator, k + 1)
            h = h.unflatten(1, (k + 1, B)).transpose(1, 2)               # (S, B, k+1, D)
        else:
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
            raise ValueError(f"DSANet.forward_pairs needs one face per voice, got {voice.shape[0]} voices "
                             f"and {face.shape[0]} faces")
        return self.forward_pair_maps(self.voice_backbone(voice), self.face_backbone(face), generator)

    def forward_pair_maps(self, voice_maps: Tensor, face_maps: Tensor,
                          generator: torch.Generator | None = None) -> PairOutput:
        """Retrieval pass from the backbones' maps (B, C, H, W) each: DEM -> generator.

        What :meth:`forward_pairs` runs after its backbones; called directly on cached maps
        (``cfg.backbone_train = "frozen"``, :mod:`dsanet.engine.maps`).
        """
        maps = torch.cat([voice_maps, face_maps])                                # (2B, C, H, W)
        h = self._streams(maps, generator, 2).unflatten(1, (2, voice_maps.shape[0]))  # (S, 2, B, D)
        return PairOutput(h_voice=h[:, 0], h_face=h[:, 1])

    def forward_batch(self, voice: Tensor, face: Tensor, tuples: dict,
                      generator: torch.Generator | None = None) -> BatchOutput:
        """In-batch matching: B identities' voice (B, 1, F, T) and face (B, 3, S, S), each computed once.

        ``tuples``: direction -> (anchor (T,), cands (T, k)) long positions in the batch
        (:func:`dsanet.data.sampling.in_batch_tuples`). One backbone call per modality, one
        generator call on every stream, one classifier call per direction.
        """
        return self.batch_from_pairs(self.forward_pairs(voice, face, generator), tuples)

    def forward_batch_maps(self, voice_maps: Tensor, face_maps: Tensor, tuples: dict,
                           generator: torch.Generator | None = None) -> BatchOutput:
        """:meth:`forward_batch` from the backbones' maps (B, C, H, W) each (cached, frozen backbones)."""
        return self.batch_from_pairs(self.forward_pair_maps(voice_maps, face_maps, generator), tuples)

    def batch_from_pairs(self, pairs: PairOutput, tuples: dict) -> BatchOutput:
        """Every item's embeddings (S, B, D) -> the in-batch tuples of each direction."""
        out = {}
        for d, (anchor, cands) in tuples.items():
            a, c = (pairs.h_voice, pairs.h_face) if d == "vf" else (pairs.h_face, pairs.h_voice)
            out[d] = self.gather_tuples(a, c, anchor, cands, d)
        return BatchOutput(h_voice=pairs.h_voice, h_face=pairs.h_face, tuples=out)

    def gather_tuples(self, h_anchor: Tensor, h_cand: Tensor, anchor: Tensor, cands: Tensor,
                      direction: str) -> TupleOutput:
        """Tuples from item embeddings: h_anchor, h_cand (S, B, D); anchor (T,), cands (T, k) -> output."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'vf' or 'fv', got {direction!r}")
        T, k = cands.shape
        h = torch.cat([h_anchor[:, anchor, None], h_cand[:, cands]], dim=2)   # (S, T, k+1, D)
        S, D = h.shape[0], h.shape[-1]
        logits = self.classifier(h[:, :, 0].reshape(S * T, D), h[:, :, 1:].reshape(S * T, k, D))
        a_mod, c_mod = (VOICE, FACE) if direction == "vf" else (FACE, VOICE)
        modality = torch.full((T, k + 1), c_mod, dtype=torch.long, device=h.device)
        modality[:, 0] = a_mod
        return TupleOutput(h=h, logits=logits.view(S, T, k), modality=modality)

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
            raise ValueError(f"DSANet.init_centres needs n_identities >= 1, got {n_identities}")
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
