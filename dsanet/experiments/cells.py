"""Reading a table's cells from a run's tidy metrics and reducing them over seeds (mean and 95%
interval), with the paper's numbers on the same row/column names. (Comparisons of a row against
its table's reference row are :mod:`dsanet.claims`.)
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .tables import get_table

def read_cell(metrics: pd.DataFrame, select: dict) -> tuple[float, float, float]:
    """(value, ci_low, ci_high) of the one row of ``metrics`` matching ``select``.

    A ``scorer`` of "classifier" falls back to "distance" where the classifier was not evaluated
    (k other than the run's).
    """
    m = metrics
    for key, val in select.items():
        if key == "scorer":
            continue
        m = m[m[key] == val]
    if "scorer" in select and not m.empty:
        pick = m[m["scorer"] == select["scorer"]]
        m = pick if len(pick) else m[m["scorer"] == "distance"]
    if m.empty:
        raise KeyError(f"no metric row matches {select}")
    r = m.iloc[0]
    return float(r["value"]), float(r.get("ci_low", np.nan)), float(r.get("ci_high", np.nan))


def t_interval(values) -> tuple[float, float, float]:
    """Mean and two-sided 95% Student-t interval of ``values`` (n >= 2)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = v.size
    mean = float(v.mean())
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def reduce_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Per ([scorer,] row, column): mean and 95% CI over seeds; one seed: the run's bootstrap CI."""
    keys = [k for k in ("scorer", "row", "column") if k in cells.columns]
    out = []
    for key, g in cells.groupby(keys, sort=False):
        if len(g) >= 2:
            mean, lo, hi = t_interval(g["value"])
            kind = f"t, {len(g)} seeds"
        else:
            mean, lo, hi = (float(g["value"].iloc[0]), float(g["ci_low"].iloc[0]),
                            float(g["ci_high"].iloc[0]))
            kind = "bootstrap, 1 seed"
        out.append({**dict(zip(keys, key)), "mean": mean, "ci_low": lo, "ci_high": hi,
                    "ci": kind, "n_seeds": len(g), "values": " ".join(f"{v:.4f}" for v in g["value"])})
    return pd.DataFrame(out)


def paper_numbers(table: str) -> pd.DataFrame:
    """The paper's numbers for ``table`` as (row, column, paper) in percent; empty if unknown."""
    from ..paper import table as paper_table   # (``dsanet.paper`` the name is also a profile)

    return _paper_long(table, paper_table(get_table(table).name))


def _paper_long(table: str, wide: pd.DataFrame) -> pd.DataFrame:
    """Melt the paper's wide table to (row, column, paper) on this module's row/column names."""
    t = get_table(table)
    wide = wide.copy()
    if "row" in wide.columns:
        wide = wide.set_index("row")
    wide.index = wide.index.map(str)
    rows = []
    for row, _ in t.rows:
        for col in t.columns:
            val = np.nan
            if row in wide.index and col.key in wide.columns:
                val = float(wide.loc[row, col.key])
            rows.append({"row": row, "column": col.name, "paper": val})
    return pd.DataFrame(rows)
