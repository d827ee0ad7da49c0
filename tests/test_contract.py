"""The contract between params.yaml and every stage (issue 11): each run's resolved config.json.

Each hole found in issue 11 has a test that reproduced it first; the end-to-end tests edit one key
of each section of params.yaml and check, with Snakemake and with DVC, that exactly the dependent
outputs are rebuilt and record the new value, and that an edit that changes nothing reruns nothing.
A reduced grid (three runs of Table 2 on digits) in a temporary copy keeps them small.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaeas import contract, experiments, pipeline
from vaeas.cli import main
from vaeas.experiments import load_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

TINY = {
    "profile": "t",
    "data": {"root": "data"},
    "model": {"hidden_units": 16, "encoder_layers": 1, "decoder_layers": 1, "classifier_layers": 1},
    "training": {"epochs": 1, "batch_size": 256, "device": "cpu"},
    "evaluation": {"iw_samples": 4, "mc_sizes": [1247, 100], "mc_repeats": 2},
    "experiments": {"seeds": [0], "table2": {"dataset": "digits", "runs": {
        "vae": {"objective": "vae"},
        "a1_b1": {"alpha": 1.0, "beta": 1.0},
        "a1_b5": {"alpha": 1.0, "beta": 5.0}}}},
    "profiles": {"t": {"description": "three runs of Table 2 on digits", "training": {"epochs": 2}},
                 "u": {"description": "another profile", "experiments": {"table2": {"runs": {"a1_b5": None}}}}},
}
RUNS = ("vae", "a1_b1", "a1_b5")


def sh(cmd: list[str], cwd: Path, ok: bool = True) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    if ok:
        assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def make_project(tmp: Path, name: str, params: dict = TINY) -> Path:
    proj = tmp / name
    proj.mkdir()
    shutil.copy(REPO / "Snakefile", proj)
    shutil.copytree(REPO / "workflow", proj / "workflow")
    shutil.copytree(REPO / "src" / "vaeas", proj / "src" / "vaeas", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(params, default_flow_style=False, sort_keys=False))
    return proj


def edit(proj: Path, dotted: str, value) -> None:
    raw = yaml.safe_load((proj / "params.yaml").read_text())
    node = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(raw, default_flow_style=False, sort_keys=False))


def snakemake_jobs(proj: Path) -> dict[str, int]:
    """Jobs a dry run of Snakemake would run, by rule (without 'all' and 'total')."""
    dry = sh([str(BIN / "snakemake"), "-n"], proj)
    if "Job stats:" not in dry:
        return {}
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.split("Job stats:")[1], flags=re.M))
    return {k: int(v) for k, v in jobs.items() if k not in ("all", "total")}


def dvc_ran(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", log)) - {"resolve"}


def metrics(proj: Path, run: str, profile: str = "t") -> dict:
    return json.loads((proj / f"runs/{profile}/table2/{run}/seed0/metrics.json").read_text())


# --------------------------------------------------------------------------------------------
# The holes of issue 11, each reproduced first

def _project_configs(tmp_path, params=TINY):
    proj = make_project(tmp_path, "p", params)
    cfg = load_config(proj / "params.yaml")
    return proj, cfg


def test_set_on_the_command_line_wins_over_a_runs_own_set(tmp_path, monkeypatch):
    """`vaeas train --run fig2.labels1000 --set training.epochs=2` trained the run's own 10 epochs."""
    params = json.loads(json.dumps(TINY))
    params["experiments"]["table2"]["runs"]["a1_b1"]["set"] = {"training.epochs": 3, "model.latent_dim": 4}
    proj, cfg = _project_configs(tmp_path, params)
    monkeypatch.chdir(proj)
    run = experiments.resolve(cfg, "table2.a1_b1")
    content = contract.resolved(cfg, run, 0, ["training.epochs=1"])
    assert content["train"]["training"]["epochs"] == 1          # the command line wins
    assert content["train"]["model"]["latent_dim"] == 4         # the run's other set: keys stay
    assert content["set"] == ["training.epochs=1"]              # and the run records what it used
    assert contract.resolved(cfg, run, 0)["train"]["training"]["epochs"] == 3


def test_evaluation_settings_come_from_the_run_config_not_the_model(tmp_path, monkeypatch, capsys):
    """Changing evaluation.iw_samples and re-evaluating still wrote the value frozen in model.pt."""
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    assert main(["resolve"]) == 0
    assert main(["process", "digits"]) == 0
    conf = "runs/t/table2/a1_b1/seed0/config.json"
    assert main(["train", "--config", conf, "--quiet"]) == 0
    model = "runs/t/table2/a1_b1/seed0/model.pt"
    assert main(["evaluate", "--config", conf, "--model", model, "--out", "m.json", "--quiet"]) == 0
    first = json.loads(Path("m.json").read_text())
    assert first["iw_samples"] == 4 and first["run_id"] == "table2.a1_b1.seed0"
    edit(proj, "evaluation.iw_samples", 2)
    assert main(["resolve"]) == 0
    assert main(["evaluate", "--model", model, "--out", "m.json", "--quiet"]) == 0     # config.json beside it
    assert json.loads(Path("m.json").read_text())["iw_samples"] == 2
    # a model trained with another configuration is refused, not evaluated under a wrong label
    edit(proj, "model.hidden_units", 8)
    assert main(["resolve"]) == 0
    assert main(["evaluate", "--model", model, "--out", "m.json", "--quiet"]) == 2
    assert (f"vaeas: error: {model} was not trained with the configuration of runs/t/table2/a1_b1/seed0/config.json "
            f"(model.hidden_units: 16 -> 8); rerun 'vaeas train --config") in capsys.readouterr().err


def test_config_json_is_rewritten_only_when_its_content_changes(tmp_path, monkeypatch):
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    assert len(contract.write_run_configs(cfg)) == 4                 # the profile's and 3 runs'
    assert contract.write_run_configs(cfg) == []
    edit(proj, "experiments.table2.runs.a1_b5.beta", 4.0)
    # the profile's file (its whole grid; process reads only its data section) and that run's
    assert contract.write_run_configs(load_config("params.yaml")) == ["runs/t/config.json", "runs/t/table2/a1_b5/seed0/config.json"]
    # keys that cannot change a run's outputs leave its groups alone
    edit(proj, "data.omniglot_source", "lake")
    edit(proj, "labels.seed", 3)
    cfg = load_config("params.yaml")
    vae = contract.resolved(cfg, experiments.resolve(cfg, "table2.vae"), 0)
    assert "labels" not in vae["train"] and "omniglot_source" not in vae["train"].get("data", {})
    assert "classifier_steps" not in vae["train"].get("training", {})
    assert vae["inert"]["labels"]["seed"] == 3 and vae["inert"]["data"]["omniglot_source"] == "lake"
    # eq. 10's constant changes nothing with one label per sample, and MD with shared labels
    full = contract.resolved(cfg, experiments.resolve(cfg, "table2.a1_b1"), 0)
    shared = contract.resolved(cfg, experiments.resolve(cfg, "table2.a1_b1"), 0,
                               ["labels.scheme=shared", "labels.classes=50"])
    assert "md_constant" not in full["train"].get("labels", {}) and full["inert"]["labels"] == {"md_constant": "n"}
    # (tracked, at its default "n": a key at its default sits under "defaults", vaeas.staleness)
    assert shared["defaults"]["labels"]["md_constant"] == "n" and "labels" not in shared["inert"]


def test_dvc_yaml_follows_the_profile_of_params_yaml(tmp_path, monkeypatch):
    """dvc.yaml had `--profile demo` baked in: with `profile: ci`, `dvc repro` ran demo's jobs."""
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    assert main(["dvc-yaml"]) == 0
    assert main(["resolve", "--dvc-yaml", "dvc.yaml"]) == 0
    edit(proj, "profile", "u")
    assert main(["resolve", "--dvc-yaml", "dvc.yaml"]) == 2           # the guard stage stops dvc repro
    text = Path("dvc.yaml").read_text()
    assert "--profile t" not in text.split("train:")[1].split("table2:")[0]   # per-run stages read config.json
    assert all(f"src/vaeas/{m}" in text for m in ("training", "evaluation.py", "report", "data"))


def test_new_keys_flow_into_the_contract_without_listing_them(tmp_path, monkeypatch):
    """A key added to a profile after dvc.yaml was generated was not tracked: now every key of a
    section lands in config.json, which the stages depend on by content."""
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    contract.write_run_configs(cfg)
    edit(proj, "profiles.t.evaluation", {"au_threshold": 0.02})
    written = contract.write_run_configs(load_config("params.yaml"))
    assert len(written) == 4
    assert contract.part(written[1], contract.EVALUATE_KEYS)["evaluate"]["evaluation"]["au_threshold"] == 0.02


# --------------------------------------------------------------------------------------------
# End to end: an edit of each section reruns exactly its dependent outputs, in both tools

#: (key, value, training jobs, evaluation jobs): what each edit must rebuild (of the 3 runs).
EDITS = [
    ("data.omniglot_source", "lake", set(), set()),                               # data: nothing on digits
    ("labels.seed", 7, {"a1_b1", "a1_b5"}, {"a1_b1", "a1_b5"}),                   # labels: not the VAE
    ("labels.md_constant", "n_eff", set(), set()),                                # inert with full labels
    ("evaluation.iw_samples", 2, set(), set(RUNS)),                               # evaluation: no training
    ("experiments.table2.runs.a1_b5.beta", 4.0, {"a1_b5"}, {"a1_b5"}),            # experiments: one run
    ("profiles.t.training.epochs", 1, set(RUNS), set(RUNS)),                      # training, via the profile
    ("training.epochs", 3, set(), set()),                                         # a base key the profile overrides
    ("profiles.t.model.hidden_units", 8, set(RUNS), set(RUNS)),                   # model
]


@pytest.mark.slow
def test_each_edit_reruns_exactly_its_dependents_with_snakemake_and_dvc(tmp_path):
    snake = make_project(tmp_path, "snake")
    dvcp = make_project(tmp_path, "dvc")
    sh([str(BIN / "vaeas"), "dvc-yaml"], dvcp)
    sh([str(BIN / "dvc"), "init", "--no-scm", "-q"], dvcp)
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
    assert dvc_ran(sh([str(BIN / "dvc"), "repro"], dvcp))
    assert snakemake_jobs(snake) == {}
    assert dvc_ran(sh([str(BIN / "dvc"), "repro"], dvcp)) == set()
    for key, value, trained, evaluated in EDITS:
        for proj in (snake, dvcp):
            edit(proj, key, value)
        jobs = snakemake_jobs(snake)
        assert jobs.get("train", 0) == len(trained) and jobs.get("evaluate", 0) == len(evaluated), (key, jobs)
        sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
        ran = dvc_ran(sh([str(BIN / "dvc"), "repro"], dvcp))
        assert {s.split("-")[1] for s in ran if s.startswith("train@")} == trained, (key, ran)
        assert {s.split("-")[1] for s in ran if s.startswith("evaluate@")} == evaluated, (key, ran)
        assert bool(ran) == bool(evaluated), (key, ran)       # no edit that changes nothing reruns a table
        if key != "training.epochs":          # the new value is what the run records
            for proj in (snake, dvcp):
                content = contract.read(proj / "runs/t/table2/a1_b1/seed0/config.json")
                section, name = key.split(".")[-2:]
                recorded = {k: v for group in ("train", "evaluate", "inert")      # a section may be split
                            for k, v in (content[group].get(section) or {}).items()}  # (labels.md_constant: inert)
                assert key.startswith("experiments") or recorded[name] == value, (key, recorded)
    assert metrics(snake, "a1_b1")["iw_samples"] == metrics(dvcp, "a1_b1")["iw_samples"] == 2
    assert metrics(dvcp, "a1_b5")["beta"] == 4.0
    # After each tool ran, the other has nothing left to do for the runs it built itself.
    assert snakemake_jobs(snake) == {}
    assert dvc_ran(sh([str(BIN / "dvc"), "repro"], dvcp)) == set()
    # Switching the profile: Snakemake builds the other profile; DVC stops before any job.
    for proj in (snake, dvcp):
        edit(proj, "profile", "u")
    out = sh([str(BIN / "dvc"), "repro"], dvcp, ok=False)
    assert "does not describe profile 'u'" in out and dvc_ran(out) == set()
    assert snakemake_jobs(snake)["train"] == 2


# --------------------------------------------------------------------------------------------
# Reruns follow content, not clocks; no finished model is thrown away

@pytest.mark.slow
def test_processed_data_rebuilt_touched_or_damaged_retrains_nothing(tmp_path):
    """Damaging data/processed/digits.npz made Snakemake start every training (which failed,
    deleting the finished models); deleting it (rebuilt byte for byte) rescheduled them all."""
    params = json.loads(json.dumps(TINY))
    params["profiles"]["t"]["training"]["epochs"] = 1
    snake = make_project(tmp_path, "snake", params)
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
    npz = snake / "data/processed/digits.npz"
    good = npz.read_bytes()
    stat = lambda p: (p.stat().st_ino, p.stat().st_mtime_ns)        # a retrained model is a new file
    models = {p: stat(p) for p in (snake / "runs").rglob("model.pt")}
    npz.write_bytes(good[:-100])                                   # damaged
    dry = sh([str(BIN / "snakemake"), "-n"], snake)
    assert "digits.npz does not match its recorded sha256; a real run will rebuild it byte for byte" in dry, dry
    assert snakemake_jobs(snake) == {"preflight": 1} and npz.read_bytes() == good[:-100]  # a preview writes nothing
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
    assert npz.read_bytes() == good                                # rebuilt before any job
    npz.unlink()                                                   # deleted
    dry = sh([str(BIN / "snakemake"), "-n"], snake)
    assert "digits.npz is missing; a real run rebuilds it byte for byte" in dry and not npz.exists(), dry
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)  # rebuilt while the Snakefile is read
    assert npz.read_bytes() == good
    os.utime(npz)                                                  # touched: same bytes
    assert snakemake_jobs(snake) == {}
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
    assert {p: stat(p) for p in (snake / "runs").rglob("model.pt")} == models   # nothing retrained
    dvcp = make_project(tmp_path, "dvc", params)
    sh([str(BIN / "vaeas"), "dvc-yaml"], dvcp)
    sh([str(BIN / "dvc"), "init", "--no-scm", "-q"], dvcp)
    sh([str(BIN / "dvc"), "repro"], dvcp)
    npz = dvcp / "data/processed/digits.npz"
    npz.write_bytes(good[:-100])
    out = sh([str(BIN / "dvc"), "repro"], dvcp)
    # detected by its hash and rebuilt (or checked out of DVC's run cache), and no training
    assert npz.read_bytes() == good and dvc_ran(out) <= {"process-digits"}, out


def test_a_finished_model_is_kept_and_restored_when_its_configuration_comes_back(tmp_path, monkeypatch):
    """Both tools delete a job's outputs before rerunning it; train keeps a second name for the
    finished model and restores it (with its log) when asked for the same configuration again."""
    params = json.loads(json.dumps(TINY))
    params["profiles"]["t"]["training"]["epochs"] = 1
    proj, cfg = _project_configs(tmp_path, params)
    monkeypatch.chdir(proj)
    assert main(["resolve"]) == 0 and main(["process", "digits"]) == 0
    conf = "runs/t/table2/vae/seed0/config.json"
    model, log = Path("runs/t/table2/vae/seed0/model.pt"), Path("runs/t/table2/vae/seed0/model.log.csv")
    assert main(["train", "--config", conf, "--quiet"]) == 0
    first, first_log = model.read_bytes(), log.read_text()
    model.unlink(), log.unlink()                                    # what a tool does before a rerun
    edit(proj, "profiles.t.training.epochs", 2)
    assert main(["resolve"]) == 0
    Path("data/processed/digits.npz").unlink()
    assert main(["train", "--config", conf, "--quiet"]) == 2       # the rerun fails
    assert main(["process", "digits"]) == 0
    edit(proj, "profiles.t.training.epochs", 1)
    assert main(["resolve"]) == 0
    assert main(["train", "--config", conf, "--quiet"]) == 0       # back: restored, not retrained
    assert model.read_bytes() == first and log.read_text() == first_log


def test_a_model_trained_outside_snakemake_with_another_configuration_is_trained_again(tmp_path, monkeypatch):
    """A model.pt trained by hand under another configuration was taken as finished by Snakemake
    (it records params only for outputs it made). Now it is set aside and trained again, whether
    it was trained with --run (its own stored configuration is compared) or with --config, as
    DVC does (its kept record is compared); a model trained with the run's configuration stays."""
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    assert main(["resolve"]) == 0 and main(["process", "digits"]) == 0
    model = {run: Path(f"runs/t/table2/{run}/seed0/model.pt") for run in RUNS}
    # vae: by hand with another epoch count; a1_b1: by hand with the profile's; a1_b5: as DVC does
    assert main(["train", "--run", "table2.vae", "--seed", "0", "--out", str(model["vae"]),
                 "--set", "training.epochs=1", "--quiet"]) == 0
    assert main(["train", "--run", "table2.a1_b1", "--seed", "0", "--out", str(model["a1_b1"]), "--quiet"]) == 0
    assert main(["train", "--config", "runs/t/table2/a1_b5/seed0/config.json", "--quiet"]) == 0
    trained = {run: path.read_bytes() for run, path in model.items()}

    # The preview names it and lists its job, and changes nothing (issue 21: it set models aside).
    dry = sh([str(BIN / "snakemake"), "-n"], proj)
    assert f"vaeas: {model['vae']} was trained with another configuration (training.epochs: 1 -> 2); " \
           f"a real run sets it aside as {model['vae']}.stale and trains it again" in dry, dry
    assert {run: path.read_bytes() for run, path in model.items()} == trained
    assert not Path(f"{model['vae']}.stale").exists()
    assert snakemake_jobs(proj)["train"] == 1                       # vae only
    # The real run sets it aside (nothing deleted) and trains it again; the others stay.
    out = sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], proj)
    assert f"vaeas: {model['vae']} was trained with another configuration (training.epochs: 1 -> 2): " \
           f"moved to {model['vae']}.stale; it will be trained again" in out, out
    assert Path(f"{model['vae']}.stale").read_bytes() == trained["vae"] != model["vae"].read_bytes()
    assert model["a1_b1"].read_bytes() == trained["a1_b1"] and model["a1_b5"].read_bytes() == trained["a1_b5"]

    edit(proj, "experiments.table2.runs.a1_b5.beta", 4.0)           # the DVC-made model is now stale
    dry = sh([str(BIN / "snakemake"), "-n"], proj)
    # named as config.json names it (the record's own nesting read 'train.run.beta' before)
    assert f"vaeas: {model['a1_b5']} was trained with another configuration (run.params.beta: 5.0 -> 4.0);" in dry, dry
    assert model["a1_b5"].read_bytes() == trained["a1_b5"] and model["a1_b1"].read_bytes() == trained["a1_b1"]
    assert snakemake_jobs(proj)["train"] == 1                       # a1_b5


@pytest.mark.parametrize("profile", sorted(yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]))
def test_no_profile_trains_one_configuration_twice(profile):
    """Everything that determines a model (data set, objective, α, β, seed and the train and
    evaluate groups of config.json), compared across the runs that get jobs: the demo and ci
    profiles trained Table 3 as an exact copy of Table 2 (both on digits) until Table 3 moved to
    omniglot-mini, and every profile trained Table 2's VAE again as Table 1's row at the base
    decoder depth (the paper's tables agree that they are one model: AU 8 in both)."""
    cfg = load_config(REPO / "params.yaml", profile=profile)
    first: dict[str, str] = {}
    repeated = set()
    for run in experiments.distinct(experiments.runs(cfg)):
        content = contract.resolved(cfg, run, experiments.seeds(cfg)[0])
        key = json.dumps([{k: v for k, v in content["run"].items() if k not in ("run_id", "experiment", "name")},
                          content["train"], content["evaluate"]], sort_keys=True)
        if key in first:
            repeated.add(frozenset({first[key], run.id}))
        first.setdefault(key, run.id)
    assert repeated == set()


def test_a_run_that_repeats_an_earlier_configuration_shares_its_files():
    cfg = load_config(REPO / "params.yaml", profile="demo")       # base decoder depth 2
    vae = experiments.resolve(cfg, "table2.vae")
    assert vae.same_as == "table1.dec2" and vae.model_path("demo", 0) == "runs/demo/table1/dec2/seed0/model.pt"
    assert vae not in experiments.distinct(experiments.runs(cfg))
    assert "runs/demo/table1/dec2/seed1/metrics.json" in pipeline.seeds_inputs(cfg, "table2")
    assert not [st for st in pipeline.stages(cfg) if "table2-vae" in st.name or "table2/vae/" in " ".join(st.outs)]
    # a set: key that only restates the profile's value changes nothing; any other value does
    paper = load_config(REPO / "params.yaml", profile="paper")   # base depth 5
    assert experiments.resolve(paper, "table2.vae").same_as == "table1.dec5"
    assert experiments.resolve(paper, "table1.dec4").same_as is None
