"""Classifier heads: k-way matching (eqs. 14-16 take its logits) and retrieval's C_R (eq. 26)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .. import variants
from .lean import Dropout

HEADS = variants.names("head")  # registered in dsanet.variants.HEADS, with their descriptions


class MatchingClassifier(nn.Module):
    """Tuple (anchor, k candidates) -> k matching logits m_j (eq. 15).

    ``head="concat"`` (paper and published script, Sec. IV-A: "(k+1)*128 ... classified as
    k-dimensional output"): the (k+1)*D concatenation, anchor first, goes through dropout ->
    spectral-norm Linear((k+1)*D, k) -> BatchNorm1d(k). Being linear in the concatenation, its
    logit differences cannot depend on anchor-candidate *interactions*, so on tuples whose
    candidate order is random it stays at chance (see docs/fidelity.md).

    ``head="mlp"`` (our named option): the same concatenation through a hidden layer of 4 D units
    (dropout -> Linear((k+1)*D, 4D) -> LeakyReLU(0.2) -> Linear(4D, k)), which can express
    anchor-candidate products; still tied to one k and to candidate order.

    ``head="pairwise"`` (our named option): one shared spectral-norm Linear(D, 1) on the squared
    difference (h_0 - h_j)^2 of the anchor and each candidate - the matching analogue of the
    retrieval head C_R on embedding differences, eq. (26). It is equivariant to candidate order
    and works for any k.
    """

    def __init__(self, k: int, embed_dim: int, dropout: float = 0.1, spectral: bool = True,
                 head: str = "concat"):
        super().__init__()
        if k < 2:
            raise ValueError(f"MatchingClassifier: matching needs k >= 2 candidates, got {k}")
        variants.get("head", head)  # ValueError naming the registered heads
        self.k, self.embed_dim, self.head = k, embed_dim, head
        if head == "mlp":   # another reading of "(k+1)*128 ... classified as k-dimensional output"
            hidden = 4 * embed_dim
            self.net = nn.Sequential(Dropout(dropout), nn.Linear((k + 1) * embed_dim, hidden),
                                     nn.LeakyReLU(0.2), nn.Linear(hidden, k))
            return
        if head == "pairwise":
            linear = nn.Linear(embed_dim, 1)
            self.net = nn.Sequential(Dropout(dropout), spectral_norm(linear) if spectral else linear)
            return
        linear = nn.Linear((k + 1) * embed_dim, k)
        self.net = nn.Sequential(Dropout(dropout), spectral_norm(linear) if spectral else linear,
                                 nn.BatchNorm1d(k))

    def forward(self, anchor: Tensor, cands: Tensor) -> Tensor:
        B, D = anchor.shape
        if cands.shape != (B, self.k, self.embed_dim) or D != self.embed_dim:
            raise ValueError(f"MatchingClassifier(k={self.k}, D={self.embed_dim}) expects anchor (B, D) and "
                             f"candidates (B, k, D), got anchor {tuple(anchor.shape)} and candidates "
                             f"{tuple(cands.shape)}")
        if self.head == "pairwise":
            return self.net((anchor[:, None, :] - cands).square()).squeeze(-1)  # (B, k, D) -> (B, k)
        return self.net(torch.cat([anchor, cands.flatten(1)], dim=1))  # (B, (k+1)*D) -> (B, k)


class RetrievalClassifier(nn.Module):
    """C_R of eq. (26): an embedding difference h_i0 - h_ij (..., D) -> one match logit (...)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.linear = nn.Linear(embed_dim, 1)

    def forward(self, diff: Tensor) -> Tensor:
        if diff.shape[-1] != self.embed_dim:
            raise ValueError(f"RetrievalClassifier expects differences (..., {self.embed_dim}), "
                             f"got {tuple(diff.shape)}")
        return self.linear(diff).squeeze(-1)
