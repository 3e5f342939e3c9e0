"""Figures of notebook 01 (the DEM, paper Fig. 4 and Table I): the C x N maps with the drawn
block and the peak, activation values against the mean threshold, spatial maps beside the input,
and the drop / learn rates of the dropout structures."""
from __future__ import annotations

import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import BLUE, GREY, RED, _to_image, robust_limits


def _block_rect(ax, block, **kw) -> None:
    (r0, r1), (c0, c1) = block
    ax.add_patch(matplotlib.patches.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0,
                                              fill=False, **kw))


def dem_maps(maps: dict, block, peak) -> plt.Figure:
    """Heat maps of the C x N matrices (eqs. 7-9) with the drawn block (eq. 3) and the peak (eq. 1).

    maps: name -> (C, N) array, e.g. {"(a) salient": f_sal, "(b) F": F, "(c) subtle": f_sub};
    block: ((row0, row1), (col0, col1)) half-open; peak: (i, j).
    """
    n = len(maps)
    vmin, vmax = robust_limits(maps.values())          # 1st-99th percentile of all three maps
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 2.8), squeeze=False, layout="constrained")
    for ax, (name, m) in zip(axes[0], maps.items()):
        ax.grid(False)
        im = ax.imshow(np.asarray(m), aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        _block_rect(ax, block, edgecolor=RED, linewidth=1.5)
        ax.plot(peak[1], peak[0], marker="*", color="white", markersize=10, markeredgecolor="k")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("position j of HW")
        ax.set_ylabel("channel i")
    bar = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, extend="both")
    bar.set_label("activation (1st-99th percentile)", fontsize=8)
    return fig


def dem_values(maps: dict, threshold: float, block, peak) -> plt.Figure:
    """Fig. 4 style: activation values against the mean threshold of eq. (2).

    Every entry of each (C, N) map is a dot at its flat index i*N + j; red above the mean of F,
    blue below; entries inside the drawn block are ringed and the peak is a star.
    """
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 2.8), sharey=True, squeeze=False)
    for ax, (name, m) in zip(axes[0], maps.items()):
        m = np.asarray(m)
        C, N = m.shape
        ii, jj = np.meshgrid(np.arange(C), np.arange(N), indexing="ij")
        flat, v = (ii * N + jj).ravel(), m.ravel()
        above = v > threshold
        ax.scatter(flat[~above], v[~above], s=2, color=BLUE, label="below mean")
        ax.scatter(flat[above], v[above], s=2, color=RED, label="above mean")
        (r0, r1), (c0, c1) = block
        inb = ((ii >= r0) & (ii < r1) & (jj >= c0) & (jj < c1)).ravel()
        ax.scatter(flat[inb], v[inb], s=9, facecolors="none", edgecolors="k", linewidths=0.4,
                   label="drawn block")
        ax.scatter([peak[0] * N + peak[1]], [m[peak]], marker="*", s=90, color="gold",
                   edgecolors="k", zorder=5, label="peak")
        ax.axhline(threshold, color=GREY, linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("flat index i*HW + j")
    axes[0, 0].set_ylabel("activation")
    axes[0, -1].legend(fontsize=7, loc="upper right", markerscale=2)
    fig.tight_layout()
    return fig


def spatial_maps(image, maps: dict) -> plt.Figure:
    """An input image beside H x W maps (e.g. the channel sums of F, f_sal and f_sub)."""
    n = len(maps) + 1
    vmin = min(float(np.asarray(m).min()) for m in maps.values())
    vmax = max(float(np.asarray(m).max()) for m in maps.values())
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), squeeze=False)
    axes[0, 0].imshow(_to_image(image))
    axes[0, 0].set_title("input", fontsize=9)
    for ax, (name, m) in zip(axes[0, 1:], maps.items()):
        ax.imshow(np.asarray(m), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=9)
    for ax in axes[0]:
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def dropout_rates(df: pd.DataFrame) -> plt.Figure:
    """Table I: simulated drop / learn rates (markers) against the formulas (lines).

    df columns: p, structure ("GAN" | "SAS"), rate ("drop" | "learn"), simulated, formula.
    """
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for (structure, rate), g in df.groupby(["structure", "rate"]):
        line = ax.plot(g["p"], g["formula"], label=f"{structure} {rate} (formula)",
                       linewidth=1, alpha=0.8, zorder=2)[0]
        # hollow markers drawn above the lines: a point on its line stays visible
        ax.scatter(g["p"], g["simulated"], s=34, facecolors="white", edgecolors=line.get_color(),
                   linewidths=1.4, zorder=4)
    ax.set_xlabel("dropout probability p of each generator")
    ax.set_ylabel("rate")
    ax.set_title("Table I by simulation (dots) and formula (lines)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
