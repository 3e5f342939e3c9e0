"""A TensorBoard log of a run's curves (``RUN/tensorboard/``), written from its history.

The history (``RUN/history.csv``: one row per step, loss terms, learning rates, validation
scores) is the record; the TensorBoard events are a view of it, rewritten in full after each
``train`` call so that a resumed run gives one continuous log. Without the ``tensorboard``
package the log is skipped with a note; the curves stay in ``history.csv``.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
FOLDER = "tensorboard"


def tag(column: str) -> str:
    """History column -> TensorBoard tag: ``lr/...``, ``val/...`` or ``train/...``."""
    if column.startswith("lr_"):
        return f"lr/{column[3:]}"
    if column.startswith("val_"):
        return f"val/{column[4:]}"
    return f"train/{column}"


def write_tensorboard(history: pd.DataFrame, run_dir) -> Path | None:
    """Every numeric history column as a scalar curve over ``step``; returns the log folder."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: no TensorBoard log (the curves are in "
                 "history.csv)")
        return None
    folder = Path(run_dir) / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    if history is None or history.empty or "step" not in history:
        return None
    writer = SummaryWriter(str(folder))
    try:
        steps = history["step"].astype(int).tolist()
        for col in history.columns:
            if col == "step" or not pd.api.types.is_numeric_dtype(history[col]):
                continue
            for step, v in zip(steps, history[col].tolist()):
                if v is not None and math.isfinite(v):
                    writer.add_scalar(tag(col), float(v), step)
    finally:
        writer.close()
    return folder


__all__ = ["FOLDER", "tag", "write_tensorboard"]
