"""Decoded-input cache: every clip and face of a split decoded once into memory-mapped arrays.

``build_cache(index, cfg, split)`` decodes each voice to its full-length spectrogram (the
:class:`~dsanet.data.frontends.Spectrogram` of ``cfg``), centre-cropped or zero-padded to a
fixed ``Tmax`` (the longest clip of the split, capped at ``MAX_CROPS * spec_frames``; the valid
length is kept in ``voice_frames``) and stored as float16, and each face resized to
``face_size`` x ``face_size`` and stored as uint8.

The cache lives in ``cfg.cache_dir`` (default ``<data root>/.cache``) in a folder named after a
hash of the split's file list (relative path, size, mtime), the roots and the front-end
settings, so any change of inputs or settings builds a new one. A cache is written into a
temporary folder and renamed into place only when complete, so a partial cache is never read.
Free space is checked before a build and the arrays are preallocated, so a full disk fails with
:class:`CacheSpaceError` ("no space left on ... for the cache at ... (needs N MB)") and the
temporary folder is removed; temporary folders left by killed builds (their owner process is
gone) are removed by the next build in the same cache root.

Bad files are skipped (policy: ``docs/bad_input.md``), counted by reason in
``CachedSplit.report`` and listed there; labels always come from the current index, never from
the cache, so a skip can never shift a label.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from .cache_files import (SPACE_MARGIN, CacheSpaceError, preallocate, remove_stale_temporaries,
                          space_error, write_owner)
from .frontends import Spectrogram, load_face, load_wav, resize_face, wav_frames
from .layout import DataError, DataIndex

CACHE_VERSION = 1
MAX_CROPS = 3          # Tmax <= MAX_CROPS * spec_frames
MAX_LISTED_BAD = 200   # bad files listed by name in the report (all are counted)
log = logging.getLogger(__name__)


@dataclass
class CachedSplit:
    """One split's decoded items; tensors are memory-mapped (CPU) unless moved with ``to``.

    voices (Nv, 1, F, Tmax) float16, voice_frames (Nv,) long valid lengths, faces (Nf, 3, S, S)
    uint8; voice_ids / face_ids (identity ints of ``index``), voice_gender / face_gender (0 m,
    1 f, -1 unknown); voice_table / face_table: path, identity, session of each kept item.
    """

    split: str
    index: DataIndex
    voices: torch.Tensor
    voice_frames: torch.Tensor
    faces: torch.Tensor
    voice_ids: torch.Tensor
    face_ids: torch.Tensor
    voice_gender: torch.Tensor
    face_gender: torch.Tensor
    voice_table: pd.DataFrame
    face_table: pd.DataFrame
    report: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_voices(self) -> int:
        return self.voices.shape[0]

    @property
    def n_faces(self) -> int:
        return self.faces.shape[0]

    @property
    def n_identities(self) -> int:
        return len(self.index.identities)

    @property
    def identity_gender(self) -> torch.Tensor:
        """(n_identities,) long gender code of every identity of the index."""
        return torch.from_numpy(self.index.identity_gender)

    def to(self, device) -> "CachedSplit":
        """A copy with every tensor on ``device`` (reads the whole split into memory)."""
        names = ("voices", "voice_frames", "faces", "voice_ids", "face_ids", "voice_gender",
                 "face_gender")
        return dataclasses.replace(self, **{n: getattr(self, n).to(device) for n in names})


# ----------------------------------------------------------------------------- key

def _frontend_settings(cfg) -> dict:
    names = ("sample_rate", "n_fft", "hop_length", "spec_bins", "spec_frames", "spec_layout",
             "face_size")
    return {n: getattr(cfg, n) for n in names}


def _stat(path: Path) -> list:
    try:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [-1, -1]


def cache_key(index: DataIndex, cfg, split: str) -> str:
    """sha256 over the split's files (path, size, mtime), the roots and the front-end settings."""
    voices = index.split_items(split, "voice").path
    faces = index.split_items(split, "face").path
    payload = {
        "version": CACHE_VERSION, "split": split, "frontend": _frontend_settings(cfg),
        "voice_root": str(index.voice_root.resolve()), "face_root": str(index.face_root.resolve()),
        "voices": [[p] + _stat(index.voice_path(p)) for p in voices],
        "faces": [[p] + _stat(index.face_path(p)) for p in faces],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_root(index: DataIndex, cfg) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else index.root / ".cache"


# ----------------------------------------------------------------------------- decoding

class _Decode(Dataset):
    """Item i -> (i, array or None, valid frames, conversion counts, error or None)."""

    def __init__(self, paths: list[Path], kind: str, cfg, tmax: int = 0):
        self.paths, self.kind, self.cfg, self.tmax = paths, kind, cfg, tmax
        self.spec = Spectrogram(cfg) if kind == "voice" else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        counts: Counter = Counter()
        try:
            if self.kind == "voice":
                arr, n = self._voice(self.paths[i], counts)
            else:
                arr, n = resize_face(load_face(self.paths[i], counts), self.cfg.face_size), 0
                arr = arr.numpy()
        except DataError as e:
            return i, None, 0, dict(counts), (e.reason, str(e))
        return i, arr, n, dict(counts), None

    def _voice(self, path: Path, counts: Counter):
        wave = load_wav(path, self.cfg.sample_rate, counts)      # (T,)
        if wave.shape[0] < self.cfg.n_fft:
            counts["padded_short"] += 1
        with torch.no_grad():
            spec = self.spec(wave)                               # (1, F, T)
        t = spec.shape[-1]
        if t > self.tmax:
            start = (t - self.tmax) // 2
            spec = spec[..., start:start + self.tmax]
        if not torch.isfinite(spec).all():
            raise DataError(f"{path}: spectrogram is not finite", "non_finite")
        out = np.zeros((1, spec.shape[-2], self.tmax), dtype=np.float16)
        out[..., : spec.shape[-1]] = spec.numpy()
        return out, min(t, self.tmax)


def _voice_tmax(paths: list[Path], cfg, bad: dict) -> int:
    """Longest clip of the split in frames, capped; unreadable headers go into ``bad``."""
    if cfg.spec_layout == "published":
        return cfg.spec_frames
    longest = 1
    for i, p in enumerate(paths):
        try:
            longest = max(longest, wav_frames(p, cfg.sample_rate, cfg.hop_length, cfg.n_fft))
        except DataError as e:
            bad[i] = (e.reason, str(e))
    return min(longest, MAX_CROPS * cfg.spec_frames)


def _as_is(item):
    return item


def _fill(path: Path, shape: tuple, dtype, dataset: _Decode, skip: dict, cfg, progress: bool,
          desc: str) -> tuple[list[int], list[int], dict, Counter]:
    """Decode ``dataset`` into the raw file ``path``; returns kept items, frames, bad, counts."""
    kept, frames, bad, counts = [], [], dict(skip), Counter()
    todo = [i for i in range(len(dataset)) if i not in skip]
    loader = DataLoader(torch.utils.data.Subset(dataset, todo), batch_size=None,
                        num_workers=cfg.num_workers, collate_fn=_as_is)
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, desc=desc, total=len(todo))
    shape_all = (max(len(todo), 1),) + shape
    preallocate(path, int(np.prod(shape_all)) * np.dtype(dtype).itemsize)
    mm = np.memmap(path, dtype=dtype, mode="r+", shape=shape_all)
    for i, arr, n, c, err in loader:
        counts.update(c)
        if err is not None:
            bad[i] = err
            continue
        mm[len(kept)] = arr
        kept.append(i)
        frames.append(n)
    mm.flush()
    del mm
    os.truncate(path, len(kept) * int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return kept, frames, bad, counts


def _modality_report(listed: int, kept: int, bad: dict, counts: Counter, paths) -> dict:
    reasons = Counter(reason for reason, _ in bad.values())
    listed_bad = [{"path": str(paths[i]), "reason": r, "error": m}
                  for i, (r, m) in sorted(bad.items())[:MAX_LISTED_BAD]]
    return {"listed": listed, "kept": kept, "skipped": dict(reasons),
            "converted": dict(counts), "bad_files": listed_bad}


def _orphans(index: DataIndex, split: str, kept_ids: pd.Series) -> int:
    """Identities of the split left with no kept item of one modality."""
    ids = index.identities.index[index.identities.split == split]
    return int((~ids.isin(kept_ids.unique())).sum())


def _write(index: DataIndex, cfg, split: str, final: Path, progress: bool) -> None:
    vt, ft = index.split_items(split, "voice"), index.split_items(split, "face")
    vpaths = [index.voice_path(p) for p in vt.path]
    fpaths = [index.face_path(p) for p in ft.path]
    final.parent.mkdir(parents=True, exist_ok=True)
    if remove_stale_temporaries(final.parent):
        log.info("%s: removed temporary folders of earlier killed cache builds", final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    need = 0
    try:
        write_owner(tmp)
        vbad: dict = {}
        tmax = _voice_tmax(vpaths, cfg, vbad)
        vshape = (1, cfg.spec_bins, tmax)
        fshape = (3, cfg.face_size, cfg.face_size)
        need = (len(vpaths) * int(np.prod(vshape)) * 2 + len(fpaths) * int(np.prod(fshape))
                + SPACE_MARGIN)
        if shutil.disk_usage(tmp).free < need:
            raise space_error(final, need)
        vkept, vframes, vbad, vcounts = _fill(
            tmp / "voices.f16", vshape, np.float16, _Decode(vpaths, "voice", cfg, tmax), vbad,
            cfg, progress, f"{split} voices")
        fkept, _, fbad, fcounts = _fill(
            tmp / "faces.u8", fshape, np.uint8, _Decode(fpaths, "face", cfg), {}, cfg, progress,
            f"{split} faces")
        np.save(tmp / "voice_frames.npy", np.asarray(vframes, dtype=np.int64))
        report = {
            "split": split, "tmax": tmax,
            "voices": _modality_report(len(vpaths), len(vkept), vbad, vcounts, vpaths),
            "faces": _modality_report(len(fpaths), len(fkept), fbad, fcounts, fpaths),
            "identities_without_voices": _orphans(index, split, vt.identity.iloc[vkept]),
            "identities_without_faces": _orphans(index, split, ft.identity.iloc[fkept]),
        }
        manifest = {"version": CACHE_VERSION, "split": split, "voice_shape": list(vshape),
                    "face_shape": list(fshape), "voice_paths": list(vt.path.iloc[vkept]),
                    "face_paths": list(ft.path.iloc[fkept]), "settings": _frontend_settings(cfg)}
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        (tmp / "owner").unlink()
        os.chmod(tmp, 0o755)   # mkdtemp makes it private; a shared cache must be readable
        try:
            os.rename(tmp, final)  # atomic: the folder appears complete or not at all
        except OSError:
            if not (final / "manifest.json").is_file():
                raise
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise space_error(final, need) from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- loading

def _memmap(path: Path, dtype, shape: tuple, n: int) -> torch.Tensor:
    if n == 0:
        return torch.zeros((0,) + shape, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    arr = np.memmap(path, dtype=dtype, mode="c", shape=(n,) + shape)  # copy-on-write mapping
    return torch.from_numpy(arr)


def _labels(table: pd.DataFrame, kept_paths: list[str], gender: np.ndarray, what: str):
    rows = pd.Index(table.path).get_indexer(kept_paths)
    if (rows < 0).any():
        raise DataError(f"cache lists a {what} file the index does not have: "
                        f"{kept_paths[int(np.argmax(rows < 0))]}", "stale_cache")
    sub = table.iloc[rows].reset_index(drop=True)[["path", "identity", "session"]]
    ids = sub.identity.to_numpy(np.int64, copy=True)
    return sub, torch.from_numpy(ids), torch.from_numpy(gender[ids])


def load_cache(folder: Path, index: DataIndex, split: str) -> CachedSplit:
    """Open a complete cache folder written by :func:`build_cache` (labels from ``index``)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    report = json.loads((folder / "report.json").read_text())
    vpaths, fpaths = manifest["voice_paths"], manifest["face_paths"]
    vshape, fshape = tuple(manifest["voice_shape"]), tuple(manifest["face_shape"])
    gender = index.identity_gender
    vt, vids, vg = _labels(index.split_items(split, "voice"), vpaths, gender, "voice")
    ft, fids, fg = _labels(index.split_items(split, "face"), fpaths, gender, "face")
    return CachedSplit(
        split=split, index=index,
        voices=_memmap(folder / "voices.f16", np.float16, vshape, len(vpaths)),
        voice_frames=torch.from_numpy(np.load(folder / "voice_frames.npy")),
        faces=_memmap(folder / "faces.u8", np.uint8, fshape, len(fpaths)),
        voice_ids=vids, face_ids=fids, voice_gender=vg, face_gender=fg,
        voice_table=vt, face_table=ft, report=report, path=folder)


def build_cache(index: DataIndex, cfg, split: str, progress: bool = False,
                rebuild: bool = False) -> CachedSplit:
    """The split's :class:`CachedSplit`, decoding it first unless an identical cache exists."""
    final = cache_root(index, cfg) / f"{split}-{cache_key(index, cfg, split)[:24]}"
    if rebuild and final.exists():
        shutil.rmtree(final)
    if not (final / "manifest.json").is_file():
        _write(index, cfg, split, final, progress)
    cached = load_cache(final, index, split)
    _warn(cached.report)
    return cached


def _warn(report: dict) -> None:
    for what in ("voices", "faces"):
        r = report[what]
        if r["skipped"]:
            log.warning("%s %s: skipped %d of %d bad files %s (listed in %s report)",
                        report["split"], what, r["listed"] - r["kept"], r["listed"],
                        r["skipped"], what)


__all__ = ["CACHE_VERSION", "CacheSpaceError", "CachedSplit", "build_cache", "cache_key",
           "cache_root", "load_cache", "remove_stale_temporaries"]
