"""Cached activation maps: the sweep protocol ``cfg.backbone_train = "frozen"``.

Every row of Tables V-XII starts from the same identity-pretrained backbones
(:mod:`dsanet.engine.pretrain`). Under ``"frozen"`` they stay as they are: their activation maps
(the C x H x W f^v / f^a of Sec. III-A, the input of DEM, eqs. 1-9) are computed once per data
tree, backbones and front-end, kept on disk, and a run trains DEM, the shared generator, the
discriminator and the heads on them. ``"finetune"`` (the default; Table IV, Figs. 5 and 7)
trains end to end.

The maps are those of the training augmentations, several views per item: each face unflipped
and flipped (view 0, 1: exactly the two images training can draw), each voice at
``cfg.map_views`` time crops evenly spaced over its valid offsets (offset_v = round(v * slack /
(V - 1)), slack = frames - ``spec_frames``; a training step draws one view per item, where
end-to-end training draws the offset uniformly). Backbones run in evaluation mode (BatchNorm on
running statistics), as on the evaluation path, so a frozen run's training maps and its
evaluation embeddings come from the same function.

The file is keyed by a hash of the backbones' weights, the decoded training cache (its name
encodes the data and the front-end settings), the views and this module's source, so a change
of any of them computes new maps; a file lock makes concurrent sweep workers wait for the first.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..data.batches import _items
from ..data.frontends import normalise_faces
from ..data.transfer import transfer
from .checkpoint import load_checkpoint, save_checkpoint
from .pretrain import _locked

FACE_VIEWS = 2          # unflipped, flipped
CHUNK = 256             # items per backbone call when computing maps


@dataclass
class Maps:
    """Training-split maps: voice (Nv, V, C, H, W), face (Nf, 2, C, H, W) float32 (CPU)."""

    voice: Tensor
    face: Tensor

    def to(self, device) -> "Maps":
        return Maps(self.voice.to(device), self.face.to(device))

    def gather(self, voice_items, face_items, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """One training view per item: voices (M,) -> (M, C, H, W), faces (M',) -> (M', C, H, W).

        The view is drawn uniformly per item from ``generator`` (one draw per item, on its device).
        """
        dev = self.voice.device
        v, f = _items(voice_items, dev), _items(face_items, dev)                   # (M,), (M',)
        gdev = generator.device if generator is not None else dev
        nv = self.voice.shape[1]
        vv = (torch.rand(v.shape[0], generator=generator, device=gdev) * nv).long().to(dev)
        fv = (torch.rand(f.shape[0], generator=generator, device=gdev) < 0.5).long().to(dev)
        return self.voice[v, vv.clamp_max(nv - 1)], self.face[f, fv]


def _weights_digest(*modules: nn.Module) -> str:
    h = hashlib.sha256()
    for m in modules:
        for name, t in sorted(m.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def maps_key(model: nn.Module, cached, cfg) -> str:
    """sha256 over the backbones' weights, the training cache's name, the views and this code."""
    source = hashlib.sha256(inspect.getsource(inspect.getmodule(maps_key)).encode()).hexdigest()
    payload = "|".join([_weights_digest(model.face_backbone, model.voice_backbone),
                        str(cached.path.name if cached.path is not None else None),
                        str(cfg.map_views), str(cfg.spec_frames), source])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def maps_path(model: nn.Module, cached, cfg) -> Path | None:
    """Where the maps of ``model``'s backbones on ``cached`` live (None: an in-memory split)."""
    if cached.path is None:
        return None
    return Path(cached.path).parent / "maps" / f"maps-{maps_key(model, cached, cfg)}.pt"


def voice_view_offsets(lengths: Tensor, frames: int, views: int) -> Tensor:
    """Crop offsets (N, V) of ``views`` crops evenly spaced over each item's valid offsets."""
    slack = (lengths.long().clamp_min(1) - frames).clamp_min(0)                   # (N,)
    frac = torch.linspace(0, 1, views) if views > 1 else torch.zeros(1)           # (V,)
    return (slack[:, None].double() * frac[None, :].double()).round().long()     # (N, V)


def _crop(spec: Tensor, lengths: Tensor, offset: Tensor, frames: int) -> Tensor:
    """spec (B, 1, F, T) at offsets (B,) -> (B, 1, F, frames) (wrapping as crop_frames does)."""
    lengths = lengths.long().clamp_min(1)
    idx = (offset[:, None] + torch.arange(frames)[None, :]) % lengths[:, None]    # (B, frames)
    B, c, nf, _ = spec.shape
    return spec.gather(-1, idx[:, None, None, :].expand(B, c, nf, frames))


@torch.no_grad()
def compute_maps(model: nn.Module, cached, cfg, device) -> Maps:
    """The maps of every training view of ``cached`` through ``model``'s backbones (eval mode)."""
    fb, vb = model.face_backbone, model.voice_backbone
    modes = fb.training, vb.training
    fb.eval(), vb.eval()
    try:
        nv, V = cached.n_voices, cfg.map_views
        offsets = voice_view_offsets(cached.voice_frames.cpu(), cfg.spec_frames, V)  # (Nv, V)
        voice = []
        for s in range(0, nv, CHUNK):
            idx = torch.arange(s, min(nv, s + CHUNK))
            spec = cached.voices.index_select(0, idx.to(cached.voices.device)).cpu()  # (b, 1, F, T)
            lens = cached.voice_frames.cpu()[idx]
            crops = torch.stack([_crop(spec, lens, offsets[idx, v], cfg.spec_frames)
                                 for v in range(V)], 1)                           # (b, V, 1, F, frames)
            out = vb(transfer(crops.flatten(0, 1), device).float()).float().cpu()  # (b*V, C, H, W)
            voice.append(out.unflatten(0, (len(idx), V)))
        face = []
        for s in range(0, cached.n_faces, CHUNK):
            idx = torch.arange(s, min(cached.n_faces, s + CHUNK))
            img = cached.faces.index_select(0, idx.to(cached.faces.device)).cpu()  # (b, 3, S, S) uint8
            both = torch.stack([img, img.flip(-1)], 1)                            # (b, 2, 3, S, S)
            out = fb(normalise_faces(transfer(both.flatten(0, 1), device))).float().cpu()
            face.append(out.unflatten(0, (len(idx), FACE_VIEWS)))
    finally:
        fb.train(modes[0]), vb.train(modes[1])
    return Maps(torch.cat(voice), torch.cat(face))


_TRAIN: dict[Path, Maps] = {}   # this process's training maps (a sweep worker trains many runs)


def training_maps(model: nn.Module, cached, cfg, device) -> Maps:
    """The training-split maps of ``model``'s backbones, computed once per key and read back
    (once per process: a sweep worker's later runs on the same backbones reuse them)."""
    path = maps_path(model, cached, cfg)
    if path is None:
        return compute_maps(model, cached, cfg, device)
    if path not in _TRAIN:
        with _locked(path):
            if not path.is_file():
                m = compute_maps(model, cached, cfg, device)
                save_checkpoint({"voice": m.voice, "face": m.face}, path)
        state = load_checkpoint(path)
        _TRAIN.clear()
        _TRAIN[path] = Maps(state["voice"], state["face"])
    return _TRAIN[path]


_EVAL: dict[str, tuple[Tensor, Tensor]] = {}   # this process's evaluation maps, by key


@torch.no_grad()
def evaluation_maps(model: nn.Module, cached, cfg, batch_size: int = CHUNK) -> tuple[Tensor, Tensor]:
    """Maps of every item of a split as evaluation sees it (voices centre-cropped, faces unflipped):
    voice (Nv, C, H, W), face (Nf, C, H, W) on the model's device.

    With the backbones frozen a run's validation and test embeddings are the generator on these
    (what :func:`dsanet.engine.embeddings.embed_split` computes through the backbones, once per
    backbones and split instead of at every evaluation); kept in memory for the process.
    """
    from ..data.batches import modality_batch

    key = maps_key(model, cached, cfg) + "-eval"
    device = next(model.parameters()).device
    if key not in _EVAL:
        out = []
        for m, net in (("voice", model.voice_backbone), ("face", model.face_backbone)):
            n = cached.n_voices if m == "voice" else cached.n_faces
            was = net.training
            net.eval()
            chunks = [net(modality_batch(cached, m, torch.arange(s, min(n, s + batch_size)), cfg,
                                         train=False, device=device)).float()
                      for s in range(0, n, batch_size)]
            net.train(was)
            out.append(torch.cat(chunks))
        _EVAL.clear()   # one split at a time is enough (validation, then test)
        _EVAL[key] = (out[0], out[1])
    return _EVAL[key]


def freeze_backbones(model: nn.Module) -> None:
    """Backbones out of training: no gradient, evaluation mode kept by :func:`set_train_mode`."""
    for b in (model.face_backbone, model.voice_backbone):
        b.requires_grad_(False)
        b.eval()


__all__ = ["FACE_VIEWS", "Maps", "compute_maps", "evaluation_maps", "freeze_backbones", "maps_key", "maps_path",
           "training_maps", "voice_view_offsets"]
