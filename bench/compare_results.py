"""Compare a profile's committed tables with the working tree's: ``python -m bench.compare_results
[REV] [results/demo]``. For every ``tables/*.csv`` and every numeric column: the largest absolute
and relative difference over the rows both have (joined on the ``config`` column), and the rows
only one side has. Used to show that a refactor moved no number (issue 17); run it on the CPU model
that made the committed results, since other CPUs round differently (docs/reliability.md §7).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def compare(rev: str, results: str) -> int:
    worst = 0.0
    for path in sorted(Path(results, "tables").glob("*.csv")):
        try:
            old_text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
        except subprocess.CalledProcessError:
            print(f"{path}: not in {rev}")
            continue
        old, new = pd.read_csv(io.StringIO(old_text)), pd.read_csv(path)
        both = old.merge(new, on="config", suffixes=("_old", "_new"))
        only = sorted(set(old["config"]) ^ set(new["config"]))
        diffs = []
        for col in old.columns:
            if col == "config" or f"{col}_new" not in both or not pd.api.types.is_numeric_dtype(old[col]):
                continue
            a, b = both[f"{col}_old"].astype(float), both[f"{col}_new"].astype(float)
            same_nan = a.isna() & b.isna()
            d = (a - b).abs().where(~same_nan, 0.0)
            if (a.isna() ^ b.isna()).any():
                d = d.fillna(np.inf)
            rel = (d / a.abs().replace(0, np.nan)).fillna(0.0)
            diffs.append((col, float(d.max()), float(rel.max())))
        col, dmax, rmax = max(diffs, key=lambda t: t[2]) if diffs else ("-", 0.0, 0.0)
        worst = max(worst, rmax)
        print(f"{path}: {len(both)} rows in both; largest difference {dmax:.3g} ({rmax:.3g} relative, column {col})"
              + (f"; rows in one only: {only}" if only else ""))
    print(f"largest relative difference over every table: {worst:.3g}")
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    raise SystemExit(compare(argv[0] if argv else "HEAD", argv[1] if len(argv) > 1 else "results/demo"))
