"""results/<profile>/seeds/<experiment>.csv: one row per run and seed, every metric, its
provenance, and the table computed from it equals the table computed from the metrics files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from vaeas import finished
from vaeas.errors import VaeasError
from vaeas.experiments import load_config, resolve
from vaeas.report import drivers
from vaeas.report.tables import build_table

PARAMS = {
    "profile": "t", "data": {"root": "data"},
    "experiments": {"seeds": [0, 1],
                    "table1": {"dataset": "digits", "runs": {"dec5": {"objective": "vae"}}},
                    "table2": {"dataset": "digits", "runs": {"vae": {"objective": "vae"}, "a1_b0p5": {"beta": 0.5}}}},
    "profiles": {"t": {}},
}


def _metrics(run_id: str, objective: str, seed: int, nll: float, **extra) -> dict:
    row = {"run_id": run_id, "dataset": "digits", "objective": objective, "seed": seed, "nll_test": nll,
           "kl_test": 1.0, "au": 3, "nll_train": 2.0, "kl_train": 1.5, "decoder_layers": 5,
           "log_n": math.log(1247), "label_count": 1247, "seconds": 4.5, **extra}
    if objective == "vaeas":
        row.update(mi=1.0, md=0.5, sc=6.0)
    return row


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    cfg = load_config("params.yaml")
    files = {("table1", "dec5"): "vae", ("table2", "a1_b0p5"): "vaeas"}
    for (exp, name), objective in files.items():
        for seed in (0, 1):
            d = tmp_path / f"runs/t/{exp}/{name}/seed{seed}"
            d.mkdir(parents=True)
            extra = {"alpha": 1.0, "beta": 0.5} if objective == "vaeas" else {}
            (d / "metrics.json").write_text(json.dumps(_metrics(f"{exp}.{name}.seed{seed}", objective, seed, 90.0 + seed, **extra)))
            (d / "model.log.csv").write_text("epoch,loss,seconds\n1,5.0,1.25\n2,4.0,1.5\n")
    rec = tmp_path / "runs/t/table2/a1_b0p5/seed0/model.pt.kept.json"
    rec.write_text(json.dumps({"code": "abc123", "train": {}, "trained_on": {"cpu": "Test CPU", "torch": "2.14.1", "threads": 2}}))
    return cfg


def test_one_row_per_run_and_seed_with_its_metrics_and_provenance(project):
    drivers.make_seeds(project, "table2")
    frame = pd.read_csv("results/t/seeds/table2.csv", dtype={"trained_as": str})
    frame["trained_as"] = frame.trained_as.fillna("")
    assert frame.run_id.tolist() == ["table2.vae.seed0", "table2.vae.seed1", "table2.a1_b0p5.seed0", "table2.a1_b0p5.seed1"]
    assert frame.columns[:7].tolist() == ["run_id", "experiment", "run", "seed", "trained_as", "dataset", "objective"]
    assert frame.trained_as.tolist() == ["table1.dec5.seed0", "table1.dec5.seed1", "", ""]    # the model it shares
    first = frame[frame.run_id == "table2.a1_b0p5.seed0"].iloc[0]
    assert (first.alpha, first.beta, first.nll_test) == (1.0, 0.5, 90.0)
    assert (first.train_code, first.cpu, first.torch, first.threads) == ("abc123", "Test CPU", "2.14.1", 2)
    assert (first.train_seconds, first.eval_seconds) == (2.75, 4.5)
    other = frame[frame.run_id == "table2.a1_b0p5.seed1"].iloc[0]
    assert pd.isna(other.cpu) and pd.isna(other.train_code)           # no kept record: blank, not guessed


def test_the_table_is_computed_from_the_seeds_file_and_equals_the_metrics_files_table(project):
    drivers.make_seeds(project, "table2")
    drivers.make_table(project, 2)
    from_seeds = pd.read_csv("results/t/tables/table2.csv")
    rows = []
    for run in ("vae", "a1_b0p5"):
        for seed in (0, 1):
            path = resolve(project, f"table2.{run}").path("t", seed, "metrics.json")
            rows.append({**json.loads(open(path).read()), "run": run})
    direct = build_table(2, rows)
    direct.to_csv("direct.csv", index=False)
    pd.testing.assert_frame_equal(from_seeds, pd.read_csv("direct.csv"))


def test_an_experiment_without_runs_is_refused_naming_it(project):
    with pytest.raises(VaeasError, match=r"^no runs of experiment 'table3' in profile 't' \(experiments with runs: table1, table2\)$"):
        drivers.make_seeds(project, "table3")


def test_keep_records_the_machine_a_model_was_trained_on(tmp_path):
    model, config = tmp_path / "model.pt", tmp_path / "config.json"
    model.write_bytes(b"weights")
    config.write_text(json.dumps({"format": "vaeas-run-config-v2", "run": {}, "train": {}}))
    finished.keep(config, model)
    machine = finished.kept_record(model)["trained_on"]
    assert set(machine) == {"cpu", "torch", "threads"} and machine["threads"] >= 1


def test_carry_over_keeps_a_row_whose_model_is_gone_only_if_its_configuration_is_unchanged(project, tmp_path):
    """`vaeas seeds --carry-over`: a run whose metrics.json is absent keeps its committed row when
    that row's config_digest is the digest of the run's configuration now; a changed configuration
    or a missing row is refused naming the run, and the file is left as it was."""
    from vaeas import contract

    contract.write_run_configs(project)
    drivers.make_seeds(project, "table2")
    before = open("results/t/seeds/table2.csv").read()
    assert pd.read_csv("results/t/seeds/table2.csv").config_digest.notna().all()
    (tmp_path / "runs/t/table2/a1_b0p5/seed1/metrics.json").unlink()
    with pytest.raises(VaeasError, match="a1_b0p5/seed1/metrics.json"):
        drivers.make_seeds(project, "table2")                              # without the flag: refused
    drivers.make_seeds(project, "table2", carry_over=True)
    assert open("results/t/seeds/table2.csv").read() == before           # the same rows, byte for byte

    params = yaml.safe_load(open("params.yaml"))
    params["experiments"]["table2"]["runs"]["a1_b0p5"]["beta"] = 0.25
    open("params.yaml", "w").write(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(VaeasError, match=r"row 'table2\.a1_b0p5\.seed1' was made with another configuration"):
        drivers.make_seeds(load_config("params.yaml"), "table2", carry_over=True)
    assert open("results/t/seeds/table2.csv").read() == before

    frame = pd.read_csv("results/t/seeds/table2.csv")
    frame[frame.run_id != "table2.a1_b0p5.seed1"].to_csv("results/t/seeds/table2.csv", index=False)
    with pytest.raises(VaeasError, match=r"has no row 'table2\.a1_b0p5\.seed1' to carry over"):
        drivers.make_seeds(project, "table2", carry_over=True)


def test_allow_missing_leaves_out_and_names_a_run_that_has_neither(project, tmp_path, capsys):
    from vaeas import contract

    contract.write_run_configs(project)
    (tmp_path / "runs/t/table2/a1_b0p5/seed1/metrics.json").unlink()
    with pytest.raises(VaeasError, match="--allow-missing needs --carry-over"):
        drivers.make_seeds(project, "table2", allow_missing=True)
    drivers.make_seeds(project, "table2", carry_over=True, allow_missing=True)      # no earlier file at all
    frame = pd.read_csv("results/t/seeds/table2.csv")
    assert frame.run_id.tolist() == ["table2.vae.seed0", "table2.vae.seed1", "table2.a1_b0p5.seed0"]
    assert capsys.readouterr().out.strip() == "vaeas seeds: 1 of 4 left out (no metrics.json, no row to carry over): table2.a1_b0p5.seed1"
