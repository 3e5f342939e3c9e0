"""Config files: YAML or JSON mappings of :class:`~dsanet.config.Config` fields.

Two readers share them. ``train --config FILE`` (and ``sweep``, ``evaluate``) applies a file over
the profile; ``python -m dsanet prepare`` writes one into the data root it makes
(``DATA_ROOT/dsanet.yaml``), and the notebooks, given that data root, apply it the same way
(:func:`dsanet.reproduce.notebook_config`). So a field a user adds there - the ImageNet weights
(``pretrained``), the cache's disk (``cache_dir``) - reaches ``train`` and ``reproduce`` alike.
Everywhere the order is: the profile < the file < explicit overrides (``--set``, a notebook's
``device`` and ``seed``).

:func:`from_scratch_warning` is the line printed when the paper profile would train its ResNet18
backbones from random weights (the paper fine-tunes an ImageNet ResNet18, Sec. IV-A).
"""
from __future__ import annotations

import json
import typing
from pathlib import Path

from .config import Config
from .config_rules import UsageError

# the config file prepare writes into a data root, in the order they are looked for
DATA_ROOT_FILES = ("dsanet.yaml", "dsanet.yml", "dsanet.json")


def field_types() -> dict[str, str]:
    """Config field name -> its type annotation as text ("int", "str | None", "tuple[int, ...]")."""
    return {name: str(t) for name, t in typing.get_type_hints(Config).items()}


def read_config_file(path, option: str = "--config") -> dict:
    """Config fields from a JSON or YAML file (a run's ``config.json`` works as it is); lists
    become tuples. A missing, unparsable or non-mapping file, or an unknown field, is a
    :class:`UsageError` naming ``option`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{option} {path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as e:  # noqa: BLE001 - json and yaml raise their own types
        raise UsageError(f"{option} {path}: cannot parse ({type(e).__name__}: "
                         f"{str(e).splitlines()[0]})") from e
    if not isinstance(doc, dict):
        raise UsageError(f"{option} {path}: expected a mapping of Config fields")
    unknown = sorted(set(doc) - set(field_types()))
    if unknown:
        raise UsageError(f"{option} {path}: Config has no field(s) {unknown}")
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in doc.items()}


def data_root_config(data_root) -> tuple[Path | None, dict]:
    """``(file, fields)`` of the config file ``prepare`` wrote into ``data_root`` (the first of
    :data:`DATA_ROOT_FILES`); ``(None, {})`` when it has none (the embedded benchmark).

    ``profile`` and ``data_root`` are left out: the caller names both (a notebook's parameters,
    a command line), and a data root that was moved or linked is still found where it is."""
    path = next((Path(data_root) / n for n in DATA_ROOT_FILES if (Path(data_root) / n).is_file()),
                None)
    if path is None:
        return None, {}
    fields = read_config_file(path, option="data root config")
    for key in ("profile", "data_root"):
        fields.pop(key, None)
    return path, fields


def from_scratch_warning(cfg: Config) -> str | None:
    """One line when ``cfg`` trains ResNet18 backbones from random weights in the paper profiles;
    None otherwise (the compact backbones of smoke / quick have no ImageNet weights to miss, and
    ``backbone_init="identity"`` pretrains them on the training identities first)."""
    if (cfg.profile, cfg.backbone, cfg.pretrained, cfg.backbone_init) != (
            "paper", "resnet18", None, "scratch"):
        return None
    return ("warning: pretrained is not set, so both ResNet18 backbones train from random weights "
            "(the paper fine-tunes ImageNet ResNet18: fetch resnet18-f37072fd.pth and set "
            "pretrained, e.g. prepare --pretrained FILE or --set pretrained=FILE; "
            "docs/real_data.md, section 5)")
