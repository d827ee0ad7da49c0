"""Snakemake as users call it: a --config mistake is one line naming the key, before any job, and a
failing job's `vaeas: error` line reaches the console (profiles/default: show-failed-logs).

Each test runs `snakemake` in a temporary copy of the workflow (a subprocess each: 2-10 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The profile list the error messages name, read from the committed params.yaml (not restated here).
DEFINED = ", ".join(sorted(yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]))


def workflow_copy(tmp_path: Path) -> Path:
    """The files Snakemake reads, copied: the Snakefile, params.yaml, workflow/ and profiles/."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("Snakefile", "params.yaml"):
        shutil.copy(REPO / name, proj)
    for name in ("workflow", "profiles"):
        shutil.copytree(REPO / name, proj / name)
    (proj / "data").mkdir()
    shutil.copy(REPO / "data" / "checksums.lock.json", proj / "data")
    return proj


def snakemake(proj: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=180)


def error_lines(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (res.stdout + res.stderr).splitlines() if "error" in line.lower()]


CONFIG_MISTAKES = {
    "unknown key beside profile": (["profile=ci", "epochs=3"], "--config epochs: only 'profile' can be set"),
    "nested key in YAML form": (["training={epochs: 3}"], "--config training.epochs: only 'profile' can be set"),
    "empty profile": (["profile="], "--config profile: empty value; name a profile (defined: " + DEFINED + ")"),
    "undefined profile": (["profile=nope"], "profile 'nope' is not defined under 'profiles' (defined: " + DEFINED + ")"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_MISTAKES))
def test_config_mistake_is_one_line_naming_the_key(tmp_path, case):
    config, message = CONFIG_MISTAKES[case]
    proj = workflow_copy(tmp_path)
    res = snakemake(proj, "-n", "--config", *config)
    output = res.stdout + res.stderr
    assert res.returncode != 0, output
    errors = error_lines(res)
    assert len(errors) == 1 and errors[0].startswith("vaeas: error: "), output
    assert message in errors[0], output
    assert "Traceback" not in output and "Building DAG" not in output, output
    assert len(output.splitlines()) <= 3, output     # the error, and Snakemake's two notices


@pytest.mark.xfail(strict=True, reason="Snakemake's own CLI (snakemake/cli.py parse_config) rejects a dotted "
                   "--config key with a Python traceback before the workflow is read; nothing in the "
                   "Snakefile runs. Workaround: --config 'training={epochs: 3}' gets the one-line error.")
def test_dotted_config_key_is_one_line_naming_the_key(tmp_path):
    proj = workflow_copy(tmp_path)
    res = snakemake(proj, "-n", "--config", "training.epochs=3")
    output = res.stdout + res.stderr
    assert "Traceback" not in output and "training.epochs" in output, output


def test_the_profile_from_params_yaml_and_from_config_both_plan(tmp_path):
    proj = workflow_copy(tmp_path)
    for args in ([], ["--config", "profile=ci"]):
        res = snakemake(proj, "-n", "--cores", "4", *args)
        assert res.returncode == 0, res.stdout + res.stderr
        assert not error_lines(res), res.stdout + res.stderr


def test_failing_job_prints_its_vaeas_error_line_on_the_console(tmp_path):
    """Without profiles/default (show-failed-logs), the console only says "check log file(s)"."""
    proj = workflow_copy(tmp_path)
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    res = snakemake(proj, "--cores", "1", "data/raw/mnist", env={"VAEAS_DATA_MIRROR": str(empty_mirror)})
    output = res.stdout + res.stderr
    assert res.returncode != 0, output
    assert "Using workflow specific profile profiles/default" in output, output
    vaeas_errors = [line for line in output.splitlines() if line.startswith("vaeas: error: ")]
    assert len(vaeas_errors) == 1 and "train-images-idx3-ubyte.gz" in vaeas_errors[0], output
