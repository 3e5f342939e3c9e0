"""Shared style and saving of the notebooks' figures: colours, the seaborn theme, PNG + SVG
output under ``<out_dir>/figures/``, and the small helpers every figure family uses (shared colour
limits, tensors to images).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import seaborn as sns

RED, BLUE, GREY = "#d62728", "#1f77b4", "#7f7f7f"


def theme() -> None:
    """The notebooks' plotting style (seaborn ``whitegrid``, small fonts)."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)


DPI = 200          # PNG resolution of every saved figure
VECTOR = "svg"     # the vector copy written beside each PNG


def save(fig, out_dir: str | Path, name: str, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``<out_dir>/figures/<name>.png`` (``dpi``) and ``<name>.svg`` beside it;
    returns the PNG's path (the figure stays open)."""
    d = Path(out_dir) / "figures"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    fig.savefig(path.with_suffix(f".{VECTOR}"), bbox_inches="tight")
    return path


def robust_limits(arrays, q: float = 1.0) -> tuple[float, float]:
    """Shared colour limits: the q-th and (100-q)-th percentiles of all values together, so that
    one peak does not wash out the rest of the map (values beyond are drawn at the end colours)."""
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [q, 100 - q])
    return (float(lo), float(hi)) if hi > lo else (float(v.min()), float(v.max()) + 1e-12)


def _to_image(x) -> np.ndarray:
    """(3, H, W) uint8 / float tensor or array -> (H, W, 3) float in [0, 1] for imshow."""
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.max() > 1.5:
        a = a / 255.0
    elif a.min() < 0:
        a = (a + 1) / 2                         # normalised with mean 0.5, std 0.5
    return np.clip(a.squeeze(), 0, 1)
