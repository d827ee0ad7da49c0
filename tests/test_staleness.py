"""vaeas.staleness: one rule decides whether a finished model or a checkpoint is stale, and a new
configuration key whose default keeps the old behaviour makes nothing stale (issue 17, item 3).

"Adding a key" is simulated for real: a subclass of TrainingConfig with one more field replaces
the section type, and the schema learns the key, exactly as a contributor's edit of config.py and
params.schema.json would; nothing else of vaeas is told.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import yaml

from vaeas import config as config_mod
from vaeas import contract, experiments, finished, staleness
from vaeas.config import Config, DataConfig, ModelConfig, TrainingConfig
from vaeas.experiments import load_config
from vaeas.run import RunSpec

#: Every default as released. A default is frozen: records leave out keys at their default, so
#: changing one would leave finished models looking current. Add keys freely (they may extend
#: this dict); change a value here only together with a new training-code digest (docs/decisions.md D33).
RELEASED_DEFAULTS = {
    "data": {"root": "data", "mirror": "", "omniglot_source": "lake", "lock_file": "data/checksums.lock.json", "train_size": 0},
    "model": {"latent_dim": 40, "hidden_units": 500, "encoder_layers": 2, "decoder_layers": 5, "classifier_layers": 2,
              "activation": "tanh", "init": "glorot"},
    "labels": {"scheme": "full", "classes": 0, "heads": 1, "seed": 0, "md_constant": "n"},
    "training": {"epochs": 300, "batch_size": 128, "lr": 0.001, "classifier_lr": 0.001, "device": "auto", "precision": "fp32",
                 "threads": 0, "checkpoint_every": 1, "classifier_steps": 0, "monitor_every": 0, "monitor_size": 0,
                 "validate_every": 0, "validate_size": 0, "validate_samples": 16},
    "evaluation": {"iw_samples": 4096, "iw_chunk": 512, "iw_max_examples": 0, "au_threshold": 0.01, "binarize_seed": 20191001,
                   "mc_sizes": [55000, 10000, 5000, 1000, 500, 100], "mc_repeats": 5, "mc_chunk": 1024, "refit_epochs": 0,
                   "refit_from": "fresh", "refit_lr": 0.001, "refit_batch": 256},
}

PARAMS = {
    "profile": "t",
    "data": {"root": "data"},
    "model": {"hidden_units": 16, "encoder_layers": 1, "decoder_layers": 1, "classifier_layers": 1, "latent_dim": 4},
    "training": {"epochs": 1, "batch_size": 256, "device": "cpu"},
    "evaluation": {"iw_samples": 4, "mc_sizes": [100], "mc_repeats": 1},
    "experiments": {"seeds": [0], "table2": {"dataset": "digits", "runs": {
        "vae": {"objective": "vae"},
        "a1_b1": {"alpha": 1.0, "beta": 1.0},
        "a1_b5": {"alpha": 1.0, "beta": 5.0}}}},
    "profiles": {"t": {}},
}


def test_released_defaults_are_unchanged():
    now = config_mod.defaults()
    changed = [f"{s}.{k}: {v!r} -> {now.get(s, {}).get(k, '(removed)')!r}"
               for s, values in RELEASED_DEFAULTS.items() for k, v in values.items() if now.get(s, {}).get(k) != v]
    assert not changed, "a released default changed (add a key instead): " + ", ".join(changed)


@pytest.fixture
def new_key(monkeypatch):
    """training.warmup_epochs, default 0, added the way a contributor adds a key."""
    extended = dataclasses.make_dataclass("TrainingConfig", [("warmup_epochs", int, dataclasses.field(default=0))],
                                          bases=(TrainingConfig,), frozen=True)
    monkeypatch.setitem(config_mod._SECTION_TYPES, "training", extended)
    schema = copy.deepcopy(config_mod.schema())
    schema["$defs"]["training"]["properties"]["warmup_epochs"] = {"type": "integer", "minimum": 0}
    monkeypatch.setattr(config_mod, "schema", lambda: schema)
    config_mod._validator.cache_clear()
    yield "training.warmup_epochs"
    config_mod._validator.cache_clear()


def _project(tmp_path, params=PARAMS):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path / "params.yaml"


def _tracked(texts: dict[str, str]) -> dict[str, tuple]:
    """What Snakemake's params, DVC's params and a kept model's record hold, per run."""
    return {path: (contract.part(json.loads(t), contract.TRAIN_KEYS), contract.part(json.loads(t), contract.EVALUATE_KEYS))
            for path, t in texts.items() if path.endswith("seed0/config.json")}


def test_a_new_defaulted_key_changes_nothing_tracked_and_setting_it_changes_exactly_its_runs(tmp_path, new_key):
    params = _project(tmp_path)
    config_mod._validator.cache_clear()
    # Before the key: the texts made without it (the monkeypatched section is undone for this).
    with pytest.MonkeyPatch.context() as undo:
        undo.setitem(config_mod._SECTION_TYPES, "training", TrainingConfig)
        before = _tracked(contract.run_configs(load_config(params)))
    after = _tracked(contract.run_configs(load_config(params)))
    assert after == before
    texts = contract.run_configs(load_config(params))
    assert json.loads(texts["runs/t/table2/a1_b1/seed0/config.json"])["defaults"]["training"]["warmup_epochs"] == 0

    edited = copy.deepcopy(PARAMS)
    edited["experiments"]["table2"]["runs"]["a1_b5"]["set"] = {new_key: 3}
    edited["experiments"]["table2"]["runs"]["a1_b1"]["set"] = {new_key: 0}       # set to its default
    changed = _tracked(contract.run_configs(load_config(_project(tmp_path, edited))))
    assert [p for p in changed if changed[p] != before[p]] == ["runs/t/table2/a1_b5/seed0/config.json"]


def test_why_stale_reads_a_key_a_record_lacks_as_its_default():
    spec = RunSpec("digits", "vaeas", {"beta": 0.5})
    recorded = {"training": {"epochs": 3, "lr": 0.001}, "model": {"hidden_units": 16}}
    assert staleness.why_stale(spec, recorded, spec, {"training": {"epochs": 3}, "model": {"hidden_units": 16}}) is None
    assert staleness.why_stale(spec, recorded, spec, {"training": {"epochs": 3, "classifier_steps": 2},
                                                      "model": {"hidden_units": 16}}) == "training.classifier_steps: 0 -> 2"
    # a key set in the record but at its default wanted (the record holds a whole config)
    assert staleness.why_stale(spec, recorded, spec, {"model": {"hidden_units": 16}}) == "training.epochs: 3 -> 300"
    # runtime keys (device, threads, checkpoint_every) and evaluation never make a model stale
    whole = Config(model=ModelConfig(hidden_units=16), training=TrainingConfig(epochs=3, threads=7, device="cpu",
                                                                              checkpoint_every=5)).to_dict()
    assert staleness.why_stale(spec, whole, spec, staleness.train_group(Config(model=ModelConfig(hidden_units=16),
                                                                               training=TrainingConfig(epochs=3)), spec)) is None
    # the spec first: data set, objective, hyper-parameters (defaults filled in), seed
    assert staleness.why_stale(spec, {}, RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 0.5}), {}) is None
    assert staleness.why_stale(spec, {}, RunSpec("digits", "vaeas", {"beta": 0.2}), {}) == "run.params.beta: 0.5 -> 0.2"
    assert staleness.why_stale(spec, {}, RunSpec("digits", "vae"), {}) == "run.objective: 'vaeas' -> 'vae'"


def test_a_hyper_parameter_at_its_default_is_left_out_of_the_tracked_run_group():
    """A hyper-parameter an objective gains later, with a default that keeps the old behaviour,
    changes no record: config.json's run group lists only values other than the defaults."""
    assert RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 0.5}).to_dict(canonical=True)["params"] == {"beta": 0.5}
    assert RunSpec("digits", "vaeas").to_dict()["params"] == {"alpha": 1.0, "beta": 1.0}
    back = RunSpec.from_dict(RunSpec("digits", "vaeas", {"beta": 0.5}).to_dict(canonical=True))
    assert back.params == {"alpha": 1.0, "beta": 0.5}
    # a spec written before hyper-parameters had their group (alpha, beta beside the seed)
    old = RunSpec.from_dict({"dataset": "digits", "objective": "vaeas", "alpha": 2.0, "beta": 0.5, "seed": 1})
    assert old == RunSpec("digits", "vaeas", {"alpha": 2.0, "beta": 0.5}, 1)


def test_a_checkpoint_and_a_finished_model_survive_a_new_defaulted_key(tmp_path, new_key, monkeypatch):
    """Trained before the key existed: the checkpoint resumes after it is added, the finished
    model is not stale (by its kept record, and by the config inside it), and setting the key
    makes exactly that model stale."""
    from vaeas.data import process
    from vaeas.training import train

    two = copy.deepcopy(PARAMS)
    two["training"]["epochs"] = 2
    params = _project(tmp_path, two)
    monkeypatch.chdir(tmp_path)
    process("digits", DataConfig(root="data"))
    with pytest.MonkeyPatch.context() as undo:      # the vaeas before the key
        undo.setitem(config_mod._SECTION_TYPES, "training", TrainingConfig)
        cfg_old = load_config(params)
        contract.write_run_configs(cfg_old)
        conf = contract.config_path(cfg_old, experiments.resolve(cfg_old, "table2.a1_b5"), 0)
        old_cfg, spec, _ = contract.load(conf)
        out = tmp_path / conf.replace("config.json", "model.pt")
        assert train(old_cfg, spec, out, progress=False, stop_after_epoch=1).name == "model.pt.ckpt"
    cfg = load_config(params)
    contract.write_run_configs(cfg)
    new_cfg, spec, _ = contract.load(conf)
    assert new_cfg.training.warmup_epochs == 0
    printed = []
    with pytest.MonkeyPatch.context() as quiet:
        quiet.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        train(new_cfg, spec, out, progress=False)
    assert not any("another configuration" in line for line in printed), printed      # it resumed
    finished.keep(conf, out)
    assert finished.stale_models(cfg, contract.run_configs(cfg)) == {}                  # by the kept record
    (tmp_path / f"{out}.kept").unlink()
    assert finished.stale_models(cfg, contract.run_configs(cfg)) == {}                  # by the config inside
    finished.keep(conf, out)
    two["experiments"]["table2"]["runs"]["a1_b5"]["set"] = {new_key: 3}
    two["experiments"]["table2"]["runs"]["a1_b1"]["set"] = {new_key: 0}                 # its default: no change
    cfg3 = load_config(_project(tmp_path, two))
    assert finished.stale_models(cfg3, contract.run_configs(cfg3)) == {conf.replace("config.json", "model.pt"):
                                                                      "training.warmup_epochs: 0 -> 3"}
