"""The run cache's code hash covers what training imports, found by walking imports (ast)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import dsanet
from dsanet import experiments as ex

PACKAGE = Path(dsanet.__file__).resolve().parent


@pytest.fixture()
def copy(tmp_path) -> Path:
    """A copy of the dsanet package directory to edit."""
    dst = tmp_path / "dsanet"
    shutil.copytree(PACKAGE, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_training_files_follow_imports_and_leave_presentation_out():
    files = {p.as_posix() for p in ex.training_files()}
    # the entry points, a relative module-level import, a function-level one (train.build_model)
    # and an absolute function-level one (evaluate -> dsanet.data.batches), the parent packages
    assert {"engine/train.py", "engine/evaluate.py", "config.py", "losses/__init__.py",
            "models/dsanet.py", "data/batches.py", "__init__.py", "engine/__init__.py"} <= files
    # a package's submodules, imported by its __init__.py (`from .metric import ...`)
    assert {f"losses/{p.name}" for p in (PACKAGE / "losses").glob("*.py")} <= files
    # modules that only present results, or that training never imports
    assert not files & {"cam.py", "reproduce.py", "paper.py",
                        "__main__.py", "engine/cli.py", "inference.py", "data/embedded.py"}
    assert not {f for f in files if f.startswith(("analysis/", "experiments/", "viz/"))}


def test_a_copy_hashes_the_same(copy):
    assert ex.code_hash(copy) == ex.code_hash()


def test_a_new_module_nothing_imports_keeps_the_hash(copy):
    before = ex.code_hash(copy)
    (copy / "scratch.py").write_text("import torch\nX = 1\n")
    (copy / "models" / "unused_head.py").write_text("from ..losses import amce\n")
    for f in (copy / "experiments").glob("*.py"):   # the run cache itself is not training code
        f.write_text(f.read_text() + "\n# edited\n")
    assert ex.code_hash(copy) == before


def test_editing_an_imported_module_changes_the_hash(copy):
    before = ex.code_hash(copy)
    f = copy / "models" / "sas.py"
    f.write_text(f.read_text() + "\n# edited\n")
    assert ex.code_hash(copy) != before


def test_a_new_import_pulls_the_new_module_in(copy):
    (copy / "scratch.py").write_text("X = 1\n")
    before = ex.code_hash(copy)
    f = copy / "engine" / "optim.py"
    f.write_text(f.read_text() + "\n\ndef _late():\n    from .. import scratch\n    return scratch\n")
    assert "scratch.py" in {p.as_posix() for p in ex.training_files(copy)}
    after = ex.code_hash(copy)
    (copy / "scratch.py").write_text("X = 2\n")  # now an imported module: edits count
    assert len({before, after, ex.code_hash(copy)}) == 3


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_walk_follows_a_package_into_the_submodules_its_init_imports(tmp_path):
    # the training entry points import a package (`from ..losses import x`); its __init__.py
    # re-exports from a submodule, which imports a sibling; a submodule nothing imports stays out
    root = _tree(tmp_path / "dsanet", {
        "__init__.py": "",
        "config.py": "",
        "engine/__init__.py": "",
        "engine/train.py": "from ..losses import pair_loss\n",
        "engine/evaluate.py": "def run():\n    from dsanet.scores import top\n    return top\n",
        "losses/__init__.py": "from .matching import pair_loss\n\n\ndef _lazy():\n"
                              "    from . import unused\n",
        "losses/matching.py": "from .common import margin\n\npair_loss = margin\n",
        "losses/common.py": "margin = 1\n",
        "losses/unused.py": "",
        "scores/__init__.py": "from . import ranking\n",
        "scores/ranking.py": "top = 1\n",
        "scratch.py": "",
    })
    files = {p.as_posix() for p in ex.training_files(root)}
    assert files == {"__init__.py", "config.py", "engine/__init__.py", "engine/train.py",
                     "engine/evaluate.py", "losses/__init__.py", "losses/matching.py",
                     "losses/common.py", "scores/__init__.py", "scores/ranking.py"}
    before = ex.code_hash(root)
    (root / "losses" / "common.py").write_text("margin = 2\n")
    assert ex.code_hash(root) != before
