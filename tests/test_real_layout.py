"""Every notebook runs on the real layout (issue 23, item 2).

A small generated benchmark is stripped down to what the official VoxCeleb1 + VGGFace downloads
give (``conftest.real_layout``: voices/, faces/ and the official tab-separated ``vox1_meta.csv``;
no ``samples.csv``, ``traits.csv``, ``calibration.json`` or ``meta.csv``), and the seven
notebooks run on it with papermill in the smoke profile, through the function behind
``python -m dsanet reproduce --profile smoke --param data_root=TREE --out OUT``. Every notebook
must succeed and write its tables and figures; the parts that need the benchmark's ground truth
(traits, calibration lines, Fig. 5's oracle and gender-only lines) print one line each saying
they are skipped and why, and leave no stale output of an earlier benchmark run behind.
"""
from __future__ import annotations

import json

import pytest

from conftest import SYNTHETIC_ONLY, real_layout

pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = ["00_data", "01_dem_walkthrough", "02_sas_training", "03_amce_analysis",
             "04_ablations", "05_feature_plots", "06_matching_retrieval"]
SKIPS = {   # notebook -> the lines it prints for what it skips on real data
    "00_data": ["traits: skipped, the tree has no samples.csv (only the embedded benchmark has "
                "per-sample ground truth)",
                "calibration: skipped, the tree has no calibration.json (only the embedded "
                "benchmark has oracle and gender-only lines)"],
    "06_matching_retrieval": ["Table III: skipped, no Learnable-PINs split lists (pass "
                              "pins_lists=FILE; docs/real_data.md)",
                              "Fig. 5 oracle and gender-only lines: skipped, the tree has no "
                              "calibration.json (only the embedded benchmark has them); chance "
                              "1/k drawn alone"],
}
TABLES = ["I", "II", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]   # every one's .md
FIGURES = ["00_examples", "01_fig4_maps", "01_fig4_values", "01_table1", "02_training_curves",
           "02_adversarial_targets", "03_gradients", "03_kept_negatives", "05_fig1_features",
           "05_fig7_cam", "06_fig5_k_curve", "06_table_IV_forest"]
STALE = ["tables/calibration.csv", "figures/00_calibration.png", "figures/00_traits.png"]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """The seven notebooks run on a real-layout tree: (tree, out folder, run record)."""
    from dsanet import runner
    from dsanet.data import synthetic
    from dsanet.data.embedded import preset_knobs

    base = tmp_path_factory.mktemp("real_layout")
    tree = base / "vox1"
    synthetic.generate(tree, **preset_knobs("smoke"), workers=1)
    real_layout(tree)
    out = base / "out"
    for rel in STALE:   # what an earlier run on the benchmark into the same folder left there
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("stale")
    with pytest.MonkeyPatch.context() as mp:   # run_notebooks sets these for the kernels
        for name in ("DSANET_PROFILE", "MPLBACKEND", "PYTHONHASHSEED"):
            mp.delenv(name, raising=False)
        mp.setenv("DSANET_RUNS", str(base / "runs"))   # training runs out of the repo's runs/
        mp.setenv("OMP_NUM_THREADS", "1")
        record = runner.run_notebooks("smoke", out, params={"data_root": str(tree)})
    return tree, out, record


def printed(path) -> str:
    """Everything the executed notebook printed (its stream outputs)."""
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.slow
def test_every_notebook_runs_on_the_real_layout(reproduced):
    tree, out, record = reproduced
    assert (tree / "vox1_meta.csv").read_text().startswith("VoxCeleb1 ID\tVGGFace1 ID\t")
    assert not any((tree / name).exists() for name in SYNTHETIC_ONLY)
    status = {e["notebook"]: (e["status"], e.get("error_line")) for e in record["notebooks"]}
    assert status == {f"{nb}.ipynb": ("ok", None) for nb in NOTEBOOKS}

    for t in TABLES:
        assert (out / "tables" / f"table_{t}.md").is_file(), t
    for f in FIGURES:
        assert (out / "figures" / f"{f}.png").stat().st_size > 0, f
    table2 = (out / "tables" / "table_II.md").read_text()
    assert "(paper)" in table2 and "924" in table2          # ours beside the paper's counts
    data = json.loads((out / "00_data.json").read_text())
    assert data["data_root"] == str(tree) and data["calibration"] is None
    assert data["counts"]["Total"]["Identities"] == 40      # the smoke preset's identities


@pytest.mark.slow
def test_benchmark_only_parts_say_they_are_skipped(reproduced):
    _, out, _ = reproduced
    for nb in NOTEBOOKS:
        text = printed(out / f"{nb}.ipynb")
        lines = [ln for ln in text.splitlines() if "skipped" in ln]
        assert lines == SKIPS.get(nb, []), (nb, lines)
    for rel in STALE:   # no benchmark line of an earlier run is reported for this data
        assert not (out / rel).exists(), rel
    readme = (out / "README.md").read_text()
    assert "benchmark lines" not in readme and "Table IV" in readme


def test_benchmark_views_skip_with_one_line_and_drop_stale_outputs(tmp_path, capsys):
    """The package side, without notebooks: on a tree without the benchmark's files each view
    prints its line and returns None, Fig. 5's reference is chance 1/k alone."""
    from dsanet import analysis

    out = tmp_path / "out"
    for rel in STALE:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("stale")
    assert analysis.benchmark_view(tmp_path, "traits", out=out) is None
    assert analysis.benchmark_view(tmp_path, "calibration", out=out) is None
    ref = analysis.reference_lines(tmp_path, ks=[10, 2, 3])
    lines = capsys.readouterr().out.splitlines()
    assert lines == SKIPS["00_data"] + SKIPS["06_matching_retrieval"][1:]   # (Table III: 06 itself)
    assert not any((out / rel).exists() for rel in STALE)
    assert ref["k"].tolist() == [2, 3, 10] and set(ref["scorer"]) == {"chance"}
    assert ref["value"].tolist() == pytest.approx([50.0, 100 / 3, 10.0])
    (tmp_path / "samples.csv").write_text("identity,modality,gender,split,f0_hz,vtl_cm,"
                                          "jaw_width,face_length\n")
    assert analysis.benchmark_skip(tmp_path, "traits") is None
    assert analysis.benchmark_skip(tmp_path, "calibration") is not None
