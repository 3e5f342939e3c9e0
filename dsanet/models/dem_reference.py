"""A plain per-sample implementation of DEM, eqs. (1)-(9), for tests and ``benchmarks/dem.py`` only.

It loops over the samples in Python, moves each one to NumPy and follows the equations literally
(index slicing for the block of eq. 3), so it shares no code with the batched ``dem.py``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _one_sample(f: np.ndarray, l: int, m: int, r: int, c: int, selection: str) -> np.ndarray:
    """Eqs. (1)-(6) for one matrix f (C, N) and block (l, m) -> mask M (C, N) float."""
    C, N = f.shape
    p_max = (f == f.max()).astype(f.dtype)                       # eq. (1)
    p_s = (f > f.mean()).astype(f.dtype)                         # eq. (2)
    m_g = np.zeros_like(f)                                       # eq. (3)
    m_g[(l * C) // r:((l + 1) * C) // r, (m * N) // c:((m + 1) * N) // c] = 1
    p_sg = p_s * m_g                                             # eq. (4)
    if selection == "patch":
        return p_sg
    if selection == "peak":
        return p_max
    p_sg[p_max == 1] = 0                                         # eq. (5)
    return p_sg + p_max                                          # eq. (6)


def dem_reference(F: Tensor, rows: Tensor, cols: Tensor, cfg) -> tuple[Tensor, Tensor, Tensor]:
    """One DEM layer per sample: F (B, C, H, W) or (B, C, N), blocks rows/cols (B,).

    Returns ``(M, salient, subtle)`` shaped like F: the mask of eq. (6) (or its ``cfg.selection``
    variant), F + alpha*M*F (eq. 8) and F - beta*M*F (eq. 9).
    """
    masks, sal, sub = [], [], []
    for b in range(F.shape[0]):
        f = F[b].detach().float().cpu().reshape(F.shape[1], -1).numpy()
        M = _one_sample(f, int(rows[b]), int(cols[b]), cfg.r, cfg.c, cfg.selection)
        masks.append(M)
        sal.append(f + np.float32(cfg.alpha) * (M * f))          # eqs. (7)-(8)
        sub.append(f - np.float32(cfg.beta) * (M * f))           # eq. (9)
    out = [torch.from_numpy(np.stack(x)).reshape(F.shape).to(F.device) for x in (masks, sal, sub)]
    return out[0], out[1], out[2]
