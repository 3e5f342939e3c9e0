"""Does an ablation row differ from its reference row, and does the paper's claim for it hold?

Each of Tables V-XII compares variants against the paper's chosen one (its reference row: DSANet
in Tables V, VII, XI; AMCE, SAGAN and the structured metric in VIII, IX, X; one DEM layer in VI;
the chosen value of each hyper-parameter in XII); Table IV compares the two-tower baseline and
the published script with DSANet (:func:`compare_table_iv`).

**Estimate.** A row's value in a cell is the mean over its training seeds of the run's cell value
(the identity-weighted mean of its per-identity values); a difference is row minus reference.

**Interval: seeds and test identities.** The test identities are a sample of a population, and
each row's seeds a sample of its runs. The two rows are paired by test identity (the same
identities, the same resample for both) and independent in their seeds. The variance of a
difference (:mod:`dsanet.stats`) is

    seed part of each row:  var over its seeds of its per-seed cell values / n_seeds
  + identity part:          weighted var over identities of the per-identity difference of the
                            two rows' seed means / n_identities, minus the seed x identity noise
                            the seed parts already hold (estimated from the residuals), >= 0,

with a Student-t reference of Welch-Satterthwaite dof (uncorrected 95% interval: ``lo_raw``,
``hi_raw``). Each row uses its own seed variance (valid when rows' seed variances differ, as they
do: DSANet's is often the largest); a row with one seed borrows the pooled seed variance of the
rows with >= 2 seeds of its column (``note`` says so), else a ``prior`` (e.g. from the other
tables: :func:`pooled_seed_variance`), else it has no interval (``unresolved``).

**Multiple comparisons.** Within each (table, scorer) family, one single-step simultaneous
max-|t| procedure (Dunnett-style many-to-one): one critical value ``crit`` such that all the
family's intervals ``diff ± crit * se`` hold together with probability 95%, calibrated by a
parametric bootstrap of the studentised differences that keeps their dependence (numerators
correlated through the shared reference row and the paired identities; denominators sharing
the reference row's seed-variance estimate). Different columns are treated as independent
(Sidak's inequality: conservative). ``lo``, ``hi`` are these corrected intervals and the verdict
reads them, so the two always agree. ``mode="pooled"`` (one seed variance pooled over a column's
rows, classic Dunnett) is ~30% narrower at 3 seeds but valid only when the rows' seed variances
are equal; ``method="bonferroni"`` is the simpler, wider alternative.

Simulated (154 identities, seed sd 1.2 + seed x identity sd 8 + row x identity sd 1.5 points;
tests/test_claims.py, 20,000 / 3,000 replicates): coverage of the uncorrected 95% interval 0.960
(3 seeds) and 0.953 (5 seeds); family-wise error of 12 true nulls (6 rows x 2 columns against a
reference) 0.042 (3 seeds) and 0.045 (5 seeds), 0.051 +- 0.004 with a reference row of twice
the seed sd (where "pooled" gives 0.12-0.16); an A/A pair (3 + 3 seeds) decisive 4.5%.

**Verdicts** (per comparison; ``band`` = 1 point, ``min_claim`` = 0.3 point):

* ``no claim``: the paper gives no number for the pair, or a difference below its own rounding
  (|paper_diff| < 0.3);
* ``reproduced``: the corrected interval excludes 0 on the paper's side;
* ``contradicted``: it excludes 0 on the other side;
* ``no effect``: it lies inside ±1 point while the paper claims at least 1 point;
* ``unresolved``: otherwise.

"±" means one thing everywhere in the reports: the half-width of a 95% interval that covers
both the training seeds and the test identities; beside a difference to the reference row it is
the family-corrected (simultaneous) one.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats

# the row each table's other rows are compared with (the paper's chosen variant)
REFERENCE = {"V": "g", "VI": "1-layer DEM", "VII": "SAS subtle + salient", "VIII": "AMCE",
             "IX": "SAGAN", "X": "Structure Metric", "XI": "g"}
# Table IV: the rows compared with DSANet (the reference of the same scorer)
IV_REFERENCES = {
    "two-tower InfoNCE baseline (distance)": "DSANet (ours, distance)",
    "published script (distance, val-selected)": "DSANet (ours, distance)",
    "published script (classifier, test-selected)": "DSANet (ours, classifier)",
}
BAND = 1.0          # points: "no effect" when the corrected interval lies inside ±BAND
MIN_CLAIM = 0.3     # points: a paper difference below its own rounding is no claim
DECISIVE = ("reproduced", "contradicted")
VERDICTS = ("reproduced", "contradicted", "no effect", "unresolved", "no claim")
ALPHA = 0.05
KEYS = ["scorer", "row", "column"]
VERDICT_COLUMNS = ["table", "row", "column", "scorer", "n_seeds", "ours", "ref", "diff", "lo",
                   "hi", "paper_diff", "verdict"]
_BINARY = {"V-F", "F-V", "vf", "fv"}


def reference_row(table: str, row: str, defaults: dict | None = None) -> str | None:
    """The row ``row`` of ``table`` is compared with; Table XII: the same symbol at its default.

    ``defaults``: the paper symbol -> chosen value (Table XII's ``chosen`` settings), e.g.
    ``{"lambda": 2.0}``; a row "lambda=1.5" is then compared with "lambda=2".
    """
    if table == "IV":
        return IV_REFERENCES.get(row)
    if table != "XII":
        return REFERENCE.get(table)
    symbol = row.split("=", 1)[0]
    if not defaults or symbol not in defaults:
        return None
    return f"{symbol}={defaults[symbol]:g}"


def verdict(lo: float, hi: float, paper_diff: float, band: float = BAND,
            min_claim: float = MIN_CLAIM) -> str:
    """The verdict of a comparison from its corrected interval [lo, hi] (module docstring)."""
    if not np.isfinite(paper_diff) or abs(paper_diff) < min_claim:
        return "no claim"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "unresolved"
    if lo > 0 or hi < 0:
        return "reproduced" if (lo > 0) == (paper_diff > 0) else "contradicted"
    if -band <= lo and hi <= band and abs(paper_diff) >= band:
        return "no effect"
    return "unresolved"


# ----------------------------------------------------------------------------- per-identity data

def _group_keys(records: pd.DataFrame) -> list[str]:
    return ["column"] + (["metric"] if "metric" in records.columns else [])


def _collapse(g: pd.DataFrame) -> pd.DataFrame:
    """Each run's cell value as one pseudo-identity (runs without per-identity values)."""
    w = g["weight"].fillna(1.0).astype(float)
    c = g.assign(_wv=g["value"] * w, _w=w).groupby(["row", "seed"], sort=False)[["_wv", "_w"]]
    c = c.sum().reset_index()
    return c.assign(identity=-1, value=c["_wv"] / c["_w"], weight=1.0)[
        ["row", "seed", "identity", "value", "weight"]]


def _summaries(g: pd.DataFrame) -> tuple[list[str], list[stats.Summary], int, str]:
    """Per row of one (scorer, column) group: its :class:`stats.Summary` over the identities
    every run of the group has (all runs collapsed to their cell values if some lack them)."""
    note = ""
    ids = g.groupby(["row", "seed"], sort=False)["identity"].apply(lambda s: frozenset(s.dropna()))
    common = frozenset.intersection(*ids) if len(ids) else frozenset()
    if g["identity"].isna().any() or (-1 in common) or not common:
        if g["identity"].notna().any() and not (ids.map(len) == 1).all():
            note = "some runs lack per-identity values: seed part only"
        g = _collapse(g)
        common = frozenset([-1])
    elif any(len(s) > len(common) for s in ids):
        note = f"identity part over the {len(common)} identities every run has"
    g = g[g["identity"].isin(common)]
    order = sorted(common)
    names, rows = [], []
    for row, r in g.groupby("row", sort=False):
        piv = r.pivot_table(index="seed", columns="identity", values="value", aggfunc="mean")
        wts = r.pivot_table(index="seed", columns="identity", values="weight", aggfunc="sum")
        rows.append(stats.summarise(piv[order].to_numpy(float), wts[order].to_numpy(float)))
        names.append(row)
    if len(order) == 1 and not note:
        note = "no per-identity values: seed part only"
    return names, rows, len(order), note


def _prior(prior, scorer: str, key: dict):
    """(variance, dof) of ``prior`` (a :func:`pooled_seed_variance` frame) for a group."""
    if prior is None or not len(prior):
        return None
    p = prior
    for k, v in {"scorer": scorer, **key}.items():
        if k in p.columns:
            p = p[p[k] == v]
    return (float(p["var"].iloc[0]), float(p["dof"].iloc[0])) if len(p) else None


def _paper_lookup(paper: pd.DataFrame | None):
    if paper is None or not len(paper):
        return {}
    p = paper.dropna(subset=["paper"]).drop_duplicates(["row", "column"])
    return {(r, c): float(v) for r, c, v in zip(p["row"], p["column"], p["paper"])}


# ----------------------------------------------------------------------------- comparisons

def compare(table: str, records: pd.DataFrame, paper: pd.DataFrame | None = None,
            defaults: dict | None = None, references: dict | None = None, mode: str = "row",
            method: str = "maxt", prior: pd.DataFrame | None = None, alpha: float = ALPHA,
            paper_diff: dict | None = None, draws: int = 50_000, seed: int = 0) -> pd.DataFrame:
    """Each row against its reference row, per (scorer, row, column): one line per comparison.

    ``records``: per-run, per-identity values, columns scorer, row, column, seed, identity, value
    (percent), weight [, metric, k, run]; a run without per-identity values has one line with
    identity NaN (its cell value). ``paper``: (row, column, paper) in percent (e.g. the table's
    cells); ``defaults``: Table XII's chosen settings; ``references``: row -> reference row
    (default :func:`reference_row`); ``paper_diff``: {(row, column): claimed difference} where
    the paper's own rows do not give it. ``mode``: each row's own seed variance ("row") or the
    pooled one ("pooled", valid only for equal seed variances); ``method``: "maxt" or
    "bonferroni"; ``prior``: seed variances for groups with one seed per row.

    Columns: table, scorer, row, column, [metric, k,] reference, n_seeds, n_seeds_ref,
    n_identities, ours, ref, diff, se, dof, lo_raw, hi_raw, half_raw (uncorrected 95%), crit,
    lo, hi, half (corrected 95%), differs, paper_diff, verdict, binary, seed_var, identity_var,
    correction, note.
    """
    if records is None or not len(records):
        return pd.DataFrame()
    records = records.copy()
    if "weight" not in records.columns:
        records["weight"] = 1.0
    gk = _group_keys(records)
    claimed = _paper_lookup(paper)
    ref_of = references.get if references is not None else \
        (lambda r: reference_row(table, r, defaults))
    col_order = list(dict.fromkeys(records["column"]))
    row_order = list(dict.fromkeys(records["row"]))
    out = []
    for scorer, fam in records.groupby("scorer", sort=False):
        lines, parts = [], []
        for key, g in fam.groupby(gk, sort=False):
            key = dict(zip(gk, key if isinstance(key, tuple) else (key,)))
            names, rows, m, note = _summaries(g)
            pairs = [(names.index(r), names.index(ref_of(r))) for r in names
                     if ref_of(r) in names and ref_of(r) != r]
            if not pairs:
                continue
            est = stats.contrasts(rows, pairs, mode, _prior(prior, scorer, key), names)
            parts.append(est)
            extra = {c: g[c].iloc[0] for c in ("k",) if c in g.columns}
            for k, (a, b) in enumerate(pairs):
                row, ref = names[a], names[b]
                pd_ = (paper_diff or {}).get((row, key["column"]),
                                             claimed.get((row, key["column"]), np.nan)
                                             - claimed.get((ref, key["column"]), np.nan))
                lines.append({"table": table, "scorer": scorer, "row": row, **key, **extra,
                              "reference": ref, "n_seeds": rows[a].n, "n_seeds_ref": rows[b].n,
                              "n_identities": m, "ours": float(rows[a].est),
                              "ref": float(rows[b].est), "diff": float(est.est[k]),
                              "se": float(np.sqrt(est.var[k])), "dof": float(est.dof[k]),
                              "paper_diff": float(pd_), "seed_var": float(est.seed[k]),
                              "identity_var": float(est.ident[k]),
                              "note": "; ".join(x for x in (note, est.notes[k]) if x)})
        if not parts:
            continue
        family = stats.stack(parts)
        crit = stats.simultaneous_critical(family, alpha, method, draws, seed)
        t = stats.t_quantile(family.dof, 1 - alpha)
        for line, tk in zip(lines, t):
            se = line["se"]
            line.update(lo_raw=line["diff"] - tk * se, hi_raw=line["diff"] + tk * se,
                        half_raw=tk * se, crit=crit, lo=line["diff"] - crit * se,
                        hi=line["diff"] + crit * se, half=crit * se,
                        correction=f"{method}, {len(lines)} comparisons ({table}, {scorer})")
            line["differs"] = bool(line["lo"] > 0 or line["hi"] < 0)
            line["verdict"] = verdict(line["lo"], line["hi"], line["paper_diff"])
            line["binary"] = _is_binary(line)
        out += lines
    if not out:
        return pd.DataFrame()
    df = pd.DataFrame(out)
    df["_r"] = df["row"].map(row_order.index)
    df["_c"] = df["column"].map(col_order.index)
    df = df.sort_values(["scorer", "_c", "_r"], kind="stable").drop(columns=["_r", "_c"])
    first = ["table", "scorer", "row", "column", *[c for c in ("metric", "k") if c in df],
             "reference", "n_seeds", "n_seeds_ref", "n_identities", "ours", "ref", "diff", "se",
             "dof", "lo_raw", "hi_raw", "half_raw", "crit", "lo", "hi", "half", "differs",
             "paper_diff", "verdict", "binary", "seed_var", "identity_var", "correction", "note"]
    return df[first].reset_index(drop=True)


def _is_binary(line: dict) -> bool:
    if line.get("metric", "acc") != "acc":
        return False
    if "k" in line and pd.notna(line["k"]):
        return int(line["k"]) == 2
    return line["column"] in _BINARY


def compare_table_iv(records: pd.DataFrame, references: dict | None = None,
                     paper_diff: dict | None = None, **kw) -> pd.DataFrame:
    """Table IV's comparisons: the two-tower baseline and the published-script rows against
    DSANet of the same scorer (:data:`IV_REFERENCES`), from per-identity records of the Table IV
    runs (columns scorer, row, column, seed, identity, value, weight; rows labelled as in
    ``dsanet.analysis.IV_ROWS``). The paper has no number for these rows: ``no claim`` unless
    ``paper_diff`` {(row, column): difference} says otherwise. A published-script row has one
    seed: it borrows the pooled seed variance of its column (``note``)."""
    return compare("IV", records, None, references=references or IV_REFERENCES,
                   paper_diff=paper_diff, **kw)


def aa_check(records: pd.DataFrame, row: str, seeds_a=None, seeds_b=None,
             paper_diff: float = 2.0, **kw) -> pd.DataFrame:
    """The A/A check: one row's runs split into two pseudo-rows of disjoint seeds ("A", "B"),
    compared as if the paper claimed ``paper_diff``: honest machinery says ``no effect`` or
    ``unresolved`` (decisive at most at the nominal rate). Default split: first half of the
    seeds against the rest."""
    r = records[records["row"] == row]
    seeds = sorted(r["seed"].unique())
    seeds_a = list(seeds[: len(seeds) // 2]) if seeds_a is None else list(seeds_a)
    seeds_b = [s for s in seeds if s not in seeds_a] if seeds_b is None else list(seeds_b)
    if set(seeds_a) & set(seeds_b):
        raise ValueError("the two halves of an A/A check must have disjoint seeds")
    both = pd.concat([r[r["seed"].isin(seeds_a)].assign(row="A"),
                      r[r["seed"].isin(seeds_b)].assign(row="B")], ignore_index=True)
    claims = {("A", c): paper_diff for c in both["column"].unique()}
    return compare("A/A", both, references={"A": "B"}, paper_diff=claims, **kw)


# ----------------------------------------------------------------------------- cells

def cell_intervals(records: pd.DataFrame, mode: str = "row", prior: pd.DataFrame | None = None,
                   level: float = 0.95) -> pd.DataFrame:
    """Per (scorer, row, column): the mean over seeds of the cell value with its 95% interval
    (uncorrected) covering seeds and test identities, as for a difference but for the level.

    Columns scorer, row, column, [metric,] mean, ci_low, ci_high, ci, n_seeds, n_identities,
    values (per-seed cell values), dof, seed_var, identity_var, note.
    """
    records = records.copy()
    if "weight" not in records.columns:
        records["weight"] = 1.0
    gk = _group_keys(records)
    out = []
    for scorer, fam in records.groupby("scorer", sort=False):
        for key, g in fam.groupby(gk, sort=False):
            key = dict(zip(gk, key if isinstance(key, tuple) else (key,)))
            names, rows, m, note = _summaries(g)
            lev = stats.levels(rows, mode, _prior(prior, scorer, key), names)
            t = stats.t_quantile(lev.dof, level)
            for j, (name, r) in enumerate(zip(names, rows)):
                half = float(t[j] * math.sqrt(lev.var[j])) if np.isfinite(lev.var[j]) else np.nan
                mean = float(r.est)
                kind = f"t, {r.n} seed{'s' * (r.n > 1)}" + (f" x {m} identities" if m > 1 else "")
                out.append({"scorer": scorer, "row": name, **key, "mean": mean,
                            "ci_low": mean - half, "ci_high": mean + half, "ci": kind,
                            "n_seeds": r.n, "n_identities": m,
                            "values": " ".join(f"{v:.4f}" for v in np.atleast_1d(r.cell)),
                            "dof": float(lev.dof[j]), "seed_var": float(lev.seed[j]),
                            "identity_var": float(lev.ident[j]),
                            "note": "; ".join(x for x in (note, lev.notes[j]) if x)})
    return pd.DataFrame(out)


def pooled_seed_variance(records: pd.DataFrame) -> pd.DataFrame:
    """Per (scorer, column[, metric]): the pooled variance over seeds of the per-seed cell
    values of every (table, row) with >= 2 seeds (a set of runs counted once), and its dof - a
    ``prior`` for tables with one seed per row (Table XII)."""
    gk = ["scorer", *_group_keys(records)]
    by = [c for c in ("table", "row") if c in records.columns]
    w = records["weight"].fillna(1.0) if "weight" in records.columns else 1.0
    r = records.assign(_wv=records["value"] * w, _w=w)
    runs = r.groupby([*gk, *by, "seed"], sort=False)[["_wv", "_w"]].sum().reset_index()
    runs["cell"] = runs["_wv"] / runs["_w"]
    if "run" in records.columns:
        names = records.groupby([*gk, *by, "seed"], sort=False)["run"].first().reset_index()
        runs = runs.merge(names, on=[*gk, *by, "seed"])
    out = []
    for key, g in runs.groupby(gk, sort=False):
        seen, ss, dof = set(), 0.0, 0
        for _, rr in g.groupby(by, sort=False):
            ident = frozenset(rr["run"]) if "run" in rr else None
            if len(rr) < 2 or (ident is not None and ident in seen):
                continue
            seen.add(ident)
            ss += float(((rr["cell"] - rr["cell"].mean()) ** 2).sum())
            dof += len(rr) - 1
        if dof:
            out.append({**dict(zip(gk, key)), "var": ss / dof, "dof": dof})
    return pd.DataFrame(out, columns=[*gk, "var", "dof"])


# ----------------------------------------------------------------------------- outputs

_TABLE_ORDER = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


def write_verdicts(frames, path: str | Path) -> Path:
    """Write (or update) ``verdicts.csv``: one line per comparison, :data:`VERDICT_COLUMNS`
    first. ``frames``: comparison frames (:func:`compare`), or a dict table name -> frame; the
    tables they hold replace those already in the file, the others are kept."""
    path = Path(path)
    if isinstance(frames, dict):
        frames = [f.assign(table=name) for name, f in frames.items() if len(f)]
    frames = [f for f in frames if f is not None and len(f)]
    new = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=VERDICT_COLUMNS)
    if path.exists():
        old = pd.read_csv(path)
        old["table"] = old["table"].astype(str)
        new = pd.concat([old[~old["table"].isin(set(new["table"].astype(str)))], new],
                        ignore_index=True)
    order = {t: i for i, t in enumerate(_TABLE_ORDER)}
    new = new.assign(_t=new["table"].astype(str).map(lambda t: order.get(t, len(order))))
    new = new.sort_values("_t", kind="stable").drop(columns="_t")
    cols = VERDICT_COLUMNS + [c for c in new.columns if c not in VERDICT_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    new[cols].to_csv(path, index=False)
    return path


def verdict_counts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per table: the count of each verdict, the comparisons, and the median half-width of the
    corrected interval of its binary comparisons (``median_half_binary``, points)."""
    rows = []
    for table, g in verdicts.groupby(verdicts["table"].astype(str), sort=False):
        counts = g["verdict"].value_counts()
        binary = g[g["binary"].astype(bool)] if "binary" in g else g
        rows.append({"table": table, **{v: int(counts.get(v, 0)) for v in VERDICTS},
                     "comparisons": len(g), "median_half_binary": float(binary["half"].median())
                     if len(binary) else np.nan})
    return pd.DataFrame(rows)


def summary_line(comparison: pd.DataFrame, scorer: str | None = None) -> str:
    """One sentence: the verdicts of a table's comparisons (of ``scorer``) and their widths."""
    c = comparison
    if scorer is not None and len(c):
        c = c[c["scorer"] == scorer]
    if not len(c):
        return "no row to compare"
    counts = c["verdict"].value_counts()
    parts = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    binary = c[c["binary"].astype(bool)] if "binary" in c else c
    width = (f"; median ± of the binary differences {binary['half'].median():.1f} points "
             f"(corrected, {c['correction'].iloc[0]})" if len(binary) and "correction" in c else "")
    return f"{len(c)} comparisons with the reference row: {parts}{width}"


def summary_lines(verdicts: pd.DataFrame, titles: dict | None = None) -> list[str]:
    """README lines: the meaning of "±" once, then one line per table (verdict counts, median
    half-width of its binary comparisons, what it shows)."""
    lines = ["- \"±\" is everywhere the half-width of a 95% interval covering training seeds and "
             "test identities; beside a difference to the reference row it is corrected for "
             "the table's comparisons (single-step max-|t|, per table and scorer, "
             "`dsanet/claims.py`). Verdicts: reproduced / contradicted (the corrected interval "
             "excludes 0 on the paper's side / the other), no effect (inside ±1 point where the "
             "paper claims >= 1), unresolved, no claim (the paper's difference < 0.3 or none)."]
    for r in verdict_counts(verdicts).itertuples(index=False):
        g = verdicts[verdicts["table"].astype(str) == r.table]
        counts = ", ".join(f"{int(g['verdict'].eq(v).sum())} {v}" for v in VERDICTS)
        title = f" ({titles[r.table]})" if titles and r.table in titles else ""
        half = f"{r.median_half_binary:.1f}" if np.isfinite(r.median_half_binary) else "-"
        lines.append(f"- Table {r.table}{title}: {r.comparisons} comparisons: {counts}; median ± "
                     f"of binary differences {half} points. {_shows(g)}")
    return lines


def _shows(g: pd.DataFrame) -> str:
    """What a table's comparisons show, in one sentence."""
    n = len(g)
    decisive = g[g["verdict"].isin(DECISIVE)]
    claims = g[g["verdict"] != "no claim"]
    if not len(claims):
        return "The paper makes no claim here that its rounding can carry."
    rep = int((decisive["verdict"] == "reproduced").sum())
    con = int((decisive["verdict"] == "contradicted").sum())
    noe = int((g["verdict"] == "no effect").sum())
    if rep + con + noe == 0:
        return (f"At this size none of the paper's {len(claims)} claims can be told from noise "
                f"(of {n} comparisons).")
    return (f"Of the paper's {len(claims)} claims, {rep} reproduced, {con} contradicted, {noe} "
            f"shown to be under 1 point.")


__all__ = ["ALPHA", "BAND", "DECISIVE", "IV_REFERENCES", "MIN_CLAIM", "REFERENCE",
           "VERDICTS", "VERDICT_COLUMNS", "aa_check", "cell_intervals", "compare",
           "compare_table_iv", "pooled_seed_variance", "reference_row", "summary_line",
           "summary_lines", "verdict", "verdict_counts", "write_verdicts"]
