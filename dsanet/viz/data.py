"""Figures of notebook 00 (the embedded benchmark): example faces and spectrograms, identity
traits, and the calibration lines of the reference scorers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import _to_image


def examples(faces, specs, row_labels, col_labels) -> plt.Figure:
    """Faces and spectrograms per identity (rows) and session (columns).

    faces: (R, S, 3, H, W) images; specs: (R, S, F, T) spectrograms (dB or normalised).
    """
    R, S = len(faces), len(faces[0])
    fig, axes = plt.subplots(R, 2 * S, figsize=(2.0 * 2 * S, 2.0 * R), squeeze=False)
    for i in range(R):
        for s in range(S):
            axf, axs = axes[i, 2 * s], axes[i, 2 * s + 1]
            axf.imshow(_to_image(faces[i][s]))
            spec = np.asarray(specs[i][s], dtype=np.float32).squeeze()
            axs.imshow(spec, origin="lower", aspect="auto", cmap="magma")
            if i == 0:
                axf.set_title(f"face, {col_labels[s]}", fontsize=8)
                axs.set_title(f"voice, {col_labels[s]}", fontsize=8)
            for ax in (axf, axs):
                ax.grid(False)
                ax.set_xticks([])
                ax.set_yticks([])
        axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    fig.tight_layout()
    return fig


def traits(df: pd.DataFrame, x: str, y: str, hue: str = "gender") -> plt.Figure:
    """Scatter of two identity traits shared by voice and face (e.g. f0 against jaw width)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    sns.scatterplot(data=df, x=x, y=y, hue=hue, s=18, ax=ax)
    ax.set_title(f"{y} against {x} per identity")
    fig.tight_layout()
    return fig


def calibration(lines: pd.DataFrame, title: str = "Benchmark calibration",
                style: str | None = "direction") -> plt.Figure:
    """Accuracy against k for reference scorers: columns k, scorer, value (fractions) [, style]."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    style = style if style in lines.columns else None
    sns.lineplot(data=lines, x="k", y="value", hue="scorer", style=style, markers=True, ax=ax)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("1:k matching accuracy")
    ax.set_title(title)
    if ax.get_legend() is not None:   # outside the axes: the oracle curve runs along the top
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
