"""Tables V-XII as :class:`Table` specs of named presets, the sweep's budgets and seeds, and the
config of every cell.

Each table's rows are ``(row name, Config overrides)`` on top of a base profile config, and its
columns say which run fills them (``k=10`` columns train a 10-way classifier) and which metric
cell of the run's tidy evaluation they read. Row names are the paper's row labels
(``dsanet.paper.table(name)``), so the two join one-to-one.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config

# ----------------------------------------------------------------------------- table specs


# What ranks the candidates of a matching tuple: "classifier" (the matching head's k logits, the
# paper's; docs/fidelity.md) and, beside it, "distance" (negative Euclidean distance of the
# embeddings, what the structured metric of eqs. 21-22 trains). Every table carries both.
SCORERS = ("classifier", "distance")

# How a table sweep trains its runs, by profile: Config overrides applied by :func:`budget`.
# quick: the sweep protocol of docs/fidelity.md ("Session 7") - every row starts from the same
# identity-pretrained backbones and keeps them frozen; their activation maps are computed once per
# data tree (training views: voice crops, face flips; dsanet.engine.maps) and DEM, the generator,
# the discriminator and the heads train on them (~5x cheaper a run than end to end). Table IV and
# Figs. 5 and 7 train end to end. smoke: the same path in seconds. paper: end to end (a GPU).
SWEEP_PROTOCOL = {
    "quick": {"backbone_train": "frozen"},
    "smoke": {"backbone_train": "frozen", "backbone_init": "identity", "pretrain_steps": 2},
}
# Training steps per run of a table sweep, by profile (None: the profile's own steps), each run
# with its learning-rate schedule over those steps (see budget). quick: 600, what 255 runs (5 seeds
# of Tables V-XI, 3 of XII) allow on 2 CPU cores; on validation the DSANet row is there ~1.5
# points below its own 2,400-step run under this protocol (900 steps: ~0.6 below), so near, not
# at, the plateau (docs/fidelity.md, "Session 7").
SWEEP_STEPS = {"smoke": 2, "quick": 600, "paper": None, "published": None}
# Steps of Table IV's published-script rows (None: the profile's). At quick sizes a step of the
# published preset costs ~3x ours (its CNN resizes the inputs up to 224 px), so the two runs get a
# quarter of the headline's steps, with the script's schedule scaled to them.
PUBLISHED_STEPS = {"quick": 600}
# Training seeds per cell: 5 for Tables V-XI, 3 for XII (a row's estimate is its mean over seeds;
# the interval covers seeds and test identities, dsanet.claims).
SWEEP_SEEDS = {"XII": 3}
DEFAULT_SEEDS = 5


def table_seeds(table: str, seeds: int | None = None, smoke: bool = False) -> list[int]:
    """Seeds of ``table``'s cells: ``seeds`` if given, else :data:`SWEEP_SEEDS` (1 in smoke)."""
    n = seeds or (1 if smoke else SWEEP_SEEDS.get(get_table(table).name, DEFAULT_SEEDS))
    return list(range(int(n)))


@dataclass(frozen=True)
class Column:
    """One result column: the run that fills it and the metric cell read from that run."""

    name: str                   # header, e.g. "V-F" or "V-F (k=10)"
    key: str                    # the paper's column in dsanet.paper.table: "vf", "fv10", ...
    direction: str              # "vf" | "fv"
    k: int = 2                  # candidates per tuple, for training and for the accuracy read
    protocol: str = "U"         # "U" (unconstrained) | "G" (negatives of the anchor's gender)

    def run_overrides(self) -> dict:
        """Config changes for the run behind this column (``k`` candidates in training)."""
        return {"k": self.k} if self.k != 2 else {}

    def select(self, task: str, scorer: str = SCORERS[0]) -> dict:
        """Filters on the tidy metrics frame of a run of ``task`` that give this cell."""
        label = {"vf": "V-F", "fv": "F-V"}[self.direction]        # engine.evaluate's labels
        if task == "retrieval":
            return {"task": "retrieval", "direction": label, "metric": "map"}
        return {"task": "matching", "direction": label, "k": self.k,
                "protocol": self.protocol, "metric": "acc", "scorer": scorer}


@dataclass(frozen=True)
class Table:
    name: str                                   # the paper's numeral: "V" ... "XII"
    title: str
    rows: tuple[tuple[str, dict], ...]
    columns: tuple[Column, ...]
    note: str = ""                              # choices made where the paper is ambiguous


BINARY = (Column("V-F", "vf", "vf", 2), Column("F-V", "fv", "fv", 2))
MULTI = (Column("V-F (k=10)", "vf10", "vf", 10), Column("F-V (k=10)", "fv10", "fv", 10))

# Table V's components, as overrides; DSANet (row g) is the defaults.
BASELINE = {"structure": "gan", "enhancement": "none", "cls_loss": "bce"}   # one-stream adversarial
DEM_ONLY = {"structure": "gan", "enhancement": "dual", "cls_loss": "bce"}   # = VII "Concatenate"
DSANET: dict = {}


_PAPER_SYMBOL = {"lam": "lambda", "lam1": "lambda1"}   # Config field -> the paper's symbol
NOT_IN_PAPER = {"LSGAN"}   # rows of ours that the paper's tables do not have


def _sweep(field_: str, values, extra: dict | None = None) -> list[tuple[str, dict]]:
    """Rows ``"<symbol>=<value>"`` (the paper's labels) setting one Config field."""
    symbol = _PAPER_SYMBOL.get(field_, field_)
    return [(f"{symbol}={v:g}", {field_: v, **(extra or {})}) for v in values]


TABLES: dict[str, Table] = {t.name: t for t in [
    Table("V", "Ablation of DEM, SAS and AMCE (binary matching)", (
        ("a", BASELINE),
        ("b", DEM_ONLY),
        ("c", {"structure": "sas", "enhancement": "none", "cls_loss": "bce"}),
        ("d", {"structure": "gan", "enhancement": "none", "cls_loss": "amce"}),
        ("e", {"structure": "sas", "enhancement": "dual", "cls_loss": "bce"}),
        ("f", {"structure": "sas", "enhancement": "none", "cls_loss": "amce"}),
        ("g", DSANET),
    ), BINARY),
    Table("VI", "Cascaded DEM layers (2, 6, 14 streams)", (
        ("1-layer DEM", {"dem_layers": 1}),
        ("2-layer DEM", {"dem_layers": 2}),
        ("3-layer DEM", {"dem_layers": 3}),
    ), BINARY),
    Table("VII", "One adversarial stream (GAN) against the siamese structure (SAS)", (
        ("GAN baseline", BASELINE),
        ("GAN subtle", {"structure": "gan", "enhancement": "subtle", "cls_loss": "bce"}),
        ("GAN salient", {"structure": "gan", "enhancement": "salient", "cls_loss": "bce"}),
        ("GAN concatenate", DEM_ONLY),
        ("SAS subtle", {"structure": "sas", "enhancement": "subtle"}),
        ("SAS salient", {"structure": "sas", "enhancement": "salient"}),
        ("SAS subtle + salient", DSANET),
    ), BINARY, note="GAN rows use BCE (Baseline and Concatenate carry Table V(a), (b)'s numbers); "
                    "SAS rows use AMCE (the DSANet row is Table V(g))."),
    Table("VIII", "Classification losses (binary and 10-way)", tuple(
        (name, {"cls_loss": loss}) for name, loss in
        [("BCE", "bce"), ("GBCE", "gbce"), ("Focal", "focal"), ("AMCE", "amce")]
    ), BINARY + MULTI),
    Table("IX", "Adversarial networks (binary and 10-way)", tuple(
        (name, {"adversarial": adv}) for name, adv in
        [("GAN", "gan"), ("WGAN", "wgan"), ("LSGAN", "lsgan"), ("SAGAN", "sagan")]
    ), BINARY + MULTI, note="LSGAN (least squares, Mao et al. 2017) is not in the paper: it shows "
                            "that a registered variant (dsanet/variants.py) is one entry."),
    Table("X", "Metric losses (binary and 10-way)", tuple(
        (name, {"metric_loss": m}) for name, m in
        [("Triplet", "triplet"), ("Lifted Structure", "lifted"), ("Structure Metric", "structured")]
    ), BINARY + MULTI),
    Table("XI", "Feature selection strategies (binary matching)", (
        ("baseline", BASELINE),
        ("a", {"selection": "peak", "enhancement": "subtle"}),    # only peak suppression
        ("b", {"selection": "patch", "enhancement": "subtle"}),   # only patch suppression
        ("c", {"selection": "peak", "enhancement": "salient"}),   # only peak enhancement
        ("d", {"selection": "patch", "enhancement": "salient"}),  # only patch enhancement
        ("e", {"selection": "peak", "enhancement": "dual"}),      # only peak DSANet
        ("f", {"selection": "patch", "enhancement": "dual"}),     # only patch DSANet
        ("g", DSANET),                                            # peak + patch (DSANet)
    ), BINARY, note="Suppression = subtle stream only (eq. 9), enhancement = salient only (eq. 8), "
                    "both in the siamese structure."),
    Table("XII", "Hyper-parameters: matching (lambda ... r), retrieval mAP (lambda1, mu1)", tuple(
        _sweep("lam", [1.0, 1.5, 2.0, 2.5]) + _sweep("mu", [1.0, 2.0, 3.0, 4.0])
        + _sweep("alpha", [0.5, 1.0, 1.5, 2.0]) + _sweep("beta", [1.0, 0.9, 0.7, 0.5])
        + _sweep("c", [2, 3, 4, 5]) + _sweep("r", [2, 3, 4, 5])
        + _sweep("lam1", [0.05, 0.1, 0.2, 0.4], {"task": "retrieval"})
        + _sweep("mu1", [0.1, 0.2, 0.4, 0.6], {"task": "retrieval"})
    ), BINARY, note="lam1 / mu1 rows are retrieval runs; their cells are mAP, the others accuracy."),
]}


def table_names() -> list[str]:
    return list(TABLES)


def get_table(name: str) -> Table:
    key = str(name).upper().removeprefix("TABLE").strip()
    if key not in TABLES:
        raise KeyError(f"no preset table {name!r}; choose one of {table_names()}")
    return TABLES[key]


def presets(table: str) -> list[tuple[str, dict]]:
    """The rows of ``table`` as ``(row name, Config overrides)``, in the paper's order."""
    return [(row, dict(ov)) for row, ov in get_table(table).rows]


def budget(base: Config, steps: int | None = None) -> Config:
    """A base config for a sweep: the profile's sweep protocol (:data:`SWEEP_PROTOCOL`) and
    ``steps`` steps with the learning-rate schedule over those steps, validated at half-way and at
    the end, with the two evaluation sizes the tables read (k = 2 and 10) - the same for every
    table, notebook 02's adversarial-target runs and notebook 03's tracked run, so that runs
    shared between them are the same config and train once."""
    base = base.replace(**SWEEP_PROTOCOL.get(base.profile, {}))
    if steps is None or int(steps) == base.steps:
        return base
    return base.replace(steps=int(steps), eval_every=max(1, int(steps) // 2), schedule_steps=0,
                        eval_ks=tuple(sorted({2, 10})))


def retrieval_row(base: Config, overrides: dict, seed: int, runs_root=None) -> Config:
    """A retrieval row of Table XII: eq. (25) on the paper's retrieval schedule
    (:func:`dsanet.config.retrieval_profile`), fine-tuning the matching model of its seed (Sec.
    III-E, as Table IV's retrieval run): ``init_from`` the best checkpoint of the sweep's DSANet
    run (``base`` at ``seed``) under ``runs_root`` (from scratch when ``runs_root`` is None)."""
    from ..config import retrieval_profile
    from .cache import run_dir   # cache imports nothing of this module

    cfg = retrieval_profile(base.replace(**overrides, seed=int(seed)))
    if runs_root is None:
        return cfg
    return cfg.replace(init_from=str(run_dir(base.replace(seed=int(seed)), runs_root) / "best.pt"))


def cell_configs(table: str, base: Config, seeds, rows: int | None = None, runs_root=None
                 ) -> list[tuple[str, Column, int, Config]]:
    """Every (row, column, seed) of ``table`` with the config of the run behind it
    (only the first ``rows`` rows when given). Retrieval rows fine-tune their seed's matching run
    under ``runs_root`` (:func:`retrieval_row`)."""
    t = get_table(table)
    out = []
    for row, ov in t.rows[:rows]:
        for col in t.columns:
            for s in seeds:
                if ov.get("task") == "retrieval":
                    cfg = retrieval_row(base, {**ov, **col.run_overrides()}, s, runs_root)
                else:
                    cfg = base.replace(**{**ov, **col.run_overrides(), "seed": int(s)})
                out.append((row, col, int(s), cfg))
    return out


def table_configs(tables, base_cfg: Config, seeds=(0,), steps: int | None = None,
                  rows: int | None = None, runs_root=None) -> list[Config]:
    """The config of every cell of ``tables`` (duplicates included), as :func:`run_table` does."""
    base = budget(base_cfg, steps)
    return [c for t in tables for *_, c in cell_configs(t, base, seeds, rows, runs_root)]
