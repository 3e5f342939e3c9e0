"""Figure fixes of issue 11: 200-dpi PNG + SVG, Fig. 1 counts, labelled robust colour bars,
Fig. 5 extra lines, Table I markers above lines, the calibration legend off the curves."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dsanet import viz


def test_save_writes_a_200_dpi_png_and_an_svg(tmp_path):
    fig = matplotlib.figure.Figure(figsize=(2, 1))
    fig.add_axes([0.2, 0.2, 0.6, 0.6]).plot([0, 1], [0, 1])
    path = viz.save(fig, tmp_path, "x")
    assert path == tmp_path / "figures" / "x.png"
    img = Image.open(path)
    assert [round(d) for d in img.info["dpi"]] == [200, 200]      # the PNG's pHYs chunk
    assert img.size[0] > 300                                      # > 1.5 in of content at 200 dpi
    assert (tmp_path / "figures" / "x.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_fig1_title_states_the_plotted_counts():
    pts = pd.DataFrame({"x": 0.0, "y": 0.0, "projection": "tsne", "model": "m",
                        "identity": np.repeat(["a", "b", "c", "d", "e"], 8),
                        "modality": np.tile(["voice"] * 4 + ["face"] * 4, 5)})
    assert viz.point_counts(pts) == "5 identities x (4 face + 4 voice) points"
    fig = viz.feature_grid(pts, "o voice, x face")
    assert fig._suptitle.get_text() == "5 identities x (4 face + 4 voice) points; o voice, x face"


def test_robust_limits_ignore_a_single_peak():
    m = np.arange(1000, dtype=float).reshape(20, 50)
    m.flat[333] = 1e6
    lo, hi = viz.robust_limits([m[:10], m[10:]])
    # sorted values: 0..332, 334..999, 1e6. 1st percentile at position 0.01 * 999 = 9.99 ->
    # 9 + 0.99 * (10 - 9); 99th at 989.01 -> sorted[989] = 990, sorted[990] = 991 -> 990.01
    assert lo == pytest.approx(9.99) and hi == pytest.approx(990.01)
    fig = viz.dem_maps({"a": m, "b": m}, ((0, 2), (0, 2)), (3, 3))
    bar = fig.axes[-1]
    assert "activation" in bar.get_ylabel()


def test_cams_have_a_colour_bar():
    imgs = np.zeros((2, 3, 8, 8), np.uint8)
    fig = viz.cams(imgs, {"DSANet": np.random.default_rng(0).random((2, 8, 8))})
    assert any("class activation" in ax.get_ylabel() for ax in fig.axes)


def test_fig5_takes_extra_lines_and_draws_gender_only_dotted():
    ks = [2, 3, 4]
    df = pd.DataFrame({"k": ks, "direction": "V-F", "value": [80, 70, 60], "ci_low": [75, 65, 55],
                       "ci_high": [85, 75, 65]})
    base = df.assign(model="baseline", value=[60, 50, 40])
    ref = pd.DataFrame({"k": ks * 2, "scorer": ["oracle"] * 3 + ["gender_only"] * 3,
                        "value": [90, 85, 80, 75, 58, 50]})
    fig = viz.matching_curve(df, ref, extra=base)
    labels = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert {"DSANet V-F", "baseline V-F", "oracle", "gender_only"} <= set(labels)
    assert labels["gender_only"].get_linestyle() == ":"
    assert list(labels["baseline V-F"].get_ydata()) == [60, 50, 40]


def test_table1_markers_sit_above_their_lines():
    df = pd.DataFrame({"p": [0.1, 0.5], "structure": "GAN", "rate": "drop",
                       "simulated": [0.1, 0.5], "formula": [0.1, 0.5]})
    ax = viz.dropout_rates(df).axes[0]
    assert min(c.get_zorder() for c in ax.collections) > max(ln.get_zorder() for ln in ax.get_lines())


def test_calibration_legend_is_outside_the_axes():
    lines = pd.DataFrame({"k": [2, 3, 2, 3], "scorer": ["oracle", "oracle", "chance", "chance"],
                          "value": [0.99, 0.98, 0.5, 0.33]})
    fig = viz.calibration(lines)
    ax = fig.axes[0]
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.x0 >= ax.get_window_extent().x1 - 1                # right of the plotting area
