"""vaeas.objectives: the registry, what each objective declares, and the checks of their
hyper-parameters (issue 17, items 1, 6)."""

from __future__ import annotations

import pytest
import yaml

from vaeas import objectives
from vaeas.errors import VaeasError
from vaeas.experiments import load_config, runs
from vaeas.run import RunSpec


def test_the_registry_names_every_module_and_each_declares_itself():
    assert objectives.names()[:2] == ("vae", "vaeas")          # the paper's two methods first
    for o in objectives.REGISTRY.values():
        assert o.label and o.summary and set(o.schema()) == set(o.param_names())
        assert all(col in objectives.LOGGED for col in o.curves)
    assert objectives.get("vaeas").needs_classifier and not objectives.get("vae").needs_classifier
    with pytest.raises(VaeasError, match=r"^--objective: unknown objective 'elbo' \(choose from: vae, vaeas"):
        objectives.get("elbo", "--objective")


def test_hyper_parameters_are_checked_and_named_where_they_came_from():
    vaeas = objectives.get("vaeas")
    assert vaeas.make_params({}).beta == 1.0 and vaeas.make_params({"beta": 0.2}).beta == 0.2
    with pytest.raises(VaeasError, match=r"^--gamma: not a hyper-parameter of objective 'vaeas' \(its hyper-parameters: alpha, beta\)$"):
        vaeas.make_params({"gamma": 1.0}, "--{}")
    with pytest.raises(VaeasError, match=r"^p.yaml: experiments.t.runs.x.beta must be a finite number >= 0, got -1$"):
        vaeas.make_params({"beta": -1}, "p.yaml: experiments.t.runs.x.{}")
    with pytest.raises(VaeasError, match=r"^beta must be a finite number >= 0, got True$"):
        vaeas.make_params({"beta": True})
    with pytest.raises(VaeasError, match=r"not a hyper-parameter of objective 'vae' \(its hyper-parameters: none\)"):
        RunSpec("digits", "vae", {"beta": 1.0})


def _grid(tmp_path, runs_entry: dict) -> str:
    params = {"profile": "t", "data": {"root": "data"}, "experiments": {"seeds": [0], "table2": {
        "dataset": "digits", "runs": runs_entry}}, "profiles": {"t": {}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return str(path)


def test_a_run_is_one_params_yaml_entry_checked_against_its_objective(tmp_path):
    cfg = load_config(_grid(tmp_path, {"a1_b0p2": {"beta": 0.2}}))
    (run,) = runs(cfg)
    assert (run.objective, run.params) == ("vaeas", {"alpha": 1.0, "beta": 0.2})     # defaults filled in
    assert run.spec(0).run_id == "table2.a1_b0p2.seed0"
    with pytest.raises(VaeasError, match=r"params.yaml: unknown key 'experiments.table2.runs.bad.beta' \(allowed here: objective, set\)"):
        load_config(_grid(tmp_path, {"bad": {"objective": "vae", "beta": 1.0}}))
    with pytest.raises(VaeasError, match=r"params.yaml: experiments.table2.runs.bad.objective: unknown objective 'elbo'"):
        load_config(_grid(tmp_path, {"bad": {"objective": "elbo"}}))
    with pytest.raises(VaeasError, match=r"params.yaml: experiments.table2.runs.bad.alpha: -1.0 is less than the minimum of 0"):
        load_config(_grid(tmp_path, {"bad": {"alpha": -1.0}}))
