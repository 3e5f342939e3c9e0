"""Reference bounds of the embedded benchmark: 1:k matching accuracy of an oracle, a gender-only
guesser and chance on a generator :class:`Plan` (the ``matching`` part of calibration.json;
:func:`dsanet.data.synthetic.summary` adds the knobs and split counts).

The oracle sees each sample's realised shared traits (standardised within its modality) and picks
the same-gender candidate nearest in that space; gender-only picks uniformly among same-gender
candidates; chance is 1/k. Tuples are drawn from the test identities with seeded numpy Generators,
so the same plan gives the same numbers. :class:`Plan` (what the generator draws before rendering,
made by :func:`dsanet.data.synthetic.plan`) is defined here, below the generator, so that neither
module imports the other's; both names are re-exported by :mod:`dsanet.data.synthetic`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dsanet.data.synth_traits import SHARED


@dataclass
class Plan:
    """Everything drawn before rendering: one row per identity, per clip, per frame."""
    knobs: dict
    identities: pd.DataFrame
    voices: pd.DataFrame
    faces: pd.DataFrame


def _standardised(df: pd.DataFrame) -> np.ndarray:
    r = df[[f"r_{t}" for t in SHARED]].to_numpy()                        # (n, 5)
    return (r - r.mean(0)) / r.std(0)


def _draw_tuples(rng: np.random.Generator, anchor_ident: np.ndarray, cand_ident: np.ndarray,
                 ident_gender: np.ndarray, k: int, n: int, constrained: bool):
    """``(anchor sample (n,), candidate samples (n, k))``; column 0 is the true candidate.

    Negatives are k-1 distinct other identities (of the anchor's gender when ``constrained``),
    each represented by a random sample of theirs.
    """
    a = rng.integers(len(anchor_ident), size=n)
    who = anchor_ident[a]                                                  # (n,)
    score = rng.random((n, len(ident_gender)))
    score[np.arange(n), who] = np.inf
    if constrained:
        score[ident_gender[None, :] != ident_gender[who][:, None]] = np.inf
    neg = np.argsort(score, axis=1)[:, :k - 1]                             # (n, k-1)
    ids = np.concatenate([who[:, None], neg], 1)                           # (n, k)
    order = np.argsort(cand_ident, kind="stable")
    start = np.searchsorted(cand_ident[order], np.arange(len(ident_gender)))
    count = np.bincount(cand_ident, minlength=len(ident_gender))
    pick = start[ids] + (rng.random(ids.shape) * count[ids]).astype(int)
    return a, order[pick]


def _matching(anchor: pd.DataFrame, cand: pd.DataFrame, gender: np.ndarray, k: int, n: int,
              constrained: bool, rng: np.random.Generator) -> dict:
    """Oracle, gender-only and chance accuracy for one (direction, k, protocol) cell."""
    n_same = np.bincount(gender, minlength=2)
    if len(gender) < k or (constrained and n_same.min() < k):
        return {"oracle": None, "gender_only": None, "chance": 1 / k, "n": 0}
    a, c = _draw_tuples(rng, anchor.ident.to_numpy(), cand.ident.to_numpy(), gender, k, n, constrained)
    za, zc = _standardised(anchor), _standardised(cand)
    ga, gc = gender[anchor.ident.to_numpy()], gender[cand.ident.to_numpy()]
    mismatch = ga[a][:, None] != gc[c]                                     # (n, k)
    dist = ((za[a][:, None, :] - zc[c]) ** 2).sum(-1) + 1e6 * mismatch    # (n, k)
    oracle = float((dist.argmin(1) == 0).mean())
    gender_only = float((1.0 / (~mismatch).sum(1)).mean())   # expected score of a random same-gender pick
    return {"oracle": round(oracle, 4), "gender_only": round(gender_only, 4), "chance": round(1 / k, 4),
            "n": n}


def calibrate(p: Plan, n_tuples: int = 4000, seed: int = 0, ks=(2, 10)) -> dict:
    """Matching accuracy bounds on the test identities (see the module docstring).

    The oracle sees each sample's realised shared traits (standardised within its modality) and
    picks the same-gender candidate nearest in that 5-d space; gender-only picks uniformly among
    same-gender candidates (its expected accuracy is reported); chance is 1/k.
    """
    test = p.identities[p.identities.split == "test"].reset_index(drop=True)
    index = {v: i for i, v in enumerate(test.voice_id)}
    gender = (test.gender == "f").to_numpy().astype(int)
    samples = {m: df[df.voice_id.isin(index)].assign(ident=lambda d: d.voice_id.map(index))
               for m, df in (("voice", p.voices), ("face", p.faces))}
    out = {}
    for protocol, constrained in (("unconstrained", False), ("gender", True)):
        rng = np.random.default_rng([seed, int(constrained)])
        out[protocol] = {f"k{k}": {
            "vf": _matching(samples["voice"], samples["face"], gender, k, n_tuples, constrained, rng),
            "fv": _matching(samples["face"], samples["voice"], gender, k, n_tuples, constrained, rng),
        } for k in ks}
    return out
