"""Comparisons of a row with its table's reference row (dsanet.claims, dsanet.stats): the verdict
rules, hand calculations, the single-seed borrowing, and simulations with a known truth - the
intervals' coverage, the A/A check and the family-wise error after correction.

The simulated values follow the model the intervals assume, with the sizes of this benchmark:
y[r, s, i] = mu[r] + a[i] + b[r, i] + c[r, s] + e[r, s, i] over 154 test identities, identity
effects a (shared by the rows: paired), row x identity effects b, seed shifts c, seed x identity
noise e, in accuracy points. Run with ``-s`` to see the simulated rates.
"""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dsanet import claims, stats

M = 154                                                      # test identities of the benchmark


def _simulate(rng, B, mus, n, m=M, sc=1.2, sb=1.5, se=8.0, sa=10.0, scale=None):
    """Per row r: values (B, n[r], m); identities shared across rows (paired)."""
    ns = [n] * len(mus) if np.isscalar(n) else list(n)
    scale = np.ones(len(mus)) if scale is None else np.asarray(scale, float)
    a = rng.normal(0, sa, (B, 1, m))
    return [mu + a + rng.normal(0, sb, (B, 1, m)) + rng.normal(0, sc * k, (B, nr, 1))
            + rng.normal(0, se * k, (B, nr, m)) for mu, nr, k in zip(mus, ns, scale)]


def _records(values: dict, column="V-F", scorer="distance", weights=None) -> pd.DataFrame:
    """Long records from {row: array (n seeds, m identities)} (one replicate)."""
    out = []
    for row, y in values.items():
        y = np.atleast_2d(y)
        w = np.ones(y.shape[1]) if weights is None else np.asarray(weights, float)
        for s in range(y.shape[0]):
            out.append(pd.DataFrame({"scorer": scorer, "row": row, "column": column, "seed": s,
                                     "identity": np.arange(y.shape[1]), "value": y[s],
                                     "weight": w}))
    return pd.concat(out, ignore_index=True)


# ----------------------------------------------------------------------------- verdict rules

@pytest.mark.parametrize("lo, hi, paper, want", [
    (0.4, 2.0, 1.5, "reproduced"),             # the paper's direction, excludes 0
    (-3.0, -0.1, -0.5, "reproduced"),
    (0.2, 0.8, 2.0, "reproduced"),             # excludes 0 first, however small
    (0.4, 2.0, -1.5, "contradicted"),          # the other direction, excludes 0
    (-2.0, -0.5, 0.4, "contradicted"),
    (-0.8, 0.9, -1.5, "no effect"),            # inside ±1 while the paper claims >= 1
    (-1.0, 1.0, 1.0, "no effect"),
    (-0.8, 0.9, 0.5, "unresolved"),            # inside ±1, but the claim is under 1 point
    (-1.2, 0.9, 2.0, "unresolved"),            # not inside ±1, contains 0
    (np.nan, np.nan, 2.0, "unresolved"),       # no interval (no seed variance)
    (0.4, 2.0, np.nan, "no claim"),            # the paper gives no number
    (0.4, 2.0, 0.2, "no claim"),               # below the paper's rounding
    (-3.0, -2.0, -0.29, "no claim"),
])
def test_verdict_rules(lo, hi, paper, want):
    assert claims.verdict(lo, hi, paper) == want


def test_table_xii_compares_each_symbol_with_its_chosen_value():
    assert claims.reference_row("XII", "lambda=1.5", {"lambda": 2.0, "mu": 3.0}) == "lambda=2"
    assert claims.reference_row("XII", "mu=1", {"lambda": 2.0, "mu": 3.0}) == "mu=3"
    assert claims.reference_row("VI", "3-layer DEM") == "1-layer DEM"
    assert claims.reference_row("IV", "published script (classifier, test-selected)") == \
        "DSANet (ours, classifier)"


# ----------------------------------------------------------------------------- hand calculations

def test_cell_reduction_by_hand():
    # additive seed + identity effects: no seed x identity noise, so the parts are plain
    alpha = np.array([0.0, 1.0, 2.0])                            # seed shifts
    beta = np.array([70.0, 80.0, 90.0, 100.0])                   # identity values
    w = np.array([1.0, 1.0, 2.0, 4.0])                           # anchors per identity
    y = alpha[:, None] + beta[None, :]
    cells = claims.cell_intervals(_records({"g": y}, weights=w))
    c = cells.iloc[0]
    p = w / w.sum()                                              # (1, 1, 2, 4) / 8
    level = (p * beta).sum() + alpha.mean()                      # 91.25 + 1
    seed = np.var(alpha, ddof=1) / 3                             # 1 / 3
    ident = (p ** 2 * (beta - (p * beta).sum()) ** 2).sum() / (1 - (p ** 2).sum())
    assert ident == pytest.approx((1 * 21.25 ** 2 + 1 * 11.25 ** 2 + 4 * 1.25 ** 2
                                   + 16 * 8.75 ** 2) / 64 / (1 - 22 / 64))
    dof = (seed + ident) ** 2 / (seed ** 2 / 2 + ident ** 2 / 3)
    half = st.t.ppf(0.975, dof) * math.sqrt(seed + ident)
    assert c["mean"] == pytest.approx(level) and c["n_seeds"] == 3 and c["n_identities"] == 4
    assert (c["seed_var"], c["identity_var"], c["dof"]) == pytest.approx((seed, ident, dof))
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((level - half, level + half))
    assert c["values"] == "91.2500 92.2500 93.2500"


def test_seed_by_identity_noise_is_counted_once():
    # the identity part of a level: variance over identities of the seed means minus the noise
    # that the seed part already holds (hand residuals of a 2 x 2 table)
    y = np.array([[10.0, 20.0], [14.0, 20.0]])                   # seed 2 lifts identity 0 only
    s = stats.summarise(y)
    z = y.mean(0)                                                # (12, 20)
    r = y - z - (y.mean(1) - y.mean())[:, None]                  # residuals: +-1
    noise = (0.25 * (r ** 2).sum(0)).sum() / 1 / 0.5             # sum p^2 sigma_i^2 / (1 - sum p^2)
    assert s.noise == pytest.approx(noise) == pytest.approx(2.0)
    lev = stats.levels([s])
    assert lev.seed[0] == pytest.approx(np.var(y.mean(1), ddof=1) / 2)      # (15 - 17)^2 / 2 / 2
    assert lev.ident[0] == pytest.approx(0.25 * ((12 - 16) ** 2 + (20 - 16) ** 2) / 0.5 - noise / 2)


def test_difference_pairs_identities_and_reads_the_paper():
    rng = np.random.default_rng(0)
    a = rng.normal(80, 10, M)                                    # identity effects, shared
    rows = {"a": a + np.array([[3.0], [4.0], [5.0]]), "g": a + np.array([[0.0], [0.5], [1.0]])}
    paper = pd.DataFrame([{"row": "a", "column": "V-F", "paper": 90.2},
                          {"row": "g", "column": "V-F", "paper": 92.5}])
    c = claims.compare("V", _records(rows), paper).iloc[0]
    assert c["row"] == "a" and c["reference"] == "g" and c["paper_diff"] == pytest.approx(-2.3)
    assert c["diff"] == pytest.approx(3.5)
    # identities paired: the shared identity effects cancel, only the seed parts remain
    assert c["identity_var"] == pytest.approx(0, abs=1e-9)
    assert c["seed_var"] == pytest.approx(1 / 3 + 0.25 / 3)
    dof = (1 / 3 + 0.25 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (0.25 / 3) ** 2 / 2)
    assert c["dof"] == pytest.approx(dof)
    assert c["half_raw"] == pytest.approx(st.t.ppf(0.975, dof) * math.sqrt(1 / 3 + 0.25 / 3))
    assert c["half"] == pytest.approx(c["half_raw"], rel=0.1)   # one comparison: ~ uncorrected
    assert c["verdict"] == "contradicted"                        # +3.5 ± 2.0 vs the paper's -2.3
    assert c["lo"] > 0 and c["differs"]


def test_single_seed_row_borrows_the_pooled_seed_variance():
    rng = np.random.default_rng(1)
    a = rng.normal(80, 5, 20)
    rows = {"a": a + np.array([[1.0], [2.0], [4.0]]), "g": a + np.array([[0.0], [1.0], [1.0]]),
            "p": a[None, :] - 5.0}
    refs = {"a": "g", "p": "g"}
    c = claims.compare("IV", _records(rows), references=refs).set_index("row")
    pooled = (2 * np.var([1, 2, 4], ddof=1) + 2 * np.var([0, 1, 1], ddof=1)) / 4
    assert c.loc["p", "n_seeds"] == 1 and c.loc["p", "n_seeds_ref"] == 3
    assert c.loc["p", "seed_var"] == pytest.approx(pooled / 1 + np.var([0, 1, 1], ddof=1) / 3)
    assert "one seed" in c.loc["p", "note"] and "pooled over 2 rows (4 dof)" in c.loc["p", "note"]
    assert c.loc["a", "note"] == ""
    assert c.loc["p", "verdict"] == "no claim"                   # the paper has no such row
    # no row with >= 2 seeds: no seed variance, no interval - unless a prior gives one
    one = {"p": a[None, :] - 5.0, "g": a[None, :]}
    c1 = claims.compare("IV", _records(one), references={"p": "g"},
                        paper_diff={("p", "V-F"): -3.0}).iloc[0]
    assert np.isnan(c1["lo"]) and c1["verdict"] == "unresolved"
    prior = pd.DataFrame([{"scorer": "distance", "column": "V-F", "var": 0.5, "dof": 12}])
    c2 = claims.compare("IV", _records(one), references={"p": "g"}, prior=prior,
                        paper_diff={("p", "V-F"): -3.0}).iloc[0]
    assert c2["seed_var"] == pytest.approx(1.0) and c2["verdict"] == "reproduced"
    assert "prior (12 dof)" in c2["note"]


def test_pooled_seed_variance_counts_a_set_of_runs_once():
    y = {"a": np.array([[1.0, 1.0], [3.0, 3.0]]), "g": np.array([[0.0, 0.0], [0.0, 0.0],
                                                                  [3.0, 3.0]])}
    r = _records(y)
    r["run"] = r["row"] + r["seed"].astype(str)
    twice = pd.concat([r.assign(table="V"), r.assign(table="VII")], ignore_index=True)
    p = claims.pooled_seed_variance(twice).iloc[0]
    assert p["dof"] == 3 and p["var"] == pytest.approx((2.0 + 6.0) / 3)


# ----------------------------------------------------------------------------- simulations

def _coverage(rng, n, B=2000):
    ys = _simulate(rng, B, [81.0, 80.0], n)
    e = stats.contrasts([stats.summarise(y) for y in ys], [(0, 1)])
    half = stats.t_quantile(e.dof) * np.sqrt(e.var)
    return float((np.abs(e.est[..., 0] - 1.0) <= half[..., 0]).mean()), float(np.median(half))


@pytest.mark.parametrize("n", [3, 5])
def test_interval_covers_the_truth_95_percent(n):
    cov, half = _coverage(np.random.default_rng(10 + n), n)
    print(f"\ncoverage of the uncorrected 95% interval, {n} seeds x {M} identities: {cov:.3f} "
          f"(median half-width {half:.2f} points)")
    assert 0.93 <= cov <= 0.975


def test_identity_part_is_what_covers_a_row_by_identity_effect():
    # no seed effects at all, rows that redistribute accuracy over identities (b large): an
    # interval over seeds alone would under-cover; with the identity part it covers
    rng = np.random.default_rng(5)
    ys = _simulate(rng, 2000, [81.0, 80.0], 3, sc=0.0, sb=6.0, se=2.0)
    e = stats.contrasts([stats.summarise(y) for y in ys], [(0, 1)])
    t = stats.t_quantile(e.dof)
    full = (np.abs(e.est - 1.0) <= t * np.sqrt(e.var)).mean()
    seeds_only = (np.abs(e.est - 1.0) <= stats.t_quantile(4.0) * np.sqrt(e.seed)).mean()
    print(f"\nrow x identity effects only: coverage {full:.3f} with the identity part, "
          f"{seeds_only:.3f} over seeds alone")
    assert full >= 0.93 and seeds_only < 0.6


def _family(rng, mus, n, cols=2, B=300, scale=None, mode="row"):
    """B simulated tables: per replicate, the family's stacked estimates (last row = reference)."""
    parts = []
    for _ in range(cols):
        ys = _simulate(rng, B, mus, n, scale=scale)
        rows = [stats.summarise(y) for y in ys]
        R = len(mus)
        parts.append(stats.contrasts(rows, [(j, R - 1) for j in range(R - 1)], mode))
    fields = ("est", "var", "seed", "ident", "dof", "cov", "u")
    for b in range(B):
        yield stats.stack([stats.Estimates(
            *[getattr(e, f)[b] if f in fields else getattr(e, f) for f in
              ("est", "var", "seed", "ident", "dof", "cov", "coef", "u", "u_dof", "m",
               "notes")]) for e in parts])


@pytest.mark.parametrize("n", [3, 5])
def test_family_of_true_nulls_has_at_most_5_percent_decisive_verdicts(n):
    rng = np.random.default_rng(20 + n)
    B, hits, halves = 300, 0, []
    for b, fam in enumerate(_family(rng, [80.0] * 7, n, B=B)):     # 12 true nulls per table
        crit = stats.simultaneous_critical(fam, draws=4000, seed=b)
        lo, hi = fam.est - crit * np.sqrt(fam.var), fam.est + crit * np.sqrt(fam.var)
        hits += any(claims.verdict(l_, h_, 2.0) in claims.DECISIVE for l_, h_ in zip(lo, hi))
        halves.append(np.median(crit * np.sqrt(fam.var)))
    fwer = hits / B
    print(f"\nfamily-wise error, 12 true nulls (6 rows x 2 columns vs a reference), {n} seeds: "
          f"{fwer:.3f} (median corrected half-width {np.median(halves):.2f} points)")
    assert fwer <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / B)


def test_family_error_holds_when_the_reference_row_is_noisier():
    # the rows' seed variances differ (DSANet's is often the largest): each row's own variance
    rng = np.random.default_rng(31)
    B, hits = 300, 0
    for b, fam in enumerate(_family(rng, [80.0] * 7, 3, cols=1, B=B, scale=[1] * 6 + [2])):
        crit = stats.simultaneous_critical(fam, draws=4000, seed=b)
        hits += bool((np.abs(fam.est) > crit * np.sqrt(fam.var)).any())
    print(f"\nfamily-wise error, reference row with 2x the seed sd, 3 seeds: {hits / B:.3f}")
    assert hits / B <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / B)


def test_critical_value_is_sidak_for_independent_normals():
    K = 6
    e = stats.Estimates(np.zeros(K), np.ones(K), np.zeros(K), np.ones(K), np.full(K, np.inf),
                        np.eye(K), np.zeros((K, 1)), np.zeros(1), np.array([np.inf]), 10_000, [])
    c = stats.simultaneous_critical(e, draws=200_000)
    assert c == pytest.approx(st.norm.ppf(1 - (1 - 0.95 ** (1 / K)) / 2), abs=0.03)
    assert stats.simultaneous_critical(e, method="bonferroni") == \
        pytest.approx(st.norm.ppf(1 - 0.025 / K), abs=1e-3)


def test_aa_rows_are_never_decisive_beyond_the_nominal_rate():
    # two rows of one config with disjoint seeds (3 + 3), 4,000 times; the paper "claims" 2 points
    rng = np.random.default_rng(40)
    ys = _simulate(rng, 4000, [80.0, 80.0], 3)
    e = stats.contrasts([stats.summarise(y) for y in ys], [(0, 1)])
    half = stats.t_quantile(e.dof)[..., 0] * np.sqrt(e.var[..., 0])
    lo, hi = e.est[..., 0] - half, e.est[..., 0] + half
    decisive = np.mean([claims.verdict(a, b, 2.0) in claims.DECISIVE for a, b in zip(lo, hi)])
    print(f"\nA/A (3 + 3 seeds): decisive {decisive:.3f} of 4000")
    assert decisive <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / 4000)


def test_aa_check_of_one_row_split_by_seeds():
    rng = np.random.default_rng(41)
    y = _simulate(rng, 1, [80.0], 6)[0][0]                       # one row, 6 seeds
    r = _records({"g": y})
    c = claims.aa_check(r, "g", [0, 1, 2], [3, 4, 5])
    assert len(c) == 1 and c["row"].iloc[0] == "A" and c["reference"].iloc[0] == "B"
    assert c["n_seeds"].iloc[0] == 3 and c["n_seeds_ref"].iloc[0] == 3
    assert c["verdict"].iloc[0] in ("no effect", "unresolved")
    with pytest.raises(ValueError, match="disjoint"):
        claims.aa_check(r, "g", [0, 1, 2], [2, 3])


# ----------------------------------------------------------------------------- tables, files

def _table_records(rng, table_rows, cols=("V-F", "F-V"), n=3, m=30, scorers=("distance",)):
    out = []
    a = rng.normal(80, 8, m)
    for scorer in scorers:
        for col in cols:
            for row, mu in table_rows.items():
                y = mu + a + rng.normal(0, 1.0, (n, 1)) + rng.normal(0, 4, (n, m))
                out.append(_records({row: y}, col, scorer))
    return pd.concat(out, ignore_index=True)


def test_compare_one_family_per_table_and_scorer():
    from dsanet.experiments import paper_numbers

    rng = np.random.default_rng(50)
    recs = _table_records(rng, {"1-layer DEM": 80.0, "2-layer DEM": 80.0, "3-layer DEM": 85.0},
                          scorers=("classifier", "distance"))
    c = claims.compare("VI", recs, paper_numbers("VI"))
    assert set(claims.VERDICT_COLUMNS) <= set(c.columns)
    assert len(c) == 8 and set(c["reference"]) == {"1-layer DEM"}
    for _, g in c.groupby("scorer"):                              # one critical value per family
        assert g["crit"].nunique() == 1 and g["crit"].iloc[0] > st.t.ppf(0.975, 1e6)
        assert (g["half"] >= g["half_raw"]).all()
    # the verdict always reads the corrected interval
    for r in c.itertuples():
        assert r.verdict == claims.verdict(r.lo, r.hi, r.paper_diff)
        assert r.lo == pytest.approx(r.diff - r.half) and r.hi == pytest.approx(r.diff + r.half)
    assert c["binary"].all()
    three = c[c["row"] == "3-layer DEM"].set_index(["scorer", "column"])
    assert (three.xs("F-V", level="column")["paper_diff"].round(1) == -0.4).all()
    assert (three.xs("F-V", level="column")["verdict"] == "contradicted").all()   # +5 points
    assert (three.xs("V-F", level="column")["verdict"] == "no claim").all()       # paper: +0.2


def test_read_identity_selects_like_read_cell():
    from dsanet.experiments import BINARY, MULTI, read_identity

    ident = pd.DataFrame([dict(task="matching", direction="V-F", protocol="U", k=k, scorer=s,
                               metric="acc", identity=i, value=v, weight=3)
                          for k, s, v in ((2, "distance", 0.7), (2, "classifier", 0.6),
                                          (10, "distance", 0.2)) for i in range(4)])
    assert (read_identity(ident, BINARY[0].select("matching", "classifier"))["value"] == 0.6).all()
    assert (read_identity(ident, BINARY[0].select("matching", "distance"))["value"] == 0.7).all()
    got = read_identity(ident, MULTI[0].select("matching", "classifier"))   # falls back
    assert list(got.columns) == ["identity", "value", "weight"] and (got["value"] == 0.2).all()
    assert read_identity(None, BINARY[0].select("matching")) is None
    assert read_identity(ident, BINARY[1].select("matching")) is None       # no F-V values


def _fake_run(cfg, root, vf: float, fv: float, rng, m=30, identity=True):
    """A finished run on disk (as tests/test_experiments.py writes them) with identity.csv."""
    from dsanet import experiments as ex

    d = ex.run_dir(cfg, root)
    d.mkdir(parents=True)
    met, ident = [], []
    for direction, v in (("V-F", vf), ("F-V", fv)):
        for k in (2, 10):
            vals = np.clip(v / (1 if k == 2 else 5) + rng.normal(0, 0.05, m), 0, 1)
            w = rng.integers(5, 15, m)
            val = float((vals * w).sum() / w.sum())
            met.append(dict(task="matching", direction=direction, protocol="U", k=k,
                            scorer="distance", metric="acc", value=val, ci_low=val - 0.02,
                            ci_high=val + 0.02, n=int(w.sum())))
            ident.append(pd.DataFrame(dict(task="matching", direction=direction, protocol="U",
                                           k=k, scorer="distance", metric="acc",
                                           identity=np.arange(m), value=vals, weight=w)))
    pd.DataFrame(met).to_csv(d / "metrics.csv", index=False)
    if identity:
        pd.concat(ident).to_csv(d / "identity.csv", index=False)
    pd.DataFrame({"step": [1], "total": [1.0]}).to_csv(d / "history.csv", index=False)
    (d / "done.json").write_text(json.dumps({"wall_s": 1.0, "checkpoint": None}))


def test_run_table_compares_per_identity_values_and_writes_the_reports(tmp_path):
    from dsanet import experiments as ex
    from dsanet import viz
    from dsanet.config import smoke
    from dsanet.runner import reading_lines

    rng = np.random.default_rng(60)
    base = ex.budget(smoke(), 2)
    level = {"1-layer DEM": 0.80, "2-layer DEM": 0.80, "3-layer DEM": 0.70}
    for row, col, seed, cfg in ex.cell_configs("VI", base, [0, 1, 2]):
        if not ex.run_dir(cfg, tmp_path).exists():
            _fake_run(cfg, tmp_path, level[row] + rng.normal(0, 0.01), level[row], rng)
    res = ex.run_table("VI", smoke(), seeds=[0, 1, 2], runs_root=tmp_path, steps=2, log=None)
    # the classifier cells fall back to the distance's values; identities 0..29 for every run
    assert set(res.identity["identity"]) == set(range(30))
    assert len(res.identity) == 2 * 3 * 2 * 3 * 30          # scorers x rows x columns x seeds x ids
    cell = res.cells.set_index(["scorer", "row", "column"]).loc[("distance", "3-layer DEM", "F-V")]
    assert cell["ci"] == "t, 3 seeds x 30 identities" and cell["n_identities"] == 30
    runs = res.runs[(res.runs["scorer"] == "distance") & (res.runs["row"] == "3-layer DEM")
                    & (res.runs["column"] == "F-V")]
    assert cell["mean"] == pytest.approx(runs["value"].mean())            # mean of the runs' cells
    c = res.comparison
    assert len(c) == 8 and res.made["interval"] == "seeds and test identities"
    assert (c[c["row"] == "3-layer DEM"]["diff"] < -5).all()
    md = ex.write_result(res, tmp_path).read_text()
    assert "vs ref." in md and "corrected for the table's comparisons" in md
    path = claims.write_verdicts([res.comparison], tmp_path / "tables" / "verdicts.csv")
    iv = claims.compare_table_iv(_table_records(
        rng, {"DSANet (ours, distance)": 85.0, "two-tower InfoNCE baseline (distance)": 83.0},
        cols=("vf", "fv")))
    claims.write_verdicts({"IV": iv}, path)
    claims.write_verdicts([res.comparison], path)                          # replaces VI, keeps IV
    v = pd.read_csv(path, dtype={"table": str})
    assert list(v.columns[:12]) == claims.VERDICT_COLUMNS
    assert list(dict.fromkeys(v["table"])) == ["IV", "VI"] and len(v) == len(iv) + 8
    assert (v[v["table"] == "IV"]["verdict"] == "no claim").all()
    counts = claims.verdict_counts(v).set_index("table")
    assert counts.loc["VI", list(claims.VERDICTS)].sum() == 8
    lines = reading_lines(tmp_path / "tables")
    assert any(line.startswith("- Table VI (Cascaded DEM layers") for line in lines)
    assert sum("\"±\" is everywhere" in line for line in lines) == 1
    fig = viz.forest(res.comparison, "Table VI")
    png = viz.save(fig, tmp_path, "04_table_VI_forest")
    assert png.exists() and png.with_suffix(".svg").exists()


def test_old_runs_without_identity_values_keep_working(tmp_path):
    from dsanet import experiments as ex
    from dsanet.config import smoke

    rng = np.random.default_rng(61)
    base = ex.budget(smoke(), 2)
    for row, col, seed, cfg in ex.cell_configs("VI", base, [0, 1, 2]):
        if not ex.run_dir(cfg, tmp_path).exists():
            _fake_run(cfg, tmp_path, 0.8 + rng.normal(0, 0.01), 0.8, rng, identity=False)
    res = ex.run_table("VI", smoke(), seeds=[0, 1, 2], runs_root=tmp_path, steps=2, log=None,
                       scorers=("distance",))
    assert res.identity["identity"].isna().all() and res.made["interval"] == "seeds"
    cell = res.cells.iloc[0]
    assert cell["ci"] == "t, 3 seeds"                                     # reduce_cells
    c = res.comparison
    assert len(c) == 4 and (c["n_identities"] == 1).all()
    assert c["note"].str.contains("seed part only").all() and (c["identity_var"] == 0).all()
