"""Shared fixtures: a tiny data tree in the benchmark / VoxCeleb1 layout, written with soundfile
and pillow (independent of the synthetic generator), the official ``vox1_meta.csv`` format
(:func:`write_official`) and :func:`real_layout`, which strips a generated benchmark down to what
the official VoxCeleb1 + VGGFace downloads give.

Identity i (0-based, in ``TINY_IDENTITIES`` order) speaks a pure tone of ``tone_hz(i)`` and has a
flat face colour ``face_rgb(i)``, so decoded items can be traced back to their identity by a
plain formula in the tests.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

SR = 16000
# Wen et al.'s split CSVs and samples of the published lists, shipped inside the package
SHARED_PROTOCOLS = Path(__file__).resolve().parents[1] / "dsanet" / "resources" / "protocols"

# voice id, face name, gender: 2 val (A, B), 6 test (C-E; 3 m, 3 f), 3 train
TINY_IDENTITIES = [
    ("id00001", "Adam_Ant", "m"), ("id00002", "Beth_Bo", "f"),
    ("id00003", "Carl_Cox", "m"), ("id00004", "Cora_Cy", "f"), ("id00005", "Dan_Do", "m"),
    ("id00006", "Dana_Di", "f"), ("id00007", "Eric_Ek", "m"), ("id00008", "Emma_Em", "f"),
    ("id00009", "Fred_Fo", "m"), ("id00010", "Gina_Gu", "f"), ("id00011", "Hugo_Hi", "m"),
]
CLIP_SECONDS = (0.30, 0.40, 0.50, 0.60)  # 2 sessions x 2 clips per identity
N_FACES = 3


def tone_hz(i: int) -> float:
    """On the 125 Hz grid of a 128-point FFT at 16 kHz: bin 2 + i."""
    return 125.0 * (2 + i)


def face_rgb(i: int) -> tuple[int, int, int]:
    return (20 * i + 10, 200 - 15 * i, 40 + 10 * i)


@dataclass
class TinyTree:
    root: Path
    meta: Path
    identities: list  # (voice_id, face_name, gender)

    @property
    def voices(self) -> Path:
        return self.root / "voices"

    @property
    def faces(self) -> Path:
        return self.root / "faces"


def write_wav(path: Path, wave: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, subtype="PCM_16")


def write_face(path: Path, rgb, size=(20, 24), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.empty((size[1], size[0], 3), np.uint8)
    arr[:] = rgb
    Image.fromarray(arr).convert(mode).save(path, quality=95)


def write_meta(path: Path, rows, sets=None) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"])
        for vid, name, gender in rows:
            w.writerow([vid, name, gender, "Nowhere", (sets or {}).get(vid, "dev")])


def write_official(path: Path, rows, sets=None, nationality=None) -> Path:
    """The official vox1_meta.csv format: tab-separated, spaced header, padded values.

    ``rows``: (voice id, face name, gender); ``sets`` / ``nationality``: voice id -> value
    (default "dev" / "Nowhere")."""
    lines = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    lines += [f"{vid}\t{name} \t{g}\t{(nationality or {}).get(vid, 'Nowhere')}\t"
              f"{(sets or {}).get(vid, 'dev')} " for vid, name, g in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# what only the embedded benchmark's generator writes (dsanet.data.synthetic): per-sample ground
# truth, its knobs and lines, and its own meta.csv (replaced by the official vox1_meta.csv)
SYNTHETIC_ONLY = ("samples.csv", "traits.csv", "calibration.json", "meta.csv",
                  ".dsanet-generating")


def real_layout(root: Path) -> Path:
    """Turn a generated benchmark tree at ``root`` into what the official downloads give, in place:
    voices/ and faces/ kept, the generator's own files (``SYNTHETIC_ONLY``) removed, the meta
    written as the official tab-separated ``vox1_meta.csv``. Returns the meta's path."""
    import pandas as pd

    meta = pd.read_csv(root / "meta.csv", dtype=str)
    for name in SYNTHETIC_ONLY:
        (root / name).unlink(missing_ok=True)
    rows = list(zip(meta.VoxCeleb1_ID, meta.VGGFace1_ID, meta.Gender))
    ids = meta.VoxCeleb1_ID
    return write_official(root / "vox1_meta.csv", rows, sets=dict(zip(ids, meta.Set)),
                          nationality=dict(zip(ids, meta.Nationality)))


def write_tree(root: Path, identities=TINY_IDENTITIES) -> TinyTree:
    """Voices: voices/<id>/s<j//2>/<j%2>.wav; faces: odd identities in session folders."""
    for i, (vid, name, _) in enumerate(identities):
        for j, sec in enumerate(CLIP_SECONDS):
            t = np.arange(int(sec * SR)) / SR
            wave = 0.5 * np.sin(2 * np.pi * tone_hz(i) * t)
            write_wav(root / "voices" / vid / f"s{j // 2}" / f"{j % 2:05d}.wav", wave)
        for j in range(N_FACES):
            rel = f"sess{j % 2}/{j:08d}.jpg" if i % 2 else f"{j:08d}.jpg"
            write_face(root / "faces" / name / rel, face_rgb(i))
    write_meta(root / "meta.csv", identities)
    return TinyTree(root, root / "meta.csv", list(identities))


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory) -> TinyTree:
    """A read-only tiny tree shared by the session (write caches to a tmp_path, not into it)."""
    return write_tree(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def make_tree(tmp_path):
    """Factory: a fresh tiny tree under tmp_path that a test may damage."""
    def make(identities=TINY_IDENTITIES) -> TinyTree:
        return write_tree(tmp_path / "data", identities)
    return make


@pytest.fixture
def smoke_cfg(tmp_path):
    from dsanet.config import smoke
    return smoke(cache_dir=str(tmp_path / "cache"), n_fft=128, spec_bins=32, spec_frames=32,
                 face_size=16)


@pytest.fixture(scope="session")
def shared_protocols() -> Path:
    if not SHARED_PROTOCOLS.is_dir():
        pytest.skip(f"shared protocol samples not found at {SHARED_PROTOCOLS}")
    return SHARED_PROTOCOLS
