"""Does an ablation row differ from its reference row, and does the paper's claim for it hold?

Each of Tables V-XII compares variants against the paper's chosen one (its reference row: DSANet
in Tables V, VII, XI; AMCE, SAGAN and the structured metric in VIII, IX, X; one DEM layer in VI;
the chosen value of each hyper-parameter in XII). For every (row, column) we compute the
difference to the reference row over training seeds and its 95% interval:

* several seeds: Welch's t interval of the difference of the two rows' seed means;
* one seed: the two runs' bootstrap half-widths (over test tuples) added in quadrature.

The paper's claim for a row is the sign of its printed difference to the reference row. The
verdict is ``holds`` when our interval excludes 0 on the paper's side, ``fails`` when it excludes 0
on the other side, and ``unresolved`` when it contains 0 (``resolvable`` gives the half-width: the
smallest difference this benchmark, test split and number of seeds can tell from noise).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

# the row each table's other rows are compared with (the paper's chosen variant)
REFERENCE = {"V": "g", "VI": "1-layer DEM", "VII": "SAS subtle + salient", "VIII": "AMCE",
             "IX": "SAGAN", "X": "Structure Metric", "XI": "g"}


def reference_row(table: str, row: str, defaults: dict | None = None) -> str | None:
    """The row ``row`` of ``table`` is compared with; Table XII: the same symbol at its default.

    ``defaults``: the paper symbol -> chosen value (Table XII's ``chosen`` settings), e.g.
    ``{"lambda": 2.0}``; a row "lambda=1.5" is then compared with "lambda=2".
    """
    if table != "XII":
        return REFERENCE.get(table)
    symbol = row.split("=", 1)[0]
    if not defaults or symbol not in defaults:
        return None
    return f"{symbol}={defaults[symbol]:g}"


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean difference a - b and the half-width of its 95% Welch interval."""
    from scipy import stats

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return float(a.mean() - b.mean()), 0.0
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(a.mean() - b.mean()), float(stats.t.ppf(0.975, dof) * se)


def difference(row: pd.DataFrame, ref: pd.DataFrame) -> tuple[float, float]:
    """(difference, half-width) of one cell against its reference cell from per-seed records
    (columns value, ci_low, ci_high; percent)."""
    a, b = row["value"].to_numpy(float), ref["value"].to_numpy(float)
    if len(a) >= 2 and len(b) >= 2:
        return _welch(a, b)
    half = lambda g: float((g["ci_high"] - g["ci_low"]).iloc[0]) / 2            # noqa: E731
    return float(a.mean() - b.mean()), math.hypot(half(row), half(ref))


def verdict(diff: float, half: float, paper_diff: float) -> str:
    """"holds" / "fails" / "unresolved" / "no claim" (see the module docstring)."""
    if not np.isfinite(paper_diff) or paper_diff == 0:
        return "no claim"
    if not np.isfinite(diff) or abs(diff) <= half:
        return "unresolved"
    return "holds" if np.sign(diff) == np.sign(paper_diff) else "fails"


def compare(table: str, runs: pd.DataFrame, cells: pd.DataFrame,
            defaults: dict | None = None) -> pd.DataFrame:
    """Per (scorer, row, column): ``reference``, ``diff``, ``half``, ``differs``, ``paper_diff``,
    ``verdict``, ``resolvable``.

    ``runs``: per-seed records (scorer, row, column, seed, value, ci_low, ci_high) as
    :func:`dsanet.experiments.run_table` collects them; ``cells``: its reduced cells with the
    paper's number (``paper``).
    """
    paper = cells.drop_duplicates(["row", "column"]).set_index(["row", "column"])["paper"]
    out = []
    for (scorer, row, column), g in runs.groupby(["scorer", "row", "column"], sort=False):
        ref = reference_row(table, row, defaults)
        base = runs[(runs["scorer"] == scorer) & (runs["row"] == ref) & (runs["column"] == column)]
        if ref is None or ref == row or base.empty:
            continue
        diff, half = difference(g, base)
        p = paper.get((row, column), np.nan) - paper.get((ref, column), np.nan)
        out.append({"scorer": scorer, "row": row, "column": column, "reference": ref,
                    "diff": diff, "half": half, "differs": abs(diff) > half,
                    "paper_diff": p, "verdict": verdict(diff, half, p), "resolvable": half})
    return pd.DataFrame(out)


def summary_line(comparison: pd.DataFrame, scorer: str = "distance") -> str:
    """One sentence: how many rows differ from the reference and how many claims hold or fail."""
    c = comparison[comparison["scorer"] == scorer] if len(comparison) else comparison
    if c.empty:
        return "no row to compare"
    counts = c["verdict"].value_counts()
    return (f"{int(c['differs'].sum())} of {len(c)} cells differ from their reference row beyond "
            f"the 95% interval; the paper's claims: {int(counts.get('holds', 0))} hold, "
            f"{int(counts.get('fails', 0))} fail, {int(counts.get('unresolved', 0))} cannot be "
            f"resolved (smallest resolvable difference here {c['resolvable'].min():.1f} points, "
            f"median {c['resolvable'].median():.1f})")


__all__ = ["REFERENCE", "compare", "difference", "reference_row", "summary_line", "verdict"]
