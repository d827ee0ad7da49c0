"""Training: the objective's identities, gradient routing, learning, and bitwise resume."""

import math
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from vaeas import data, runtime
from vaeas.config import Config, DataConfig, LabelConfig, ModelConfig, TrainingConfig
from vaeas.errors import VaeasError
from vaeas.models import VAE, make_labels
from vaeas.training import RunSpec, backward, load_model, loss_terms, train

from tolerance import ops_bound, sum_bound


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data.process("digits", DataConfig(root=str(root)))
    return root


def small_config(root, **training) -> Config:
    return Config(data=DataConfig(root=str(root)),
                  model=ModelConfig(latent_dim=8, hidden_units=32, encoder_layers=1, decoder_layers=1, classifier_layers=1),
                  training=TrainingConfig(**{"epochs": 4, "batch_size": 128, "device": "cpu", **training}))


def batch_and_model(heads=1, classes=0, n=200, md_constant="n_eff"):
    torch.manual_seed(0)
    cfg = ModelConfig(latent_dim=4, hidden_units=16, encoder_layers=1, decoder_layers=1, classifier_layers=1)
    labels_cfg = LabelConfig(md_constant=md_constant) if classes == 0 else LabelConfig(
        scheme="multihead" if heads > 1 else "shared", classes=classes, heads=heads, md_constant=md_constant)
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
    t = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}), spec, g)
    # float32 scalars, each side a chain of ≤ 5 roundings of values no larger than the terms
    # named (tests/tolerance.py); both sides round, hence twice that.
    log_n = math.log(spec.effective_count)
    tol = ops_bound(torch.float32, t.loss, t.recon, t.kl, t.sc, t.entropy, log_n, safety=2)
    assert torch.allclose(t.loss, t.recon + t.kl + t.sc - t.entropy, rtol=0, atol=tol)
    assert torch.allclose(t.md, t.kl - log_n + t.sc, rtol=0, atol=ops_bound(torch.float32, t.md, t.kl, log_n, t.sc, safety=2))
    assert torch.allclose(t.mi, log_n - t.entropy, rtol=0, atol=ops_bound(torch.float32, t.mi, log_n, t.entropy, safety=2))


@pytest.mark.parametrize("heads,classes", [(1, 0), (1, 15), (2, 15)])
def test_md_constant_n_shifts_md_by_log_n_over_n_eff_and_changes_no_gradient(heads, classes):
    """labels.md_constant (D5): eq. 10 with log N instead of log N_eff lowers MD (and the loss, by
    β times it) by exactly log(N / N_eff) — 0 for one label per sample — and, a constant, leaves
    every gradient unchanged."""
    out = {}
    for constant in ("n", "n_eff"):
        model, x, spec = batch_and_model(heads=heads, classes=classes, md_constant=constant)
        run = RunSpec("digits", "vaeas", {"alpha": 0.5, "beta": 2.0})
        t = loss_terms(model, x, spec.labels, run, spec, torch.Generator().manual_seed(1))
        grads = torch.autograd.grad(t.loss, model.vae_parameters())
        out[constant] = t, grads, spec
    (tn, gn, spec), (te, ge, _) = out["n"], out["n_eff"]
    gap = math.log(200) - math.log(spec.effective_count)
    # N_eff: 200 for full labels and for 2 heads of 15 (15² ≥ 200 distinct tuples), 15 shared
    assert gap == pytest.approx(math.log(200 / 15) if (heads, classes) == (1, 15) else 0.0)
    # The same model and draws (seed 0) with another constant: float32 chains of ≤ 4 roundings of
    # values no larger than these, on each side (tests/tolerance.py).
    md_tol = ops_bound(torch.float32, tn.md, te.md, tn.kl, tn.sc, math.log(200), safety=2)
    assert tn.md.item() == pytest.approx(te.md.item() - gap, abs=md_tol)
    loss_tol = ops_bound(torch.float32, tn.loss, te.loss, tn.recon, 0.5 * tn.mi, 2.0 * tn.md, 2.0 * te.md,
                         safety=2) + 2.0 * md_tol
    assert tn.loss.item() == pytest.approx(te.loss.item() - 2.0 * gap, abs=loss_tol)
    assert torch.equal(tn.mi, te.mi)
    for a, b in zip(gn, ge):
        torch.testing.assert_close(a, b)


def test_alpha_and_beta_weight_mi_and_md():
    model, x, spec = batch_and_model(heads=2, classes=15)
    terms = {}
    for a, b in [(0.0, 0.0), (2.0, 0.0), (0.0, 3.0)]:
        g = torch.Generator().manual_seed(1)
        terms[a, b] = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", {"alpha": a, "beta": b}), spec, g)
    base = terms[0.0, 0.0]
    assert torch.allclose(base.loss, base.recon)
    # float32 sums of two terms, rounded on each side (tests/tolerance.py)
    two, three = terms[2.0, 0.0].loss, terms[0.0, 3.0].loss
    assert torch.allclose(two, base.recon + 2 * base.mi, rtol=0, atol=ops_bound(torch.float32, two, base.recon, 2 * base.mi, safety=2))
    assert torch.allclose(three, base.recon + 3 * base.md, rtol=0, atol=ops_bound(torch.float32, three, base.recon, 3 * base.md, safety=2))


def test_classifier_is_trained_only_by_sc_and_encoder_only_by_the_objective():
    model, x, spec = batch_and_model()
    terms = loss_terms(model, x, spec.labels, RunSpec("digits", "vaeas", {"alpha": 2.0, "beta": 0.5}), spec, torch.Generator().manual_seed(1))
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
    spec = RunSpec("digits", "vaeas", {"alpha": 0.5, "beta": 2.0}, seed=3)
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


def test_bf16_autocast_path_runs_on_cpu(digits_root, tmp_path, monkeypatch):
    # Pretend the CPU multiplies bf16 natively, so the autocast path runs on any machine.
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    cfg = small_config(digits_root, epochs=1, precision="bf16")
    fp32 = train(small_config(digits_root, epochs=1), RunSpec("digits", "vaeas"), tmp_path / "f.pt", progress=False)
    model, meta = load_model(train(cfg, RunSpec("digits", "vaeas"), tmp_path / "m.pt", progress=False))
    assert meta["precision"] == "bf16"
    assert all(math.isfinite(meta["history"][0][k]) for k in ("loss", "recon", "kl", "mi", "md", "sc"))
    # bf16 rounds every matmul's operands (relative 2^-8), so one epoch already moves the weights:
    # the autocast really ran (a silent fp32 fallback would give these bytes exactly).
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), load_model(fp32)[0].state_dict().values()))


def test_bf16_on_a_cpu_without_bf16_matmuls_trains_fp32_and_says_so(digits_root, tmp_path, monkeypatch, capsys):
    """Where the CPU lacks AVX512-BF16 and AMX-BF16, training.precision bf16 falls back to fp32
    (oneDNN would emulate bf16, slower than fp32): the same bytes as an fp32 run on this machine,
    one line on stderr naming the key and the missing flags, and the model file records fp32."""
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    spec = RunSpec("digits", "vaeas")
    fp32 = train(small_config(digits_root, epochs=1), spec, tmp_path / "f.pt", progress=False)
    capsys.readouterr()
    asked = train(small_config(digits_root, epochs=1, precision="bf16"), spec, tmp_path / "b.pt", progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vaeas: digits VAE-AS α=1 β=1 seed 0: training.precision 'bf16': this CPU has no bf16 "
                   "matmul instructions (avx512_bf16 or amx_bf16 absent from its flags); training in fp32 instead"]
    (m32, meta32), (mb, metab) = load_model(fp32), load_model(asked)
    assert metab["precision"] == "fp32" and meta32["precision"] == "fp32"
    assert all(torch.equal(a, b) for a, b in zip(m32.state_dict().values(), mb.state_dict().values()))
    assert [r["loss"] for r in meta32["history"]] == [r["loss"] for r in metab["history"]]


def test_flush_denormal_is_set_for_training_only(digits_root, tmp_path, monkeypatch):
    """training.flush_denormal (D50) switches torch's flush-to-zero on for the run and off after it,
    so evaluation in the same process (vaeas verify) keeps IEEE subnormals; and it trains. One
    thread, so no worker thread of this test process starts with the flag on and keeps it."""
    calls = []
    real = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: calls.append(on) or real(on))
    threads = torch.get_num_threads()
    try:
        for flush in (True, False):
            cfg = small_config(digits_root, epochs=1, flush_denormal=flush, threads=1)
            _, meta = load_model(train(cfg, RunSpec("digits", "vaeas"), tmp_path / f"m{flush}.pt", progress=False))
            assert math.isfinite(meta["history"][0]["loss"])
    finally:
        torch.set_num_threads(threads)
    assert calls == [True, False, False, False]
    # Off after training: 2^-120 * 2^-20 = 2^-140 (subnormal in float32) is kept, bit for bit
    assert (torch.tensor([2.0 ** -120]) * 2.0 ** -20).view(torch.int32).item() == 1 << 9


PROBE = """
import torch
from vaeas.runtime import set_flush_denormal
torch.set_num_threads(2)
if {warm}:
    torch.ones(1 << 20) * 2.0     # starts torch's worker thread with flush-to-zero off
print(set_flush_denormal(True), set_flush_denormal(False))
"""


@pytest.mark.parametrize("warm, expected", [(False, "True False"), (True, "False True")])
def test_flush_denormal_reaches_worker_threads_only_if_set_before_they_start(warm, expected):
    """The flag is per thread and workers copy it when they start. Set first: every thread flushes,
    and turning it off later reaches the main thread only. Set after a parallel op: only the main
    thread flushes. set_flush_denormal says which (a fresh interpreter each: this test process's
    own workers have long started)."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero (torch.set_flush_denormal returned False)")
    torch.set_flush_denormal(False)
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: torch runs no worker thread")
    out = subprocess.run([sys.executable, "-c", PROBE.format(warm=warm)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_bad_run_specs_are_refused_before_compute(digits_root, tmp_path):
    cfg = small_config(digits_root)
    with pytest.raises(VaeasError, match="unknown objective 'elbo'"):
        train(cfg, RunSpec("digits", "elbo"), tmp_path / "m.pt")
    with pytest.raises(VaeasError, match=r"^alpha must be a finite number >= 0, got -1.0$"):
        train(cfg, RunSpec("digits", "vaeas", {"alpha": -1.0}), tmp_path / "m.pt")
    too_many = replace(cfg, labels=LabelConfig(scheme="shared", classes=5000))
    with pytest.raises(VaeasError, match=r"labels.classes \(5000\) must be < the 1247 training samples of 'digits'"):
        train(too_many, RunSpec("digits", "vaeas"), tmp_path / "m.pt")
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- fused classifier head
def _reference_gradients(model, x, spec, run):
    """The objective as first written: logits, the estimators of eqs. 5, 8-10, and two backward
    passes (θ, φ from the loss, ω from SC alone)."""
    from vaeas.estimators import kl_standard_normal, marginal_kl_softmax, mutual_information_softmax, softmax_cross_entropy
    from vaeas.metrics import bernoulli_log_likelihood

    g = torch.Generator().manual_seed(1)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
    recon = -bernoulli_log_likelihood(model.decode(z), x).mean()
    kl = kl_standard_normal(mu, logvar)
    logits = model.classify(z)
    sc = softmax_cross_entropy(logits, spec.labels)
    loss = (recon + run.params["alpha"] * mutual_information_softmax(logits, spec.effective_count)
            + run.params["beta"] * marginal_kl_softmax(kl, sc, spec.marginal_count))
    p_vae, p_cls = model.vae_parameters(), model.classifier_parameters()
    return loss, sc.mean(), (torch.autograd.grad(loss, p_vae, retain_graph=True)
                             + torch.autograd.grad(sc.mean(), p_cls))


def _per_sample_magnitudes(model, x, spec, run):
    """What the rounding of the batch objective scales with (tests/tolerance.py): for the loss
    and SC, the sum over samples of each sample's |share|; for each gradient entry, Σ_b |∇ℓ_b|,
    ℓ_b sample b's share of the loss (of SC for ω). The loss is a mean of per-sample terms
    (eqs. 3, 5, 8-10: log N is a constant), so these are the magnitudes of its sums."""
    from vaeas.estimators import kl_standard_normal, softmax_cross_entropy, softmax_entropy
    from vaeas.metrics import bernoulli_log_likelihood

    eps = torch.randn(model.encode(x)[0].shape, generator=torch.Generator().manual_seed(1))  # the reference's draw
    p_vae, p_cls = model.vae_parameters(), model.classifier_parameters()
    grads = [torch.zeros_like(p) for p in p_vae + p_cls]
    loss_mag, sc_mag, n = 0.0, 0.0, x.shape[0]
    for b in range(n):
        mu, logvar = model.encode(x[b:b + 1])
        z = mu + torch.exp(0.5 * logvar) * eps[b:b + 1]
        recon = -bernoulli_log_likelihood(model.decode(z), x[b:b + 1]).sum()
        logits = model.classify(z)
        sc = softmax_cross_entropy(logits, spec.labels[b:b + 1]).sum()
        h = softmax_entropy(logits).sum()
        share = (recon - run.params["alpha"] * h + run.params["beta"] * (kl_standard_normal(mu, logvar).sum() + sc)) / n
        loss_mag += (recon.abs() + run.params["alpha"] * h.abs() + run.params["beta"] * (kl_standard_normal(mu, logvar).abs().sum()
                                                                     + sc.abs())).item() / n
        sc_mag += sc.abs().item() / n
        g_vae = torch.autograd.grad(share, p_vae, retain_graph=True, allow_unused=True)
        g_cls = torch.autograd.grad(sc / n, p_cls, allow_unused=True)
        for acc, g in zip(grads, g_vae + g_cls):
            if g is not None:
                acc += g.abs()
    logn = math.log(spec.effective_count) + math.log(spec.marginal_count)
    return loss_mag + (run.params["alpha"] + run.params["beta"]) * logn, sc_mag, grads


@pytest.mark.parametrize("heads,classes", [(1, 0), (1, 15), (2, 15)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.2, 5.0), (3.0, 0.0)])
def test_fused_head_gives_the_reference_values_and_gradients(heads, classes, alpha, beta):
    """RoutedSoftmaxHead (one output-layer pass, closed-form softmax gradients, one backward)
    reproduces the straightforward objective and its two-pass gradient routing.

    Tolerances (tests/tolerance.py): each of the two float32 computations sums, per value, at
    most n = B + P + V + 2·H terms in some order (a batch mean over B samples of per-sample
    reductions over the P pixels, the V classes or the H hidden units of a layer), so each errs
    by at most γ_n times the magnitude of its terms (:func:`_per_sample_magnitudes`); their
    difference by twice that, and a factor 4 covers the per-sample chains (exp, log, the layers'
    own products) at first order. A wrong routing or a missing term is off by O(1) of the value."""
    model, x, spec = batch_and_model(heads=heads, classes=classes)
    run = RunSpec("digits", "vaeas", {"alpha": alpha, "beta": beta})
    ref_loss, ref_sc, ref_grads = _reference_gradients(model, x, spec, run)
    loss_mag, sc_mag, grad_mags = _per_sample_magnitudes(model, x, spec, run)
    n = x.shape[0] + x.shape[1] + spec.classes * spec.heads + 2 * 16          # B + P + V + 2H
    tol = lambda magnitude: sum_bound(n, magnitude, torch.float32, safety=2 * 4)
    terms = loss_terms(model, x, spec.labels, run, spec, torch.Generator().manual_seed(1))
    torch.testing.assert_close(terms.loss, ref_loss, rtol=0, atol=tol(loss_mag))
    torch.testing.assert_close(terms.sc, ref_sc, rtol=0, atol=tol(sc_mag))
    params = model.vae_parameters() + model.classifier_parameters()
    backward(terms, model.vae_parameters(), model.classifier_parameters())
    for p, want, mag in zip(params, ref_grads, grad_mags):
        assert mag.abs().sum() > 0                                    # every parameter is reached
        worst = ((p.grad - want).abs() / (sum_bound(n, 1.0, torch.float32, safety=2 * 4) * mag + 1e-30)).max()
        assert worst <= 1.0, worst


def test_fused_head_statistics_equal_the_estimators():
    from vaeas.estimators import softmax_cross_entropy, softmax_entropy

    model, x, spec = batch_and_model(heads=2, classes=15)
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(3)) * 3
    entropy, ce, sc = model.classifier.routed_statistics(z, spec.labels[:50])
    logits = model.classify(z)
    # Both sides compute the logits l = hWᵀ + b (H = 16 terms each, in their own matmul) and then,
    # per sample, float32 log-sum-exps over V = 15 classes for each of 2 heads. A logit errs by
    # ≤ γ_{H+1}·(|W||h| + |b|) each side, and H and CE are 2-Lipschitz per head in the logits'
    # ∞-norm; the reductions add γ_{V+4} of |logit| + log V per head (tests/tolerance.py).
    trunk, head = model.classifier.net[:-1], model.classifier.net[-1]
    with torch.no_grad():
        logit_mag = (trunk(z).abs() @ head.weight.abs().t() + head.bias.abs()).max().item()
    top = max(l.abs().max().item() for l in logits)
    tol = 2 * 2 * 2 * sum_bound(16 + 1, logit_mag, torch.float32) + 2 * sum_bound(2 * 15 + 4, 2 * 2 * (top + math.log(15)), torch.float32)
    torch.testing.assert_close(entropy, softmax_entropy(logits), rtol=0, atol=tol)
    torch.testing.assert_close(ce, softmax_cross_entropy(logits, spec.labels[:50]), rtol=0, atol=tol)
    assert torch.equal(ce, sc)


def test_fused_head_routes_each_output_to_its_own_parameters():
    """H and CE reach z but not ω; SC reaches ω but not z (eqs. 3 and 8, docs/decisions.md D9)."""
    model, x, spec = batch_and_model()
    z = torch.randn(200, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    entropy, ce, sc = model.classifier.routed_statistics(z, spec.labels)
    w = model.classifier.net[-1].weight
    for out in (entropy, ce):
        gz, gw = torch.autograd.grad(out.sum(), (z, w), retain_graph=True)
        assert gz.abs().sum() > 0 and gw.abs().sum() == 0
    gz, gw = torch.autograd.grad(sc.sum(), (z, w))
    assert gz.abs().sum() == 0 and gw.abs().sum() > 0


def test_fused_head_bf16_matches_fp32_loosely():
    model, x, spec = batch_and_model(heads=1, classes=15)
    run = RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0})
    ref = loss_terms(model, x, spec.labels, run, spec, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss_terms(model, x, spec.labels, run, spec, torch.Generator().manual_seed(1))
    backward(low, model.vae_parameters(), model.classifier_parameters())
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters())
    # Not a precision claim: that the bf16 path computes the same statistics (a wrong or missing
    # term is off by O(1)). 0.05 is ~13 bf16 unit roundoffs (u = 2^-8): each of the 4 matmuls
    # between x and the logits rounds its inputs to bf16 (relative u each, first order), and SC
    # and H are 2-Lipschitz in the logits' ∞-norm.
    torch.testing.assert_close(low.sc.float(), ref.sc, rtol=0.05, atol=0.05)
    torch.testing.assert_close(low.entropy.float(), ref.entropy, rtol=0.05, atol=0.05)


def test_non_finite_loss_stops_the_run_naming_epoch_and_step(digits_root, tmp_path, monkeypatch):
    """The loss is checked once per epoch (no per-step host sync); the message still names the
    first bad step, and no checkpoint of the bad epoch is written."""
    from vaeas.training import loop

    real, calls = loop.loss_terms, {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 13:                                   # epoch 2 (10 steps per epoch), step 3
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(loop, "loss_terms", poisoned)
    cfg = small_config(digits_root, epochs=3)
    with pytest.raises(VaeasError, match=r"non-finite loss \(nan\) at epoch 2, step 3; the last good checkpoint .*model.pt.ckpt is kept"):
        train(cfg, RunSpec("digits", "vaeas"), tmp_path / "model.pt", progress=False)
    ckpt = torch.load(tmp_path / "model.pt.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1


def test_extra_classifier_steps_update_omega_only(digits_root, tmp_path):
    """training.classifier_steps: per VAE update, that many more updates of ω alone. Adam's
    step counts show it: θ, φ were stepped once per batch, ω (1 + classifier_steps) times."""
    cfg = small_config(digits_root, epochs=2, classifier_steps=2)
    out = tmp_path / "m.pt"
    train(cfg, RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}, 0), out, progress=False, stop_after_epoch=1)
    ckpt = torch.load(out.with_name("m.pt.ckpt"), weights_only=False)
    steps = math.ceil(1247 / 128)
    counts = [int(st["step"]) for _, st in sorted(ckpt["optimizer"]["state"].items())]
    n_vae = len(VAE(64, cfg.model).vae_parameters())
    assert counts[:n_vae] == [steps] * n_vae
    assert counts[n_vae:] and set(counts[n_vae:]) == {3 * steps}


def test_monitoring_logs_softmax_beside_monte_carlo_on_the_monitored_epochs(digits_root, tmp_path):
    cfg = small_config(digits_root, epochs=4, monitor_every=2, monitor_size=300)
    out = train(cfg, RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}, 0), tmp_path / "m.pt", progress=False)
    import pandas as pd

    log = pd.read_csv(out.with_name("m.log.csv"))
    assert log.mon_mi_mc.isna().tolist() == [True, False, True, False]
    assert (log.mon_size.dropna() == 300).all()
    monitored = log.dropna(subset=["mon_mi_mc"])
    # The Monte Carlo MI over S = 300 posteriors lies in [0, log S] (per sample, log q̄ ≥ log q − log S
    # exactly); computed in float64 on the trained 8-dim posteriors (|z − centre| ≲ 10, σ ≳ 0.01)
    # it errs by ≲ γ_20 · 8 · 2·10²/0.01² ≈ 3e-7 (test_estimators._expansion_bound), inside 1e-6.
    # The softmax one lies in [0, log N]: H ≥ 0 exactly (a sum of p·log p ≤ 0), so only log N's
    # float32 rounding (≤ u·log N = 4e-7) passes log N; H ≤ log V holds to γ_V·log V = 5e-4 in
    # float32 (V = 1247), inside 1e-3.
    assert ((monitored.mon_mi_mc >= -1e-6) & (monitored.mon_mi_mc <= math.log(300) + 1e-6)).all()
    assert ((monitored.mon_mi >= -1e-3) & (monitored.mon_mi <= math.log(1247) + 1e-6)).all()
    # eq. 10 on the monitored pass: MD = KL − log N + SC, computed from the same float32 means
    # (vaeas.passes): three float32 roundings, of log N, KL − log N and MD
    for row in monitored.itertuples():
        tol = ops_bound(torch.float32, math.log(1247), row.mon_kl - math.log(1247), row.mon_md, safety=2)
        assert abs(row.mon_md - (row.mon_kl - math.log(1247) + row.mon_sc)) <= tol, row


def test_monitoring_does_not_change_the_trained_numbers(digits_root, tmp_path):
    spec = RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}, 0)
    plain = train(small_config(digits_root, epochs=2), spec, tmp_path / "a.pt", progress=False)
    watched = train(small_config(digits_root, epochs=2, monitor_every=1), spec, tmp_path / "b.pt", progress=False)
    a, b = load_model(plain)[0].state_dict(), load_model(watched)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
