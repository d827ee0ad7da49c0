"""`vaeas verify` (vaeas.verify): which cells it reruns, how a rerun is judged, and that a rerun on
the same machine, torch and threads reproduces the committed numbers bitwise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vaeas import verify as V
from vaeas.data import process
from vaeas.errors import VaeasError
from vaeas.experiments import load_config, resolve

from conftest import REPO


@pytest.fixture(scope="module")
def ci():
    return load_config(REPO / "params.yaml", profile="ci")


def committed(run_rows):
    """Per-seed rows as a seeds CSV holds them."""
    return pd.DataFrame([{"trained_as": "", "cpu": "AMD EPYC", "threads": 1, "train_seconds": 60.0,
                          "eval_seconds": 30.0, **r} for r in run_rows])


ROWS = committed([
    {"run_id": "table2.a1_b5.seed0", "experiment": "table2", "run": "a1_b5", "seed": 0, "nll_test": 30.0, "au": 5},
    {"run_id": "table2.a1_b5.seed1", "experiment": "table2", "run": "a1_b5", "seed": 1, "nll_test": 32.0, "au": 5},
    {"run_id": "table2.a1_b5.seed2", "experiment": "table2", "run": "a1_b5", "seed": 2, "nll_test": 31.0, "au": 5},
    {"run_id": "table2.a0p2_b1.seed0", "experiment": "table2", "run": "a0p2_b1", "seed": 0, "nll_test": 31.0, "au": 4},
    {"run_id": "baselines_mnist.a1_b5.seed0", "experiment": "baselines_mnist", "run": "a1_b5", "seed": 0,
     "trained_as": "table2.a1_b5.seed0", "nll_test": 30.0, "au": 5}])


def test_select_names_the_model_a_shared_run_reads_and_checks_names_first(ci):
    cells = V.select(ci, ROWS, ["baselines_mnist.a1_b5"], [0])
    assert [c.id for c in cells] == ["table2.a1_b5.seed0"]                  # Table B's row is Table 2's model
    assert cells[0].sd["nll_test"] == pytest.approx(1.0) and cells[0].sd["au"] == 0.0
    assert cells[0].mean == {"nll_test": 31.0, "au": 5.0} and cells[0].n == {"nll_test": 3, "au": 3}
    assert V.expected_seconds(cells) == 90.0
    with pytest.raises(VaeasError, match="cell table2.a0p2_b1.seed1 has no committed row"):
        V.select(ci, ROWS, ["table2.a0p2_b1"], [1])
    with pytest.raises(VaeasError, match="no run 'table2.nope'"):
        V.select(ci, ROWS, ["table2.nope"])
    sample = V.select(ci, ROWS, sample=2, sample_seed=3)
    assert len(sample) == 2 and [c.id for c in sample] == [c.id for c in V.select(ci, ROWS, sample=2, sample_seed=3)]
    assert all(not c.run.same_as for c in sample)


def t_quantile_df2(q):
    """Student's t quantile with 2 degrees of freedom in closed form: F(t) = 1/2 + t / (2√(2 + t²))."""
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def test_bound_is_the_family_wise_prediction_interval_of_one_new_draw():
    for m in (1, 2, 10):
        q = 1 - V.ALPHA / (2 * m)
        assert V.bound(3, m) == pytest.approx(t_quantile_df2(q) * math.sqrt(4 / 3), rel=1e-9)
        assert V.bound(2, m) == pytest.approx(math.tan(math.pi * (q - 0.5)) * math.sqrt(3 / 2), rel=1e-9)
    assert V.bound(3, 1) == pytest.approx(4.303 * math.sqrt(4 / 3), abs=1e-3)      # t₀.₉₇₅,₂ = 4.303
    with pytest.raises(ValueError, match="n ≥ 2"):
        V.bound(1, 3)


def test_a_rerun_from_the_same_distribution_reads_differs_at_most_alpha():
    """The property the bound is for: 3 committed seeds and one rerun, 10 independent normal metrics,
    all from one distribution. Bonferroni makes the cell's false-alarm rate 1 − (1 − α/10)¹⁰ = 4.89 %
    exactly (independent metrics); 40,000 simulated cells measure it to ± 0.11 % (one binomial sd),
    so ± 0.5 % fails a bound off by 10 %. The old rule (|rerun − committed| ≤ 3 sd) alarms in ~78 %."""
    rng = np.random.default_rng(0)
    cells, m, n = 40_000, 10, 3
    seeds, rerun = rng.standard_normal((cells, m, n)), rng.standard_normal((cells, m))
    z = (rerun - seeds.mean(axis=2)) / seeds.std(axis=2, ddof=1)
    rate = float((np.abs(z) > V.bound(n, m)).any(axis=1).mean())
    assert rate == pytest.approx(1 - (1 - V.ALPHA / m) ** m, abs=0.005)
    old = float((np.abs(rerun - seeds[:, :, 0]) > 3 * seeds.std(axis=2, ddof=1)).any(axis=1).mean())
    assert old > 0.7


def test_compare_reads_bitwise_noise_differs_and_one_seed(ci):
    cell = V.select(ci, ROWS, ["table2.a1_b5"], [0])[0]             # nll_test 30, 32, 31: mean 31, sd 1; au sd 0
    b = V.bound(3, 2)                                               # 7.165 sd: t₂(1 − 0.05/4) · √(4/3)
    assert b == pytest.approx(7.165, abs=1e-3)
    assert V.compare(cell, {"nll_test": 30.0, "au": 5})[1] == V.BITWISE
    # 1e-9 inside the edge: mean, sd and bound are each a few float64 operations on values ≤ 40,
    # rounding error ~1e-14 on any CPU, far below the margin
    table, verdict = V.compare(cell, {"nll_test": 31.0 + b - 1e-9, "au": 12})
    assert verdict == V.NOISE                       # a count whose seeds agree: its sd floored at one unit
    assert table[0]["z"] == pytest.approx(b) and table[0]["bound"] == pytest.approx(b)
    assert table[0]["difference"] == pytest.approx(1.0 + b) and table[1]["z"] == 7.0
    assert V.compare(cell, {"nll_test": 31.0, "au": 13})[1] == V.DIFFERS    # 8 units where seeds agree
    assert V.compare(cell, {"nll_test": 31.0 - b - 1e-6, "au": 5})[1] == V.DIFFERS
    single = V.select(ci, ROWS, ["table2.a0p2_b1"], [0])[0]         # one committed seed: no spread
    assert V.compare(single, {"nll_test": 31.0, "au": 4})[1] == V.BITWISE
    assert V.compare(single, {"nll_test": 31.5, "au": 4})[1] == V.ONE_SEED


def test_a_rerun_on_the_same_machine_is_bitwise(ci, tmp_path):
    """Train one ci cell, record it as the committed row, rerun it with verify: same CPU, torch and
    threads give the same float32 arithmetic in the same order, so every metric is equal."""
    process("digits", ci.data.__class__(root=str(tmp_path / "data")))
    cell = V.Cell(resolve(ci, "table2.a1_b5"), 0, {"threads": 1}, {})
    first = V.rerun(ci, cell, tmp_path / "a", data_root=str(tmp_path / "data"), progress=False)
    recorded = V.Cell(cell.run, 0, {**first, "threads": 1}, {})
    table, verdict = V.compare(recorded, V.rerun(ci, recorded, tmp_path / "b", data_root=str(tmp_path / "data"),
                                                 progress=False))
    assert verdict == V.BITWISE, table
    assert {"nll_test", "au", "mi", "md"} <= {r["metric"] for r in table}
