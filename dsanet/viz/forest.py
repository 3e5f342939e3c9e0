"""Forest plot of a table's comparisons with its reference row (notebooks 04 and 06): each row's
difference with its corrected 95% interval, the paper's difference as a marker, the ±1-point band
of "no effect", coloured by verdict (:mod:`dsanet.claims`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .style import BLUE, GREY, RED

VERDICT_COLORS = {"reproduced": "#2ca02c", "contradicted": RED, "no effect": BLUE,
                  "unresolved": GREY, "no claim": "#bcbd22"}
_MARKERS = ("o", "s", "^", "D")


def forest(comparison: pd.DataFrame, title: str | None = None, band: float = 1.0) -> plt.Figure:
    """One panel per column, one line per (row, scorer): ``diff`` with [``lo``, ``hi``] (the
    corrected interval), the paper's difference (``paper_diff``, black cross), 0 and the ±``band``
    band, colour by ``verdict``.

    ``comparison``: :func:`dsanet.claims.compare`'s frame (columns scorer, row, column, reference,
    diff, lo, hi, paper_diff, verdict; [metric]). Save with :func:`dsanet.viz.save`, e.g. as
    ``04_table_<N>_forest``.
    """
    c = comparison.copy()
    if "metric" in c.columns and c["metric"].nunique() > 1:
        c["panel"] = c["column"] + np.where(c["metric"] == "map", " (mAP)", "")
    else:
        c["panel"] = c["column"]
    panels = list(dict.fromkeys(c["panel"]))
    scorers = list(dict.fromkeys(c["scorer"]))
    refs = c["reference"].unique()
    c["label"] = c["row"] if len(refs) == 1 else c["row"] + " vs " + c["reference"]
    labels = list(dict.fromkeys(c["label"]))
    height = 1.2 + 0.32 * len(labels) * max(1, len(scorers)) ** 0.5
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels) + 1.2, height),
                             sharey=True, squeeze=False)
    step = 0.6 / max(1, len(scorers))
    offset = {s: (i - (len(scorers) - 1) / 2) * step for i, s in enumerate(scorers)}
    for ax, panel in zip(axes[0], panels):
        g = c[c["panel"] == panel]
        ax.axvspan(-band, band, color=GREY, alpha=0.12, lw=0)
        ax.axvline(0, color="k", lw=0.8)
        for r in g.itertuples(index=False):
            y = labels.index(r.label) + offset[r.scorer]
            color = VERDICT_COLORS.get(r.verdict, "k")
            if np.isfinite(r.lo) and np.isfinite(r.hi):
                ax.plot([r.lo, r.hi], [y, y], color=color, lw=1.6, solid_capstyle="butt")
            ax.plot(r.diff, y, marker=_MARKERS[scorers.index(r.scorer) % len(_MARKERS)],
                    color=color, ms=4.5, ls="none")
            if np.isfinite(r.paper_diff):
                ax.plot(r.paper_diff, y, marker="x", color="k", ms=5, ls="none")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("difference to the reference (points)")
    ax0 = axes[0][0]
    ax0.set_yticks(range(len(labels)))
    ax0.set_yticklabels(labels, fontsize=8)
    ax0.set_ylim(len(labels) - 0.5, -0.5)
    handles = [Line2D([], [], color=col, lw=2, label=v) for v, col in VERDICT_COLORS.items()
               if v in set(c["verdict"])]
    handles += [Line2D([], [], color="k", marker=_MARKERS[i % len(_MARKERS)], ls="none",
                       label=s) for i, s in enumerate(scorers)]
    handles.append(Line2D([], [], color="k", marker="x", ls="none", label="paper"))
    handles.append(plt.Rectangle((0, 0), 1, 1, color=GREY, alpha=0.12, label=f"±{band:g} point"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1),
                       frameon=False)
    ref = f" (vs {refs[0]})" if len(refs) == 1 else ""
    fig.suptitle((title or "Differences to the reference row") + ref
                 + "; corrected 95% intervals", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["VERDICT_COLORS", "forest"]
