"""The embedded benchmark of the smoke / quick profiles: which preset each profile uses, and
:func:`ensure_data`, which generates it (or regenerates a stale one) before a run or a notebook
needs it.

The generator's seed is always the preset's (``synthetic.DEFAULTS["seed"]`` unless the preset sets
one), never the training seed: ``dsanet train --profile quick --seed 3`` and the notebooks read
the same tree.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Config, get_profile
from . import synthetic

EMBEDDED = {"smoke": "smoke", "quick": "default"}   # profile -> synthetic.PRESETS name


def preset_knobs(preset: str) -> dict:
    """Every knob of ``synthetic.PRESETS[preset]``, the seed included (the generator's defaults
    filled in)."""
    return dict(synthetic.DEFAULTS, **synthetic.PRESETS[preset])


def stale_benchmark(root: Path, preset: str) -> bool:
    """True when ``root`` holds an embedded benchmark whose knobs differ from ``preset``'s."""
    path = Path(root) / "calibration.json"
    if not path.exists():
        return False
    have = json.loads(path.read_text()).get("knobs", {})
    return have != preset_knobs(preset)


def ensure_data(cfg: Config) -> Path:
    """The data root of ``cfg``. For the smoke / quick profiles the embedded benchmark is generated
    there (the profile's preset, with the preset's seed) when the folder is missing or holds no
    meta table yet, or regenerated when the profile's own folder holds a tree whose
    calibration.json records other knobs than the preset's (written by an older version of the
    generator, or with another seed; a tree elsewhere is never replaced); other data must exist."""
    root = Path(cfg.data_root)
    preset = EMBEDDED.get(cfg.profile)
    stale = preset is not None and stale_benchmark(root, preset)
    if stale and root != Path(get_profile(cfg.profile).data_root):   # a tree of the user's: keep it
        print(f"{root}: an embedded benchmark with other knobs than the {preset!r} "
              "preset; using it as it is (its calibration.json gives its own lines)")
        stale = False
    if not stale and ((root / "meta.csv").exists() or cfg.meta
                      or (root.exists() and any(root.glob("*.csv")))):
        return root
    if preset is None:
        what = ("data folder not found" if not root.exists()
                else "no data (a tree with voices/, faces/ and a meta CSV)")
        raise FileNotFoundError(f"{root}: {what}; the {cfg.profile!r} profile does not generate "
                                "data (point --data at the VoxCeleb1 + VGGFace tree)")
    knobs = preset_knobs(preset)
    if stale:
        print(f"{root}: the embedded benchmark there was made with other knobs than the "
              f"{preset!r} preset; regenerating it", flush=True)
    else:
        what = "does not exist" if not root.exists() else "holds no meta table"
        print(f"{root} {what}: generating the embedded benchmark there "
              f"(preset {preset!r}, seed {knobs['seed']}) ...", flush=True)
    workers = 1 if cfg.profile == "smoke" else min(4, os.cpu_count() or 1)   # byte-identical for any
    synthetic.generate(root, **knobs, overwrite=root.exists(), workers=workers)
    print(f"generated {root}", flush=True)
    return root
