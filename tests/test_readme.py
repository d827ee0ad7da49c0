"""Every command in the README's ```bash blocks parses: `vaeas …` against vaeas's own argument
parser, `snakemake …` against Snakemake's (and, where cheap, as a dry run `-n` in a temporary copy
of the workflow), `dvc …` and `python …` have their executable (and module); the setup and test
commands are exactly those `.ci/run` runs. Nothing is executed for real.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_snakemake_cli import workflow_copy as copy_workflow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
README = REPO / "README.md"

# `snakemake` commands that are parsed but not dry-run: the report needs finished outputs, and the
# Slurm profile's executor needs a cluster.
NOT_DRY_RUN = ("--report", "--workflow-profile", "--unlock")


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash blocks (list-indented ones too), with `\\` continuations joined."""
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", text, flags=re.MULTILINE | re.DOTALL)
    return [re.sub(r"\\\n\s*", " ", body) for _, body in blocks]


def commands(text: str) -> list[list[str]]:
    """Every simple command (argv) of the README's bash blocks: comments dropped, `&&` and `;`
    lists split, leading VAR=value assignments removed."""
    found = []
    for block in bash_blocks(text):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            argv: list[str] = []
            for word in [*words, "&&"]:
                if word in ("&&", ";", "||"):
                    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
                        argv.pop(0)
                    if argv:
                        found.append(argv)
                    argv = []
                else:
                    argv.append(word)
    return found


def program(argv: list[str]) -> str:
    """`vaeas` for `.venv/bin/vaeas`; `.` stays `.`."""
    return Path(argv[0]).name or argv[0]


def by_program(name: str) -> list[list[str]]:
    return [argv for argv in commands(README.read_text(encoding="utf-8")) if program(argv) == name]


def _ids(argvs: list[list[str]]) -> list[str]:
    return [" ".join(argv)[:80] for argv in argvs]


def test_the_readme_has_the_commands_this_file_checks():
    names = {program(argv) for argv in commands(README.read_text(encoding="utf-8"))}
    assert {"vaeas", "snakemake", "dvc", "python", "python3.11", "pip"} <= names, names
    unchecked = names - {"vaeas", "snakemake", "dvc", "python", "python3.11", "pip", ".", "source"}
    assert not unchecked, f"README commands no test here checks: {sorted(unchecked)}"


def test_setup_and_test_commands_are_exactly_those_of_ci_run():
    first_block = bash_blocks(README.read_text(encoding="utf-8"))[0]
    lines = [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]
    setup, test = lines[0], lines[-1]
    assert setup.startswith("python3.11 -m venv .venv && ") and "-r requirements.lock" in setup, setup
    assert test == ".venv/bin/python -m pytest", test
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert setup in ci and test in ci
    assert (REPO / "requirements.lock").is_file()


@pytest.mark.parametrize("argv", by_program("vaeas"), ids=_ids(by_program("vaeas")))
def test_vaeas_command_parses(argv):
    from vaeas.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"`{' '.join(argv)}` does not parse (exit {exc.code}): {err.getvalue().strip()}")
    assert callable(args.func), argv


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("readme"))


@pytest.mark.parametrize("argv", by_program("snakemake"), ids=_ids(by_program("snakemake")))
def test_snakemake_command_parses(argv, workflow_copy):
    from snakemake.cli import get_argument_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            get_argument_parser().parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"`{' '.join(argv)}` does not parse (exit {exc.code}): {err.getvalue().strip()}")
    if any(option in argv for option in NOT_DRY_RUN):
        return
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([str(BIN / "snakemake"), *argv[1:], "-n", "--quiet"], cwd=workflow_copy,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("argv", by_program("dvc") + by_program("python"),
                         ids=_ids(by_program("dvc") + by_program("python")))
def test_dvc_and_python_commands_have_their_executable(argv):
    assert (BIN / program(argv)).exists() or shutil.which(program(argv)), argv
    if argv[0].endswith("python") and argv[1:2] == ["-m"]:
        assert importlib.util.find_spec(argv[2]) is not None, argv
