"""The numbers the DSANet paper publishes (Wang et al., IEEE TMM 2023), as data.

``table(name)`` returns one table as a :class:`pandas.DataFrame`. Accuracies and mAP are in
percent, as printed; a cell the paper marks "-" (not available) or "x" is NaN. Column names are
shared across tables so that results can be joined against them:

* ``row``: the row's label (method, ablation letter, or ``param=setting``);
* ``vf``, ``fv``: binary (1:2) matching accuracy, voice->face and face->voice;
* ``vf10``, ``fv10``: 1:10 matching accuracy;
* ``map_vf``, ``map_fv``: retrieval mAP.

Bold cells of the paper (its best values) are not recorded; chosen hyper-parameter settings are
(``chosen`` in Table XII). Table I is a formula, reproduced by simulation in
:func:`dsanet.models.sas.simulate_stream_dropout`, not a number; Fig. 5 is a plot without values.
"""
from __future__ import annotations

import math

import pandas as pd

NA = math.nan


def _frame(columns: list[str], rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def table_ii() -> pd.DataFrame:
    """Table II: the data split of Wen et al. after sampling (identities, faces, voice clips)."""
    return _frame(["row", "train", "val", "test", "total"], [
        ("identities", 924, 112, 189, 1225),
        ("faces", 104724, 12260, 20076, 137060),
        ("voices", 113322, 14182, 21850, 149354),
    ])


def table_iii() -> pd.DataFrame:
    """Table III: matching accuracy (%) on the PINs split, binary (k=2) and 1:10 multi-way."""
    return _frame(["row", "venue", "vf", "fv", "vf10", "fv10"], [
        ("DIMNet", "ICLR2019", 84.12, 84.03, 39.75, NA),
        ("PINs", "ECCV2018", 84.00, NA, 31.00, NA),
        ("SSNet", "DIC2019", 78.00, 78.50, 30.00, 30.05),
        ("AML", "TMM2021", 92.72, 93.3, 43.45, 39.35),
        ("DSANet", "Ours", 95.25, 94.28, 46.83, 43.36),
    ])


def table_iv() -> pd.DataFrame:
    """Table IV: the headline on Wen et al.'s split: matching accuracy (%), k = 2 and 10, and
    retrieval mAP (%). SVHF's 1:10 F-V cell is printed as "x" and is NaN here."""
    return _frame(["row", "venue", "vf", "fv", "vf10", "fv10", "map_vf", "map_fv"], [
        ("SVHF", "CVPR2018", 81.0, 79.5, 34.5, NA, NA, NA),
        ("DIMNet", "ICLR2019", 81.3, 81.9, 38.4, 36.2, 4.3, 3.8),
        ("Wang et al.", "ACM2020", 83.4, 84.2, 39.7, 36.4, 4.4, 3.4),
        ("Wen et al.", "CVPR2021", 87.2, 86.5, 48.2, 44.8, 5.5, 5.8),
        ("AML", "TMM2021", 89.4, 86.3, 46.2, 43.7, 4.8, 4.5),
        ("DSANet", "Ours", 92.5, 88.4, 49.1, 46.8, 6.3, 6.1),
    ])


def table_v() -> pd.DataFrame:
    """Table V: ablation of DEM, SAS and the AMCE loss on binary matching accuracy (%)."""
    return _frame(["row", "dem", "sas", "amce", "vf", "fv"], [
        ("a", False, False, False, 90.2, 86.6),
        ("b", True, False, False, 89.9, 87.9),
        ("c", False, True, False, 91.3, 87.0),
        ("d", False, False, True, 91.6, 87.5),
        ("e", True, True, False, 92.1, 88.0),
        ("f", False, True, True, 91.6, 87.9),
        ("g", True, True, True, 92.5, 88.4),
    ])


def table_vi() -> pd.DataFrame:
    """Table VI: cascading 1, 2 or 3 DEM layers (2, 6, 14 streams); binary accuracy (%)."""
    return _frame(["row", "figure", "layers", "vf", "fv"], [
        ("1-layer DEM", "Fig. 6 (a)", 1, 92.5, 88.4),
        ("2-layer DEM", "Fig. 6 (b)", 2, 92.6, 88.6),
        ("3-layer DEM", "Fig. 6 (c)", 3, 92.7, 88.0),
    ])


def table_vii() -> pd.DataFrame:
    """Table VII: single-stream GAN vs siamese SAS for each enhancement; binary accuracy (%)."""
    return _frame(["row", "structure", "enhancement", "figure", "vf", "fv"], [
        ("GAN baseline", "GAN", "baseline", "", 90.2, 86.6),
        ("GAN subtle", "GAN", "subtle", "Fig. 8 (a)", 91.8, 87.7),
        ("GAN salient", "GAN", "salient", "Fig. 8 (b)", 91.9, 86.3),
        ("GAN concatenate", "GAN", "concatenate", "Fig. 8 (c)", 89.9, 87.9),
        ("SAS subtle", "SAS", "subtle", "Fig. 8 (d)", 91.8, 87.9),
        ("SAS salient", "SAS", "salient", "Fig. 8 (e)", 92.0, 88.0),
        ("SAS subtle + salient", "SAS", "dual", "", 92.5, 88.4),
    ])


def table_viii() -> pd.DataFrame:
    """Table VIII: classification losses BCE, GBCE, focal, AMCE; accuracy (%), k = 2 and 10."""
    return _frame(["row", "vf", "fv", "vf10", "fv10"], [
        ("BCE", 92.1, 88.0, 47.2, 47.0),
        ("GBCE", 91.8, 88.2, 49.0, 47.5),
        ("Focal", 92.2, 87.7, 48.5, 46.9),
        ("AMCE", 92.5, 88.4, 49.1, 46.8),
    ])


def table_ix() -> pd.DataFrame:
    """Table IX: adversarial networks GAN, WGAN, SAGAN in SAS; accuracy (%), k = 2 and 10."""
    return _frame(["row", "vf", "fv", "vf10", "fv10"], [
        ("GAN", 90.9, 86.2, 45.8, 43.9),
        ("WGAN", 92.1, 87.5, 47.6, 45.4),
        ("SAGAN", 92.5, 88.4, 49.1, 46.8),
    ])


def table_x() -> pd.DataFrame:
    """Table X: metric losses triplet, lifted structure, structured metric; accuracy (%),
    k = 2 and 10."""
    return _frame(["row", "vf", "fv", "vf10", "fv10"], [
        ("Triplet", 91.7, 84.5, 46.5, 44.6),
        ("Lifted Structure", 92.5, 88.4, 48.9, 45.5),
        ("Structure Metric", 92.5, 88.4, 49.1, 46.8),
    ])


def table_xi() -> pd.DataFrame:
    """Table XI: feature selection (peak, patch, both) x manipulation (suppress, enhance, dual);
    binary accuracy (%)."""
    return _frame(["row", "strategy", "vf", "fv"], [
        ("baseline", "Baseline", 90.2, 86.6),
        ("a", "Only Peak Suppression", 92.2, 87.7),
        ("b", "Only Patch Suppression", 92.1, 88.2),
        ("c", "Only Peak Enhancement", 92.0, 88.1),
        ("d", "Only Patch Enhancement", 91.9, 88.3),
        ("e", "Only Peak DSANet", 92.3, 87.7),
        ("f", "Only Patch DSANet", 92.1, 88.5),
        ("g", "Subtle + Salient (DSANet)", 92.5, 88.4),
    ])


_XII = {  # param: (task, chosen, [(setting, vf, fv), ...]); matching in ACC %, retrieval in mAP %
    "lambda": ("matching", 2, [(1, 91.6, 86.8), (1.5, 92.0, 87.5), (2, 92.5, 88.4), (2.5, 91.9, 87.3)]),
    "mu": ("matching", 3, [(1, 91.6, 87.4), (2, 92.0, 87.8), (3, 92.5, 88.4), (4, 92.1, 88.1)]),
    "alpha": ("matching", 1, [(0.5, 92.0, 88.5), (1, 92.5, 88.4), (1.5, 91.9, 88.3), (2, 92.1, 88.2)]),
    "beta": ("matching", 0.9, [(1, 92.2, 88.4), (0.9, 92.5, 88.4), (0.7, 92.3, 87.8), (0.5, 92.1, 87.1)]),
    "c": ("matching", 4, [(2, 92.2, 87.9), (3, 92.3, 88.1), (4, 92.5, 88.4), (5, 92.2, 88.0)]),
    "r": ("matching", 4, [(2, 92.3, 88.4), (3, 91.9, 88.0), (4, 92.5, 88.4), (5, 92.0, 88.3)]),
    "lambda1": ("retrieval", 0.1, [(0.05, 6.1, 6.0), (0.1, 6.3, 6.1), (0.2, 5.3, 5.1), (0.4, 4.8, 4.5)]),
    "mu1": ("retrieval", 0.2, [(0.1, 5.5, 5.2), (0.2, 6.3, 6.1), (0.4, 6.1, 5.7), (0.6, 5.6, 5.5)]),
}


def table_xii() -> pd.DataFrame:
    """Table XII: hyper-parameters lambda, mu (eq. 24), alpha, beta (eqs. 8-9), c, r (eq. 3) on
    binary matching accuracy (%), and lambda_1, mu_1 (eq. 25) on retrieval mAP (%).

    Long format: one row per (param, setting); ``metric`` is "acc" or "map"; ``chosen`` marks the
    setting the paper adopts (Config's defaults). Param names are Config field names
    (lambda -> ``lam``, mu -> ``mu``, lambda1 -> ``lam1``, mu1 -> ``mu1``) in ``field``.
    """
    fields = {"lambda": "lam", "lambda1": "lam1"}
    rows = [(f"{p}={s:g}", p, fields.get(p, p), s, task, "acc" if task == "matching" else "map",
             s == chosen, vf, fv)
            for p, (task, chosen, cells) in _XII.items() for s, vf, fv in cells]
    return _frame(["row", "param", "field", "setting", "task", "metric", "chosen", "vf", "fv"],
                  rows)


TABLES = {"II": table_ii, "III": table_iii, "IV": table_iv, "V": table_v, "VI": table_vi,
          "VII": table_vii, "VIII": table_viii, "IX": table_ix, "X": table_x, "XI": table_xi,
          "XII": table_xii}
_ARABIC = {2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX", 10: "X",
           11: "XI", 12: "XII"}


def table(name: str | int) -> pd.DataFrame:
    """A table of the paper by Roman numeral ("IV", "Table IV", "iv") or number (4)."""
    key = _ARABIC.get(name) if isinstance(name, int) else \
        str(name).strip().upper().removeprefix("TABLE").strip()
    if key not in TABLES:
        raise KeyError(f"no table {name!r} in the paper's data; choose one of {list(TABLES)}")
    return TABLES[key]()


def dsanet_headline() -> dict[str, float]:
    """DSANet's Table IV row: {vf, fv, vf10, fv10, map_vf, map_fv} in percent."""
    row = table_iv().set_index("row").loc["DSANet"]
    return {c: float(row[c]) for c in ("vf", "fv", "vf10", "fv10", "map_vf", "map_fv")}
