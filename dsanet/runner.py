"""``python -m dsanet reproduce``: run the notebooks with papermill and gather ``reports/``.

Each ``notebooks/NN_name.ipynb`` is executed with the ``python3`` kernel, the repository root as
working directory and ``-p profile ... -p out_dir ...``; the executed copy goes to
``<out>/NN_name.ipynb``. The run's facts (wall time per notebook, versions, device, profile,
parameters) go to ``<out>/run_info.json`` and ``<out>/README.md`` gathers every table the notebooks
wrote (``<out>/tables/*.md``, the paper's numbers beside ours) and links every figure.
What a notebook does when it starts (root, output folders, threads, style) is
:func:`dsanet.reproduce.setup`.

A notebook that fails is reported as ``<nb> failed after N s: <first line of the error>;
traceback in <the executed copy>`` (papermill writes the copy with the failing cell's traceback)
and the next one runs (``--stop-on-error`` stops). The kernels run with CurveZMQ transport
encryption where the kernel and jupyter_client support it (:func:`kernel_config`), which is what
silences ipykernel's "Kernel is running over TCP without encryption" warning, printed once per
notebook otherwise.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from .engine.cli import PROFILE_CHOICES
from .reproduce import SMOKE_OUT, repo_root

KERNEL = "python3"
NOTEBOOK_RE = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")


# ----------------------------------------------------------------------------- running notebooks

def find_notebooks(folder: Path, only: str | None = None) -> list[Path]:
    """``NN_name.ipynb`` files of ``folder`` in order; ``only`` = "00,04" keeps those numbers."""
    books = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_RE.match(p.name))
    if only:
        want = {w.strip().zfill(2) for w in only.split(",") if w.strip()}
        books = [p for p in books if p.name[:2] in want]
        missing = want - {p.name[:2] for p in books}
        if missing:
            raise SystemExit(f"reproduce: no notebook numbered {sorted(missing)} in {folder}")
    if not books:
        raise SystemExit(f"reproduce: no NN_name.ipynb notebooks in {folder}")
    return books


def show_progress(profile: str) -> bool:
    """Progress bars only on a terminal and never in the smoke profile (CI, tests)."""
    return profile != "smoke" and sys.stderr.isatty()


def kernel_config():
    """traitlets config for the kernel manager: CurveZMQ transport encryption ("auto": when the
    kernelspec declares it, as ipykernel's own does) where jupyter_client can provision it and
    pyzmq has CURVE; None otherwise. An encrypted kernel does not print ipykernel's warning
    about plain-text TCP; without this, that warning comes once per notebook."""
    try:
        import zmq
        from jupyter_client.manager import KernelManager
        from traitlets.config import Config
    except ImportError:
        return None
    if "transport_encryption" not in KernelManager.class_traits() or not zmq.has("curve"):
        return None
    return Config({"KernelManager": {"transport_encryption": "auto"}})


def execute(src: Path, dst: Path, parameters: dict, root: Path, kernel: str = KERNEL,
            progress: bool = False) -> float:
    """Run one notebook with papermill (cwd = ``root``; ``progress``: a bar over its cells);
    return its wall time in seconds."""
    import papermill as pm

    config = kernel_config()
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name=kernel,
                        cwd=str(root), progress_bar=progress, log_output=False,
                        **({"config": config} if config is not None else {}))
    return time.perf_counter() - t0


def error_line(e: BaseException) -> str:
    """The first line of a notebook's error: ``ValueError: message`` (the failing cell's
    exception for papermill's execution error, else the exception itself)."""
    name, value = getattr(e, "ename", None), getattr(e, "evalue", None)
    if name is None:
        name, value = type(e).__name__, str(e)
    first = next((line.strip() for line in str(value).splitlines() if line.strip()), "")
    return f"{name}: {first}" if first else str(name)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def failure_message(nb: str, wall_s: float, e: BaseException, executed: Path) -> str:
    """``<nb> failed after N s: <first line of the error>; traceback in <executed copy>``."""
    where = (f"traceback in {_shown(executed)}" if executed.exists()
             else f"no executed copy was written ({_shown(executed)})")
    return f"{nb} failed after {wall_s:.1f} s: {error_line(e)}; {where}"


def versions() -> dict:
    """Python, platform and the versions of the libraries a result depends on."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform(),
           "cpu_count": os.cpu_count()}
    for name in ("dsanet", "torch", "torchvision", "torchaudio", "numpy", "pandas", "scipy",
                 "scikit-learn", "umap-learn", "matplotlib", "seaborn", "papermill", "nbclient"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict:
    import torch

    info = {"cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _parse_params(items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> dict; values parsed as JSON when they can be (3, 0.5, true)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"reproduce: --param wants KEY=VALUE, got {item!r}")
        key, val = item.split("=", 1)
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def run_notebooks(profile: str, out: Path, only: str | None = None, params: dict | None = None,
                  root: Path | None = None, kernel: str = KERNEL, keep_going: bool = True) -> dict:
    """Execute the notebooks into ``out`` and return the run's record (also ``run_info.json``)."""
    root = root or repo_root()
    out = out if out.is_absolute() else root / out
    out.mkdir(parents=True, exist_ok=True)
    os.environ["DSANET_PROFILE"] = profile
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    rel = os.path.relpath(out, root) if out.is_relative_to(root) else str(out)
    parameters = {"profile": profile, "out_dir": rel, **(params or {})}
    args = " ".join(sys.argv[2:]) if len(sys.argv) > 2 and sys.argv[1] == "reproduce" else ""
    record = {"command": f"python -m dsanet reproduce {args}".strip(), "profile": profile,
              "started": _dt.datetime.now().isoformat(timespec="seconds"),
              "parameters": parameters, "versions": versions(), "device": device_info(),
              "notebooks": []}
    t_all = time.perf_counter()
    from tqdm.auto import tqdm

    progress = show_progress(profile)
    books = find_notebooks(root / "notebooks", only)
    for nb in tqdm(books, desc="notebooks", unit="nb", disable=not progress):
        entry = {"notebook": nb.name, "status": "ok"}
        print(f"[reproduce] {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            entry["wall_s"] = round(execute(nb, out / nb.name, parameters, root, kernel,
                                            progress), 1)
        except Exception as e:  # noqa: BLE001 - recorded, then the next notebook runs
            wall = time.perf_counter() - t0
            entry.update(status="failed", wall_s=round(wall, 1), error_line=error_line(e),
                         executed=str(out / nb.name),
                         error=f"{type(e).__name__}: {str(e)[-2000:]}")
            print(f"[reproduce] {failure_message(nb.name, wall, e, out / nb.name)}", flush=True)
            record["notebooks"].append(entry)
            if not keep_going:
                break
            continue
        print(f"[reproduce] {nb.name}: {entry['status']} {entry.get('wall_s', '')}s", flush=True)
        record["notebooks"].append(entry)
    record["total_wall_s"] = round(time.perf_counter() - t_all, 1)
    _merge_record(out / "run_info.json", record)
    write_readme(out)
    return record


def _merge_record(path: Path, record: dict) -> None:
    """Keep entries of notebooks not re-run this time (``--only``) from an earlier record."""
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("profile") == record["profile"]:
            ran = {e["notebook"] for e in record["notebooks"]}
            keep = [e for e in old.get("notebooks", []) if e["notebook"] not in ran]
            record["notebooks"] = sorted(keep + record["notebooks"], key=lambda e: e["notebook"])
            if keep:   # a partial re-run: say so; the total stays the full run's own time
                record["rerun_wall_s"] = record["total_wall_s"]
                earlier = old.get("rerun", {}).get("notebooks", [])
                record["rerun"] = {"command": record["command"], "started": record["started"],
                                   "notebooks": sorted(ran | set(earlier))}
                first = old.get("first_run") or {
                    **{k: old.get(k) for k in ("command", "started", "total_wall_s")},
                    "notebooks": {e["notebook"]: e.get("wall_s") for e in old.get("notebooks", [])}}
                record["first_run"] = first
                record["command"], record["started"] = first["command"], first["started"]
                record["total_wall_s"] = first["total_wall_s"]
    path.write_text(json.dumps(record, indent=1, default=str))


# ----------------------------------------------------------------------------- README

_ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


def _table_order(path: Path) -> tuple:
    name = path.stem.removeprefix("table_")
    return (_ROMAN.index(name) if name in _ROMAN else len(_ROMAN), name)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}" if x <= 1 else f"{x:.1f}"


def reading_lines(tables: Path) -> list[str]:
    """"How to read the numbers": the benchmark's lines, the baseline, G protocol and verification,
    and one line per swept table (its comparison with the reference row)."""
    import pandas as pd

    lines = ["## How to read the numbers", ""]
    cal = tables / "calibration.csv"
    if cal.exists():
        c = pd.read_csv(cal)
        c = c[c["protocol"] == "U"]
        for k in (2, 10):
            cells = {(r.scorer, r.direction): r.value for r in c[c["k"] == k].itertuples()}
            if cells:
                lines.append(f"- benchmark lines, 1:{k} (test split, V-F / F-V, %): oracle "
                             f"{_pct(cells.get(('oracle', 'V-F'), float('nan')))} / "
                             f"{_pct(cells.get(('oracle', 'F-V'), float('nan')))}, gender-only "
                             f"{_pct(cells.get(('gender_only', 'V-F'), float('nan')))} / "
                             f"{_pct(cells.get(('gender_only', 'F-V'), float('nan')))}, chance "
                             f"{_pct(cells.get(('chance', 'V-F'), float('nan')))}")
    iv = tables / "table_IV.csv"
    if iv.exists():
        t = pd.read_csv(iv)
        for row in t["row"].unique():
            g = t[t["row"] == row].set_index("column")["mean"]
            if "baseline" in row or row.startswith("DSANet (ours, distance)"):
                cells = ", ".join(f"{k} {g[k]:.1f}" for k in ("vf", "fv", "vf10", "fv10", "map_vf",
                                                              "map_fv") if k in g.index)
                lines.append(f"- {row}: {cells}")
    ver = tables / "verification_protocols.csv"
    if ver.exists():
        v = pd.read_csv(ver)
        m = v[(v["task"] == "matching") & (v["k"] == 2)]
        g = {(r.direction, r.protocol): r.value for r in m.itertuples()}
        auc = v[v["metric"] == "auc"]
        if g:
            lines.append(f"- same-gender (G) 1:2 protocol, V-F / F-V: {g.get(('V-F', 'G'), float('nan')):.1f}"
                         f" / {g.get(('F-V', 'G'), float('nan')):.1f} (U: {g.get(('V-F', 'U'), float('nan')):.1f}"
                         f" / {g.get(('F-V', 'U'), float('nan')):.1f}); verification AUC "
                         + ", ".join(f"{r.direction} {r.protocol} {r.value:.1f}" for r in auc.itertuples()))
    verdicts = tables / "verdicts.csv"
    if verdicts.exists():      # per table: its verdicts and how wide (dsanet.claims)
        from .claims import summary_lines

        lines += summary_lines(pd.read_csv(verdicts, dtype={"table": str}), _table_titles(tables))
        lines.append("- every comparison, one line each: "
                     "[tables/verdicts.csv](tables/verdicts.csv)")
    else:
        for js in sorted(tables.glob("table_*.json"), key=_table_order):
            made = json.loads(js.read_text())
            for scorer, line in (made.get("comparison") or {}).items():
                lines.append(f"- Table {made.get('table', js.stem[6:])} ({scorer}): {line}")
    return lines + [""] if len(lines) > 2 else []


def _table_titles(tables: Path) -> dict[str, str]:
    """Table name -> title, from the first line of each ``table_<name>.md``."""
    out = {}
    for md in tables.glob("table_*.md"):
        head = md.read_text().split("\n", 1)[0]
        if ": " in head:
            out[md.stem.removeprefix("table_")] = head.split(": ", 1)[1].strip()
    return out


def write_readme(out: Path) -> Path:
    """``<out>/README.md``: how the run was made, per-notebook times, every table and figure."""
    info = json.loads((out / "run_info.json").read_text()) if (out / "run_info.json").exists() else {}
    v, dev = info.get("versions", {}), info.get("device", {})
    lines = ["# Reproduction report", "",
             "Generated by `python -m dsanet reproduce` (`dsanet/runner.py`); do not edit by hand.",
             "Every number here is ours, measured by the notebooks; the paper's numbers "
             "(`dsanet/paper.py`) stand beside them. Synthetic-benchmark numbers are not "
             "comparable in level with the paper's VoxCeleb1/VGGFace numbers: compare orderings "
             "and gaps, not values.", "",
             "## How it was made", "",
             f"- command: `{info.get('command', 'python -m dsanet reproduce')}`",
             f"- profile: `{info.get('profile')}`; "
             f"parameters: `{json.dumps(info.get('parameters', {}))}`",
             f"- started: {info.get('started')}; total wall time: {info.get('total_wall_s')} s"
             + (" (the full run; the table gives each notebook's time in it and in its latest "
                "run)" if info.get("rerun") else ""),
             *([f"- re-run since (on the cached runs): `{info['rerun']['command']}` at "
                f"{info['rerun']['started']} "
                f"({', '.join(info['rerun']['notebooks'])})"] if info.get("rerun") else []),
             f"- device: {'CUDA ' + dev.get('gpu', '') if dev.get('cuda') else 'CPU'}"
             f" ({v.get('cpu_count')} CPU cores visible; threads and training processes per "
             "notebook: its `threads` / `workers` parameters)",
             "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()
                                        if k not in ("platform", "cpu_count") and val),
             f"- platform: {v.get('platform')}", ""]
    full = (info.get("first_run") or {}).get("notebooks") if info.get("rerun") else None
    if full:
        lines += ["| notebook | status | full run (s) | latest run (s) |", "|---|---|---|---|"]
    else:
        lines += ["| notebook | status | wall time (s) |", "|---|---|---|"]
    for e in info.get("notebooks", []):
        nb = e["notebook"]
        cells = [f"[{nb}]({nb})", e["status"], *([str(full.get(nb, "-"))] if full else []),
                 str(e.get("wall_s", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *reading_lines(out / "tables"), "## Tables", ""]
    for md in sorted((out / "tables").glob("table_*.md"), key=_table_order):
        lines += [md.read_text().strip(), ""]
    figs = sorted((out / "figures").glob("*.png"))
    if figs:
        lines += ["## Figures", ""]
        lines += [f"- [{p.stem}](figures/{p.name})" for p in figs]
        lines.append("")
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path


# ----------------------------------------------------------------------------- command line

def add_reproduce_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=os.environ.get("DSANET_PROFILE") or "quick",
                   choices=PROFILE_CHOICES,
                   help="size of every run (dsanet.config profiles); default: $DSANET_PROFILE, "
                        "else quick (as for train)")
    p.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 00,04")
    p.add_argument("--out", default=None,
                   help=f"folder for executed notebooks and reports (default: reports/, "
                        f"{SMOKE_OUT}/ for the smoke profile)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="extra papermill parameter for every notebook (e.g. seeds=3)")
    p.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failing notebook")


def run_reproduce(args: argparse.Namespace) -> int:
    out = Path(args.out or (SMOKE_OUT if args.profile == "smoke" else "reports"))
    record = run_notebooks(args.profile, out, args.only, _parse_params(args.param),
                           kernel=args.kernel, keep_going=not args.stop_on_error)
    failed = [e["notebook"] for e in record["notebooks"] if e["status"] != "ok"]
    total = (f"{record['total_wall_s']} s" if "rerun" not in record else
             f"this re-run {record['rerun_wall_s']} s (the full run's {record['total_wall_s']} s "
             "kept in the report)")
    print(f"[reproduce] {len(record['notebooks']) - len(failed)} ok, {len(failed)} failed, "
          f"{total}; report: {out / 'README.md'}")
    return 1 if failed else 0
