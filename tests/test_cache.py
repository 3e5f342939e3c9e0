"""Decoded-input cache and vectorised batch gathering."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from dsanet.data import cache as cache_mod
from dsanet.data.batches import face_batch, matching_batch, pair_batch, voice_batch
from dsanet.data.cache import CachedSplit, build_cache
from dsanet.data.frontends import Spectrogram, load_wav
from dsanet.data.layout import load_index
from dsanet.data.protocols import matching_tuples
from conftest import SR, face_rgb, write_wav


@pytest.fixture
def test_cache(tiny_tree, smoke_cfg):
    return build_cache(load_index(tiny_tree.root), smoke_cfg, "test")


def test_shapes_dtypes_and_valid_lengths(test_cache, smoke_cfg):
    c = test_cache
    # 6 test identities x 4 clips of 0.3 .. 0.6 s: 1 + n // 160 frames; Tmax = the longest (61)
    assert c.voices.shape == (24, 1, 32, 61) and c.voices.dtype == torch.float16
    assert c.voice_frames.tolist() == [31, 41, 51, 61] * 6
    assert c.faces.shape == (18, 3, 16, 16) and c.faces.dtype == torch.uint8
    assert c.voice_ids.tolist() == [i for i in range(2, 8) for _ in range(4)]
    assert c.face_ids.tolist() == [i for i in range(2, 8) for _ in range(3)]
    assert c.voice_gender.tolist() == [i % 2 for i in range(2, 8) for _ in range(4)]
    assert os.path.getsize(c.path / "voices.f16") == 24 * 32 * 61 * 2
    assert c.report["voices"]["kept"] == 24 and c.report["faces"]["skipped"] == {}


def test_labels_trace_back_to_the_media(test_cache):
    c = test_cache
    # identity i speaks on bin 2 + i (conftest.tone_hz) and has colour face_rgb(i)
    mask = torch.arange(61) < c.voice_frames[:, None]                       # (Nv, T)
    mean_spec = (c.voices.float()[:, 0] * mask[:, None]).sum(-1)            # (Nv, F)
    assert (mean_spec.argmax(-1) == 2 + c.voice_ids).all()
    colours = c.faces.float().mean(dim=(-2, -1))                            # (Nf, 3)
    want = torch.tensor([face_rgb(i) for i in c.face_ids.tolist()], dtype=torch.float32)
    assert (colours - want).abs().max() < 4                                  # JPEG tolerance


def test_cached_voice_equals_the_front_end(tiny_tree, smoke_cfg):
    cfg = smoke_cfg.replace(spec_frames=16)                                 # Tmax cap 48 < 61
    index = load_index(tiny_tree.root)
    c = build_cache(index, cfg, "test")
    assert c.voices.shape[-1] == 48 and c.voice_frames.tolist() == [31, 41, 48, 48] * 6
    full = Spectrogram(cfg)(load_wav(index.voice_path(c.voice_table.path[3]), SR))  # 61 frames
    torch.testing.assert_close(c.voices[3].float(), full[..., 6:54].half().float())   # centre


def test_reused_until_inputs_or_settings_change(tiny_tree, smoke_cfg, tmp_path):
    index = load_index(tiny_tree.root)
    first = build_cache(index, smoke_cfg, "val")
    stamp = (first.path / "manifest.json").stat().st_mtime_ns
    again = build_cache(index, smoke_cfg, "val")
    assert again.path == first.path
    assert (again.path / "manifest.json").stat().st_mtime_ns == stamp      # not rewritten
    assert build_cache(index, smoke_cfg.replace(n_fft=64), "val").path != first.path
    assert build_cache(index, smoke_cfg.replace(face_size=8), "val").path != first.path


def test_changed_file_builds_a_new_cache(make_tree, smoke_cfg):
    tree = make_tree()
    index = load_index(tree.root)
    first = build_cache(index, smoke_cfg, "val")
    write_wav(tree.voices / "id00001" / "s0" / "00000.wav", np.zeros(9000))  # new content
    second = build_cache(load_index(tree.root), smoke_cfg, "val")
    assert second.path != first.path
    assert second.voice_frames[0] == 1 + 9000 // 160 and second.voices[0].abs().max() == 0


def test_interrupted_build_leaves_no_cache(tiny_tree, smoke_cfg, monkeypatch):
    index = load_index(tiny_tree.root)
    real = cache_mod._fill

    def crash(path, *a, **k):
        if path.name == "faces.u8":
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(cache_mod, "_fill", crash)
    with pytest.raises(KeyboardInterrupt):
        build_cache(index, smoke_cfg, "train")
    root = cache_mod.cache_root(index, smoke_cfg)
    assert list(root.iterdir()) == []                                      # nothing half-written
    monkeypatch.setattr(cache_mod, "_fill", real)
    assert build_cache(index, smoke_cfg, "train").n_faces == 9


def test_default_cache_dir_is_under_the_root(make_tree, smoke_cfg):
    tree = make_tree()
    c = build_cache(load_index(tree.root), smoke_cfg.replace(cache_dir=None), "val")
    assert c.path.parent == tree.root / ".cache"


# ----------------------------------------------------------------------------- batches

def toy_cached(index, nv=6, nf=4, tmax=10, s=4) -> CachedSplit:
    """Hand-made split: voice v, frame t holds 100 v + t; face f is a left/right ramp + f."""
    voices = (100 * torch.arange(nv)[:, None] + torch.arange(tmax)).float()
    voices = voices[:, None, None, :].expand(nv, 1, 2, tmax).half()
    ramp = torch.arange(s, dtype=torch.uint8) * 10
    faces = (ramp + 50 * torch.arange(nf, dtype=torch.uint8)[:, None]).expand(s, 3, nf, s)
    faces = faces.permute(2, 1, 0, 3).contiguous()                         # (nf, 3, s, s)
    vid = torch.arange(nv) % 3
    fid = torch.arange(nf) % 3
    table = lambda ids: pd.DataFrame({"path": [f"x{i}" for i in range(len(ids))],
                                      "identity": ids.numpy(), "session": ""})
    return CachedSplit("test", index, voices, torch.tensor([10, 3, 10, 7, 10, 10]), faces,
                       vid, fid, vid % 2, fid % 2, table(vid), table(fid))


def test_voice_batch_crops_per_item(tiny_tree, smoke_cfg):
    c = toy_cached(load_index(tiny_tree.root))
    cfg = smoke_cfg.replace(spec_frames=4)
    got = voice_batch(c, [0, 1, 3], cfg, train=False)
    assert got.shape == (3, 1, 2, 4) and got.dtype == torch.float32
    assert got[:, 0, 0].tolist() == [[3, 4, 5, 6], [100, 101, 102, 100], [301, 302, 303, 304]]
    rnd = voice_batch(c, [0] * 500, cfg, True, torch.Generator().manual_seed(1))[:, 0, 0]
    assert set(rnd[:, 0].tolist()) == set(range(7))                        # offsets 0..6
    assert (rnd == rnd[:, :1] + torch.arange(4)).all()


def test_face_batch_flips_per_item(tiny_tree, smoke_cfg):
    c = toy_cached(load_index(tiny_tree.root))
    ev = face_batch(c, [2, 2], smoke_cfg, train=False)
    torch.testing.assert_close(ev, c.faces[[2, 2]].float() / 127.5 - 1)
    tr = face_batch(c, [2] * 400, smoke_cfg, True, torch.Generator().manual_seed(0))
    flipped = tr[:, 0, 0, 0] > tr[:, 0, 0, -1]
    assert 150 < flipped.sum() < 250                                       # per item, p = 0.5
    torch.testing.assert_close(tr[flipped], ev[:1].flip(-1).expand(int(flipped.sum()), -1, -1, -1))


def test_matching_batch_labels_point_at_the_true_candidate(test_cache, smoke_cfg):
    c = test_cache
    g = torch.Generator().manual_seed(0)
    for direction in ("vf", "fv"):
        tuples = matching_tuples(c, None, 3, direction, False, 3000, seed=1)
        anchor, cands, label = matching_batch(c, tuples, direction, smoke_cfg, True, g)
        B = len(tuples)
        if direction == "vf":
            assert anchor.shape == (B, 1, 32, 32) and cands.shape == (B, 3, 3, 16, 16)
            # identity from the media: colour of the chosen face, peak bin of the voice
            red = (cands[torch.arange(B), label, 0].mean((-2, -1)) + 1) * 127.5
            cand_id = torch.round((red - 10) / 20).long()
            anchor_id = anchor[:, 0].mean(-1).argmax(-1) - 2
        else:
            assert anchor.shape == (B, 3, 16, 16) and cands.shape == (B, 3, 1, 32, 32)
            anchor_id = torch.round(((anchor[:, 0].mean((-2, -1)) + 1) * 127.5 - 10) / 20).long()
            cand_id = cands[torch.arange(B), label, 0].mean(-1).argmax(-1) - 2
        assert (cand_id == anchor_id).all()
        counts = torch.bincount(label, minlength=3).float()
        assert ((counts - B / 3).abs() < 5 * (B / 3) ** 0.5).all()         # uniform label


def test_pair_batch(test_cache, smoke_cfg):
    c = test_cache
    pairs = np.array([[0, 0], [23, 17], [5, 4]])
    voice, face, identity = pair_batch(c, pairs, smoke_cfg, train=False)
    assert voice.shape == (3, 1, 32, 32) and face.shape == (3, 3, 16, 16)
    assert identity.tolist() == [2, 7, 3]
