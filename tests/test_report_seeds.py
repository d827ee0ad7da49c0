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


def _log(path, rows, size=1000):
    """A model.log.csv with the monitor's columns on the given (epoch, softmax MI, Monte Carlo MI)
    and empty cells on the other epochs, as the training loop writes it."""
    lines = ["epoch,loss,seconds,mon_mi,mon_mi_mc,mon_size"]
    monitored = {e: (mi, mc) for e, mi, mc in rows}
    for epoch in range(1, max(monitored) + 1):
        mi, mc = monitored.get(epoch, ("", ""))
        lines.append(f"{epoch},1.0,1.0,{mi},{mc},{size if epoch in monitored else ''}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(("readings", "expected"), [
    # near 0 at first (gap small), apart while the encoder spreads, caught up from epoch 30 on
    ([(10, 0.1, 0.2), (20, 5.0, 6.5), (30, 6.7, 6.9), (40, 6.8, 6.9)], 30.0),
    # within the tolerance at 30, out again at 40: only the stretch that lasts to the end counts
    ([(10, 0.1, 0.2), (20, 5.0, 6.5), (30, 6.7, 6.9), (40, 6.5, 6.9), (50, 6.7, 6.9)], 50.0),
    ([(10, 0.1, 0.2), (20, 6.65, 6.9)], 10.0),                     # always within: the first monitored epoch
    ([(10, 0.1, 0.2), (20, 6.0, 6.9)], math.inf),                 # apart at the last epoch: not caught up
    ([(10, 6.59, 6.9)], math.inf),                                # 0.31 > 0.3
])
def test_caught_up_epoch_is_the_first_from_which_the_gap_stays_within_the_tolerance(tmp_path, readings, expected):
    from vaeas.report.seeds import caught_up_epoch, read_log

    assert caught_up_epoch(read_log(_log(tmp_path / "m.log.csv", readings)), 1000) == expected


def test_caught_up_epoch_is_undefined_without_a_reading_over_all_n(tmp_path):
    from vaeas.report.seeds import caught_up_epoch, read_log

    readings = [(10, 6.8, 6.9)]
    assert math.isnan(caught_up_epoch(read_log(_log(tmp_path / "a.csv", readings, size=300)), 1000))    # a subset: capped at log S
    (tmp_path / "b.csv").write_text("epoch,loss,seconds\n1,5.0,1.25\n")                        # no monitor
    assert math.isnan(caught_up_epoch(read_log(str(tmp_path / "b.csv")), 1000))
    (tmp_path / "c.csv").write_text("epoch,loss,seconds,mon_mi,mon_mi_mc,mon_size\n1,5.0,1.0,,6.9,1000\n")   # no classifier
    assert math.isnan(caught_up_epoch(read_log(str(tmp_path / "c.csv")), 1000))
    assert math.isnan(caught_up_epoch(read_log(str(tmp_path / "missing.csv")), 1000))


def test_a_monitored_run_gets_its_pace_in_its_row_and_an_unmonitored_one_none(project, tmp_path):
    d = tmp_path / "runs/t/table2/a1_b0p5/seed0"
    metrics = json.loads((d / "metrics.json").read_text())
    (d / "metrics.json").write_text(json.dumps({**metrics, "n_train": 1000}))
    _log(d / "model.log.csv", [(10, 0.1, 0.2), (20, 5.0, 6.5), (30, 6.7, 6.9)])
    drivers.make_seeds(project, "table2")
    frame = pd.read_csv("results/t/seeds/table2.csv").set_index("run_id")
    assert frame.at["table2.a1_b0p5.seed0", "caught_up_epoch"] == 30
    assert frame["caught_up_epoch"].isna().sum() == 3
