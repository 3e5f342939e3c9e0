"""Issue 21/22 targets on the committed reports: corrected half-widths of the binary comparisons of
Tables V-XI and the verdict counts. ``python scripts/verdict_targets.py`` (reads reports/tables/verdicts.csv)."""
import pandas as pd, numpy as np
v = pd.read_csv("reports/tables/verdicts.csv")
v["half"] = (v["hi"] - v["lo"]) / 2
vxi = v[v["table"].isin(["V","VI","VII","VIII","IX","X","XI"])]
b = vxi[vxi["binary"].astype(bool)]
print("comparisons", len(v), "tables", v["table"].unique().tolist())
for sc, g in b.groupby("scorer"):
    print(sc, "binary V-XI:", len(g), "half<=1.0:", f"{(g['half']<=1.0).mean():.1%}", "median half", round(g["half"].median(), 2))
print("all binary V-XI half<=1:", f"{(b['half']<=1.0).mean():.1%}", "median", round(b["half"].median(),2))
print(v.groupby(["table","verdict"]).size().unstack(fill_value=0))
