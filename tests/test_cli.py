"""The CLI contract: one-line errors with exit status 2, before any compute; outputs written."""

import json
import math
from pathlib import Path

import pytest
import torch

from vaeas import data
from vaeas.cli import main
from vaeas.config import DataConfig

from tolerance import ops_bound, sum_bound

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def only_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vaeas: error: ")
    return lines[0][len("vaeas: error: "):]


def test_check_accepts_the_repository_params(capsys):
    code, out, _ = run_cli(capsys, "check", "--params", str(REPO / "params.yaml"), "--profile", "paper")
    assert code == 0 and "64 runs x 3 seeds" in out


def test_unknown_run_is_named(capsys):
    code, _, err = run_cli(capsys, "train", "--params", str(REPO / "params.yaml"), "--profile", "ci",
                           "--run", "table2.a7_b7", "--out", "unused.pt")
    assert code == 2
    assert only_error_line(err).startswith("no run 'table2.a7_b7' under 'experiments' in profile 'ci' (defined: table1.dec1, ")
    assert not Path("unused.pt").exists()


def test_bad_override_is_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "check", "--params", str(REPO / "params.yaml"), "--set", "training.lr=-3")
    assert code == 2
    assert only_error_line(err) == f"{REPO / 'params.yaml'}: training.lr: -3 is less than or equal to the minimum of 0"


def test_unknown_dataset_is_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "process", "cifar", "--params", str(REPO / "params.yaml"))
    assert code == 2
    assert only_error_line(err) == "unknown data set 'cifar' (choose from: digits, mnist, omniglot, omniglot-mini)"


@pytest.mark.parametrize("argv,message", [
    (("--objective", "vaeas", "--param", "gamma=1"), "--gamma: not a hyper-parameter of objective 'vaeas' (its hyper-parameters: alpha, beta)"),
    (("--objective", "vaeas", "--param", "beta=-1"), "--beta must be a finite number >= 0, got -1"),
    (("--objective", "elbo"), "--objective: unknown objective 'elbo' (choose from: vae, vaeas, beta_vae, free_bits, kl_annealing)"),
    (("--param", "beta"), "--param 'beta': expected KEY=VALUE, e.g. --param beta=0.5"),
])
def test_bad_hyper_parameters_are_named_by_their_flag(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, "train", "--params", str(REPO / "params.yaml"), "--dataset", "digits", *argv,
                           "--out", str(tmp_path / "m.pt"))
    assert code == 2 and only_error_line(err) == message
    assert not any(tmp_path.iterdir())


def test_missing_model_file_is_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--model", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.json"))
    assert code == 2 and only_error_line(err) == f"model file {tmp_path / 'nope.pt'} not found"
    assert not (tmp_path / "m.json").exists()


def test_dvc_yaml_is_current(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, _, err = run_cli(capsys, "dvc-yaml", "--check")
    assert code == 0, err


def test_train_then_evaluate_reports_every_table2_column(capsys, tmp_path):
    """Issue 3's 'done when': one VAE-AS configuration on digits reports every Table 2 column,
    and the reported numbers satisfy MD = KL_train − log N + SC exactly."""
    root = tmp_path / "data"
    data.process("digits", DataConfig(root=str(root)))
    params = tmp_path / "params.yaml"
    params.write_text(
        f"data:\n  root: {root}\nmodel:\n  hidden_units: 32\n  decoder_layers: 1\n"
        "training:\n  epochs: 2\n  device: cpu\nevaluation:\n  iw_samples: 8\n")
    model = tmp_path / "run" / "model.pt"
    code, out, err = run_cli(capsys, "train", "--params", str(params), "--dataset", "digits", "--objective", "vaeas",
                             "--param", "alpha=0.5", "--param", "beta=2", "--out", str(model), "--quiet")
    assert code == 0, err
    metrics = tmp_path / "run" / "metrics.json"
    code, out, err = run_cli(capsys, "evaluate", "--model", str(model), "--out", str(metrics), "--quiet")
    assert code == 0, err
    row = json.loads(metrics.read_text())
    for col in ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc"):
        assert math.isfinite(row[col]), col
    # eq. 10 from the same float32 means (vaeas.passes): three float32 roundings, of log N,
    # KL − log N and MD (tests/tolerance.py); 1e-6 failed by construction on values this size.
    log_n = math.log(1247)
    tol = ops_bound(torch.float32, log_n, row["kl_train"] - log_n, row["md"], safety=2)
    assert row["md"] == pytest.approx(row["kl_train"] - log_n + row["sc"], abs=tol)
    # MI = log N − H, and H ≥ 0 exactly in floating point (a sum of terms p·log p ≤ 0), so the
    # upper bound needs no slack; H ≤ log N holds up to γ_V·log N in float32, hence the lower one.
    assert -sum_bound(1247, log_n, torch.float32) <= row["mi"] <= log_n
    assert row["nll_test"] > 0 and row["kl_test"] >= 0 and 0 <= row["au"] <= 40
    assert (row["alpha"], row["beta"], row["n_train"]) == (0.5, 2.0, 1247)


def test_version_lists_the_key_packages_as_installed(capsys):
    """`vaeas --version` and REPORT.md's provenance name the same packages, each as installed."""
    import platform
    from importlib import metadata

    import vaeas
    from vaeas.report.provenance import format_provenance, provenance

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    wanted = ("torch", "torchvision", "snakemake", "dvc", "pandas", "seaborn", "numpy", "tabulate")
    assert set(wanted) <= set(vaeas.KEY_PACKAGES)
    assert out.splitlines() == [f"vaeas {vaeas.__version__}", f"  python {platform.python_version()}",
                                *(f"  {name} {metadata.version(name)}" for name in vaeas.KEY_PACKAGES)]
    prov = provenance(REPO / "params.yaml", {})
    assert prov["packages"] == {"vaeas": metadata.version("vaeas"), **{n: metadata.version(n) for n in vaeas.KEY_PACKAGES}}
    text = format_provenance(prov)
    cells = {tuple(c.strip() for c in line.strip("|").split("|")) for line in text.splitlines() if line.startswith("| package ")}
    assert cells == {(f"package {name}", metadata.version(name)) for name in ("vaeas", *vaeas.KEY_PACKAGES)}


def test_train_with_progress_lines_logs_the_pace_and_ends_with_a_summary(tmp_path, capsys):
    """The pipeline's train jobs: lines (not a tqdm bar) in the job's log, and a last line on
    stdout with epochs, loss, KL and seconds, which the train rule echoes into Snakemake's output."""
    root = tmp_path / "data"
    data.process("digits", DataConfig(root=str(root)))
    capsys.readouterr()
    params = tmp_path / "params.yaml"
    params.write_text(f"data:\n  root: {root}\nmodel:\n  hidden_units: 16\n  decoder_layers: 1\n"
                      "training:\n  epochs: 2\n  device: cpu\n")
    model = tmp_path / "run" / "model.pt"
    code, out, err = run_cli(capsys, "train", "--params", str(params), "--dataset", "digits", "--objective", "vae",
                             "--out", str(model), "--progress", "lines")
    assert code == 0, err
    assert [l.split(",")[0] for l in err.splitlines()] == ["train digits VAE seed 0: epoch 1/2", "train digits VAE seed 0: epoch 2/2"], err
    log = (tmp_path / "run" / "model.log.csv").read_text().splitlines()
    last = dict(zip(log[0].split(","), log[-1].split(",")))
    seconds = sum(float(dict(zip(log[0].split(","), l.split(",")))["seconds"]) for l in log[1:])
    assert out == (f"vaeas: wrote {model} (digits VAE seed 0: 2 epochs, loss {float(last['loss']):.2f}, "
                   f"kl {float(last['kl']):.2f}, {seconds:.0f} s of training)\n")
