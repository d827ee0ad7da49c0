"""vaeas.training.validation: the validation IW-NLL and the best epoch's model (issue "Scale",
item 2: early stopping as the paper's setting would select it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vaeas import data
from vaeas.config import DataConfig
from vaeas.errors import VaeasError
from vaeas.training import RunSpec, load_model, train
from vaeas.training.validation import Validator, is_due, validation_images

from test_training import digits_root, small_config  # noqa: F401  (the module's fixture)

SPEC = RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}, seed=4)


def _blob(path):
    return torch.load(path, weights_only=False)


def test_validation_changes_no_weight_and_keeps_the_best_validated_epoch(digits_root, tmp_path):  # noqa: F811
    """Same machine, same seed: the weights with validation on are those with it off, bit for
    bit (its draws have their own generator); the kept epoch is the logged minimum, and its state
    gives back the logged IW-NLL exactly."""
    off = _blob(train(small_config(digits_root, epochs=5), SPEC, tmp_path / "off.pt", progress=False))
    cfg = small_config(digits_root, epochs=5, validate_every=2, validate_size=60, validate_samples=4)
    on_path = train(cfg, SPEC, tmp_path / "on.pt", progress=False)
    on = _blob(on_path)
    assert all(torch.equal(off["model"][k], on["model"][k]) for k in off["model"])
    assert off["best"] is None
    logged = {row["epoch"]: row["valid_nll"] for row in on["history"] if "valid_nll" in row}
    assert sorted(logged) == [2, 4, 5]                                   # every 2nd epoch and the last
    best = on["best"]
    assert best["valid_nll"] == min(logged.values()) and logged[best["epoch"]] == best["valid_nll"]
    model, meta = load_model(on_path)
    model.load_state_dict(best["model"])
    assert Validator(cfg, data.load("digits", cfg.data), torch.device("cpu")).nll(model) == best["valid_nll"]
    if best["epoch"] == 5:
        assert all(torch.equal(best["model"][k], on["model"][k]) for k in on["model"])
    header = (tmp_path / "on.log.csv").read_text().splitlines()[0]
    assert header.endswith(",valid_nll") and "valid_nll" not in (tmp_path / "off.log.csv").read_text()


def test_an_interrupted_run_resumes_with_its_best_epoch(digits_root, tmp_path):  # noqa: F811
    cfg = small_config(digits_root, epochs=4, validate_every=1, validate_size=60, validate_samples=4)
    whole = _blob(train(cfg, SPEC, tmp_path / "a" / "m.pt", progress=False))
    train(cfg, SPEC, tmp_path / "b" / "m.pt", progress=False, stop_after_epoch=2)
    assert _blob(tmp_path / "b" / "m.pt.ckpt")["best"]["epoch"] in (1, 2)
    resumed = _blob(train(cfg, SPEC, tmp_path / "b" / "m.pt", progress=False))
    assert whole["best"]["epoch"] == resumed["best"]["epoch"] and whole["best"]["valid_nll"] == resumed["best"]["valid_nll"]
    assert all(torch.equal(whole["best"]["model"][k], resumed["best"]["model"][k]) for k in whole["best"]["model"])


@pytest.mark.parametrize("every,epochs,due", [(0, 5, []), (2, 5, [2, 4, 5]), (5, 5, [5]), (7, 5, [5]), (1, 3, [1, 2, 3])])
def test_validation_is_due_every_k_epochs_and_at_the_last(digits_root, every, epochs, due):  # noqa: F811
    cfg = small_config(digits_root, epochs=epochs, validate_every=every)
    assert [e for e in range(1, epochs + 1) if is_due(cfg, e)] == due


def test_validation_images_are_named_when_there_are_none_or_too_few(digits_root, tmp_path):  # noqa: F811
    cfg = small_config(digits_root, validate_every=1, validate_size=101)
    with pytest.raises(VaeasError) as err:
        validation_images(cfg, data.load("digits", cfg.data))
    assert str(err.value) == "training.validate_size (101) exceeds the 100 validation images of 'digits'"
    root = tmp_path / "mini"
    data.process("omniglot-mini", DataConfig(root=str(root)))
    mini = replace(cfg, data=DataConfig(root=str(root)))
    with pytest.raises(VaeasError) as err:
        validation_images(mini, data.load("omniglot-mini", mini.data))
    assert str(err.value) == ("training.validate_every: data set 'omniglot-mini' has no validation images (a data set "
                              "without a validation split gets the training images a data.train_size subset leaves "
                              "out); set training.validate_every: 0 for it")
    held_out = data.load("omniglot-mini", DataConfig(root=str(root), train_size=700))
    every = replace(mini, training=replace(mini.training, validate_size=0))
    assert len(held_out.valid_x) == 300 and len(validation_images(every, held_out)) == 300


def test_a_subset_of_a_data_set_without_validation_split_holds_the_rest_out(tmp_path):
    """Omniglot has no validation split: the images a train_size subset leaves out become it —
    disjoint from the subset, together all the training images."""
    root = tmp_path / "mini"
    data.process("omniglot-mini", DataConfig(root=str(root)))
    whole = data.load("omniglot-mini", DataConfig(root=str(root)))
    cut = data.load("omniglot-mini", DataConfig(root=str(root), train_size=600))
    rows = lambda x: {r.tobytes() for r in x.numpy()}                                      # noqa: E731
    assert len(cut.train_x) == 600 and len(cut.valid_x) == 400
    assert not rows(cut.train_x) & rows(cut.valid_x)
    assert rows(cut.train_x) | rows(cut.valid_x) == rows(whole.train_x)
    assert len(np.unique(whole.train_x.numpy(), axis=0)) == 1000                           # so sets of rows suffice
    data.process("digits", DataConfig(root=str(tmp_path / "d")))
    digits = data.load("digits", DataConfig(root=str(tmp_path / "d")))
    cut_digits = data.load("digits", DataConfig(root=str(tmp_path / "d"), train_size=500))
    assert torch.equal(cut_digits.valid_x, digits.valid_x)                                # its own split is kept


def test_evaluation_reports_the_best_epochs_model_with_the_last_epochs_seeds(digits_root, tmp_path):  # noqa: F811
    """Validated only at the last epoch, the best model is the last: its columns are the last
    epoch's bit for bit (same state, same draws). Without validation there are none."""
    from vaeas.evaluation import BEST_COLUMNS, evaluate

    cfg = small_config(digits_root, epochs=3, validate_every=3, validate_size=50, validate_samples=4)
    cfg = replace(cfg, evaluation=replace(cfg.evaluation, iw_samples=8, iw_max_examples=40))
    row = evaluate(*load_model(train(cfg, SPEC, tmp_path / "m.pt", progress=False)), progress=False)
    assert row["best_epoch"] == 3
    for column in ("nll_test", "nll_train", "kl_test", "kl_train", "au", "au_train"):
        assert row[f"best_{column}"] == row[column], column
    assert set(BEST_COLUMNS) <= set(row)
    plain = replace(cfg, training=replace(cfg.training, validate_every=0))
    row = evaluate(*load_model(train(plain, SPEC, tmp_path / "p.pt", progress=False)), progress=False)
    assert not set(BEST_COLUMNS) & set(row) and 0 <= row["au_train"] <= 8
