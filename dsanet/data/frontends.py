"""Front-ends: decode a clip to a log spectrogram and a face image to an RGB tensor (Sec. IV-A).

The paper feeds a 224 x 125 x 1 spectrogram and a 224 x 224 x 3 face. Sizes are ``Config``
fields (``spec_bins``, ``spec_frames``, ``face_size``, ``n_fft``, ``hop_length``) so that small
profiles run on a CPU. Conversions and errors follow the policy in ``docs/bad_input.md``.

Spectrogram layouts (``cfg.spec_layout``):

* ``"crop"`` (default): pre-emphasis 0.97, Hann-window |STFT|, dB (top 80 dB), per-utterance
  mean / std normalisation (std floored at ``STD_FLOOR`` so that silence gives zeros), the lowest
  ``spec_bins`` frequency rows (linear interpolation along frequency when the FFT has fewer),
  every frame. Training crops ``spec_frames`` frames at random, evaluation at the centre; clips
  shorter than that are *repeated* (wrapped) to length.
* ``"published"``: the authors' script - mean removed, pre-emphasis, |STFT|, dB relative to the
  clip's maximum (top 80 dB), min-max scaled to [-1, 1], then the flattened (bins x T) array
  re-wrapped row-major into ``spec_bins x spec_frames`` (``numpy.resize`` semantics, repeating
  from the start when too short). The min-max step of a silent clip returns zeros here (the
  published code divides by zero).
"""
from __future__ import annotations

import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from torchvision.transforms import v2

from .layout import DataError

PRE_EMPHASIS = 0.97
TOP_DB = 80.0
STD_FLOOR = 1e-3   # dB; per-utterance std floor (silence -> zeros, never NaN)
FACE_MEAN = (0.5, 0.5, 0.5)  # published normalisation
FACE_STD = (0.5, 0.5, 0.5)


# ----------------------------------------------------------------------------- audio

def check_wav_header(path) -> None:
    """Raise :class:`DataError` when a RIFF/WAVE file's data chunk is shorter than declared.

    libsndfile silently reads what is left of a truncated WAV; this catches it. Streams written
    with an unknown length (size 0 or 0xFFFFFFFF) and non-RIFF files are not checked.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)", "empty")
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while True:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                raise DataError(f"{path}: truncated WAV file (no 'data' chunk in {size} bytes)",
                                "truncated")
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - pos - 8
                if csize not in (0, 0xFFFFFFFF) and have < csize:
                    raise DataError(f"{path}: truncated WAV file (data chunk declares {csize} "
                                    f"bytes, {have} present)", "truncated")
                return
            pos += 8 + csize + (csize & 1)


def load_wav(path, sample_rate: int, counts: Counter | None = None) -> torch.Tensor:
    """(T,) float32 mono waveform at ``sample_rate``.

    Stereo is averaged to mono and another rate resampled (both counted in ``counts`` when
    given); corrupt, truncated, empty or non-finite audio raises :class:`DataError`.
    """
    path = Path(path)
    counts = counts if counts is not None else Counter()
    try:
        check_wav_header(path)
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found", "missing") from e
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot decode audio ({e})", "corrupt") from e
    if data.shape[0] == 0:
        raise DataError(f"{path}: empty audio (0 samples)", "empty")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: audio holds NaN or inf samples", "non_finite")
    wave = torch.from_numpy(data)
    if wave.shape[1] > 1:
        counts["stereo_to_mono"] += 1
    wave = wave.mean(dim=1)  # (T,)
    if sr != sample_rate:
        counts["resampled"] += 1
        wave = torchaudio.functional.resample(wave, sr, sample_rate)
    return wave.contiguous()


def wav_frames(path, sample_rate: int, hop_length: int, n_fft: int = 0) -> int:
    """STFT frames a clip will give (centred frames) without decoding it; DataError if bad."""
    path = Path(path)
    try:
        check_wav_header(path)
        info = sf.info(str(path))
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found", "missing") from e
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot decode audio ({e})", "corrupt") from e
    if info.frames <= 0:
        raise DataError(f"{path}: empty audio (0 samples)", "empty")
    n = -(-info.frames * sample_rate // info.samplerate)  # resample keeps ceil(T * new / old)
    return 1 + max(n, n_fft) // hop_length


def pre_emphasis(wave: torch.Tensor, coef: float = PRE_EMPHASIS) -> torch.Tensor:
    """y[t] = x[t] - coef * x[t-1], y[0] = x[0]; wave (..., T)."""
    return torch.cat([wave[..., :1], wave[..., 1:] - coef * wave[..., :-1]], dim=-1)


def crop_frames(spec: torch.Tensor, lengths: torch.Tensor, frames: int, train: bool,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-item time crops of a batch, vectorised: spec (B, 1, F, T) -> (B, 1, F, frames).

    ``lengths`` (B,) are the valid frames of each item. Training draws an offset uniformly in
    [0, length - frames]; evaluation takes the centre. Items shorter than ``frames`` are repeated
    (indices wrap modulo the valid length).
    """
    B, _, nf, _ = spec.shape
    lengths = lengths.to(spec.device).long().clamp_min(1)            # (B,)
    slack = (lengths - frames).clamp_min(0)                          # (B,)
    if train:
        gdev = generator.device if generator is not None else spec.device
        u = torch.rand(B, generator=generator, device=gdev).to(spec.device)
        offset = (u * (slack + 1)).long().clamp_max(slack)
    else:
        offset = slack // 2
    t = torch.arange(frames, device=spec.device)
    idx = (offset[:, None] + t[None, :]) % lengths[:, None]          # (B, frames)
    return spec.gather(-1, idx[:, None, None, :].expand(B, spec.shape[1], nf, frames))


class Spectrogram(nn.Module):
    """Waveform (T,) or (B, T) -> full-length spectrogram (..., 1, spec_bins, T_frames).

    With ``spec_layout="published"`` the output is already (..., 1, spec_bins, spec_frames).
    Magnitudes are floored at ``cfg.amin`` before the dB conversion (torchaudio's own floor is
    1e-10; the published script's 1e-5, which changes only very quiet clips). The published
    script's front-end is ``spec_layout="published"`` with 22,050 Hz, ``n_fft`` 2048 and hop 512
    (``config.published``): the image is then a re-wrap of the lowest
    ``ceil(spec_bins * spec_frames / T)`` of the 1025 frequency rows.
    """

    def __init__(self, cfg):
        super().__init__()
        self.layout = cfg.spec_layout
        if self.layout not in ("crop", "published"):
            raise ValueError(f"spec_layout must be 'crop' or 'published', got {cfg.spec_layout!r}")
        self.n_fft, self.bins, self.frames = cfg.n_fft, cfg.spec_bins, cfg.spec_frames
        self.stft = torchaudio.transforms.Spectrogram(
            n_fft=cfg.n_fft, hop_length=cfg.hop_length, window_fn=torch.hann_window, power=1.0)
        self.amin = float(getattr(cfg, "amin", 1e-10))   # amplitude floor (published 1e-5)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="magnitude", top_db=TOP_DB)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        single = wave.dim() == 1
        x = wave[None] if single else wave                           # (B, T)
        if x.shape[-1] < self.n_fft:
            x = F.pad(x, (0, self.n_fft - x.shape[-1]))
        if self.layout == "published":
            x = x - x.mean(dim=-1, keepdim=True)
        mag = self.stft(pre_emphasis(x))[:, None]                    # (B, 1, n_fft//2+1, T)
        db = self.to_db(mag.clamp_min(self.amin))  # (B, 1, F, T): 4-D so top_db acts per utterance
        out = self._published(db) if self.layout == "published" else self._crop_layout(db)
        return out[0] if single else out

    def _crop_layout(self, db: torch.Tensor) -> torch.Tensor:
        nf = db.shape[-2]
        if nf >= self.bins:
            db = db[..., : self.bins, :]
        else:
            db = F.interpolate(db, size=(self.bins, db.shape[-1]), mode="bilinear",
                               align_corners=True)
        mean = db.mean(dim=(-2, -1), keepdim=True)
        std = db.std(dim=(-2, -1), keepdim=True, correction=0).clamp_min(STD_FLOOR)
        return (db - mean) / std                                     # (B, 1, bins, T)

    def _published(self, db: torch.Tensor) -> torch.Tensor:
        B = db.shape[0]
        db = db - db.amax(dim=(-2, -1), keepdim=True)                # dB relative to the max
        lo = db.amin(dim=(-2, -1), keepdim=True)
        scaled = torch.where(lo < 0, 2 * (db - lo) / (-lo).clamp_min(1e-12) - 1,
                             torch.zeros_like(db))                   # [-1, 1]; silence -> 0
        flat = scaled.reshape(B, -1)                                 # row-major (F x T)
        n = self.bins * self.frames
        idx = torch.arange(n, device=flat.device) % flat.shape[-1]   # numpy.resize repetition
        return flat[:, idx].reshape(B, 1, self.bins, self.frames)

    def crop(self, spec: torch.Tensor, frames: int | None = None, train: bool = False,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Crop / repeat-pad a full spectrogram (1, F, T) or (B, 1, F, T) to ``frames`` frames."""
        frames = frames or self.frames
        single = spec.dim() == 3
        s = spec[None] if single else spec
        lengths = torch.full((s.shape[0],), s.shape[-1], dtype=torch.long)
        out = crop_frames(s, lengths, frames, train, generator)
        return out[0] if single else out


# ----------------------------------------------------------------------------- faces

def load_face(path, counts: Counter | None = None) -> torch.Tensor:
    """(3, H, W) uint8 RGB image as a viewer shows it; bad files raise DataError.

    The EXIF orientation is applied (counted ``exif_rotated``); other modes are converted to RGB
    (counted ``converted_<MODE>``), 16-bit and 32-bit integer / float images by their real range
    (:func:`_to_uint8`); images over PIL's pixel limit are refused as ``too_large``.
    """
    path = Path(path)
    counts = counts if counts is not None else Counter()
    if not path.is_file():
        raise DataError(f"{path}: file not found", "missing")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)", "empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if img.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None):
                    counts["exif_rotated"] += 1
                    img = ImageOps.exif_transpose(img)
                arr = _to_uint8(img, path, counts)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image too large to decode safely ({e})", "too_large") from e
    except UnidentifiedImageError as e:
        raise DataError(f"{path}: not a readable image ({e})", "corrupt") from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        reason = "truncated" if "truncated" in str(e) else "corrupt"
        raise DataError(f"{path}: {reason} image ({e})", reason) from e
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: empty image of shape {arr.shape}", "empty")
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


_EXIF_ORIENTATION = 0x0112
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_uint8(img: Image.Image, path: Path, counts: Counter) -> np.ndarray:
    """(H, W, 3) uint8 of an opened image.

    16-bit images ("I;16*") map 0..65535 to 0..255; 32-bit integer ("I") and float ("F") images
    keep 0..255 data as is, map 0..65535 integers like 16-bit ones and 0..1 floats to 0..255,
    and any other range min-max to 0..255. Non-finite float pixels raise DataError.
    """
    if img.mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    counts[f"converted_{img.mode}"] += 1
    if img.mode not in _WIDE_MODES:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    x = np.asarray(img).astype(np.float64)                           # (H, W)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: image holds NaN or inf pixels", "non_finite")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        top = 65535.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        top = 1.0
    elif lo >= 0 and hi <= 255:
        top = 255.0
    elif img.mode == "I" and lo >= 0 and hi <= 65535:
        top = 65535.0
    else:                                                            # min-max
        x, top = x - lo, max(hi - lo, 1e-12)
    gray = np.rint(np.clip(x * (255.0 / top), 0, 255)).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def resize_face(face: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3, H, W) uint8 -> (..., 3, size, size) uint8 (antialiased bilinear)."""
    return v2.functional.resize(face, [size, size], antialias=True)


def normalise_faces(faces: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, S, S) -> float32 with mean 0.5 / std 0.5 normalisation (published).

    (x / 255 - 0.5) / 0.5 written as 2x / 255 - 1, in place on the new float tensor.
    """
    return faces.float().mul_(2.0 / 255.0).sub_(1.0)


def face_transform(cfg, train: bool) -> v2.Compose:
    """Resize to ``face_size``, random horizontal flip in training, float, normalise (0.5, 0.5)."""
    steps = [v2.Resize([cfg.face_size, cfg.face_size], antialias=True)]
    if train:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(FACE_MEAN, FACE_STD)]
    return v2.Compose(steps)


__all__ = [
    "DataError", "Spectrogram", "check_wav_header", "crop_frames", "face_transform",
    "load_face", "load_wav", "normalise_faces", "pre_emphasis", "resize_face", "wav_frames",
]
