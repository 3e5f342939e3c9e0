"""The notebooks' runtime: what a notebook calls first, ``ctx = setup(profile, out_dir, threads)``.

:func:`setup` finds the repository root (so a notebook runs the same from ``notebooks/`` under
nbval and from the root under papermill), picks the output folder (never ``reports/`` in the smoke
profile), and sets threads and the plotting style; :class:`Context` says where a notebook reads and
writes. Running the notebooks headlessly is :mod:`dsanet.runner` (``python -m dsanet reproduce``).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

SMOKE_OUT = "runs/smoke_reports"   # smoke runs (CI, nbval) never write into reports/
SCRATCH_OUT = "runs/notebooks"     # interactive runs: reports/ only when asked for
REPORTS = "reports"                # what ``python -m dsanet reproduce`` passes as out_dir
RUNS_ENV = "DSANET_RUNS"           # training runs when setup() is given no runs_dir (else runs/)


# ----------------------------------------------------------------------------- the notebooks' side

def repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding dsanet's pyproject.toml;
    the folder above the package when there is none (an installed, non-editable copy)."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        py = d / "pyproject.toml"
        if py.is_file() and 'name = "dsanet"' in py.read_text(errors="ignore"):
            return d
    return Path(__file__).resolve().parents[1]


@dataclass
class Context:
    """Where a notebook reads and writes; paths are relative to ``root`` (the working directory)."""

    root: Path
    profile: str
    out: Path          # reports/ (or runs/smoke_reports/ in smoke)
    tables: Path       # out/tables
    figures: Path      # out/figures
    runs: Path         # training runs, cached by config hash (not committed)
    smoke: bool

    def write_json(self, name: str, obj) -> Path:
        """``obj`` as ``<out>/<name>.json`` (numpy scalars and paths made plain)."""
        path = self.out / f"{name}.json"
        path.write_text(json.dumps(obj, indent=1, default=_plain))
        return path


def _plain(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def notebook_config(profile: str, data_root: str | Path | None = None, **overrides):
    """A notebook's :class:`~dsanet.config.Config`: the profile, then the config file ``prepare``
    wrote into the data root (``DATA_ROOT/dsanet.yaml``, e.g. with ``pretrained`` or
    ``cache_dir``: :func:`dsanet.config_file.data_root_config`), then ``overrides`` (the
    notebook's ``device`` and ``seed``), the order ``train --config`` uses. ``data_root`` None:
    the profile's own root. Prints the file it read, and :func:`~dsanet.config_file.
    from_scratch_warning` when the paper profile would train ResNet18 from random weights."""
    from .config import get_profile
    from .config_file import data_root_config, from_scratch_warning

    root = Path(data_root) if data_root else Path(get_profile(profile).data_root)
    path, fields = data_root_config(root) if root.is_dir() else (None, {})
    if path is not None:
        print(f"config: {path} ({', '.join(sorted(fields)) or 'no fields'})")
    cfg = get_profile(profile, **{**fields, "data_root": str(root), **overrides})
    warning = from_scratch_warning(cfg)
    if warning:
        print(warning)
    return cfg


def notebook_out_dir(profile: str, out_dir: str | Path | None = None) -> Path:
    """A notebook's output folder: ``out_dir`` when given (``reproduce`` passes ``reports``),
    else ``runs/smoke_reports`` in the smoke profile and ``runs/notebooks`` otherwise, so an
    interactive run never overwrites the committed ``reports/``."""
    if out_dir:
        return Path(out_dir)
    return Path(SMOKE_OUT if profile == "smoke" else SCRATCH_OUT)


def setup(profile: str, out_dir: str | None = None, threads: int = 0,
          runs_dir: str | None = None, chdir: bool = True) -> Context:
    """Prepare a notebook: cwd = repository root, output folders, torch threads, plot style.

    ``out_dir`` None: the scratch folder of :func:`notebook_out_dir` (never ``reports/``).
    ``threads`` > 0 sets ``torch.set_num_threads``. ``runs_dir`` None: ``$DSANET_RUNS`` when set
    (a test keeps its training runs out of the repository's ``runs/`` that way), else ``runs``.
    """
    runs_dir = runs_dir or os.environ.get(RUNS_ENV) or "runs"
    root = repo_root()
    if chdir:
        os.chdir(root)
    smoke = profile == "smoke"
    out = notebook_out_dir(profile, out_dir)
    for d in (out / "tables", out / "figures", Path(runs_dir)):
        d.mkdir(parents=True, exist_ok=True)
    if threads and threads > 0:
        import torch

        torch.set_num_threads(int(threads))
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm.auto without widgets
    import matplotlib

    matplotlib.rcParams["figure.dpi"] = 72      # inline copies small; PNGs use their own dpi
    from . import viz

    viz.theme()
    return Context(root, profile, out, out / "tables", out / "figures", Path(runs_dir), smoke)
