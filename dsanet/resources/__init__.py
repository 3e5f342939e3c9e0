"""Data files shipped inside the package.

``protocols/vox1_{train,val,test}.csv``: Wen et al.'s VoxCeleb1 / VGGFace split (the meta table
of each split: VoxCeleb1_ID, VGGFace1_ID, Gender, Nationality, Set), which the paper follows
(Table II). Pass them to ``load_index(meta=...)`` or ``protocols --meta`` with a real data tree.

``protocols/sample_*.txt``: short samples of the published evaluation lists (Wen et al.'s
matching lines, their gender-constrained variant, verification pairs, and the DSANet F-V test
list), in their published formats, for trying ``evaluate --list`` readers and for the tests.
"""
from __future__ import annotations

from pathlib import Path

PROTOCOLS = Path(__file__).resolve().parent / "protocols"
SPLITS = ("train", "val", "test")


def split_csv(split: str) -> Path:
    """The shipped meta CSV of one split of Wen et al. (``"train"``, ``"val"`` or ``"test"``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return PROTOCOLS / f"vox1_{split}.csv"


def split_csvs() -> list[Path]:
    """The three shipped split CSVs (train, val, test)."""
    return [split_csv(s) for s in SPLITS]


__all__ = ["PROTOCOLS", "split_csv", "split_csvs"]
