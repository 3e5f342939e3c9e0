"""The run cache's code hash covers what training imports, found by walking imports (ast)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dsanet import experiments as ex

PACKAGE = Path(ex.__file__).resolve().parent


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
    assert {"engine/train.py", "engine/evaluate.py", "config.py", "losses.py",
            "models/dsanet.py", "data/batches.py", "__init__.py", "engine/__init__.py"} <= files
    # modules that only present results, or that training never imports
    assert not files & {"experiments.py", "analysis.py", "viz.py", "cam.py", "reproduce.py",
                        "paper.py", "__main__.py", "engine/cli.py", "inference.py"}


def test_a_copy_hashes_the_same(copy):
    assert ex.code_hash(copy) == ex.code_hash()


def test_a_new_module_nothing_imports_keeps_the_hash(copy):
    before = ex.code_hash(copy)
    (copy / "scratch.py").write_text("import torch\nX = 1\n")
    (copy / "models" / "unused_head.py").write_text("from ..losses import amce\n")
    (copy / "experiments.py").write_text((copy / "experiments.py").read_text() + "\n# edited\n")
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
