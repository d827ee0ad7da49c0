"""Networks and the fixed softmax labels of §3.2–3.3."""

import pytest
import torch

from vaeas.config import LabelConfig, ModelConfig
from vaeas.models import VAE, make_labels


def test_layer_counts_are_hidden_layers():
    cfg = ModelConfig(latent_dim=40, hidden_units=500, encoder_layers=2, decoder_layers=5, classifier_layers=2)
    model = VAE(784, cfg, classes=55000)
    linear = lambda net: [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear(model.encoder)] == [500, 500, 80]
    assert [m.out_features for m in linear(model.decoder)] == [500] * 5 + [784]
    assert [m.out_features for m in linear(model.classifier)] == [500, 500, 55000]


def test_shapes_and_heads():
    cfg = ModelConfig(latent_dim=3, hidden_units=8, encoder_layers=1, decoder_layers=1, classifier_layers=1)
    model = VAE(10, cfg, classes=4, heads=3)
    mu, logvar = model.encode(torch.rand(5, 10))
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(mu).shape == (5, 10)
    heads = model.classify(mu)
    assert len(heads) == 3 and all(h.shape == (5, 4) for h in heads)
    assert VAE(10, cfg).classifier is None
    assert set(map(id, model.vae_parameters())).isdisjoint(map(id, model.classifier_parameters()))


def test_full_labels_are_the_sample_index():
    spec = make_labels(7, LabelConfig())
    assert spec.labels.tolist() == list(range(7)) and spec.effective_count == 7


def test_shared_labels_are_balanced_and_seeded():
    spec = make_labels(1003, LabelConfig(scheme="shared", classes=10, seed=3))
    counts = torch.bincount(spec.labels, minlength=10)
    assert counts.min() >= 100 and counts.max() <= 101 and counts.sum() == 1003
    assert torch.equal(spec.labels, make_labels(1003, LabelConfig(scheme="shared", classes=10, seed=3)).labels)
    assert not torch.equal(spec.labels, make_labels(1003, LabelConfig(scheme="shared", classes=10, seed=4)).labels)
    assert spec.effective_count == 10


@pytest.mark.parametrize("n,classes,heads", [(1000, 10, 3), (1000, 32, 2), (50, 3, 4)])
def test_multihead_tuples_are_distinct_when_product_covers_n(n, classes, heads):
    spec = make_labels(n, LabelConfig(scheme="multihead", classes=classes, heads=heads))
    assert spec.labels.shape == (n, heads) and int(spec.labels.max()) < classes
    distinct = len({tuple(r) for r in spec.labels.tolist()})
    assert distinct == min(n, classes ** heads) == spec.effective_count


def test_glorot_init_is_keras_default_and_torch_init_is_not():
    """model.init: glorot = U(±√(6 / (fan_in + fan_out))) weights and zero biases (D22)."""
    import math

    from vaeas.config import ModelConfig
    from vaeas.models import VAE

    torch.manual_seed(0)
    glorot = VAE(784, ModelConfig(init="glorot"))
    torch.manual_seed(0)
    default = VAE(784, ModelConfig(init="torch"))
    for layer in (m for m in glorot.modules() if isinstance(m, torch.nn.Linear)):
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0
    assert any(torch.count_nonzero(m.bias) for m in default.modules() if isinstance(m, torch.nn.Linear))
