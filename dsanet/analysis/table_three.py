"""Table III (notebook 06): DSANet under the Learnable-PINs data setting, beside the paper's rows.

The paper's Table III trains and tests on the identity split of Learnable PINs (Nagrani et al.,
ECCV 2018; 901 / 100 / 250 VoxCeleb1 identities, faces from the VoxCeleb1 videos), not Wen et
al.'s. Here that is the ``"pins"`` split protocol (:mod:`dsanet.data.splits`): on real data from
the user's lists, on the embedded benchmark from lists of the same proportions drawn at random
(:func:`pins_lists`). Its runs are Table IV's DSANet recipe on that split, over the same seeds;
binary and 10-way accuracies are exact, scored by embedding distance (the 10-way cells read the
binary model at k = 10, as Table IV's "k=2 model at k=10" row) and by the classifier (binary).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import Config
from ..data.splits import write_pins_like_lists
from ..experiments import Run, cached_run, fmt_cell, identity_records
from ..paper import table as paper_table

PINS_LIKE = "splits/pins_like.csv"   # under an embedded benchmark's root
III_HEADS = {"vf": "Binary V-F", "fv": "Binary F-V", "vf10": "Multi-way V-F", "fv10": "Multi-way F-V"}
_III = [("vf", "V-F", 2), ("fv", "F-V", 2), ("vf10", "V-F", 10), ("fv10", "F-V", 10)]


def pins_lists(cfg: Config, lists=None) -> str | None:
    """The split lists of Table III's runs: ``lists`` when given (the user's Learnable-PINs
    lists); on the embedded benchmark (a tree with ``calibration.json``), lists of the PINs
    proportions written once under its root (:data:`PINS_LIKE`); None otherwise (real data
    without lists: Table III is skipped, and the notebook says so)."""
    if lists:
        return str(lists)
    root = Path(cfg.data_root)
    if not (root / "calibration.json").is_file():
        return None
    path = root / PINS_LIKE
    if not path.is_file():
        from ..data.layout import load_index

        write_pins_like_lists(load_index(root, cfg.meta, cfg.voice_root, cfg.face_root).identities,
                              path, seed=0)
    return str(path)


def table_three_configs(cfg: Config, seeds, lists: str) -> list[Config]:
    """DSANet (Table IV's k = 2 recipe, ``cfg``) on the PINs split, one run per seed."""
    return [cfg.replace(seed=int(s), split_protocol="pins", split_lists=str(lists)) for s in seeds]


def table_three_runs(cfg: Config, seeds, lists: str, runs_root) -> list[Run]:
    """The runs of :func:`table_three_configs`, read back (notebook 01 trains them in its pool)."""
    return [cached_run(c, runs_root) for c in table_three_configs(cfg, seeds, lists)]


def table_three(runs: list[Run]) -> pd.DataFrame:
    """Our Table III cells (percent): per scorer and column, the mean over seeds with its 95%
    interval over seeds and test identities (:func:`dsanet.claims.cell_intervals`)."""
    from .. import claims

    recs = []
    for scorer in ("distance", "classifier"):
        for key, direction, k in _III:
            if scorer == "classifier" and k != 2:
                continue   # the binary head scores two candidates; its k = 10 is not trained
            sel = {"task": "matching", "direction": direction, "k": k, "protocol": "U",
                   "metric": "acc", "scorer": scorer}
            for run in runs:
                try:
                    recs.append(identity_records(run, sel, scorer=scorer, column=key,
                                                 row=f"DSANet (ours, {scorer})", seed=run.cfg.seed,
                                                 metric="acc", k=k, run=run.dir.name))
                except KeyError:   # a k the run did not evaluate (eval_ks; smoke: no k = 10)
                    continue
    return claims.cell_intervals(pd.concat(recs, ignore_index=True))


def wide_table_three(cells: pd.DataFrame) -> pd.DataFrame:
    """The paper's rows of Table III, then ours, in its column order ("-": not reported)."""
    paper = paper_table("III")
    lines = [{"row": "DSANet (paper)" if r.venue == "Ours" else f"{r.row} ({r.venue})",
              **{h: "-" if pd.isna(getattr(r, k)) else f"{getattr(r, k):.2f}"
                 for k, h in III_HEADS.items()}} for r in paper.itertuples()]
    for row, g in cells.groupby("row", sort=False):
        c = g.set_index("column")
        lines.append({"row": row, **{h: fmt_cell(*c.loc[k, ["mean", "ci_low", "ci_high"]])
                                     if k in c.index else "-" for k, h in III_HEADS.items()}})
    return pd.DataFrame(lines)


def made_of_three(runs: list[Run], lists: str, embedded: bool) -> dict:
    """How Table III was made (for its Markdown header)."""
    cfg = runs[0].cfg
    where = ("the embedded benchmark split at random in the Learnable-PINs proportions "
             f"(901 : 100 : 250; `{lists}`), not by initials" if embedded
             else f"the Learnable-PINs identity lists `{lists}`")
    return {"profile": cfg.profile, "steps": cfg.steps, "batch_size": cfg.batch_size,
            "backbone": cfg.backbone, "seeds": sorted(r.cfg.seed for r in runs),
            "interval": "seeds and test identities", "protocol": cfg.backbone_train,
            "runs": [r.dir.name for r in runs],
            "note": f"Split: {where}. DSANet is Table IV's k = 2 recipe trained on that split; "
                    "accuracies are exact over every tuple of its test split, scored by "
                    "embedding distance (the multi-way cells read the binary model at k = 10) "
                    "and by the classifier (binary). The other rows are the paper's."}


__all__ = ["III_HEADS", "PINS_LIKE", "made_of_three", "pins_lists", "table_three",
           "table_three_configs", "table_three_runs", "wide_table_three"]
