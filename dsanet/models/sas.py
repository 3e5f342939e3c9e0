"""Siamese adversarial structure (SAS), eqs. (10)-(13): the shared generator and discriminator.

Every stream of DEM goes through the same ``Generator`` (shared parameters, eqs. 10-11) and the
same ``Discriminator`` (eq. 12). ``cfg.adversarial`` picks the variant of Table IX, a spec of
:data:`dsanet.variants.ADVERSARIAL` that says what is built:

* ``"sagan"`` (paper): self-attention on the map and spectral norm on every linear/conv layer;
* ``"gan"`` / ``"none"``: the same generator without self-attention and spectral norm, a plain
  2-way modality discriminator (``"none"`` only differs in the losses, which skip the term);
* ``"wgan"`` / ``"lsgan"``: as ``"gan"``, with a 1-output critic / least-squares discriminator.

``simulate_stream_dropout`` reproduces Table I by simulation.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .. import variants
from .lean import Dropout, pointwise

ADVERSARIAL = variants.names("adversarial")


def _sn(module: nn.Module, spectral: bool) -> nn.Module:
    return spectral_norm(module) if spectral else module


def _adversarial_spec(cfg) -> variants.Adversarial:
    """The registered spec of ``cfg.adversarial``; ValueError naming the registered kinds."""
    return variants.get("adversarial", cfg.adversarial)


class SelfAttention(nn.Module):
    """SAGAN self-attention on a map (B, C, H, W) -> (B, C, H, W), the phi of eqs. (10)-(11).

    query = 1x1 conv to C/8 at every position; key (C/8) and value (C/2) are 1x1 convs followed
    by 2x2 max-pooling; softmax(query . key) weights the values, a 1x1 conv maps them back to C
    and the result is added to the input scaled by ``gamma`` (a learned scalar, initialised at 0,
    so the block starts as the identity).
    """

    def __init__(self, channels: int, spectral: bool = True):
        super().__init__()
        if channels < 8:
            raise ValueError(f"SelfAttention needs >= 8 channels, got {channels}")
        def conv(i, o): return _sn(nn.Conv2d(i, o, 1), spectral)
        self.query = conv(channels, channels // 8)
        self.key = conv(channels, channels // 8)
        self.value = conv(channels, channels // 2)
        self.out = conv(channels // 2, channels)
        self.pool = nn.MaxPool2d(2)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        if H < 2 or W < 2:
            raise ValueError(f"SelfAttention needs maps with H, W >= 2, got {H}x{W}")
        q = pointwise(self.query, x).flatten(2)                  # (B, C/8, N)
        k = self.pool(pointwise(self.key, x)).flatten(2)         # (B, C/8, N/4)
        v = self.pool(pointwise(self.value, x)).flatten(2)       # (B, C/2, N/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N/4)
        y = (v @ attn.transpose(1, 2)).view(B, -1, H, W)      # (B, C/2, H, W)
        return x + self.gamma * pointwise(self.out, y)


class Generator(nn.Module):
    """G of eqs. (10)-(11): map (B, C, H, W) -> modality-independent embedding (B, embed_dim).

    sagan: dropout -> SelfAttention (phi) -> flatten -> dropout -> SN Linear(C*H*W, hidden) -> BN ->
    LeakyReLU(0.2) -> dropout -> SN Linear(hidden, embed) -> BN -> tanh (the two FC layers are psi).
    gan / wgan / lsgan / none: the same without self-attention and spectral norm (the spec's
    ``self_attention`` and ``spectral_norm``).
    """

    def __init__(self, cfg):
        super().__init__()
        spec = _adversarial_spec(cfg)
        sn = spec.spectral_norm
        self.in_shape = (cfg.channels, cfg.map_size, cfg.map_size)
        in_features = cfg.channels * cfg.map_size * cfg.map_size
        self.drop = Dropout(cfg.dropout)
        self.attention = SelfAttention(cfg.channels, spectral=sn) if spec.self_attention else nn.Identity()
        if cfg.projection == "linear":   # the two-tower baseline: one linear map to the embedding
            self.mlp = nn.Sequential(nn.Flatten(), Dropout(cfg.dropout),
                                     nn.Linear(in_features, cfg.embed_dim))
            return
        if cfg.projection != "mlp":
            raise ValueError(f"projection must be 'mlp' or 'linear', got {cfg.projection!r}")
        self.mlp = nn.Sequential(
            nn.Flatten(), Dropout(cfg.dropout),
            _sn(nn.Linear(in_features, cfg.hidden_dim), sn), nn.BatchNorm1d(cfg.hidden_dim),
            nn.LeakyReLU(0.2), Dropout(cfg.dropout),
            _sn(nn.Linear(cfg.hidden_dim, cfg.embed_dim), sn), nn.BatchNorm1d(cfg.embed_dim),
            nn.Tanh(),
        )

    def forward(self, maps: Tensor) -> Tensor:
        if tuple(maps.shape[1:]) != self.in_shape:
            raise ValueError(f"Generator expects maps (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(maps.shape)}")
        return self.mlp(self.attention(self.drop(maps)))  # (B, embed_dim)


class Discriminator(nn.Module):
    """D of eq. (12): embedding (M, embed_dim) -> modality logits (M, 2) (face = 0, voice = 1).

    Linear(embed, spec.outputs), spectral-normed and followed by BatchNorm1d as the spec says:
    sagan: SN Linear(embed, 2) -> BN (as published); gan / none: Linear(embed, 2) -> BN;
    wgan / lsgan: Linear(embed, 1), an unbounded score (M, 1) with no batch norm.
    """

    def __init__(self, cfg):
        super().__init__()
        self.spec = _adversarial_spec(cfg)
        self.kind = cfg.adversarial
        linear = _sn(nn.Linear(cfg.embed_dim, self.spec.outputs), self.spec.spectral_norm)
        self.net = nn.Sequential(linear, nn.BatchNorm1d(self.spec.outputs)) if self.spec.batch_norm else linear

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)  # (M, outputs): (M, 2) or (M, 1)


def simulate_stream_dropout(p: float, streams: int = 2, n: int = 200_000,
                            generator: torch.Generator | None = None) -> tuple[float, float]:
    """Table I by simulation: ``(drop_rate, learn_rate)`` of n units under ``streams`` dropouts.

    Each shared-parameter stream drops each unit independently with probability p. A unit counts
    as *dropped* when at least one stream drops it, 1 - (1-p)^S, and as *learned* when at least one
    stream keeps it, 1 - p^S (it is lost only when every stream drops it). For S = 1 (GAN) these
    are p and 1 - p; for S = 2 (SAS) p(2 - p) and 1 - p^2, Table I's rows.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"simulate_stream_dropout: dropout probability must be in [0, 1], got {p}")
    if streams < 1 or n < 1:
        raise ValueError(f"simulate_stream_dropout needs streams >= 1 and n >= 1, got {streams}, {n}")
    dropped = torch.rand(streams, n, generator=generator) < p  # (S, n)
    drop_rate = dropped.any(dim=0).float().mean()
    learn_rate = (~dropped).any(dim=0).float().mean()
    return float(drop_rate), float(learn_rate)
