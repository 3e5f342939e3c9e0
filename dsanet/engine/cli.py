"""``python -m dsanet train`` and ``python -m dsanet evaluate``.

``train``: build the config from a profile plus overrides, generate the embedded benchmark first
when ``--data`` is missing and the profile is ``smoke`` or ``quick``, train (resuming the run
folder's ``last.pt`` unless ``--no-resume``), evaluate the selected checkpoint on the test split
and write ``RUN/metrics.json`` and ``RUN/metrics.csv``, then print a summary table.

``evaluate``: the same evaluation and files for a given checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import typing
from pathlib import Path

import pandas as pd

from ..config import PROFILE_ENV, Config, get_profile

PROFILE_CHOICES = ("smoke", "quick", "paper", "published")
GENERATED_PROFILES = {"smoke": "smoke", "quick": "default"}  # profile -> synthetic preset


# ----------------------------------------------------------------------------- --set parsing

def _field_types() -> dict[str, str]:
    hints = typing.get_type_hints(Config)
    return {name: str(t) for name, t in hints.items()}


def parse_value(key: str, text: str):
    """``text`` converted to the type of Config field ``key`` (tuples: comma-separated)."""
    types = _field_types()
    if key not in types:
        raise argparse.ArgumentTypeError(f"--set {key}=...: Config has no field {key!r}")
    t = types[key]
    if "None" in t and text.lower() in ("none", "null", ""):
        return None
    if "tuple" in t:
        elem = int if "int" in t.split("[", 1)[1] else float
        return tuple(elem(v) for v in text.split(",") if v.strip())
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

def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILE_CHOICES, default=os.environ.get(PROFILE_ENV, "quick"),
                   help="run size: smoke (seconds, every code path), quick (embedded benchmark on "
                        "2 CPU cores, minutes), paper (VoxCeleb1 + VGGFace, ResNet18, a GPU), "
                        f"published (the authors' script on top of paper); default ${PROFILE_ENV} or quick")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data root with voices/, faces/ and a meta CSV (default: the profile's "
                        "data_root); for smoke / quick a missing DIR is generated first")
    p.add_argument("--out", metavar="RUN", required=True,
                   help="run folder: checkpoints (last.pt, best.pt), history.csv, metrics.json/csv")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override any Config field, repeatable (e.g. --set lr_backbone=1e-3 "
                        "--set lr_milestones=600,1000 --set grad_clip=none)")
    p.add_argument("--steps", type=int, default=None, help="training iterations (Config.steps)")
    p.add_argument("--seed", type=int, default=None, help="random seed (Config.seed)")
    p.add_argument("--device", default=None,
                   help="auto (CUDA when available), cpu, cuda or cuda:N (Config.device)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from RUN/last.pt when it exists (--no-resume starts afresh)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar with the live losses (only on a terminal)")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="PATH", required=True,
                   help="a checkpoint written by train (RUN/best.pt or RUN/last.pt)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data root to evaluate on (default: the checkpoint's data_root)")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for metrics.json and metrics.csv")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override evaluation settings (e.g. eval_tuples, bootstrap, eval_ks)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")


# ----------------------------------------------------------------------------- helpers

def config_from_args(args) -> Config:
    over = parse_sets(args.set)
    for name in ("steps", "seed", "device"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    if args.data is not None:
        over["data_root"] = str(args.data)
    return get_profile(args.profile, **over)


def ensure_data(cfg: Config) -> bool:
    """Generate the embedded benchmark at ``cfg.data_root`` when it is missing (smoke / quick)."""
    root = Path(cfg.data_root)
    if root.exists():
        return False
    preset = GENERATED_PROFILES.get(cfg.profile)
    if preset is None:
        raise FileNotFoundError(f"{root}: data folder not found (profile {cfg.profile!r} does not "
                                "generate data; point --data at the VoxCeleb1 + VGGFace tree)")
    from ..data import synthetic

    print(f"{root} does not exist: generating the embedded benchmark there "
          f"(preset {preset!r}, seed {cfg.seed}) ...", flush=True)
    synthetic.generate(root, **{**synthetic.PRESETS[preset], "seed": cfg.seed})
    print(f"generated {root}", flush=True)
    return True


def _plain(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return _plain(v.item())
    return v


def write_metrics(metrics: pd.DataFrame, out_dir, cfg: Config, checkpoint, step) -> Path:
    """RUN/metrics.csv (the tidy table) and RUN/metrics.json (config, checkpoint, every metric)."""
    from .evaluate import headline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(out / "metrics.csv", index=False)
    records = [{k: _plain(v) for k, v in row.items()} for row in metrics.to_dict(orient="records")]
    head = {k: _plain(v) for k, v in headline(metrics).iloc[0].items()}
    doc = {"checkpoint": str(checkpoint) if checkpoint else None, "step": step,
           "headline_percent": head, "metrics": records, "config": cfg.to_dict()}
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    return out / "metrics.json"


def summary_table(metrics: pd.DataFrame) -> str:
    """Binary and 10-way matching (U, G), verification and retrieval, in percent with 95% CIs."""
    from .evaluate import as_percent

    df = as_percent(metrics)
    keep = (df.task != "matching") | df.k.isin([2, 10])
    df = df[keep].copy()
    df["95% CI"] = [f"[{lo:.1f}, {hi:.1f}]" for lo, hi in zip(df.ci_low, df.ci_high)]
    df["value"] = df.value.map(lambda v: f"{v:.1f}")
    cols = ["task", "direction", "protocol", "k", "scorer", "metric", "value", "95% CI", "n"]
    return df[cols].to_string(index=False)


# ----------------------------------------------------------------------------- commands

def run_train(args) -> int:
    from .train import train

    cfg = config_from_args(args)
    ensure_data(cfg)
    result = train(cfg, args.out, resume=args.resume, progress=args.progress)
    if result.metrics is None:  # a rank other than 0 under torchrun
        return 0
    path = write_metrics(result.metrics, args.out, cfg, result.checkpoint, result.step)
    print(summary_table(result.metrics))
    print(f"wrote {path} and {Path(args.out) / 'metrics.csv'}")
    return 0


def run_evaluate(args) -> int:
    from .train import evaluate_checkpoint

    over = parse_sets(args.set)
    if args.data is not None:
        over["data_root"] = str(args.data)
    if args.device is not None:
        over["device"] = args.device
    metrics, cfg, step = evaluate_checkpoint(args.checkpoint, **over)
    path = write_metrics(metrics, args.out, cfg, args.checkpoint, step)
    print(summary_table(metrics))
    print(f"wrote {path} and {Path(args.out) / 'metrics.csv'}")
    return 0
