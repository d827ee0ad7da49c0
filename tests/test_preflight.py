"""vaeas.preflight: reading the Snakefile decides, a real run under the lock writes (issue 21).

The real-Snakemake cases (a dry run in every state changes no file; a second snakemake during a
run changes nothing and the first finishes) are in tests/test_reliability_runs.py."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vaeas import finished, preflight
from vaeas.cli import main
from vaeas.experiments import load_config

from test_contract import _project_configs, edit


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its bytes, and every directory."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _trained(tmp_path, monkeypatch):
    proj, cfg = _project_configs(tmp_path)
    monkeypatch.chdir(proj)
    assert main(["resolve"]) == 0 and main(["process", "digits"]) == 0
    assert main(["train", "--config", "runs/t/table2/a1_b5/seed0/config.json", "--quiet"]) == 0
    return proj


def test_plan_reads_only_and_apply_writes_what_it_found(tmp_path, monkeypatch):
    proj = _trained(tmp_path, monkeypatch)
    model = Path("runs/t/table2/a1_b5/seed0/model.pt")
    trained = model.read_bytes()
    edit(proj, "experiments.table2.runs.a1_b5.beta", 4.0)              # the model is now stale
    edit(proj, "evaluation.iw_samples", 2)                             # every config.json changes
    npz = Path("data/processed/digits.npz")
    npz.write_bytes(npz.read_bytes()[:-100])                           # damaged
    cfg = load_config("params.yaml")
    before = tree(proj)
    plan = preflight.plan(cfg, ["digits"])
    assert tree(proj) == before                                        # reading only
    assert plan.stale == {str(model): "run.params.beta: 5.0 -> 4.0"}
    assert plan.repairs == {"digits": "does not match its recorded sha256"} and plan.pending()
    assert len(plan.changed_configs()) == 4 and plan.missing_configs() == []
    assert json.loads(plan.configs["runs/t/table2/a1_b5/seed0/config.json"])["run"]["params"]["beta"] == 4.0
    lines = plan.apply()
    assert lines[0] == (f"vaeas: {model} was trained with another configuration (run.params.beta: 5.0 -> 4.0): "
                        f"moved to {model}.stale; it will be trained again")
    assert not model.exists() and Path(f"{model}.stale").read_bytes() == trained
    assert plan.changed_configs() == [] and preflight.processed_state("digits", cfg) == (None, False)
    assert plan.apply() == []                                          # done once
    assert not plan.pending()


def test_missing_files_are_created_by_a_real_run_and_named_by_a_dry_one(tmp_path, monkeypatch):
    proj = _trained(tmp_path, monkeypatch)
    Path("runs/t/table2/vae/seed0/config.json").unlink()
    good = Path("data/processed/digits.npz").read_bytes()
    Path("data/processed/digits.npz").unlink()
    plan = preflight.plan(load_config("params.yaml"), ["digits"])
    notes = plan.notes(dry_run=True)
    assert any("digits.npz is missing; a real run rebuilds it byte for byte" in n for n in notes), notes
    assert any(n.startswith("vaeas: 1 run configuration(s) missing (e.g. runs/t/table2/vae/seed0/config.json)")
               for n in notes), notes
    assert plan.notes(dry_run=False) == []                             # a real run says it as it does it
    lines = plan.create_missing()
    assert lines == ["vaeas: data/processed/digits.npz is missing: rebuilt byte for byte"]
    assert Path("data/processed/digits.npz").read_bytes() == good
    assert Path("runs/t/table2/vae/seed0/config.json").read_text() == plan.configs["runs/t/table2/vae/seed0/config.json"]


def test_a_model_whose_stale_name_is_already_its_hard_link_is_set_aside(tmp_path):
    """`os.replace` of a file onto another name of itself does nothing: the model stayed, and the
    line said 'moved' (issue 21)."""
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    os.link(model, f"{model}.stale")
    line = finished.set_aside(model, "training.epochs: 2 -> 3")
    assert not model.exists() and Path(f"{model}.stale").read_bytes() == b"weights"
    assert line.endswith(f"moved to {model}.stale; it will be trained again")


def test_a_kept_record_names_the_key_as_config_json_does(tmp_path, monkeypatch):
    """The record nests the train group inside 'train': the line said 'train.train.training.epochs'."""
    proj = _trained(tmp_path, monkeypatch)
    conf = Path("runs/t/table2/a1_b5/seed0/config.json")
    content = json.loads(conf.read_text())
    content["train"]["training"]["epochs"] = 3
    assert finished.stale(content, "runs/t/table2/a1_b5/seed0/model.pt") == "training.epochs: 2 -> 3"
    assert finished.stale(json.loads(conf.read_text()), "runs/t/table2/a1_b5/seed0/model.pt",
                          code="another").startswith("the training code: ")
