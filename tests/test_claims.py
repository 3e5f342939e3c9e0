"""Row-against-reference differences and the paper's claims (dsanet.claims), worked by hand."""
import math

import pandas as pd
import pytest
from scipy import stats

from dsanet import claims


def _runs(rows):
    return pd.DataFrame([{"scorer": "distance", "row": r, "column": "V-F", "seed": i, "value": v,
                          "ci_low": v - 2, "ci_high": v + 2} for r, vals in rows.items()
                         for i, v in enumerate(vals)])


def test_welch_difference_by_hand():
    # a: mean 82, var 4; b: mean 71, var 1; n = 3 each
    va, vb = 4 / 3, 1 / 3
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)                      # 2.941...
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    runs = _runs({"a": [80, 82, 84], "g": [70, 71, 72]})
    diff, h = claims.difference(runs[runs.row == "a"], runs[runs.row == "g"])
    assert diff == pytest.approx(11.0) and h == pytest.approx(half)
    assert 4.0 < h < 4.3


def test_one_seed_adds_bootstrap_half_widths_in_quadrature():
    runs = _runs({"a": [80], "g": [77]})                                    # half-widths 2 and 2
    diff, h = claims.difference(runs[runs.row == "a"], runs[runs.row == "g"])
    assert diff == 3 and h == pytest.approx(math.sqrt(8))


@pytest.mark.parametrize("diff, half, paper, want", [
    (-3.0, 1.0, -0.5, "holds"), (3.0, 1.0, -0.5, "fails"), (0.5, 1.0, -2.0, "unresolved"),
    (2.0, 1.0, 0.0, "no claim")])
def test_verdicts(diff, half, paper, want):
    assert claims.verdict(diff, half, paper) == want


def test_compare_reads_the_paper_difference_against_the_reference_row():
    runs = _runs({"a": [80, 81, 82], "g": [90, 91, 92]})
    cells = pd.DataFrame([{"row": "a", "column": "V-F", "paper": 90.2},
                          {"row": "g", "column": "V-F", "paper": 92.5}])
    c = claims.compare("V", runs, cells)
    assert list(c["row"]) == ["a"] and c["reference"].iloc[0] == "g"
    assert c["paper_diff"].iloc[0] == pytest.approx(-2.3)
    assert c["verdict"].iloc[0] == "holds" and bool(c["differs"].iloc[0])


def test_table_xii_compares_each_symbol_with_its_chosen_value():
    assert claims.reference_row("XII", "lambda=1.5", {"lambda": 2.0, "mu": 3.0}) == "lambda=2"
    assert claims.reference_row("XII", "mu=1", {"lambda": 2.0, "mu": 3.0}) == "mu=3"
    assert claims.reference_row("VI", "3-layer DEM") == "1-layer DEM"
