"""Intervals over training seeds AND test identities, and simultaneous critical values.

Generic machinery behind :mod:`dsanet.claims` (numbers only: no tables, no runs). Every function
takes arrays with optional leading batch dimensions ``...`` so that simulations run vectorised.

The data of one row of a table (one cell: a column and a scorer) are ``y[s, i]``: the value
(percent) of identity ``i`` in the run of seed ``s``, with weight ``w[s, i]`` (anchors or queries
of that identity); the run's cell value is the weighted mean over identities. The model behind
the variances is the two-way crossed random-effects one,

    y[r, s, i] = mu[r] + a[i] + b[r, i] + c[r, s] + e[r, s, i],

identities ``i`` a sample of a population of identities (shared by all rows: ``a`` cancels in a
difference, ``b`` is what a row does to each identity), seeds ``s`` a sample of each row's
training runs (``c`` shifts a whole run, ``e`` is seed-by-identity noise). A row's estimate is the
mean over its seeds of its cell values; its variance has

* a **seed part** ``s2 / n``: the variance over seeds of the run's cell values (``n - 1`` dof;
  it estimates ``var(c) + N`` with ``N`` the part of one run's cell variance due to ``e``);
* an **identity part**: the weighted variance over identities of the per-identity seed means
  (of the per-identity *difference* of two rows for a comparison, paired by identity) divided by
  the number of identities, minus ``N / n`` of each row, which the seed part already holds (the
  crossed-design correction; ``N`` is estimated from the seed x identity residuals with
  ``(n - 1)(m - 1)`` dof). Floored at 0 (a covariance matrix: clipped to be PSD), conservative.

A t reference with Welch-Satterthwaite dof combines them. A row with a single seed has no seed
variance of its own: it borrows the pooled one of the rows with >= 2 seeds (or a prior).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Summary:
    """One row of one cell, reduced (arrays carry the caller's batch dimensions ``...``)."""

    n: int                 # seeds
    m: int                 # identities
    est: np.ndarray        # (...,)   mean over seeds of the run's cell values
    cell: np.ndarray       # (..., n) each seed's cell value (identity-weighted mean)
    seed_var: np.ndarray   # (...,)   variance over seeds of ``cell`` (ddof 1); NaN if n == 1
    z: np.ndarray          # (..., m) each identity's mean over seeds
    p: np.ndarray          # (..., m) identity weights, normalised (mean over seeds)
    noise: np.ndarray      # (...,)   N: variance of one run's cell value due to seed x identity
    #                                 noise; NaN if n == 1, 0 if m == 1


def summarise(values, weights=None) -> Summary:
    """Reduce ``values`` (..., n seeds, m identities) with ``weights`` of the same shape (or
    (..., m), or None: equal) to a :class:`Summary`."""
    y = np.asarray(values, dtype=float)
    n, m = y.shape[-2:]
    w = np.ones_like(y) if weights is None else np.broadcast_to(np.asarray(weights, float), y.shape)
    cell = (w * y).sum(-1) / w.sum(-1)
    p = w.mean(-2)
    p = p / p.sum(-1, keepdims=True)
    z = y.mean(-2)
    est = cell.mean(-1)
    nan = np.full(est.shape, np.nan)
    seed_var = cell.var(-1, ddof=1) if n > 1 else nan
    if m == 1:
        noise = np.zeros(est.shape)
    elif n == 1:
        noise = nan
    else:
        yp = (p[..., None, :] * y).sum(-1)                                     # (..., n)
        r = y - z[..., None, :] - (yp - yp.mean(-1, keepdims=True))[..., None]
        q = (p ** 2).sum(-1)
        noise = (p ** 2 * (r ** 2).sum(-2)).sum(-1) / (n - 1) / (1 - q)
    return Summary(n, m, est, cell, seed_var, z, p, noise)


def identity_cov(rows: list[Summary]) -> np.ndarray:
    """(..., R, R): covariance of the rows' estimates from sampling identities (paired by
    identity), without the seed x identity noise the seed part holds (rows with one seed keep
    it: conservative). Not yet clipped."""
    m = rows[0].m
    if m == 1:
        shape = rows[0].est.shape
        return np.zeros(shape + (len(rows), len(rows)))
    p = np.mean([r.p for r in rows], axis=0)
    z = np.stack([r.z for r in rows], axis=-2)                                 # (..., R, m)
    zc = z - (p[..., None, :] * z).sum(-1, keepdims=True)
    q = (p ** 2).sum(-1)[..., None, None]
    cov = np.einsum("...i,...ri,...qi->...rq", p ** 2, zc, zc) / (1 - q)
    corr = np.stack([np.nan_to_num(r.noise) / r.n for r in rows], axis=-1)    # (..., R)
    idx = np.arange(len(rows))
    cov[..., idx, idx] -= corr
    return cov


def clip_psd(cov: np.ndarray) -> np.ndarray:
    """The nearest-above PSD matrix: negative eigenvalues set to 0 (diagonals only grow)."""
    vals, vecs = np.linalg.eigh(cov)
    return np.einsum("...ij,...j,...kj->...ik", vecs, np.clip(vals, 0, None), vecs)


@dataclass
class SeedVar:
    """The seed variance a row uses: ``var`` (...,) with ``dof``, from ``source`` (the row's own
    runs ``"own:<r>"``, the ``"pooled"`` rows, or a ``"prior"``); ``note`` says where from when
    the row has one seed and borrows it."""

    var: np.ndarray
    dof: float
    source: str
    note: str = ""
    borrowed: bool = False


def seed_variances(rows: list[Summary], mode: str = "row", prior: tuple | None = None,
                   names=None) -> list[SeedVar]:
    """The seed variance each row uses.

    ``mode="row"``: a row with >= 2 seeds uses its own (valid whatever the rows' seed
    variances); ``"pooled"``: every row uses the rows' pooled variance (classic Dunnett; narrower,
    valid only when the rows' seed variances are equal). A row with one seed borrows the pooled
    variance of the rows with >= 2 seeds, else ``prior`` = (variance, dof), else NaN.
    """
    names = names or [str(i) for i in range(len(rows))]
    multi = [r for r in rows if r.n >= 2]
    if multi:
        dof = float(sum(r.n - 1 for r in multi))
        pooled = sum((r.n - 1) * r.seed_var for r in multi) / dof
        pool = SeedVar(pooled, dof, "pooled",
                       f"seed variance pooled over {len(multi)} rows ({dof:g} dof)")
    elif prior is not None and np.isfinite(prior[0]):
        pool = SeedVar(np.broadcast_to(np.asarray(prior[0], float), rows[0].est.shape),
                       float(prior[1]), "prior", f"seed variance from a prior ({prior[1]:g} dof)")
    else:
        pool = SeedVar(np.full(rows[0].est.shape, np.nan), np.nan, "none",
                       "no seed variance (one seed everywhere, no prior)")
    out = []
    for name, r in zip(names, rows):
        if r.n >= 2 and mode == "row":
            out.append(SeedVar(r.seed_var, float(r.n - 1), f"own:{name}"))
        elif r.n >= 2 and mode == "pooled":
            out.append(SeedVar(pool.var, pool.dof, pool.source))
        elif mode in ("row", "pooled"):
            out.append(SeedVar(pool.var, pool.dof, pool.source, pool.note, True))
        else:
            raise ValueError(f"mode {mode!r}: 'row' or 'pooled'")
    return out


@dataclass
class Estimates:
    """Contrasts (or levels), arrays (..., K), with what their variances are made of: the seed
    part ``coef @ u`` (``u`` (..., S): the variance estimates used, ``u_dof`` (S,) their dof,
    ``coef`` (K, S) >= 0) plus the identity part ``ident``; ``cov`` (..., K, K) their estimated
    covariance (for the simultaneous critical value)."""

    est: np.ndarray
    var: np.ndarray
    seed: np.ndarray
    ident: np.ndarray
    dof: np.ndarray
    cov: np.ndarray
    coef: np.ndarray
    u: np.ndarray
    u_dof: np.ndarray
    m: int
    notes: list


def _sources(sv: list[SeedVar], rows: list[Summary]):
    """The distinct seed-variance estimates among the rows': ``u`` (..., S), dof (S,), and each
    row's index into them (rows borrowing one pooled estimate share it)."""
    keys, u, dof, index = [], [], [], []
    for s in sv:
        if s.source not in keys:
            keys.append(s.source)
            u.append(np.asarray(s.var, float))
            dof.append(s.dof)
        index.append(keys.index(s.source))
    return np.stack(u, axis=-1), np.asarray(dof, float), index


def _note(borrowing: list, sv: SeedVar) -> str:
    """"p: one seed, seed variance pooled over 5 rows (10 dof)" (empty when none borrows)."""
    if not borrowing:
        return ""
    each = " each" if len(borrowing) > 1 else ""
    return f"{' and '.join(map(str, borrowing))}: one seed{each}, {sv.note}"


def _terms(coef, u):
    """(..., K, S): each comparison's seed terms ``coef * u`` (NaN only where a NaN is used)."""
    uu = u[..., None, :]
    return np.where(coef > 0, coef * np.where(np.isfinite(uu), uu, np.nan), 0.0)


def _dof(var, seed_terms, ident, u_dof, m: int):
    """Welch-Satterthwaite dof of ``var`` = sum of ``seed_terms`` (..., K, S) + ``ident``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        den = np.nansum(seed_terms ** 2 / u_dof, axis=-1)
        if m > 1:
            den = den + ident ** 2 / (m - 1)
        return np.where(den > 0, var ** 2 / np.where(den > 0, den, 1), np.inf)


def contrasts(rows: list[Summary], pairs, mode: str = "row", prior=None, names=None
              ) -> Estimates:
    """Differences ``est[a] - est[b]`` for ``pairs`` [(a, b), ...] of row indices (identities
    paired, seeds independent between rows) with variance = seed parts + identity part."""
    sv = seed_variances(rows, mode, prior, names)
    u, u_dof, index = _sources(sv, rows)
    K, R = len(pairs), len(rows)
    C = np.zeros((K, R))
    coef = np.zeros((K, len(u_dof)))
    for k, (a, b) in enumerate(pairs):
        C[k, a] += 1
        C[k, b] -= 1
        coef[k, index[a]] += 1 / rows[a].n
        coef[k, index[b]] += 1 / rows[b].n
    ident_cov = clip_psd(np.einsum("kr,...rq,lq->...kl", C, identity_cov(rows), C))
    seed_row = np.stack([s.var / r.n for s, r in zip(sv, rows)], axis=-1)      # (..., R)
    # seeds independent between rows (a row without a seed variance: NaN for its contrasts only)
    seed_cov = np.einsum("kr,...r,lr->...kl", C, np.nan_to_num(seed_row), C)
    est = np.stack([rows[a].est - rows[b].est for a, b in pairs], axis=-1)
    ident = np.diagonal(ident_cov, axis1=-2, axis2=-1)
    terms = _terms(coef, u)                                                     # (..., K, S)
    seed = terms.sum(-1)
    var = seed + ident
    names = names or [str(i) for i in range(R)]
    notes = [_note([names[j] for j in (a, b) if sv[j].borrowed], sv[a] if sv[a].borrowed else sv[b])
             for a, b in pairs]
    return Estimates(est, var, seed, ident, _dof(var, terms, ident, u_dof, rows[0].m),
                     seed_cov + ident_cov, coef, u, u_dof, rows[0].m, notes)


def levels(rows: list[Summary], mode: str = "row", prior=None, names=None) -> Estimates:
    """Each row's estimate (mean over its seeds) with its two-part variance: its seed part and
    its identity part (the level's identity variance includes the identities' own effects)."""
    sv = seed_variances(rows, mode, prior, names)
    u, u_dof, index = _sources(sv, rows)
    coef = np.zeros((len(rows), len(u_dof)))
    for j, r in enumerate(rows):
        coef[j, index[j]] = 1 / r.n
    idc = identity_cov(rows)
    ident = np.clip(np.diagonal(idc, axis1=-2, axis2=-1), 0, None)
    terms = _terms(coef, u)
    seed = terms.sum(-1)
    var = seed + ident
    est = np.stack([r.est for r in rows], axis=-1)
    names = names or [str(i) for i in range(len(rows))]
    return Estimates(est, var, seed, ident, _dof(var, terms, ident, u_dof, rows[0].m),
                     np.zeros(var.shape + var.shape[-1:]), coef, u, u_dof, rows[0].m,
                     [_note([n], s) if s.borrowed else "" for n, s in zip(names, sv)])


def stack(parts: list[Estimates]) -> Estimates:
    """Several groups' estimates as one family (no batch dimension): block-diagonal covariance
    and coefficients (different groups share no estimate and are taken as independent)."""
    cat = lambda f: np.concatenate([np.atleast_1d(getattr(e, f)) for e in parts])  # noqa: E731
    K = sum(len(np.atleast_1d(e.est)) for e in parts)
    S = sum(len(e.u_dof) for e in parts)
    cov, coef = np.zeros((K, K)), np.zeros((K, S))
    k = s = 0
    for e in parts:
        dk, ds = len(np.atleast_1d(e.est)), len(e.u_dof)
        cov[k:k + dk, k:k + dk] = e.cov
        coef[k:k + dk, s:s + ds] = e.coef
        k, s = k + dk, s + ds
    m = min(e.m for e in parts)
    return Estimates(cat("est"), cat("var"), cat("seed"), cat("ident"), cat("dof"), cov, coef,
                     cat("u"), cat("u_dof"), m, [n for e in parts for n in e.notes])


def t_quantile(dof, level: float = 0.95):
    """Two-sided Student-t quantile (normal where dof is infinite)."""
    from scipy import stats

    dof = np.asarray(dof, float)
    q = 0.5 + level / 2
    return np.where(np.isfinite(dof), stats.t.ppf(q, np.where(np.isfinite(dof), dof, 1)),
                    stats.norm.ppf(q))


def simultaneous_critical(e: Estimates, alpha: float = 0.05, method: str = "maxt",
                          draws: int = 50_000, seed: int = 0) -> float:
    """One critical value ``c`` for the family ``e`` (no batch dimension) such that all of
    ``est ± c * sqrt(var)`` hold together with probability ``1 - alpha``.

    ``maxt``: single-step max-|t| (Dunnett-style, many-to-one or any contrasts), calibrated by a
    parametric bootstrap of the studentised statistics that keeps their real dependence: the
    numerators ``Z ~ N(0, cov)`` (correlated through the shared reference rows and the paired
    identities), each seed-variance estimate redrawn as ``u * chi2(dof) / dof`` independently
    (so a comparison's denominator shares the reference row's estimate with its siblings and
    nothing else), the identity part kept (its ~150 dof make it nearly fixed); ``c`` is the
    ``1 - alpha`` quantile of ``max_k |Z_k| / sqrt(V*_k)`` (Monte Carlo, fixed ``seed``).
    Comparisons of different columns get zero correlation: by Sidak's (Royen's) inequality
    that is conservative whatever their true correlation. ``bonferroni``: the largest
    Satterthwaite-t quantile at ``alpha / K``. NaN variances are left out.
    """
    ok = np.isfinite(e.var) & (e.var > 0)
    K = int(ok.sum())
    if K == 0:
        return np.nan
    if method == "bonferroni":
        return float(np.max(t_quantile(e.dof[ok], 1 - alpha / K)))
    if method != "maxt":
        raise ValueError(f"method {method!r}: 'maxt' or 'bonferroni'")
    rng = np.random.default_rng(seed)
    cov = e.cov[np.ix_(ok, ok)]
    vals, vecs = np.linalg.eigh(cov)
    Z = rng.standard_normal((draws, K)) @ (vecs * np.sqrt(np.clip(vals, 0, None))).T
    coef = e.coef[ok]
    used = coef.sum(0) > 0
    u, dof = e.u[used], e.u_dof[used]
    fin = np.isfinite(dof)
    scale = np.ones((draws, len(u)))
    scale[:, fin] = rng.chisquare(dof[fin], size=(draws, int(fin.sum()))) / dof[fin]
    V = (scale * u) @ coef[:, used].T + e.ident[ok]
    return float(np.quantile(np.abs(Z / np.sqrt(V)).max(1), 1 - alpha))


__all__ = ["Estimates", "SeedVar", "Summary", "clip_psd", "contrasts", "identity_cov", "levels",
           "seed_variances", "simultaneous_critical", "stack", "summarise", "t_quantile"]
