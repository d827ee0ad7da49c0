"""`vaeas verify` (vaeas.verify): which cells it reruns, how a rerun is judged, and that a rerun on
the same machine, torch and threads reproduces the committed numbers bitwise."""

from __future__ import annotations

import math

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
    {"run_id": "table2.a0p2_b1.seed0", "experiment": "table2", "run": "a0p2_b1", "seed": 0, "nll_test": 31.0, "au": 4},
    {"run_id": "baselines_mnist.a1_b5.seed0", "experiment": "baselines_mnist", "run": "a1_b5", "seed": 0,
     "trained_as": "table2.a1_b5.seed0", "nll_test": 30.0, "au": 5}])


def test_select_names_the_model_a_shared_run_reads_and_checks_names_first(ci):
    cells = V.select(ci, ROWS, ["baselines_mnist.a1_b5"], [0])
    assert [c.id for c in cells] == ["table2.a1_b5.seed0"]                  # Table B's row is Table 2's model
    assert cells[0].sd["nll_test"] == pytest.approx(math.sqrt(2)) and cells[0].sd["au"] == 0.0
    assert V.expected_seconds(cells) == 90.0
    with pytest.raises(VaeasError, match="cell table2.a0p2_b1.seed1 has no committed row"):
        V.select(ci, ROWS, ["table2.a0p2_b1"], [1])
    with pytest.raises(VaeasError, match="no run 'table2.nope'"):
        V.select(ci, ROWS, ["table2.nope"])
    sample = V.select(ci, ROWS, sample=2, sample_seed=3)
    assert len(sample) == 2 and [c.id for c in sample] == [c.id for c in V.select(ci, ROWS, sample=2, sample_seed=3)]
    assert all(not c.run.same_as for c in sample)


def test_compare_reads_bitwise_noise_and_differs(ci):
    cell = V.select(ci, ROWS, ["table2.a1_b5"], [0])[0]             # nll_test sd √2, au sd 0
    assert V.compare(cell, {"nll_test": 30.0, "au": 5})[1] == V.BITWISE
    # 1e-9 inside the 3-sd edge: the difference and the sd are each a few float64 operations on values
    # ≤ 35, rounding error ~1e-14 on any CPU, far below the margin
    table, verdict = V.compare(cell, {"nll_test": 30.0 + 3 * math.sqrt(2) - 1e-9, "au": 8})
    assert verdict == V.NOISE                       # 3 sd; a count whose seeds agree: 3 × its floor of one unit
    assert table[0]["in seed sds"] == pytest.approx(3.0)
    assert V.compare(cell, {"nll_test": 30.0, "au": 9})[1] == V.DIFFERS    # four units where seeds agree
    assert V.compare(cell, {"nll_test": 35.0, "au": 5})[1] == V.DIFFERS


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
