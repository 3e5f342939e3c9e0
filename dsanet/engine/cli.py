"""``python -m dsanet train`` and ``python -m dsanet evaluate``.

``train``: build the config (profile < ``--config FILE`` < ``--set`` < ``--steps/--seed/--device``),
write it to ``RUN/config.json``, generate the embedded benchmark first when ``--data`` is missing
and the profile is ``smoke`` or ``quick``, train (resuming ``RUN/last.pt`` unless
``--no-resume``; a finished run given a larger ``--steps`` goes on to it), evaluate the selected
checkpoint on the test split, write ``RUN/metrics.json``, ``RUN/metrics.csv`` and a TensorBoard
log of the curves (``RUN/tensorboard/``), then print a summary table.

``evaluate``: the same evaluation and files for a given checkpoint, or with ``--list FILE`` the
metrics of list files (Wen et al.'s formats, the published F-V list, ``protocols`` output). It
prints every matching cell with its ``method``: "exact" (the expectation over every tuple of the
split, for pairwise scorers), "sampled" (a jointly-scoring head) or "listed" (a list file).

The profile is ``--profile``, else the config file's ``profile``, else ``$DSANET_PROFILE``, else
``quick`` (``reproduce`` reads ``$DSANET_PROFILE`` the same way).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import pandas as pd

from ..config import PROFILE_ENV, PROFILES, Config, get_profile
# a mistake on the command line (one line, exit status 2); it lives below this module and
# dsanet.inference, which both raise it, and is re-exported here
from ..config_rules import UsageError  # noqa: F401
from ..config_file import data_root_config, field_types, from_scratch_warning, read_config_file

# every name get_profile accepts: the profiles, and "published" (the preset on the paper profile)
PROFILE_CHOICES = (*PROFILES, "published")


# ----------------------------------------------------------------------------- --set parsing

def parse_value(key: str, text: str):
    """``text`` converted to the type of Config field ``key`` (tuples: comma-separated)."""
    types = field_types()
    if key not in types:
        raise argparse.ArgumentTypeError(f"--set {key}=...: Config has no field {key!r}")
    t = types[key]
    if "None" in t and text.lower() in ("none", "null", ""):
        return None
    if "tuple" in t:
        elem = int if "int" in t.split("[", 1)[1] else float
        try:
            return tuple(elem(v) for v in text.split(",") if v.strip())
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"--set {key}={text}: expected comma-separated "
                                             f"{elem.__name__} values") from e
    default = getattr(Config(), key)
    kind = type(default) if default is not None else (float if "float" in t else str)
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"--set {key}={text}: expected true or false")
    try:
        return kind(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--set {key}={text}: expected {kind.__name__}") from e


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--set {item!r}: expected key=value")
        key, text = item.split("=", 1)
        out[key.strip()] = parse_value(key.strip(), text.strip())
    return out


# ----------------------------------------------------------------------------- arguments

def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The options that resolve a config (:func:`config_from_args`): profile, file, data, sets, device."""
    p.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                   help="run size: smoke (seconds, every code path), quick (embedded benchmark on "
                        "2 CPU cores, minutes), paper (VoxCeleb1 + VGGFace, ResNet18, a GPU), "
                        "published (the authors' script on top of paper); default: the --config "
                        f"file's profile, else ${PROFILE_ENV}, else quick")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="YAML or JSON file of Config fields applied over the profile (a run's "
                        "config.json works); --set and the flags below override it")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data root with voices/, faces/ and a meta CSV (default: the profile's "
                        "data_root); for smoke / quick a missing DIR is generated first")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override any Config field, repeatable (e.g. --set lr_backbone=1e-3 "
                        "--set lr_milestones=600,1000 --set grad_clip=none)")
    p.add_argument("--device", default=None,
                   help="auto (CUDA when available), cpu, cuda or cuda:N (Config.device)")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as JSON and exit without training")
    p.add_argument("--out", metavar="RUN", default=None,
                   help="run folder (required to train): config.json, checkpoints (last.pt, "
                        "best.pt), history.csv, tensorboard/, metrics.json/csv")
    p.add_argument("--steps", type=int, default=None,
                   help="training iterations (Config.steps); more than a finished run's steps "
                        "continues that run to the new total")
    p.add_argument("--seed", type=int, default=None, help="random seed (Config.seed)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from RUN/last.pt when it exists (--no-resume starts afresh)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar with the live losses (only on a terminal, never "
                        "in the smoke profile)")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="PATH", required=True,
                   help="a checkpoint written by train (RUN/best.pt or RUN/last.pt)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data root to evaluate on (default: the checkpoint's data_root)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="folder for config.json, metrics.json and metrics.csv")
    p.add_argument("--list", metavar="FILE", action="append", default=[], dest="lists",
                   help="score this list file instead of the built-in protocols (repeatable): "
                        "Wen et al.'s matching / verification / retrieval lists, the published "
                        "DSANet F-V list, or a file written by 'protocols'")
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="split whose items the lists name (default: test)")
    p.add_argument("--strip", metavar="PREFIX", action="append", default=[],
                   help="path prefix to remove from list entries (repeatable; absolute prefixes "
                        "up to the identity folder are recognised without it)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override evaluation settings (e.g. eval_tuples, bootstrap, eval_ks)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar over the evaluation cells (only on a terminal, never in "
                        "the smoke profile)")


# ----------------------------------------------------------------------------- helpers

def profile_name(args, file_fields: dict) -> str:
    """--profile, else the config file's profile, else $DSANET_PROFILE, else quick."""
    if getattr(args, "profile", None):
        return args.profile
    if file_fields.get("profile") in PROFILE_CHOICES:
        return file_fields["profile"]
    name = os.environ.get(PROFILE_ENV) or "quick"
    if name not in PROFILE_CHOICES:
        raise UsageError(f"${PROFILE_ENV}={name!r}: choose one of {', '.join(PROFILE_CHOICES)}")
    return name


def config_from_args(args) -> Config:
    """The run's config: profile < --config file < --set < --steps / --seed / --device / --data.

    Without ``--config``, a ``--data`` root that ``prepare`` made is read with its config file
    (``DATA_ROOT/dsanet.yaml``: :func:`dsanet.config_file.data_root_config`), as the notebooks
    read it."""
    config_file = getattr(args, "config", None)
    if config_file:
        fields = read_config_file(config_file)
    elif getattr(args, "data", None) is not None:
        fields = data_root_config(args.data)[1]
    else:
        fields = {}
    name = profile_name(args, fields)
    fields.pop("profile", None)
    try:
        over = {**fields, **parse_sets(args.set)}
    except argparse.ArgumentTypeError as e:
        raise UsageError(str(e)) from e
    for key in ("steps", "seed", "device"):
        if getattr(args, key, None) is not None:
            over[key] = getattr(args, key)
    if args.data is not None:
        over["data_root"] = str(args.data)
    try:
        return get_profile(name, **over)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e


def check_out_dir(out, option: str = "--out") -> Path:
    """A folder to write into: refuse an existing file before any work is done."""
    if out is None:
        raise UsageError(f"{option} is required")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    return path


def write_config(cfg: Config, out_dir) -> Path:
    """``<out>/config.json``: the resolved config (``--config`` reads it back)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    path.write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
    return path


def _plain(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return _plain(v.item())
    return v


def write_metrics(metrics: pd.DataFrame, out_dir, cfg: Config, checkpoint, step,
                  lists=None) -> Path:
    """RUN/metrics.csv (the tidy table) and RUN/metrics.json (config, checkpoint, every metric)."""
    from .evaluate import headline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out / "metrics.csv", index=False)
    records = [{k: _plain(v) for k, v in row.items()} for row in metrics.to_dict(orient="records")]
    head = {k: _plain(v) for k, v in headline(metrics).iloc[0].items()}
    doc = {"checkpoint": str(checkpoint) if checkpoint else None, "step": step,
           "headline_percent": head, "metrics": records, "config": cfg.to_dict()}
    if lists:
        doc["lists"] = [str(p) for p in lists]
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    return out / "metrics.json"


def summary_table(metrics: pd.DataFrame, every_k: bool = False) -> str:
    """Binary and 10-way matching (U, G), verification and retrieval, in percent with 95% CIs."""
    from .evaluate import as_percent

    df = as_percent(metrics)
    if not every_k:
        df = df[(df.task != "matching") | df.k.isin([2, 10])].copy()
    df["95% CI"] = [f"[{lo:.1f}, {hi:.1f}]" for lo, hi in zip(df.ci_low, df.ci_high)]
    df["value"] = df.value.map(lambda v: f"{v:.1f}")
    cols = ["task", "direction", "protocol", "k", "scorer", "metric", "value", "95% CI", "n"]
    cols += ["method"] if "method" in df.columns else []   # exact | sampled | listed
    return df[cols].to_string(index=False)


def exact_note(metrics: pd.DataFrame) -> str:
    """One line saying which matching cells are exact (every tuple of the split) and which not."""
    m = metrics[metrics.task == "matching"]
    if "method" not in m.columns or m.empty:
        return ""
    exact = m[m.method == "exact"]
    line = (f"exact (expectation over every tuple of the split, identity-bootstrap CIs): "
            f"{len(exact)} of {len(m)} matching cells")
    other = m[m.method != "exact"]
    if len(other):
        what = ", ".join(sorted({f"{r.scorer} k={r.k} ({r.method}, n={r.n})"
                                 for r in other.itertuples()}))
        line += f"; not exact: {what}"
    return line


def _progress(args, cfg: Config) -> bool:
    return bool(getattr(args, "progress", True)) and not getattr(args, "quiet", False) \
        and cfg.profile != "smoke"


# ----------------------------------------------------------------------------- commands

def run_train(args) -> int:
    from ..data.embedded import ensure_data
    from .tblog import write_tensorboard
    from .train import train

    cfg = config_from_args(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=1))
        return 0
    out = check_out_dir(args.out)
    last = out / "last.pt"
    if args.resume and last.is_file():   # refuse a mismatch before config.json is replaced
        from .checkpoint import load_checkpoint
        from .train import check_resumable

        check_resumable(Config.from_dict(load_checkpoint(last)["config"]), cfg, last)
    write_config(cfg, out)
    ensure_data(cfg)   # the embedded benchmark of smoke / quick (its preset's seed), when missing
    warning = from_scratch_warning(cfg)
    if warning:
        from .device import resolve_device

        resolve_device(cfg)   # a run that cannot start (no GPU) stops in one line, unwarned
        print(warning, file=sys.stderr)
    result = train(cfg, out, resume=args.resume, progress=_progress(args, cfg))
    if result.metrics is None:  # a rank other than 0 under torchrun
        return 0
    write_tensorboard(result.history, out)
    path = write_metrics(result.metrics, out, cfg, result.checkpoint, result.step)
    print(summary_table(result.metrics))
    print(f"wrote {path} and {out / 'metrics.csv'}")
    return 0


def run_evaluate(args) -> int:
    from ..inference import load
    from . import distributed as dist
    from .scoring import evaluate_cells, score_lists
    from .train import load_splits

    out = check_out_dir(args.out)
    for p in args.lists:
        if not Path(p).is_file():
            raise UsageError(f"--list {p}: file not found")
    try:
        over = parse_sets(args.set)
    except argparse.ArgumentTypeError as e:
        raise UsageError(str(e)) from e
    if args.data is not None:
        over["data_root"] = str(args.data)
    try:
        model = load(args.checkpoint, device=args.device, **over)
    except (TypeError, ValueError) as e:
        if type(e).__name__ in ("CheckpointError", "DataError"):
            raise
        raise UsageError(str(e)) from e
    cfg = model.cfg
    write_config(cfg, out)
    split = args.split if args.lists else "test"
    cached = load_splits(cfg, [split], dist.DistInfo())[split]
    progress = _progress(args, cfg)
    if args.lists:
        metrics = score_lists(model.net, cached, cfg, args.lists, strip=args.strip,
                              progress=progress)
    else:
        metrics = evaluate_cells(model.net, cached, cfg, progress=progress)
    path = write_metrics(metrics, out, cfg, args.checkpoint, model.step, args.lists)
    print(summary_table(metrics, every_k=True))   # every matching cell, exact ones marked
    note = exact_note(metrics)
    if note:
        print(note)
    print(f"wrote {path} and {out / 'metrics.csv'}")
    return 0
