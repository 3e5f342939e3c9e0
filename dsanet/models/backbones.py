"""Feature extractors: a face (B, 3, S, S) or a spectrogram (B, 1, F, T) -> activation map
(B, cfg.channels, cfg.map_size, cfg.map_size), the f^v and f^a of Sec. III-A (32 x 12 x 12).

* ``"resnet18"`` (paper, Sec. IV-A): torchvision's ResNet18 trunk (conv1 .. layer4, no weights
  downloaded), layer4 at stride 1 so the trunk's output stride is 16 (224 px -> 14 x 14 rather
  than 7 x 7, the closest size above 12 x 12), then a 1 x 1 conv 512 -> C and adaptive average
  pooling to map_size. The voice trunk's conv1 takes one input channel (RGB filters summed).
* ``"compact"`` (this project's small CNN, not the published one): five uniform conv blocks
  (conv, avg-pool, batch-norm, LeakyReLU 0.2) widening 8 -> 16 -> 32 -> 32 -> C (27.8k
  parameters on the face path); each avg-pool halves the map only while it stays at least twice
  map_size, so 32 px inputs work as well as 224 px ones; adaptive pooling ends at map_size.
* ``"published_cnn"`` (the published script's CNN, layer for layer, written afresh from its
  description): five blocks of widths 3 / 6 / 12 / 16 / 32 (7,722 parameters on the face path),
  LeakyReLU 0.2 only after voice blocks 1, 2, 5 and face blocks 1, 2, 3, 5, no pooling in blocks
  3-4, a 2 x 2 conv with padding 4 in face block 3; a 224 x 224 face and a 224 x 125 spectrogram
  both end in 32 x 12 x 12 (:data:`PUBLISHED_LAYERS`). Inputs smaller than that are first resized
  up to it (bilinear), since the layout would shrink them to nothing; a final adaptive average
  pool gives map_size (the identity at 12). ``cfg.channels`` must be 32.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import resnet18

MODALITY_CHANNELS = {"face": 3, "voice": 1}
BACKBONES = ("resnet18", "compact", "published_cnn")


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
    """This project's five-block CNN (``"compact"``; not the published layout, see
    :class:`PublishedCNN`): (B, in, H, W) -> (B, channels, size, size)."""

    def __init__(self, in_channels: int, channels: int = 32, map_size: int = 12):
        super().__init__()
        widths = [in_channels, 8, 16, 32, 32, channels]
        kernels = [7, 5, 3, 3, 3]
        self.features = nn.Sequential(*[
            _compact_block(widths[i], widths[i + 1], kernels[i], map_size) for i in range(5)])
        self.pool = nn.AdaptiveAvgPool2d(map_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))


# The published layout, one row per layer, applied in order (PyTorch defaults elsewhere: avg-pools
# count padding). ("conv", out, kernel, stride, padding) | ("pool", kernel, stride, padding) |
# ("bn",) | ("act",) = LeakyReLU 0.2. Sizes in comments: face 224 x 224, voice 224 x 125.
PUBLISHED_LAYERS = {
    "face": (
        ("conv", 3, 7, 2, 3), ("pool", 2, 2, 0), ("bn",), ("act",),            # 112 -> 56
        ("conv", 6, 5, 2, 2), ("pool", 2, 2, 1), ("bn",), ("act",),            # 28 -> 15
        ("conv", 12, 2, 1, 4), ("bn",), ("act",),                              # 22
        ("conv", 16, 3, 1, 1), ("bn",),                                        # 22
        ("conv", 32, 3, 1, 1), ("bn",), ("pool", 2, 2, 1), ("act",),           # 22 -> 12
    ),
    "voice": (
        ("conv", 3, 5, (2, 1), 1), ("pool", (3, 5), 2, 0), ("bn",), ("act",),  # 111x123 -> 55x60
        ("conv", 6, (3, 6), 2, 1), ("bn",), ("pool", 3, 2, 0), ("act",),       # 28x29 -> 13x14
        ("conv", 12, 3, 1, 1), ("bn",),                                        # 13x14
        ("conv", 16, 3, 1, 1), ("bn",),                                        # 13x14
        ("conv", 32, 3, 1, 1), ("pool", (4, 5), 1, 1), ("bn",), ("act",),      # 13x14 -> 12x12
    ),
}
PUBLISHED_INPUT = {"face": (224, 224), "voice": (224, 125)}   # (H, W) that end in 12 x 12


def _published_layers(modality: str) -> nn.Sequential:
    layers, width = [], MODALITY_CHANNELS[modality]
    for kind, *args in PUBLISHED_LAYERS[modality]:
        if kind == "conv":
            out, kernel, stride, padding = args
            layers.append(nn.Conv2d(width, out, kernel, stride, padding))
            width = out
        elif kind == "pool":
            layers.append(nn.AvgPool2d(*args))
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(width))
        else:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class PublishedCNN(nn.Module):
    """The published script's CNN for one modality: (B, in, H, W) -> (B, 32, size, size).

    Inputs smaller than :data:`PUBLISHED_INPUT` on either side are resized up to it first.
    """

    def __init__(self, modality: str, channels: int = 32, map_size: int = 12):
        super().__init__()
        if channels != 32:
            raise ValueError(f"backbone 'published_cnn' ends in 32 channels, but cfg.channels={channels}")
        self.min_size = PUBLISHED_INPUT[modality]
        self.features = _published_layers(modality)
        self.pool = nn.AdaptiveAvgPool2d(map_size)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h < self.min_size[0] or w < self.min_size[1]:
            x = F.interpolate(x, size=(max(h, self.min_size[0]), max(w, self.min_size[1])),
                              mode="bilinear", align_corners=False)
        return self.pool(self.features(x))                    # (B, 32, map_size, map_size)


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
    """A local torchvision ResNet18 state dict; clear errors otherwise. ``fc.*`` may be absent,
    and so may the batch-norm counters ``*.num_batches_tracked``: torchvision's ImageNet files
    were saved before those buffers existed, and ``load_state_dict`` accepts them without."""
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
    missing = [k for k in own if k not in state and not k.startswith("fc.")
               and not k.endswith(".num_batches_tracked")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(f"cfg.pretrained: {p} is not a ResNet18 state dict "
                         f"(missing {missing[:3]}, wrong shapes {wrong[:3]})")
    return {k: state.get(k, v) for k, v in own.items()}


def build_backbone(cfg, modality: str) -> nn.Module:
    """Backbone for ``modality`` ("face" (B, 3, S, S) or "voice" (B, 1, F, T)) by ``cfg.backbone``."""
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"backbone: modality must be 'face' or 'voice', got {modality!r}")
    cin = MODALITY_CHANNELS[modality]
    if cfg.backbone == "resnet18":
        return ResNet18Trunk(cin, cfg.channels, cfg.map_size, cfg.pretrained)
    if cfg.backbone == "compact":
        return CompactCNN(cin, cfg.channels, cfg.map_size)
    if cfg.backbone == "published_cnn":
        return PublishedCNN(modality, cfg.channels, cfg.map_size)
    raise ValueError(f"cfg.backbone must be one of {BACKBONES}, "
                     f"got {cfg.backbone!r}")
