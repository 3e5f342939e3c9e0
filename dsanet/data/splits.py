"""Identity split protocols: which identities are train, validation and test.

- ``"wen"`` (default): Wen et al. (CVPR 2021), followed by the paper's Tables II and IV-XII:
  names starting with A or B are validation, C, D or E test, the rest train
  (:func:`dsanet.data.layout.split_of`); 924 / 112 / 189 identities on VoxCeleb1 + VGGFace.
- ``"pins"``: the data setting of Learnable PINs (Nagrani et al., ECCV 2018), the paper's
  Table III: 901 / 100 / 250 VoxCeleb1 identities, faces from the VoxCeleb1 videos. Its lists are
  not part of any download here: the user passes them (``split_lists``), as a CSV with columns
  ``identity,split`` or a folder holding ``train.txt``, ``val.txt``, ``test.txt`` (one identity
  a line). An identity is a VoxCeleb1 id (``id10001``) or its name (``A.J._Buckley``).

:func:`read_split_lists` reads and checks such lists (every problem names its file and line);
:func:`load_cfg_index` scans a config's data tree under its protocol (``load_index(splits=...)``
applies the lists); :func:`write_pins_like_lists` writes lists of the same proportions for the
embedded benchmark, so that its row of Table III is "split the same way".
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .layout import SPLITS, DataError, DataIndex, load_index

SPLIT_PROTOCOLS = ("wen", "pins")
# identities per split of each protocol on the real data (Table II; Learnable PINs, Sec. 4.1)
PROTOCOL_COUNTS = {"wen": {"train": 924, "val": 112, "test": 189},
                   "pins": {"train": 901, "val": 100, "test": 250}}
_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                "validation": "val", "test": "test", "testing": "test"}


def _split_name(text: str, where: str) -> str:
    name = _SPLIT_NAMES.get(text.strip().lower())
    if name is None:
        raise DataError(f"{where}: unknown split {text.strip()!r}; use train, val or test", "meta")
    return name


def _read_csv_lists(path: Path) -> list[tuple[str, str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read split lists ({e})", "meta") from e
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["identity", "split"]:
        raise DataError(f"{path}: split lists need a header 'identity,split'", "meta")
    out = []
    for i, r in enumerate(rows[1:], start=2):
        if len(r) < 2 or not r[0].strip():
            raise DataError(f"{path}: line {i}: expected 'identity,split', got {','.join(r)!r}", "meta")
        out.append((r[0].strip(), _split_name(r[1], f"{path}: line {i}"), f"{path}: line {i}"))
    return out


def _read_folder_lists(folder: Path) -> list[tuple[str, str, str]]:
    out = []
    for split in SPLITS:
        path = folder / f"{split}.txt"
        if not path.is_file():
            raise DataError(f"{folder}: split lists folder lacks {split}.txt (needs train.txt, "
                            "val.txt and test.txt)", "meta")
        for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.strip():
                out.append((line.strip(), split, f"{path}: line {i}"))
    return out


def read_split_lists(path) -> pd.Series:
    """Identity (VoxCeleb1 id or name) -> split, from a CSV or a folder of three lists.

    An identity listed twice with different splits is an error naming both lines; listed twice
    with the same split, it counts once."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: split lists not found", "missing")
    entries = _read_folder_lists(p) if p.is_dir() else _read_csv_lists(p)
    if not entries:
        raise DataError(f"{p}: split lists name no identity", "meta")
    seen: dict[str, tuple[str, str]] = {}
    for ident, split, where in entries:
        if ident in seen and seen[ident][0] != split:
            raise DataError(f"{where}: {ident} is {split}, but {seen[ident][1]} makes it "
                            f"{seen[ident][0]}", "meta")
        seen.setdefault(ident, (split, where))
    return pd.Series({k: v[0] for k, v in seen.items()}, name="split")


def load_cfg_index(cfg, **kw) -> DataIndex:
    """:func:`~dsanet.data.layout.load_index` of ``cfg``'s data tree under its split protocol
    (``cfg.split_protocol``; the ``"pins"`` lists from ``cfg.split_lists``)."""
    lists = (read_split_lists(cfg.split_lists)
             if getattr(cfg, "split_protocol", "wen") == "pins" else None)
    return load_index(cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root, splits=lists, **kw)


def protocol_counts(protocol: str) -> dict[str, int]:
    """Identities per split the protocol has on the real data."""
    if protocol not in PROTOCOL_COUNTS:
        raise ValueError(f"unknown split protocol {protocol!r}; choose {', '.join(SPLIT_PROTOCOLS)}")
    return PROTOCOL_COUNTS[protocol]


def write_pins_like_lists(identities: pd.DataFrame, path, seed: int = 0) -> Path:
    """Lists splitting ``identities`` (column ``voice_id``) in the Learnable PINs proportions
    (901 : 100 : 250, drawn at random with ``seed``, not by initials), as ``identity,split`` CSV
    at ``path``: the embedded benchmark's counterpart of the PINs setting (Table III)."""
    ids = sorted(identities.voice_id)
    counts = PROTOCOL_COUNTS["pins"]
    total = sum(counts.values())
    n_val = round(len(ids) * counts["val"] / total)
    n_test = round(len(ids) * counts["test"] / total)
    order = np.random.default_rng(seed).permutation(len(ids))
    split = np.full(len(ids), "train", dtype=object)
    split[order[:n_val]] = "val"
    split[order[n_val:n_val + n_test]] = "test"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"identity": ids, "split": split}).to_csv(path, index=False)
    return path


__all__ = ["PROTOCOL_COUNTS", "SPLIT_PROTOCOLS", "load_cfg_index", "protocol_counts",
           "read_split_lists", "write_pins_like_lists"]
