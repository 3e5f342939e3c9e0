"""Figure of notebook 06 (results, paper Fig. 5): 1:k matching accuracy against k per direction
and model, with confidence bands and reference scorers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


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
