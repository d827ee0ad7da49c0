"""Reliability (issue 6): interrupted and concurrent runs never lose work or change a number.

* ``vaeas train`` SIGKILLed at random points (before and after its checkpoints) resumes from the
  last checkpoint and ends bitwise equal, on CPU, to an uninterrupted run;
* the same for ``snakemake`` (recovery: ``snakemake --unlock`` then ``--rerun-incomplete``) and
  ``dvc repro`` (recovery: run it again), killed with their whole process group mid-run;
* ``snakemake --cores 4`` runs four trainings at once and leaves exactly the outputs of a
  ``--cores 1`` run; no two jobs of any profile write one path.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from vaeas import data, experiments, pipeline
from vaeas.config import DataConfig
from vaeas.experiments import load_config
from vaeas.training import RunSpec, train

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

# Four trainings (2 runs x 2 seeds) of a few seconds each on the embedded digits.
PROJECT = {
    "profile": "r",
    "data": {"root": "data"},
    "model": {"latent_dim": 4, "hidden_units": 16, "encoder_layers": 1, "decoder_layers": 1, "classifier_layers": 1},
    "training": {"epochs": 30, "batch_size": 64, "device": "cpu", "threads": 1},
    "evaluation": {"iw_samples": 4, "mc_sizes": [1247, 100], "mc_repeats": 2},
    "experiments": {"seeds": [0, 1], "table2": {"dataset": "digits", "runs": {
        "vae": {"objective": "vae"},
        "a1_b1": {"alpha": 1.0, "beta": 1.0}}}},
    "profiles": {"r": {"description": "reliability: four trainings of Table 2 on digits"}},
}
TARGET = "results/r/tables/table2.csv"   # needs every training and evaluation, no figures


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def same_numbers(a, b) -> bool:
    """Equality where NaN equals NaN (the VAE's MI/MD columns are NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def read_log(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def assert_same_model(path_a: Path, path_b: Path) -> None:
    a = torch.load(path_a, map_location="cpu", weights_only=False)
    b = torch.load(path_b, map_location="cpu", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), f"{path_a}: {name} differs"
    assert same_numbers(strip_seconds(a["history"]), strip_seconds(b["history"])), path_a


def leftovers(root: Path) -> list[str]:
    """Temporary or checkpoint files left under runs/ and data/ (none after a completed run)."""
    return sorted(str(p.relative_to(root)) for d in ("runs", "data", "results") if (root / d).exists()
                  for p in (root / d).rglob("*") if p.name.endswith((".tmp", ".ckpt")))


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and every process it started (a crash, not a polite stop)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def sh(cmd: list[str], cwd: Path) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


# --------------------------------------------------------------------------------------------
# vaeas train

TRAIN_PARAMS = {"model": PROJECT["model"], "training": {**PROJECT["training"], "epochs": 40}}
SPEC = RunSpec("digits", "vaeas", {"alpha": 0.5, "beta": 2.0}, seed=3)


@pytest.mark.slow
def test_train_killed_at_random_points_resumes_bitwise_equal(tmp_path):
    root = tmp_path / "data"
    data.process("digits", DataConfig(root=str(root)))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"root": str(root)}, **TRAIN_PARAMS}))
    cfg = load_config(params)
    threads = torch.get_num_threads()
    try:
        reference = train(cfg, SPEC, tmp_path / "ref" / "model.pt", progress=False)
    finally:
        torch.set_num_threads(threads)

    out = tmp_path / "run" / "model.pt"
    ckpt = out.with_name("model.pt.ckpt")
    cmd = [str(BIN / "vaeas"), "train", "--params", str(params), "--dataset", "digits", "--objective", "vaeas",
           "--param", "alpha=0.5", "--param", "beta=2", "--seed", "3", "--out", str(out), "--quiet"]
    rng = random.Random(6)
    kills = []   # the checkpoint's epoch (0: none yet) at each kill
    last_ckpt_history, seen_mtime = None, None
    for attempt in range(8):
        proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt == 0:      # the first kill lands at start-up, before any checkpoint
            time.sleep(rng.uniform(0.05, 0.3))
        elif attempt <= 3:    # then three kills at a random time once this run wrote a checkpoint
            while proc.poll() is None and (not ckpt.exists() or ckpt.stat().st_mtime_ns == seen_mtime):
                time.sleep(0.005)
            if ckpt.exists():  # aim before the end: within 70% of the estimated time left
                state = torch.load(ckpt, map_location="cpu", weights_only=False)
                per_epoch = sum(r["seconds"] for r in state["history"]) / len(state["history"])
                time.sleep(rng.uniform(0.0, 0.7 * per_epoch * (40 - state["epoch"])))
        else:                 # and the last run is left to finish
            proc.wait(timeout=300)
        if proc.poll() is not None:
            break
        kill_group(proc)
        if ckpt.exists():
            seen_mtime = ckpt.stat().st_mtime_ns
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            kills.append(state["epoch"])
            last_ckpt_history = state["history"]
        else:
            kills.append(0)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert kills[0] == 0 and any(0 < e < 40 for e in kills), kills

    assert_same_model(out, reference)
    assert read_log(out.with_name("model.log.csv")) == read_log(reference.with_name("model.log.csv"))
    assert not ckpt.exists()
    # Resumed, not restarted: the epochs before the last kill keep the times measured before it.
    final = torch.load(out, map_location="cpu", weights_only=False)["history"]
    if last_ckpt_history:
        assert final[:len(last_ckpt_history)] == last_ckpt_history


# --------------------------------------------------------------------------------------------
# snakemake and dvc repro on a tiny project

def make_project(tmp: Path, name: str) -> Path:
    proj = tmp / name
    proj.mkdir()
    shutil.copy(REPO / "Snakefile", proj)
    shutil.copytree(REPO / "workflow", proj / "workflow")
    # DVC stages depend on the package code they run.
    shutil.copytree(REPO / "src" / "vaeas", proj / "src" / "vaeas", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(PROJECT, sort_keys=False))
    return proj


def outputs(cfg_root: Path) -> dict[str, Path]:
    cfg = load_config(cfg_root / "params.yaml")
    files = {}
    for run in experiments.runs(cfg):
        for seed in experiments.seeds(cfg):
            files[run.model_path(cfg.profile, seed)] = cfg_root / run.model_path(cfg.profile, seed)
            files[pipeline.log_path(run, cfg, seed)] = cfg_root / pipeline.log_path(run, cfg, seed)
            files[pipeline.metrics_path(run, cfg, seed)] = cfg_root / pipeline.metrics_path(run, cfg, seed)
    files[TARGET] = cfg_root / TARGET
    return files


def assert_same_outputs(proj: Path, ref: Path, trainings_only: bool = False) -> None:
    for name, path in outputs(ref).items():
        if trainings_only and not name.endswith((".pt", ".log.csv")):
            continue
        ours = proj / name
        assert ours.is_file(), f"{name} missing"
        if name.endswith(".pt"):
            assert_same_model(ours, path)
        elif name.endswith(".log.csv"):
            assert read_log(ours) == read_log(path), name
        elif name.endswith(".json"):
            a, b = (json.loads(p.read_text()) for p in (ours, path))
            assert same_numbers({k: v for k, v in a.items() if k != "seconds"},
                                {k: v for k, v in b.items() if k != "seconds"}), name
        else:
            assert ours.read_bytes() == path.read_bytes(), name
    # A kill during a write can leave a hidden temporary file (never the output itself): allowed.
    assert all(p.endswith(".tmp") for p in leftovers(proj)), leftovers(proj)


def snakemake(proj: Path, *args: str) -> str:
    return sh([str(BIN / "snakemake"), *args], proj)


def max_concurrent_trainings(log: str) -> int:
    """Most train jobs running at once, from Snakemake's job start / finish lines."""
    running, most, rule = set(), 0, None
    for line in log.splitlines():
        if re.match(r"^(local)?rule \w+:", line):
            rule = line.split()[-1].rstrip(":")
        elif (m := re.match(r"^\s+jobid: (\d+)", line)) and rule == "train":
            running.add(m.group(1))
            most = max(most, len(running))
        elif m := re.match(r"^Finished jobid: (\d+)", line):
            running.discard(m.group(1))
    return most


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory) -> Path:
    """The tiny project built by `snakemake --cores 1`: the outputs every other run must equal."""
    proj = make_project(tmp_path_factory.mktemp("serial"), "ref")
    snakemake(proj, "--cores", "1", TARGET)
    assert leftovers(proj) == []
    return proj


def checkpoints(proj: Path) -> list[Path]:
    return list((proj / "runs").glob("**/model.pt.ckpt")) if (proj / "runs").exists() else []


def wait_for_a_checkpoint(proj: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not checkpoints(proj):
        assert proc.poll() is None, "the run ended before any checkpoint was written"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


@pytest.mark.slow
def test_snakemake_runs_four_trainings_at_once_with_the_outputs_of_a_serial_run(serial_reference, tmp_path):
    proj = make_project(tmp_path, "parallel")
    log = snakemake(proj, "--cores", "4", TARGET)
    assert max_concurrent_trainings(log) == 4, log
    assert_same_outputs(proj, serial_reference)
    assert leftovers(proj) == []


@pytest.mark.slow
def test_snakemake_killed_mid_run_then_rerun_incomplete_gives_the_same_outputs(serial_reference, tmp_path):
    proj = make_project(tmp_path, "killed")
    proc = subprocess.Popen([str(BIN / "snakemake"), "--cores", "2", TARGET], cwd=proj, env=ENV,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_a_checkpoint(proj, proc)
    time.sleep(random.Random(7).uniform(0.0, 0.2))
    kill_group(proc)
    interrupted = checkpoints(proj)
    assert interrupted, "the kill missed every training"
    # The documented recovery after a crash: release Snakemake's lock, rerun what was incomplete.
    snakemake(proj, "--unlock")
    snakemake(proj, "--cores", "2", "--rerun-incomplete", TARGET)
    assert_same_outputs(proj, serial_reference)
    assert not [p for p in interrupted if p.exists()]


@pytest.mark.slow
def test_dvc_repro_killed_mid_run_then_rerun_gives_the_same_outputs(serial_reference, tmp_path):
    proj = make_project(tmp_path, "dvc")
    sh([str(BIN / "vaeas"), "dvc-yaml"], proj)
    sh([str(BIN / "dvc"), "init", "--no-scm", "-q"], proj)
    # The four training stages (and the processing they need): DVC runs one stage at a time,
    # so the evaluations would only add time, not interruptions.
    stages = [f"train@table2-{run}-s{seed}" for run in ("vae", "a1_b1") for seed in (0, 1)]
    proc = subprocess.Popen([str(BIN / "dvc"), "repro", *stages], cwd=proj, env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_a_checkpoint(proj, proc)
    time.sleep(random.Random(8).uniform(0.0, 0.2))
    kill_group(proc)
    assert checkpoints(proj), "the kill missed every training"
    sh([str(BIN / "dvc"), "repro", *stages], proj)
    assert_same_outputs(proj, serial_reference, trainings_only=True)
    status = sh([str(BIN / "dvc"), "status", *stages], proj)
    assert "changed" not in status and "modified" not in status, status


# --------------------------------------------------------------------------------------------
# No two jobs write one path

@pytest.mark.parametrize("profile", sorted(yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]))
def test_no_two_jobs_write_one_path(profile):
    """Every output (and every train job's checkpoint beside its model) belongs to one job."""
    cfg = load_config(REPO / "params.yaml", profile=profile)
    owner: dict[str, str] = {}
    for stage in pipeline.stages(cfg, pipeline.load_raw(REPO / "params.yaml")):
        written = list(stage.outs)
        if stage.name.startswith("train@"):
            written += [f"{o}.ckpt" for o in stage.outs if o.endswith(".pt")]
        for path in written:
            assert path not in owner, f"{path} is written by {owner[path]} and {stage.name}"
            owner[path] = stage.name


WRITER = """
import sys
from vaeas.io import write_text
version = 0
while True:
    version += 1
    write_text(sys.argv[1], f"{version}\\n" * 1_000_000)
"""


def test_a_write_killed_midway_never_leaves_a_partial_file(tmp_path):
    """io.atomic_path: a reader (the next job) sees the old complete file or the new complete
    one, never a prefix, however the writer dies."""
    target = tmp_path / "out.txt"
    rng = random.Random(9)
    checked = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env=ENV, start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.2))
        kill_group(proc)
        if target.exists():      # absent only if the very first write had not finished
            lines = target.read_text().splitlines()
            assert len(lines) == 1_000_000 and len(set(lines)) == 1, "a partial file is visible"
            checked += 1
    assert checked >= 2


# --------------------------------------------------------------------------------------------
# A preview changes nothing (issue 21): the ci profile, a real Snakemake

def ci_project(tmp: Path) -> Path:
    proj = tmp / "ci"
    proj.mkdir()
    for name in ("Snakefile", "params.yaml"):
        shutil.copy(REPO / name, proj)
    for name in ("workflow", "profiles"):
        shutil.copytree(REPO / name, proj / name)
    shutil.copytree(REPO / "src" / "vaeas", proj / "src" / "vaeas", ignore=shutil.ignore_patterns("__pycache__"))
    return proj


def tree_hash(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its bytes' sha256 (directories too), but Snakemake's own
    bookkeeping (.snakemake/), which is not the project's."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if ".snakemake" not in p.relative_to(root).parts}


def edit_ci_epochs(proj: Path, value: int) -> None:
    raw = yaml.safe_load((proj / "params.yaml").read_text())
    raw["profiles"]["ci"]["training"]["epochs"] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.mark.slow
def test_a_dry_run_changes_no_file_in_any_state_and_a_second_run_during_a_run_changes_nothing(tmp_path):
    """`snakemake -n` set 11 finished models aside after a previewed edit, rewrote config.json
    files, and started during a running grid made its job fail ('Missing files after 5 seconds')."""
    proj = ci_project(tmp_path)
    ci = ["--config", "profile=ci"]

    def dry() -> str:
        before = tree_hash(proj)
        out = snakemake(proj, "-n", "--cores", "2", *ci)
        assert tree_hash(proj) == before, out
        return out

    assert "Job stats:" in dry()                                     # a fresh tree: the whole plan
    # a second snakemake started during a run: refused the lock, and neither it nor a preview
    # changes what the first one writes; the first one finishes
    first = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", *ci], cwd=proj, env=ENV,
                             start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not list((proj / "runs").rglob("model.pt")) if (proj / "runs").exists() else True:
        assert first.poll() is None and time.monotonic() < deadline, "the run ended before its first model"
        time.sleep(0.05)
    second = subprocess.run([str(BIN / "snakemake"), "--cores", "1", *ci], cwd=proj, env=ENV,
                            capture_output=True, text=True, timeout=300)
    said = second.stdout + second.stderr      # refused before any job and before onstart: by the lock,
    assert second.returncode != 0 and ("cannot be locked" in said or "Incomplete files" in said), said  # or the running job's files
    # a preview during the run: it plans, or (when it reads the tree between a job's rename of its
    # output and Snakemake's record of that job) stops on the running job's incomplete-file marker
    preview = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "2", *ci], cwd=proj, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert preview.returncode == 0 or "IncompleteFilesException" in preview.stdout + preview.stderr, preview.stdout[-3000:]
    log, _ = first.communicate(timeout=1200)
    assert first.returncode == 0, log[-3000:]
    assert not list((proj / "runs").rglob("*.stale"))
    assert "Nothing to be done" in dry()                             # finished
    # a previewed edit, then reverted: every model stays where it is
    edit_ci_epochs(proj, 3)
    # the models the edit concerns: every trained run but those that set their own epochs
    cfg = load_config(proj / "params.yaml", profile="ci")
    concerned = sum(1 for run in experiments.distinct(experiments.runs(cfg))
                    if experiments.config_for(cfg, run).training.epochs == 3) * len(experiments.seeds(cfg))
    assert concerned >= 11                                           # the ci grid: 14 when written
    out = dry()
    assert out.count("a real run sets it aside") == concerned and re.search(rf"^train\s+{concerned}$", out, re.M), out
    edit_ci_epochs(proj, 2)
    assert "Nothing to be done" in dry()
    # a model trained by hand with another configuration, a damaged and a missing processed
    # file, a missing config.json: each named, none touched
    model = proj / "runs/ci/table2/a1_b1/seed0/model.pt"
    sh([str(BIN / "vaeas"), "train", "--run", "table2.a1_b1", "--seed", "0", "--profile", "ci", "--set",
        "training.epochs=1", "--out", str(model), "--quiet"], proj)
    npz = proj / "data/processed/digits.npz"
    npz.write_bytes(npz.read_bytes()[:-100])
    (proj / "data/processed/omniglot-mini.npz").unlink()
    (proj / "runs/ci/table2/a1_b5/seed0/config.json").unlink()
    out = dry()
    assert f"vaeas: runs/ci/table2/a1_b1/seed0/model.pt was trained with another configuration (training.epochs: 1 -> 2)" in out, out
    assert "digits.npz does not match its recorded sha256" in out and "omniglot-mini.npz is missing" in out, out
    assert "1 run configuration(s) missing" in out, out
    # the real run then does all of it, and afterwards there is nothing left
    snakemake(proj, "--cores", "2", *ci)
    assert (proj / "runs/ci/table2/a1_b1/seed0/model.pt.stale").is_file()
    assert "Nothing to be done" in dry()
    # A damaged file one stage wrote for another (item 2): a preview and a real run name it in one
    # line and start no job, so every finished output stays (Snakemake would have removed the
    # outputs of the job reading it before that job failed). The remedy, --forcerun FILE, evaluates
    # that one model again (deleting the file would not do: Snakemake does not rebuild a missing
    # file whose readers' outputs are up to date).
    name = "runs/ci/table2/a5_b1/seed0/metrics.json"
    (proj / name).write_text('{"nll_test": 4')
    line = (f"vaeas: error: {name}: not valid JSON (Expecting ',' delimiter at line 1 column 15); rebuild it: "
            f"snakemake --forcerun {name} (its model is evaluated again, nothing is retrained), or dvc repro")
    before = tree_hash(proj)
    for preview in (["-n"], []):
        run = subprocess.run([str(BIN / "snakemake"), *preview, "--cores", "2", *ci], cwd=proj, env=ENV,
                             capture_output=True, text=True, timeout=300)
        said = run.stdout + run.stderr
        assert run.returncode != 0 and line in said.splitlines() and "Traceback" not in said, said
        assert tree_hash(proj) == before, preview
    out = snakemake(proj, "-n", "--cores", "2", "--forcerun", name, *ci)
    assert re.search(r"^evaluate\s+1$", out, re.M) and not re.search(r"^train\s", out, re.M), out
    snakemake(proj, "--cores", "2", "--forcerun", name, *ci)
    assert json.loads((proj / name).read_text())["nll_test"] > 0
    assert "Nothing to be done" in dry()
