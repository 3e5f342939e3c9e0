"""dsanet.paper against the paper's text, parsed here independently of the module."""
import importlib
import math
import re
from pathlib import Path

import pytest

# `from dsanet import paper` would give the profile function that dsanet/__init__.py re-exports
# from config, not this module: import the module by its full name.
paper = importlib.import_module("dsanet.paper")

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "paper" / "dsanet-tmm2023.md"
needs_paper = pytest.mark.skipif(not PAPER.exists(), reason=f"paper text not found at {PAPER}")

METRICS = ["vf", "fv", "vf10", "fv10", "map_vf", "map_fv"]


def md_rows(name: str) -> list[list[str]]:
    """Tab-separated cells of the contiguous block of tab lines after 'TABLE <name>'."""
    text = PAPER.read_text(encoding="utf-8")
    start = re.search(rf"^TABLE {name}\s*$", text, re.M).end()
    rows, lines = [], text[start:].splitlines()
    for line in lines:
        if "\t" in line:
            rows.append([re.sub(r"</?b>", "", c).strip() for c in line.split("\t")])
        elif rows and line.strip():
            break
    return rows


def number(cell: str):
    """A float, NaN for "-" / "x" (not available), None for a non-numeric label cell."""
    if cell in {"-", "\u00d7"}:
        return math.nan
    return float(cell) if re.fullmatch(r"\d+(\.\d+)?", cell) else None


def numbers(cells: list[str]) -> list[float]:
    return [v for v in map(number, cells) if v is not None]


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@needs_paper
@pytest.mark.parametrize("name, header_rows", [("III", 2), ("IV", 2), ("VIII", 2), ("IX", 2),
                                               ("X", 2), ("VI", 1), ("VII", 1), ("XI", 1),
                                               ("V", 2), ("II", 1)])
def test_every_cell_matches_the_text(name, header_rows):
    md = md_rows(name)[header_rows:]
    df = paper.table(name)
    cols = [c for c in df.columns if c in METRICS] or ["train", "val", "test", "total"]
    assert len(md) == len(df)
    for cells, (_, row) in zip(md, df.iterrows()):
        got = [float(row[c]) for c in cols]
        want = numbers(cells)
        assert len(want) == len(got) and all(map(same, want, got)), (name, cells, got)


@needs_paper
def test_table_iv_dsanet_line_by_regex():
    line = re.search(r"^DSANet\tOurs\t(.*)$", PAPER.read_text(encoding="utf-8").split("TABLE IV")[1],
                     re.M).group(1)
    want = [float(x) for x in re.findall(r"<b>([\d.]+)</b>", line)]
    assert want == [92.5, 88.4, 49.1, 46.8, 6.3, 6.1]
    assert list(paper.dsanet_headline().values()) == want


@needs_paper
def test_table_v_component_flags():
    for cells, (_, row) in zip(md_rows("V")[2:], paper.table("V").iterrows()):
        assert cells[0] == row["row"]
        assert [c == "\u2713" for c in cells[1:4]] == [row["dem"], row["sas"], row["amce"]]


@needs_paper
def test_table_xii_both_halves():
    left = ["lambda"] * 4 + ["mu"] * 4 + ["alpha"] * 4 + ["lambda1"] * 4
    right = ["c"] * 4 + ["r"] * 4 + ["beta"] * 4 + ["mu1"] * 4
    df = paper.table("XII").set_index(["param", "setting"])
    md = md_rows("XII")[1:]
    assert len(md) == 16 and len(df) == 32
    for cells, lp, rp in zip(md, left, right):
        vals = numbers(cells)                       # setting, vf, fv, setting, vf, fv
        for p, (s, vf, fv) in ((lp, vals[:3]), (rp, vals[3:])):
            assert (df.loc[(p, s), "vf"], df.loc[(p, s), "fv"]) == (vf, fv), (p, s)
    chosen = df[df["chosen"]].reset_index().set_index("field")["setting"].to_dict()
    assert chosen == {"lam": 2, "mu": 3, "alpha": 1, "beta": 0.9, "c": 4, "r": 4,
                      "lam1": 0.1, "mu1": 0.2}


def test_chosen_settings_are_the_config_defaults():
    from dsanet.config import Config
    cfg = Config()
    for _, row in paper.table("XII")[lambda d: d["chosen"]].iterrows():
        assert getattr(cfg, row["field"]) == row["setting"], row["field"]


def test_table_lookup_names():
    assert paper.table("iv").equals(paper.table(4)) and paper.table("Table IV").equals(paper.table("IV"))
    assert set(paper.table("IV").columns) >= set(METRICS)
    with pytest.raises(KeyError, match="XIII"):
        paper.table("XIII")
