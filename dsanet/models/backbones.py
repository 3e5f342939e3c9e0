"""Feature extractors: a face (B, 3, S, S) or a spectrogram (B, 1, F, T) -> activation map
(B, cfg.channels, cfg.map_size, cfg.map_size), the f^v and f^a of Sec. III-A (32 x 12 x 12).

* ``"resnet18"`` (paper, Sec. IV-A): torchvision's ResNet18 trunk (conv1 .. layer4, no weights
  downloaded), layer4 at stride 1 so the trunk's output stride is 16 (224 px -> 14 x 14 rather
  than 7 x 7, the closest size above 12 x 12), then a 1 x 1 conv 512 -> C and adaptive average
  pooling to map_size. The voice trunk's conv1 takes one input channel (RGB filters summed).
* ``"compact"`` (published script): five conv blocks (conv, avg-pool, batch-norm, LeakyReLU 0.2)
  widening 8 -> 16 -> 32 -> 32 -> C; each avg-pool halves the map only while it stays at least
  twice map_size, so 32 px inputs work as well as 224 px ones; adaptive pooling ends at map_size.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import resnet18

MODALITY_CHANNELS = {"face": 3, "voice": 1}
BACKBONES = ("resnet18", "compact")


class ShrinkPool(nn.Module):
    """2 x 2 average pooling applied only while both sides stay >= 2 * ``floor`` (shape rule only)."""

    def __init__(self, floor: int):
        super().__init__()
        self.floor = floor

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) >= 2 * self.floor:
            return F.avg_pool2d(x, 2)
        return x


def _compact_block(cin: int, cout: int, kernel: int, floor: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), ShrinkPool(floor),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class CompactCNN(nn.Module):
    """The published five-layer CNN, written afresh: (B, in, H, W) -> (B, channels, size, size)."""

    def __init__(self, in_channels: int, channels: int = 32, map_size: int = 12):
        super().__init__()
        widths = [in_channels, 8, 16, 32, 32, channels]
        kernels = [7, 5, 3, 3, 3]
        self.features = nn.Sequential(*[
            _compact_block(widths[i], widths[i + 1], kernels[i], map_size) for i in range(5)])
        self.pool = nn.AdaptiveAvgPool2d(map_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))


class ResNet18Trunk(nn.Module):
    """torchvision ResNet18 conv1 .. layer4 (output stride 16) -> 1x1 conv -> adaptive pool."""

    def __init__(self, in_channels: int, channels: int = 32, map_size: int = 12,
                 pretrained: str | None = None):
        super().__init__()
        net = resnet18(weights=None)
        if pretrained is not None:
            net.load_state_dict(_read_state_dict(pretrained, net))
        if in_channels != 3:  # voice: sum the RGB filters, so a grey image keeps its response
            w = net.conv1.weight.detach().sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            net.conv1.weight.data.copy_(w)
        net.layer4[0].conv1.stride = (1, 1)          # keep 14 x 14 at 224 px (output stride 16)
        net.layer4[0].downsample[0].stride = (1, 1)
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                   net.layer1, net.layer2, net.layer3, net.layer4)
        self.reduce = nn.Conv2d(512, channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(map_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.reduce(self.trunk(x)))


def _read_state_dict(path: str, net: nn.Module) -> dict:
    """A local torchvision ResNet18 state dict (``fc.*`` may be absent); clear errors otherwise."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"cfg.pretrained: no weights file at {p} (weights are never downloaded)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"cfg.pretrained: {p} is not a readable PyTorch state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(f"cfg.pretrained: {p} is not a ResNet18 state dict "
                         f"(missing {missing[:3]}, wrong shapes {wrong[:3]})")
    return {k: state.get(k, v) for k, v in own.items()}


def build_backbone(cfg, modality: str) -> nn.Module:
    """Backbone for ``modality`` ("face" (B, 3, S, S) or "voice" (B, 1, F, T)) by ``cfg.backbone``."""
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"dsanet/models/backbones.py: modality must be 'face' or 'voice', got {modality!r}")
    cin = MODALITY_CHANNELS[modality]
    if cfg.backbone == "resnet18":
        return ResNet18Trunk(cin, cfg.channels, cfg.map_size, cfg.pretrained)
    if cfg.backbone == "compact":
        return CompactCNN(cin, cfg.channels, cfg.map_size)
    raise ValueError(f"dsanet/models/backbones.py: cfg.backbone must be one of {BACKBONES}, "
                     f"got {cfg.backbone!r}")
