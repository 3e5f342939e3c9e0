"""Presets of Tables V-XII, the run cache, the reduction over seeds, the reports, Grad-CAM.

No test trains: finished runs are written by hand (done.json + metrics.csv) so that the sweep
reads them back, and every expected value is computed here by a plain formula.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from dsanet import experiments as ex
from dsanet.config import paper, Config, quick, smoke
from dsanet.paper import table as paper_table

T_975 = {1: 12.706204736174705, 2: 4.302652729911275, 3: 3.182446305284263}  # Student t quantiles


# ----------------------------------------------------------------------------- presets

@pytest.mark.parametrize("name", ex.table_names())
def test_presets_build_valid_configs(name):
    base = quick()
    for row, ov in ex.presets(name):
        cfg = base.replace(**ov)                      # unknown fields would raise TypeError
        assert isinstance(cfg, Config) and cfg.n_streams >= 1, row
        for col in ex.get_table(name).columns:
            assert cfg.replace(**col.run_overrides()).k == col.k


@pytest.mark.parametrize("name", ex.table_names())
def test_rows_and_columns_match_the_papers_table(name):
    paper = paper_table(name)
    ours = [r for r, _ in ex.presets(name) if r not in ex.NOT_IN_PAPER]
    assert ours == list(paper["row"]), "rows one-to-one, paper's order"
    for col in ex.get_table(name).columns:
        assert col.key in paper.columns


def test_table_names_are_v_to_xii():
    assert ex.table_names() == ["V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
    assert ex.get_table("Table v").name == "V"
    with pytest.raises(KeyError, match="no preset table"):
        ex.get_table("XIII")


def test_table_v_components():
    rows = dict(ex.presets("V"))
    cfg = {r: quick().replace(**ov) for r, ov in rows.items()}
    # (structure, enhancement, cls_loss): DEM = enhancement dual, SAS = structure sas, AMCE = cls
    want = {"a": ("gan", "none", "bce"), "b": ("gan", "dual", "bce"), "c": ("sas", "none", "bce"),
            "d": ("gan", "none", "amce"), "e": ("sas", "dual", "bce"), "f": ("sas", "none", "amce"),
            "g": ("sas", "dual", "amce")}
    got = {r: (c.structure, c.enhancement, c.cls_loss) for r, c in cfg.items()}
    assert got == want
    paper = paper_table("V").set_index("row")
    for r, (structure, enhancement, loss) in want.items():
        assert paper.loc[r, "dem"] == (enhancement == "dual")
        assert paper.loc[r, "sas"] == (structure == "sas")
        assert paper.loc[r, "amce"] == (loss == "amce")


def test_table_xi_and_xii_settings():
    xi = {r: quick().replace(**ov) for r, ov in ex.presets("XI")}
    assert (xi["a"].selection, xi["a"].enhancement) == ("peak", "subtle")
    assert (xi["d"].selection, xi["d"].enhancement) == ("patch", "salient")
    assert (xi["g"].selection, xi["g"].enhancement) == ("both", "dual")
    xii = dict(ex.presets("XII"))
    assert xii["lambda=2.5"] == {"lam": 2.5}
    assert xii["lambda1=0.05"] == {"lam1": 0.05, "task": "retrieval"}
    chosen = paper_table("XII").query("chosen")
    for row in chosen["row"]:   # the paper's chosen settings are the defaults: same run as DSANet
        assert ex.config_hash(quick().replace(**xii[row])) == ex.config_hash(
            quick().replace(task=xii[row].get("task", "matching")))


def test_shared_rows_are_one_run():
    base = ex.budget(quick(), 50)
    h = lambda t, row: ex.config_hash(base.replace(**dict(ex.presets(t))[row]))  # noqa: E731
    assert h("V", "a") == h("VII", "GAN baseline") == h("XI", "baseline")
    assert h("V", "b") == h("VII", "GAN concatenate")
    assert h("V", "g") == h("VI", "1-layer DEM") == h("VII", "SAS subtle + salient") \
        == h("VIII", "AMCE") == h("IX", "SAGAN") == h("X", "Structure Metric") == h("XI", "g")


# ----------------------------------------------------------------------------- run cache

def test_config_hash_ignores_only_bookkeeping():
    c = quick()
    assert ex.config_hash(c) == ex.config_hash(c.replace(name="x", device="cpu", log_every=7))
    assert ex.config_hash(c) != ex.config_hash(c.replace(seed=1))
    assert ex.config_hash(c) != ex.config_hash(c.replace(beta=0.5))


def test_budget_sets_steps_evaluation_and_the_sweep_protocol():
    b = ex.budget(quick(), 80)
    assert (b.steps, b.eval_every, b.eval_ks) == (80, 40, (2, 10))
    assert b.schedule_steps == 0                         # its own schedule over the 80 steps
    assert b.backbone_train == "frozen"                  # quick sweeps train on cached maps
    assert ex.budget(quick(), None) == quick().replace(backbone_train="frozen")
    assert ex.budget(paper(), None) == paper()           # the paper profile: end to end


def test_retrieval_rows_fine_tune_the_matching_run_of_their_seed(tmp_path):
    base = ex.budget(quick(), 80)
    cells = ex.cell_configs("XII", base, [0, 1], runs_root=tmp_path)
    ret = [(row, s, c) for row, _, s, c in cells if c.task == "retrieval"]
    assert ret and all(c.init_from == str(ex.run_dir(base.replace(seed=s), tmp_path) / "best.pt")
                       for _, s, c in ret)
    assert all(c.lr_schedule == "step" for *_, c in ret)          # the paper's retrieval schedule


def _metrics(vf: float, fv: float, k: int = 2, clf: float | None = None) -> pd.DataFrame:
    rows = []
    for d, v in (("V-F", vf), ("F-V", fv)):
        for kk in (2, 10):
            val = v if kk == k else v / 5
            rows.append(dict(task="matching", direction=d, protocol="U", k=kk, scorer="distance",
                             metric="acc", value=val, ci_low=val - 0.02, ci_high=val + 0.04, n=100))
            if clf is not None and kk == k:
                rows.append(dict(rows[-1], scorer="classifier", value=clf))
        rows.append(dict(task="retrieval", direction=d, protocol="-", k=None, scorer="distance",
                         metric="map", value=v / 10, ci_low=v / 10 - 0.01, ci_high=v / 10 + 0.01,
                         n=50))
    return pd.DataFrame(rows)


def _fake_run(cfg: Config, root, metrics: pd.DataFrame) -> None:
    d = ex.run_dir(cfg, root)
    d.mkdir(parents=True)
    metrics.to_csv(d / "metrics.csv", index=False)
    pd.DataFrame({"step": [1], "total": [1.0]}).to_csv(d / "history.csv", index=False)
    (d / "done.json").write_text(json.dumps({"wall_s": 1.5, "checkpoint": None}))


def test_cached_run_reads_a_finished_run_back(tmp_path):
    cfg = smoke()
    _fake_run(cfg, tmp_path, _metrics(0.7, 0.6))
    run = ex.cached_run(cfg, tmp_path)          # would train (and fail: no data) if not cached
    assert run.cached and run.wall_s == 1.5 and run.checkpoint is None
    cell = ex.read_cell(run.metrics, ex.BINARY[0].select("matching"))
    assert cell == pytest.approx((0.7, 0.68, 0.74))


def test_read_cell_scorer_choice_and_fallback():
    m = _metrics(0.7, 0.6, clf=0.55)
    col = ex.BINARY[0]
    assert ex.read_cell(m, col.select("matching", "classifier"))[0] == 0.55
    assert ex.read_cell(m, col.select("matching", "distance"))[0] == 0.7
    assert ex.read_cell(m, ex.MULTI[0].select("matching", "classifier"))[0] == pytest.approx(0.14)
    assert ex.read_cell(m, col.select("retrieval"))[0] == pytest.approx(0.07)
    with pytest.raises(KeyError):
        ex.read_cell(m, {"task": "verification"})


def test_run_table_reduces_over_seeds(tmp_path):
    base = ex.budget(smoke(), 2)
    vals = {0: (0.60, 0.50), 1: (0.70, 0.55), 2: (0.80, 0.45)}      # (vf, fv) per seed
    for row, col, seed, cfg in ex.cell_configs("VI", base, vals):
        if not ex.run_dir(cfg, tmp_path).exists():
            _fake_run(cfg, tmp_path, _metrics(*vals[seed]))
    res = ex.run_table("VI", smoke(), seeds=[0, 1, 2], runs_root=tmp_path, steps=2, log=None)
    cell = res.cells.set_index(["scorer", "row", "column"]).loc[("distance", "2-layer DEM", "V-F")]
    v = np.array([60.0, 70.0, 80.0])
    half = T_975[2] * v.std(ddof=1) / math.sqrt(3)                  # = 4.3027 * 10 / sqrt(3)
    assert cell["mean"] == pytest.approx(70.0)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((70 - half, 70 + half))
    assert cell["n_seeds"] == 3 and cell["paper"] == 92.6
    assert res.made["runs"] == 9 and res.made["trained_now"] == 0 and res.made["steps"] == 2
    w = ex.wide(res, "distance")
    assert list(w.columns) == ["row", "V-F", "V-F paper", "V-F vs ref.", "F-V", "F-V paper",
                               "F-V vs ref."]
    assert w.loc[0, "V-F vs ref."] == "ref."                         # 1-layer DEM is VI's reference
    assert w.loc[1, "V-F"] == f"70.0 ± {half:.1f}" and w.loc[1, "V-F paper"] == "92.6"
    both = ex.wide_all(res)                  # no classifier rows in these runs: distance fallback
    assert list(both["scorer"]) == ["classifier"] * 3 + ["distance"] * 3
    text = ex.write_result(res, tmp_path).read_text()
    assert text.count("| 2-layer DEM |") == 2 and "scored by the classifier" in text


def test_one_seed_uses_the_runs_bootstrap_interval(tmp_path):
    base = ex.budget(smoke(), 2)
    for row, col, seed, cfg in ex.cell_configs("IX", base, [0]):
        if not ex.run_dir(cfg, tmp_path).exists():
            _fake_run(cfg, tmp_path, _metrics(0.9, 0.8, k=cfg.k))
    res = ex.run_table("IX", smoke(), seeds=[0], runs_root=tmp_path, steps=2, log=None,
                       scorers=("distance",))
    c = res.cells.set_index(["row", "column"])
    assert c.loc[("GAN", "F-V (k=10)"), ["mean", "ci_low", "ci_high"]].tolist() == \
        pytest.approx([80.0, 78.0, 84.0])
    assert c.loc[("WGAN", "V-F"), "ci"] == "bootstrap, 1 seed"
    assert res.made["runs"] == 8                           # 4 rows (LSGAN added) x (k = 2, k = 10)


def test_t_interval_known_answer():
    mean, lo, hi = ex.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(T_975[2] / math.sqrt(3))


def test_plan_counts_distinct_runs(tmp_path):
    p = ex.plan(["V", "VII", "XI"], quick(), seeds=[0], steps=10, runs_root=tmp_path)
    # V: 7 runs; VII adds GAN subtle / salient, SAS subtle / salient; XI adds a-f
    assert (p["cells"], p["runs"], p["to_train"], p["steps"]) == (44, 17, 17, 10)


# ----------------------------------------------------------------------------- reports

def test_fmt_cell_and_markdown(tmp_path):
    assert ex.fmt_cell(91.234, 90.0, 92.6) == "91.2 ± 1.3"
    assert ex.fmt_cell(float("nan"), 0, 1) == "-"
    assert ex.fmt_cell(50.0, float("nan"), float("nan")) == "50.0"
    df = pd.DataFrame({"row": ["a|b"], "x": ["1"]})
    assert ex.markdown(df) == "| row | x |\n|---|---|\n| a/b | 1 |"
    path = ex.write_table("II", "Counts", df, tmp_path, {"profile": "quick", "seeds": [0]})
    text = path.read_text()
    assert text.startswith("### Table II: Counts") and "profile `quick`" in text
    assert (tmp_path / "tables" / "table_II.csv").exists()


# ----------------------------------------------------------------------------- Grad-CAM

class _SumHW(torch.nn.Module):
    def forward(self, A):
        return A.sum(dim=(2, 3))                                     # h_c = sum_hw A_chw


class _ToyModel(torch.nn.Module):
    """face_backbone = identity on (N, C, H, W); generator = sum over H, W -> (N, C)."""

    def __init__(self):
        super().__init__()
        self.face_backbone = torch.nn.Identity()
        self.generator = _SumHW()


def test_grad_cam_known_answer():
    from dsanet.cam import grad_cam

    model = _ToyModel()
    A = torch.zeros(1, 2, 2, 2)
    A[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])               # channel 0: top-left
    A[0, 1] = torch.tensor([[0.0, 0.0], [0.0, 3.0]])               # channel 1: bottom-right
    voice = torch.tensor([[0.0, 5.0]])
    # s = -||h - v||, h = (1, 3): ds/dh = -(h - v)/||h - v|| = (-1, 2)/sqrt(5); dA_chw = ds/dh_c
    # weights w = (-1, 2)/sqrt(5); CAM = relu(w0 A0 + w1 A1) = (0, 0; 0, 6/sqrt(5)) -> scaled to 1
    cam = grad_cam(model, A, voice)
    assert cam.shape == (1, 2, 2)
    assert torch.allclose(cam[0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]), atol=1e-6)
