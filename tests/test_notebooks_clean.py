"""The committed notebooks are clean, parameterised, and each ``NN_name.ipynb`` is in sync with its
jupytext source ``NN_name.py`` (percent format); the reproduction runner finds them and gathers
reports/README.md."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = ["00_data", "01_dem_walkthrough", "02_sas_training", "03_amce_analysis", "04_ablations",
         "05_feature_plots", "06_matching_retrieval"]
FLAT = (ast.Constant, ast.Name, ast.Attribute, ast.Call, ast.UnaryOp)   # scalars, os.environ.get


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def test_the_seven_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_no_counts_kernel_python3(path):
    nb = _read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert not {"collapsed", "scrolled", "ExecuteTime", "execution"} & set(cell.metadata)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_then_a_flat_parameters_cell(path):
    nb = _read(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.stem[:2]} ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "the first code cell is the parameters cell"
    tree = ast.parse(tagged[0].source)
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            continue
        assert isinstance(node, ast.Assign) and isinstance(node.value, FLAT), ast.dump(node)[:80]
        names |= {t.id for t in node.targets}
    assert {"profile", "data_root", "device", "seed", "threads", "out_dir"} <= names
    assert 'os.environ.get("DSANET_PROFILE", "quick")' in tagged[0].source


def _cells(nb) -> list[tuple]:
    """(type, source, tags) of every cell: what a pair must agree on."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_has_its_percent_source_and_nothing_else():
    sources = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
    assert sources == NAMES
    config = (ROOT / "notebooks" / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_and_py_are_a_synced_pair(name):
    """Same cells (type, source, tags) in both files: run ``jupytext --sync notebooks/*.py``."""
    import jupytext

    ipynb = _read(ROOT / "notebooks" / f"{name}.ipynb")
    text = (ROOT / "notebooks" / f"{name}.py").read_text()
    py = jupytext.reads(text, fmt="py:percent")
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert py.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert py.metadata["kernelspec"]["name"] == "python3"
    assert _cells(py) == _cells(ipynb), f"{name}.py and {name}.ipynb differ: jupytext --sync"
    # the percent markers, written out: one tagged parameters cell, markdown cells marked
    assert text.count('# %% tags=["parameters"]\n') == 1
    assert text.count("# %% [markdown]\n") == sum(c.cell_type == "markdown" for c in ipynb.cells)


# ----------------------------------------------------------------------------- reproduce

def test_find_notebooks_and_only(tmp_path):
    from dsanet.runner import find_notebooks

    for name in ("00_a.ipynb", "04_b.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in find_notebooks(tmp_path)] == ["00_a.ipynb", "04_b.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, "4")] == ["04_b.ipynb"]
    with pytest.raises(SystemExit, match="07"):
        find_notebooks(tmp_path, "00,07")


def test_setup_keeps_smoke_out_of_reports(tmp_path, monkeypatch):
    from dsanet.reproduce import SMOKE_OUT, setup

    monkeypatch.chdir(tmp_path)
    ctx = setup("smoke", chdir=False, runs_dir=str(tmp_path / "runs"))
    assert ctx.out == Path(SMOKE_OUT) and ctx.smoke and "reports" not in ctx.out.parts
    assert setup("quick", chdir=False, runs_dir=str(tmp_path / "runs")).out == Path("runs/notebooks")


def test_readme_gathers_tables_in_order(tmp_path):
    from dsanet.runner import write_readme

    (tmp_path / "tables").mkdir()
    for name in ("XII", "IV", "II"):
        (tmp_path / "tables" / f"table_{name}.md").write_text(f"### Table {name}: t\n")
    (tmp_path / "run_info.json").write_text(json.dumps({
        "profile": "quick", "total_wall_s": 12.0, "versions": {"torch": "9"}, "device": {},
        "notebooks": [{"notebook": "00_data.ipynb", "status": "ok", "wall_s": 3.0}]}))
    text = write_readme(tmp_path).read_text()
    assert text.index("Table II:") < text.index("Table IV:") < text.index("Table XII:")
    assert "| [00_data.ipynb](00_data.ipynb) | ok | 3.0 |" in text and "torch 9" in text


def test_parse_params():
    from dsanet.runner import _parse_params

    assert _parse_params(["seeds=3", "scorer=classifier", "x=0.5"]) == \
        {"seeds": 3, "scorer": "classifier", "x": 0.5}
    with pytest.raises(SystemExit):
        _parse_params(["seeds"])


def test_partial_rerun_keeps_the_full_runs_record(tmp_path):
    from dsanet.runner import _merge_record

    path = tmp_path / "run_info.json"
    full = {"command": "python -m dsanet reproduce", "profile": "quick", "started": "T0",
            "total_wall_s": 100.0, "notebooks": [{"notebook": "00_a.ipynb", "wall_s": 60.0},
                                                 {"notebook": "01_b.ipynb", "wall_s": 40.0}]}
    _merge_record(path, full)
    part = {"command": "python -m dsanet reproduce --only 01", "profile": "quick", "started": "T1",
            "total_wall_s": 5.0, "notebooks": [{"notebook": "01_b.ipynb", "wall_s": 4.0}]}
    _merge_record(path, part)
    rec = json.loads(path.read_text())
    assert rec["started"] == "T0" and rec["command"] == "python -m dsanet reproduce"
    assert rec["total_wall_s"] == 100.0                  # the full run's time, not 60 + 4
    assert [e["wall_s"] for e in rec["notebooks"]] == [60.0, 4.0]       # each notebook's latest
    assert rec["rerun"] == {"command": "python -m dsanet reproduce --only 01", "started": "T1",
                            "notebooks": ["01_b.ipynb"]}
    again = {"command": "python -m dsanet reproduce --only 00", "profile": "quick", "started": "T2",
             "total_wall_s": 3.0, "notebooks": [{"notebook": "00_a.ipynb", "wall_s": 3.0}]}
    _merge_record(path, again)
    rec = json.loads(path.read_text())
    assert rec["total_wall_s"] == 100.0 and rec["rerun"]["notebooks"] == ["00_a.ipynb", "01_b.ipynb"]
