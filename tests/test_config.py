"""params.yaml loading: schema validation, profile merging, one-line errors naming the key."""

from pathlib import Path

import pytest
import yaml

from vaeas.config import Config, schema_path
from vaeas.experiments import load_config
from vaeas.errors import VaeasError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, obj) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(obj))
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(VaeasError) as info:
        load_config(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_repository_params_load_for_every_profile():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in raw["profiles"]:
        cfg = load_config(REPO / "params.yaml", profile=name)
        assert isinstance(cfg, Config) and cfg.profile == name


def test_profile_overrides_base_key_by_key(tmp_path):
    path = write(tmp_path, {"training": {"epochs": 300, "lr": 0.002},
                            "profiles": {"quick": {"training": {"epochs": 2}}}})
    cfg = load_config(path, profile="quick")
    assert cfg.training.epochs == 2 and cfg.training.lr == 0.002
    assert load_config(path).training.epochs == 300


def test_overrides_parse_yaml_values(tmp_path):
    path = write(tmp_path, {})
    cfg = load_config(path, overrides=["model.decoder_layers=3", "training.lr=0.01"])
    assert cfg.model.decoder_layers == 3 and cfg.training.lr == 0.01


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, {"training": {"epochz": 3}})
    assert error_of(path) == f"{path}: unknown key 'training.epochz' (allowed here: batch_size, checkpoint_every, classifier_lr, classifier_steps, device, epochs, flush_denormal, lr, monitor_every, monitor_size, precision, threads, validate_every, validate_samples, validate_size)"


def test_wrong_type_and_range_are_named(tmp_path):
    assert error_of(write(tmp_path, {"training": {"lr": -1}})).endswith("training.lr: -1 is less than or equal to the minimum of 0")
    assert error_of(write(tmp_path, {"model": {"latent_dim": "forty"}})).endswith("model.latent_dim: 'forty' is not of type 'integer'")
    assert error_of(write(tmp_path, {"labels": {"scheme": "some"}})).endswith("labels.scheme: 'some' is not one of ['full', 'shared', 'multihead']")


def test_unknown_profile_is_named(tmp_path):
    path = write(tmp_path, {"profiles": {"a": {}}})
    assert error_of(path, profile="b") == f"{path}: profile 'b' is not defined under 'profiles' (defined: a)"


def test_cross_key_rules(tmp_path):
    msg = error_of(write(tmp_path, {"labels": {"scheme": "shared", "classes": 0}}))
    assert "labels.classes must be >= 2" in msg
    msg = error_of(write(tmp_path, {"labels": {"scheme": "full", "classes": 10}}))
    assert "labels.classes must be 0" in msg
    msg = error_of(write(tmp_path, {"labels": {"scheme": "multihead", "classes": 10, "heads": 1}}))
    assert "labels.heads >= 2" in msg


def test_missing_and_malformed_files(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: file not found"
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: [1,\n")
    assert error_of(bad).startswith(f"{bad}: not valid YAML at line")


def test_schema_file_is_shipped():
    assert schema_path().is_file()
