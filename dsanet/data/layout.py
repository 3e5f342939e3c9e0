"""The on-disk layout of a voice-face data set, its meta table and the Wen et al. split.

Layout (the embedded benchmark and VoxCeleb1 + VGGFace alike)::

    ROOT/voices/idNNNNN/<session>/<clip>.wav      (VoxCeleb1 ``wav/``: pass it as ``voice_root``)
    ROOT/faces/<Name>/<session>/<frame>.jpg       (VoxCeleb1 face frames)
    ROOT/faces/<Name>/<img>.jpg                   (VGGFace stills; session "")
    ROOT/meta.csv                                 (VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set)

The meta table may also be the official tab-separated ``vox1_meta.csv`` (columns "VoxCeleb1 ID,
VGGFace1 ID, Gender, Nationality, Set" with spaces around the values), several CSV files (the
three split files of Wen et al.) or a directory holding them.

Split (Wen et al., CVPR 2021, followed by the paper, Sec. IV-A and Table II): names starting with
A or B are validation, C, D or E test, the rest train.

Bad input
---------
The bad-input policy - what is an error, what is converted and counted, what is skipped and
counted, and the test that shows each - is in one place: ``docs/bad_input.md``. Nothing is
dropped silently and no label is ever guessed. Identity-level skips are counted in
``DataIndex.skipped`` under ``SKIP_REASONS``; symlinks are followed only when they stay in their
identity's folder or point outside the modality root (a file store), never into another
identity's folder, the root itself or a loop.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
AUDIO_EXTS = (".wav", ".flac", ".ogg")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
GENDER_CODES = {"m": 0, "f": 1}  # unknown gender -> -1
GENDER_SPELLINGS = {"m": "m", "male": "m", "man": "m", "f": "f", "female": "f", "woman": "f"}
SKIP_REASONS = ("set_none", "not_in_split", "missing_folders", "no_voices", "no_faces", "unlisted_voice_folders",
                "unlisted_face_folders", "ignored_files", "unreadable_folders",
                "unreadable_identities", "symlink_escapes", "symlink_loops", "symlinked_identities")

# normalised header (lower case, letters and digits only) -> our column name
_META_COLUMNS = {
    "voxceleb1id": "voice_id", "vggface1id": "face_id", "gender": "gender",
    "nationality": "nationality", "set": "set",
}
_REQUIRED = ("voice_id", "face_id", "gender", "set")


class DataError(ValueError):
    """Bad input data: the message names the file and the problem.

    ``reason`` is a short key ("corrupt", "truncated", "empty", "non_finite", "unknown_file",
    "wrong_label", "meta" ...) under which a skip is counted.
    """

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


def split_of(name: str) -> str:
    """``"val"`` for names starting with A or B, ``"test"`` for C, D or E, else ``"train"``."""
    first = name.strip()[:1].upper()
    if first in ("A", "B"):
        return "val"
    if first in ("C", "D", "E"):
        return "test"
    return "train"


# ----------------------------------------------------------------------------- meta

def _meta_files(path) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob("*.csv"))
            if not files:
                raise DataError(f"{p}: directory holds no *.csv meta file", "meta")
            return files
        return [p]
    return [Path(p) for p in path]


def _read_one_meta(path: Path) -> pd.DataFrame:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read meta file ({e})", "meta") from e
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: meta file is empty", "meta")
    sep = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
    header = [re.sub(r"[^a-z0-9]", "", h.lower()) for h in rows[0]]
    names = [_META_COLUMNS.get(h, h) for h in header]
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise DataError(f"{path}: meta file lacks column(s) {missing}; header is {rows[0]}", "meta")
    bad = [i + 2 for i, r in enumerate(rows[1:]) if len(r) != len(names)]
    if bad:
        raise DataError(f"{path}: line(s) {bad[:5]} have a different number of fields "
                        "than the header", "meta")
    df = pd.DataFrame([[v.strip() for v in r] for r in rows[1:]], columns=names)
    if "nationality" not in df:
        df["nationality"] = ""
    df["gender"] = df["gender"].str.lower().map(GENDER_SPELLINGS).fillna("")  # "" unknown
    df["set"] = df["set"].str.lower()
    df["source"] = str(path)
    return df[["voice_id", "face_id", "gender", "nationality", "set", "source"]]


def read_meta(path) -> pd.DataFrame:
    """Meta table from one CSV / TSV file, a list of them or a directory of ``*.csv``.

    Returns a DataFrame with columns ``voice_id, face_id, gender, nationality, set, split``
    (one row per VoxCeleb1 id, sorted by it); ``split`` comes from :func:`split_of` on the face
    name. Rows repeated across files are merged; conflicting rows raise :class:`DataError`.
    """
    df = pd.concat([_read_one_meta(p) for p in _meta_files(path)], ignore_index=True)
    cols = ["voice_id", "face_id", "gender", "nationality", "set"]
    dup = df.drop_duplicates(cols)
    clash = dup[dup.duplicated("voice_id", keep=False)]
    if len(clash):
        vid = clash.voice_id.iloc[0]
        srcs = sorted(set(clash[clash.voice_id == vid].source))
        raise DataError(f"{', '.join(srcs)}: conflicting meta rows for {vid}", "meta")
    clash = dup[dup.duplicated("face_id", keep=False)]
    if len(clash):
        raise DataError(f"{clash.source.iloc[0]}: face name {clash.face_id.iloc[0]!r} "
                        "is given to two VoxCeleb1 ids", "meta")
    out = dup[cols].sort_values("voice_id").reset_index(drop=True)
    out["split"] = out.face_id.map(split_of)
    return out


def _default_meta(root: Path):
    if (root / "meta.csv").is_file():
        return root / "meta.csv"
    files = sorted(root.glob("*.csv"))
    if not files:
        raise DataError(f"{root}: no meta.csv (or other *.csv meta file) found; pass meta=", "meta")
    return files


# ----------------------------------------------------------------------------- scanning

UNREADABLE = "unreadable"   # _scan's answers for an identity folder that cannot be listed,
REFUSED = "refused"         # or that is a symlink into the modality root or above it


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _scan(folder: Path, exts: tuple[str, ...], counts: Counter, root_real: Path):
    """(relative path from the modality root, session) of every media file under ``folder``.

    ``UNREADABLE`` when the identity folder cannot be listed, ``REFUSED`` when it is a symlink
    to the modality root, another identity's folder or above the root. A symlink
    (file or folder) into the modality root ``root_real`` outside this identity's own folder is
    skipped (``symlink_escapes``); a folder symlink back into the identity's folder or above it
    is skipped (``symlink_loops``); unlistable sub-folders are counted (``unreadable_folders``).
    """
    own = folder.resolve()
    if own != root_real / folder.name and (_inside(own, root_real) or _inside(root_real, own)):
        counts["symlink_escapes" if own != root_real and not _inside(root_real, own)
               else "symlink_loops"] += 1
        return REFUSED
    # paths as strings in the loop: pathlib per file costs more than the directory listing
    found, seen, stack = [], {own}, [(str(folder), "", "", own)]   # dir, rel/, session, real
    while stack:
        here, rel, session, here_real = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            counts["unreadable_folders"] += 1
            if not rel:
                return UNREADABLE
            continue
        subdirs = []
        for e in entries:
            is_dir = e.is_dir()
            if is_dir and e.name.startswith("."):
                continue
            real = None
            if e.is_symlink():
                real = Path(os.path.realpath(e.path))
                if _inside(real, root_real) and not _inside(real, own):
                    counts["symlink_escapes"] += 1      # another identity's folder, or the root
                    continue
                if is_dir and (real in seen or _inside(real, own) or _inside(here_real, real)):
                    counts["symlink_loops"] += 1                # back into the tree walked
                    continue
            if is_dir:
                real = real or here_real / e.name
                seen.add(real)
                subdirs.append((e.path, f"{rel}{e.name}/", session or e.name, real))
            elif e.name.startswith(".") or not e.name.lower().endswith(exts):
                counts["ignored_files"] += 1
            else:
                found.append((f"{folder.name}/{rel}{e.name}", session))
        stack.extend(reversed(subdirs))
    return found


def _items_frame(rows: list[tuple[str, int, str]], identities: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["path", "identity", "session"])
    df["identity"] = df["identity"].astype(np.int64)
    df["split"] = identities.split.to_numpy()[df.identity.to_numpy()] if len(df) else []
    return df.sort_values(["identity", "path"]).reset_index(drop=True)


@dataclass
class DataIndex:
    """Every usable identity and media file of a data set (paths only; nothing decoded).

    ``identities``: voice_id, face_id, gender, nationality, split (index = identity int).
    ``voices`` / ``faces``: path (relative to ``voice_root`` / ``face_root``, e.g.
    ``id10003/EGPV-Xa0LGk/00001.wav``, ``Aamir_Khan/00000819.jpg`` as in the Wen et al. lists),
    identity, session, split (index = global item int). ``skipped``: reason -> count.
    """

    root: Path
    voice_root: Path
    face_root: Path
    identities: pd.DataFrame
    voices: pd.DataFrame
    faces: pd.DataFrame
    skipped: dict = field(default_factory=dict)

    @property
    def identity_gender(self) -> np.ndarray:
        """(n_identities,) int64: 0 male, 1 female, -1 unknown."""
        codes = self.identities.gender.map(GENDER_CODES).fillna(-1)
        return np.array(codes, dtype=np.int64)

    def voice_path(self, rel: str) -> Path:
        return self.voice_root / rel

    def face_path(self, rel: str) -> Path:
        return self.face_root / rel

    def split_items(self, split: str, modality: str) -> pd.DataFrame:
        """The ``"voice"`` or ``"face"`` items of one split, re-numbered 0..N-1 (split-local)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        table = {"voice": self.voices, "face": self.faces}[modality]
        return table[table.split == split].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Table II's layout: identities, face images and audio clips per split."""
        cols = {"train": "Train", "val": "Validation", "test": "Test"}
        rows = {
            "Identities": self.identities.split.value_counts(),
            "Face Images": self.faces.split.value_counts(),
            "Audio Clips": self.voices.split.value_counts(),
        }
        table = pd.DataFrame({k: v.reindex(SPLITS, fill_value=0) for k, v in rows.items()}).T
        table = table.rename(columns=cols).astype(np.int64)
        table["Total"] = table.sum(axis=1)
        table.index.name = "Item"
        return table


def load_index(root, meta=None, voice_root=None, face_root=None,
               keep_set_none: bool = False, splits: pd.Series | None = None) -> DataIndex:
    """Scan ``root`` (and the optional separate voice / face roots) against the meta table.

    Identities are kept when their ``Set`` is not "none" and both folders hold at least one file;
    the others are counted in ``skipped`` (see the module docstring). Identity ints follow the
    VoxCeleb1 id order of the kept rows. ``keep_set_none=True`` also keeps "none" rows that have
    media (the published F-V list, built on VoxCeleb1 video frames, names voices of three of
    them); Table II's counts leave them out. ``splits`` (identity -> split, from
    :func:`dsanet.data.splits.read_split_lists`) replaces Wen et al.'s split by initials: meta rows
    it does not list are counted under ``not_in_split``; listed identities the meta lacks are
    logged (:func:`assign_splits`).
    """
    root = Path(root)
    voice_root = Path(voice_root) if voice_root else root / "voices"
    face_root = Path(face_root) if face_root else root / "faces"
    for what, p in (("voice", voice_root), ("face", face_root)):
        if not p.is_dir():
            raise DataError(f"{p}: {what} root is not a directory", "missing")
    table = read_meta(meta if meta is not None else _default_meta(root))
    listed_voices, listed_faces = set(table.voice_id), set(table.face_id)
    counts: Counter = Counter({reason: 0 for reason in SKIP_REASONS})
    if not keep_set_none and splits is None:   # lists decide for themselves ("none" rows too)
        counts["set_none"] = int((table.set == "none").sum())
        table = table[table.set != "none"]
    if splits is not None:
        table, counts["not_in_split"], unknown = assign_splits(table, splits)
        if unknown:
            log.warning("%d listed identities are not in the meta table (e.g. %s)", len(unknown),
                        ", ".join(unknown[:3]))

    found_v = {}
    found_f = {}
    vreal, freal = voice_root.resolve(), face_root.resolve()
    for row in table.itertuples(index=False):
        vdir, fdir = voice_root / row.voice_id, face_root / row.face_id
        found_v[row.voice_id] = _scan(vdir, AUDIO_EXTS, counts, vreal) if vdir.is_dir() else None
        found_f[row.face_id] = _scan(fdir, IMAGE_EXTS, counts, freal) if fdir.is_dir() else None

    keep = []
    for row in table.itertuples(index=False):
        v, f = found_v[row.voice_id], found_f[row.face_id]
        if v is None and f is None:
            counts["missing_folders"] += 1
        elif UNREADABLE in (v, f):
            counts["unreadable_identities"] += 1
        elif REFUSED in (v, f):
            counts["symlinked_identities"] += 1
        elif not v:
            counts["no_voices"] += 1
        elif not f:
            counts["no_faces"] += 1
        else:
            keep.append(row.voice_id)
    ids = table[table.voice_id.isin(keep)].reset_index(drop=True)
    ids = ids[["voice_id", "face_id", "gender", "nationality", "split"]]
    counts["unlisted_voice_folders"] = _unlisted(voice_root, listed_voices)
    counts["unlisted_face_folders"] = _unlisted(face_root, listed_faces)

    vrows = [(p, i, s) for i, vid in enumerate(ids.voice_id) for p, s in found_v[vid]]
    frows = [(p, i, s) for i, fid in enumerate(ids.face_id) for p, s in found_f[fid]]
    return DataIndex(root=root, voice_root=voice_root, face_root=face_root, identities=ids,
                     voices=_items_frame(vrows, ids), faces=_items_frame(frows, ids),
                     skipped={k: int(v) for k, v in counts.items()})


def assign_splits(table: pd.DataFrame, lists: pd.Series, source="split lists"
                  ) -> tuple[pd.DataFrame, int, list[str]]:
    """``table`` (:func:`~dsanet.data.layout.read_meta`) with ``split`` from ``lists``, matched on
    the VoxCeleb1 id or the face name -> (kept rows, rows the lists leave out, listed identities
    the meta does not have). Lists that match no row of the meta are an error."""
    by_voice = table.voice_id.map(lists)
    by_face = table.face_id.map(lists)
    split = by_voice.fillna(by_face)
    known = set(table.voice_id) | set(table.face_id)
    unknown = sorted(set(lists.index) - known)
    if split.notna().sum() == 0:
        raise DataError(f"{source}: no listed identity is in the meta table (e.g. "
                        f"{', '.join(unknown[:3])}); list VoxCeleb1 ids or names", "meta")
    out = table.assign(split=split)
    return out[out.split.notna()].reset_index(drop=True), int(split.isna().sum()), unknown


def _unlisted(parent: Path, listed: set) -> int:
    return sum(1 for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")
               and d.name not in listed)


def meta_split_counts(meta) -> pd.Series:
    """Identities per split from a meta table alone (``Set`` "none" left out), no media read."""
    table = read_meta(meta) if not isinstance(meta, pd.DataFrame) else meta
    return table[table.set != "none"].split.value_counts().reindex(SPLITS, fill_value=0)


__all__ = [
    "AUDIO_EXTS", "DataError", "DataIndex", "GENDER_CODES", "IMAGE_EXTS", "SKIP_REASONS", "SPLITS",
    "assign_splits", "load_index", "meta_split_counts", "read_meta", "split_of",
]
