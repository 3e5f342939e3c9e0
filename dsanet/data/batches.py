"""Vectorised batch gathering from a :class:`~dsanet.data.cache.CachedSplit`.

Items are gathered with ``index_select`` (much faster than ``tensor[idx]`` on the memory-mapped
CPU tensors); time crops (random in training, centre in
evaluation), face flips and candidate shuffles (:func:`dsanet.data.sampling.shuffle_candidates`,
re-exported here) are drawn for the whole batch at once. No
per-sample Python loop and no host round trip: everything is gathered on the cached tensors'
device (random numbers are drawn on the generator's device and moved there). ``device``: where
the batch goes; a batch gathered on the host crosses in the cache's compact dtype (uint8 faces,
float16 spectrograms, through pinned buffers: :mod:`dsanet.data.transfer`) and is converted to
float32 there.
"""
from __future__ import annotations

import torch

from .frontends import crop_frames, normalise_faces
from .sampling import _uniform, shuffle_candidates
from .transfer import transfer

DIRECTIONS = ("vf", "fv")


def _items(x, device) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.long).to(device)


def voice_batch(cached, items, cfg, train: bool, generator: torch.Generator | None = None,
                frames: int | None = None, device=None) -> torch.Tensor:
    """Voices ``items`` (M,) -> (M, 1, spec_bins, frames) float32 spectrogram crops on ``device``
    (None: the cache's)."""
    idx = _items(items, cached.voices.device)                     # (M,)
    spec = cached.voices.index_select(0, idx)                     # (M, 1, F, Tmax) float16
    lengths = cached.voice_frames.to(idx.device).index_select(0, idx)  # (M,)
    crops = crop_frames(spec, lengths, frames or cfg.spec_frames, train, generator)  # float16
    return transfer(crops, device).float()


def face_batch(cached, items, cfg, train: bool, generator: torch.Generator | None = None,
               device=None) -> torch.Tensor:
    """Faces ``items`` (M,) -> (M, 3, S, S) float32, normalised on ``device`` (None: the
    cache's); flipped per item in training."""
    idx = _items(items, cached.faces.device)                      # (M,)
    faces = cached.faces.index_select(0, idx)                     # (M, 3, S, S) uint8
    if train:
        flip = _uniform(idx.shape[0], generator, faces.device) < 0.5  # (M,)
        faces = torch.where(flip[:, None, None, None], faces.flip(-1), faces)
    return normalise_faces(transfer(faces, device))               # uint8 crosses, float32 there


def modality_batch(cached, modality: str, items, cfg, train: bool,
                   generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``voice_batch`` or ``face_batch`` by name."""
    if modality == "voice":
        return voice_batch(cached, items, cfg, train, generator, device=device)
    if modality == "face":
        return face_batch(cached, items, cfg, train, generator, device=device)
    raise ValueError(f"modality must be 'voice' or 'face', got {modality!r}")


def matching_batch(cached, tuples, direction: str, cfg, train: bool,
                   generator: torch.Generator | None = None, device=None):
    """Tuples (B, k+1) of item indices (anchor, true, negatives...) -> (anchor, cands, label).

    ``direction`` "vf": anchor voices (B, 1, F, T) and candidate faces (B, k, 3, S, S); "fv" the
    other way round. Candidates are shuffled; ``label`` (B,) is the true candidate's position.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    a_mod, c_mod = ("voice", "face") if direction == "vf" else ("face", "voice")
    device = cached.voices.device
    t = _items(tuples, device)                                     # (B, k+1)
    B, k = t.shape[0], t.shape[1] - 1
    cand_items, label = shuffle_candidates(t[:, 1:], generator)    # (B, k), (B,)
    anchor = modality_batch(cached, a_mod, t[:, 0], cfg, train, generator, device)
    cands = modality_batch(cached, c_mod, cand_items.reshape(-1), cfg, train, generator, device)
    return anchor, cands.reshape(B, k, *cands.shape[1:]), transfer(label, device)


def pair_batch(cached, pairs, cfg, train: bool, generator: torch.Generator | None = None,
               device=None):
    """Pairs (B, 2) of (voice item, face item) -> (voice (B,1,F,T), face (B,3,S,S), identity (B,)).

    ``identity`` is the voice's identity int (the retrieval pairs share it).
    """
    p = _items(pairs, cached.voices.device)                        # (B, 2)
    voice = voice_batch(cached, p[:, 0], cfg, train, generator, device=device)
    face = face_batch(cached, p[:, 1], cfg, train, generator, device=device)
    identity = cached.voice_ids.to(p.device)[p[:, 0]]
    return voice, face, transfer(identity, device)


__all__ = ["face_batch", "matching_batch", "modality_batch", "pair_batch", "shuffle_candidates",
           "voice_batch"]
