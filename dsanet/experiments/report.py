"""Reports of swept tables: "ours ± CI" beside the paper's number (:func:`wide`), GitHub Markdown,
and ``tables/table_<name>.md`` / ``.csv`` / ``.json`` files (:func:`write_table`); a sweep of
tables from training to its files (:func:`sweep_tables`, what notebook 04 and ``dsanet sweep`` run).

"±" means one thing everywhere (:data:`PLUS_MINUS`): the half-width of a 95% interval; where the
runs hold per-identity values it covers training seeds and test identities, and beside a
difference to the reference row ("vs ref.") it is corrected for the table's comparisons
(:mod:`dsanet.claims`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .sweep import TableResult

PLUS_MINUS = ("\"±\" is the half-width of a 95% interval covering training seeds and test "
              "identities; beside a difference to the reference row it is corrected for the "
              "table's comparisons (simultaneous, per table and scorer)")


def fmt_cell(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``"91.2 ± 1.3"``: the mean and the half-width of its 95% interval (no ``±`` if unknown)."""
    if not np.isfinite(mean):
        return "-"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def wide(result: TableResult, scorer: str | None = None) -> pd.DataFrame:
    """One line per row: each column as "ours ± CI" with the paper's number beside it
    (the cells of ``scorer``; default: the first scorer of the table)."""
    cells = result.cells
    if "scorer" in cells.columns:
        cells = cells[cells["scorer"] == (scorer or cells["scorer"].iloc[0])]
    cells = cells.set_index(["row", "column"])
    comp = result.comparison
    if len(comp):
        comp = comp[comp["scorer"] == (scorer or comp["scorer"].iloc[0])].set_index(["row", "column"])
    lines = []
    for row, _ in result.table.rows:
        line = {"row": row}
        for col in result.table.columns:
            c = cells.loc[(row, col.name)]
            line[col.name] = fmt_cell(c["mean"], c["ci_low"], c["ci_high"])
            line[f"{col.name} paper"] = "-" if pd.isna(c.get("paper")) else f"{c['paper']:.1f}"
            line[f"{col.name} vs ref."] = _versus(comp, row, col.name)
        lines.append(line)
    return pd.DataFrame(lines)


def _versus(comp: pd.DataFrame, row: str, column: str) -> str:
    """"+1.2 ± 2.0, unresolved": the difference to the reference row with the half-width of its
    corrected 95% interval, and the verdict on the paper's claim."""
    if not len(comp) or (row, column) not in comp.index:
        return "ref." if len(comp) and row in set(comp["reference"]) else "-"
    c = comp.loc[(row, column)]
    if isinstance(c, pd.DataFrame):       # one line per metric (Table XII): the row's own
        c = c.iloc[0]
    if not np.isfinite(c["half"]):
        return f"{c['diff']:+.1f}, {c['verdict']}"
    return f"{c['diff']:+.1f} ± {c['half']:.1f}, {c['verdict']}"


def wide_all(result: TableResult) -> pd.DataFrame:
    """:func:`wide` for every scorer of the table, stacked with a leading ``scorer`` column."""
    scorers = list(dict.fromkeys(result.cells["scorer"])) if "scorer" in result.cells else [None]
    parts = []
    for s in scorers:
        w = wide(result, s)
        w.insert(0, "scorer", s)
        parts.append(w)
    return pd.concat(parts, ignore_index=True)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``df`` (all cells as text, no index)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "/") for v in r) + " |"
            for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def how_made(made: dict) -> str:
    """One sentence saying how a table was produced (profile, steps, seeds, scorer, interval)."""
    parts = [f"profile `{made['profile']}`"] if made.get("profile") else []
    if made.get("steps"):
        parts.append(f"{made['steps']} steps per run, batch {made.get('batch_size')}, "
                     f"backbone `{made.get('backbone')}`")
    if made.get("protocol") == "frozen":
        parts.append("the sweep protocol (the identity-pretrained backbones frozen; DEM, generator, "
                     "discriminator and heads trained on their cached activation maps, "
                     "`backbone_train=\"frozen\"`)")
    elif made.get("protocol"):
        parts.append("trained end to end")
    if made.get("scorer"):
        parts.append(f"matching scored by {made['scorer']}")
    seeds = made.get("seeds")
    if seeds is not None:
        parts.append(f"seeds {list(seeds)}")
    if made.get("interval") == "seeds and test identities":
        parts.append(PLUS_MINUS)
    elif made.get("interval", "").endswith("test identities"):
        parts.append(PLUS_MINUS + f" (here: {made['interval']})")
    elif made.get("interval", "").startswith("test identities"):
        parts.append(f"no ± where only {made['interval']}")
    elif made.get("steps"):
        ci = ("95% Student-t interval over seeds" if len(seeds or []) >= 2
              else "95% bootstrap interval over the test tuples (one seed)")
        parts.append(f"± is the half-width of the {ci}")
    extra = f" {made['note']}" if made.get("note") else ""
    if made.get("comparison"):
        extra += " " + " ".join(f"{s}: {line}." for s, line in made["comparison"].items())
        extra += (" \"vs ref.\": difference to the reference row (the paper's chosen variant), ± "
                  "the half-width of its 95% interval corrected for the table's comparisons "
                  f"({made.get('correction', 'maxt')}, `dsanet/claims.py`), and the verdict on "
                  "the paper's claim: reproduced, contradicted, no effect (inside ±1 point where "
                  "the paper claims >= 1), unresolved, or no claim (|paper difference| < 0.3).")
    return "Made with " + ", ".join(parts) + "." + extra


def write_table(name: str, title: str, df, out_dir: str | Path,
                made: dict | None = None, long: pd.DataFrame | None = None) -> Path:
    """Write ``tables/table_<name>.md`` (title, how it was made, the table) and ``.csv``.

    ``df``: one frame, or a dict caption -> frame for several (e.g. one per scorer); ``long``
    (if given) is the tidy frame saved as the CSV, otherwise the frame(s) themselves.
    """
    d = Path(out_dir) / "tables"
    d.mkdir(parents=True, exist_ok=True)
    frames = df if isinstance(df, dict) else {"": df}
    csv = long if long is not None else pd.concat(
        [f.assign(**({"part": k} if k else {})) for k, f in frames.items()], ignore_index=True)
    csv.to_csv(d / f"table_{name}.csv", index=False)
    text = [f"### Table {name}: {title}", ""]
    if made:
        text += [how_made(made), ""]
        (d / f"table_{name}.json").write_text(json.dumps(made, indent=1, default=str))
    for caption, frame in frames.items():
        text += ([caption, ""] if caption else []) + [markdown(frame), ""]
    path = d / f"table_{name}.md"
    path.write_text("\n".join(text))
    return path


_SCORER_CAPTION = {
    "classifier": "Matching scored by the classifier (the paper's head; 10-way cells from the "
                  "10-way runs' head):",
    "distance": "Matching scored by embedding distance (what the metric of eqs. 21-22 trains):",
}


def write_result(result: TableResult, out_dir: str | Path) -> Path:
    """Write a swept table (:func:`run_table`) with :func:`write_table`."""
    long = result.cells.copy()
    long.insert(0, "table", result.table.name)
    scorers = list(dict.fromkeys(long["scorer"])) if "scorer" in long else [None]
    frames = {_SCORER_CAPTION.get(s, str(s)): wide(result, s) for s in scorers}
    if len(result.comparison):
        from ..claims import summary_line

        result.made["comparison"] = {s: summary_line(result.comparison, s) for s in scorers}
    path = write_table(result.table.name, result.table.title, frames, out_dir, result.made, long)
    if len(result.comparison):
        result.comparison.to_csv(path.with_name(f"table_{result.table.name}_claims.csv"), index=False)
    return path


def run_tables(names, base_cfg, seeds_of: dict, runs_root, steps=None, rows=None,
               out_dir=None) -> tuple[dict, pd.DataFrame]:
    """Every table of ``names`` from its cached runs (:func:`run_table`), its files under
    ``out_dir`` and all comparisons in ``out_dir/tables/verdicts.csv`` -> (results, verdicts).

    A table with one seed per row (Table XII in smoke) borrows the seed variance pooled over the
    tables before it (:func:`dsanet.claims.pooled_seed_variance`); ``seeds_of``: table -> seeds.
    """
    from .. import claims
    from .sweep import run_table

    results = {}
    for name in names:
        prior = (claims.pooled_seed_variance(pd.concat(
            [r.identity.assign(table=n) for n, r in results.items()])) if results else None)
        results[name] = run_table(name, base_cfg, seeds=seeds_of[name], runs_root=runs_root,
                                  steps=steps, rows=rows, log=None, seed_prior=prior)
        if out_dir is not None:
            write_result(results[name], out_dir)
    frames = [r.comparison for r in results.values()]
    if out_dir is None:
        return results, pd.concat(frames, ignore_index=True)
    path = claims.write_verdicts(frames, Path(out_dir) / "tables" / "verdicts.csv")
    return results, pd.read_csv(path)


@dataclass
class SweepOutput:
    """What :func:`sweep_tables` made: the tables, all their comparisons (``verdicts.csv``), a
    forest plot per table with comparisons, and how many runs it trained."""

    results: dict                 # table name -> TableResult
    verdicts: pd.DataFrame
    forests: dict = field(default_factory=dict)   # table name -> matplotlib Figure
    trained: int = 0


def sweep_tables(names, base_cfg, seeds_of: dict, runs_root, steps=None, rows=None, out_dir=None,
                 workers: int = 1, executor: str = "local", address: str | None = None,
                 cpus_per_run: int = 1, gpus_per_run: float | None = None,
                 log=print, bar: bool = False) -> SweepOutput:
    """The tables ``names`` end to end: train every run they need that is not cached yet
    (:func:`~dsanet.experiments.run_many` on ``executor``), then write each table, ``verdicts.csv``
    (:func:`run_tables`) and a forest plot per table (``figures/04_table_<name>_forest``) under
    ``out_dir``. Notebook 04 and ``python -m dsanet sweep`` both call it.

    ``seeds_of``: table -> seeds (:func:`~dsanet.experiments.table_seeds`); ``steps`` the budget
    (None: the profile's, :func:`~dsanet.experiments.budget`); ``rows`` the first rows only.
    """
    from .sweep import run_many
    from .tables import table_configs

    todo = [c for name in names
            for c in table_configs([name], base_cfg, seeds_of[name], steps, rows, runs_root)]
    trained = run_many(todo, runs_root, workers, log=log, executor=executor, address=address,
                       cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, bar=bar)
    results, verdicts = run_tables(names, base_cfg, seeds_of, runs_root, steps, rows, out_dir)
    forests = {}
    if out_dir is not None:
        from .. import viz

        for name, r in results.items():
            if len(r.comparison):
                forests[name] = viz.forest(r.comparison, f"Table {name}: {r.table.title}")
                viz.save(forests[name], out_dir, f"04_table_{name}_forest")
    return SweepOutput(results, verdicts, forests, trained)
