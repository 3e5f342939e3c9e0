"""Reading a table's cells from a run's tidy metrics (and its per-identity values), reducing them
over seeds (mean and 95% interval), with the paper's numbers on the same row/column names.
(Comparisons of a row against its table's reference row are :mod:`dsanet.claims`.)

With per-identity values (``Run.identity``) a cell's interval covers training seeds and test
identities (:func:`reduce_identity_cells`, :func:`dsanet.claims.cell_intervals`); runs without
them fall back to :func:`reduce_cells` (Student t over seeds; one seed: the run's bootstrap).
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


def read_identity(identity: pd.DataFrame | None, select: dict) -> pd.DataFrame | None:
    """The per-identity values behind the cell :func:`read_cell` reads with ``select`` (same
    filters, same classifier -> distance fallback): columns identity, value (fraction), weight;
    None when the run has no per-identity values for it (``identity`` None: an older run)."""
    if identity is None or not len(identity):
        return None
    m = identity
    for key, val in select.items():
        if key != "scorer" and key in m.columns:
            m = m[m[key] == val]
    if "scorer" in select and "scorer" in m.columns and not m.empty:
        pick = m[m["scorer"] == select["scorer"]]
        m = pick if len(pick) else m[m["scorer"] == "distance"]
        if m.empty:
            return None
    if m.empty:
        return None
    return m.drop_duplicates("identity")[["identity", "value", "weight"]].reset_index(drop=True)


def identity_records(run, select: dict, value: float | None = None, /, **labels) -> pd.DataFrame:
    """Per-identity records (value in percent) of one run's cell for :mod:`dsanet.claims`, with
    ``labels`` (scorer, row, column, seed, ...) as columns. A run without per-identity values
    gives one line, identity NaN, its cell value (``value``, a fraction, else read here)."""
    got = read_identity(getattr(run, "identity", None), select)
    if got is None:
        v = read_cell(run.metrics, select)[0] if value is None else value
        got = pd.DataFrame({"identity": [np.nan], "value": [float(v)], "weight": [1.0]})
    got = got.assign(value=100 * got["value"].astype(float), weight=got["weight"].astype(float))
    return got.assign(**labels)[[*labels, "identity", "value", "weight"]]


def reduce_identity_cells(records: pd.DataFrame, runs: pd.DataFrame,
                          prior: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (scorer, row, column): mean over seeds and 95% interval - over seeds and test
    identities (:func:`dsanet.claims.cell_intervals`) for the cells whose every run has
    per-identity values, else :func:`reduce_cells` of the per-seed ``runs``. Ordered as ``runs``."""
    from ..claims import cell_intervals

    keys = [k for k in ("scorer", "row", "column") if k in runs.columns]
    full = records.groupby(keys, sort=False)["identity"].apply(lambda s: bool(s.notna().all()))
    parts = []
    if full.any():
        keep = records.set_index(keys).index.isin(full[full].index)
        parts.append(cell_intervals(records[keep], prior=prior))
    if not full.all():
        old = runs.set_index(keys).index.isin(full[~full].index)
        parts.append(reduce_cells(runs[old]))
    out = pd.concat(parts, ignore_index=True)
    order = {k: i for i, k in enumerate(dict.fromkeys(map(tuple, runs[keys].to_numpy())))}
    out["_o"] = [order.get(tuple(k), len(order)) for k in out[keys].to_numpy()]
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


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
