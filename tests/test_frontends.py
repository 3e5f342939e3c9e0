"""Front-ends: waveform loading, spectrogram layouts, time crops and faces (Sec. IV-A)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from dsanet.config import smoke
from dsanet.data.frontends import (
    Spectrogram, crop_frames, face_transform, load_face, load_wav, normalise_faces, pre_emphasis,
    wav_frames,
)
from conftest import SR, write_face, write_wav

CFG = smoke(n_fft=128, hop_length=160, spec_bins=32, spec_frames=32, face_size=16)


def naive_db(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Plain numpy: pre-emphasis, centred reflect-padded periodic-Hann |rfft|, dB, top 80 dB."""
    y = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    yp = np.pad(y, n_fft // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = 1 + len(y) // hop
    mag = np.stack([np.abs(np.fft.rfft(yp[t * hop: t * hop + n_fft] * win))
                    for t in range(frames)], axis=1)          # (F, T)
    db = 20 * np.log10(np.maximum(mag, 1e-10))
    return np.maximum(db, db.max() - 80)


def tone(hz, seconds=0.5, amp=0.5, sr=SR):
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_load_wav_matches_int16_samples(tmp_path):
    x = (np.arange(-800, 800, 7) * 13).astype(np.int16)
    write_wav(tmp_path / "a.wav", x)
    got = load_wav(tmp_path / "a.wav", SR)
    assert got.dtype == torch.float32 and got.shape == (len(x),)
    np.testing.assert_allclose(got.numpy(), x / 32768.0, atol=1e-7)


def test_stereo_is_averaged_and_counted(tmp_path):
    left, right = tone(500), tone(1500, amp=0.25)
    write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1))
    counts = Counter()
    got = load_wav(tmp_path / "s.wav", SR, counts)
    q = lambda v: np.round(v * 32767) / 32768  # int16 quantisation as written by soundfile
    np.testing.assert_allclose(got.numpy(), (q(left) + q(right)) / 2, atol=2e-4)
    assert counts == {"stereo_to_mono": 1}


def test_other_rate_is_resampled_and_counted(tmp_path):
    write_wav(tmp_path / "r.wav", tone(1000, 0.5, sr=8000), sr=8000)
    counts = Counter()
    got = load_wav(tmp_path / "r.wav", SR, counts).numpy()
    assert counts == {"resampled": 1} and len(got) == 8000  # 0.5 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(got))
    assert np.argmax(spectrum) * SR / len(got) == pytest.approx(1000, abs=4)
    assert wav_frames(tmp_path / "r.wav", SR, 160) == 1 + 8000 // 160


def test_pre_emphasis_known_answer():
    x = torch.tensor([[1.0, 1.0, 2.0, 0.0]])
    torch.testing.assert_close(pre_emphasis(x), torch.tensor([[1.0, 0.03, 1.03, -1.94]]))


def test_crop_layout_matches_naive_numpy():
    x = tone(700) + 0.1 * tone(2300)
    db = naive_db(x.astype(np.float64), 128, 160)[:32]
    want = (db - db.mean()) / db.std()
    got = Spectrogram(CFG)(torch.from_numpy(x))
    assert got.shape == (1, 32, 1 + len(x) // 160)
    np.testing.assert_allclose(got[0].numpy(), want, atol=2e-3)


def test_tone_peaks_at_its_bin():
    spec = Spectrogram(CFG)(torch.from_numpy(tone(125.0 * 9)))   # bin 9 of a 128-point FFT
    assert spec[0].mean(dim=-1).argmax().item() == 9


def test_batch_equals_single_items():
    # top_db and normalisation are per utterance: a loud and a quiet clip do not interact
    a, b = tone(600, amp=0.9), tone(1700, amp=0.001)
    s = Spectrogram(CFG)
    both = s(torch.from_numpy(np.stack([a, b])))
    torch.testing.assert_close(both[0], s(torch.from_numpy(a)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(both[1], s(torch.from_numpy(b)), atol=1e-4, rtol=1e-4)


def test_fewer_fft_bins_than_spec_bins_are_interpolated():
    cfg = CFG.replace(n_fft=32)                              # 17 bins -> 32 rows
    x = tone(1000)
    got = Spectrogram(cfg)(torch.from_numpy(x))[0].numpy()
    db = naive_db(x.astype(np.float64), 32, 160)            # (17, T)
    pos = np.linspace(0, 16, 32)                             # align_corners grid
    interp = np.stack([np.interp(pos, np.arange(17), db[:, t]) for t in range(db.shape[1])], 1)
    np.testing.assert_allclose(got, (interp - interp.mean()) / interp.std(), atol=2e-3)


@pytest.mark.parametrize("seconds", [0.5, 0.05])              # long, and short (repeats)
def test_published_layout_is_numpy_resize(seconds):
    cfg = CFG.replace(spec_layout="published")
    x = tone(900, seconds) + 0.01
    xm = x.astype(np.float64) - x.mean()
    db = naive_db(xm, 128, 160)                                # full (65, T)
    db = db - db.max()
    scaled = 2 * (db - db.min()) / (db.max() - db.min()) - 1
    want = np.resize(scaled, (32, 32))                         # row-major re-wrap, repeats
    got = Spectrogram(cfg)(torch.from_numpy(x))
    assert got.shape == (1, 32, 32)
    np.testing.assert_allclose(got[0].numpy(), want, atol=2e-3)


def test_silent_clip_is_finite_in_both_layouts():
    for layout in ("crop", "published"):
        spec = Spectrogram(CFG.replace(spec_layout=layout))(torch.zeros(4000))
        assert torch.isfinite(spec).all() and (spec == 0).all()


def test_crop_frames_centre_and_repeat():
    T = 10
    spec = torch.arange(T, dtype=torch.float32).expand(2, 1, 3, T).clone()
    lengths = torch.tensor([10, 3])
    got = crop_frames(spec, lengths, 7, train=False)
    assert got.shape == (2, 1, 3, 7)
    assert got[0, 0, 0].tolist() == [1, 2, 3, 4, 5, 6, 7]          # offset (10 - 7) // 2
    assert got[1, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]          # wraps within 3 frames


def test_crop_frames_random_offsets_cover_the_range():
    T, frames, B = 12, 5, 4000
    spec = torch.arange(T, dtype=torch.float32).expand(B, 1, 1, T).clone()
    got = crop_frames(spec, torch.full((B,), T), frames, True, torch.Generator().manual_seed(0))
    start = got[:, 0, 0, 0].long()
    assert (got[:, 0, 0] == start[:, None] + torch.arange(frames)).all()  # contiguous crops
    counts = torch.bincount(start, minlength=T - frames + 1)
    assert len(counts) == T - frames + 1                               # offsets 0..7
    expected = B / (T - frames + 1)
    assert ((counts - expected).abs() < 5 * expected ** 0.5).all()


def test_spectrogram_crop_method_eval_is_centre():
    s = Spectrogram(CFG)
    spec = s(torch.from_numpy(tone(500, 0.6)))                       # (1, 32, 61)
    got = s.crop(spec, 32, train=False)
    torch.testing.assert_close(got, spec[..., 14:46])


@pytest.mark.parametrize("mode, ext", [("L", "jpg"), ("CMYK", "jpg"), ("RGBA", "png"),
                                       ("P", "png")])
def test_face_modes_are_converted_and_counted(tmp_path, mode, ext):
    write_face(tmp_path / f"f.{ext}", (200, 30, 90), mode=mode)
    counts = Counter()
    face = load_face(tmp_path / f"f.{ext}", counts)
    assert face.shape == (3, 24, 20) and face.dtype == torch.uint8
    assert counts == {f"converted_{mode}": 1}
    want = np.asarray(Image.open(tmp_path / f"f.{ext}").convert("RGB")).transpose(2, 0, 1)
    assert (face.numpy() == want).all()


def test_face_transform_train_and_eval():
    img = torch.zeros(3, 8, 8, dtype=torch.uint8)
    img[:, :, :4] = 255                                             # left half white
    ev = face_transform(CFG, train=False)(img)
    assert ev.shape == (3, 16, 16) and ev.dtype == torch.float32
    assert ev[:, :, 0].eq(1).all() and ev[:, :, -1].eq(-1).all()     # (x/255 - .5) / .5
    torch.manual_seed(0)
    flipped = sum(face_transform(CFG, train=True)(img)[0, 0, 0].item() < 0 for _ in range(200))
    assert 60 < flipped < 140                                       # p = 0.5 flip
    torch.testing.assert_close(normalise_faces(img), img.float() / 127.5 - 1)
