"""Training: the objective's identities, gradient routing, learning, and bitwise resume."""

import math
from dataclasses import replace

import pytest
import torch

from vaeas import data
from vaeas.config import Config, DataConfig, LabelConfig, ModelConfig, TrainingConfig
from vaeas.errors import VaeasError
from vaeas.models import VAE, make_labels
from vaeas.training import RunSpec, backward, load_model, loss_terms, train


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data.process("digits", DataConfig(root=str(root)))
    return root


def small_config(root, **training) -> Config:
    return Config(data=DataConfig(root=str(root)),
                  model=ModelConfig(latent_dim=8, hidden_units=32, encoder_layers=1, decoder_layers=1, classifier_layers=1),
                  training=TrainingConfig(**{"epochs": 4, "batch_size": 128, "device": "cpu", **training}))


def batch_and_model(heads=1, classes=0, n=200):
    torch.manual_seed(0)
    cfg = ModelConfig(latent_dim=4, hidden_units=16, encoder_layers=1, decoder_layers=1, classifier_layers=1)
    labels_cfg = LabelConfig() if classes == 0 else LabelConfig(scheme="multihead" if heads > 1 else "shared", classes=classes, heads=heads)
    spec = make_labels(n, labels_cfg)
    model = VAE(12, cfg, classes=spec.classes, heads=spec.heads)
    x = torch.bernoulli(torch.rand(n, 12))
    return model, x, spec


@pytest.mark.parametrize("heads,classes", [(1, 0), (1, 15), (2, 15)])
def test_vaeas_at_alpha_beta_one_is_elbo_plus_sc_minus_entropy(heads, classes):
    """MI + MD = log N − H + KL − log N + SC: eq. 3 at α = β = 1 is the ELBO plus (SC − H),
    for full, shared and multi-head labels alike (N = N_eff, the labels in use)."""
    model, x, spec = batch_and_model(heads=heads, classes=classes)
    g = torch.Generator().manual_seed(1)
    t = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", 1.0, 1.0), spec, g)
    assert torch.allclose(t.loss, t.recon + t.kl + t.sc - t.entropy, atol=1e-5)
    assert torch.allclose(t.md, t.kl - math.log(spec.effective_count) + t.sc, atol=1e-5)
    assert torch.allclose(t.mi, math.log(spec.effective_count) - t.entropy, atol=1e-5)


def test_alpha_and_beta_weight_mi_and_md():
    model, x, spec = batch_and_model(heads=2, classes=15)
    terms = {}
    for a, b in [(0.0, 0.0), (2.0, 0.0), (0.0, 3.0)]:
        g = torch.Generator().manual_seed(1)
        terms[a, b] = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", a, b), spec, g)
    base = terms[0.0, 0.0]
    assert torch.allclose(base.loss, base.recon)
    assert torch.allclose(terms[2.0, 0.0].loss, base.recon + 2 * base.mi, atol=1e-5)
    assert torch.allclose(terms[0.0, 3.0].loss, base.recon + 3 * base.md, atol=1e-5)


def test_classifier_is_trained_only_by_sc_and_encoder_only_by_the_objective():
    model, x, spec = batch_and_model()
    terms = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", 2.0, 0.5), spec, torch.Generator().manual_seed(1))
    p_vae, p_cls = model.vae_parameters(), model.classifier_parameters()
    want_vae = torch.autograd.grad(terms.loss, p_vae, retain_graph=True)
    want_cls = torch.autograd.grad(terms.sc, p_cls, retain_graph=True)
    wrong_cls = torch.autograd.grad(terms.loss, p_cls, retain_graph=True)
    backward(terms, p_vae, p_cls)
    assert all(torch.equal(p.grad, w) for p, w in zip(p_vae, want_vae))
    assert all(torch.equal(p.grad, w) for p, w in zip(p_cls, want_cls))
    assert not all(torch.allclose(p.grad, w) for p, w in zip(p_cls, wrong_cls))


@pytest.mark.parametrize("objective", ["vae", "vaeas"])
def test_loss_falls_on_digits(digits_root, tmp_path, objective):
    cfg = small_config(digits_root, epochs=5)
    out = train(cfg, RunSpec("digits", objective, seed=1), tmp_path / "model.pt", progress=False)
    _, meta = load_model(out)
    losses = [row["loss"] for row in meta["history"]]
    assert losses[-1] < losses[0] - 5, losses
    assert (tmp_path / "model.log.csv").read_text().count("\n") == 6
    assert not (tmp_path / "model.pt.ckpt").exists()


def test_interrupted_run_resumes_bitwise_equal(digits_root, tmp_path):
    cfg = small_config(digits_root, epochs=4)
    spec = RunSpec("digits", "vaeas", alpha=0.5, beta=2.0, seed=3)
    full = train(cfg, spec, tmp_path / "a" / "model.pt", progress=False)
    part = train(cfg, spec, tmp_path / "b" / "model.pt", progress=False, stop_after_epoch=2)
    assert part.name == "model.pt.ckpt" and not (tmp_path / "b" / "model.pt").exists()
    resumed = train(cfg, spec, tmp_path / "b" / "model.pt", progress=False)
    a, meta_a = load_model(full)
    b, meta_b = load_model(resumed)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]
    assert strip(meta_a["history"]) == strip(meta_b["history"])


def test_checkpoint_of_another_configuration_is_not_used(digits_root, tmp_path, capsys):
    cfg = small_config(digits_root, epochs=3)
    train(cfg, RunSpec("digits", "vae", seed=0), tmp_path / "m.pt", progress=False, stop_after_epoch=1)
    out = train(cfg, RunSpec("digits", "vae", seed=1), tmp_path / "m.pt", progress=False)
    assert "belongs to another configuration" in capsys.readouterr().out
    _, meta = load_model(out)
    ref = train(cfg, RunSpec("digits", "vae", seed=1), tmp_path / "ref.pt", progress=False)
    assert [r["loss"] for r in meta["history"]] == [r["loss"] for r in load_model(ref)[1]["history"]]


def test_bf16_autocast_path_runs_on_cpu(digits_root, tmp_path):
    cfg = small_config(digits_root, epochs=1, precision="bf16")
    _, meta = load_model(train(cfg, RunSpec("digits", "vaeas"), tmp_path / "m.pt", progress=False))
    assert all(math.isfinite(meta["history"][0][k]) for k in ("loss", "recon", "kl", "mi", "md", "sc"))


def test_bad_run_specs_are_refused_before_compute(digits_root, tmp_path):
    cfg = small_config(digits_root)
    with pytest.raises(VaeasError, match="unknown objective 'elbo'"):
        train(cfg, RunSpec("digits", "elbo"), tmp_path / "m.pt")
    with pytest.raises(VaeasError, match=r"--alpha must be a finite number >= 0, got -1.0"):
        train(cfg, RunSpec("digits", "vaeas", alpha=-1.0), tmp_path / "m.pt")
    too_many = replace(cfg, labels=LabelConfig(scheme="shared", classes=5000))
    with pytest.raises(VaeasError, match=r"labels.classes \(5000\) must be < the 1247 training samples of 'digits'"):
        train(too_many, RunSpec("digits", "vaeas"), tmp_path / "m.pt")
    assert not any(tmp_path.iterdir())
