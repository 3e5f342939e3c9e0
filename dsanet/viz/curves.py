"""Line and bar figures over training (notebooks 02 and 03): training curves from a history,
one-panel line plots per group, the AMCE gradients per class and the negatives its mask keeps."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


# ----------------------------------------------------------------------------- 02 training

def training_curves(history: pd.DataFrame, panels: dict, x: str = "step",
                    smooth: int = 1) -> plt.Figure:
    """One panel per title -> list of history columns (missing columns skipped). Per-step columns
    are shown as a rolling mean over ``smooth`` steps; sparse ones (validation) as measured."""
    panels = {t: [c for c in cols if c in history.columns and history[c].notna().any()]
              for t, cols in panels.items()}
    panels = {t: cols for t, cols in panels.items() if cols}
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 2.7 * nrows), squeeze=False)
    for ax, (title, cols) in zip(axes.ravel(), panels.items()):
        for c in cols:
            h = history[[x, c]].dropna()                       # validation columns are sparse
            dense = len(h) > len(history) // 2
            y = h[c].rolling(smooth, min_periods=1).mean() if smooth > 1 and dense else h[c]
            ax.plot(h[x], y, label=c, linewidth=1.2, marker="o" if len(h) < 12 else None, markersize=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(x)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def line_panels(df: pd.DataFrame, x: str, y: str, hue: str, title: str = "", smooth: int = 1,
                hline: float | None = None) -> plt.Figure:
    """One panel: ``y`` against ``x``, a line per ``hue`` value (rolling mean over ``smooth``
    rows), with an optional horizontal reference line (e.g. chance)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for name, g in df.groupby(hue, sort=False):
        g = g.sort_values(x)
        ax.plot(g[x], g[y].rolling(max(1, smooth), min_periods=1).mean(), label=str(name))
    if hline is not None:
        ax.axhline(hline, color="k", linestyle=":", linewidth=1, label=f"{hline:g}")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- 03 AMCE

def gradient_bars(grads: pd.DataFrame, title: str = "") -> plt.Figure:
    """Per-class gradients dL/dm_j for several losses: columns class, loss, grad (+ prob)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    sns.barplot(data=grads, x="class", y="grad", hue="loss", ax=ax)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_ylabel("dL / dm_j")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def kept_negatives(df: pd.DataFrame, x: str = "step", y: str = "kept",
                   hue: str | None = None) -> plt.Figure:
    """Fraction of negatives kept by the AMCE mask (eq. 16) against training step."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    if hue is not None:
        df = df.assign(**{hue: df[hue].map(lambda v: f"{hue} = {v}")})   # categorical colours
    sns.lineplot(data=df, x=x, y=y, hue=hue, marker="o", ax=ax)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("negatives kept by the mask")
    ax.set_title("AMCE mask over training (eq. 16)", fontsize=9)
    fig.tight_layout()
    return fig
