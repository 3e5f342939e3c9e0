"""Validation of :class:`dsanet.config.Config`: one :class:`Rule` per field, plus rules over
several fields.

:func:`check_config` (called by ``Config.__post_init__``, so also by ``replace``, ``from_dict``
and every profile) checks each field's type and range: integers and their bounds, finite numbers
in an interval, one of a fixed set of choices (the variant fields' choices come from
:mod:`dsanet.variants`), paths, flags, tuples of integers, pairs, the device string; and
combinations such as ``r <= channels``. The first value out of its rule raises
:class:`ConfigError`, whose message names the field, the value and what is allowed.

This module does not import :mod:`dsanet.config` (which imports it and re-exports its public
names), not even for type checking: ``check_config`` reads the fields off the dataclass instance it
is given. :class:`UsageError` (a mistake on the command line) lives here too, below both
:mod:`dsanet.engine.cli` and :mod:`dsanet.inference`, which raise it (the former re-exports it).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from dataclasses import dataclass

from . import variants

# One rule per field, checked by Config.__post_init__ (so also by replace, from_dict and every
# profile). A new field gets its rule here; tests/test_bad_input_faults.py fails for a field
# without one. The table of rules is printed in docs/bad_input.md.

class ConfigError(ValueError):
    """A Config field holds a value of the wrong type or out of its range; the message names
    the field, the value and what is allowed."""


class UsageError(ValueError):
    """A mistake on the command line; the CLI prints it as one line and exits with status 2."""


@dataclass(frozen=True)
class Rule:
    allowed: str       # what is allowed, in words ("an integer >= 1")
    ok: object         # value -> bool


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int, hi: int | None = None) -> Rule:
    words = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return Rule(words, lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi))


def real(lo: float, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False) -> Rule:
    left, right = "(" if lo_open else "[", ")" if hi_open or hi == math.inf else "]"
    hi_s = "inf" if hi == math.inf else f"{hi:g}"

    def ok(v):
        return (_is_real(v) and (v > lo if lo_open else v >= lo)
                and (v < hi if hi_open else v <= hi))
    return Rule(f"a finite number in {left}{lo:g}, {hi_s}{right}", ok)


def choice(*values: str) -> Rule:
    return Rule("one of " + ", ".join(repr(v) for v in values), lambda v: v in values)


def optional(rule: Rule) -> Rule:
    return Rule(f"None or {rule.allowed}", lambda v: v is None or rule.ok(v))


def integers(lo: int, min_len: int = 0, increasing: bool = False) -> Rule:
    words = (f"a tuple of {'at least ' + str(min_len) + ' ' if min_len else ''}"
             f"{'strictly increasing' if increasing else 'distinct'} integers >= {lo}")

    def ok(v):
        if not isinstance(v, (tuple, list)) or len(v) < min_len:
            return False
        if not all(_is_int(x) and x >= lo for x in v):
            return False
        return (all(a < b for a, b in zip(v, v[1:])) if increasing else len(set(v)) == len(v))
    return Rule(words, ok)


def pair(rule: Rule) -> Rule:
    return Rule(f"a pair of numbers, each {rule.allowed}",
                lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(map(rule.ok, v)))


def _pathlike(v) -> bool:
    return isinstance(v, (str, os.PathLike)) and str(v) != ""


FLAG = Rule("True or False", lambda v: isinstance(v, bool))
TEXT = Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
PATH = Rule("a non-empty path (str or os.PathLike)", _pathlike)
OPT_PATH = optional(PATH)
PATHS = Rule("None, a path or a list of paths",
             lambda v: v is None or _pathlike(v)
             or (isinstance(v, (tuple, list)) and len(v) > 0 and all(map(_pathlike, v))))
DEVICE = Rule("'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'",
              lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None)
AMP_MODES = ("bf16", "fp16", "off")
# old spellings: the field was a flag (True: bf16 autocast on CUDA); "true" / "false" from --set
AMP_ALIASES = {"true": "bf16", "false": "off"}
AMP = Rule("one of 'bf16', 'fp16', 'off' (True and False: the old spellings of 'bf16' and 'off')",
           lambda v: isinstance(v, bool) or (isinstance(v, str) and v in AMP_MODES))
POSITIVE = real(0, lo_open=True)
NON_NEGATIVE = real(0)
LEARNING_RATE = real(0)          # 0 freezes a part; negative rates are refused
BETA = real(0, 1, hi_open=True)  # Adam's moment decay rates

RULES: dict[str, Rule] = {
    # data
    "data_root": PATH, "meta": PATHS, "voice_root": OPT_PATH, "face_root": OPT_PATH,
    "cache_dir": OPT_PATH, "split_protocol": choice("wen", "pins"), "split_lists": OPT_PATH,
    "sample_rate": integer(1), "face_size": integer(1),
    "spec_bins": integer(1), "spec_frames": integer(1), "spec_layout": choice("crop", "published"),
    "n_fft": integer(2), "hop_length": integer(1), "amin": POSITIVE,
    # model
    "backbone": choice("resnet18", "compact", "published_cnn"), "pretrained": OPT_PATH,
    "backbone_init": choice("scratch", "identity"), "backbone_train": choice("finetune", "frozen"), "map_views": integer(1), "pretrain_steps": integer(1), "init_from": OPT_PATH, "channels": integer(1),
    "map_size": integer(1), "hidden_dim": integer(1), "embed_dim": integer(1),
    "dropout": real(0, 1, hi_open=True), "head": choice(*variants.names("head")),
    "projection": choice("mlp", "linear"),
    # DEM
    "structure": choice("gan", "sas"), "enhancement": choice("none", "salient", "subtle", "dual"),
    "selection": choice("peak", "patch", "both"), "dem_layers": integer(1, 3),
    "block_draw": choice("uniform", "published"),
    "block_slices": choice("exact", "published"), "alpha": NON_NEGATIVE, "beta": real(0, 1),
    "r": integer(1), "c": integer(1),
    # SAS
    "adversarial": choice(*variants.names("adversarial")),
    "adv_target": choice(*variants.names("adv_target")),
    "adv_reduction": choice("tuple", "mean", "published"),
    "gen_calls": choice("pooled", "per_input"),
    # losses
    "cls_loss": choice(*variants.names("cls_loss")), "eta": real(0, 1, hi_open=True),
    "gbce_negatives": integer(1), "focal_gamma": NON_NEGATIVE,
    "metric_loss": choice(*variants.names("metric_loss")),
    "temperature": POSITIVE, "margin": NON_NEGATIVE, "metric_norm": choice("tuple", "published"), "lam": NON_NEGATIVE, "mu": NON_NEGATIVE,
    "lam1": NON_NEGATIVE, "mu1": NON_NEGATIVE, "retrieval_feature": choice("absolute", "difference"),
    # task
    "task": choice("matching", "retrieval"), "k": integer(2), "direction": choice("vf", "fv", "both"),
    "sampling": choice("tuple", "batch"), "tuples_per_anchor": integer(1),
    "train_list_epochs": integer(0),
    # optimisation
    "batch_size": integer(1), "steps": integer(1), "optimizer": choice("adam"),
    "lr_backbone": LEARNING_RATE, "lr_generator": LEARNING_RATE,
    "lr_discriminator": LEARNING_RATE, "lr_classifier": LEARNING_RATE,
    "lr_schedule": choice("exp", "step"), "lr_final_ratio": real(0, 1, lo_open=True),
    "lr_milestones": integers(0, increasing=True), "schedule_steps": integer(0),
    "lr_gamma": real(0, 1, lo_open=True),
    "weight_decay": NON_NEGATIVE, "betas": pair(BETA), "disc_betas": pair(BETA),
    "grad_clip": optional(POSITIVE), "wgan_clip": POSITIVE,
    # evaluation
    "eval_every": integer(1), "select_on": choice("val", "test"),
    "eval_generator_mode": choice("eval", "train"), "eval_tuples": integer(1),
    "eval_ks": integers(2, min_len=1), "bootstrap": integer(1),
    # run
    "seed": integer(0, 2 ** 32 - 1), "device": DEVICE, "amp": AMP, "num_workers": integer(0),
    "log_every": integer(1), "freeze_bn": FLAG, "sync_bn": FLAG, "profile": TEXT, "name": TEXT,
}

# rules over several fields: (fields, value check, what is allowed)
CROSS_RULES = (
    (("r", "channels"), lambda cfg: cfg.r <= cfg.channels, "r (grid rows over C) <= channels"),
    (("c", "map_size"), lambda cfg: cfg.c <= cfg.map_size ** 2,
     "c (grid columns over HW) <= map_size ** 2"),
    (("backbone_train", "backbone_init", "init_from", "pretrained"),
     lambda cfg: cfg.backbone_train != "frozen" or cfg.backbone_init == "identity"
     or bool(cfg.init_from) or bool(cfg.pretrained),
     "frozen backbones need learned ones (backbone_init='identity', init_from or pretrained)"),
    (("split_protocol", "split_lists"),
     lambda cfg: (cfg.split_protocol == "pins") == bool(cfg.split_lists),
     "split_protocol='pins' reads its identity lists from split_lists; 'wen' takes none"),
)


def amp_mode(value):
    """``cfg.amp`` in its current spelling: True -> "bf16", False -> "off" (old configs and
    checkpoints; also "true" / "false", any case); anything else is returned as it is (and
    refused by :data:`AMP` when it is not a mode)."""
    if isinstance(value, bool):
        return "bf16" if value else "off"
    if isinstance(value, str) and value.strip().lower() in AMP_ALIASES:
        return AMP_ALIASES[value.strip().lower()]
    return value


def check_config(cfg) -> None:
    """Raise :class:`ConfigError` for the first field (or field combination) out of its rule
    (``cfg``: a :class:`dsanet.config.Config`)."""
    for f in dataclasses.fields(cfg):
        rule, value = RULES.get(f.name), getattr(cfg, f.name)
        if rule is not None and not rule.ok(value):
            raise ConfigError(f"Config field {f.name}={value!r} is not allowed: it must be "
                              f"{rule.allowed}")
    for names, ok, allowed in CROSS_RULES:
        if not ok(cfg):
            shown = ", ".join(f"{n}={getattr(cfg, n)!r}" for n in names)
            raise ConfigError(f"Config fields {shown} are not allowed together: {allowed}")
