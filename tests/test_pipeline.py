"""The pipeline: Snakemake and DVC describe one DAG, produce the same files, and rerun only what
an edit of params.yaml touches."""

import csv
import difflib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaeas import dvc_views, experiments, pipeline
from vaeas.experiments import load_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

TINY = {
    "profile": "t",
    "data": {"root": "data"},
    "model": {"hidden_units": 16, "encoder_layers": 1, "decoder_layers": 1, "classifier_layers": 1},
    "training": {"epochs": 300, "batch_size": 256, "device": "cpu"},       # the profile sets 2
    "evaluation": {"iw_samples": 4, "mc_sizes": [1247, 100, 20], "mc_repeats": 2},
    "experiments": {"seeds": [0], "table2": {"dataset": "digits", "runs": {
        "vae": {"objective": "vae"},
        "a1_b1": {"alpha": 1.0, "beta": 1.0},
        "a1_b5": {"alpha": 1.0, "beta": 5.0}}}},
    "profiles": {"t": {"description": "three runs of Table 2 on digits", "training": {"epochs": 2}}},
}


def sh(cmd: list[str], cwd: Path) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def snakemake_outputs(cwd: Path, *config: str) -> set[str]:
    """Every output file of Snakemake's DAG (its --summary), without running anything."""
    out = sh([str(BIN / "snakemake"), "--summary", *(["--config", *config] if config else [])], cwd)
    lines = [l.split("\t") for l in out.splitlines() if "\t" in l]
    assert lines[0][0] == "output_file"
    # logs/<profile>/preflight.log: Snakemake's own job that makes its onstart run (vaeas.preflight)
    return {cols[0] for cols in lines[1:] if not cols[0].endswith("/preflight.log")}


def dvc_outputs(cwd: Path) -> set[str]:
    """Every output of the DVC pipeline, as DVC itself parses dvc.yaml."""
    code = ("import json, dvc.repo; r = dvc.repo.Repo('.');"
            "print(json.dumps(sorted(str(o.def_path) for s in r.index.stages for o in s.outs)))")
    outs = set(json.loads(sh([sys.executable, "-c", code], cwd).strip().splitlines()[-1]))
    # The run configurations: DVC's guard stage writes them; Snakemake writes them when it parses.
    return {o for o in outs if not o.endswith("/config.json")}


def make_project(tmp: Path, name: str) -> Path:
    proj = tmp / name
    proj.mkdir()
    shutil.copy(REPO / "Snakefile", proj)
    shutil.copytree(REPO / "workflow", proj / "workflow")
    # DVC stages depend on the package code they run.
    shutil.copytree(REPO / "src" / "vaeas", proj / "src" / "vaeas", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "params.yaml").write_text(yaml.safe_dump(TINY, default_flow_style=False, sort_keys=False))
    (proj / ".gitignore").write_text("/runs/\n")      # as in the repository: git never holds runs/
    return proj


def exp_show(cwd: Path, *options: str) -> list[dict]:
    """`dvc exp show --csv`: one dict per row (workspace first, then the commit), keyed by the
    column names DVC prints (`<file>:<key>`, or `<key>` where only one file has that key)."""
    return list(csv.DictReader(io.StringIO(sh([str(BIN / "dvc"), "exp", "show", *options, "--csv"], cwd))))


def readme_exp_show_commands() -> list[list[str]]:
    """The `dvc exp show` commands of the README, for the demo profile."""
    text = (REPO / "README.md").read_text()
    return [shlex.split(m, comments=True) for m in re.findall(r"^(dvc exp show .*)$", text, flags=re.M)]


def test_repository_dags_agree_for_the_demo_profile():
    """The committed dvc.yaml (demo profile) and the Snakefile list the same output files."""
    assert load_config(REPO / "params.yaml").profile == "demo"
    assert snakemake_outputs(REPO, "profile=demo") == dvc_outputs(REPO)


def _set(raw: dict, dotted: str, value) -> dict:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize("override,old,new", [
    ("profiles.ci.training.epochs=3", "      epochs: 2", "      epochs: 3"),
    ("profile=ci", "profile: demo", "profile: ci"),
    ("experiments.table2.runs.a1_b0p5.beta=0.25", "        beta: 0.5", "        beta: 0.25"),
])
def test_params_yaml_is_a_fixed_point_of_dvc_set_param(tmp_path, override, old, new):
    """`dvc exp run --set-param` rewrites params.yaml with dvc.utils.hydra.apply_overrides (a
    ruamel round trip): on the committed file it changes exactly the line of the edited value."""
    from dvc.utils.hydra import apply_overrides

    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    apply_overrides(str(copy), [override])
    before = (REPO / "params.yaml").read_text().splitlines(keepends=True)
    after = copy.read_text().splitlines(keepends=True)
    changed = [line for line in difflib.unified_diff(before, after, n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [f"-{old}\n", f"+{new}\n"]
    key, _, value = override.partition("=")
    expected = _set(yaml.safe_load("".join(before)), key, yaml.safe_load(value))
    assert yaml.safe_load("".join(after)) == expected
    assert load_config(copy, profile="ci").profile == "ci"        # still valid for the schema


@pytest.mark.parametrize("profile", ["paper", "mnist-cpu", "mnist-scaling", "ci"])
def test_snakemake_dag_equals_the_stage_plan(profile):
    """For every other profile, Snakemake's DAG equals the plan dvc.yaml would be made from."""
    cfg = load_config(REPO / "params.yaml", profile=profile)
    planned = {o for st in pipeline.stages(cfg) if st.name != "resolve" for o in st.outs}
    assert snakemake_outputs(REPO, f"profile={profile}") == planned


def test_dvc_caches_the_results_git_does_not_keep(tmp_path):
    """results/<profile>/ is a DVC output without a cache exactly when .gitignore re-includes it
    (the repository: demo, mnist-cpu and mnist-scaling); another profile's results are cached, so that
    `dvc metrics diff` has a HEAD value for them (it showed "-" for every row of ci, issue 21)."""
    assert ([dvc_views.results_in_git(p, REPO) for p in ("demo", "mnist-cpu", "mnist-scaling", "ci", "paper")]
            == [True, True, True, False, False])
    (tmp_path / ".gitignore").write_text("/runs/\n/results/*/\n!/results/t/\n")
    assert dvc_views.results_in_git("t", tmp_path) and not dvc_views.results_in_git("u", tmp_path)
    (tmp_path / ".gitignore").write_text("/runs/\n")
    assert dvc_views.results_in_git("u", tmp_path)
    cfg = load_config(REPO / "params.yaml", profile="ci")
    doc = yaml.safe_load(pipeline.dvc_yaml(cfg, root=REPO))
    assert doc["stages"]["table2"]["outs"][0] == "results/ci/tables/table2.csv"          # cached: no options
    doc = yaml.safe_load(pipeline.dvc_yaml(load_config(REPO / "params.yaml", profile="demo"), root=REPO))
    assert doc["stages"]["table2"]["outs"][0] == {"results/demo/tables/table2.csv": {"cache": False}}


def test_a_run_name_with_a_dash_goes_through_dvc_yaml(tmp_path):
    """A run named `a1-b3` passed the schema and Snakemake but broke `vaeas dvc-yaml` ("no run
    'table2.a1'": the stage tag was split on '-'). Stages now carry their run."""
    raw = json.loads(json.dumps(TINY))
    raw["experiments"]["table2"]["runs"]["a1-b3"] = {"alpha": 1.0, "beta": 3.0}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    text = pipeline.dvc_yaml(load_config(path))
    doc = yaml.safe_load(text)
    assert doc["stages"]["train"]["foreach"]["table2-a1-b3-s0"]["dir"] == "runs/t/table2/a1-b3/seed0"
    plots = {next(iter(p)): p[next(iter(p))]["y"] for p in doc["plots"]}
    # one plot per experiment and quantity, a line per run (issue 21: loss and MI had one y-axis)
    assert [k for k in plots if k.startswith("table2: ")] == [f"table2: {c}" for c in ("loss", "recon", "kl", "mi", "md", "sc")]
    assert plots["table2: mi"]["runs/t/table2/a1-b3/seed0/model.log.csv"] == "mi"
    assert "runs/t/table2/vae/seed0/model.log.csv" not in plots["table2: mi"]      # a VAE has no classifier
    assert plots["table2: kl"]["runs/t/table2/vae/seed0/model.log.csv"] == "kl"


def _ran_stages(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", log)) - {"resolve"}


@pytest.mark.slow
def test_snakemake_and_dvc_build_identical_results_and_rerun_only_an_edited_run(tmp_path):
    snake = make_project(tmp_path, "snake")
    dvcp = make_project(tmp_path, "dvc")
    # As the ci profile in the repository: git ignores this profile's results/, so DVC caches them
    # (dvc_views.results_in_git) and `dvc metrics diff` reads a commit's rows from dvc.lock
    (dvcp / ".gitignore").write_text("/runs/\n/results/*/\n")
    sh([str(BIN / "vaeas"), "dvc-yaml"], dvcp)
    assert "cache: false" not in (dvcp / "dvc.yaml").read_text()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    sh([*git, "init", "-q"], dvcp)                      # dvc metrics diff compares commits
    sh([str(BIN / "dvc"), "init", "-q"], dvcp)
    shutil.copy(REPO / ".dvc" / "config", dvcp / ".dvc" / "config")   # as a clone has it: the offline plots page
    assert snakemake_outputs(snake) == dvc_outputs(dvcp)

    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], snake)
    # Snakemake's HTML report: the workflow's description, a caption per figure, REPORT.md inside
    sh([str(BIN / "snakemake"), "--report", "report.html"], snake)
    html = (snake / "report.html").read_text()
    assert "pipeline, profile <tt class=\\\"docutils literal\\\">t</tt>" in html
    assert "Table 2 as a plot." in html and html.count("REPORT.md") >= 2
    first = _ran_stages(sh([str(BIN / "dvc"), "repro"], dvcp))
    assert len(first) == 12
    sh([*git, "add", "-A"], dvcp)
    sh([*git, "commit", "-q", "-m", "first"], dvcp)
    # DVC's own views show real numbers: every run's metrics, the tables' means, the training curves.
    shown = json.loads(sh([str(BIN / "dvc"), "metrics", "show", "--json"], dvcp))
    files = next(iter(shown.values()))["data"]
    mi = files["runs/t/table2/a1_b1/seed0/metrics.json"]["data"]["mi"]
    assert isinstance(mi, float) and files["results/t/tables/table2.json"]["data"]["a1_b1"]["mi"] == round(mi, 4)
    plots = json.loads(sh([str(BIN / "dvc"), "plots", "show", "--json"], dvcp))["data"]
    assert {k for k in plots if k.startswith("table2: ")} == {f"table2: {c}" for c in ("loss", "recon", "kl", "mi", "md", "sc")}
    curve = plots["table2: mi"][0]["content"]["data"]["values"]             # pipeline.curve_plots
    names = sorted({row["filename"] for row in curve})             # DVC drops the paths' common prefix
    assert len(names) == 2 and [n.endswith(f"{r}/seed0/model.log.csv") for n, r in zip(names, ("a1_b1", "a1_b5"))] == [True, True], names
    assert sorted({row["epoch"] for row in curve}) == ["1", "2"] and all(float(row["mi"]) >= 0.0 for row in curve)
    # the HTML page renders offline: DVC's page loads vega from a CDN; ours (.dvc/config) inlines it
    sh([str(BIN / "dvc"), "plots", "show", "-o", str(tmp_path / "plots-html")], dvcp)
    page = (tmp_path / "plots-html" / "index.html").read_text()
    assert "<script src" not in page and "cdn.jsdelivr" not in page, page[:2000]
    assert page.count('var e="5.20.2"') == 1 and page.count("vegaEmbed('#") >= 6
    # dvc exp show: the values in force (the profile's resolved configuration, and each run's
    # config.json, which its stages declare as params) beside params.yaml's base values, and the
    # metrics; in the commit's row too (the configurations are in DVC's cache, runs/ is not in git).
    rows = exp_show(dvcp)
    assert [row["rev"] for row in rows][0] == "workspace" and len(rows) == 2
    for row in rows:
        assert row["runs/t/table2/a1_b1/seed0/config.json:train.training.epochs"] == "2"    # the profile's
        assert row["runs/t/config.json:training.epochs"] == "2"
        assert row["params.yaml:training.epochs"] == "300"                     # the base section, as written
        assert row["profiles.t.training.epochs"] == "2"
        assert float(row["runs/t/table2/a1_b1/seed0/metrics.json:mi"]) == mi
        assert float(row["a1_b1.mi"]) == round(mi, 4)                          # results/t/tables/table2.json
    # Same files, and (CPU training is deterministic) the same numbers.
    for run in ("vae", "a1_b1", "a1_b5"):
        path = f"runs/t/table2/{run}/seed0/metrics.json"
        ours = {k: v for k, v in json.loads((snake / path).read_text()).items() if k != "seconds"}
        theirs = {k: v for k, v in json.loads((dvcp / path).read_text()).items() if k != "seconds"}
        assert ours == theirs, run
    assert (snake / "results/t/tables/table2.md").read_text() == (dvcp / "results/t/tables/table2.md").read_text()

    # Edit one beta: only that run and what reads it are rebuilt.
    for proj in (snake, dvcp):
        text = (proj / "params.yaml").read_text()
        (proj / "params.yaml").write_text(text.replace("beta: 5.0", "beta: 4.0"))
    second = _ran_stages(sh([str(BIN / "dvc"), "repro"], dvcp))
    assert second == {"train@table2-a1_b5-s0", "evaluate@table2-a1_b5-s0", "seeds-table2", "table2", "figure-table2", "claims", "report"}
    # dvc metrics diff: the edited run's numbers changed, no other run's
    diff = json.loads(sh([str(BIN / "dvc"), "metrics", "diff", "--json"], dvcp))
    assert "runs/t/table2/a1_b5/seed0/metrics.json" in diff and "runs/t/table2/a1_b1/seed0/metrics.json" not in diff
    assert diff["runs/t/table2/a1_b5/seed0/metrics.json"]["beta"] == {"old": 5.0, "new": 4.0, "diff": -1.0}
    # the table's row is keyed by its run's name: a β edit reads as that row changing (it read as
    # a1_b5 disappearing and a1_b4 appearing when rows were keyed by their α, β; issue 21 item 4)
    table_diff = diff["results/t/tables/table2.json"]
    assert {k.split(".")[0] for k in table_diff} == {"a1_b5"} and table_diff["a1_b5.nll_test"]["old"] is not None
    assert table_diff["a1_b5.nll_test"]["new"] is not None        # git ignores results/: HEAD's from dvc.lock + cache
    # The README's `dvc exp show` commands, on this profile. After the edit, --only-changed without
    # dependency hashes or timings: the edited key (params.yaml, the profile's and the run's
    # configuration), the run's metrics and its table row, nothing of another run.
    only_changed, in_force, one_run = [[w.replace("/demo/", "/t/").replace("a1_b0p5", "a1_b5") for w in argv[3:]]
                                       for argv in readme_exp_show_commands()]
    rows = exp_show(dvcp, *only_changed)
    columns = set(rows[0]) - {"Experiment", "rev", "typ", "Created", "parent"}
    # (a1_b5 is the one run whose β is not the default 1, so its config.json alone has run.params.beta
    # and DVC names the column by the key alone: vaeas.staleness writes only values other than defaults)
    edited = {"params.yaml:experiments.table2.runs.a1_b5.beta", "runs/t/config.json:experiments.table2.runs.a1_b5.beta",
              "run.params.beta"}
    assert edited | {"runs/t/table2/a1_b5/seed0/metrics.json:nll_test", "a1_b5.nll_test"} <= columns
    assert all(c.startswith(("runs/t/table2/a1_b5/seed0/metrics.json:", "a1_b5.")) and not c.endswith(":seconds")
               for c in columns - edited), columns
    assert [rows[0][c] for c in sorted(edited)] == ["4.0"] * 3 and [rows[1][c] for c in sorted(edited)] == ["5.0"] * 3
    rows = exp_show(dvcp, *in_force, "--keep", "rev$")
    assert set(rows[0]) > {"rev", "runs/t/config.json:training.epochs", "runs/t/config.json:model.hidden_units"}
    assert all(c in ("Experiment", "rev") or c.startswith("runs/t/config.json:") for c in rows[0]) and rows[0]["runs/t/config.json:training.epochs"] == "2"
    rows = exp_show(dvcp, *one_run, "--keep", "rev$")
    assert all(c in ("Experiment", "rev") or c.startswith("runs/t/table2/a1_b5/seed0/") for c in rows[0])
    assert rows[0]["runs/t/table2/a1_b5/seed0/config.json:train.training.epochs"] == "2" and "runs/t/table2/a1_b5/seed0/metrics.json:nll_test" in rows[0]
    dry = sh([str(BIN / "snakemake"), "-n"], snake)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.split("Job stats:")[1], flags=re.M))
    assert jobs == {"train": "1", "evaluate": "1", "seeds": "1", "table": "1", "figure": "1", "claims": "1", "report": "1",
                    "all": "1", "total": "8"}

    # A directory remote: push from this project; a fresh clone pulls the models (and the run
    # configurations, which git does not hold) and has nothing to do.
    sh([*git, "add", "-A"], dvcp)
    sh([*git, "commit", "-q", "-m", "beta 4"], dvcp)
    sh([str(BIN / "dvc"), "remote", "add", "-d", "local", str(tmp_path / "remote")], dvcp)
    sh([*git, "commit", "-q", "-am", "remote"], dvcp)
    assert "files pushed" in sh([str(BIN / "dvc"), "push"], dvcp)
    sh(["git", "clone", "-q", str(dvcp), str(tmp_path / "clone")], tmp_path)
    clone = tmp_path / "clone"
    assert not (clone / "runs").exists()
    sh([str(BIN / "dvc"), "pull"], clone)
    for run in ("vae", "a1_b1", "a1_b5"):
        for name in ("model.pt", "config.json", "metrics.json"):
            path = f"runs/t/table2/{run}/seed0/{name}"
            assert (clone / path).read_bytes() == (dvcp / path).read_bytes(), path
    assert json.loads(sh([str(BIN / "dvc"), "status", "--json"], clone)) == {}
    assert "Data and pipelines are up to date." in sh([str(BIN / "dvc"), "status"], clone)


@pytest.mark.slow
def test_snakemake_after_dvc_reruns_what_its_own_records_hold_and_touch_adopts_dvcs_outputs(tmp_path):
    """The README's sentences on using both tools in one tree (issue 21, item 3). Snakemake keeps
    a record of the params of every output it made (.snakemake/metadata); DVC rewrites outputs
    without touching those records, so after Snakemake built the tree and DVC rebuilt an edited
    run, Snakemake reruns that run's training and evaluation (its record holds the old β) and
    what reads them — what DVC just did. `snakemake --touch` records DVC's outputs as Snakemake's
    own without changing a byte; then Snakemake has nothing to do."""
    proj = make_project(tmp_path, "both")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    sh([str(BIN / "vaeas"), "dvc-yaml"], proj)
    sh([*git, "init", "-q"], proj)
    sh([str(BIN / "dvc"), "init", "-q"], proj)
    sh([str(BIN / "snakemake"), "--cores", "2", "--quiet"], proj)
    # after a Snakemake run, `dvc commit -f` makes DVC adopt its outputs: nothing for dvc repro to do
    sh([str(BIN / "dvc"), "commit", "-f"], proj)
    assert _ran_stages(sh([str(BIN / "dvc"), "repro"], proj)) == set()
    sh([*git, "add", "-A"], proj)
    sh([*git, "commit", "-q", "-m", "built by snakemake, committed by dvc"], proj)
    text = (proj / "params.yaml").read_text()
    (proj / "params.yaml").write_text(text.replace("beta: 5.0", "beta: 4.0"))
    edited = {"train@table2-a1_b5-s0", "evaluate@table2-a1_b5-s0", "seeds-table2", "table2", "figure-table2", "claims", "report"}
    assert _ran_stages(sh([str(BIN / "dvc"), "repro"], proj)) == edited
    # Snakemake, whose records still say β = 5 for a1_b5's model and metrics: the same jobs again
    dry = sh([str(BIN / "snakemake"), "-n"], proj)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.split("Job stats:")[1], flags=re.M))
    assert jobs == {"train": "1", "evaluate": "1", "seeds": "1", "table": "1", "figure": "1", "claims": "1", "report": "1",
                    "all": "1", "total": "8"}, dry
    assert "runs/t/table2/a1_b5/seed0/model.pt" in dry and "Params have changed since last execution" in dry, dry
    files = {p: p.read_bytes() for d in ("runs", "results") for p in sorted((proj / d).rglob("*")) if p.is_file()}
    sh([str(BIN / "snakemake"), "--touch", "--cores", "1", "--quiet"], proj)
    assert {p: p.read_bytes() for p in files} == files                 # touched, not rewritten
    assert "Nothing to be done" in sh([str(BIN / "snakemake"), "-n"], proj)
    assert _ran_stages(sh([str(BIN / "dvc"), "repro"], proj)) == set()   # and DVC agrees


def test_the_run_notes_are_a_report_input_exactly_when_written(tmp_path, monkeypatch):
    """results/<profile>/RUN.md (how the grid was run: no file of the run records it) is embedded
    in REPORT.md, so the report reruns when it is edited; without it the report needs nothing more."""
    cfg = load_config(REPO / "params.yaml", profile="mnist-scaling")
    monkeypatch.chdir(tmp_path)
    assert pipeline.run_notes_path(cfg) == "results/mnist-scaling/RUN.md"
    assert pipeline.run_notes_path(cfg) not in pipeline.report_inputs(cfg)
    (tmp_path / "results" / "mnist-scaling").mkdir(parents=True)
    (tmp_path / pipeline.run_notes_path(cfg)).write_text("two stretches of the machine\n")
    assert pipeline.report_inputs(cfg)[-1] == pipeline.run_notes_path(cfg)
