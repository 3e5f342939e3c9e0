"""Figures of notebook 05 (embeddings and attention, paper Figs. 1 and 7): 2-D projections of
voice and face embeddings per model, and class activation maps over faces. The projections
themselves are computed in :mod:`dsanet.projections`."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import _to_image


def feature_grid(points: pd.DataFrame, title: str = "") -> plt.Figure:
    """Fig. 1: one panel per (projection, model); colour = identity, marker = modality.

    points columns: x, y, identity, modality, model, projection. The title states the counts
    actually plotted (:func:`point_counts`); ``title`` is added after them.
    """
    projs, models = list(dict.fromkeys(points["projection"])), list(dict.fromkeys(points["model"]))
    fig, axes = plt.subplots(len(projs), len(models), figsize=(3.8 * len(models), 3.4 * len(projs)),
                             squeeze=False)
    for i, p in enumerate(projs):
        for j, m in enumerate(models):
            ax = axes[i, j]
            g = points[(points["projection"] == p) & (points["model"] == m)]
            sns.scatterplot(data=g, x="x", y="y", hue="identity", style="modality", palette="tab10",
                            s=26, ax=ax, legend=(i == 0 and j == len(models) - 1))
            ax.set_title(f"{m} ({p})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel("")
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=7)
    counts = point_counts(points[(points["projection"] == projs[0]) & (points["model"] == models[0])])
    fig.suptitle(f"{counts}; {title}" if title else counts, fontsize=10)
    fig.tight_layout()
    return fig


def point_counts(points: pd.DataFrame) -> str:
    """'5 identities x (4 voice + 4 face) points' from one panel's rows (ranges if they vary)."""
    per = points.groupby(["identity", "modality"]).size().unstack(fill_value=0)   # (I, modalities)

    def span(col) -> str:
        lo, hi = int(per[col].min()), int(per[col].max())
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    parts = " + ".join(f"{span(m)} {m}" for m in per.columns)
    return f"{len(per)} identities x ({parts}) points"


def cams(images, maps: dict, labels=None) -> plt.Figure:
    """Fig. 7: each face (columns) with the class activation map of each model (rows) over it.

    images: (N, 3, H, W); maps: model name -> (N, H, W) in [0, 1].
    """
    n = len(images)
    names = list(maps)
    fig, axes = plt.subplots(1 + len(names), n, figsize=(1.7 * n, 1.8 * (1 + len(names))),
                             squeeze=False)
    for j in range(n):
        img = _to_image(images[j])
        axes[0, j].imshow(img)
        if labels is not None:
            axes[0, j].set_title(str(labels[j]), fontsize=7)
        for i, name in enumerate(names, start=1):
            axes[i, j].imshow(img)
            im = axes[i, j].imshow(np.asarray(maps[name][j]), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    for i, name in enumerate(["face", *names]):
        axes[i, 0].set_ylabel(name, fontsize=8)
    for ax in axes.ravel():
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    if names:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=im.norm, cmap=im.cmap),
                           ax=axes[1:].ravel().tolist(), shrink=0.9, pad=0.02)
        bar.set_label("class activation (0-1)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    return fig
