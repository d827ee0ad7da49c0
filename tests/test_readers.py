"""vaeas.readers: a damaged file one stage wrote for another is named in one line with its remedy,
before anything reads or writes (issue 21, item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vaeas import readers
from vaeas.errors import VaeasError

REPO = Path(__file__).resolve().parents[1]
METRICS = {"nll_test": 90.5, "kl_test": 20.1, "au": 12, "run_id": "table2.a1_b1.seed0"}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("text, what", [
    ('{"nll_test": 4', "not valid JSON (Expecting ',' delimiter at line 1 column 15)"),
    ("", "not valid JSON (Expecting value at line 1 column 1)"),
    ("[1, 2]", "holds a JSON list, not an object of metrics"),
    ('{"nll_test": 4, "kl_test": 1}', "has no key 'au'"),
    ('{"nll_test": 4, "kl_test": 1, "au": "12"}', "key 'au' is '12', not a number"),
    ('{"nll_test": 4, "kl_test": true, "au": 1}', "key 'kl_test' is True, not a number"),
])
def test_a_damaged_metrics_file_is_named_with_what_is_wrong_and_the_remedy(tmp_path, text, what):
    path = write(tmp_path / "runs/ci/table2/a1_b1/seed0/metrics.json", text)
    assert readers.problem(path) == f"{path}: {what}; {readers.REMEDY['metrics.json'].format(path=path)}"


def test_a_sound_metrics_file_passes_also_with_nan_and_keys_a_later_version_added(tmp_path):
    path = write(tmp_path / "metrics.json", json.dumps({**METRICS, "nll_test": float("nan"), "new_key": [1]}))
    assert readers.problem(path) is None


@pytest.mark.parametrize("name, text, what", [
    ("model.log.csv", "", "is empty (no header)"),
    ("model.log.csv", "epoch,loss\n1,2.0\n", "has no column 'seconds'"),
    ("model.log.csv", "epoch,loss,seconds\n", "has a header but no rows"),
    ("model.log.csv", "epoch,loss,seconds\n1,2.0,x\n", "column 'seconds' holds 'x', not a number"),
    ("mc.csv", "size,repeat,mi\n10,0,1.0\n", "has no column 'md'"),
    ("mc.csv", 'size,repeat,mi,md\n10,0,"1.0\n', "is not a readable CSV (Error tokenizing data. C error: EOF inside string starting at row 1)"),
])
def test_a_damaged_csv_of_a_run_is_named(tmp_path, name, text, what):
    path = write(tmp_path / "runs/ci/fig2/labels10/seed0" / name, text)
    assert readers.problem(path) == f"{path}: {what}; {readers.REMEDY[name].format(path=path)}"


def test_results_files_are_checked_by_kind_with_the_rebuild_remedy(tmp_path):
    res = tmp_path / "results/ci"

    def rebuild(path):
        return f"rebuild it: snakemake --forcerun {path}, or dvc repro"
    seeds = write(res / "seeds/table2.csv", "run_id,experiment,run\nx,table2,a1_b1\n")
    assert readers.problem(seeds) == f"{seeds}: has no column 'seed'; {rebuild(seeds)}"
    table = write(res / "tables/table2.json", '{"a1_b1": ')
    assert readers.problem(table) == f"{table}: not valid JSON (Expecting value at line 1 column 11); {rebuild(table)}"
    md = write(res / "claims.md", b"# Claims \xff\n")
    assert readers.problem(md) == f"{md}: is not UTF-8 text (byte 9); {rebuild(md)}"
    png = write(res / "figures/fig2.png", b"GIF89a")
    assert readers.problem(png) == f"{png}: is not a PNG image; {rebuild(png)}"
    # a table's CSV needs no particular column (each table has its own), only to parse
    assert readers.problem(write(res / "tables/table2.csv", "Run,AU\na1_b1,5\n")) is None
    assert readers.problem(res / "nothing.json") is None         # missing: the DAG's business


def test_require_names_the_first_missing_then_the_first_damaged_with_a_count(tmp_path):
    good = write(tmp_path / "a/metrics.json", json.dumps(METRICS))
    bad = [write(tmp_path / f"{d}/metrics.json", "{") for d in "bcd"]
    with pytest.raises(VaeasError, match=r"^missing input .*/e/metrics.json \(1 missing\); run the pipeline"):
        readers.require([good, tmp_path / "e/metrics.json"])
    with pytest.raises(VaeasError) as err:
        readers.require([good, *bad])
    assert str(err.value) == f"{readers.problem(bad[0])} (2 more damaged inputs after it)"
    readers.require([good])


def test_models_and_data_files_are_left_to_their_own_loaders(tmp_path):
    """A figure's inputs include models (Figures 4-5): never read here (a paper-size model is
    100 MB), refused where they are loaded (tests/test_reliability_files.py)."""
    assert readers.problem(write(tmp_path / "model.pt", b"not a model")) is None
    assert readers.problem(write(tmp_path / "digits.npz", b"not a zip")) is None


def test_the_cli_refuses_a_damaged_seeds_file_in_one_line_and_keeps_the_table(tmp_path):
    """`vaeas table` (what dvc repro runs) reads the per-seed CSV: a damaged one is named, and the
    finished table files stay as they were."""
    res = tmp_path / "results/ci"
    seeds = write(res / "seeds/table2.csv", "run_id,experiment\n")
    table = write(res / "tables/table2.md", "| finished |\n")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    out = subprocess.run([str(Path(sys.executable).parent / "vaeas"), "table", "2", "--profile", "ci"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert out.stderr == ("vaeas: error: results/ci/seeds/table2.csv: has no column 'run'; rebuild it: "
                          "snakemake --forcerun results/ci/seeds/table2.csv, or dvc repro\n")
    assert table.read_text() == "| finished |\n" and seeds.read_text() == "run_id,experiment\n"
