"""Figures of the notebooks (the paper's Figs. 1, 4, 5 and 7, and the diagnostics around them).

Every function takes plain arrays or DataFrames and returns a matplotlib ``Figure``; nothing here
trains or evaluates. :func:`save` writes a figure as PNG under ``<out_dir>/figures/``. Colours come
from seaborn. 2-D projections of embeddings are computed in :mod:`dsanet.projections`.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


# ----------------------------------------------------------------------------- 00 data

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


# ----------------------------------------------------------------------------- 01 DEM (Fig. 4)

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


# ----------------------------------------------------------------------------- 05 features

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


# ----------------------------------------------------------------------------- 06 matching

def matching_curve(df: pd.DataFrame, reference: pd.DataFrame | None = None,
                   extra: pd.DataFrame | None = None) -> plt.Figure:
    """Fig. 5: 1:k accuracy (%) against k per direction, with 95% bands and reference lines.

    df columns: k, direction, value, ci_low, ci_high (percent) [, model: one line per model and
    direction, default "DSANet"]; ``extra``: more rows of the same form (e.g. a baseline's),
    drawn the same way; reference: k, scorer, value (%) - the benchmark's oracle, gender-only
    (dotted) and chance lines, or any other.
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    rows = pd.concat([df, extra], ignore_index=True) if extra is not None else df
    if "model" not in rows.columns:
        rows = rows.assign(model="DSANet")
    rows = rows.assign(model=rows["model"].fillna("DSANet"))
    for (m, d), g in rows.groupby(["model", "direction"], sort=False):
        g = g.sort_values("k")
        line = ax.plot(g["k"], g["value"], marker="o", markersize=4, label=f"{m} {d}")[0]
        if {"ci_low", "ci_high"} <= set(g.columns) and g["ci_low"].notna().any():
            ax.fill_between(g["k"], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.2)
    if reference is not None:
        for name, g in reference.groupby("scorer"):
            g = g.sort_values("k")
            dotted = "gender" in str(name)
            ax.plot(g["k"], g["value"], linestyle=":" if dotted else "--", linewidth=1.2,
                    color="k" if dotted else None, label=name)
    ax.set_xlabel("k (candidates)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("1:k matching (Fig. 5)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
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
