"""Shared fixtures: a tiny data tree in the benchmark / VoxCeleb1 layout, written with soundfile
and pillow (independent of the synthetic generator).

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
